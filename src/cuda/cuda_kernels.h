/* Elementwise, normalisation, softmax and scoring kernels of the CUDA backend (cuda_kernels.cu),
 * launched on the stream given (the backend's own). Each mirrors its CPU twin in src/model/kernels.c operation by
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

typedef struct CUstream_st *hc_stream;

/* Status of the last launch ("cuda <what>: <reason>"). */
harp_status hc_launched(const char *what);

/* y[j] = rmsnorm(x[idx ? idx[j] : j]) · w, rows × n. */
harp_status hc_rmsnorm(const float *x, const int32_t *idx, const float *w, int rows, int n, float eps, float *y, hc_stream st);
/* y[i] += b[i % n] over total values. */
harp_status hc_bias(float *y, const float *b, int n, size_t total, hc_stream st);
harp_status hc_add(float *x, const float *y, size_t n, hc_stream st);
/* RoPE in place; row r (stride ld) at position pos[r]. */
harp_status hc_rope(float *x, int ld, const int32_t *pos, int rows, int n_heads, int head_dim, const float *inv_freq,
                    int layout, hc_stream st);
/* g = silu(g) · u. */
harp_status hc_swiglu(float *g, const float *u, size_t n, hc_stream st);
/* Masked softmax of nz blocks of n_q score rows each T wide (block z at S + z·zstride, row i of a
 * block is the query at position p0 + i; keys at positions 0..T-1). */
harp_status hc_softmax(float *S, int nz, int n_q, int T, int p0, size_t zstride, int window, hc_stream st);
/* Causal GQA prefill attention in one launch, no score matrix: for z < nz, the n queries of Q[z] (row
 * stride qd; positions p0 .. p0+n-1) over keys 0 .. T-1 (rows of stride kvd elements; key j visible to
 * the query at position p for first ≤ j ≤ p, first = p + 1 - window with a sliding window, else 0),
 * scores scaled by scale, softmax, weighted values to O[z] (row stride qd). Every table is a device
 * array of nz device pointers. fp32-level accuracy, running maximum and sum per row (attn_prefill.cu):
 *   kh, vh set, kl NULL: an fp16 cache's rows, on the tensor cores with fp16 h + lo splits of Q and P;
 *   kh, kl, vh, vl set: an fp32 cache split by hc_kv_split_f16 (k, v its fp32 rows), on the tensor cores
 *     with three products, or in fp32 FFMA where *overflow says a value did not fit fp16;
 *   kh NULL: k, v fp32 rows, FFMA.
 * fp16 rows 16-byte aligned, kvd a multiple of 8. HARP_ERR_UNSUPPORTED (nothing logged, nothing
 * launched) for head sizes other than 64 and 128. hc_attn_prefill_on: the mode the backend uses — 2
 * (default: tensor cores), 1 (FFMA only: HARP_CUDA_FLASH=1) or 0 (the cuBLAS + softmax path:
 * HARP_CUDA_FLASH=0), for A/B; hc_set_attn_prefill sets it for the process. */
typedef struct hc_attn_kv {
    const void *const *k, *const *v;     /* fp32 rows */
    const void *const *kh, *const *vh;   /* fp16 rows (h parts) */
    const void *const *kl, *const *vl;   /* lo parts of a split fp32 cache */
    const int *overflow;                 /* device flag of the split */
} hc_attn_kv;
harp_status hc_attn_prefill(const hc_attn_kv *kv, const float *const *Q, float *const *O, int nz, int n, int T, int p0, int head_dim,
                            int qd, int kvd, int window, float scale, hc_stream st);
/* n fp32 values of k and of v to fp16 h (round to nearest) and lo (the rest, rounded), *overflow = 1
 * where any is beyond ±65 504 or not a number (0 otherwise; set in stream order). */
harp_status hc_kv_split_f16(const float *k, const float *v, size_t n, void *kh, void *kl, void *vh, void *vl, int *overflow,
                            hc_stream st);
int hc_attn_prefill_on(void);
void hc_set_attn_prefill(int mode);
/* For j < n: NLL of logits row rows[j] against targets[j]; with ref: KL(P_ref || P), argmax match. */
harp_status hc_score(const float *logits, const float *ref, const int32_t *rows, const int32_t *targets, int n,
                     int vocab, double *nll, double *kld, int *agree, hc_stream st);
/* The slices of a fused product: row r of y (ld wide), columns of slice s (widths[s] wide, in order)
 * to row r of dst[s] (rows × widths[s]); one launch for all of them. */
enum { HC_SPLIT_MAX = 4 };
harp_status hc_split(const float *y, int ld, int rows, int n, const int *widths, float *const *dst, hc_stream st);
/* Rows of k and v (rows × kvd each) into cache rows krow[r] (device) of kc / vc (one layer, row
 * stride kvd; fp32 elements, or fp16 rounded to nearest when f16): one launch whatever the plan's
 * sequences. */
harp_status hc_kv_store(const float *k, const float *v, int rows, int kvd, const int32_t *krow, void *kc, void *vc, int f16,
                        hc_stream st);
/* hc_rope of q (rows × n_heads·hd) and k (rows × n_kv·hd), then hc_kv_store of k and v: one launch,
 * the same values. */
harp_status hc_rope_store(float *q, float *k, const float *v, const int32_t *pos, const int32_t *krow, int rows, int n_heads,
                          int n_kv, int head_dim, const float *inv_freq, int layout, void *kc, void *vc, int f16, hc_stream st);
/* Causal GQA attention of single-query rows that read their positions from device memory, so the
 * launch is the same at every decode step (CUDA graphs): row r at position pos[r] attends to cache
 * rows base[r] + t for t in [lo, pos[r]] (lo = pos[r] + 1 - window with a sliding window, else 0),
 * q and out rows × n_heads·hd, kc / vc one layer with row stride kvd. Split over the keys in chunks
 * of 32 keys (more for caches over 2 048 rows: at most 64 chunks; the grid is sized for max_T and
 * chunks past a row's length exit at once), each chunk's max, sum and weighted values in part
 * (hc_attn_part_floats); the last chunk of each (row, head) to finish combines them. count: rows ×
 * n_heads counters, zero before the first call; each call leaves them zero. */
size_t hc_attn_part_floats(int rows, int n_heads, int head_dim, int max_T);
harp_status hc_attn_decode(const float *q, const void *kc, const void *vc, int f16, const int32_t *pos, const int32_t *base,
                           int rows, int n_heads, int n_kv_heads, int head_dim, int kvd, int window, int max_T, float *part,
                           unsigned *count, float *out, hc_stream st);
/* hc_attn_decode over a quantized cache (quant/aq.h planes, fp16 scales): one layer's K or V planes
 * from cache row 0, each element decoded in the kernel exactly as dec_aq_dequantize writes it, so the
 * result is that of hc_attn_decode on a dequantized fp32 copy, bit for bit. */
typedef struct hc_kv_aq {
    const uint8_t *codes;      /* row r at r·row_bytes, group g at + g·group_bytes */
    const uint16_t *scale16;   /* fp16 bits, r·groups + g */
    const uint8_t *zero;       /* asymmetric: r·groups + g; symmetric: NULL */
    int bits, sym, group, groups, group_bytes;
    size_t row_bytes;
} hc_kv_aq;
harp_status hc_attn_decode_aq(const float *q, const hc_kv_aq *kc, const hc_kv_aq *vc, const int32_t *pos, const int32_t *base,
                              int rows, int n_heads, int n_kv_heads, int head_dim, int window, int max_T, float *part,
                              unsigned *count, float *out, hc_stream st);
/* n elements of an fp16 cache's K and V (kc, vc) as fp32 into k and v. */
harp_status hc_kv_widen(const void *kc, const void *vc, size_t n, float *k, float *v, hc_stream st);

#ifdef __cplusplus
}
#endif
#endif
