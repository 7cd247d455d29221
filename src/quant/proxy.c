/* Relative proxy loss tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) in fp64. Rows are summed in index order after a
 * parallel per-row pass, so the result does not depend on the thread count. */
#include <math.h>
#include <stdlib.h>

#include "core/core.h"
#include "harp/quant.h"

/* x H xᵀ for one row, fixed summation order. */
static double quad_form(int64_t n, const double *x, const double *H) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] == 0.0) continue;
        const double *h = H + i * n;
        double t = 0;
        for (int64_t j = 0; j < n; j++) t += h[j] * x[j];
        s += x[i] * t;
    }
    return s;
}

static double proxy_core(int64_t m, int64_t n, const float *Wf, const float *Qf, const double *Wd, const double *Qd,
                         const double *H) {
    double *num = malloc((size_t)m * sizeof *num), *den = malloc((size_t)m * sizeof *den);
    if (!num || !den) {
        free(num), free(den);
        return NAN;
    }
#pragma omp parallel
    {
        double *d = malloc((size_t)(2 * n) * sizeof *d);
#pragma omp for schedule(static)
        for (int64_t r = 0; r < m; r++) {
            if (!d) {
                num[r] = den[r] = NAN;
                continue;
            }
            double *w = d, *e = d + n;
            for (int64_t c = 0; c < n; c++) {
                double a = Wf ? (double)Wf[r * n + c] : Wd[r * n + c];
                double b = Qf ? (double)Qf[r * n + c] : Qd[r * n + c];
                w[c] = a;
                e[c] = b - a;
            }
            num[r] = quad_form(n, e, H);
            den[r] = quad_form(n, w, H);
        }
        free(d);
    }
    double sn = 0, sd = 0;
    for (int64_t r = 0; r < m; r++) sn += num[r], sd += den[r];
    free(num), free(den);
    return sd != 0.0 ? sn / sd : NAN;
}

double harp_proxy_loss(int64_t m, int64_t n, const float *W, const float *Wq, const double *H) {
    return proxy_core(m, n, W, Wq, NULL, NULL, H);
}

double harp_proxy_loss_f64(int64_t m, int64_t n, const double *W, const double *Wq, const double *H) {
    return proxy_core(m, n, NULL, NULL, W, Wq, H);
}
