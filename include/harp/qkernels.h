/* CPU kernel selection for the quantized GEMV, and the explicit kernel variants of the lattice types
 * (e8p2, rvq3, rvq4) that tests and benchmarks compare. Everything else goes through
 * harp_qtensor_apply (include/harp/qtensor.h), which picks the best variant. Bit-level layout:
 * docs/format/e8p.md. */
#ifndef HARP_QKERNELS_H
#define HARP_QKERNELS_H

#include "harp/common.h"
#include "harp/qtensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kernel variants of the lattice decode-GEMV, best first available at run time. */
typedef enum harp_qisa { HARP_QISA_PORTABLE = 0, HARP_QISA_AVX2 = 1 } harp_qisa;
/* Variant harp_qtensor_apply uses now for one row: "avx2" or "portable". */
const char *harp_qgemv_isa(void);
/* Caps the variant (tests, benchmarks). harp_qgemv_force_portable(1) = cap at portable, (0) = no
 * cap. Process-wide, not thread-safe. */
void harp_qgemv_max_isa(harp_qisa isa);
void harp_qgemv_force_portable(int on);
/* SIMD decode source: 0 (default) = the 512 KiB int8 table of all 65 536 codewords times 4 (one
 * load per code), 1 = the 8 KiB abs / sign / shift tables (L1-resident, ~2x the instructions).
 * Identical decoded values. */
void harp_qgemv_small_tables(int on);
/* "avx512vnni" or "portable" (capped to portable by harp_qgemv_max_isa(HARP_QISA_PORTABLE)): the
 * int8-activation kernel harp_qtensor_apply(…, act_q8 = 1) uses. */
const char *harp_qgemv_q8_isa(void);

/* y[m] = W̃ x[n] for a lattice tensor (HARP_ERR_INVALID_ARG for another type), no transforms.
 * _portable: the portable C kernel (same summation order as the AVX2 one, without FMA).
 * _q8: int8 activations — x rounded to int8 in blocks of 512 columns (scale absmax/127), codes
 * decoded exactly, exact integer block sums (AVX-512 VBMI + VNNI + BITALG when the CPU has them,
 * portable C otherwise, same bits). Deviation from the reference:
 * |Δy_r| ≤ Σ_c |W̃[r][c]| · scale_block(c) / 2 (+ fp32 rounding). All deterministic for any thread
 * count; HARP_ERR_OOM if the small activation buffer cannot be allocated. */
harp_status harp_qgemv_portable(const harp_qtensor *w, const float *x, float *y);
harp_status harp_qgemv_q8(const harp_qtensor *w, const float *x, float *y);
harp_status harp_qgemv_q8_portable(const harp_qtensor *w, const float *x, float *y);

#ifdef HARP_HAVE_CUDA
/* CUDA decode-GEMV of a lattice tensor (built with -DHARP_CUDA=ON; src/cuda/qgemv_e8p.cu): w, x
 * and y on the host, the planes copied to the device and y back (tests). HARP_ERR_NO_DEVICE
 * without a GPU. */
harp_status harp_qgemv_cuda_host(const harp_qtensor *w, const float *x, float *y);
#endif

#ifdef __cplusplus
}
#endif
#endif
