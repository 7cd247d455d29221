/* Elementwise and attention kernels of the fp32 forward pass, each with a plain `_ref` twin that
 * the tests compare against at awkward sizes (tests/test_model_kernels.c). */
#ifndef HARP_MODEL_KERNELS_H
#define HARP_MODEL_KERNELS_H
#include "harp/model.h"

/* fp32 linear Y (rows × out) = X (rows × in) · Wᵀ, W out × in row-major: OpenBLAS sgemm. */
void harp_f32_matmul(const float *W, int out, int in, const float *X, int rows, float *Y);
/* One row: each output is one dot product with a fixed summation order, so the result does not
 * depend on the number of threads. */
void harp_f32_gemv(const float *W, int out, int in, const float *x, float *y);
/* Plain reference of Y = X·Wᵀ (double accumulation, single thread): the twin the two above are
 * tested against. */
void harp_matmul_f32_ref(const float *W, int out, int in, const float *X, int rows, float *Y);

/* y[r] = x[r] / sqrt(mean(x[r]²) + eps) * w, rows × n (HF LlamaRMSNorm, fp32). y may alias x. */
void harp_rmsnorm(const float *x, const float *w, int rows, int n, float eps, float *y);

/* Rotates rows × (n_heads·head_dim) vectors in place; row r is at position pos0 + r. */
void harp_rope(float *x, int rows, int n_heads, int head_dim, int pos0, const float *inv_freq,
               harp_rope_layout layout);

/* g[i] = silu(g[i]) * u[i] for n values. */
void harp_swiglu(float *g, const float *u, size_t n);

/* Causal GQA attention for nb query rows at positions p0..p0+nb-1 over cached keys/values
 * 0..p0+nb-1. q: nb × (nh·hd) (row stride nh·hd), kc/vc: T × (nkv·hd), out: nb × (nh·hd).
 * window > 0 restricts query i to keys j with (p0+i) - j < window. scratch: nb × (p0+nb) floats. */
void harp_attention(const float *q, const float *kc, const float *vc, int nb, int p0, int nh, int nkv,
                    int hd, int window, float *scratch, float *out);
void harp_attention_ref(const float *q, const float *kc, const float *vc, int nb, int p0, int nh, int nkv,
                        int hd, int window, float *out);

/* log Σ exp(l[j] - max) of one row of logits, summed in double; *max = the largest logit, *argmax
 * (if non-NULL) its first index. */
double harp_logsumexp_row(const float *logits, int vocab, float *max, int *argmax);
/* One row of logits scored against a target: returns lse - logits[target] with lse = log Σ exp(l - max)
 * + max summed in double (the perplexity definition), *argmax = the first maximum, *lse if non-NULL. */
double harp_score_row(const float *logits, int vocab, int target, int *argmax, double *lse);
/* KL(P_ref || P) in nats of one row, from both rows and their log-sum-exps (terms with P_ref = 0
 * skipped). */
double harp_kl_row(const float *logits, double lse, const float *ref, double lse_ref, int vocab);

#endif
