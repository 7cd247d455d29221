/* Linear groups: construction, the weights they hold (fp32 slices or one harp_qtensor), the CPU
 * product and the dense effective weight a backend without a kernel for the weight type uploads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/kernels.h"
#include "model/layer.h"
#include "quant/qtype_traits.h"

const harp_lin_slot harp_lin_slots[HARP_LIN_COUNT] = {
    [HARP_LIN_Q] = {HARP_LG_QKV, 0, "self_attn.q_proj"},     [HARP_LIN_K] = {HARP_LG_QKV, 1, "self_attn.k_proj"},
    [HARP_LIN_V] = {HARP_LG_QKV, 2, "self_attn.v_proj"},     [HARP_LIN_O] = {HARP_LG_O, 0, "self_attn.o_proj"},
    [HARP_LIN_GATE] = {HARP_LG_UPGATE, 1, "mlp.gate_proj"}, [HARP_LIN_UP] = {HARP_LG_UPGATE, 0, "mlp.up_proj"},
    [HARP_LIN_DOWN] = {HARP_LG_DOWN, 0, "mlp.down_proj"},
};

harp_status harp_lgroup_init(harp_lgroup *g, int n, const int *out, int in, const char *what) {
    memset(g, 0, sizeof *g);
    if (n < 1 || n > HARP_LGROUP_MAX_SLICES)
        return harp_err(HARP_ERR_INTERNAL, "%s: a linear group has 1..%d slices, not %d", what, HARP_LGROUP_MAX_SLICES, n);
    g->n_slices = n;
    g->in = in;
    g->qtype = HARP_QTYPE_F32;
    snprintf(g->kind, sizeof g->kind, "f32");
    for (int s = 0; s < n; s++) {
        if (in < 1 || out[s] < 1)
            return harp_err(HARP_ERR_SHAPE, "%s: slice %d is %d × %d", what, s, out[s], in);
        g->out[s] = out[s];
        g->out_total += out[s];
    }
    return HARP_OK;
}

static void free_weights(harp_lgroup *g) {
    for (int s = 0; s < HARP_LGROUP_MAX_SLICES; s++) {
        if (!g->w_borrowed) free(g->w[s]);
        g->w[s] = NULL;
    }
    g->w_borrowed = 0;
    if (g->qt) harp_qtensor_free(g->qt);
    free(g->qt);
    g->qt = NULL;
}

void harp_lgroup_free(harp_lgroup *g) {
    if (!g) return;
    free_weights(g);
    for (int s = 0; s < HARP_LGROUP_MAX_SLICES; s++) {
        free(g->bias[s]);
        g->bias[s] = NULL;
    }
}

harp_status harp_lgroup_set_qtensor(harp_lgroup *g, harp_qtensor *qt, const char *kind, const char *what) {
    if (qt->m != g->out_total || qt->n != g->in)
        return harp_err(HARP_ERR_SHAPE, "%s: quantized tensor is %lld × %lld, the group is %d × %d", what, (long long)qt->m,
                        (long long)qt->n, g->out_total, g->in);
    harp_qtensor *t = harp_xmalloc(sizeof *t, "quantized group");
    if (!t) return HARP_ERR_OOM;
    free_weights(g);
    *t = *qt;
    memset(qt, 0, sizeof *qt);
    g->qt = t;
    g->qtype = t->type;
    snprintf(g->kind, sizeof g->kind, "%s", kind);
    return HARP_OK;
}

int harp_lgroup_has_bias(const harp_lgroup *g) {
    for (int s = 0; s < g->n_slices; s++)
        if (g->bias[s]) return 1;
    return 0;
}

const struct harp_qtensor *harp_lgroup_qtensor(const harp_lgroup *g) {
    return g->qt;
}

size_t harp_lgroup_scratch_floats(const harp_lgroup *g, int rows) {
    return g->qt && g->n_slices > 1 ? (size_t)rows * (size_t)g->out_total : 0;
}

/* One product for the whole quantized group, straight into Y[0] for one slice, else into scratch
 * and split by rows into the slices. */
static harp_status apply_qtensor(const harp_lgroup *g, const float *X, int rows, float *const *Y, float *scratch) {
    if (g->n_slices == 1) return harp_qtensor_apply(g->qt, X, rows, Y[0], 0);
    float *tmp = scratch ? scratch : harp_xmalloc(harp_lgroup_scratch_floats(g, rows) * sizeof(float), "group output");
    if (!tmp) return HARP_ERR_OOM;
    harp_status st = harp_qtensor_apply(g->qt, X, rows, tmp, 0);
    for (int s = 0, off = 0; !st && s < g->n_slices; off += g->out[s++])
        for (int r = 0; r < rows; r++)
            memcpy(Y[s] + (size_t)r * g->out[s], tmp + (size_t)r * g->out_total + off, (size_t)g->out[s] * sizeof(float));
    if (tmp != scratch) free(tmp);
    return st;
}

harp_status harp_lgroup_apply_host(const harp_lgroup *g, const float *X, int rows, float *const *Y, float *scratch) {
    if (g->qt) {
        HARP_TRY(apply_qtensor(g, X, rows, Y, scratch));
    } else {
        for (int s = 0; s < g->n_slices; s++) {
            if (!g->w[s]) return harp_err(HARP_ERR_INTERNAL, "linear group: slice %d has no weights", s);
            if (rows == 1) harp_f32_gemv(g->w[s], g->out[s], g->in, X, Y[s]);
            else harp_f32_matmul(g->w[s], g->out[s], g->in, X, rows, Y[s]);
        }
    }
    for (int s = 0; s < g->n_slices; s++)
        if (g->bias[s])
            for (int r = 0; r < rows; r++) {
                float *y = Y[s] + (size_t)r * g->out[s];
                for (int i = 0; i < g->out[s]; i++) y[i] += g->bias[s][i];
            }
    return HARP_OK;
}

int harp_lgroup_f16_exact(const harp_lgroup *g) {
    if (g->qt) return 0;
    for (int s = 0; s < g->n_slices; s++)
        if (!g->w[s] || !harp_f16_exact(g->w[s], (size_t)g->out[s] * (size_t)g->in)) return 0;
    return 1;
}

harp_status harp_lgroup_f16_tensor(const harp_lgroup *g, harp_qtensor *t) {
    memset(t, 0, sizeof *t);
    if (!harp_lgroup_f16_exact(g)) return harp_err(HARP_ERR_INVALID_ARG, "linear group: its weights are not all fp16 values");
    HARP_TRY(harp_qtensor_init(t, HARP_QTYPE_F16, g->out_total, g->in, 0));
    harp_status st = harp_qtensor_alloc_plane(t, 0);
    for (int s = 0, r0 = 0; !st && s < g->n_slices; r0 += g->out[s++]) {
        const int64_t n = (int64_t)g->out[s] * g->in;
        const float *w = g->w[s];
        uint16_t *o = (uint16_t *)t->planes[0].owned + (size_t)r0 * (size_t)g->in;
#pragma omp parallel for schedule(static) if (n >= (1 << 20))
        for (int64_t i = 0; i < n; i++) o[i] = harp_f32_to_f16(w[i]);
    }
    if (!st) st = harp_qtensor_derive(t);
    if (st) harp_qtensor_free(t);
    return st;
}

/* W_effᵀ from the product on identity rows, 64 at a time, without the bias (added by the caller). */
harp_status harp_lgroup_dense_t(const harp_lgroup *g, float *wt, float *bias) {
    enum { BLK = 64 };
    harp_lgroup nb = *g;   /* the same weights without the bias */
    memset(nb.bias, 0, sizeof nb.bias);
    const size_t in = (size_t)g->in, tot = (size_t)g->out_total;
    float *I = harp_xcalloc(BLK * in, sizeof(float), "identity block");
    float *Y = harp_xmalloc(BLK * tot * sizeof(float), "weight block");
    float *S = harp_xmalloc((harp_lgroup_scratch_floats(g, BLK) + 1) * sizeof(float), "group scratch");
    harp_status st = I && Y && S ? HARP_OK : HARP_ERR_OOM;
    for (int i0 = 0; !st && i0 < g->in; i0 += BLK) {
        int nr = g->in - i0 < BLK ? g->in - i0 : BLK;
        memset(I, 0, (size_t)nr * in * sizeof(float));
        for (int r = 0; r < nr; r++) I[(size_t)r * in + i0 + r] = 1.0f;
        float *Ys[HARP_LGROUP_MAX_SLICES];
        for (int s = 0, off = 0; s < g->n_slices; off += g->out[s++]) Ys[s] = Y + (size_t)BLK * off;
        st = harp_lgroup_apply_host(&nb, I, nr, Ys, S);
        for (int s = 0, off = 0; !st && s < g->n_slices; off += g->out[s++])
            for (int r = 0; r < nr; r++)
                memcpy(wt + (size_t)(i0 + r) * tot + off, Ys[s] + (size_t)r * g->out[s], (size_t)g->out[s] * sizeof(float));
    }
    for (int s = 0, off = 0; !st && bias && s < g->n_slices; off += g->out[s++]) {
        if (g->bias[s]) memcpy(bias + off, g->bias[s], (size_t)g->out[s] * sizeof(float));
        else memset(bias + off, 0, (size_t)g->out[s] * sizeof(float));
    }
    free(I);
    free(Y);
    free(S);
    return st;
}
