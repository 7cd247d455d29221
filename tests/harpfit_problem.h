/* Shared by the HARP fit tests (test_harpfit_grad.c, test_harpfit_gpu.c, test_harpfit_hadamard.c) and
 * the sensitivity experiment scripts/harpfit_sensitivity.c: a butterfly with explicit stages and random
 * θ, the fit problems' SPD Hessian, and the GPU test's fit problem (W with a few 3× columns, an ill-conditioned SPD H). Header-only,
 * static. */
#ifndef HARP_TESTS_HARPFIT_PROBLEM_H
#define HARP_TESTS_HARPFIT_PROBLEM_H

#include <stdlib.h>

#include "core/core.h"
#include "harp/rotate.h"

/* ns = 0: the default schedule. NULL on failure (harp_last_error says why). */
static inline harp_rot *hft_rot(int d, const int *st, int ns, int givens, double clip, double init_scale,
                                uint64_t seed) {
    harp_rot_params p;
    harp_rot_params_default(&p);
    p.n_stages = ns;
    for (int i = 0; i < ns; i++) p.stages[i] = st[i];
    p.givens_b2 = givens, p.theta_clip = clip, p.theta_init_scale = init_scale;
    harp_rot *r = NULL;
    return harp_rot_create(HARP_ROT_BUTTERFLY, d, &p, seed, &r) == HARP_OK ? r : NULL;
}

/* H = A·Aᵀ / k + 0.01·I for A (n × k): the SPD Hessian of every fit problem. */
static inline void hft_gram(const double *A, int n, int k, double *H) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            double a = 0;
            for (int u = 0; u < k; u++) a += A[i * k + u] * A[j * k + u];
            H[i * n + j] = H[j * n + i] = a / k + (i == j ? 0.01 : 0);
        }
}

static inline void hft_problem(int m, int n, uint64_t seed, float *W, double *H) {
    harp_rng g;
    harp_rng_seed(&g, seed);
    for (int i = 0; i < m * n; i++) W[i] = (float)(harp_rng_normal(&g) * (i % n % 13 == 2 ? 3.0 : 1.0));
    int k = n / 2 + 8;
    double *A = malloc(sizeof(double) * (size_t)n * k);
    if (!A) abort();
    for (int i = 0; i < n * k; i++) A[i] = harp_rng_normal(&g) * (1.0 + (i / k) % 7);
    hft_gram(A, n, k, H);
    free(A);
}

#endif
