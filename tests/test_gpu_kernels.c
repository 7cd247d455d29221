/* Each CUDA kernel of the GPU forward (src/cuda/forward_cuda.cu) against its CPU twin at awkward
 * sizes. Skipped (77) without -DHARP_CUDA=ON or without a device. Tolerances, all from the fact that
 * both sides compute in fp32 with the same formulas and only the summation order or the libm differs:
 *   rmsnorm   |Δ| ≤ 4 ulp of |ref| (the double sum of squares rounds to float identically or 1 ulp apart)
 *   rope      |Δ| ≤ 1e-6·(|a|+|b|) of the rotated pair (CUDA cosf/sinf are within 2 ulp)
 *   swiglu    |Δ| ≤ 1e-6·|ref| (CUDA expf within 2 ulp)
 *   attention |Δ| ≤ 1e-5, as the CPU sgemm attention against the same double reference
 *   score     NLL and KLD |Δ| ≤ 1e-9 (both double over the same fp32 logits), argmax exact. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "harp/cuda_eval.h"
#include "model/kernels.h"
#include "test_util.h"
#ifdef HARP_HAVE_CUDA
#include "cuda/gpu_net.h"
#endif

#ifdef HARP_HAVE_CUDA
static harp_rng rng;

static float *rnd(size_t n, float scale) {
    float *x = malloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++) x[i] = (float)harp_rng_normal(&rng) * scale;
    return x;
}

static void test_rmsnorm(int rows, int n) {
    float *x = rnd((size_t)rows * n, 3.0f), *w = rnd((size_t)n, 1.0f);
    float *y = rnd((size_t)rows * n, 1.0f), *r = malloc((size_t)rows * n * sizeof(float));
    CHECK_OK(harp_gpu_rmsnorm_host(x, w, rows, n, 1e-5f, y));
    harp_rmsnorm(x, w, rows, n, 1e-5f, r);
    int bad = 0;
    for (size_t i = 0; i < (size_t)rows * n; i++) bad += !(fabsf(y[i] - r[i]) <= 4 * FLT_EPSILON * fabsf(r[i]));
    CHECK_MSG(!bad, "rmsnorm %d x %d: %d values off", rows, n, bad);
    free(x), free(w), free(y), free(r);
}

static void test_rope(int n_windows, int ctx, int nh, int hd, harp_rope_layout layout) {
    int rows = n_windows * ctx, width = nh * hd;
    size_t total = (size_t)rows * width;
    float *x = rnd(total, 1.0f), *g = malloc(total * sizeof(float)), *r = malloc(total * sizeof(float));
    float *inv = malloc((size_t)hd / 2 * sizeof(float));
    for (int i = 0; i < hd / 2; i++) inv[i] = powf(10000.0f, -2.0f * i / hd);
    memcpy(g, x, total * sizeof(float));
    memcpy(r, x, total * sizeof(float));
    CHECK_OK(harp_gpu_rope_host(g, rows, ctx, nh, hd, inv, layout));
    for (int w = 0; w < n_windows; w++) harp_rope(r + (size_t)w * ctx * width, ctx, nh, hd, 0, inv, layout);
    int bad = 0, half = hd / 2;
    for (int row = 0; row < rows; row++)
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < half; i++) {
                size_t base = (size_t)row * width + (size_t)h * hd;
                size_t ia = base + (layout == HARP_ROPE_HALF ? (size_t)i : 2 * (size_t)i);
                size_t ib = base + (layout == HARP_ROPE_HALF ? (size_t)(i + half) : 2 * (size_t)i + 1);
                float tol = 1e-6f * (fabsf(x[ia]) + fabsf(x[ib]));
                bad += !(fabsf(g[ia] - r[ia]) <= tol) + !(fabsf(g[ib] - r[ib]) <= tol);
            }
    CHECK_MSG(!bad, "rope %d windows ctx %d heads %d hd %d layout %d: %d values off", n_windows, ctx, nh, hd, layout,
              bad);
    free(x), free(g), free(r), free(inv);
}

static void test_swiglu(int rows, int hid) {
    size_t n = (size_t)rows * hid;
    float *g = rnd(n, 4.0f), *u = rnd(n, 1.0f), *h = malloc(n * sizeof(float)), *r = malloc(n * sizeof(float));
    CHECK_OK(harp_gpu_swiglu_host(g, u, rows, hid, h));
    memcpy(r, g, n * sizeof(float));
    harp_swiglu(r, u, n);
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad += !(fabsf(h[i] - r[i]) <= 1e-6f * fabsf(r[i]));
    CHECK_MSG(!bad, "swiglu %d x %d: %d values off", rows, hid, bad);
    free(g), free(u), free(h), free(r);
}

static void test_attention(int n_windows, int ctx, int nh, int nkv, int hd, int window) {
    size_t R = (size_t)n_windows * ctx, qd = (size_t)nh * hd, kvd = (size_t)nkv * hd;
    float *q = rnd(R * qd, 1.0f), *k = rnd(R * kvd, 1.0f), *v = rnd(R * kvd, 1.0f);
    float *o = rnd(R * qd, 1.0f), *r = malloc(R * qd * sizeof(float));
    CHECK_OK(harp_gpu_attention_host(q, k, v, n_windows, ctx, nh, nkv, hd, window, o));
    for (int w = 0; w < n_windows; w++)
        harp_attention_ref(q + (size_t)w * ctx * qd, k + (size_t)w * ctx * kvd, v + (size_t)w * ctx * kvd, ctx, 0, nh,
                           nkv, hd, window, r + (size_t)w * ctx * qd);
    double worst = 0;
    for (size_t i = 0; i < R * qd; i++) {
        double d = fabs((double)o[i] - r[i]);
        worst = d > worst || d != d ? d : worst;
    }
    CHECK_MSG(worst <= 1e-5, "attention %d windows ctx %d heads %d/%d hd %d window %d: max |diff| %.3g", n_windows, ctx,
              nh, nkv, hd, window, worst);
    free(q), free(k), free(v), free(o), free(r);
}

/* The CPU protocol of src/eval/ppl.c for one row, and KL(ref || this) on fp32 logits. */
static void score_ref(const float *l, const float *lr, int V, int target, double *nll, double *kld, int *agree) {
    float mx = l[0];
    int am = 0;
    for (int j = 1; j < V; j++)
        if (l[j] > mx) mx = l[j], am = j;
    double s = 0;
    for (int j = 0; j < V; j++) s += exp((double)l[j] - mx);
    double lse = log(s) + mx;
    *nll = lse - l[target];
    if (!lr) return;
    float mr = lr[0];
    int ar = 0;
    for (int j = 1; j < V; j++)
        if (lr[j] > mr) mr = lr[j], ar = j;
    double sr = 0;
    for (int j = 0; j < V; j++) sr += exp((double)lr[j] - mr);
    double lser = log(sr) + mr, kl = 0;
    for (int j = 0; j < V; j++) {
        double lpb = lr[j] - lser, pb = exp(lpb);
        if (pb > 0) kl += pb * (lpb - (l[j] - lse));
    }
    *kld = kl;
    *agree = am == ar;
}

static void test_score(int n_windows, int ctx, int V) {
    size_t R = (size_t)n_windows * ctx, rows = (size_t)n_windows * (ctx - 1);
    float *l = rnd(R * V, 3.0f), *lr = rnd(R * V, 3.0f);
    /* Ties: row 0 has its maximum twice, so the lowest index must win on both sides. */
    l[5] = l[V - 2] = 40.0f;
    lr[V - 2] = 41.0f;
    for (size_t i = V; i < R * V; i += 7) lr[i] = l[i];   /* some agreement elsewhere */
    int32_t *tok = malloc(R * sizeof(int32_t));
    for (size_t i = 0; i < R; i++) tok[i] = (int32_t)(harp_rng_u64(&rng) % (uint64_t)V);
    double *nll = malloc(rows * sizeof(double)), *kld = malloc(rows * sizeof(double));
    int *agree = malloc(rows * sizeof(int));
    CHECK_OK(harp_gpu_score_host(l, lr, tok, n_windows, ctx, V, nll, kld, agree));
    int bad = 0;
    for (int w = 0; w < n_windows; w++)
        for (int i = 0; i < ctx - 1; i++) {
            size_t r = (size_t)w * ctx + i, k = (size_t)w * (ctx - 1) + i;
            double n0 = 0, k0 = 0;
            int a0 = 0;
            score_ref(l + r * V, lr + r * V, V, tok[r + 1], &n0, &k0, &a0);
            bad += !(fabs(nll[k] - n0) <= 1e-9) + !(fabs(kld[k] - k0) <= 1e-9) + (agree[k] != a0);
        }
    CHECK_MSG(!bad, "score %d windows ctx %d vocab %d: %d values off", n_windows, ctx, V, bad);
    /* Against itself: KL exactly 0 and full agreement. */
    CHECK_OK(harp_gpu_score_host(l, l, tok, n_windows, ctx, V, nll, kld, agree));
    int nz = 0;
    for (size_t k = 0; k < rows; k++) nz += kld[k] != 0.0 || agree[k] != 1;
    CHECK_MSG(!nz, "score against itself: %d rows with KL != 0 or disagreement", nz);
    free(l), free(lr), free(tok), free(nll), free(kld), free(agree);
}
#endif

int main(void) {
#ifndef HARP_HAVE_CUDA
    printf("SKIP: built without -DHARP_CUDA=ON\n");
    return 77;
#else
    if (!harp_cuda_available()) {
        printf("SKIP: %s\n", harp_last_error());
        return 77;
    }
    harp_rng_seed(&rng, 77);
    test_rmsnorm(1, 1);
    test_rmsnorm(7, 173);
    test_rmsnorm(3, 4099);
    test_rope(1, 1, 1, 2, HARP_ROPE_HALF);
    test_rope(3, 13, 3, 10, HARP_ROPE_HALF);
    test_rope(2, 37, 5, 6, HARP_ROPE_INTERLEAVED);
    test_rope(1, 1000, 2, 64, HARP_ROPE_HALF);
    test_rope(1, 1000, 2, 128, HARP_ROPE_INTERLEAVED);
    test_swiglu(1, 1);
    test_swiglu(5, 173);
    test_swiglu(33, 1537);
    test_attention(1, 2, 1, 1, 2, 0);
    test_attention(3, 37, 6, 2, 24, 0);
    test_attention(2, 129, 8, 4, 64, 0);
    test_attention(2, 300, 4, 1, 16, 7);
    test_score(1, 2, 3);
    test_score(2, 9, 1001);
    test_score(3, 17, 8192);
    return t_done();
#endif
}
