/* The batched Viterbi path of QTIP on the CPU (the GPU path's twin; trellis_gpu.h): BlockLDLQ run
 * block-column by block-column (HARP_TVIT_COLUMNS) gives the same codes and Ŵ̃ as the per-strip
 * recursion, for every code, with padding; batched feedback-free tiles (HARP's target) equal
 * harp_trellis_quantize_tiles, also for a partial refresh; the batched call with use_ref equals
 * harp_viterbi_tb per sequence; the device's back-pointer bit planes and its traceback (shared with
 * the kernel) reproduce the reference's path from its byte back-pointers, for groups below a warp,
 * at KV = 2 … 8; the device batch sizing and shared-memory rule; a no-CUDA build
 * refuses the GPU engine with HARP_ERR_NO_DEVICE. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "quant/trellis.h"
#include "quant/trellis_gpu.h"
#include "quant/trellis_kern.h"
#include "quant_testlib.h"
#include "test_util.h"

static void test_ldlq_columns(harp_tcode code, int K, const uint16_t *tlut) {
    const int m = 40, n = 36;   /* both padded to 48: 3 × 3 tiles */
    float *W;
    double *H;
    qt_problem(7 + (uint64_t)code * 3 + (uint64_t)K, m, n, 4 * n, &W, &H);
    harp_trellis_params p = harp_trellis_default_params(K, code, tlut);
    p.keep_w_hat = 1;
    harp_trellis_linear a, b;
    CHECK_OK(harp_trellis_quantize_linear(&p, m, n, W, H, "strips", &a));
    p.viterbi = HARP_TVIT_COLUMNS;
    CHECK_OK(harp_trellis_quantize_linear(&p, m, n, W, H, "columns", &b));
    const size_t nw = harp_tmat_code_words(m, n, K);
    CHECK_MSG(memcmp(a.codes, b.codes, nw * sizeof(uint16_t)) == 0, "%s K=%d: block-column codes differ from the strips'",
              harp_tcode_name(code), K);
    CHECK_MSG(memcmp(a.w_hat, b.w_hat, sizeof(float) * m * n) == 0, "%s K=%d: block-column Ŵ̃ differs",
              harp_tcode_name(code), K);
    CHECK(a.wscale == b.wscale && a.proxy_loss == b.proxy_loss);
    harp_trellis_linear_free(&a), harp_trellis_linear_free(&b);
    p.viterbi = 3;
    CHECK(harp_trellis_quantize_linear(&p, m, n, W, H, "bad engine", &a) == HARP_ERR_INVALID_ARG);
#ifndef HARP_HAVE_CUDA
    p.viterbi = HARP_TVIT_GPU;
    CHECK(harp_trellis_quantize_linear(&p, m, n, W, H, "no cuda", &a) == HARP_ERR_NO_DEVICE);
#endif
    free(W), free(H);
}

static void test_tiles_batched(const uint16_t *tlut) {
    harp_tcb cb;
    CHECK_OK(harp_tcb_init(&cb, HARP_TCODE_HYB, 2, tlut, "hyb2"));
    const int m = 20, n = 33;   /* 2 × 3 tiles, ragged */
    harp_rng rng;
    harp_rng_seed(&rng, 11);
    float *X = malloc(sizeof(float) * m * n), *R1 = calloc((size_t)(m * n), sizeof(float));
    float *R2 = calloc((size_t)(m * n), sizeof(float));
    for (int i = 0; i < m * n; i++) X[i] = (float)harp_rng_normal(&rng);
    const size_t nw = harp_tmat_code_words(m, n, 2);
    uint16_t *c1 = calloc(nw, sizeof(uint16_t)), *c2 = calloc(nw, sizeof(uint16_t));
    CHECK_OK(harp_trellis_quantize_tiles(&cb, m, n, X, 1, 0, c1, R1, "tiles"));
    CHECK_OK(harp_trellis_quantize_tiles_batched(&cb, NULL, m, n, X, 1, 0, c2, R2, "batched"));
    CHECK(memcmp(c1, c2, nw * sizeof(uint16_t)) == 0 && memcmp(R1, R2, sizeof(float) * m * n) == 0);
    /* a partial refresh touches only its tiles */
    for (int i = 0; i < m * n; i++) X[i] *= 0.5f;
    memcpy(c2, c1, nw * sizeof(uint16_t)), memcpy(R2, R1, sizeof(float) * m * n);
    CHECK_OK(harp_trellis_quantize_tiles(&cb, m, n, X, 4, 1, c1, R1, "part"));
    CHECK_OK(harp_trellis_quantize_tiles_batched(&cb, NULL, m, n, X, 4, 1, c2, R2, "part batched"));
    CHECK(memcmp(c1, c2, nw * sizeof(uint16_t)) == 0 && memcmp(R1, R2, sizeof(float) * m * n) == 0);
    CHECK(harp_trellis_quantize_tiles_batched(&cb, NULL, m, n, X, 2, 2, c2, NULL, "bad part") == HARP_ERR_INVALID_ARG);
    X[5] = NAN;
    CHECK(harp_trellis_quantize_tiles_batched(&cb, NULL, m, n, X, 1, 0, c2, NULL, "nan") == HARP_ERR_NUMERIC);
    free(X), free(R1), free(R2), free(c1), free(c2);
    harp_tcb_free(&cb);
}

/* harp_tvit_run(use_ref) against harp_viterbi_tb(use_ref) per sequence on a small table trellis. */
static void test_run_ref(void) {
    const int L = 8, K = 2, V = 1, S = 16, N = 1 << L, count = 5;
    float val[1 << 8];
    harp_rng rng;
    harp_rng_seed(&rng, 3);
    for (int s = 0; s < N; s++) val[s] = (float)harp_rng_normal(&rng);
    harp_tcb cb;
    CHECK_OK(harp_tcb_init_table(&cb, L, K, V, S, val));
    float x[5 * 16], cost[5];
    uint32_t st[5 * 16], one[16];
    for (int i = 0; i < count * S; i++) x[i] = (float)harp_rng_normal(&rng);
    CHECK_OK(harp_tvit_run(&cb, NULL, count, x, st, cost, 1, "run"));
    harp_viterbi_ws *ws = harp_viterbi_ws_new(&cb);
    for (int i = 0; i < count; i++) {
        const float c = harp_viterbi_tb(&cb, x + i * S, one, ws, 1);
        CHECK(c == cost[i] && memcmp(one, st + i * S, sizeof one) == 0);
    }
    harp_viterbi_ws_free(ws);
    harp_tcb_free(&cb);
}

/* The reference's byte back-pointers, repacked as the kernel's bit planes, traced by the kernel's
 * traceback: the reference's states (and s at the tail-biting overlap step). */
static void trace_check(const harp_tcb *cb, harp_rng *rng, const char *what) {
    const int S = cb->S, V = cb->V;
    const uint32_t G = ((uint32_t)1 << cb->L) >> cb->KV, nw = harp_tvit_bp_words(G, cb->KV);
    float *x = malloc(sizeof(float) * (size_t)(S * V));
    uint32_t *st = malloc(sizeof(uint32_t) * (size_t)S), *st2 = malloc(sizeof(uint32_t) * (size_t)S);
    uint32_t *planes = malloc(sizeof(uint32_t) * (size_t)S * nw);
    for (int i = 0; i < S * V; i++) x[i] = (float)harp_rng_normal(rng);
    harp_viterbi_ws *ws = harp_viterbi_ws_new(cb);
    harp_viterbi_ref(cb, x, HARP_TB_OPEN, st, ws);
    for (int t = 0; t < S; t++) harp_tvit_bp_pack(ws->bp + (size_t)t * G, G, cb->KV, planes + (size_t)t * nw);
    const uint32_t mid = harp_tvit_trace(planes, st[S - 1], cb->L, cb->KV, S, S - S / 2, NULL);
    harp_tvit_trace(planes, st[S - 1], cb->L, cb->KV, S, 0, st2);
    CHECK_MSG(memcmp(st, st2, sizeof(uint32_t) * (size_t)S) == 0 && mid == st[S - S / 2],
              "%s: the bit-plane traceback does not reproduce the reference's path", what);
    harp_viterbi_ws_free(ws);
    free(x), free(st), free(st2), free(planes);
}

static void test_trace(const uint16_t *tlut) {
    harp_rng rng;
    harp_rng_seed(&rng, 5);
    harp_tcb cb;
    CHECK_OK(harp_tcb_init(&cb, HARP_TCODE_1MAD, 2, NULL, "1mad2"));   /* KV = 2 */
    trace_check(&cb, &rng, "1mad K=2");
    harp_tcb_free(&cb);
    CHECK_OK(harp_tcb_init(&cb, HARP_TCODE_HYB, 3, tlut, "hyb3"));     /* KV = 6 */
    trace_check(&cb, &rng, "hyb K=3");
    harp_tcb_free(&cb);
    CHECK_OK(harp_tcb_init(&cb, HARP_TCODE_HYB, 4, tlut, "hyb4"));     /* KV = 8 */
    trace_check(&cb, &rng, "hyb K=4");
    harp_tcb_free(&cb);
    float val[64];
    for (int s = 0; s < 64; s++) val[s] = (float)harp_rng_normal(&rng);
    CHECK_OK(harp_tcb_init_table(&cb, 6, 3, 1, 11, val));               /* 8 groups, odd S */
    trace_check(&cb, &rng, "table L=6 K=3");
    harp_tcb_free(&cb);
}

static void test_plan(const uint16_t *tlut) {
    harp_tcb cb;
    CHECK_OK(harp_tcb_init(&cb, HARP_TCODE_1MAD, 2, NULL, "1mad2"));
    /* 256 steps × 2^14 groups × 2 bits of back-pointers + 256 floats + 256 states + 3 scalars */
    CHECK(harp_tvit_seq_bytes(&cb) == (size_t)256 * 16384 * 2 / 8 + 1024 + 1024 + 12);
    CHECK(harp_tvit_smem_bytes(&cb) == 2 * 4 * 16384 + 256 && harp_tvit_smem_bytes(&cb) <= HARP_TVIT_MAX_SMEM);
    harp_tcb_free(&cb);
    for (int K = 2; K <= 4; K++)
        for (int c = 0; c < 3; c++) {
            const harp_tcode code = c == 0 ? HARP_TCODE_1MAD : c == 1 ? HARP_TCODE_3INST : HARP_TCODE_HYB;
            CHECK_OK(harp_tcb_init(&cb, code, K, tlut, "fmt"));
            CHECK_MSG(harp_tvit_smem_bytes(&cb) <= HARP_TVIT_MAX_SMEM, "%s K=%d does not fit the device search",
                      harp_tcode_name(code), K);
            harp_tcb_free(&cb);
        }
    const size_t b = 1000;
    CHECK(harp_tvit_plan_batch(10 * b, b, 100) == 5);     /* half the free memory */
    CHECK(harp_tvit_plan_batch(10 * b, b, 3) == 3);       /* never more than wanted */
    CHECK(harp_tvit_plan_batch(b, b, 3) == 0);            /* not even one */
    CHECK(harp_tvit_plan_batch(10 * b, 0, 3) == 0 && harp_tvit_plan_batch(10 * b, b, 0) == 0);
    CHECK(harp_tvit_plan_batch((size_t)141 << 30, (size_t)256 << 14, 1 << 20) == 18048); /* 141 GiB free, 4 MiB a sequence */
}

int main(void) {
    uint16_t tlut[2 * HARP_HYB_N];
    CHECK_OK(harp_hyb_table_shared(0, tlut));
    test_plan(tlut);
    test_run_ref();
    test_trace(tlut);
    test_tiles_batched(tlut);
    test_ldlq_columns(HARP_TCODE_1MAD, 2, NULL);
    test_ldlq_columns(HARP_TCODE_3INST, 3, NULL);
    test_ldlq_columns(HARP_TCODE_HYB, 2, tlut);
    test_ldlq_columns(HARP_TCODE_HYB, 4, tlut);
    return t_done();
}
