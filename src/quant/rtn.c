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

harp_status harp_scalar_fit_rows(const harp_quant_params *p, int64_t m, int64_t n, int64_t g, const float *W,
                                 const double *H, float *scale, uint8_t *zero, const char *what) {
    const int64_t ng = (n + g - 1) / g;
    int oom = 0;
#pragma omp parallel
    {
        double *x = malloc((size_t)g * sizeof *x);
        if (!x) {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp for schedule(dynamic, 16)
        for (int64_t r = 0; r < m; r++) {
            if (!x) continue;
            for (int64_t G = 0; G < ng; G++) {
                const int64_t c0 = G * g, len = n - c0 < g ? n - c0 : g;
                for (int64_t c = 0; c < len; c++)
                    x[c] = H && H[(c0 + c) * n + c0 + c] == 0.0 ? 0.0 : (double)W[r * n + c0 + c];
                float s;
                int z;
                harp_scalar_fit(p, x, len, &s, &z);
                scale[r * ng + G] = s;
                zero[r * ng + G] = (uint8_t)z;
            }
        }
        free(x);
    }
    return oom ? harp_err(HARP_ERR_OOM, "%s: out of memory", what) : HARP_OK;
}

harp_status harp_rtn_quantize(const harp_quant_params *p, int64_t m, int64_t n, const float *W, harp_qtensor *out,
                              uint8_t *qcodes) {
    const int64_t g = out->group_size, ng = out->n_groups;
    HARP_TRY(harp_scalar_alloc_planes(out, 0));
    float *scale = out->planes[QT_SC_SCALES].owned;
    uint8_t *zero = out->planes[QT_SC_ZEROS].owned;
    HARP_TRY(harp_scalar_fit_rows(p, m, n, g, W, NULL, scale, zero, "rtn"));
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < m; r++)
        for (int64_t c = 0; c < n; c++) {
            const int64_t G = c / g;
            qcodes[r * n + c] =
                (uint8_t)harp_rtn_code(W[r * n + c], scale[r * ng + G], zero[r * ng + G], p->bits, p->symmetric);
        }
    return HARP_OK;
}
