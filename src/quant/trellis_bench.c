/* Benchmark building blocks for the QTIP trellis (to be wired into `harp bench gemv` and
 * `harp bench quant`): the decode-GEMV against OpenBLAS sgemv of the same shape in the same run,
 * and the encoder (BlockLDLQ + two-pass tail-biting Viterbi) on one matrix. Results are returned,
 * never printed (the library does not print). */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "trellis_bench.h"
#include "trellis_kern.h"

/* Mean seconds per call of fn over windows of at least min_time; the best of `windows` windows
 * (other jobs on a shared machine only ever make a window slower). */
typedef void (*bench_call)(void *ctx, int copy);

static double time_calls(bench_call fn, void *ctx, int copies, double min_time, int windows) {
    double best = INFINITY;
    for (int c = 0; c < copies; c++) fn(ctx, c);   /* warm: pages touched, threads started */
    for (int w = 0; w < windows; w++) {
        int64_t calls = 0;
        const double t0 = harp_time_s();
        double t;
        do {
            fn(ctx, (int)(calls % copies));
            calls++;
        } while ((t = harp_time_s() - t0) < min_time);
        if (t / (double)calls < best) best = t / (double)calls;
    }
    return best;
}

typedef struct {
    harp_tmat w;
    const uint16_t *codes;
    size_t words;
    const float *W;
    int32_t m, n;
    const float *x;
    float *y;
} gemv_ctx;

static void call_trellis(void *p, int copy) {
    gemv_ctx *g = p;
    g->w.codes = g->codes + (size_t)copy * g->words;
    (void)harp_tmat_gemv(&g->w, g->x, g->y);
}

static void call_sgemv(void *p, int copy) {
    gemv_ctx *g = p;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, g->m, g->n, 1.0f, g->W + (size_t)copy * g->m * g->n, g->n, g->x, 1, 0.0f,
                g->y, 1);
}

static int copies_for(size_t bytes, size_t stream_bytes) {
    size_t c = stream_bytes > bytes ? (stream_bytes + bytes - 1) / bytes : 1;
    if (stream_bytes > 0 && c < 2) c = 2;
    return (int)c;
}

harp_status harp_trellis_bench_gemv(int32_t m, int32_t n, int K, harp_tcode code, size_t stream_bytes,
                                    double min_time_s, harp_trellis_gemv_bench *out) {
    memset(out, 0, sizeof *out);
    const size_t words = harp_tmat_code_words(m, n, K);
    if (!words || harp_tcode_v(code) == 0)
        return harp_err(HARP_ERR_INVALID_ARG, "trellis GEMV bench: %d × %d, K = %d, code %d", (int)m, (int)n, K, (int)code);
    const int cq = copies_for(words * 2, stream_bytes), cf = copies_for((size_t)m * n * 4, stream_bytes);
    uint16_t *codes = harp_aligned_alloc(words * 2 * (size_t)cq, "trellis bench codes");
    float *W = harp_aligned_alloc((size_t)m * n * 4 * (size_t)cf, "trellis bench fp32 weights");
    float *x = harp_aligned_alloc(sizeof(float) * (size_t)n, "trellis bench x");
    float *y = harp_aligned_alloc(sizeof(float) * (size_t)m, "trellis bench y");
    uint16_t tlut[2 * HARP_HYB_N];
    harp_status st = HARP_OK;
    if (!codes || !W || !x || !y) {
        st = HARP_ERR_OOM;
        goto done;
    }
    if (code == HARP_TCODE_HYB && (st = harp_hyb_table_build_ex(0, 1 << 16, 10, tlut)) != HARP_OK) goto done;
    harp_rng rng;
    harp_rng_seed(&rng, 1234);
    for (size_t i = 0; i < words; i++) codes[i] = (uint16_t)harp_rng_u64(&rng);   /* any stream is valid */
    for (int c = 1; c < cq; c++) memcpy(codes + (size_t)c * words, codes, words * 2);
    for (size_t i = 0; i < (size_t)m * n; i++) W[i] = (float)(0.02 * harp_rng_normal(&rng));
    for (int c = 1; c < cf; c++) memcpy(W + (size_t)c * m * n, W, (size_t)m * n * 4);
    for (int32_t i = 0; i < n; i++) x[i] = (float)harp_rng_normal(&rng);
    gemv_ctx g = {{m, n, K, code, 0.01f, codes, words, code == HARP_TCODE_HYB ? tlut : NULL}, codes, words, W, m, n, x, y};
    const int blas = openblas_get_num_threads();
    openblas_set_num_threads(harp_get_threads());
    out->ms_sgemv = 1e3 * time_calls(call_sgemv, &g, cf, min_time_s, 5);
    openblas_set_num_threads(blas);
    out->ms_trellis = 1e3 * time_calls(call_trellis, &g, cq, min_time_s, 5);
    out->m = m, out->n = n, out->K = K, out->code = code, out->threads = harp_get_threads();
    out->isa = harp_tisa_name(harp_trellis_isa());
    out->code_bytes = words * 2, out->copies_trellis = cq, out->copies_sgemv = cf;
    out->speedup = out->ms_sgemv / out->ms_trellis;
    out->gbps_trellis = (double)words * 2 / (out->ms_trellis * 1e6);
    out->gbps_sgemv = (double)m * n * 4 / (out->ms_sgemv * 1e6);
done:
    harp_free_aligned(codes), harp_free_aligned(W), harp_free_aligned(x), harp_free_aligned(y);
    return st;
}

/* A correlated SPD Hessian (n, n): XᵀX / N of N = 2n samples with a shared factor and a few
 * loud columns, like real activations. */
static harp_status random_hessian(harp_rng *rng, int32_t n, double *H) {
    const int32_t N = 2 * n;
    double *X = harp_xmalloc(sizeof(double) * (size_t)N * n, "trellis bench activations");
    if (!X) return HARP_ERR_OOM;
    for (int32_t s = 0; s < N; s++) {
        const double f = harp_rng_normal(rng);
        for (int32_t i = 0; i < n; i++)
            X[(size_t)s * n + i] = (i % 7 == 0 ? 4.0 : 1.0) * (harp_rng_normal(rng) + 1.5 * f * ((i & 1) ? 1 : -1));
    }
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, n, N, 1.0 / N, X, n, 0.0, H, n);
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = i + 1; j < n; j++) H[(size_t)i * n + j] = H[(size_t)j * n + i];
    harp_free(X);
    return HARP_OK;
}

/* CPU seconds of all threads of this process (wall time on a shared machine says little). */
static double process_cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

harp_status harp_trellis_bench_encode(int32_t m, int32_t n, int K, harp_tcode code, harp_trellis_encode_bench *out) {
    memset(out, 0, sizeof *out);
    if (m <= 0 || n <= 0 || harp_tcode_v(code) == 0)
        return harp_err(HARP_ERR_INVALID_ARG, "trellis encode bench: %d × %d, code %d", (int)m, (int)n, (int)code);
    float *W = harp_xmalloc(sizeof(float) * (size_t)m * n, "trellis bench weights");
    double *H = harp_xmalloc(sizeof(double) * (size_t)n * n, "trellis bench hessian");
    uint16_t tlut[2 * HARP_HYB_N];
    harp_trellis_linear q = {0};
    harp_status st = HARP_OK;
    if (!W || !H) {
        st = HARP_ERR_OOM;
        goto done;
    }
    harp_rng rng;
    harp_rng_seed(&rng, 99);
    for (size_t i = 0; i < (size_t)m * n; i++) W[i] = (float)(0.02 * harp_rng_normal(&rng));
    if ((st = random_hessian(&rng, n, H)) != HARP_OK) goto done;
    double t0 = harp_time_s();
    if (code == HARP_TCODE_HYB && (st = harp_hyb_table_build(0, tlut)) != HARP_OK) goto done;
    out->table_seconds = harp_time_s() - t0;
    const harp_trellis_params p = harp_trellis_default_params(K, code, tlut);
    const double c0 = process_cpu_s();
    if ((st = harp_trellis_quantize_linear(&p, m, n, W, H, "trellis bench", &q)) != HARP_OK) goto done;
    out->cpu_seconds = process_cpu_s() - c0;
    out->m = m, out->n = n, out->K = K, out->code = code, out->threads = harp_get_threads();
    out->isa = harp_tisa_name(harp_trellis_isa());
    out->seconds = q.seconds;
    out->tiles = (q.m_pad / 16) * (q.n_pad / 16);
    out->ms_per_tile_core = 1e3 * out->cpu_seconds / (double)out->tiles;
    out->proxy_loss = q.proxy_loss;
done:
    harp_trellis_linear_free(&q);
    harp_free(W), harp_free(H);
    return st;
}
