/* Round-to-nearest uniform quantizers with the exact formulas of §6.1 (QuaRot/GPTQ
 * WeightQuantizer; the MSE clip of harp_scalar_fit is aq_weight.c's). Rounding is half-to-even like
 * torch.round. */
#include <math.h>
#include <stdlib.h>

#include "aq.h"
#include "core/core.h"
#include "quant_internal.h"

void harp_rtn_fit(const double *x, int64_t len, int bits, int symmetric, float *scale, int *zero) {
    double xmin = 0, xmax = 0;
    for (int64_t i = 0; i < len; i++) {
        if (x[i] < xmin) xmin = x[i];
        if (x[i] > xmax) xmax = x[i];
    }
    if (xmin == 0 && xmax == 0) xmin = -1, xmax = 1;
    if (symmetric) {
        int maxq = (1 << (bits - 1)) - 1;
        double amax = fmax(-xmin, xmax);
        float s = (float)(amax / maxq);
        if (s < 1e-5f) s = 1e-5f;
        *scale = s;
        *zero = maxq + 1;   /* storage offset, see harp_quantize_linear */
    } else {
        int maxq = (1 << bits) - 1;
        float s = (float)((xmax - xmin) / maxq);
        if (s < 1e-5f) s = 1e-5f;
        *scale = s;
        *zero = (int)nearbyint(-xmin / (double)s);
    }
}

int harp_rtn_code(double x, float scale, int zero, int bits, int symmetric) {
    double q = nearbyint(x / (double)scale);
    double lo, hi;
    if (symmetric) {
        int maxq = (1 << (bits - 1)) - 1;
        lo = -(maxq + 1), hi = maxq;
        q = q < lo ? lo : q > hi ? hi : q;
        return (int)q + maxq + 1;
    }
    lo = 0, hi = (1 << bits) - 1;
    q += zero;
    q = q < lo ? lo : q > hi ? hi : q;
    return (int)q;
}

void harp_scalar_fit(const harp_quant_params *p, const double *x, int64_t len, float *scale, int *zero) {
    if (p->mse_clip) harp_wq_fit_mse(NULL, x, len, p->bits, p->symmetric, scale, zero);
    else harp_rtn_fit(x, len, p->bits, p->symmetric, scale, zero);
}

harp_status harp_scalar_alloc_planes(harp_qtensor *out, int with_gidx) {
    HARP_TRY(harp_qtensor_alloc_plane(out, QT_SC_SCALES));
    HARP_TRY(harp_qtensor_alloc_plane(out, QT_SC_ZEROS));
    return with_gidx ? harp_qtensor_alloc_plane(out, QT_SC_GIDX) : HARP_OK;
}

harp_status harp_rtn_quantize(const harp_quant_params *p, int64_t m, int64_t n, const float *W, harp_qtensor *out,
                              uint8_t *qcodes) {
    const int g = (int)out->group_size;
    HARP_TRY(harp_scalar_alloc_planes(out, 0));
    float *scale = out->planes[QT_SC_SCALES].owned;
    uint8_t *zero = out->planes[QT_SC_ZEROS].owned;
    int64_t ng = out->n_groups;
    harp_status st = HARP_OK;
#pragma omp parallel
    {
        double *x = malloc((size_t)g * sizeof *x);
        if (!x) {
#pragma omp atomic write
            st = HARP_ERR_OOM;
        }
#pragma omp for schedule(static)
        for (int64_t r = 0; r < m; r++) {
            if (!x) continue;
            for (int64_t G = 0; G < ng; G++) {
                int64_t c0 = G * g, len = n - c0 < g ? n - c0 : g;
                for (int64_t c = 0; c < len; c++) x[c] = W[r * n + c0 + c];
                float s;
                int z;
                harp_scalar_fit(p, x, len, &s, &z);
                scale[r * ng + G] = s;
                zero[r * ng + G] = (uint8_t)z;
                for (int64_t c = 0; c < len; c++)
                    qcodes[r * n + c0 + c] = (uint8_t)harp_rtn_code(x[c], s, z, p->bits, p->symmetric);
            }
        }
        free(x);
    }
    if (st != HARP_OK) return harp_err(st, "rtn: out of memory");
    return HARP_OK;
}
