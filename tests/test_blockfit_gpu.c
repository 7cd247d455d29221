/* The fp64 decoder block on the GPU (quant/blockfit_gpu.h, src/cuda/blockfit_cuda.cu) against the CPU
 * block (quant/blockfit.h, whose backward is checked against central finite differences in
 * test_blockfit_grad): on a block of awkward sizes (d 48, 6 query heads over 2 kv heads, head dim 8,
 * hidden 80, T 13, 3 sequences) with both RoPE layouts, plain, with the W/A/KV slots (online Hadamards at
 * every linear input and R3, 4-bit activations and K/V: the live quantizers) and as the surrogate with
 * the quantizers' errors frozen:
 *   forward y, and from a random dL/dy the input gradient and every weight's (norms included), within
 *   1e-10 of the largest entry (both fp64, other summation order); a rerun bit-identical;
 *   the loss entry point (L = inv_norm·‖y − Y‖² and its weight gradients) against the same on the CPU;
 * and LDP fit (b) (harp_ldpb_fit_wakv) with the block on the device against the CPU fit, 20 steps with
 * code reassignment and a held-out sequence, plain and with the W/A/KV slots: the entry loss within
 * 1e-12 and the best loss within 1e-9 relative, the same best step, codes and fp16 levels identical.
 * Skipped (77) without a CUDA build or a device (label gpu). */
#include <math.h>
#include <stdint.h>

#include "core/core.h"
#include "harp/cuda_eval.h"
#include "harp/rotate.h"
#include "quant/blockfit_gpu.h"
#include "quant/ldp.h"
#include "test_util.h"

#ifdef HARP_HAVE_CUDA
static uint64_t rng = 0x5851F42D4C957F2Dull;
static double urand(void) { /* uniform in (−1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 4503599627370496.0 - 1.0;
}

static double inv[4];

static double max_abs(const double *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

/* max |a − b| / max |b| (NaN-safe: a NaN gives infinity). */
static double rel_max(const double *a, const double *b, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs(a[i] - b[i]);
        e = d > e || d != d ? (d != d ? INFINITY : d) : e;
    }
    const double s = max_abs(b, n);
    return e / (s > 0 ? s : 1);
}

static void random_block(const harp_blk_dims *dm, harp_blk_w *w) {
    CHECK_OK(harp_blk_w_alloc(dm, w));
    for (int j = 0; j < dm->d; j++) w->attn_norm[j] = 1.0 + 0.3 * urand(), w->ffn_norm[j] = 1.0 + 0.3 * urand();
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(dm, i, &m, &n);
        for (int64_t k = 0; k < m * n; k++) w->lin[i][k] = urand() * 1.5 / sqrt((double)n);
    }
}

static void weight_sizes(const harp_blk_dims *dm, size_t sz[HARP_BLK_NLIN]) {
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(dm, i, &m, &n);
        sz[i] = (size_t)(m * n);
    }
}

/* Forward and backward on both sides with slots wk (NULL: none); what = the line's name. */
static void check_block(const harp_blk_dims *dm, const harp_blk_wakv *wk, const char *what) {
    const size_t R = (size_t)dm->T * dm->nseq, len = R * dm->d;
    harp_blk_w w, gc, gg;
    random_block(dm, &w);
    CHECK_OK(harp_blk_w_alloc(dm, &gc));
    CHECK_OK(harp_blk_w_alloc(dm, &gg));
    double *x = malloc(len * sizeof *x), *G = malloc(len * sizeof *G), *Y = malloc(len * sizeof *Y);
    double *yg = malloc(len * sizeof *yg), *y2 = malloc(len * sizeof *y2), *dxc = malloc(len * sizeof *dxc), *dxg = malloc(len * sizeof *dxg);
    for (size_t i = 0; i < len; i++) x[i] = 2.0 * urand() * (i % 11 == 0 ? 4.0 : 1.0), G[i] = urand(), Y[i] = urand();
    harp_blk_cache c;
    CHECK_OK(harp_blk_cache_alloc_wakv(dm, wk, &c));
    CHECK_OK(harp_blk_forward(dm, &w, x, &c));
    CHECK_OK(harp_blk_backward(dm, &w, &c, G, dxc, &gc));
    harp_blk_gpu *g = NULL;
    CHECK_OK(harp_blk_gpu_create(dm, wk, x, Y, 0.37, &g));
    if (!g) return;
    CHECK_OK(harp_blk_gpu_forward(g, &w, yg));
    CHECK_OK(harp_blk_gpu_backward(g, G, dxg, &gg));
    CHECK_OK(harp_blk_gpu_forward(g, &w, y2));
    CHECK_MSG(!memcmp(yg, y2, len * sizeof *yg), "%s: forward rerun differs", what);
    double worst = rel_max(yg, c.y, len);
    CHECK_MSG(worst <= 1e-10, "%s: forward y differs from the CPU by %.3g of its largest entry", what, worst);
    const double ex = rel_max(dxg, dxc, len);
    CHECK_MSG(ex <= 1e-10, "%s: dL/dx differs from the CPU by %.3g", what, ex);
    worst = fmax(worst, ex);
    const double en = fmax(rel_max(gg.attn_norm, gc.attn_norm, (size_t)dm->d), rel_max(gg.ffn_norm, gc.ffn_norm, (size_t)dm->d));
    CHECK_MSG(en <= 1e-10, "%s: norm gradients differ from the CPU by %.3g", what, en);
    worst = fmax(worst, en);
    size_t sz[HARP_BLK_NLIN];
    weight_sizes(dm, sz);
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        const double e = rel_max(gg.lin[i], gc.lin[i], sz[i]);
        CHECK_MSG(e <= 1e-10, "%s: gradient of linear %d differs from the CPU by %.3g", what, i, e);
        worst = fmax(worst, e);
    }
    /* the loss entry point: L and its weight gradients (dL/dy = 2·0.37·(y − Y)) against the CPU */
    double L = 0, Lc = 0;
    for (size_t i = 0; i < len; i++) Lc += (c.y[i] - Y[i]) * (c.y[i] - Y[i]), G[i] = 2.0 * 0.37 * (c.y[i] - Y[i]);
    Lc *= 0.37;
    CHECK_OK(harp_blk_backward(dm, &w, &c, G, NULL, &gc));
    CHECK_OK(harp_blk_gpu_loss(g, &w, &L, &gg));
    double el = fabs(L - Lc) / Lc;
    for (int i = 0; i < HARP_BLK_NLIN; i++) el = fmax(el, rel_max(gg.lin[i], gc.lin[i], sz[i]));
    CHECK_MSG(el <= 1e-10, "%s: loss %.17g vs the CPU's %.17g, gradients off by up to %.3g", what, L, Lc, el);
    printf("%s: GPU vs CPU block, worst of y, dx and every weight gradient %.3g of the largest entry; loss %.3g (tol 1e-10)\n", what,
           worst, el);
    harp_blk_gpu_free(g);
    harp_blk_cache_free(&c);
    harp_blk_w_free(&w), harp_blk_w_free(&gc), harp_blk_w_free(&gg);
    free(x), free(G), free(Y), free(yg), free(y2), free(dxc), free(dxg);
}

/* Entry state of an LDP fit: per group of 12 columns, 4 evenly spaced levels between its min and max
 * (fp16), the nearest one's code. */
static void ldp_entry(const harp_blk_dims *dm, const harp_blk_w *w, harp_ldpb_lin lin[HARP_BLK_NLIN]) {
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(dm, i, &m, &n);
        const int64_t g = 12, ng = (n + g - 1) / g;
        lin[i].g = g, lin[i].scale = 1.0;
        lin[i].q = malloc((size_t)(m * n));
        lin[i].levels = malloc(sizeof(float) * 4 * (size_t)(m * ng));
        for (int64_t r = 0; r < m; r++)
            for (int64_t G = 0; G < ng; G++) {
                const int64_t c1 = (G + 1) * g < n ? (G + 1) * g : n;
                double lo = INFINITY, hi = -INFINITY;
                for (int64_t c = G * g; c < c1; c++) lo = fmin(lo, w->lin[i][r * n + c]), hi = fmax(hi, w->lin[i][r * n + c]);
                float *lv = lin[i].levels + 4 * (r * ng + G);
                for (int k = 0; k < 4; k++) lv[k] = harp_f16_to_f32(harp_f32_to_f16((float)(lo + (hi - lo) * k / 3.0)));
                for (int k = 1; k < 4; k++) lv[k] = fmaxf(lv[k], lv[k - 1]);
                for (int64_t c = G * g; c < c1; c++) {
                    int best = 0;
                    for (int k = 1; k < 4; k++)
                        if (fabs(lv[k] - w->lin[i][r * n + c]) < fabs(lv[best] - w->lin[i][r * n + c])) best = k;
                    lin[i].q[r * n + c] = (uint8_t)best;
                }
            }
    }
}

static void ldp_free(harp_ldpb_lin lin[HARP_BLK_NLIN]) {
    for (int i = 0; i < HARP_BLK_NLIN; i++) free(lin[i].q), free(lin[i].levels);
}

/* LDP fit (b) with the block on the GPU against the CPU fit. */
static void check_fit(const harp_blk_dims *dm, const harp_blk_wakv *wk, const char *what) {
    const size_t len = (size_t)dm->T * dm->nseq * dm->d;
    harp_blk_w w, wt;
    random_block(dm, &w);
    random_block(dm, &wt);   /* the target block: w plus a perturbation */
    size_t sz[HARP_BLK_NLIN];
    weight_sizes(dm, sz);
    for (int i = 0; i < HARP_BLK_NLIN; i++)
        for (size_t k = 0; k < sz[i]; k++) wt.lin[i][k] = w.lin[i][k] + 0.05 * wt.lin[i][k];
    memcpy(wt.attn_norm, w.attn_norm, sizeof(double) * (size_t)dm->d), memcpy(wt.ffn_norm, w.ffn_norm, sizeof(double) * (size_t)dm->d);
    double *X = malloc(len * sizeof *X), *Y = malloc(len * sizeof *Y);
    for (size_t i = 0; i < len; i++) X[i] = urand() * (i % 7 == 0 ? 3.0 : 1.0);
    harp_blk_cache c;
    CHECK_OK(harp_blk_cache_alloc(dm, &c));
    CHECK_OK(harp_blk_forward(dm, &wt, X, &c));
    memcpy(Y, c.y, len * sizeof *Y);
    harp_blk_cache_free(&c);
    harp_ldpb_lin lc[HARP_BLK_NLIN], lg[HARP_BLK_NLIN];
    ldp_entry(dm, &w, lc), ldp_entry(dm, &w, lg);
    harp_ldpb_params p = {20, 0.01, 10, 1, NULL, NULL, NULL, 0};
    harp_ldpb_report rc, rg;
    CHECK_OK(harp_ldpb_fit_wakv(dm, wk, &w, X, Y, lc, &p, &rc));
    p.gpu = 1;
    CHECK_OK(harp_ldpb_fit_wakv(dm, wk, &w, X, Y, lg, &p, &rg));
    int diff = 0;
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(dm, i, &m, &n);
        diff += memcmp(lc[i].q, lg[i].q, (size_t)(m * n)) != 0;
        diff += memcmp(lc[i].levels, lg[i].levels, sizeof(float) * 4 * (size_t)(m * ((n + 11) / 12))) != 0;
    }
    printf("%s: ldp fit (b), CPU block %.9g -> %.9g (step %d), GPU block %.9g -> %.9g (step %d); %d of 14 code / level arrays differ\n",
           what, rc.loss0, rc.loss_best, rc.best_step, rg.loss0, rg.loss_best, rg.best_step, diff);
    CHECK_MSG(fabs(rg.loss0 - rc.loss0) <= 1e-12 * rc.loss0 && fabs(rg.loss_best - rc.loss_best) <= 1e-9 * rc.loss_best &&
                  rg.best_step == rc.best_step && !diff,
              "%s: the GPU fit differs from the CPU's", what);
    CHECK_MSG(rc.loss_best < rc.loss0, "%s: the fit did not lower the loss (%.6g -> %.6g)", what, rc.loss0, rc.loss_best);
    ldp_free(lc), ldp_free(lg);
    harp_blk_w_free(&w), harp_blk_w_free(&wt);
    free(X), free(Y);
}

static int gpu_run(void) {
    harp_set_log_level(HARP_LOG_NONE);
    for (int i = 0; i < 4; i++) inv[i] = pow(10000.0, -2.0 * i / 8.0);
    harp_rot *rot[5] = {NULL};
    CHECK_OK(harp_rot_create(HARP_ROT_HADAMARD, 48, NULL, 0, &rot[0]));   /* q|k|v, o (6·8), up|gate inputs: Had_12 ⊗ H_4 */
    CHECK_OK(harp_rot_create(HARP_ROT_RHT, 48, NULL, 3, &rot[1]));
    CHECK_OK(harp_rot_create(HARP_ROT_HADAMARD, 80, NULL, 0, &rot[2]));   /* down: Had_20 ⊗ H_4 */
    CHECK_OK(harp_rot_create(HARP_ROT_HADAMARD, 8, NULL, 0, &rot[3]));    /* R3 */
    const harp_aq_fmt act = {4, 0, 0, 0.9f, 0}, act_o = {4, 0, 8, 0.9f, 0}, kv = {4, 0, 8, 0.95f, 1};
    for (int layout = 0; layout < 2; layout++) {
        const harp_blk_dims dm = {48, 6, 2, 8, 80, 13, 3, layout ? HARP_ROPE_INTERLEAVED : HARP_ROPE_HALF, 1e-5, inv};
        const char *lname = layout ? "interleaved" : "half";
        char name[96];
        snprintf(name, sizeof name, "rope %s, plain", lname);
        check_block(&dm, NULL, name);
        harp_blk_wakv wk = {{rot[0], rot[1], rot[0], rot[2]}, rot[3], {&act, &act_o, &act, &act}, {&kv, &kv}, NULL};
        snprintf(name, sizeof name, "rope %s, W/A/KV slots (rotations, 4-bit activations and K/V)", lname);
        check_block(&dm, &wk, name);
        if (!layout) {   /* the surrogate: the quantizers add frozen errors */
            const size_t R = (size_t)dm.T * dm.nseq;
            const size_t width[HARP_BLK_NQS] = {48, 48, 48, 80, 16, 16};
            double *fr[HARP_BLK_NQS];
            for (int s = 0; s < HARP_BLK_NQS; s++) {
                fr[s] = malloc(R * width[s] * sizeof(double));
                for (size_t k = 0; k < R * width[s]; k++) fr[s][k] = 0.01 * urand();
            }
            harp_blk_wakv wf = wk;
            wf.frozen = (const double *const *)fr;
            check_block(&dm, &wf, "rope half, W/A/KV slots with frozen quantizer errors");
            for (int s = 0; s < HARP_BLK_NQS; s++) free(fr[s]);
        }
        if (!layout) {
            check_fit(&dm, NULL, "plain");
            check_fit(&dm, &wk, "W/A/KV slots");
        }
    }
    for (int i = 0; i < 5; i++) harp_rot_destroy(rot[i]);
    return t_done();
}
#endif

int main(void) {
    T_REQUIRE_CUDA();
#ifdef HARP_HAVE_CUDA
    return gpu_run();
#endif
}
