/* Internals shared by the quantizer sources (not public API). */
#ifndef HARP_QUANT_INTERNAL_H
#define HARP_QUANT_INTERNAL_H

#include <cblas.h>
#include <stdint.h>

#include "harp/quant.h"

/* Value of a stored scalar code (the one formula every decoder uses). */
static inline double harp_scalar_value(float scale, int q, int zero) { return (double)scale * (double)(q - zero); }

/* Vector quantizer of one 8-weight block (input already divided by Wscale): writes the decoded
 * value to out[8] and the code(s) to *c1, *c2. */
typedef void (*harp_vq8_fn)(const void *ctx, const double x[8], double out[8], uint16_t *c1, uint16_t *c2);

/* BlockLDLQ with optional tune sweeps (§5.4) on Z (m, n) row-major fp64, n % 8 == 0, against the
 * SPD H (n, n) (already damped). Writes Ẑ to Zq (m, n) and codes to c1/c2 (m, n/8; c2 may be NULL).
 * Deterministic for any thread count. */
harp_status harp_ldlq(int64_t m, int64_t n, const double *Z, const double *H, harp_vq8_fn q, const void *qctx,
                      int tune_iters, double *Zq, uint16_t *c1, uint16_t *c2, int *jitter_steps, const char *what,
                      harp_progress_fn progress, void *progress_user);

/* The quantizers parallelise over independent row chunks with OpenMP and call BLAS inside the
 * parallel region; OpenBLAS (pthreads build) must then run single-threaded, both for speed (no
 * oversubscription) and so that results cannot depend on its thread count. begin returns the
 * previous setting for end. */
static inline int harp_blas_serial_begin(void) {
    int t = openblas_get_num_threads();
    if (t != 1) openblas_set_num_threads(1);
    return t;
}
static inline void harp_blas_serial_end(int prev) {
    if (prev != 1) openblas_set_num_threads(prev);
}

/* Scalar-method entry points (called by harp_quantize_linear after argument checks). */
harp_status harp_rtn_quantize(const harp_quant_params *p, int64_t m, int64_t n, const float *W, harp_qlinear *out);
harp_status harp_gptq_quantize(const harp_quant_params *p, int64_t m, int64_t n, const float *W, const double *H,
                               const char *what, harp_qlinear *out);
harp_status harp_quip_quantize(const harp_quant_params *p, int64_t m, int64_t n, const float *W, const double *H,
                               const char *what, harp_qlinear *out);

/* Allocates the scalar arrays of out for (m, n, group g). */
harp_status harp_qlinear_alloc_scalar(harp_qlinear *out, int64_t m, int64_t n, int g, int with_gidx);

#endif
