/* Weight grids for the W/A/KV path (aq.h): QuaRot/GPTQ's MSE clip (`--w_clip`, WeightQuantizer
 * find_params with mse=True, algorithms.md §6.1) as a group fitter, used by RTN and GPTQ through
 * harp_quant_params.mse_clip (harp_scalar_fit), and harp_wq_rtn naming the fitter instead of the flag. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aq.h"
#include "core/core.h"
#include "qblocks.h"
#include "quant_internal.h"

harp_wclip harp_wclip_default(void) {
    harp_wclip c = {100, 0.8, 2.4};
    return c;
}

void harp_wq_fit_minmax(const void *ctx, const double *x, int64_t len, int bits, int sym, float *scale, int *zero) {
    HARP_UNUSED(ctx);
    harp_rtn_fit(x, len, bits, sym, scale, zero);
}

/* Σ |x̂ − x|^norm of a group on the grid (s, z); powf keeps the 80-candidate search affordable. */
static double grid_err(const double *x, int64_t len, int bits, int sym, float s, int z, float norm) {
    double e = 0;
    for (int64_t i = 0; i < len; i++) {
        int q = harp_rtn_code(x[i], s, z, bits, sym);
        float d = (float)fabs(harp_scalar_value(s, q, z) - x[i]);
        if (d > 0) e += norm == 2.0f ? (double)d * d : (double)powf(d, norm);
    }
    return e;
}

void harp_wq_fit_mse(const void *ctx, const double *x, int64_t len, int bits, int sym, float *scale, int *zero) {
    const harp_wclip def = harp_wclip_default(), *c = ctx ? ctx : &def;
    harp_rtn_fit(x, len, bits, sym, scale, zero);
    double xmin = 0, xmax = 0;
    for (int64_t i = 0; i < len; i++) xmin = fmin(xmin, x[i]), xmax = fmax(xmax, x[i]);
    const int maxq = sym ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
    if (sym) xmax = fmax(fmax(-xmin, xmax), 1e-5);
    else if (xmin == 0 && xmax == 0) xmin = -1, xmax = 1;
    double best = INFINITY;
    const int steps = (int)(c->maxshrink * c->grid);
    for (int i = 0; i < steps; i++) {
        const double p = 1.0 - (double)i / c->grid;
        float s;
        int z;
        if (sym) {
            s = (float)(p * xmax / maxq);
            z = maxq + 1;   /* harp_qlinear's offset storage of symmetric codes */
        } else {
            s = (float)((p * xmax - p * xmin) / maxq);
            if (!(s > 0)) continue;
            double zf = nearbyint(-p * xmin / (double)s);
            z = zf < 0 ? 0 : zf > maxq ? maxq : (int)zf;
        }
        double e = grid_err(x, len, bits, sym, s, z, (float)c->norm);
        if (e < best) best = e, *scale = s, *zero = z;
    }
}

harp_status harp_wq_rtn(const harp_quant_params *p, harp_wq_fit_fn fit, const void *fit_ctx, int64_t m, int64_t n,
                        const float *W, const char *what, harp_qtensor *out) {
    if (!what) what = "linear";
    if (!p || !fit) return harp_err(HARP_ERR_INVALID_ARG, "%s: NULL quantizer parameters or fitter", what);
    const harp_wclip d = harp_wclip_default(), *c = fit_ctx;
    if ((fit != harp_wq_fit_minmax && fit != harp_wq_fit_mse) ||
        (fit == harp_wq_fit_mse && c && (c->grid != d.grid || c->maxshrink != d.maxshrink || c->norm != d.norm)))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: RTN takes the min/max or the default MSE-clipped grid", what);
    harp_quant_params rp = *p;
    rp.method = HARP_QMETHOD_RTN;
    rp.mse_clip = fit == harp_wq_fit_mse;
    return harp_quantize_linear(&rp, m, n, W, NULL, what, out);
}
