/* Training forward and hand-written backward of one Llama decoder block, in fp64 (module API of
 * src/quant; the CPU reference that LDP fit (b) runs on and that a CUDA twin will be tested against).
 * The inference forward (model/forward.c) is a different thing: it works in fp32 through a KV cache;
 * this one takes nseq independent sequences of T tokens at once (positions 0..T-1 each), keeps what
 * the backward pass needs, and returns gradients w.r.t. the block input and every weight (llm.c's way).
 *
 * Ops in order (model/forward.c's layer_forward, same conventions):
 *   h1 = RMSNorm(x)·attn_norm;  q|k|v = h1·Wqᵀ | h1·Wkᵀ | h1·Wvᵀ;  RoPE on q, k (harp_rope: position
 *   of row t of a sequence is t, angle t·inv_freq[i], layout HALF or INTERLEAVED);  causal GQA softmax
 *   attention (query head h reads kv head h / (nh / nkv), scale 1/√hd);  x2 = x + ctx·Woᵀ;
 *   h2 = RMSNorm(x2)·ffn_norm;  a = silu(h2·Wgateᵀ) ⊙ (h2·Wupᵀ);  y = x2 + a·Wdownᵀ.
 * RMSNorm: x / √(mean(x²) + eps).
 *
 * W/A/KV (issue 14, the layer slots of model/layer.h; a cache allocated without them runs the plain
 * block above, bit for bit): the input of linear group g (HARP_BLK_IN_*) is rotated online,
 * X ← X·rot_in[g] (R_o at o's input, R4 at down's), then fake-quantized by aq[g] (quant/aq.h, in
 * fp32 as the inference forward does); q and k get r3 per head after RoPE (X ← X·R3 on every
 * head_dim slice); K (after R3) and V are fake-quantized by kvq[0] / kvq[1] before attention reads
 * them. Rotations run in fp64 (harp_rot_apply_f64; the backward applies the transpose). The backward
 * treats every quantizer as the identity (straight-through estimator): the exact gradient of the
 * surrogate block whose quantizers output input + (their rounding error frozen at the evaluation
 * point), the block `frozen` computes (for the tests). */
#ifndef HARP_QUANT_BLOCKFIT_H
#define HARP_QUANT_BLOCKFIT_H

#include <stdint.h>

#include "harp/common.h"
#include "harp/model.h"
#include "harp/rotate.h"
#include "quant/aq.h"

/* Linear-group inputs (the HARP_LG_* order of model/layer.h), and the quantizer sites: those four,
 * then K and V. */
enum { HARP_BLK_IN_QKV, HARP_BLK_IN_O, HARP_BLK_IN_UG, HARP_BLK_IN_DOWN, HARP_BLK_NIN };
enum { HARP_BLK_QS_K = HARP_BLK_NIN, HARP_BLK_QS_V, HARP_BLK_NQS };

/* The seven linears in checkpoint order (the HARP_LIN_* order of model/layer.h). */
enum { HARP_BLK_Q, HARP_BLK_K, HARP_BLK_V, HARP_BLK_O, HARP_BLK_GATE, HARP_BLK_UP, HARP_BLK_DOWN, HARP_BLK_NLIN };

typedef struct harp_blk_dims {
    int d, nh, nkv, hd, hid;  /* width, query heads, kv heads (divides nh), head dim (even), hidden */
    int T, nseq;              /* tokens per sequence, sequences: rows = T·nseq, sequence-major      */
    harp_rope_layout rope;
    double eps;
    const double *inv_freq;   /* hd/2 RoPE frequencies (the model's, scaling applied)               */
} harp_blk_dims;

/* The block's W/A/KV slots (NULL = off; see above). Not owned. */
typedef struct harp_blk_wakv {
    const harp_rot *rot_in[HARP_BLK_NIN], *r3;
    const harp_aq_fmt *aq[HARP_BLK_NIN], *kvq[2];
    const double *const *frozen; /* NULL, or HARP_BLK_NQS arrays (NULL where a site is off): site s
                                    outputs input + frozen[s] instead of quantizing (the surrogate) */
} harp_blk_wakv;

/* Weights (or their gradients, same layout): lin[i] row-major out × in (harp_blk_lin_shape). */
typedef struct harp_blk_w {
    double *attn_norm, *ffn_norm; /* d each */
    double *lin[HARP_BLK_NLIN];
} harp_blk_w;

/* What the forward pass keeps for the backward pass (harp_blk_cache_alloc sizes it for dims). */
typedef struct harp_blk_cache {
    /* h1, ctx, h2, a: the inputs the linears see (rotated and quantized when wk says so);
       q, k, v: what attention reads (after RoPE, R3 and the KV quantizers) */
    double *x, *r1, *h1, *q, *k, *v, *P, *ctx, *x2, *r2, *h2, *g, *u, *a, *y;
    harp_blk_wakv wk;           /* the slots forward and backward run with (all NULL: none)     */
    double *qerr[HARP_BLK_NQS]; /* per active quantizer site: its output − its input (else NULL) */
} harp_blk_cache;

/* HARP_ERR_SHAPE (or the quantizer's error) naming the site when wk's rotations or quantizers do not fit
 * dm's widths, or a quantizer lacks its frozen error where wk->frozen is given. */
harp_status harp_blk_wakv_check(const harp_blk_dims *dm, const harp_blk_wakv *wk);
/* out × in of linear i. */
void harp_blk_lin_shape(const harp_blk_dims *dm, int i, int64_t *out, int64_t *in);
/* HARP_ERR_SHAPE naming the problem when dims are not a block (heads, divisibility, even hd). */
harp_status harp_blk_dims_check(const harp_blk_dims *dm);

harp_status harp_blk_cache_alloc(const harp_blk_dims *dm, harp_blk_cache *c);
/* The same for the block with W/A/KV slots wk (copied; NULL = none): HARP_ERR_SHAPE when a rotation
 * or quantizer does not fit its width. */
harp_status harp_blk_cache_alloc_wakv(const harp_blk_dims *dm, const harp_blk_wakv *wk, harp_blk_cache *c);
void harp_blk_cache_free(harp_blk_cache *c);
/* Weights/gradients with every array allocated (zeroed) for dims; free with harp_blk_w_free. */
harp_status harp_blk_w_alloc(const harp_blk_dims *dm, harp_blk_w *w);
void harp_blk_w_free(harp_blk_w *w);

/* RoPE in place on rows × heads·hd (row r at position r mod T); sign −1 rotates back (the transpose:
 * RoPE's backward). */
void harp_blk_rope(const harp_blk_dims *dm, double *x, int heads, double sign);

/* y = block(x) for x (rows × d) with c's W/A/KV slots; fills c (c->y = the output, rows × d). Errors
 * only with quantizers (HARP_ERR_OOM for their fp32 scratch, HARP_ERR_NUMERIC for non-finite input). */
harp_status harp_blk_forward(const harp_blk_dims *dm, const harp_blk_w *w, const double *x, harp_blk_cache *c);
/* Given dL/dy (rows × d) and the cache of the forward pass on the same weights (its W/A/KV slots): dL/dx (rows × d, NULL
 * to skip) and dL/dW of every weight into gw (overwritten; gw->lin[i] == NULL skips linear i's and
 * NULL norm arrays skip the norms'). Scratch is allocated here: HARP_ERR_OOM when it cannot be. */
harp_status harp_blk_backward(const harp_blk_dims *dm, const harp_blk_w *w, const harp_blk_cache *c, const double *dy,
                              double *dx, harp_blk_w *gw);

#endif
