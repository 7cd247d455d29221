/* Offline rotation of a Llama-family model for weight + activation + KV-cache quantization, as functions
 * over plain fp32 arrays (algorithms.md §6.5, QuaRot / SpinQuant placement). Module API of src/qmodel.
 *
 * Row convention (harp/rotate.h): activations are rows, a linear is y = x·Wᵀ with W (out × in), a
 * rotation R acts as x ← [x, 0]·R (zero-padded when the rotation expands the width, had_pad.h).
 *   norm folding  W ← W·diag(γ) for the consumers of each RMSNorm (q, k, v; gate, up; head), γ ← 1.
 *   R1 (d → d')   residual stream: embedding rows and the inputs of q, k, v, gate, up, head:  W ← [W, 0]·R1;
 *                 outputs of o and down: W ← R1ᵀ·[W; 0]. RMSNorm keeps dividing by the original d.
 *   R2 (hd, per layer, SpinQuant): v's output rows per kv head W_h ← R2ᵀ·W_h (bias b_h ← b_h·R2), o's
 *                 input columns per head W_h ← W_h·R2. No online op.
 *   R3 (online)   q and k per head after RoPE: x_h ← x_h·Had_hd (plain Hadamard; q·k is unchanged).
 *   R4 (I → I')   online on the down-projection input x ← [x, 0]·Had_I', and offline W_down ← [W_down, 0]·Had_I'.
 * QuaRot's embedding-mean subtraction is skipped (it changes an RMSNorm model's function, §9.7). */
#ifndef HARP_QMODEL_WAKV_H
#define HARP_QMODEL_WAKV_H

#include <stdint.h>

#include "harp/common.h"
#include "model/model.h"
#include "rotate/had_pad.h"

typedef struct harp_wakv_dims {
    int64_t d, ffn, vocab, head_dim;
    int n_layer, n_head, n_kv;
} harp_wakv_dims;

/* One decoder layer (shapes as (rows, cols), PyTorch layout). Biases may be NULL. */
typedef struct harp_wakv_layer {
    float *attn_norm;            /* (d)                                  */
    float *wq, *wk, *wv, *wo;    /* (H·hd, d) (KV·hd, d) (KV·hd, d) (d, H·hd) */
    float *bq, *bk, *bv;         /* (H·hd) (KV·hd) (KV·hd)               */
    float *ffn_norm;             /* (d)                                  */
    float *w_gate, *w_up, *w_down; /* (I, d) (I, d) (d, down_in)         */
} harp_wakv_layer;

typedef struct harp_wakv_weights {
    harp_wakv_dims dims;         /* dims.d: the stored residual width (d' after R1 expansion)   */
    int64_t norm_div;            /* RMSNorm divides Σx² by this (the original d); 0 → dims.d */
    int64_t down_in;             /* down's input width (I' after R4 expansion); 0 → dims.ffn */
    float *embed;                /* (vocab, d)                           */
    float *head;                 /* (vocab, d); NULL = tied to embed     */
    float *final_norm;           /* (d)                                  */
    harp_wakv_layer *layers;     /* n_layer                              */
} harp_wakv_weights;

/* Releases arrays allocated by harp_wakv_rotate (not w itself). */
void harp_wakv_weights_free(harp_wakv_weights *w);

/* ---- rotation choice ------------------------------------------------------------------------------ */

typedef enum harp_wakv_rkind {
    HARP_WAKV_ROT_NONE = 0,
    HARP_WAKV_ROT_RANDOM = 1,    /* Haar-random orthogonal from the seed                           */
    HARP_WAKV_ROT_HADAMARD = 2,  /* diag(s)·Had (QuaRot's random Hadamard), any width by expansion */
    HARP_WAKV_ROT_GSR = 3        /* blockdiag of sequency-ordered Walsh blocks of G (§6.4)          */
} harp_wakv_rkind;

/* "none", "random", "hadamard", "gsr"; parse gives HARP_ERR_INVALID_ARG with one line otherwise. */
const char *harp_wakv_rkind_name(harp_wakv_rkind k);
harp_status harp_wakv_rkind_parse(const char *s, harp_wakv_rkind *k);

typedef struct harp_wakv_rot_params {
    harp_wakv_rkind r1, r2;
    int gsr_block;   /* G (power of two); 0 = 128, lowered to the largest power of two dividing the width */
    int r3, r4;      /* online Hadamards on q/k (per head) and on the down-projection input */
    int ro;          /* online Hadamard of n_heads·head_dim on the o-projection input (QuaRot's online,
                        across-heads half of R2; off by default, the wakv pipeline turns it on with A < 16) */
    int r1_expand;   /* 1: a Hadamard R1 zero-pads d to the nearest width with a construction; 0: refuse */
    uint64_t seed;
} harp_wakv_rot_params;

/* QuaRot defaults: R1 = R2 = Hadamard, R3 and R4 on, expansion allowed, seed 0. */
harp_wakv_rot_params harp_wakv_rot_params_default(void);

typedef struct harp_wakv_rots {
    harp_padrot *r1;     /* d → d'; NULL = none                  */
    harp_padrot **r2;    /* n_layer entries, head_dim; NULL = none */
    harp_padrot *r3;     /* head_dim, plain Hadamard; NULL = off  */
    harp_padrot *r4;     /* I → I', plain Hadamard; NULL = off    */
    harp_padrot *ro;     /* n_heads·head_dim, plain Hadamard; NULL = off */
    int n_layer;
} harp_wakv_rots;

/* Builds the rotations for a model. Refused with one line: R3 or a Hadamard R2 for a head_dim without
 * a Hadamard matrix (a padded head would change the KV-cache layout), a GSR block that is not a power
 * of two or (when given) does not divide the width, a random rotation wider than 16384. Seeds: R1 from
 * harp_seed_mix(seed, 1), R2 of layer l from harp_seed_mix(seed, 1000 + l). */
harp_status harp_wakv_rots_create(const harp_wakv_rot_params *p, const harp_wakv_dims *dims, harp_wakv_rots *out);
void harp_wakv_rots_free(harp_wakv_rots *r);

/* ---- array-level operations ----------------------------------------------------------------------- */

/* W (m × n) ← W·diag(γ). */
void harp_wakv_fold_norm(const float *gamma, int64_t n, float *W, int64_t m);
/* Input side: Wout (m × n') = [W, 0]·R for W (m × n). (An identity is harp_padrot_wrap(NULL, n).) */
harp_status harp_wakv_rot_in(const harp_padrot *R, const float *W, int64_t m, float *Wout);
/* Output side: Wout (n' × k) = Rᵀ·[W; 0] for W (n × k); Wout may be W when n' = n. */
harp_status harp_wakv_rot_out(const harp_padrot *R, const float *W, int64_t k, float *Wout);
/* Per head, output side, in place: head h's rows of W (n_heads·hd × k) ← R2ᵀ·W_h, b_h ← b_h·R2 (b may be NULL). */
harp_status harp_wakv_rot_heads_out(const harp_padrot *R2, float *W, float *b, int n_heads, int64_t k);
/* Per head, input side, in place: head h's columns of W (m × n_heads·hd) ← W_h·R2. */
harp_status harp_wakv_rot_heads_in(const harp_padrot *R2, float *W, int64_t m, int n_heads);

/* Online R3: each head of X (rows × n_heads·hd, leading dimension ld) ← x_h·R3, in place. */
harp_status harp_wakv_r3_apply(const harp_padrot *R3, float *X, int64_t rows, int64_t ld, int n_heads);
/* Online R4: Y (rows × I') = [X, 0]·R4 for X (rows × I) — harp_padrot_fwd. (R_o is the same
 * operation on the o-projection input.) */
harp_status harp_wakv_r4_apply(const harp_padrot *R4, const float *X, int64_t ldx, float *Y, int64_t ldy, int64_t rows);

/* One layer of the offline step (for a pipeline that streams layers): out gets new arrays (free with
 * harp_wakv_layer_free) holding layer l of `in` with its norms folded, R1, R2[l] and R4 fused. */
harp_status harp_wakv_rotate_layer(const harp_wakv_dims *dims, const harp_wakv_rots *rots, int l,
                                   const harp_wakv_layer *in, harp_wakv_layer *out);
void harp_wakv_layer_free(harp_wakv_layer *L);

/* The whole offline step: out (new arrays, untied head, all norms 1, norm_div = in's d, down_in = I')
 * = `in` with every RMSNorm folded and R1, R2 and the offline halves of R4 and R_o fused. `in` is not
 * modified. The function of the model is unchanged when the forward pass applies R3 (after RoPE), R4
 * (before down) and R_o (before o) online and divides RMSNorm by norm_div. */
harp_status harp_wakv_rotate(const harp_wakv_weights *in, const harp_wakv_rots *rots, harp_wakv_weights *out);

/* ---- an in-memory harp_model (wakv_apply.c) --------------------------------------------------------- */

/* The rotation dims of m (d, ffn, vocab, head_dim, layers, heads). */
harp_wakv_dims harp_wakv_model_dims(const harp_model *m);
/* m (fp32, no o/gate/up/down biases) ← its offline rotation by R, in place: norms folded (γ = 1), R1,
 * R2 and the offline halves of R4 and R_o fused, the head untied. Refuses R1 / R4 that expand a width
 * (the forward pass has no expanded residual stream). The caller turns the online halves on with
 * harp_model_set_exec (r3 = R->r3 != NULL, r4 = R->r4 != NULL, ro = R->ro != NULL). */
harp_status harp_wakv_model_rotate(harp_model *m, const harp_wakv_rots *R);
/* Every decoder linear of m (fp32) ← its RTN grid values: bits, group (0 = per channel), symmetric,
 * MSE clip (harp_wq_fit_mse) or min/max. The head and embedding stay fp32. */
harp_status harp_wakv_model_wquant_rtn(harp_model *m, int bits, int group, int sym, int mse);

#endif
