/* Elementwise, normalisation, softmax and scoring kernels of the CUDA backend (cuda_kernels.cu),
 * launched on the default stream. Each mirrors its CPU twin in src/model/kernels.c operation by
 * operation (the file is compiled with --fmad=false); reductions use a fixed shared-memory tree,
 * so results are deterministic. Pointers are device pointers. Compiled only with HARP_HAVE_CUDA. */
#ifndef HARP_CUDA_KERNELS_H
#define HARP_CUDA_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#include "harp/common.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Status of the last launch ("cuda <what>: <reason>"). */
harp_status hc_launched(const char *what);

harp_status hc_embed(const int32_t *tok, const float *emb, int rows, int dim, float *x);
/* y[j] = rmsnorm(x[idx ? idx[j] : j]) · w, rows × n. */
harp_status hc_rmsnorm(const float *x, const int32_t *idx, const float *w, int rows, int n, float eps, float *y);
/* y[i] += b[i % n] over total values. */
harp_status hc_bias(float *y, const float *b, int n, size_t total);
harp_status hc_add(float *x, const float *y, size_t n);
/* RoPE in place; row r (stride ld) at position pos[r]. */
harp_status hc_rope(float *x, int ld, const int32_t *pos, int rows, int n_heads, int head_dim, const float *inv_freq,
                    int layout);
/* g = silu(g) · u. */
harp_status hc_swiglu(float *g, const float *u, size_t n);
/* Masked softmax of nz blocks of n_q score rows each T wide (block z at S + z·zstride, row i of a
 * block is the query at position p0 + i; keys at positions 0..T-1). */
harp_status hc_softmax(float *S, int nz, int n_q, int T, int p0, size_t zstride, int window);
/* For j < n: NLL of logits row rows[j] against targets[j]; with ref: KL(P_ref || P), argmax match. */
harp_status hc_score(const float *logits, const float *ref, const int32_t *rows, const int32_t *targets, int n,
                     int vocab, double *nll, double *kld, int *agree);

#ifdef __cplusplus
}
#endif
#endif
