/* Internal layout of harp_rot, the table of rotation kinds and the blob primitives, shared by the
 * files of src/rotate. One row of the kinds table (rot_kind_ops) per harp_rot_kind, one file per
 * kind: rot_hadamard.c (hadamard, rht), rot_gsr.c, rot_random.c, rot_kron.c, rot_butterfly.c. */
#ifndef HARP_ROT_INTERNAL_H
#define HARP_ROT_INTERNAL_H

#include "core/core.h"
#include "harp/rotate.h"
#include "rotate/butterfly.h"

/* One butterfly stage (same radix and geometry in every pass). */
typedef struct bf_stage {
    int b;          /* radix */
    int64_t step;   /* Π_{u<t} b_u */
    int64_t D;      /* groups = n / b */
    int givens;     /* b == 2 and Givens parameterisation */
    int syl;        /* fixed stage present: the mixer is H_syl/√syl ⊗ I_{b/syl} — Sylvester on the digits
                       inside the chunk, identity on those of the chunk index (syl = 1: all of them);
                       0 without a fixed stage (Sylvester for powers of two, else a stored mixer) */
    int64_t nparam; /* per group: b(b−1)/2 or 1 */
} bf_stage;

/* Blob writer and reader (rot_blob.c); errors are sticky (oom / st), checked once at the end. */
typedef struct rot_wbuf {
    uint8_t *p;
    size_t n, cap;
    int oom;
} rot_wbuf;

typedef struct rot_rbuf {
    const uint8_t *p;
    size_t n, off;
    const char *name;
    harp_status st;
} rot_rbuf;

typedef struct rot_kind_ops rot_kind_ops;

struct harp_rot {
    harp_rot_kind kind;
    const rot_kind_ops *ops;
    int64_t n;
    uint64_t seed;
    harp_rot_params params;
    /* Had_n = (hadK ⊗ H_pow2)/√n: hadamard, rht, the butterfly at θ = 0 and its fixed stage */
    int K;
    int64_t pow2;        /* n / K */
    int8_t *hadk;        /* K×K ±1 */
    float *hadk_f;       /* K×K as float (exact) */
    double *hadk_d;
    int Kp;              /* K rounded up to a multiple of 8 */
    float *hkmix_f[2];   /* K×Kp: [j][c] = hadK[j][c] (forward), hadK[c][j] (transpose), zero-padded */
    double *hkmix_d[2];
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
    /* schedule hadamard, n not a power of two: a fixed first stage F = (hadK ⊗ I_pow2)/√K (K, pow2,
     * hadK above) mixes the chunk index before the learned stages, R = F·B; 0: none (K = 1, pow2 = n) */
    int fixed;
    /* The fixed stage by classes (bf_fixed.c): for direction d (0: x·F, 1: x·Fᵀ) and group g of the 4
     * outputs 4g…4g+3, the K inputs in 8 classes (the 3 sign agreements of rows 4g+1..3 of the mixing
     * matrix with row 4g), class p of group g being fx_idx[d][g·K + fx_off[d][9g + p] …], entries
     * j + K·[row 4g is −1 at j] (chunks of [x, −x]); NULL: the dense K×K sum (had_mix) */
    uint16_t *fx_idx[2], *fx_off[2];
    int64_t nparam;
    double *theta;             /* NULL while the codes below hold θ (bf_theta_decode) */
    /* every θ exactly 0 and the rotation is Had_n — n a power of two (Sylvester H/√n, algorithms.md
     * §4.3) or the fixed stage present ((hadK ⊗ H_pow2)/√n): it is applied with the Hadamard kernels (K, pow2 above) so that its fp rounding is the RHT's
     * bit for bit — HARP with --harp-steps 0 then gives the RHT pipeline's codes exactly. */
    int had_exact;
    /* θ storage encoding (harp_theta_enc); for int8 the codes and the fp16 group scales, for fp16 the
     * fp16 codes, kept so that serialisation writes exactly what θ was rounded from. */
    int theta_enc;
    int64_t ngroups;           /* P·Σ_t D_t */
    int8_t *theta_q;           /* nparam */
    uint16_t *theta_s;         /* ngroups (int8) */
    uint16_t *theta_h;         /* nparam (fp16) */
    /* Blocks per (pass, stage), expanded from θ by bf_refresh, in two layouts. fwd: [blk][j][i][s]
     * holding K_c[i][j] of group c = blk·step + s, for the row kernels, whose vector loads run over
     * consecutive s for any (i, j) — so the transpose reads the same array with i and j swapped. can:
     * per group row-major b×b K_c in group order, for the 8-row tile kernel (and the transpose of a
     * stage with step 1 in the row kernel), the fitting engines and the GPU engine. The fp64 copies
     * exist only once an fp64 path has asked for them (bf_use_f64): a model that only runs holds the
     * fp32 ones, 8 bytes per (n·b) instead of 48 with every layout in both precisions. */
    float **kf_fwd, **kf_can;
    double **kd_fwd, **kd_can;
    int has_f64;   /* kd_* filled and kept current; __atomic builtins (set once, under a lock) */
};

/* ---- the kinds table ---------------------------------------------------------------------------
 * row: one row in place (tmp: 2n + 64 elements), optimised or (ref = 1) the plain reference twin,
 * which must agree bit for bit except for the dense kinds (BLAS). rows: `nr` ≤ tile rows at once
 * (tmp, vector aligned: tile·(3n + 2·4096) + 64 elements for a full tile, (nr + 2)·n + 64 for
 * nr < tile); NULL = row by row. gemm: the optimised
 * path is one BLAS product with the dense matrix. */
struct rot_kind_ops {
    const char *name;
    uint32_t max_version;   /* newest blob version this kind is written with */
    /* random parameters from (params, seed); g is seeded with (seed, kind + 1) */
    harp_status (*create)(harp_rot *r, const harp_rot_params *p, harp_rng *g);
    /* derived tables once the stored parameters are set (after create and after load) */
    harp_status (*finish)(harp_rot *r);
    void (*row_f32)(const harp_rot *r, float *x, float *tmp, int transpose, int ref);
    void (*row_f64)(const harp_rot *r, double *x, double *tmp, int transpose, int ref);
    void (*rows_f32)(const harp_rot *r, float *X, int64_t nr, int64_t ld, float *tmp, int transpose);
    void (*rows_f64)(const harp_rot *r, double *X, int64_t nr, int64_t ld, double *tmp, int transpose);
    int tile;
    int gemm;
    /* dense R (forward = X·R); NULL: rows of the identity through the fp64 apply */
    harp_status (*materialize)(const harp_rot *r, double *R);
    uint32_t (*blob_version)(const harp_rot *r);   /* NULL: 1 */
    void (*write)(rot_wbuf *w, const harp_rot *r);
    harp_status (*read)(rot_rbuf *rb, harp_rot *r, uint32_t version);   /* payload, then finish */
    void (*destroy)(harp_rot *r);                  /* kind-owned memory beyond the common fields */
};

extern const rot_kind_ops rot_kind_hadamard, rot_kind_rht, rot_kind_gsr, rot_kind_random, rot_kind_kron, rot_kind_butterfly;

/* rot.c */
const rot_kind_ops *rot_ops(harp_rot_kind kind);   /* NULL for an unknown kind */
harp_rot *rot_alloc(harp_rot_kind kind, int64_t n, uint64_t seed);
int8_t *rot_random_signs(int64_t n, uint64_t seed);
void orth_qr_signfix(double *A, int n);   /* in place: A ← Q·diag(sign(diag R)) */

/* rot_random.c: the fp32 copy of r->dense (finish of the dense kinds) and materialize by copy */
#define ROT_DENSE_MAX 16384
harp_status rot_dense_finish(harp_rot *r);
harp_status rot_dense_materialize(const harp_rot *r, double *R);

/* rot_hadamard.c: hadK and its float/double copies for order K (n = K·pow2) */
harp_status rot_hadk_init(harp_rot *r, int K);

/* rot_blob.c */
void rot_w_bytes(rot_wbuf *w, const void *d, size_t k);
void rot_w_u32(rot_wbuf *w, uint32_t v);
void rot_w_u64(rot_wbuf *w, uint64_t v);
void rot_w_f64s(rot_wbuf *w, const double *d, size_t k);
int rot_r_need(rot_rbuf *r, size_t k, const char *what);
uint32_t rot_r_u32(rot_rbuf *r, const char *what);
uint64_t rot_r_u64(rot_rbuf *r, const char *what);
double *rot_r_f64s(rot_rbuf *r, size_t k, const char *what);   /* finite values, malloc'd */
int8_t *rot_r_signs(rot_rbuf *r, size_t k);                      /* ±1, malloc'd */
uint32_t *rot_r_perm(rot_rbuf *r, size_t k, const char *what);   /* a permutation of 0..k−1 */
harp_status rot_fmt_err(const rot_rbuf *r, const char *msg, long long v);
int rot_orthogonal(const double *M, int b);   /* |M Mᵀ − I| ≤ 1e−9 */

/* hadamard.c */
int hadk_constructible(int K);

/* kernels.c: row kernels (kern_tpl.h), in place; tmp as the kinds table says. */
void fwht_f32(float *x, int64_t n);
void fwht_f64(double *x, int64_t n);
void fwht_ref_f32(float *x, int64_t n);
void fwht_ref_f64(double *x, int64_t n);
void had_row_f32(const harp_rot *r, float *x, float *tmp, int transpose);
void had_row_f64(const harp_rot *r, double *x, double *tmp, int transpose);
void had_row_ref_f32(const harp_rot *r, float *x, float *tmp, int transpose);
void had_row_ref_f64(const harp_rot *r, double *x, double *tmp, int transpose);
void had_rows_f32(const harp_rot *r, float *X, int64_t nr, int64_t ld, float *tmp, int transpose);
void had_rows_f64(const harp_rot *r, double *X, int64_t nr, int64_t ld, double *tmp, int transpose);
/* the K×K chunk mix of Had_n alone (K > 1), scaled by s; tmp: nr·n elements (ref: n) */
void had_mix_rows_f32(const harp_rot *r, float *X, int64_t nr, int64_t ld, float *tmp, int transpose, float s);
void had_mix_rows_f64(const harp_rot *r, double *X, int64_t nr, int64_t ld, double *tmp, int transpose, double s);
void had_mix_ref_f32(const harp_rot *r, float *x, float *tmp, int transpose, float s);
void had_mix_ref_f64(const harp_rot *r, double *x, double *tmp, int transpose, double s);
/* rows of the kinds table */
void had_kind_row_f32(const harp_rot *r, float *x, float *tmp, int transpose, int ref);
void had_kind_row_f64(const harp_rot *r, double *x, double *tmp, int transpose, int ref);
void rht_kind_row_f32(const harp_rot *r, float *x, float *tmp, int transpose, int ref);
void rht_kind_row_f64(const harp_rot *r, double *x, double *tmp, int transpose, int ref);
void rht_kind_rows_f32(const harp_rot *r, float *X, int64_t nr, int64_t ld, float *tmp, int transpose);
void rht_kind_rows_f64(const harp_rot *r, double *X, int64_t nr, int64_t ld, double *tmp, int transpose);
void bf_kind_row_f32(const harp_rot *r, float *x, float *tmp, int transpose, int ref);
void bf_kind_row_f64(const harp_rot *r, double *x, double *tmp, int transpose, int ref);
void bf_kind_rows_f32(const harp_rot *r, float *X, int64_t nr, int64_t ld, float *tmp, int transpose);
void bf_kind_rows_f64(const harp_rot *r, double *X, int64_t nr, int64_t ld, double *tmp, int transpose);
void signs_mul_f32(const int8_t *s, float *x, int64_t n);
void signs_mul_f64(const int8_t *s, double *x, int64_t n);
void gsr_row_f32(const harp_rot *r, float *x, float *tmp, int transpose, int ref);
void gsr_row_f64(const harp_rot *r, double *x, double *tmp, int transpose, int ref);
void dense_row_f32(const harp_rot *r, float *x, float *tmp, int transpose, int ref);
void dense_row_f64(const harp_rot *r, double *x, double *tmp, int transpose, int ref);
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
/* The multiply-adds from which bf_rows splits each stage over the threads; w ≥ 0 sets it (tests force
 * the split at small sizes with 0), the previous value is returned. */
int64_t bf_par_work(int64_t w);
void bf_stage_f64(const harp_rot *r, int p, int t, double *x, double *tmp, int transpose);
void bf_stage_f32(const harp_rot *r, int p, int t, float *x, float *tmp, int transpose);
/* The butterfly's fixed stage x·F or x·Fᵀ (F = (hadK ⊗ I_pow2)/√K) on nr rows, by the classes of
 * fx_idx when built, else the dense chunk mix; tmp: max(nr, 2)·n elements; _ref: the plain twin. */
void bf_fixed_rows_f32(const harp_rot *r, float *X, int64_t nr, int64_t ld, float *tmp, int transpose);
void bf_fixed_rows_f64(const harp_rot *r, double *X, int64_t nr, int64_t ld, double *tmp, int transpose);
void bf_fixed_ref_f32(const harp_rot *r, float *x, float *tmp, int transpose);
void bf_fixed_ref_f64(const harp_rot *r, double *x, double *tmp, int transpose);

/* butterfly.c */
harp_status bf_init(harp_rot *r, const harp_rot_params *p, int load);
harp_status bf_refresh(harp_rot *r);
void bf_free(harp_rot *r);
/* bf_schedule.c: learned radices (product n) and the order *fixed_k = K of the fixed stage (0 = none);
 * the Sylvester factor of each stage's mixer for chunk length m (HARP_ERR_INVALID_ARG, naming the
 * stage, when a stage straddling m does not split into a power of two below it) */
harp_status bf_schedule(int64_t n, const harp_rot_params *p, int *stages, int *T, int *fixed_k);
harp_status bf_chunk_split(const int *stages, int T, int64_t m, int *syl);
harp_status bf_mixer(int b, double *M);
const double *bf_mixer_of(const harp_rot *r, int b);
void bf_mixer_fill(const harp_rot *r, const bf_stage *st, double *M);
/* bf_fixed.c: the bucket tables of the fixed stage (after rot_hadk_init), and their release */
harp_status bf_fixed_init(harp_rot *r);
void bf_fixed_free(harp_rot *r);
/* bf_theta.c */
void bf_theta_enc_clear(harp_rot *r);
harp_status bf_theta_decode(harp_rot *r, int enc, const int8_t *q, const uint16_t *scales, const uint16_t *h);
/* A rotation whose θ has codes (rounded, or loaded: every folder stores int8 or fp16) keeps θ only as
 * those codes (bf_theta_decode drops the fp64 copy, a third of what a running model's butterfly
 * holds); view: r->theta, or the codes decoded into *tmp (the caller frees it; NULL = out of memory). */
const double *bf_theta_view(const harp_rot *r, double **tmp);
/* Group of every stage in θ order (pass, stage, group): nparam of group g = r->st[t].nparam. */
int64_t bf_group_count(const harp_rot *r);
harp_status bf_need(const harp_rot *r, const char *fn);   /* HARP_OK for a butterfly */

#endif
