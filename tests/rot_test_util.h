/* Helpers shared by the rotation tests: dense checks on materialised rotations. */
#ifndef ROT_TEST_UTIL_H
#define ROT_TEST_UTIL_H

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "harp/rotate.h"

/* max |R·Rᵀ − I| of a dense n×n matrix (fp64 product). */
static inline double rt_orth_err(const double *R, int64_t n) {
    double *P = malloc((size_t)n * (size_t)n * sizeof(double));
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1.0, R, (int)n, R, (int)n, 0.0, P, (int)n);
    double e = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double d = fabs(P[i * n + j] - (i == j ? 1.0 : 0.0));
            if (d > e) e = d;
        }
    free(P);
    return e;
}

/* Dense R from the fp32 path (rows e_i·R), widened to fp64 for the check. */
static inline double *rt_materialize_f32(const harp_rot *r) {
    int64_t n = harp_rot_dim(r);
    float *F = calloc((size_t)n * (size_t)n, sizeof(float));
    for (int64_t i = 0; i < n; i++) F[i * n + i] = 1.0f;
    if (harp_rot_apply(r, F, n, n, 0) != HARP_OK) {
        free(F);
        return NULL;
    }
    double *R = malloc((size_t)n * (size_t)n * sizeof(double));
    for (size_t i = 0; i < (size_t)n * (size_t)n; i++) R[i] = F[i];
    free(F);
    return R;
}

static inline void rt_fill_normal(float *x, size_t k, uint64_t seed) {
    harp_rng g;
    harp_rng_seed(&g, seed);
    for (size_t i = 0; i < k; i++) x[i] = (float)harp_rng_normal(&g);
}

static inline void rt_fill_normal_f64(double *x, size_t k, uint64_t seed) {
    harp_rng g;
    harp_rng_seed(&g, seed);
    for (size_t i = 0; i < k; i++) x[i] = harp_rng_normal(&g);
}

/* ‖a − b‖ / ‖b‖ */
static inline double rt_rel_err(const float *a, const float *b, size_t k) {
    double num = 0, den = 0;
    for (size_t i = 0; i < k; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* Bit flags of the optimised apply differing from the _ref twin on the rows x (rows × n, direction tr):
 * 1 fp32, 2 fp64 (x widened); 0 = identical bits in both. */
static inline int rt_apply_vs_ref(const harp_rot *r, const float *x, int64_t rows, int tr) {
    int64_t n = harp_rot_dim(r);
    size_t tot = (size_t)rows * (size_t)n;
    float *y = malloc(tot * sizeof(float)), *z = malloc(tot * sizeof(float));
    double *a = malloc(tot * sizeof(double)), *b = malloc(tot * sizeof(double));
    memcpy(y, x, tot * sizeof(float));
    memcpy(z, x, tot * sizeof(float));
    for (size_t i = 0; i < tot; i++) a[i] = b[i] = x[i];
    int bad = harp_rot_apply(r, y, rows, n, tr) != HARP_OK || harp_rot_apply_ref(r, z, rows, n, tr) != HARP_OK ||
              memcmp(y, z, tot * sizeof(float));
    bad |= (harp_rot_apply_f64(r, a, rows, n, tr) != HARP_OK || harp_rot_apply_ref_f64(r, b, rows, n, tr) != HARP_OK ||
            memcmp(a, b, tot * sizeof(double)))
           << 1;
    free(y), free(z), free(a), free(b);
    return bad;
}

/* A butterfly of n with the given radices (NULL / 0: the schedule's own), passes, Givens b = 2 stages,
 * θ clip and a random θ of scale init; NULL (and harp_last_error) if it cannot be made. */
static inline harp_rot *rt_butterfly(int64_t n, const int *stages, int ns, int schedule, int passes, int givens, double clip,
                                     double init, uint64_t seed) {
    harp_rot_params p;
    harp_rot_params_default(&p);
    p.schedule = schedule;
    p.n_stages = ns;
    for (int i = 0; i < ns; i++) p.stages[i] = stages[i];
    p.n_passes = passes;
    p.givens_b2 = givens;
    p.theta_clip = clip;
    p.theta_init_scale = init;
    harp_rot *r = NULL;
    return harp_rot_create(HARP_ROT_BUTTERFLY, n, &p, seed, &r) == HARP_OK ? r : NULL;
}

#endif
