/* Internal layout of harp_rot, shared by the files of src/rotate. */
#ifndef HARP_ROT_INTERNAL_H
#define HARP_ROT_INTERNAL_H

#include "core/core.h"
#include "harp/rotate.h"

/* One butterfly stage (same radix and geometry in every pass). */
typedef struct bf_stage {
    int b;          /* radix */
    int64_t step;   /* Π_{u<t} b_u */
    int64_t D;      /* groups = n / b */
    int givens;     /* b == 2 and Givens parameterisation */
    int64_t nparam; /* per group: b(b−1)/2 or 1 */
} bf_stage;

struct harp_rot {
    harp_rot_kind kind;
    int64_t n;
    uint64_t seed;
    harp_rot_params params;
    /* hadamard / rht */
    int K;
    int64_t pow2;        /* n / K */
    int8_t *hadk;        /* K×K ±1 */
    float *hadk_f;       /* K×K as float (exact) */
    double *hadk_d;
    int8_t *signs;       /* n, ±1 (rht, gsr with signs) */
    /* gsr */
    int64_t group;
    int64_t *walsh_perm; /* G: output j of a block = natural-order FWHT entry walsh_perm[j] */
    /* dense kinds */
    double *dense;       /* n×n, forward = X·dense */
    float *dense_f;
    int kron_p1, kron_p2;
    double *kron_a, *kron_b;
    uint32_t *kron_pin, *kron_pout;
    /* butterfly */
    int T, P;
    bf_stage st[HARP_ROT_MAX_STAGES];
    int n_mix;                 /* distinct non-power-of-two radices */
    int mix_b[HARP_ROT_MAX_STAGES];
    double *mix[HARP_ROT_MAX_STAGES]; /* b×b orthogonal, stored in the blob */
    int64_t nparam;
    double *theta;
    /* n a power of two and every θ exactly 0: the rotation is Sylvester H/√n (algorithms.md §4.3), and
     * it is applied with the Hadamard kernels (K = 1, pow2 = n) so that its fp rounding is the RHT's
     * bit for bit — HARP with --harp-steps 0 then gives the RHT pipeline's codes exactly. */
    int sylvester;
    /* θ storage encoding (harp_theta_enc); for int8 the codes and the fp16 group scales, for fp16 the
     * fp16 codes, kept so that serialisation writes exactly what θ was rounded from. */
    int theta_enc;
    int64_t ngroups;           /* P·Σ_t D_t */
    int8_t *theta_q;           /* nparam */
    uint16_t *theta_s;         /* ngroups (int8) */
    uint16_t *theta_h;         /* nparam (fp16) */
    /* Expanded blocks per (pass, stage): fwd layout [blk][j][i][s], inv layout [blk][i][j][s],
     * both holding K_c[i][j] of group c = blk·step + s; fp32 and fp64 copies. */
    float **kf_fwd, **kf_inv;
    double **kd_fwd, **kd_inv;
    /* Canonical per-group K_c (row-major b×b, group order) and its transpose, for the 8-row tile kernel. */
    float **kf_can, **kf_cant;
    double **kd_can, **kd_cant;
};

/* hadamard.c */
int hadk_constructible(int K);

/* fwht.c: row kernels (n = K·pow2), in place on one row; tmp has n elements. */
void had_row_f32(const harp_rot *r, float *x, float *tmp, int transpose);
void had_row_f64(const harp_rot *r, double *x, double *tmp, int transpose);
void had_row_ref_f32(const harp_rot *r, float *x, float *tmp, int transpose);
void had_row_ref_f64(const harp_rot *r, double *x, double *tmp, int transpose);
void fwht_f32(float *x, int64_t n);
void fwht_f64(double *x, int64_t n);
void fwht_ref_f32(float *x, int64_t n);
void fwht_ref_f64(double *x, int64_t n);

/* butterfly.c */
harp_status bf_init(harp_rot *r, const harp_rot_params *p, int load);
harp_status bf_refresh(harp_rot *r);
void bf_free(harp_rot *r);
void bf_row_f32(const harp_rot *r, float *x, float *tmp, int transpose);
void bf_row_f64(const harp_rot *r, double *x, double *tmp, int transpose);
void bf_row_ref_f64(const harp_rot *r, double *x, double *tmp, int transpose);
void bf_row_ref_f32(const harp_rot *r, float *x, float *tmp, int transpose);
void bf_rows_f32(const harp_rot *r, float *X, int64_t rows, int64_t ld, float *tmp, int transpose);
void bf_rows_f64(const harp_rot *r, double *X, int64_t rows, int64_t ld, double *tmp, int transpose);
typedef float harp_v8f __attribute__((vector_size(32)));
typedef double harp_v8d __attribute__((vector_size(64)));
void bf_tile8_f32(const harp_rot *r, float *X, int64_t ld, harp_v8f *work, int transpose);
void bf_tile8_f64(const harp_rot *r, double *X, int64_t ld, harp_v8d *work, int transpose);
void bf_stage_f64(const harp_rot *r, int p, int t, double *x, double *tmp, int transpose);
void bf_stage_f32(const harp_rot *r, int p, int t, float *x, float *tmp, int transpose);
/* bf_theta.c */
void bf_theta_enc_clear(harp_rot *r);
harp_status bf_theta_decode(harp_rot *r, int enc, const int8_t *q, const uint16_t *scales, const uint16_t *h);
/* Group of every stage in θ order (pass, stage, group): nparam of group g = r->st[t].nparam. */
int64_t bf_group_count(const harp_rot *r);
/* butterfly.c: dθ += dL/dθ from per-group dK (Σ g vᵀ, b×b row-major, groups in θ order). */
harp_status bf_dtheta_from_dk(const harp_rot *r, const double *dk, double *dtheta);
harp_status bf_schedule(int64_t n, const harp_rot_params *p, int *stages, int *T);
harp_status bf_mixer(int b, double *M);
void orth_qr_signfix(double *A, int n);   /* in place: A ← Q·diag(sign(diag R)) */

/* rot.c */
harp_rot *rot_alloc(harp_rot_kind kind, int64_t n, uint64_t seed);
harp_status rot_finish(harp_rot *r);   /* derived tables after params are set (create and load) */

#endif
