/* The CUDA Viterbi (src/cuda/trellis_viterbi.cu) against the CPU: for every format code × K
 * (1mad, 3inst, hyb × 2, 3, 4) the device's two-pass tail-biting states and cost must equal
 * harp_viterbi_tb's bit for bit — the reference twin (use_ref = 1) on 8 tiles, the SIMD kernel (itself
 * bit-identical to the reference, test_trellis_viterbi) on all 17: 12 Gaussian tiles at the
 * quantizer's scale, 2 tiles of exact codewords (values of a random tail-biting path), the zero tile
 * and a constant 0.25 tile, and a tile of one repeated code value (ties everywhere) — plus small
 * table trellises of awkward sizes (2^{L−KV} below a warp, odd S, V = 2). Tolerance: none (states
 * and the fp32 cost compared exactly). Prints tiles/s of the device (one batch) and of the CPU SIMD
 * kernel on one thread, on the same tiles. Skipped (77) without CUDA or a device; < 60 s on an H200. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "harp/cuda_eval.h"
#include "quant/trellis.h"
#include "quant/trellis_gpu.h"
#include "test_util.h"

#ifdef HARP_HAVE_CUDA
#define NT 17    /* tiles per format trellis */
#define NREF 8   /* of them compared with the reference twin too */

/* Compares count device results with the CPU search (use_ref) and reports the first mismatches. */
static int compare(const harp_tcb *cb, int count, const float *x, const uint32_t *gs, const float *gc, int use_ref,
                   const char *what) {
    harp_viterbi_ws *ws = harp_viterbi_ws_new(cb);
    uint32_t *cs = malloc(sizeof(uint32_t) * (size_t)cb->S);
    int bad = 0;
    for (int i = 0; i < count; i++) {
        const float c = harp_viterbi_tb(cb, x + (size_t)i * cb->S * cb->V, cs, ws, use_ref);
        int ndiff = 0;
        for (int t = 0; t < cb->S; t++) ndiff += cs[t] != gs[(size_t)i * cb->S + t];
        if (ndiff || memcmp(&c, &gc[i], sizeof c)) {
            if (bad++ < 3)
                printf("  %s tile %d: %d of %d states differ, cost cpu %.9g gpu %.9g\n", what, i, ndiff, cb->S, c, gc[i]);
        }
    }
    free(cs);
    harp_viterbi_ws_free(ws);
    CHECK_MSG(bad == 0, "%s: %d of %d tiles differ from the CPU %s", what, bad, count, use_ref ? "reference" : "SIMD kernel");
    return bad;
}

static void make_tiles(const harp_tcb *cb, harp_rng *rng, float *x) {
    const int S = cb->S, V = cb->V, T = S * V;
    const size_t N = (size_t)1 << cb->L;
    const float sd = (float)(0.9 * cb->rms);
    for (int i = 0; i < NT; i++) {
        float *xi = x + (size_t)i * T;
        if (i == 0 || i == 1) {   /* exact codewords of a random tail-biting path */
            uint16_t words[64];
            uint32_t st[HARP_TRELLIS_T];
            for (int w = 0; w < harp_tcb_words(cb); w++) words[w] = (uint16_t)harp_rng_u64(rng);
            harp_trellis_unpack(cb, words, st);
            for (int t = 0; t < S; t++)
                for (int d = 0; d < V; d++) xi[t * V + d] = cb->val[(size_t)d * N + st[t]];
        } else if (i == 2 || i == 3) {   /* constant tiles */
            for (int p = 0; p < T; p++) xi[p] = i == 2 ? 0.0f : 0.25f;
        } else if (i == 4) {   /* one repeated code value: equal costs along many paths */
            for (int p = 0; p < T; p++) xi[p] = cb->val[12345 % N];
        } else {
            for (int p = 0; p < T; p++) xi[p] = sd * (float)harp_rng_normal(rng);
        }
    }
}

static void test_format(harp_tcode code, int K, const uint16_t *tlut, harp_rng *rng) {
    harp_tcb cb;
    CHECK_OK(harp_tcb_init(&cb, code, K, tlut, "format trellis"));
    char what[64];
    snprintf(what, sizeof what, "%s K=%d", harp_tcode_name(code), K);
    float *x = malloc(sizeof(float) * NT * HARP_TRELLIS_T), *gc = malloc(sizeof(float) * NT);
    uint32_t *gs = malloc(sizeof(uint32_t) * NT * (size_t)cb.S);
    make_tiles(&cb, rng, x);
    harp_tvit_gpu *g = NULL;
    CHECK_OK(harp_tvit_gpu_create(&cb, 5, what, &g));   /* batch 5: several launch sequences */
    if (g) {
        CHECK(harp_tvit_gpu_batch(g) == 5);
        CHECK_OK(harp_tvit_gpu_run(g, NT, x, gs, gc));
        const int b1 = compare(&cb, NREF, x, gs, gc, 1, what), b2 = compare(&cb, NT, x, gs, gc, 0, what);
        printf("%-10s %d tiles vs the reference, %d vs the SIMD kernel: %s (states and cost exact)\n", what, NREF, NT,
               b1 || b2 ? "MISMATCH" : "identical");
    }
    harp_tvit_gpu_destroy(g);
    free(x), free(gc), free(gs);
    harp_tcb_free(&cb);
}

/* Small table trellises: groups below a warp, odd S, V = 2. */
static void test_table(int L, int K, int V, int S, harp_rng *rng) {
    const int N = 1 << L, count = 40;
    float *val = malloc(sizeof(float) * (size_t)(V * N)), *x = malloc(sizeof(float) * (size_t)(count * S * V));
    for (int k = 0; k < V * N; k++) val[k] = (float)harp_rng_normal(rng);
    for (int k = 0; k < count * S * V; k++) x[k] = k < S * V ? 0.0f : (float)harp_rng_normal(rng);
    harp_tcb cb;
    CHECK_OK(harp_tcb_init_table(&cb, L, K, V, S, val));
    char what[64];
    snprintf(what, sizeof what, "table L=%d K=%d V=%d S=%d", L, K, V, S);
    uint32_t *gs = malloc(sizeof(uint32_t) * (size_t)(count * S));
    float gc[40];
    harp_tvit_gpu *g = NULL;
    CHECK_OK(harp_tvit_gpu_create(&cb, count, what, &g));
    if (g && harp_tvit_gpu_run(g, count, x, gs, gc) == HARP_OK)
        printf("%s: %s\n", what, compare(&cb, count, x, gs, gc, 1, what) ? "MISMATCH" : "identical to the reference");
    harp_tvit_gpu_destroy(g);
    harp_tcb_free(&cb);
    free(val), free(x), free(gs);
}

/* tiles/s: one device batch of n Gaussian tiles (after a warm-up) and the CPU SIMD kernel, one
 * thread, on the first 8 of them (also compared). */
static void timing(harp_tcode code, const uint16_t *tlut, harp_rng *rng) {
    harp_tcb cb;
    CHECK_OK(harp_tcb_init(&cb, code, 2, tlut, "timing"));
    const int n = 2048, ncpu = 8;
    float *x = malloc(sizeof(float) * (size_t)n * HARP_TRELLIS_T), *gc = malloc(sizeof(float) * n);
    uint32_t *gs = malloc(sizeof(uint32_t) * (size_t)n * (size_t)cb.S);
    for (size_t k = 0; k < (size_t)n * HARP_TRELLIS_T; k++) x[k] = (float)(0.9 * cb.rms * harp_rng_normal(rng));
    harp_tvit_gpu *g = NULL;
    CHECK_OK(harp_tvit_gpu_create(&cb, n, "timing", &g));
    if (g) {
        CHECK_OK(harp_tvit_gpu_run(g, 64, x, gs, gc));   /* warm-up */
        const double t0 = harp_time_s();
        CHECK_OK(harp_tvit_gpu_run(g, n, x, gs, gc));
        const double tg = harp_time_s() - t0;
        harp_viterbi_ws *ws = harp_viterbi_ws_new(&cb);
        uint32_t cs[HARP_TRELLIS_T];
        const double t1 = harp_time_s();
        for (int i = 0; i < ncpu; i++) harp_viterbi_tb(&cb, x + (size_t)i * HARP_TRELLIS_T, cs, ws, 0);
        const double tc = harp_time_s() - t1;
        harp_viterbi_ws_free(ws);
        compare(&cb, ncpu, x, gs, gc, 0, "timing");
        printf("timing %s K=2 (two-pass tail-biting, 256 weights a tile): GPU %.0f tiles/s (%d tiles, batch %lld), "
               "CPU %s 1 thread %.1f tiles/s (%d tiles): %.0fx\n", harp_tcode_name(code), n / tg, n,
               (long long)harp_tvit_gpu_batch(g), harp_tisa_name(harp_trellis_isa()), ncpu / tc, ncpu,
               (n / tg) / (ncpu / tc));
    }
    harp_tvit_gpu_destroy(g);
    free(x), free(gc), free(gs);
    harp_tcb_free(&cb);
}
#endif

int main(void) {
    T_REQUIRE_CUDA();
#ifdef HARP_HAVE_CUDA
    uint16_t tlut[2 * HARP_HYB_N];
    CHECK_OK(harp_hyb_table_shared(0, tlut));
    harp_rng rng;
    harp_rng_seed(&rng, 2026);
    for (int K = 2; K <= 4; K++) {
        test_format(HARP_TCODE_1MAD, K, NULL, &rng);
        test_format(HARP_TCODE_3INST, K, NULL, &rng);
        test_format(HARP_TCODE_HYB, K, tlut, &rng);
    }
    test_table(8, 2, 1, 16, &rng);
    test_table(6, 3, 1, 11, &rng);   /* 8 groups: a quarter of a warp */
    test_table(10, 2, 2, 13, &rng);
    /* best rows of 2^15 floats do not fit: refused, not run */
    float *v = calloc((size_t)1 << 16, sizeof(float));
    harp_tcb big;
    CHECK_OK(harp_tcb_init_table(&big, 16, 1, 1, 256, v));
    harp_tvit_gpu *g = NULL;
    CHECK(harp_tvit_gpu_create(&big, 1, "KV=1", &g) == HARP_ERR_UNSUPPORTED && g == NULL);
    harp_tcb_free(&big), free(v);
    timing(HARP_TCODE_1MAD, NULL, &rng);
    timing(HARP_TCODE_3INST, NULL, &rng);
    timing(HARP_TCODE_HYB, tlut, &rng);
#endif
    return t_done();
}
