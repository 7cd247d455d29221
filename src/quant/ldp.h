/* LDP ("Learnable Direct Partitioning", RCP arXiv 2502.15779), harp's post-training version
 * (algorithms.md §6.6; RCP trains the levels with the model, harp fits them per linear on the
 * calibration Hessian). Module API of src/quant (not public): the level parameterisation, the proxy
 * loss with its exact gradient, the fit, and the int4-activation GEMV of the ldp2 type.
 *
 * Parameters of one (row, group), θ = (β, α, φ0, φ1, φ2):
 *   s = softmax(φ),  c_0 = 0, c_k = s_0 + … + s_{k−1} (c_3 = 1),  ℓ_k = β + (α − β)·c_k,
 * so ℓ_0 = β ≤ ℓ_1 ≤ ℓ_2 ≤ ℓ_3 = α whenever α ≥ β (the fit never accepts α < β). A weight w is
 * coded by the nearest level (decision thresholds at the midpoints; ties to the lower level). */
#ifndef HARP_QUANT_LDP_H
#define HARP_QUANT_LDP_H

#include <stdint.h>

#include "harp/common.h"
#include "harp/qtensor.h"
#include "harp/quant.h"
#include "quant/blockfit.h"

#define HARP_LDP_NPARAM 5 /* β, α, φ0, φ1, φ2 */

/* Planes of ldp2: 0 qweight (2-bit codes, qblocks.h scalar packing), 1 levels (fp16, 4 per group). */
enum { QT_LDP_QWEIGHT = 0, QT_LDP_LEVELS = 1 };

/* The four levels of θ, and with J != NULL their Jacobian J[k][p] = ∂ℓ_k/∂θ_p. */
void harp_ldp_levels(const double theta[HARP_LDP_NPARAM], double lv[4], double J[4][HARP_LDP_NPARAM]);
/* Nearest of the four ordered levels: thresholds at the midpoints, ties to the lower level. "w above
 * the midpoint of ℓ_k, ℓ_{k+1}" is tested as w − ℓ_k > ℓ_{k+1} − w, which no rounding of the
 * midpoint can get wrong when two levels are a few ulps apart. */
static inline int harp_ldp_nearest(const double lv[4], double w) {
    return w - lv[2] > lv[3] - w ? 3 : w - lv[1] > lv[2] - w ? 2 : w - lv[0] > lv[1] - w ? 1 : 0;
}

/* Proxy loss of one row with frozen codes: L = Δ H Δᵀ, Δ = ŵ − w, ŵ_c = ℓ_{q_c}(θ_{group(c)}), H (n, n)
 * symmetric. theta holds HARP_LDP_NPARAM values per group (ceil(n / g) groups of g columns). With
 * grad != NULL also ∂L/∂θ (same layout): exact for the levels, the codes held fixed — the
 * straight-through estimate for the assignments. scratch: 2n + 4·ceil(n/g) doubles. */
double harp_ldp_row_loss(int64_t n, int64_t g, const double *w, const uint8_t *q, const double *theta,
                         const double *H, double *grad, double *scratch);

/* The LDP solver behind harp_quantize_linear (method ldp, 2 bits): initial clip range per group from
 * the MSE clip search of §6.1 (4 uniform levels), then `iters` alternations of (a) a GPTQ pass with
 * the current fp16 levels (nearest-level rounding with error feedback, gptq.c) and (b) a preconditioned
 * gradient descent on θ with the codes fixed. Keeps the best (codes, levels) by proxy loss. Writes
 * the levels plane and the unpacked codes q (m, n). Deterministic for any thread count. */
harp_status harp_ldp_quantize(const harp_quant_params *p, int64_t m, int64_t n, const float *W, const double *H,
                              const char *what, harp_qtensor *out, uint8_t *q);

/* Rows [r0, r0 + rows) of the ldp2 planes of an n-column matrix with ng groups per row (qweight: the
 * packed codes, lv16: the fp16 levels; stored form of docs/format/ldp.md) ↔ codes q (rows, n) and
 * levels (rows, ng, 4) as floats. Packing rounds the levels to fp16 (fit (b) keeps them fp16-exact). */
void harp_ldp_unpack(int64_t n, int64_t ng, int64_t r0, int64_t rows, const uint8_t *qweight, const uint16_t *lv16, uint8_t *q,
                     float *levels);
void harp_ldp_pack(int64_t n, int64_t ng, int64_t r0, int64_t rows, const uint8_t *q, const float *levels, uint8_t *qweight,
                   uint16_t *lv16);

/* ---- fit (b): per transformer block (ldp_block.c) ------------------------------------------------
 * The LDP state of one linear of a block: codes and fp16-exact levels (fit (a)'s result on entry, the
 * fitted ones on return), group size g (columns; n for one group per row). */
typedef struct harp_ldpb_lin {
    int64_t g;
    double scale;   /* the linear's weight is scale · level (the folder's slice scale)      */
    uint8_t *q;     /* (m, n) codes 0..3                              */
    float *levels;  /* (m, ceil(n/g), 4), non-decreasing per group     */
} harp_ldpb_lin;

typedef struct harp_ldpb_params {
    int steps;           /* Adam steps                                                        */
    double lr;           /* step: lr·(initial α − β of the group) for β and α, lr for φ          */
    int reassign_every;  /* K > 0: every K steps the codes become the nearest level of the FP
                            weight (thresholds at the midpoints); 0 = codes fixed              */
    int val_seqs;        /* the last val_seqs sequences of X are held out: fitted on the others,
                            candidates chosen on these (0: chosen on the fitted ones)          */
    const char *stage;   /* progress stage name (NULL: "ldp block fit")                        */
    harp_progress_fn progress;
    void *progress_user;
    int gpu;             /* 1: the block's forward and backward on the CUDA device (blockfit_gpu.h:
                            the same fp64 block up to summation order); the Adam steps stay here */
} harp_ldpb_params;

typedef struct harp_ldpb_report {
    double loss0, loss_best; /* block loss of the entry state and of the state returned, on the
                                held-out sequences when there are some                         */
    int best_step;           /* step whose (codes, fp16 levels) were kept (0 = the entry state)   */
} harp_ldpb_report;

/* Minimises ‖block_q(X) − Y‖² / ‖Y − X‖² over the LDP parameters (β, α, φ per group) of every linear
 * i with lin[i].q != NULL (the others stay at the FP weights of fp), with Adam: exact gradient of the
 * levels through the block backward and harp_ldp_levels' Jacobian, straight-through for the codes.
 * Candidates (codes, fp16-rounded levels) are scored every K steps (every 10 when K = 0) and at the
 * end, on the held-out sequences when p->val_seqs > 0; the best, entry state included, is returned. X, Y: rows × d. Deterministic (single-threaded
 * BLAS, fixed loop order), so independent of the thread count. */
harp_status harp_ldpb_fit(const harp_blk_dims *dm, const harp_blk_w *fp, const double *X, const double *Y,
                          harp_ldpb_lin lin[HARP_BLK_NLIN], const harp_ldpb_params *p, harp_ldpb_report *rep);
/* The same with the quantized block running W/A/KV slots wk (blockfit.h; NULL = none): its online
 * rotations exact, its activation / KV quantizers straight-through in the gradient. Y stays the
 * caller's target (the FP block's output). */
harp_status harp_ldpb_fit_wakv(const harp_blk_dims *dm, const harp_blk_wakv *wk, const harp_blk_w *fp, const double *X,
                               const double *Y, harp_ldpb_lin lin[HARP_BLK_NLIN], const harp_ldpb_params *p,
                               harp_ldpb_report *rep);

/* The loss harp_ldpb_fit minimises at given parameters: theta[i] (m, ceil(n/g), 5) for every i with
 * lin[i].q != NULL (codes and scale from lin[i]; its levels only checked), and with grad != NULL the
 * gradient dL/dθ into grad[i] (same layout; the codes held). For the gradient tests. */
harp_status harp_ldpb_loss(const harp_blk_dims *dm, const harp_blk_w *fp, const double *X, const double *Y,
                           harp_ldpb_lin lin[HARP_BLK_NLIN], double *const theta[HARP_BLK_NLIN], double *const grad[HARP_BLK_NLIN],
                           double *L);

/* y = W̃ x̂ with x̂ the per-token symmetric int4 quantization of x (harp_aq, one fp32 scale):
 * y_r = s · Σ_c ℓ[q_rc] · xq_c. The reference (double accumulation, single thread, aq reference
 * quantizer) defines it; the fast version (AVX2 where available) sums in float. */
harp_status harp_ldp_gemv_a4_ref(const harp_qtensor *w, const float *x, float *y);
harp_status harp_ldp_gemv_a4(const harp_qtensor *w, const float *x, float *y);
/* "avx512vnni", "avx2" or "c": the kernel qt_ldp_gemv (a4 = 0) / harp_ldp_gemv_a4 (a4 = 1) runs on this CPU. */
const char *harp_ldp_gemv_isa(int a4);

#endif
