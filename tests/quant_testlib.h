/* Random problems shared by the quantizer tests: Gaussian weights and a correlated SPD Hessian
 * H = XᵀX/N with low-rank structure plus outlier columns (like real activations). */
#ifndef HARP_QUANT_TESTLIB_H
#define HARP_QUANT_TESTLIB_H

#include <stdlib.h>

#include "core/core.h"

static inline void qt_weights(harp_rng *rng, int64_t m, int64_t n, float *W) {
    for (int64_t i = 0; i < m * n; i++) W[i] = (float)(0.02 * harp_rng_normal(rng));
}

/* H (n, n) fp64 from N samples with a shared factor, so columns are correlated. */
static inline void qt_hessian(harp_rng *rng, int64_t n, int64_t N, double *H) {
    double *x = malloc(sizeof(double) * (size_t)n);
    double *scale = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) scale[i] = (i % 7 == 0) ? 4.0 : 1.0;
    for (int64_t i = 0; i < n * n; i++) H[i] = 0;
    for (int64_t s = 0; s < N; s++) {
        double f1 = harp_rng_normal(rng), f2 = harp_rng_normal(rng);
        for (int64_t i = 0; i < n; i++)
            x[i] = scale[i] * (harp_rng_normal(rng) + 1.5 * f1 * ((i & 1) ? 1 : -1) + f2 * (double)(i % 5) / 5.0);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) H[i * n + j] += x[i] * x[j];
    }
    for (int64_t i = 0; i < n * n; i++) H[i] /= (double)N;
    free(x);
    free(scale);
}

#endif
