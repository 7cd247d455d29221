/* GPU decode engine, CPU side (runs in every build): the device layouts decode, through the very
 * helpers the kernels call, to exactly the stored values of every format (all 65 536 E8P codes in
 * every word slot; every quant type at awkward shapes, padding included); the GEMV twin agrees with
 * the CPU quantized GEMV; the transform descriptions reproduce harp_rot (Hadamard, RHT, HARP
 * butterfly with odd radices, Kronecker, GSR) in both directions; the attention and RoPE twins
 * agree with the model's CPU kernels; QTIP trellis codes decode exactly (all 65 536 states of every
 * code; packed tiles of every K and code against harp_tmat_dequant_rows; the GEMV twin against
 * harp_tmat_gemv_ref); bad planes are rejected with one error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cuda/dec_synth.h"
#include "harp/qtensor.h"
#include "cuda/dec_qtip.h"
#include "cuda/decode.h"
#include "harp/qkernels.h"
#include "harp/rotate.h"
#include "model/kernels.h"
#include "quant/e8p.h"
#include "quant/trellis.h"
#include "rotate/rot_internal.h" /* butterfly blocks, Kronecker factors, GSR permutation */
#include "test_util.h"

static void test_e8p_words(void) {
    const uint32_t *tab = dec_e8p_table();
    harp_rng rng;
    harp_rng_seed(&rng, 1);
    int bad = 0;
    for (int slot = 0; slot < 4; slot++)
        for (uint32_t c = 0; c < 65536; c++) {
            uint16_t codes[4];
            for (int i = 0; i < 4; i++) codes[i] = (uint16_t)harp_rng_u64(&rng);
            codes[slot] = (uint16_t)c;
            const uint64_t w = dl_e8p_pack_word(codes);
            uint32_t out[16];
            dl_e8p_word((uint32_t)w, (uint32_t)(w >> 32), tab, out);
            for (int i = 0; i < 4; i++) {
                float ref[8];
                e8p_decode(codes[i], ref);
                for (int v = 0; v < 8; v++) {
                    const uint32_t pair = out[4 * i + v / 2];
                    const float h = harp_f16_to_f32((uint16_t)((v & 1) ? pair >> 16 : pair & 0xFFFFu)) - DL_E8P_BIAS;
                    bad += h != ref[v];
                }
            }
        }
    CHECK_MSG(bad == 0, "E8P word decode: %d values differ from e8p_decode", bad);
}

/* The kernels' state → fp16 helpers against the format's code functions, every state. */
static void test_qtip_codes(void) {
    uint16_t tlut[2 * HARP_HYB_N];
    uint32_t tab[DL_HYB_ROWS];
    harp_rng rng;
    harp_rng_seed(&rng, 3);
    for (int i = 0; i < 2 * HARP_HYB_N; i++) tlut[i] = harp_f32_to_f16((float)harp_rng_normal(&rng));
    dec_qtip_tab(tlut, tab);
    int bad[3] = {0, 0, 0};
    for (uint32_t s = 0; s < 65536; s++) {
        const uint32_t s1 = s ^ 0x5A5Au;
        const uint32_t p1 = dl_f16x2(dl_1mad_f32(s), dl_1mad_f32(s1));
        bad[0] += harp_f16_to_f32((uint16_t)p1) != harp_tcode_1mad(s) || harp_f16_to_f32((uint16_t)(p1 >> 16)) != harp_tcode_1mad(s1);
        const uint32_t r0 = dl_3inst_r(s), r1 = dl_3inst_r(s1);
        const uint32_t p3 = dl_hadd2(dl_prmt(r0, r1, 0x5410u), dl_prmt(r0, r1, 0x7632u));
        bad[1] += harp_f16_to_f32((uint16_t)p3) != harp_tcode_3inst(s) || harp_f16_to_f32((uint16_t)(p3 >> 16)) != harp_tcode_3inst(s1);
        float hv[2];
        harp_tcode_hyb(tlut, s, hv);
        const uint32_t h = s * s + s, ph = tab[(h >> 6) & (DL_HYB_ROWS - 1)] ^ (h & 0x8000u);
        bad[2] += harp_f16_to_f32((uint16_t)ph) != hv[0] || harp_f16_to_f32((uint16_t)(ph >> 16)) != hv[1];
    }
    CHECK_MSG(!bad[0] && !bad[1] && !bad[2], "QTIP state values: 1mad %d, 3inst %d, hyb %d of 65536 states differ", bad[0],
              bad[1], bad[2]);
}

static const int k_qtip_types[] = {DL_QTIP2_1MAD, DL_QTIP2_3INST, DL_QTIP2_HYB, DL_QTIP3_1MAD, DL_QTIP3_3INST,
                                   DL_QTIP3_HYB,  DL_QTIP4_1MAD,  DL_QTIP4_3INST, DL_QTIP4_HYB};
enum { N_QTIP_TYPES = sizeof k_qtip_types / sizeof k_qtip_types[0] };

/* QTIP extras for test_packed_values: the stored values are harp_tmat_dequant_rows' exactly, and the
 * packed planes hold K bits per weight (+ the HYB table). */
static void check_qtip_packed(const dec_synth *sy, const dec_weights *w) {
    const int qt = sy->q.qtype, m = sy->q.m, n = sy->q.n;
    harp_tmat tm;
    dec_qtip_tmat(&sy->q, &tm);
    CHECK_OK(harp_tmat_check(&tm, "test"));
    float *ref = malloc(sizeof(float) * (size_t)m * (size_t)n);
    harp_tmat_dequant_rows(&tm, 0, m, ref, (size_t)n);
    int bad = 0;
    for (int r = 0; r < m; r++)
        for (int c = 0; c < n; c++) bad += dec_packed_value(w, NULL, r, c) != ref[(size_t)r * n + c];
    CHECK_MSG(!bad, "qtip type %d %dx%d: %d values differ from harp_tmat_dequant_rows", qt, m, n, bad);
    CHECK_MSG(dec_weights_bytes(w) * 8 == (size_t)w->nrt * w->nst * 2048 * (size_t)tm.K + (tm.code == HARP_TCODE_HYB ? 512 * 32 : 0),
              "qtip type %d: packed bytes %zu are not K bits per weight (+ table)", qt, dec_weights_bytes(w));
    free(ref);
}

/* The GEMV twin on QTIP planes against the format's reference GEMV (harp_tmat_gemv_ref). */
static void test_qtip_gemv_twin(void) {
    static const int shapes[][2] = {{17, 172}, {37, 300}, {48, 1024}};
    harp_rng rng;
    harp_rng_seed(&rng, 11);
    for (int t = 0; t < N_QTIP_TYPES; t++)
        for (int s = 0; s < 3; s++) {
            const int m = shapes[s][0], n = shapes[s][1], B = 3;
            dec_synth sy;
            CHECK_OK(dec_synth_planes(k_qtip_types[t], m, n, 50 + s, &sy));
            uint16_t *x16 = malloc(sizeof(uint16_t) * (size_t)B * n);
            float *xf = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)B * m), *yr = malloc(sizeof(float) * (size_t)m);
            for (int j = 0; j < B * n; j++) x16[j] = harp_f32_to_f16((float)harp_rng_normal(&rng));
            dec_gemv_ref(&sy.q, x16, n, B, y, m);
            harp_tmat tm;
            dec_qtip_tmat(&sy.q, &tm);
            double err = 0, mass = 0;
            for (int b = 0; b < B; b++) {
                for (int j = 0; j < n; j++) xf[j] = harp_f16_to_f32(x16[(size_t)b * n + j]);
                harp_tmat_gemv_ref(&tm, xf, yr);
                for (int r = 0; r < m; r++) err = fmax(err, fabs((double)y[(size_t)b * m + r] - yr[r])), mass = fmax(mass, fabs(yr[r]));
            }
            CHECK_MSG(err <= 1e-5 * mass, "qtip gemv twin vs harp_tmat_gemv_ref, type %d %dx%d: max err %.3g (max |y| %.3g)",
                      k_qtip_types[t], m, n, err, mass);
            free(x16), free(xf), free(y), free(yr);
            dec_synth_free(&sy);
        }
}

static void test_packed_values(void) {
    static const int shapes[][2] = {{1, 8}, {17, 13}, {33, 172}, {16, 128}, {40, 300}, {5, 1536}, {16, 16}};
    static const int types[] = {HARP_QTYPE_F16, HARP_QTYPE_INT2, HARP_QTYPE_INT3, HARP_QTYPE_INT4, HARP_QTYPE_INT8, HARP_QTYPE_E8P2,
                                HARP_QTYPE_RVQ3, HARP_QTYPE_RVQ4, DL_QTIP2_1MAD, DL_QTIP2_3INST, DL_QTIP2_HYB, DL_QTIP3_1MAD,
                                DL_QTIP3_3INST, DL_QTIP3_HYB, DL_QTIP4_1MAD, DL_QTIP4_3INST, DL_QTIP4_HYB, HARP_QTYPE_LDP2};
    const uint32_t *tab = dec_e8p_table();
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int m = shapes[s][0], n = shapes[s][1];
            dec_synth sy;
            dec_weights w;
            CHECK_OK(dec_synth_planes(types[t], m, n, 100 + s, &sy));
            CHECK_OK(dec_pack(&sy.q, &w));
            int bad = 0, padbad = 0;
            for (int r = 0; r < m; r++)
                for (int c = 0; c < n; c++) bad += dec_packed_value(&w, tab, r, c) != dec_qplanes_value(&sy.q, r, c);
            /* lattice padding is never read; QTIP padding (zero streams) decodes to finite values that
               meet zero activations */
            const int qtip = dl_qtip_bits(types[t]) != 0;
            if ((types[t] != HARP_QTYPE_E8P2 && types[t] != HARP_QTYPE_RVQ3 && types[t] != HARP_QTYPE_RVQ4) || qtip)
                for (int r = 0; r < 16 * w.nrt; r++)
                    for (int c = 0; c < 128 * w.nst; c++)
                        if (r >= m || c >= n) {
                            const float v = dec_packed_value(&w, tab, r, c);
                            padbad += qtip ? !isfinite(v) : v != 0.0f;
                        }
            if (qtip) check_qtip_packed(&sy, &w);
            CHECK_MSG(bad == 0 && padbad == 0, "qtype %d %dx%d: %d values differ, %d padding values nonzero (QTIP: not finite)", types[t], m, n, bad,
                      padbad);
            dec_weights_free(&w);
            dec_synth_free(&sy);
        }
}

/* A lattice qtensor viewing the synthetic planes (no copies). */
static harp_status view_qtensor(const dec_qplanes *q, harp_qtype type, harp_qtensor *w) {
    HARP_TRY(harp_qtensor_init(w, type, q->m, q->n, 0));
    const size_t nc = (size_t)(q->n + 7) / 8, rows = (size_t)q->m;
    int p = 0;
    w->planes[p].data = q->codes, w->planes[p++].nbytes = rows * nc * 2;
    if (type != HARP_QTYPE_E8P2)
        w->planes[p].data = q->codes2, w->planes[p++].nbytes = rows * nc * (type == HARP_QTYPE_RVQ3 ? 1 : 2);
    w->planes[p].data = q->wscale, w->planes[p].nbytes = sizeof q->wscale;
    return harp_qtensor_derive(w);
}

static void test_gemv_twin(void) {
    static const int types[] = {HARP_QTYPE_E8P2, HARP_QTYPE_RVQ3, HARP_QTYPE_RVQ4};
    static const harp_qtype qtypes[] = {HARP_QTYPE_E8P2, HARP_QTYPE_RVQ3, HARP_QTYPE_RVQ4};
    harp_rng rng;
    harp_rng_seed(&rng, 5);
    for (int t = 0; t < 3; t++) {
        const int m = 37, n = 300;
        dec_synth sy;
        CHECK_OK(dec_synth_planes(types[t], m, n, 7, &sy));
        harp_qtensor qw;
        CHECK_OK(view_qtensor(&sy.q, qtypes[t], &qw));
        uint16_t x16[300];
        float xf[300], y[37], yr[37];
        for (int j = 0; j < n; j++) {
            x16[j] = harp_f32_to_f16((float)harp_rng_normal(&rng));
            xf[j] = harp_f16_to_f32(x16[j]);
        }
        dec_gemv_ref(&sy.q, x16, n, 1, y, m);
        CHECK_OK(harp_qtensor_apply_ref(&qw, xf, 1, yr));
        double err = 0, mass = 0;
        for (int r = 0; r < m; r++) err = fmax(err, fabs((double)y[r] - yr[r])), mass = fmax(mass, fabs(yr[r]));
        CHECK_MSG(err <= 1e-5 * mass, "gemv twin vs harp_qtensor_apply_ref, qtype %d: max err %.3g (max |y| %.3g)",
                  types[t], err, mass);
        dec_synth_free(&sy);
    }
}

/* dec_xform (with the rotation's own signs as pre / post) vs harp_rot_apply_ref_f64 on random rows. */
static void check_xform(const harp_rot *r, const dec_xform *xf, const int8_t *signs_in, const int8_t *signs_out,
                        int transpose, double tol, const char *what) {
    const int64_t n = harp_rot_dim(r);
    harp_rng rng;
    harp_rng_seed(&rng, (uint64_t)n * 3 + (uint64_t)transpose);
    double *x = malloc(sizeof(double) * (size_t)n * 4);
    double *ref = x + n, *tmp = x + 2 * n;
    for (int64_t i = 0; i < n; i++) x[i] = ref[i] = harp_rng_normal(&rng);
    CHECK_OK(harp_rot_apply_ref_f64(r, ref, 1, n, transpose));
    if (signs_in)
        for (int64_t i = 0; i < n; i++) x[i] *= signs_in[i];
    dec_xform_apply_ref(xf, x, tmp);
    if (signs_out)
        for (int64_t i = 0; i < n; i++) x[i] *= signs_out[i];
    double err = 0;
    for (int64_t i = 0; i < n; i++) err = fmax(err, fabs(x[i] - ref[i]));
    CHECK_MSG(err <= tol, "%s n=%lld transpose=%d: max err %.3g", what, (long long)n, transpose, err);
    free(x);
}

static void test_transforms(void) {
    static const int64_t had_n[] = {48, 172, 1536, 4864, 11008, 12288, 64};
    for (size_t i = 0; i < sizeof had_n / sizeof had_n[0]; i++)
        for (int tr = 0; tr < 2; tr++) {
            harp_rot *r = NULL;
            dec_xform xf;
            CHECK_OK(harp_rot_create(HARP_ROT_RHT, had_n[i], NULL, 11, &r));
            CHECK_OK(dec_xform_hadamard(had_n[i], tr, &xf));
            check_xform(r, &xf, tr ? NULL : r->signs, tr ? r->signs : NULL, tr, 1e-12, "rht");
            dec_xform_free(&xf);
            harp_rot_destroy(r);
        }
    static const int64_t bf_n[] = {172, 4864, 1536, 4096, 96};
    for (size_t i = 0; i < sizeof bf_n / sizeof bf_n[0]; i++) {
        harp_rot_params p;
        harp_rot_params_default(&p);
        p.theta_init_scale = 0.3;
        if (bf_n[i] == 96) p.n_passes = 2;
        harp_rot *r = NULL;
        CHECK_OK(harp_rot_create(HARP_ROT_BUTTERFLY, bf_n[i], &p, 3, &r));
        const int *rad = NULL;
        const int T = harp_rot_butterfly_stages(r, &rad), P = harp_rot_butterfly_passes(r);
        for (int tr = 0; tr < 2; tr++) {
            dec_xform xf;
            CHECK_OK(dec_xform_butterfly(bf_n[i], P, T, rad, (const float *const *)r->kf_can, tr, &xf));
            check_xform(r, &xf, NULL, NULL, tr, 2e-5, "butterfly");
            dec_xform_free(&xf);
        }
        harp_rot_destroy(r);
    }
    static const int64_t kr_n[] = {96, 172, 1536};
    for (size_t i = 0; i < sizeof kr_n / sizeof kr_n[0]; i++) {
        harp_rot *r = NULL;
        CHECK_OK(harp_rot_create(HARP_ROT_KRON, kr_n[i], NULL, 4, &r));
        for (int tr = 0; tr < 2; tr++) {
            dec_xform xf;
            CHECK_OK(dec_xform_kron(r->kron_p1, r->kron_p2, r->kron_a, r->kron_b, r->kron_pin, r->kron_pout, tr, &xf));
            check_xform(r, &xf, NULL, NULL, tr, 2e-5, "kron");
            dec_xform_free(&xf);
        }
        harp_rot_destroy(r);
    }
    for (int tr = 0; tr < 2; tr++) {
        harp_rot_params p;
        harp_rot_params_default(&p);
        p.gsr_signs = 1;
        harp_rot *r = NULL;
        CHECK_OK(harp_rot_create(HARP_ROT_GSR, 1024, &p, 9, &r));
        dec_xform xf;
        CHECK_OK(dec_xform_gsr(1024, r->group, r->walsh_perm, tr, &xf));
        check_xform(r, &xf, tr ? NULL : r->signs, tr ? r->signs : NULL, tr, 1e-12, "gsr");
        dec_xform_free(&xf);
        harp_rot_destroy(r);
    }
}

/* dec_xform_fwht (the seam kernel's eligibility): Hadamard transforms of n = 2^k are c·H_n with
 * c = 1/√n, checked against the reference application on a basis vector; every other form is not. */
static void test_fwht_detect(void) {
    static const int64_t pow2[] = {2, 64, 1024, 4096, 8192};
    for (size_t i = 0; i < sizeof pow2 / sizeof pow2[0]; i++)
        for (int tr = 0; tr < 2; tr++) {
            dec_xform xf;
            CHECK_OK(dec_xform_hadamard(pow2[i], tr, &xf));
            double c = 0;
            const int lg = dec_xform_fwht(&xf, &c);
            int want = 0;
            while (((int64_t)1 << want) < pow2[i]) want++;
            /* column 5 (or 1) of the transform is c·(−1)^popcount(i & 5) */
            const int64_t n = pow2[i], col = n > 5 ? 5 : 1;
            double *x = calloc((size_t)n, sizeof *x), *tmp = calloc(2 * (size_t)n, sizeof *tmp);
            x[col] = 1.0;
            dec_xform_apply_ref(&xf, x, tmp);
            int bad = 0;
            for (int64_t e = 0; e < n; e++) bad += fabs(x[e] - ((__builtin_popcountll((uint64_t)(e & col)) & 1) ? -c : c)) > 1e-12;
            CHECK_MSG(lg == want && fabs(c - 1.0 / sqrt((double)n)) < 1e-15 && !bad, "fwht n=%lld tr=%d: log2 %d (want %d), c %.17g, "
                      "%d entries off c·H_n", (long long)n, tr, lg, want, c, bad);
            free(x), free(tmp);
            /* one entry of one stage flipped: no longer Sylvester */
            float *m0 = (float *)xf.st[0].mat;
            m0[xf.st[0].b + 1] = -m0[xf.st[0].b + 1];
            CHECK_MSG(dec_xform_fwht(&xf, NULL) == 0, "fwht n=%lld: a flipped entry still detected", (long long)n);
            dec_xform_free(&xf);
        }
    static const int64_t other[] = {12288, 11008, 48};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        dec_xform xf;
        CHECK_OK(dec_xform_hadamard(other[i], 0, &xf));
        CHECK_MSG(dec_xform_fwht(&xf, NULL) == 0, "fwht: Hadamard n=%lld (a Had_K stage) detected", (long long)other[i]);
        dec_xform_free(&xf);
    }
    dec_xform xf;
    dec_xform_identity(4096, &xf);
    CHECK_MSG(dec_xform_fwht(&xf, NULL) == 0, "fwht: the identity detected");
    CHECK_OK(dec_synth_butterfly(4096, 3, 0, &xf));
    CHECK_MSG(dec_xform_fwht(&xf, NULL) == 0, "fwht: a learned butterfly detected");
    dec_xform_free(&xf);
    harp_rot *r = NULL;
    CHECK_OK(harp_rot_create(HARP_ROT_GSR, 1024, NULL, 9, &r));
    CHECK_OK(dec_xform_gsr(1024, r->group, r->walsh_perm, 0, &xf));
    CHECK_MSG(dec_xform_fwht(&xf, NULL) == 0, "fwht: GSR (a permutation) detected");
    dec_xform_free(&xf);
    harp_rot_destroy(r);
}

static void test_attention_twins(void) {
    const dec_attn_shape s = {.n_heads = 6, .n_kv = 2, .head_dim = 16, .max_ctx = 40, .window = 0};
    const int hd = 16, qd = 6 * hd, kvd = 2 * hd, B = 2, ctx = 40;
    harp_rng rng;
    harp_rng_seed(&rng, 21);
    float inv_freq[8], *qkv = malloc(sizeof(float) * (size_t)B * (qd + 2 * kvd));
    for (int i = 0; i < 8; i++) inv_freq[i] = powf(10000.0f, -(float)i / 8.0f);
    uint16_t *kc = calloc((size_t)B * ctx * kvd, 2), *vc = calloc((size_t)B * ctx * kvd, 2);
    float *q = malloc(sizeof(float) * B * qd), *out = malloc(sizeof(float) * B * qd), *ref = malloc(sizeof(float) * qd);
    float *kf = malloc(sizeof(float) * ctx * kvd), *vf = malloc(sizeof(float) * ctx * kvd);
    for (int il = 0; il < 2; il++) {
        const int32_t pos[2] = {ctx - 1, 13};
        for (int b = 0; b < B; b++)   /* fill every earlier position through the twin itself */
            for (int p = 0; p <= pos[b]; p++) {
                for (int i = 0; i < qd + 2 * kvd; i++) qkv[i] = (float)harp_rng_normal(&rng);
                const int32_t pp = p;
                dec_rope_kv_ref(&s, qkv, qd + 2 * kvd, 1, &pp, inv_freq, il,
                                q + (size_t)b * qd, kc + (size_t)b * ctx * kvd, vc + (size_t)b * ctx * kvd);
                float roped[6 * 16 + 2 * 16];
                memcpy(roped, qkv, sizeof roped);
                harp_rope(roped, 1, 6, hd, p, inv_freq, il ? HARP_ROPE_INTERLEAVED : HARP_ROPE_HALF);
                harp_rope(roped + qd, 1, 2, hd, p, inv_freq, il ? HARP_ROPE_INTERLEAVED : HARP_ROPE_HALF);
                double e = 0;
                for (int i = 0; i < qd; i++) e = fmax(e, fabs(roped[i] - q[(size_t)b * qd + i]));
                for (int i = 0; i < kvd; i++)
                    e = fmax(e, fabs(harp_f16_to_f32(harp_f32_to_f16(roped[qd + i])) -
                                     harp_f16_to_f32(kc[(size_t)b * ctx * kvd + (size_t)p * kvd + i])));
                CHECK_MSG(e == 0, "rope twin vs harp_rope: %.3g", e);
            }
        for (int window = 0; window <= 7; window += 7) {
            dec_attn_shape sw = s;
            sw.window = window;
            dec_attn_ref(&sw, q, kc, vc, B, pos, out);
            for (int b = 0; b < B; b++) {
                for (int i = 0; i < ctx * kvd; i++) {
                    kf[i] = harp_f16_to_f32(kc[(size_t)b * ctx * kvd + i]);
                    vf[i] = harp_f16_to_f32(vc[(size_t)b * ctx * kvd + i]);
                }
                harp_attention_ref(q + (size_t)b * qd, kf, vf, 1, pos[b], 6, 2, hd, window, ref);
                double e = 0;
                for (int i = 0; i < qd; i++) e = fmax(e, fabs(ref[i] - out[(size_t)b * qd + i]));
                CHECK_MSG(e <= 1e-6, "attention twin vs harp_attention_ref (window %d): %.3g", window, e);
            }
        }
    }
    free(qkv), free(kc), free(vc), free(q), free(out), free(ref), free(kf), free(vf);
}

static void test_bad_planes(void) {
    dec_synth sy;
    dec_weights w;
    CHECK_OK(dec_synth_planes(HARP_QTYPE_INT4, 4, 512, 1, &sy));
    sy.q.group_size = 64;
    CHECK(dec_pack(&sy.q, &w) == HARP_ERR_UNSUPPORTED);
    sy.q.group_size = 128;
    ((uint8_t *)sy.buf[2])[3] = 16;
    CHECK(dec_pack(&sy.q, &w) == HARP_ERR_FORMAT);
    dec_synth_free(&sy);
    CHECK_OK(dec_synth_planes(HARP_QTYPE_RVQ4, 4, 64, 1, &sy));
    sy.q.codes2 = NULL;
    CHECK(dec_pack(&sy.q, &w) == HARP_ERR_INVALID_ARG);
    dec_synth_free(&sy);
    CHECK_OK(dec_synth_planes(DL_QTIP2_HYB, 20, 40, 1, &sy));
    sy.q.ncodes -= 1;   /* a truncated stream */
    CHECK(dec_pack(&sy.q, &w) == HARP_ERR_FORMAT);
    sy.q.ncodes += 1;
    sy.q.tlut = NULL;
    CHECK(dec_pack(&sy.q, &w) == HARP_ERR_FORMAT);
    dec_synth_free(&sy);
}

int main(void) {
    harp_set_log_level(HARP_LOG_NONE);
    test_e8p_words();
    test_packed_values();
    test_gemv_twin();
    test_qtip_codes();
    test_qtip_gemv_twin();
    test_transforms();
    test_fwht_detect();
    test_attention_twins();
    test_bad_planes();
    return t_done();
}
