/* Linear groups over phase-1 weights (harp_linear slices): construction, the CPU product and the
 * dense effective weight a backend without a kernel for the weight type uploads. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/layer.h"

harp_status harp_lgroup_init(harp_lgroup *g, int n, const harp_linear *const *slices, harp_qtype qtype,
                             const char *what) {
    memset(g, 0, sizeof *g);
    if (n < 1 || n > HARP_LGROUP_MAX_SLICES)
        return harp_err(HARP_ERR_INTERNAL, "%s: a linear group has 1..%d slices, not %d", what, HARP_LGROUP_MAX_SLICES, n);
    g->n_slices = n;
    g->in = slices[0]->in;
    g->qtype = qtype;
    for (int s = 0; s < n; s++) {
        if (slices[s]->in != g->in || slices[s]->out < 1)
            return harp_err(HARP_ERR_SHAPE, "%s: slice %d is %d × %d, the group's input width is %d", what, s,
                            slices[s]->out, slices[s]->in, g->in);
        g->slice[s] = slices[s];
        g->out[s] = slices[s]->out;
        g->out_total += slices[s]->out;
    }
    return HARP_OK;
}

int harp_lgroup_has_bias(const harp_lgroup *g) {
    for (int s = 0; s < g->n_slices; s++)
        if (g->slice[s]->bias) return 1;
    return 0;
}

const struct harp_qtensor *harp_lgroup_qtensor(const harp_lgroup *g) {
    const struct harp_qtensor *t = g->slice[0]->packed;
    int64_t row = 0;
    for (int s = 0; t && s < g->n_slices; s++) {
        if (g->slice[s]->packed != t || g->slice[s]->packed_row0 != row) return NULL;
        row += g->slice[s]->out;
    }
    return t;
}

/* One call per slice: a quantized slice computes its whole group on the first call and serves the
 * others from the group's cache (src/qmodel/qruntime.c); the result does not depend on that cache,
 * only the time does. harp_linear has no error channel (a failed quantized product logs and fills
 * NaN), so this returns HARP_OK; the harp_qtensor product returns a real status. */
harp_status harp_lgroup_apply_host(const harp_lgroup *g, const float *X, int rows, float *const *Y) {
    for (int s = 0; s < g->n_slices; s++) harp_linear_apply(g->slice[s], X, rows, Y[s]);
    return HARP_OK;
}

/* Columns col0..col0+out-1 of wt (in × ld) = W_effᵀ of l, from l->matmul on identity rows. */
static harp_status slice_dense_t(const harp_linear *l, float *wt, int ld, int col0) {
    enum { BLK = 64 };
    float *I = harp_xcalloc((size_t)BLK * l->in, sizeof(float), "identity block");
    float *Y = harp_xmalloc((size_t)BLK * l->out * sizeof(float), "weight block");
    if (!I || !Y) {
        free(I);
        free(Y);
        return HARP_ERR_OOM;
    }
    for (int i0 = 0; i0 < l->in; i0 += BLK) {
        int nb = l->in - i0 < BLK ? l->in - i0 : BLK;
        memset(I, 0, (size_t)nb * l->in * sizeof(float));
        for (int r = 0; r < nb; r++) I[(size_t)r * l->in + i0 + r] = 1.0f;
        l->matmul(l, I, nb, Y);
        for (int r = 0; r < nb; r++)
            memcpy(wt + (size_t)(i0 + r) * ld + col0, Y + (size_t)r * l->out, (size_t)l->out * sizeof(float));
    }
    free(I);
    free(Y);
    return HARP_OK;
}

harp_status harp_lgroup_dense_t(const harp_lgroup *g, float *wt, float *bias) {
    int col = 0;
    for (int s = 0; s < g->n_slices; s++) {
        const harp_linear *l = g->slice[s];
        HARP_TRY(slice_dense_t(l, wt, g->out_total, col));
        if (bias) {
            if (l->bias) memcpy(bias + col, l->bias, (size_t)l->out * sizeof(float));
            else memset(bias + col, 0, (size_t)l->out * sizeof(float));
        }
        col += l->out;
    }
    return HARP_OK;
}
