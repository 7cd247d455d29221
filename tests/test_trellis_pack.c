/* Trellis packing and tiles: every bitstream unpacks to a valid tail-biting path that packs back
 * to the same bits; broken paths are refused; the kernel permutation is a bijection with the
 * documented lane layout; decoding the packed codes of a quantized tile reproduces the encoder's
 * reconstruction bit for bit; many-tile quantization gives identical codes for 1 and 2 threads;
 * the code functions match their definitions (HYB index / sign bits, 1MAD / 3INST statistics). */
#include <omp.h>
#include <stdlib.h>

#include "core/core.h"
#include "quant/trellis.h"
#include "test_util.h"

static void random_words(harp_rng *rng, uint16_t *w, int n) {
    for (int i = 0; i < n; i++) w[i] = (uint16_t)harp_rng_u64(rng);
}

static void check_roundtrip(harp_rng *rng, const harp_tcb *cb, const char *what) {
    const int nw = harp_tcb_words(cb), B = cb->S * cb->KV;
    uint16_t w[64], w2[64];
    uint32_t st[256];
    int bad = 0;
    for (int r = 0; r < 50; r++) {
        random_words(rng, w, nw);
        if (B & 15) w[nw - 1] &= (uint16_t)(0xFFFFu << (16 - (B & 15)));   /* padding bits are zero */
        harp_trellis_unpack(cb, w, st);
        const uint32_t G = (1u << cb->L) >> cb->KV;
        for (int t = 0; t < cb->S; t++) bad += (st[t] >> cb->KV) != (st[(t + cb->S - 1) % cb->S] & (G - 1));
        bad += harp_trellis_pack(cb, st, w2) != HARP_OK || memcmp(w, w2, sizeof(uint16_t) * (size_t)nw) != 0;
    }
    CHECK_MSG(bad == 0, "%s: %d pack/unpack round-trip failures", what, bad);
    /* a broken transition and a broken wrap are refused */
    st[3] ^= 1u << (cb->L - 1);
    CHECK(harp_trellis_pack(cb, st, w2) == HARP_ERR_INVALID_ARG);
    harp_trellis_unpack(cb, w, st);
    st[0] ^= 1u << (cb->L - 1);   /* only s_0 >> KV changes: the transition 0 → 1 holds, the wrap breaks */
    CHECK(harp_trellis_pack(cb, st, w2) == HARP_ERR_INVALID_ARG);
    CHECK(strstr(harp_last_error(), "tail-biting wrap") != NULL);
}

static void test_perm(void) {
    int seen[256] = {0}, ok = 1;
    for (int p = 0; p < 256; p++) seen[harp_trellis_perm(p)]++;
    for (int e = 0; e < 256; e++) ok &= seen[e] == 1;
    CHECK_MSG(ok, "kernel permutation is not a bijection");
    /* the GEMV lane layouts (trellis_gemv.c, docs/format/trellis.md). V = 1: lane l of vector c is
     * row c/2 + 8a, column 8d + 4(c%2) + 2e_lo + f */
    for (int p = 0; p < 256; p++) {
        const int c = p >> 4, l = p & 15, e = harp_trellis_perm(p);
        ok &= (e >> 4) == (c >> 1) + 8 * ((l >> 1) & 1);
        ok &= (e & 15) == 8 * ((l >> 2) & 1) + 4 * (c & 1) + 2 * (l >> 3) + (l & 1);
    }
    /* V = 2: coordinate f of state 16c + k is row c + 8a, column 8d + 2e + f (k = 4e + 2d + a) */
    for (int t = 0; t < 128; t++)
        for (int f = 0; f < 2; f++) {
            const int c = t >> 4, k = t & 15, e = harp_trellis_perm(2 * t + f);
            ok &= (e >> 4) == c + 8 * (k & 1) && (e & 15) == 8 * ((k >> 1) & 1) + 2 * (k >> 2) + f;
        }
    CHECK_MSG(ok, "kernel permutation does not match the GEMV lane layouts");
    /* consecutive pairs (one V = 2 step) are adjacent columns of one row (a half2 of the mma fragment) */
    ok = 1;
    for (int t = 0; t < 128; t++) ok &= harp_trellis_perm(2 * t + 1) == harp_trellis_perm(2 * t) + 1;
    CHECK(ok);
}

static void test_codes(const uint16_t *tlut) {
    double s1 = 0, s2 = 0, q1 = 0, q2 = 0;
    int bad = 0;
    for (uint32_t s = 0; s < 65536; s++) {
        const double a = harp_tcode_1mad(s), b = harp_tcode_3inst(s);
        s1 += a, s2 += a * a, q1 += b, q2 += b * b;
        bad += harp_f16_to_f32(harp_f32_to_f16((float)a)) != (float)a || harp_f16_to_f32(harp_f32_to_f16((float)b)) != (float)b;
        const uint64_t h = (uint64_t)s * (s + 1);   /* the definition in 64-bit arithmetic */
        float v[2];
        harp_tcode_hyb(tlut, s, v);
        const int row = (int)((h >> 6) & 511), neg = (int)((h >> 15) & 1);
        bad += v[0] != (neg ? -1.0f : 1.0f) * harp_f16_to_f32(tlut[2 * row]) || v[1] != harp_f16_to_f32(tlut[2 * row + 1]);
    }
    CHECK_MSG(bad == 0, "%d code values off their definition or not fp16", bad);
    const double m1 = s1 / 65536, sd1 = sqrt(s2 / 65536 - m1 * m1), m3 = q1 / 65536, sd3 = sqrt(q2 / 65536 - m3 * m3);
    printf("1MAD over all states: mean %.5f std %.5f; 3INST: mean %.5f std %.5f\n", m1, sd1, m3, sd3);
    CHECK(fabs(m1) < 0.01 && fabs(sd1 - 1.0) < 0.01);   /* §9.4: mean 0, std 1.000 */
    CHECK(fabs(m3) < 0.02 && fabs(sd3 - 1.24) < 0.02);  /* §5.6.3: std ≈ 1.24 */
    /* state 0: x = 76625530 = 0x0491367A, byte sum 325 */
    CHECK(harp_tcode_1mad(0) == harp_f16_to_f32(harp_f32_to_f16((float)(325 - 510) / 147.800537109375f)));
}

/* decode(pack(encode(tile))) == the encoder's reconstruction, bit for bit. */
static void test_tile(harp_rng *rng, harp_tcode code, int K, const uint16_t *tlut) {
    harp_tcb cb;
    CHECK_OK(harp_tcb_init(&cb, code, K, tlut, "tile"));
    harp_viterbi_ws *ws = harp_viterbi_ws_new(&cb);
    float tile[256], rec[256], dec[256];
    uint16_t w[64];
    for (int i = 0; i < 256; i++) tile[i] = (float)(harp_rng_normal(rng) * cb.rms * 0.9);
    const float cost = harp_trellis_quantize_tile(&cb, tile, 16, w, rec, 16, ws);
    harp_trellis_decode_tile(code, K, tlut, w, dec, 16);
    CHECK_MSG(memcmp(rec, dec, sizeof rec) == 0, "%s K=%d: decoded tile differs from the encoder's reconstruction",
              harp_tcode_name(code), K);
    double e = 0;
    for (int i = 0; i < 256; i++) e += ((double)tile[i] - rec[i]) * ((double)tile[i] - rec[i]);
    CHECK_MSG(fabs(e - cost) <= 1e-4 * e, "%s K=%d: tile error %.6g vs search cost %.6g", harp_tcode_name(code), K, e,
              (double)cost);
    check_roundtrip(rng, &cb, harp_tcode_name(code));
    harp_viterbi_ws_free(ws);
    harp_tcb_free(&cb);
}

static void test_threads(harp_rng *rng, const uint16_t *tlut) {
    harp_tcb cb;
    CHECK_OK(harp_tcb_init(&cb, HARP_TCODE_HYB, 2, tlut, "threads"));
    const int m = 48, n = 32, ntiles = (m / 16) * (n / 16), nw = harp_tcb_words(&cb);
    float *X = malloc(sizeof(float) * m * n), *R1 = malloc(sizeof(float) * m * n), *R2 = malloc(sizeof(float) * m * n);
    uint16_t *c1 = calloc((size_t)ntiles * nw, 2), *c2 = calloc((size_t)ntiles * nw, 2);
    for (int i = 0; i < m * n; i++) X[i] = (float)harp_rng_normal(rng);
    omp_set_num_threads(1);
    CHECK_OK(harp_trellis_quantize_tiles(&cb, m, n, X, 1, 0, c1, R1, "t1"));
    omp_set_num_threads(2);
    CHECK_OK(harp_trellis_quantize_tiles(&cb, m, n, X, 1, 0, c2, R2, "t2"));
    CHECK(memcmp(c1, c2, (size_t)ntiles * nw * 2) == 0 && memcmp(R1, R2, sizeof(float) * m * n) == 0);
    /* a partial refresh touches only its tiles */
    memset(c2, 0, (size_t)ntiles * nw * 2);
    CHECK_OK(harp_trellis_quantize_tiles(&cb, m, n, X, 2, 1, c2, NULL, "t3"));
    int ok = 1;
    for (int k = 0; k < ntiles; k++)
        for (int i = 0; i < nw; i++) ok &= c2[k * nw + i] == (k % 2 == 1 ? c1[k * nw + i] : 0);
    CHECK_MSG(ok, "partial refresh wrote the wrong tiles");
    CHECK(harp_trellis_quantize_tiles(&cb, 0, n, X, 1, 0, c2, NULL, "bad shape") == HARP_ERR_INVALID_ARG);
    CHECK(strstr(harp_last_error(), "bad shape") != NULL);
    CHECK(harp_trellis_quantize_tiles(&cb, m, n, X, 2, 2, c2, NULL, "bad part") == HARP_ERR_INVALID_ARG);
    /* a ragged shape: the boundary tiles equal the zero-padded tiles of the full problem */
    float *Xp = calloc((size_t)m * n, sizeof(float)), *Rr = malloc(sizeof(float) * 40 * 20);
    uint16_t *c3 = calloc((size_t)ntiles * nw, 2);
    for (int r = 0; r < 40; r++) memcpy(Xp + r * n, X + r * n, sizeof(float) * 20);
    CHECK_OK(harp_trellis_quantize_tiles(&cb, m, n, Xp, 1, 0, c1, R1, "padded"));
    float *Xr = malloc(sizeof(float) * 40 * 20);
    for (int r = 0; r < 40; r++) memcpy(Xr + r * 20, X + r * n, sizeof(float) * 20);
    CHECK_OK(harp_trellis_quantize_tiles(&cb, 40, 20, Xr, 1, 0, c3, Rr, "ragged"));
    ok = memcmp(c1, c3, (size_t)ntiles * nw * 2) == 0;
    for (int r = 0; r < 40; r++) ok &= memcmp(Rr + r * 20, R1 + r * n, sizeof(float) * 20) == 0;
    CHECK_MSG(ok, "ragged tiles differ from the zero-padded problem");
    free(Xp), free(Xr), free(Rr), free(c3);
    X[5] = NAN;
    CHECK(harp_trellis_quantize_tiles(&cb, m, n, X, 1, 0, c2, NULL, "nan tiles") == HARP_ERR_NUMERIC);
    free(X), free(R1), free(R2), free(c1), free(c2);
    harp_tcb_free(&cb);
}

int main(void) {
    harp_rng rng;
    harp_rng_seed(&rng, 11);
    uint16_t tlut[2 * HARP_HYB_N];
    CHECK_OK(harp_hyb_table_build_ex(3, 1 << 14, 8, tlut));
    test_perm();
    test_codes(tlut);
    for (int K = 2; K <= 4; K++) {
        test_tile(&rng, HARP_TCODE_1MAD, K, NULL);
        test_tile(&rng, HARP_TCODE_3INST, K, NULL);
        test_tile(&rng, HARP_TCODE_HYB, K, tlut);
    }
    /* small trellises, including S·KV not a multiple of 16 (zero padding bits) */
    float val[512];
    for (int i = 0; i < 512; i++) val[i] = (float)i;
    const int cfg[][4] = {{6, 1, 2, 5}, {8, 2, 1, 7}, {8, 3, 1, 6}, {8, 2, 2, 9}};
    for (int c = 0; c < 4; c++) {
        harp_tcb cb;
        CHECK_OK(harp_tcb_init_table(&cb, cfg[c][0], cfg[c][1], cfg[c][2], cfg[c][3], val));
        check_roundtrip(&rng, &cb, "small");
        harp_tcb_free(&cb);
    }
    test_threads(&rng, tlut);
    printf("%d passed, %d failed\n", t_pass_, t_fail_);
    return t_fail_ ? 1 : 0;
}
