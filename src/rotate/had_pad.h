/* Rotations of any width with zero-padding "dimension expansion" (algorithms.md §3, §6.3): a width-n
 * vector is padded with zeros to n' ≥ n and multiplied by an orthogonal n'×n' rotation. For a Hadamard
 * rotation n' is n when a construction exists (Sylvester, Paley I/II, Williamson, Kronecker doubling;
 * see harp_hadamard_choose_k), else the smallest larger width that has one. The padded product keeps
 * inner products and norms (⟨[x,0]R, [y,0]R⟩ = ⟨x, y⟩), so a linear reading the rotated vector just
 * gets n' − n more input columns, and an RMSNorm over it must keep dividing by the original n.
 * Module API of src/rotate. Row convention of harp/rotate.h: forward is X ← X·R. */
#ifndef HARP_ROTATE_HAD_PAD_H
#define HARP_ROTATE_HAD_PAD_H

#include <stdint.h>

#include "harp/rotate.h"

typedef struct harp_padrot harp_padrot;

/* Smallest n' ≥ n with a Hadamard construction and its K (n' = K·2^j). */
harp_status harp_had_pad_dim(int64_t n, int64_t *n_pad, int *K);

/* Hadamard rotation for width n: R = diag(s)·Had_{n'} with s random ±1 from seed when signs (QuaRot's
 * random Hadamard), else R = Had_{n'} = (hadK ⊗ H_{2^j})/√n'. pad = 0 refuses a width without a
 * construction (one error line naming `what`) instead of expanding it. */
harp_status harp_padrot_hadamard(int64_t n, int pad, int signs, uint64_t seed, const char *what, harp_padrot **out);
/* Wraps any rotation r of dimension n' ≥ n (taking ownership of r, also on failure); r = NULL is the
 * identity of width n. */
harp_status harp_padrot_wrap(harp_rot *r, int64_t n, harp_padrot **out);
void harp_padrot_destroy(harp_padrot *p);

int64_t harp_padrot_n(const harp_padrot *p);
int64_t harp_padrot_n_pad(const harp_padrot *p);
/* The rotation of dimension n' (NULL for the identity) and the signs (NULL when none). */
const harp_rot *harp_padrot_rot(const harp_padrot *p);
const int8_t *harp_padrot_signs(const harp_padrot *p);

/* Y (rows × n', leading dimension ldy ≥ n') = [X, 0]·R for X (rows × n, ldx ≥ n). Y may be X with
 * ldx ≤ ldy (in place, also expanding rows of n packed floats to rows of n'). Multi-threaded over rows
 * (harp_rot_apply), deterministic. */
harp_status harp_padrot_fwd(const harp_padrot *p, const float *X, int64_t ldx, float *Y, int64_t ldy, int64_t rows);
/* X (rows × n) = first n columns of Y·Rᵀ: the inverse of fwd on its image. Y is left unchanged. */
harp_status harp_padrot_inv(const harp_padrot *p, const float *Y, int64_t ldy, float *X, int64_t ldx, int64_t rows);

/* Dense-matrix twins. R (n' × n', fp64) such that fwd = [X, 0]·R; for Hadamard rotations built from
 * the definition (signs, hadK, Sylvester, 1/√n'), independently of the fast transform. */
harp_status harp_padrot_dense(const harp_padrot *p, double *R);
/* fwd computed as a dense product in fp64 with R from harp_padrot_dense (single-threaded). */
harp_status harp_padrot_fwd_ref(const harp_padrot *p, const float *X, int64_t ldx, float *Y, int64_t ldy,
                                int64_t rows);

#endif
