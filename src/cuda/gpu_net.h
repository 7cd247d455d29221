/* Internal interface between the C side of the GPU evaluator (src/eval/ppl_gpu.c) and the CUDA
 * forward (src/cuda/forward_cuda.cu). A net holds one model's dense fp32 weights on the device plus
 * scratch for up to max_windows windows of ctx tokens; each forward runs all windows of a batch at
 * once (positions 0..ctx-1 in every window, empty cache). Compiled only with HARP_HAVE_CUDA. */
#ifndef HARP_CUDA_GPU_NET_H
#define HARP_CUDA_GPU_NET_H
#include <stddef.h>
#include <stdint.h>

#include "harp/common.h"
#include "harp/model.h"

typedef struct harp_gpu_dims {
    int dim, hidden, n_layers, n_heads, n_kv_heads, head_dim, vocab;
    int ctx, max_windows, sliding_window;
    float norm_eps;
    harp_rope_layout rope_layout;
} harp_gpu_dims;

/* Host-side weights of one layer; each W is the effective W_effᵀ, row-major in × out. q|k|v and
 * gate|up are concatenated along out. Biases may be NULL. */
typedef struct harp_gpu_layer_host {
    const float *attn_norm, *ffn_norm;
    const float *wqkv, *bqkv;  /* dim × (qd + 2·kvd) */
    const float *wo, *bo;      /* qd × dim           */
    const float *wgu, *bgu;    /* dim × 2·hidden     */
    const float *wd, *bd;      /* hidden × dim       */
} harp_gpu_layer_host;

typedef struct harp_gpu_net harp_gpu_net;

/* Device bytes a net of these dims needs (weights + scratch), for sizing max_windows. */
size_t harp_gpu_net_bytes(const harp_gpu_dims *d);
harp_status harp_gpu_free_bytes(size_t *free_bytes);

harp_status harp_gpu_net_create(const harp_gpu_dims *d, const float *tok_emb, const float *final_norm,
                                const float *rope_inv_freq, harp_gpu_net **out);
harp_status harp_gpu_net_set_layer(harp_gpu_net *n, int layer, const harp_gpu_layer_host *h);
harp_status harp_gpu_net_set_head(harp_gpu_net *n, const float *wt /* dim × vocab */, const float *bias);
void harp_gpu_net_free(harp_gpu_net *n);

/* Runs n_windows (≤ max_windows) windows of tokens (n_windows·ctx host ids) to logits on device. */
harp_status harp_gpu_net_forward(harp_gpu_net *n, const int32_t *tokens, int n_windows);

/* Per scored position (window w, i < ctx-1; index w·(ctx-1)+i) of the last forward: NLL of the
 * next token; with ref (its last forward on the same tokens): KL(P_ref || P_n) and whether the two
 * argmaxes agree. Host outputs; kld and agree may be NULL when ref is NULL. */
harp_status harp_gpu_net_score(harp_gpu_net *n, const harp_gpu_net *ref, int n_windows, double *nll, double *kld,
                               int *agree);

/* Single-kernel entry points on host arrays, for the tests against the CPU references. */
harp_status harp_gpu_rmsnorm_host(const float *x, const float *w, int rows, int n, float eps, float *y);
/* x: rows × (n_heads·head_dim), row r at position r % ctx. */
harp_status harp_gpu_rope_host(float *x, int rows, int ctx, int n_heads, int head_dim, const float *inv_freq,
                               harp_rope_layout layout);
harp_status harp_gpu_swiglu_host(const float *g, const float *u, int rows, int hidden, float *h);
/* Causal GQA attention of n_windows windows of ctx rows: q rows × (nh·hd), k/v rows × (nkv·hd). */
harp_status harp_gpu_attention_host(const float *q, const float *k, const float *v, int n_windows, int ctx, int nh,
                                    int nkv, int hd, int window, float *out);
/* Row scoring on given logits (rows = n_windows·ctx, each vocab wide); ref_logits may be NULL. */
harp_status harp_gpu_score_host(const float *logits, const float *ref_logits, const int32_t *tokens, int n_windows,
                                int ctx, int vocab, double *nll, double *kld, int *agree);

#endif
