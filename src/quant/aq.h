/* Quantizers of the weight + activation + KV-cache path (algorithms.md §6.1–§6.3): activations per
 * token and K/V per (token, head) or per group with real low-bit storage, the MSE-clipped weight grid
 * of QuaRot/GPTQ, and the progressive clip-ratio search. Module API of src/quant (not public).
 *
 * ---- activation / KV quantizer (§6.1) -------------------------------------------------------------
 * A row x (one token: a linear's input, or one position's K or V for all kv heads) is cut into groups
 * of `group` consecutive elements (group = n: per token; group = head_dim: per (token, head)). Per group:
 *   x_min = clip·min(min x, 0),  x_max = clip·max(max x, 0)          (0 is always representable)
 *   symmetric  (maxq = 2^(b−1)−1): s = max(−x_min, x_max)/maxq (0 → 1),  q = clamp(round(x/s), −maxq−1, maxq)
 *   asymmetric (maxq = 2^b−1): (0,0) → (−1,+1);  s = (x_max−x_min)/maxq,  z = round(−x_min/s),
 *                              q = clamp(round(x/s) + z, 0, maxq)
 *   x̂ = s·(q − z)   (z = 0 when symmetric);  round = half to even (torch.round).
 * Arithmetic is fp32. With scale_f16 the scale is rounded to fp16 FIRST (0 → the smallest fp16
 * subnormal, overflow → 65504) and z and q are computed with the rounded scale, so the stored planes
 * decode exactly to what the quantizer meant. Unlike QuaRot's group-wise activation path (which does
 * not include 0 in the range) every granularity includes 0 here, as §6.1 states: z then always fits
 * [0, maxq] and is stored as a uint8 integer.
 *
 * Storage (the planes a KV cache or an int8 GEMM reads), rows × groups:
 *   codes : per group ceil(group·b/8) bytes, a little-endian bit stream (code i at bits i·b … i·b+b−1,
 *           so b = 8 is one byte per code and b = 4 is two codes per byte, low nibble first; b = 3
 *           packs 8 codes in 3 bytes); symmetric codes are b-bit two's complement (b = 8: int8,
 *           b = 4: CUTLASS-style signed int4), asymmetric codes unsigned.
 *   scale : fp32 (scale_f16 = 0) or fp16 bits (scale_f16 = 1), one per group.
 *   zero  : uint8 in [0, maxq], one per group (asymmetric only).
 * Non-finite input is refused (HARP_ERR_NUMERIC naming the row), never turned into codes. */
#ifndef HARP_QUANT_AQ_H
#define HARP_QUANT_AQ_H

#include <stdint.h>

#include "harp/common.h"
#include "harp/qtensor.h"
#include "harp/quant.h"

typedef struct harp_aq_fmt {
    int bits;       /* 2 … 8 */
    int sym;        /* 1 symmetric, 0 asymmetric */
    int64_t group;  /* elements per group along the row, dividing n; 0 = the whole row */
    float clip;     /* clip ratio in (0, 1] */
    int scale_f16;  /* 1: scales stored as fp16 (the KV cache), 0: fp32 (transient activations) */
} harp_aq_fmt;

typedef struct harp_aq_planes {
    uint8_t *codes;     /* rows × harp_aq_row_bytes                    */
    float *scale;       /* rows × harp_aq_groups, when scale_f16 == 0  */
    uint16_t *scale16;  /* rows × harp_aq_groups, when scale_f16 == 1  */
    uint8_t *zero;      /* rows × harp_aq_groups, asymmetric only      */
} harp_aq_planes;

/* HARP_ERR_INVALID_ARG (one line naming `what`) unless f fits rows of n elements. */
harp_status harp_aq_check(const harp_aq_fmt *f, int64_t n, const char *what);
int64_t harp_aq_groups(const harp_aq_fmt *f, int64_t n);       /* per row */
int64_t harp_aq_group_bytes(const harp_aq_fmt *f, int64_t n);  /* code bytes of one group */
int64_t harp_aq_row_bytes(const harp_aq_fmt *f, int64_t n);    /* code bytes of one row */
/* Allocates the planes f needs for rows × n (harp_aq_planes_free releases them). */
harp_status harp_aq_planes_alloc(const harp_aq_fmt *f, int64_t rows, int64_t n, harp_aq_planes *p);
void harp_aq_planes_free(harp_aq_planes *p);
/* The planes of row `row` inside p (same layout), e.g. one position of a KV cache. */
harp_aq_planes harp_aq_planes_row(const harp_aq_fmt *f, int64_t n, const harp_aq_planes *p, int64_t row);

/* X (rows × n, leading dimension ldx ≥ n) → planes. Multi-threaded over rows; bit-identical to the
 * reference for any thread count. */
harp_status harp_aq_quantize(const harp_aq_fmt *f, const float *X, int64_t rows, int64_t n, int64_t ldx,
                             const harp_aq_planes *out);
/* planes → Y (rows × n, ldy ≥ n): Y = s·(q − z). */
harp_status harp_aq_dequantize(const harp_aq_fmt *f, const harp_aq_planes *in, int64_t rows, int64_t n, float *Y,
                               int64_t ldy);
/* X ← dequantize(quantize(X)) in place, without storage (bit-identical to the two calls). */
harp_status harp_aq_fake(const harp_aq_fmt *f, float *X, int64_t rows, int64_t n, int64_t ldx);
/* Plain single-threaded twins written from the formulas above (the format's definition). */
harp_status harp_aq_quantize_ref(const harp_aq_fmt *f, const float *X, int64_t rows, int64_t n, int64_t ldx,
                                 const harp_aq_planes *out);
harp_status harp_aq_dequantize_ref(const harp_aq_fmt *f, const harp_aq_planes *in, int64_t rows, int64_t n, float *Y,
                                   int64_t ldy);
/* Integer code of element i of a group (sign-extended when symmetric) from its packed bytes. */
int harp_aq_code_get(const uint8_t *group_codes, int64_t i, int bits, int sym);

/* ---- weights: MSE-clipped grid (§6.1 `--w_clip`, QuaRot/GPTQ WeightQuantizer.find_params(mse=True))
 * Start from the min/max grid of harp_rtn_fit; then for i = 0 … ⌊maxshrink·grid⌋ − 1, p = 1 − i/grid,
 * try the range (p·x_min, p·x_max) and keep the p with the smallest Σ|x̂ − x|^norm (strictly smaller
 * wins, so ties keep the wider range). Same storage convention as harp_rtn_fit / the scalar qtensor planes. */
typedef struct harp_wclip {
    int grid;          /* 100 */
    double maxshrink;  /* 0.8 */
    double norm;       /* 2.4 */
} harp_wclip;
harp_wclip harp_wclip_default(void);

/* A group-grid fitter with harp_rtn_fit's contract (ctx: the fitter's parameters). */
typedef void (*harp_wq_fit_fn)(const void *ctx, const double *x, int64_t len, int bits, int sym, float *scale,
                               int *zero);
/* harp_rtn_fit as a harp_wq_fit_fn (ctx unused) and the MSE-clip fitter (ctx: const harp_wclip *). */
void harp_wq_fit_minmax(const void *ctx, const double *x, int64_t len, int bits, int sym, float *scale, int *zero);
void harp_wq_fit_mse(const void *ctx, const double *x, int64_t len, int bits, int sym, float *scale, int *zero);
/* Round-to-nearest of W (m × n) on the grid of p (bits, group_size, symmetric) with a fitter per group:
 * the RTN of harp_quantize_linear when fit = harp_wq_fit_minmax, QuaRot's `--w_clip` RTN (= mse_clip)
 * when fit = harp_wq_fit_mse with NULL or the default parameters (others: HARP_ERR_INVALID_ARG).
 * *out as from harp_quantize_linear (free with harp_qtensor_free). */
harp_status harp_wq_rtn(const harp_quant_params *p, harp_wq_fit_fn fit, const void *fit_ctx, int64_t m, int64_t n,
                        const float *W, const char *what, harp_qtensor *out);

/* ---- clip-ratio search (§6.3; the schedule is OURS — the GBS paper's exact procedure is unpublished)
 * Classes (tensor classes of one layer, or (layer, class) pairs) are searched one after another; each
 * search is a ternary search of `iters` steps on [lo, hi] over the caller's loss with every other
 * ratio frozen at its current value ("gradual": earlier choices stay fixed). Each pass after the first
 * restarts around the previous result with the bracket [c − warm, c + warm] ∩ [lo, hi] (the caller maps
 * pass 0 to b+1 bits and pass 1 to b bits for the §6.3 warm start). The result of a class is the
 * best point the search evaluated (its current value and hi included), so the search never returns a
 * ratio with a larger loss than no clipping (hi = 1) or the starting ratio. Ties go to the larger
 * ratio. Deterministic: the same losses give the same ratios. */
typedef harp_status (*harp_clip_loss_fn)(void *user, int pass, int cls, const double *ratios, double *loss);

typedef struct harp_clip_search {
    int n_classes;
    int passes;    /* ≥ 1 */
    int iters;     /* ternary steps per class and pass (10: bracket 0.5·(2/3)^10 ≈ 0.009) */
    double lo, hi; /* 0.5, 1.0 */
    double warm;   /* half-width of the bracket of passes after the first (0.1) */
    harp_progress_fn progress;  /* stage "clip", done/total = classes·passes; may be NULL */
    void *progress_user;
} harp_clip_search;
harp_clip_search harp_clip_search_default(int n_classes);

/* ratios (n_classes): in = starting values (e.g. all 1), out = the chosen ratios; losses (may be NULL)
 * receives the loss of each class's final choice; *n_evals (may be NULL) the loss evaluations made. */
harp_status harp_clip_search_run(const harp_clip_search *s, harp_clip_loss_fn loss, void *user, double *ratios,
                                 double *losses, int64_t *n_evals);

#endif
