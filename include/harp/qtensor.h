/* One quantized tensor: what a solver writes, what a folder stores, what the CPU kernels run and
 * the GPU backend uploads. A record, not an opaque object: its members are the format.
 *
 * W̃ (m × n, y = W̃ x, rows = outputs) lives in the rotated basis; the transforms around it give
 * the original linear
 *     W = diag(out_mul) · R_U · W̃ · R_Vᵀ · diag(in_mul)
 * with in_mul = s_in and out_mul[r] = s_out[r] · slice_scale[slice(r)] (algorithms.md §2.1, §5.1).
 * The stored planes hold exactly the bytes of the folder tensors `P.<suffix>` listed for the type
 * in src/quant/qtype.c (docs/format/qmodel.md); everything else is derived from them. */
#ifndef HARP_QTENSOR_H
#define HARP_QTENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "harp/common.h"
#include "harp/qtype.h"
#include "harp/rotate.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HARP_QT_MAX_PLANES 6
#define HARP_QXF_MAX_SLICES 4

/* One stored plane (codes, scales, zero points, …). */
typedef struct harp_qplane {
    const void *data;   /* the stored bytes; NULL for an absent optional plane */
    size_t nbytes;
    void *owned;        /* data when the tensor owns it (released by harp_qtensor_free), else NULL */
} harp_qplane;

/* Transforms around the product. All members are owned by the tensor (harp_qtensor_free releases
 * them); a caller that lends its own (a benchmark) clears them before freeing. */
typedef struct harp_qxf {
    int8_t *s_in;                            /* (n) input signs ±1, or NULL                      */
    int8_t *s_out;                           /* (m) output signs ±1, or NULL                     */
    harp_rot *rot_in;                        /* R_V (dim n): X ← X·R_V; NULL = identity           */
    harp_rot *rot_out;                       /* R_U (dim m): Y ← Y·R_Uᵀ; NULL = identity          */
    int n_slices;                            /* fused slices stacked along the rows; 0 = none    */
    int64_t slice_len[HARP_QXF_MAX_SLICES];  /* rows of each slice (q, k, v or up, gate); Σ = m  */
    float slice_scale[HARP_QXF_MAX_SLICES];  /* rms(W_i) of each slice                           */
    /* derived by harp_qtensor_derive: */
    float *in_mul;                           /* (n) = s_in, or NULL                              */
    float *out_mul;                          /* (m) = s_out ⊙ slice scales, or NULL (identity)   */
} harp_qxf;

typedef struct harp_qtensor {
    harp_qtype type;
    int64_t m, n;                              /* W̃ is (m, n)                                    */
    harp_qplane planes[HARP_QT_MAX_PLANES];    /* in the order of the type's plane list          */
    /* decoded parameters (harp_qtensor_derive) */
    float scale0, scale1;                      /* lattice types: the wscale plane (scale1 = 0 for
                                                  e8p2); W̃ = scale0·dec0 + scale1·dec1            */
    int64_t group_size, n_groups;              /* scalar types: g (n when per row), ceil(n / g)  */
    harp_qxf xf;
    /* solver diagnostics (0 for a loaded tensor) */
    double proxy_loss;                         /* tr(ΔW H ΔWᵀ)/tr(W H Wᵀ), in the solver's fp64   */
    double seconds;
    int chol_jitter_steps;                     /* 0 unless the safe Cholesky needed jitter        */
    int64_t n_dead;                            /* GPTQ: dead input columns                       */
} harp_qtensor;

/* Zeroes *w and sets type and shape; group_size (scalar types only) is the solver's group: 0 or
 * ≥ n means one group per row. No planes are allocated. HARP_ERR_INVALID_ARG for an unknown type
 * or a shape outside 1 … 2^31 − 1. */
harp_status harp_qtensor_init(harp_qtensor *w, harp_qtype type, int64_t m, int64_t n, int64_t group_size);
/* Releases owned planes and transforms; safe on a zeroed struct; leaves *w zeroed. */
void harp_qtensor_free(harp_qtensor *w);
/* Recomputes the derived members after planes or transforms were written: scale0/scale1 from the
 * planes, xf.in_mul / xf.out_mul from the signs and slice scales. HARP_ERR_OOM, or
 * HARP_ERR_INVALID_ARG when a plane it reads is missing or the slices do not add up to m. */
harp_status harp_qtensor_derive(harp_qtensor *w);
/* Validates type, shape, plane sizes, value ranges (finite scales, zero points < 2^bits, group
 * indices < n_groups) and that the derived members match the planes. `what` names the tensor in
 * the one-line error. The products below assume a tensor that passed this check. */
harp_status harp_qtensor_check(const harp_qtensor *w, const char *what);
/* Dense W̃ (m × n, row-major, rotated basis, no transforms), the values every kernel computes with. */
harp_status harp_qtensor_dequantize(const harp_qtensor *w, float *W);

/* THE CPU product with transforms: Y (rows × m) = ((X ⊙ in_mul)·R_V · W̃ᵀ)·R_Uᵀ ⊙ out_mul for X
 * (rows × n), both row-major. rows == 1 runs the type's best GEMV (codes decoded on the fly; with
 * act_q8 != 0 the int8-activation GEMV where the type has one), rows > 1 the many-row product
 * (dequantized 64-row tiles + sgemm). Threads: OpenMP / BLAS inside; the result does not depend on
 * the thread count. X is not modified. */
harp_status harp_qtensor_apply(const harp_qtensor *w, const float *X, int64_t rows, float *Y, int act_q8);
/* Its plain reference twin: the type's reference GEMV (double accumulation, the definition of the
 * format) on every row and the reference rotations, single-threaded. */
harp_status harp_qtensor_apply_ref(const harp_qtensor *w, const float *X, int64_t rows, float *Y);

#ifdef __cplusplus
}
#endif
#endif
