/* Public apply entry points (optimised, reference, two-sided, Hessian, materialize) for every rotation
 * kind, through the kinds table. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rot_internal.h"

static inline const float *dense_of_f32(const harp_rot *r) { return r->dense_f; }
static inline const double *dense_of_f64(const harp_rot *r) { return r->dense; }

#define ELT float
#define SFX(name) name##_f32
#define GEMM cblas_sgemm
#define PREPARE(r) HARP_OK
#include "apply_tpl.h"
#undef ELT
#undef SFX
#undef GEMM
#undef PREPARE

#define ELT double
#define SFX(name) name##_f64
#define GEMM cblas_dgemm
#define PREPARE(r) bf_use_f64(r)
#include "apply_tpl.h"
#undef ELT
#undef SFX
#undef GEMM
#undef PREPARE

harp_status harp_rot_apply(const harp_rot *r, float *X, int64_t rows, int64_t ld, int transpose) {
    return apply_impl_f32(r, X, rows, ld, transpose, 0);
}
harp_status harp_rot_apply_f64(const harp_rot *r, double *X, int64_t rows, int64_t ld, int transpose) {
    return apply_impl_f64(r, X, rows, ld, transpose, 0);
}
harp_status harp_rot_apply_ref(const harp_rot *r, float *X, int64_t rows, int64_t ld, int transpose) {
    return apply_impl_f32(r, X, rows, ld, transpose, 1);
}
harp_status harp_rot_apply_ref_f64(const harp_rot *r, double *X, int64_t rows, int64_t ld, int transpose) {
    return apply_impl_f64(r, X, rows, ld, transpose, 1);
}
harp_status harp_rot_weight(const harp_rot *U, const harp_rot *V, float *W, int64_t m, int64_t n, int inverse) {
    return weight_impl_f32(U, V, W, m, n, inverse);
}
harp_status harp_rot_weight_f64(const harp_rot *U, const harp_rot *V, double *W, int64_t m, int64_t n, int inverse) {
    return weight_impl_f64(U, V, W, m, n, inverse);
}
harp_status harp_rot_hessian_f64(const harp_rot *V, double *H, int64_t n, int inverse) {
    if (!V) return harp_err(HARP_ERR_INVALID_ARG, "rotation hessian: NULL rotation");
    return weight_impl_f64(V, V, H, n, n, inverse);
}

harp_status harp_rot_materialize(const harp_rot *r, double *R) {
    if (!r || !R) return harp_err(HARP_ERR_INVALID_ARG, "rotation materialize: NULL argument");
    if (r->ops->materialize) return r->ops->materialize(r, R);
    int64_t n = r->n;
    memset(R, 0, (size_t)n * (size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) R[i * n + i] = 1.0;
    /* row i of I·R is row i of R */
    return harp_rot_apply_f64(r, R, n, n, 0);
}
