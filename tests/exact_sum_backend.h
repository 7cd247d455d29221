/* A reference for how sensitive a model's forward is to rounding: the CPU backend with every linear
 * summed in double over the group's effective fp32 weights (harp_lgroup_dense_t) instead of the fp32
 * SGEMM / GEMV -- the same products, computed more exactly. With activation or KV quantizers the
 * forward is a step function: a rounding-level change moves a code once a value sits near a boundary,
 * and from there on the logits differ by whole steps. exact_sum_noise measures that for a model, so that
 * a GPU-vs-CPU bound can say "no further from the CPU than an exactly summed forward is"
 * (test_gpu_packed), and test_model_wakv_exec checks the helper itself (unquantized: within 1e-5). */
#ifndef EXACT_SUM_BACKEND_H
#define EXACT_SUM_BACKEND_H
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctx_compare.h"
#include "harp/backend.h"
#include "model/backend.h"
#include "model/layer.h"
#include "model/model.h"
#include "test_util.h"

/* W_effᵀ of the groups met so far (the forward asks for each group many times). */
typedef struct es_cache {
    const harp_lgroup *g[256];
    float *wt[256], *bias[256];
    int n;
} es_cache;
static es_cache es_c;

static inline harp_status es_linear(harp_backend *b, harp_ws *ws, const harp_lgroup *g, const void *h, const float *X, int rows,
                             float *const *Y) {
    (void)b, (void)ws, (void)h;
    int i = 0;
    while (i < es_c.n && es_c.g[i] != g) i++;
    if (i == es_c.n) {
        if (i == 256) return HARP_ERR_INTERNAL;
        es_c.wt[i] = malloc(sizeof(float) * (size_t)g->in * g->out_total);
        es_c.bias[i] = malloc(sizeof(float) * (size_t)g->out_total);
        if (!es_c.wt[i] || !es_c.bias[i]) return HARP_ERR_OOM;
        HARP_TRY(harp_lgroup_dense_t(g, es_c.wt[i], es_c.bias[i]));
        es_c.g[i] = g, es_c.n++;
    }
    const float *wt = es_c.wt[i], *bias = es_c.bias[i];
    const int n = g->in, mt = g->out_total;
    for (int r = 0; r < rows; r++)
        for (int s = 0, col = 0; s < g->n_slices; col += g->out[s++])
            for (int j = 0; j < g->out[s]; j++) {
                double acc = bias[col + j];
                for (int k = 0; k < n; k++) acc += (double)wt[(size_t)k * mt + col + j] * X[(size_t)r * n + k];
                Y[s][(size_t)r * g->out[s] + j] = (float)acc;
            }
    return HARP_OK;
}

static inline void es_reset(void) {
    for (int i = 0; i < es_c.n; i++) free(es_c.wt[i]), free(es_c.bias[i]);
    memset(&es_c, 0, sizeof es_c);
}

/* Max relative L2 between the CPU's logits and the exactly summed forward's (its own KV-cache type on
 * both) over the span test_gpu_packed compares (ctx_compare: a 16-token prompt in one batch, then 64
 * decode steps both fed the CPU's greedy token). Measured on that span, not on another prompt: a step-
 * function forward parts where a value first sits on a code boundary, which depends on the tokens. The
 * model's weights on every backend are unloaded at the end (the model keeps a record per backend: this
 * one's must not outlive the call's use of it). */
static inline double exact_sum_noise(harp_model *m) {
    static harp_backend_i vt;
    static harp_backend eb;   /* static, refs −1: never destroyed, like the CPU instance */
    vt = *harp_backend_cpu()->vt;
    vt.linear = es_linear;
    vt.linear_ex = NULL, vt.linear_seam = NULL, vt.linear_q = NULL;
    eb = (harp_backend){&vt, NULL, -1, "cpu-exact-sums"};
    const int np = 16, nd = 64;
    harp_ctx_params cp = harp_ctx_default_params();
    cp.max_tokens = np + nd, cp.max_rows = np;
    harp_ctx *a = NULL, *b = NULL;
    CHECK_OK(harp_ctx_create_ex(m, &cp, &a));
    cp.backend = &eb;
    CHECK_OK(harp_ctx_create_ex(m, &cp, &b));
    double worst = 0;
    if (a && b) {
        const ctx_cmp r = ctx_compare(a, b, m->cfg.vocab_size, np, nd, 0);
        worst = fmax(r.prompt, r.dec);
    }
    harp_ctx_free(a), harp_ctx_free(b);
    harp_model_unload(m);
    es_reset();
    return worst;
}
#endif
