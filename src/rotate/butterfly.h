/* Module API of the HARP butterfly for the fitting engines (src/harpfit): the geometry of the
 * learned stages, their Cayley blocks, and dθ from per-group block gradients. The public θ, forward
 * and backward calls are in include/harp/rotate.h; this header only adds what an engine that runs
 * the stages itself needs (algorithms.md §4.3, §4.8). */
#ifndef HARP_ROTATE_BUTTERFLY_H
#define HARP_ROTATE_BUTTERFLY_H

#include <stdint.h>

#include "harp/rotate.h"

/* Geometry of one (pass, stage): radix b, stride step, D = n/b groups; group c = blk·step + s mixes
 * the coordinates blk·b·step + i·step + s, i = 0 … b−1. */
typedef struct bf_geom {
    int b;
    int64_t step, D;
} bf_geom;

/* Number of (pass, stage) pairs, pass-major: pt = p·T + t. 0 for a rotation that is not a butterfly. */
int bf_num_stages(const harp_rot *r);
bf_geom bf_stage_geom(const harp_rot *r, int pt);
/* Canonical blocks of (pass, stage) pt: D row-major b×b matrices K_c in group order (v ← K_c v on the
 * group's coordinates), as cached by the last θ change; fp32 and fp64 copies, the fp64 ones once
 * bf_use_f64 has made them. */
const float *bf_blocks_f32(const harp_rot *r, int pt);
const double *bf_blocks_f64(const harp_rot *r, int pt);
/* Makes and from then on keeps the fp64 blocks of a butterfly (a no-op for other kinds and when they
 * exist; thread-safe). A model that only runs never needs them; the fp64 apply paths and the fp64
 * fitting engine ask for them first. Logically const: the blocks are a cache of θ. */
harp_status bf_use_f64(const harp_rot *r);
/* W (m×n) ← F_Uᵀ W F_V with F the fixed Hadamard stage of U and V (identity for a side without one;
 * U or V may be NULL): the constant part of R_Uᵀ W R_V = B_Uᵀ (F_Uᵀ W F_V) B_V, so a fitting engine
 * applies only the learned stages to the transformed W (and, with U = V, to F_Vᵀ H F_V). */
harp_status bf_fixed_weight_f64(const harp_rot *U, const harp_rot *V, double *W, int64_t m, int64_t n);
/* dθ += dL/dθ from per-group dK (Σ g vᵀ, b×b row-major, groups in θ order, Σ_pt D·b² values); the
 * convention of harp_rot_butterfly_backward. */
harp_status bf_dtheta_from_dk(const harp_rot *r, const double *dk, double *dtheta);

#endif
