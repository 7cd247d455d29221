/* Read-only view of a rotation's stored parameters (module API of src/rotate), for backends that
 * rebuild the transform in their own layout (the GPU decode engine, src/cuda/dec_rot.c). Pointers
 * alias the rotation's memory and stay valid while it lives and its θ is not changed. */
#ifndef HARP_ROTATE_ROT_VIEW_H
#define HARP_ROTATE_ROT_VIEW_H
#include <stdint.h>

#include "harp/rotate.h"

typedef struct harp_rot_view {
    harp_rot_kind kind;
    int64_t n;
    int K;                   /* hadamard / rht / the butterfly's fixed stage: hadK order (1 = none) */
    int64_t pow2;            /* n / K */
    const int8_t *signs;     /* rht, gsr with signs: R = diag(signs)·(…); else NULL */
    int64_t gsr_group;       /* gsr */
    const int64_t *walsh_perm;
    int kron_p1, kron_p2;    /* kron */
    const double *kron_a, *kron_b;
    const uint32_t *kron_pin, *kron_pout;
    int T, P;                /* butterfly: stages per pass, passes */
    const int *radices;      /* T */
    const float *const *blocks;   /* [p·T + t]: the canonical Cayley·mixer blocks [n/b][b][b] */
    int fixed;               /* butterfly: R = F·B with F = (hadK ⊗ I_pow2)/√K */
} harp_rot_view;

void harp_rot_get_view(const harp_rot *r, harp_rot_view *v);
#endif
