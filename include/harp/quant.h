/* Layer-wise weight quantizers: RTN, GPTQ and QuIP# (E8P12 / RVQ lattice codebooks with BlockLDLQ),
 * plus the Hessian handling they share (algorithms.md §1.5, §5, §6.1, §6.2).
 *
 * Conventions (algorithms.md §0.1): a linear is y = W x with W (m, n) row-major, m = out features,
 * n = in features. H (n, n) is the second moment of the layer input, row-major fp64. The proxy loss is
 * tr((Ŵ − W) H (Ŵ − W)ᵀ) / tr(W H Wᵀ).
 *
 * Every function here is a pure function of its inputs: the same inputs give bit-identical outputs
 * for any thread count (no racy float sums; reductions run in a fixed order). NaN/Inf in W or H is
 * rejected with HARP_ERR_NUMERIC, never turned into codes. */
#ifndef HARP_QUANT_H
#define HARP_QUANT_H

#include <stdint.h>

#include "harp/common.h"
#include "harp/qtensor.h"
#include "harp/qtype.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Hessians (§1.4, §1.5) */

/* Consumer form of a stored Hessian: H = sym(flatH) + mu muᵀ (mu may be NULL). flatH holds the
 * lower triangle row by row, element (i, j ≤ i) at i(i+1)/2 + j. H is (n, n), fp64. */
harp_status harp_hessian_from_flat(int64_t n, const float *flatH, const float *mu, double *H);

/* HARP_ERR_NUMERIC naming `what` if any entry of x (count entries) is NaN or Inf. */
harp_status harp_check_finite_f32(const float *x, int64_t count, const char *what);
harp_status harp_check_finite_f64(const double *x, int64_t count, const char *what);

/* QuIP#/HARP regularisation: H ← H / mean(diag H) + sigma·I (sigma = 0.01 in the reference).
 * Returns the mean diagonal used (through *mean_diag if not NULL). A zero or negative mean diagonal
 * is HARP_ERR_NUMERIC. Commutes with any orthogonal congruence H̃ = VᵀHV. */
harp_status harp_hessian_regularize(int64_t n, double *H, double sigma, double *mean_diag);

/* GPTQ damping: dead inputs (H_ii == 0) get H_ii = 1 and W[:, i] = 0 (W may be NULL), then
 * H_ii += percdamp · mean(diag H). Returns the number of dead columns through *n_dead (may be NULL). */
harp_status harp_hessian_damp_gptq(int64_t n, double *H, int64_t m, float *W, double percdamp,
                                   int64_t *n_dead);

/* Safe Cholesky (§1.5 `_safe_cholesky`): symmetrises A (n, n) in place, then factors A = L Lᵀ into
 * L (n, n) lower, upper part zeroed (L may equal A). On failure adds jitter τ_k·I with
 * τ_k = 10^(k−1)·1e−8·mean|diag A|, k = 1..5, warning through harp_log; if the 1e−4 step still
 * fails: HARP_ERR_NUMERIC. All arithmetic is fp64, which is the reference's last fallback, so no
 * separate precision retry exists. *jitter_steps (may be NULL) receives the k used (0 = none).
 * `what` names the matrix in messages. */
harp_status harp_safe_cholesky(int64_t n, double *A, double *L, int *jitter_steps, const char *what);

/* Relative proxy loss tr(ΔW H ΔWᵀ) / tr(W H Wᵀ), ΔW = Wq − W, computed in fp64 in a fixed order.
 * Returns NaN if tr(W H Wᵀ) is 0. */
double harp_proxy_loss(int64_t m, int64_t n, const float *W, const float *Wq, const double *H);
double harp_proxy_loss_f64(int64_t m, int64_t n, const double *W, const double *Wq, const double *H);

/* ---------------------------------------------------------------------------------------------
 * Quantizer parameters and per-linear result */

/* harp_qmethod (the solver: RTN, GPTQ, QuIP#) is declared in harp/qtype.h with the solver + bits →
 * qtype mapping (harp_qtype_for). The lattice codebook of a QuIP# linear IS its qtype (e8p2, rvq3,
 * rvq4); the names below are the spellings src/harpfit and its tests still use for it (aliases,
 * not a second enum or mapping; remove when harpfit says harp_qtype). */
typedef harp_qtype harp_codebook;
#define HARP_CODEBOOK_E8P12 HARP_QTYPE_E8P2
#define HARP_CODEBOOK_E8P12_RVQ3B HARP_QTYPE_RVQ3
#define HARP_CODEBOOK_E8P12_RVQ4B HARP_QTYPE_RVQ4

/* QTIP trellis code: how a 16-bit trellis state becomes a value (algorithms.md §5.6.3,
 * docs/format/trellis.md). TABLE is for tests of the search only (explicit state values). */
typedef enum harp_tcode {
    HARP_TCODE_1MAD = 1,  /* V = 1, computed: byte sum of an LCG step                       */
    HARP_TCODE_3INST = 2, /* V = 1, computed: two fp16 bit patterns from an LCG step, summed  */
    HARP_TCODE_HYB = 3,   /* V = 2, quantlut_sym: hash → 512 × 2 fp16 table + sign bit        */
    HARP_TCODE_TABLE = 4
} harp_tcode;
/* "1mad", "3inst", "hyb", "table"; NULL for an unknown value. */
const char *harp_tcode_name(harp_tcode c);
/* Parses "1mad" / "3inst" / "hyb"; HARP_ERR_INVALID_ARG naming the accepted values otherwise. */
harp_status harp_tcode_parse(const char *s, harp_tcode *out);

typedef struct harp_quant_params {
    harp_qmethod method;
    int bits;                    /* RTN/GPTQ: 2, 3, 4 or 8; QuIP#: 2, 3 or 4                          */
    /* scalar grids (RTN, GPTQ), §6.1 */
    int group_size;              /* 128; 0 = one group per row (per output channel)                   */
    int symmetric;               /* 0 = asymmetric min/max (default), 1 = symmetric                   */
    int mse_clip;                /* 0 = min/max grid (default); 1 = MSE-clipped grid per group (§6.1,
                                    QuaRot's --w_clip: harp_wclip_default's shrink search, fixed
                                    before GPTQ's sweep)                                             */
    /* GPTQ, §6.2 */
    double percdamp;             /* 0.01 (relative to mean diag H)                                    */
    int block_size;              /* 128 */
    int act_order;               /* 0; 1 = columns by decreasing H_ii (codes stay in column order)    */
    int static_groups;           /* 0 = groups fitted on the error-updated W (reference default)      */
    /* QuIP#, §1.5, §5.1, §5.4 */
    int regularize;              /* 1 = apply harp_hessian_regularize(sigma_reg) to H first           */
    double sigma_reg;            /* 0.01 */
    double scale_override;       /* > 0 replaces the codebook's opt_scale; defaults: 0.9 at 2 bits
                                    (paper scripts), −1 (⇒ opt_scale) at 3 and 4 bits               */
    double resid_scale_override; /* > 0 replaces opt_resid_scale; default −1                           */
    int tune_iters;              /* block coordinate-descent sweeps after LDLQ (reference: 10)        */
    /* QTIP, §5.6 (scale_override above: ≤ 0 means the QTIP default 0.9 at every bit width) */
    harp_tcode qtip_code;        /* HARP_TCODE_HYB (default), _1MAD or _3INST                          */
    uint64_t qtip_table_seed;    /* HYB: harp_hyb_table_build seed (0); the table is stored per linear */
    int qtip_gpu;                /* 1: the Viterbi passes on the CUDA device (same codes as the CPU)    */
    /* progress (per linear: stage "ldlq"/"tune"/"gptq"); may be NULL */
    harp_progress_fn progress;
    void *progress_user;
} harp_quant_params;

/* Reference defaults for a method and bit width. */
harp_quant_params harp_quant_default_params(harp_qmethod method, int bits);

/* Quantizes W (m, n) with input Hessian H (n, n) (undamped; RTN ignores it and it may be NULL
 * there) into *out, a harp_qtensor of type harp_qtype_for(p->method, p->bits) with its code planes
 * filled (no transforms: for QUIP, W and H are the already rotated W̃ and H̃, and the caller adds
 * signs, rotations and slice scales). W and H are not modified. On success *out owns its planes
 * (release with harp_qtensor_free); on failure it is zeroed. `what` names the linear in errors
 * ("layers.3.mlp.down_proj").
 *
 * Scalar (RTN, GPTQ): group g = p->group_size (n when 0 or ≥ n), codes unsigned in [0, 2^bits):
 * asymmetric codes as in §6.1; symmetric codes are stored offset, q = q_signed + 2^(bits−1), with
 * zero = 2^(bits−1) in every group, so one formula w = scale · (q − zero) decodes both; g_idx is
 * written with act-order and dynamic groups only.
 * QuIP#: codes run along the input dimension, 8 weights per code (§5.5); a width that is not a
 * multiple of 8 is quantized padded with zero columns (and an identity block in H, so padding never
 * feeds back into real columns); the decoders drop columns ≥ n. wscale = {Wscale, Wscale / r}.
 * proxy_loss is computed from the solver's own fp64 reconstruction (Wscale · (E8P + R/r)).
 * QTIP: BlockLDLQ with b = 16 over 16 × 16 tiles, each a tail-biting trellis path (§5.6,
 * docs/format/trellis.md); planes trellis, tlut (hyb only: harp_hyb_table_build(qtip_table_seed)),
 * wscale = rms(W̃) / (lut_rms · so) with so = scale_override if > 0 else 0.9, tcode. Widths are padded
 * to 16 as for QuIP#. Codes are identical for any thread count. */
harp_status harp_quantize_linear(const harp_quant_params *p, int64_t m, int64_t n, const float *W,
                                 const double *H, const char *what, harp_qtensor *out);

/* ---------------------------------------------------------------------------------------------
 * Building blocks (exposed for tests and for the pipeline) */

/* RTN group parameters of §6.1 for x[0..len): scale (fp32-rounded) and zero (integer). */
void harp_rtn_fit(const double *x, int64_t len, int bits, int symmetric, float *scale, int *zero);
/* Code of one value with the given parameters (unsigned storage convention above). */
int harp_rtn_code(double x, float scale, int zero, int bits, int symmetric);

/* E8P12 exact nearest-codeword encoder (§5.2.2) for one 8-vector; writes the decoded codeword to
 * out[8] when out is non-NULL. Ties between cosets go to +¼. */
uint16_t harp_e8p_encode(const double x[8], double out[8]);
/* E81B: the 256-entry 1-bit/weight residual table of §5.3 (index 56 = origin). */
void harp_e81b_decode(uint8_t idx, double out[8]);
uint8_t harp_e81b_encode(const double x[8], double out[8]);
/* Codebook quantizer of one 8-vector already divided by Wscale, for a lattice type cb (e8p2, rvq3,
 * rvq4): RVQ stages as in §5.3. Returns the first-stage code and stores the second in *code2 (if not
 * NULL). */
uint16_t harp_cb_quantize8(harp_qtype cb, double resid_scale, const double x[8], double out[8],
                           uint16_t *code2);
/* Decoded value of a code pair: E8P(c1) + R(c2)/resid_scale (c2 ignored at 2 bits). */
void harp_cb_decode8(harp_qtype cb, double resid_scale, uint16_t c1, uint16_t c2, double out[8]);
/* Reference constants of §5.1 for a lattice type (Wscale divisor; residual multiplier r). */
double harp_codebook_opt_scale(harp_qtype cb);
double harp_codebook_opt_resid_scale(harp_qtype cb);

/* Block LDL (§5.4) of an SPD H (n, n), n a multiple of b: H = L D Lᵀ with L (n, n) block unit
 * lower triangular and D (n/b, b, b) the diagonal blocks. Uses harp_safe_cholesky. */
harp_status harp_block_ldl(int64_t n, int b, const double *H, double *L, double *D,
                           int *jitter_steps, const char *what);

#ifdef __cplusplus
}
#endif
#endif
