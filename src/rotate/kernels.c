/* Instantiates the row kernels of kern_tpl.h for float and double, and the public harp_fwht_f32. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "rot_internal.h"

static inline const float *hadk_of_f32(const harp_rot *r) { return r->hadk_f; }
static inline const double *hadk_of_f64(const harp_rot *r) { return r->hadk_d; }
static inline const float *hkmix_of_f32(const harp_rot *r, int tr) { return r->hkmix_f[tr]; }
static inline const double *hkmix_of_f64(const harp_rot *r, int tr) { return r->hkmix_d[tr]; }
static inline const float *kfwd_of_f32(const harp_rot *r, int p, int t) { return r->kf_fwd[p * r->T + t]; }
static inline const double *kfwd_of_f64(const harp_rot *r, int p, int t) { return r->kd_fwd[p * r->T + t]; }
static inline const float *kcan_of_f32(const harp_rot *r, int p, int t) { return r->kf_can[p * r->T + t]; }
static inline const double *kcan_of_f64(const harp_rot *r, int p, int t) { return r->kd_can[p * r->T + t]; }

/* Multiply-adds of one call from which a few rows (fewer than a tile: decode) split each learned stage
 * over the threads: at batch 1 the transform otherwise runs on one core while the others wait for the
 * GEMV after it. Below it, a parallel region and a barrier per stage cost more than they save. */
static int64_t g_bf_par_work = 1 << 16;

int64_t bf_par_work(int64_t w) {
    const int64_t old = g_bf_par_work;
    if (w >= 0) g_bf_par_work = w;
    return old;
}

#if defined(__GNUC__) && !defined(__clang__)
#define HARP_HAVE_SHUFFLE 1
#else
#define HARP_HAVE_SHUFFLE 0
#endif
typedef int32_t v8i32_t __attribute__((vector_size(32)));
typedef int64_t v8i64_t __attribute__((vector_size(64)));

/* 16-byte vectors (GNU vector extension; lanes are independent, so no reassociation happens) */
typedef float v4f_t __attribute__((vector_size(16)));
typedef double v2d_t __attribute__((vector_size(16)));
typedef harp_v8f v8f_t;
typedef harp_v8d v8d_t;

#define ELT float
#define VEC v4f_t
#define VEC8 v8f_t
#define IVEC8 v8i32_t
#define VL 4
#define SFX(name) name##_f32
#include "kern_tpl.h"

#define ELT double
#define VEC v2d_t
#define VEC8 v8d_t
#define IVEC8 v8i64_t
#define VL 2
#define SFX(name) name##_f64
#include "kern_tpl.h"

harp_status harp_fwht_f32(float *v, int64_t n) {
    if (n <= 0 || (n & (n - 1)))
        return harp_err(HARP_ERR_INVALID_ARG, "fwht: length %lld is not a power of two", (long long)n);
    fwht_f32(v, n);
    const float s = 1.0f / sqrtf((float)n);
    for (int64_t i = 0; i < n; i++) v[i] *= s;
    return HARP_OK;
}
