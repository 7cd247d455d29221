/* Rotations for incoherence processing: Hadamard (any LLM width), randomized Hadamard (RHT),
 * grouped sequency-ordered Walsh-Hadamard (GSR), Haar-random and Kronecker baselines, and HARP's
 * learned mixed-radix butterfly with its hand-written backward pass.
 *
 * Convention (algorithms.md §0.1): a rotation R is an orthogonal n×n matrix used as a ROW transform,
 * X ← X·R (forward) or X ← X·Rᵀ (inverse), applied independently to every row of a row-major matrix.
 * Weights are rotated as W̃ = Uᵀ W V, Hessians as H̃ = Vᵀ H V. */
#ifndef HARP_ROTATE_H
#define HARP_ROTATE_H

#include <stddef.h>
#include <stdint.h>

#include "harp/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum harp_rot_kind {
    HARP_ROT_HADAMARD = 0,          /* Had_n = (hadK ⊗ H_{2^k})/√n, QuIP# chunk-major (§3.4)     */
    HARP_ROT_RHT = 1,               /* diag(s)·Had_n, s random ±1 (§2.1)                          */
    HARP_ROT_GSR = 2,               /* blockdiag(W_Gᵀ/√G), W_G sequency-ordered Walsh (§6.4)       */
    HARP_ROT_RANDOM_ORTHOGONAL = 3, /* Haar-random, dense (quality baseline)                     */
    HARP_ROT_KRON = 4,              /* P_out (A⊗B) P_in, QuIP's Kronecker baseline, dense (§2.3)  */
    HARP_ROT_BUTTERFLY = 5          /* HARP mixed-radix Cayley·mixer stages (§4.2–§4.4)           */
} harp_rot_kind;

/* "hadamard", "rht", ...; NULL for an unknown kind. */
const char *harp_rot_kind_name(harp_rot_kind k);
/* Parses a kind name; HARP_ERR_INVALID_ARG for an unknown one. */
harp_status harp_rot_kind_parse(const char *name, harp_rot_kind *out);

#define HARP_ROT_MAX_STAGES 64

/* Butterfly schedules (algorithms.md §4.2; docs/results/harp-any-width.md).
 * GREEDY: the reference's greedy mixed-radix factorisation of n; every stage learned, non-power-of-two
 *   radices with a fixed random orthogonal mixer (at θ = 0 the RHT only for n a power of two).
 * HADAMARD: n = K·m with K the order the RHT uses (harp_hadamard_choose_k). A fixed first stage
 *   F = (hadK ⊗ I_m)/√K mixes the chunk index (the RHT's ±1 hadK, shared by all groups), then the
 *   greedy stages, learned, whose fixed mixers are Sylvester on the digits inside the chunk m and the
 *   identity on the digits of the chunk index (H_h/√h ⊗ I for a stage that straddles m), R = F·B. At
 *   θ = 0, R = (hadK ⊗ H_m)/√n = Had_n exactly (no permutation), so HARP starts at the RHT for every
 *   width that has one. For n a power of two both schedules are the same rotation (and blob). */
typedef enum harp_bf_schedule { HARP_BF_SCHEDULE_GREEDY = 0, HARP_BF_SCHEDULE_HADAMARD = 1 } harp_bf_schedule;
/* "greedy", "hadamard"; NULL for an unknown value. */
const char *harp_bf_schedule_name(harp_bf_schedule s);
harp_status harp_bf_schedule_parse(const char *name, harp_bf_schedule *out);

typedef struct harp_rot_params {
    /* gsr */
    int gsr_group;          /* G: power of two dividing n; 0 (default) → 128, or n if n < 128; -1 → n (ungrouped) */
    int gsr_signs;          /* 1: R = diag(s)·blockdiag(...), s random ±1 from the seed */
    /* butterfly */
    int schedule;           /* harp_bf_schedule (0 = greedy) */
    int base_b, max_b;      /* greedy radices (§4.2); 0 → 8, 8 */
    int n_stages;           /* > 0: use stages[0..n_stages) instead of the greedy ones (schedule hadamard:
                               a stage straddling the chunk length n/K must split there into a power
                               of two below it) */
    int stages[HARP_ROT_MAX_STAGES];
    int n_passes;           /* 0 → 1 */
    int givens_b2;          /* 1: b = 2 stages use one Givens angle per block instead of Cayley */
    double theta_clip;      /* > 0: X = c·tanh(θ) (§4.4); 0 = none (paper) */
    double theta_init_scale; /* > 0: θ ~ N(0, scale²) from the seed; 0 → θ = 0 (paper) */
} harp_rot_params;

/* Paper defaults: gsr_group 128, base_b = max_b = 8, one pass, Cayley everywhere, no clip, θ = 0. */
void harp_rot_params_default(harp_rot_params *p);

typedef struct harp_rot harp_rot;

/* Creates a rotation of dimension n. params may be NULL (defaults). seed drives every random choice
 * (signs, Haar matrices, permutations, initial θ); the butterfly's non-power-of-two mixers are fixed
 * per radix (independent of seed) and are stored in the serialised blob. Errors: n without a
 * Hadamard construction (hadamard/rht), G not a power of two dividing n (gsr), bad schedule. */
harp_status harp_rot_create(harp_rot_kind kind, int64_t n, const harp_rot_params *params, uint64_t seed,
                            harp_rot **out);
void harp_rot_destroy(harp_rot *r);

harp_rot_kind harp_rot_get_kind(const harp_rot *r);
int64_t harp_rot_dim(const harp_rot *r);
/* Hadamard/RHT: the K of n = K·2^k (1 for powers of two); 0 for other kinds. */
int harp_rot_hadamard_k(const harp_rot *r);
/* Butterfly: number of learned stages per pass and their radices (NULL for other kinds). */
int harp_rot_butterfly_stages(const harp_rot *r, const int **stages);
int harp_rot_butterfly_passes(const harp_rot *r);
/* Butterfly: the order K of its fixed Hadamard stage (schedule hadamard, n not a power of two); else 0. */
int harp_rot_butterfly_fixed_k(const harp_rot *r);

/* ---- application ---------------------------------------------------------------------------------
 * X is rows×n row-major with leading dimension ld (≥ n; 0 → n), transformed in place:
 * transpose = 0 → X ← X·R, transpose = 1 → X ← X·Rᵀ (= the inverse). Multi-threaded over rows
 * (OpenMP, harp_set_threads). Deterministic: results do not depend on the thread count. */
harp_status harp_rot_apply(const harp_rot *r, float *X, int64_t rows, int64_t ld, int transpose);
harp_status harp_rot_apply_f64(const harp_rot *r, double *X, int64_t rows, int64_t ld, int transpose);
/* Plain single-threaded reference twins (no layout tricks, textbook loops) used by the tests. */
harp_status harp_rot_apply_ref(const harp_rot *r, float *X, int64_t rows, int64_t ld, int transpose);
harp_status harp_rot_apply_ref_f64(const harp_rot *r, double *X, int64_t rows, int64_t ld, int transpose);

/* W (m×n) ← Uᵀ W V  (inverse = 0)   or   W ← U W Vᵀ  (inverse = 1). U or V may be NULL (identity). */
harp_status harp_rot_weight(const harp_rot *U, const harp_rot *V, float *W, int64_t m, int64_t n, int inverse);
harp_status harp_rot_weight_f64(const harp_rot *U, const harp_rot *V, double *W, int64_t m, int64_t n,
                                int inverse);
/* H (n×n, symmetric) ← Vᵀ H V in fp64 (inverse = 1: H ← V H Vᵀ). */
harp_status harp_rot_hessian_f64(const harp_rot *V, double *H, int64_t n, int inverse);

/* Dense R (n×n row-major, fp64) such that forward = X·R. For tests and small n. */
harp_status harp_rot_materialize(const harp_rot *r, double *R);

/* ---- serialisation (docs/format/rotation.md) ------------------------------------------------------
 * Every parameter is stored bit-exactly (signs, Haar matrices, permutations, butterfly mixers and θ),
 * with a version and a checksum. *blob is malloc'd (harp_free). name labels error messages
 * (a file path or "rotation blob"). */
harp_status harp_rot_serialize(const harp_rot *r, uint8_t **blob, size_t *size);
harp_status harp_rot_deserialize(const uint8_t *blob, size_t size, const char *name, harp_rot **out);
harp_status harp_rot_save(const harp_rot *r, const char *path);   /* atomic write */
harp_status harp_rot_load(const char *path, harp_rot **out);

/* ---- Hadamard constructions (§3) ----------------------------------------------------------------- */

/* K chosen for n by the robust rule of §3.3 (1 for powers of two). HARP_ERR_UNSUPPORTED if none. */
harp_status harp_hadamard_choose_k(int64_t n, int *K);
/* Fills H (K×K, row-major, entries ±1) with the construction used for K (QuIP#'s matrix for
 * K ∈ {12,20,28,36,52,60,108,116,124,140,156,172}). construction (may be NULL) receives a short
 * description ("paley1 q=11", "williamson t=43", "sylvester", "double(20)", ...). */
harp_status harp_hadamard_matrix(int K, int8_t *H, const char **construction);
/* In-place normalised fast Walsh–Hadamard transform of one vector (natural / Sylvester order,
 * scale 1/√n), n a power of two; HARP_ERR_INVALID_ARG otherwise. The rotation module's FWHT kernel
 * (bit-identical to its plain reference), for callers that need the bare transform. */
harp_status harp_fwht_f32(float *v, int64_t n);
/* Sequency (number of sign changes) of a length-n vector; zeros are skipped. */
int harp_sequency(const double *v, int64_t n, int64_t stride);

/* ---- butterfly: parameters, forward / backward for the HARP fitting loop (§4.8) -----------------
 * θ layout (one flat fp64 vector): for pass p, stage t, group c (c = blk·step_t + s, §4.3):
 * Cayley stage: the strict upper triangle s_ij, i < j, in triu order (0,1),(0,2)…(0,b−1),(1,2)…;
 * Givens stage (b = 2, givens_b2): one angle. */
int64_t harp_rot_butterfly_num_params(const harp_rot *r);
harp_status harp_rot_butterfly_get_theta(const harp_rot *r, double *theta);
/* Sets θ and recomputes the Cayley blocks once (they are cached for every later application). */
harp_status harp_rot_butterfly_set_theta(harp_rot *r, const double *theta);

/* θ storage encodings (algorithms.md §4.9). INT8: per group (the b(b−1)/2 values of one block),
 * scale = fp16(max|θ|/127) (1.0 for an all-zero group), q = clamp(round_half_even(θ/scale), ±127),
 * θ ← q·scale. FP16: θ ← fp16(θ). The rounded θ replaces the current one (blocks are recomputed), and
 * serialisation then stores the codes (blob version 2), which reload to exactly the same θ. Any later
 * set_theta returns the rotation to F64. */
typedef enum harp_theta_enc { HARP_THETA_F64 = 0, HARP_THETA_INT8 = 1, HARP_THETA_FP16 = 2 } harp_theta_enc;
harp_status harp_rot_butterfly_round_theta(harp_rot *r, harp_theta_enc enc);
harp_theta_enc harp_rot_butterfly_theta_enc(const harp_rot *r);
/* Groups of θ (P·Σ_t n/b_t) and, per group in θ order, its parameter count (b(b−1)/2 or 1). */
int64_t harp_rot_butterfly_num_groups(const harp_rot *r);
harp_status harp_rot_butterfly_group_sizes(const harp_rot *r, int *sizes);

/* Forward cache: the stage inputs of the last forward_batch, needed by backward. Reusable. */
typedef struct harp_rot_cache harp_rot_cache;
harp_rot_cache *harp_rot_cache_create(void);
void harp_rot_cache_destroy(harp_rot_cache *c);

/* Y = X·R for rows×n X (Y may equal X). With cache != NULL the stage inputs are kept for backward. */
harp_status harp_rot_butterfly_forward_batch(const harp_rot *r, const double *X, int64_t rows, double *Y,
                                             harp_rot_cache *cache);
harp_status harp_rot_butterfly_forward_batch_f32(const harp_rot *r, const float *X, int64_t rows, float *Y,
                                                 harp_rot_cache *cache);
/* Given dL/dY (rows×n) of the cached forward: dX = dL/dX (may be NULL; may equal dY) and
 * dtheta += dL/dθ (may be NULL; accumulates, so several uses of one rotation add up). Computed in fp64
 * (the _f32 variants convert), stage inputs recomputed backwards from the cached output (§4.8 a).
 * dθ is the exact derivative w.r.t. the stored upper-triangle parameters (S_ij = s_ij, S_ji = −s_ij),
 * i.e. G_S,ij − G_S,ji; the reference's full-matrix θ gradient is half of it, so a fitting loop that
 * must reproduce the reference's Adam trajectory bit for bit (ε included) should feed Adam dθ/2. */
harp_status harp_rot_butterfly_backward(const harp_rot *r, const harp_rot_cache *cache, const double *dY,
                                        double *dX, double *dtheta);
harp_status harp_rot_butterfly_backward_f32(const harp_rot *r, const harp_rot_cache *cache, const float *dY,
                                            float *dX, double *dtheta);

#ifdef __cplusplus
}
#endif
#endif
