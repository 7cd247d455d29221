/* The batched two-pass tail-biting Viterbi on the CUDA device (src/cuda/trellis_viterbi.cu; the
 * no-CUDA build links the stubs in src/cuda/backend_none.c) and its plain-C side: batch sizing
 * and the CPU twin of the batched call (trellis_gpu.c). Module API of src/quant (not public).
 *
 * harp_tvit_gpu_run returns, for every sequence, the same states and cost as
 * harp_viterbi_tb(cb, x, states, ws, 1): the device does the reference's fp32 operations in its
 * order (no FMA) and breaks ties the same way (smallest predecessor slice, smallest final state). */
#ifndef HARP_QUANT_TRELLIS_GPU_H
#define HARP_QUANT_TRELLIS_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "trellis.h"

/* Device bytes per sequence of one batch: back-pointers S·KV·⌈2^{L−KV}/32⌉ words (KV bits per group
 * and step, as bit planes of 32 groups),
 * the sequence (S·V floats), its states (S) and the per-sequence scalars. */
size_t harp_tvit_seq_bytes(const harp_tcb *cb);
/* Sequences per batch: as many as fit in half of free_bytes (the other half is left to whatever
 * else runs on the device), at most want (≥ 1); 0 when not even one fits. */
int64_t harp_tvit_plan_batch(size_t free_bytes, size_t seq_bytes, int64_t want);
/* Shared memory of one search block: two best rows of 2^{L−KV} floats + the final reduction. The
 * device search needs it ≤ HARP_TVIT_MAX_SMEM (L = 16 and KV ≥ 2: every format trellis). */
#define HARP_TVIT_MAX_SMEM (200 * 1024)
size_t harp_tvit_smem_bytes(const harp_tcb *cb);

/* ---- back-pointers of the device search (shared by the kernels and their CPU tests) ------------ */

#ifdef __CUDACC__
#define HARP_TVIT_HD __host__ __device__
#else
#define HARP_TVIT_HD
#endif

/* Per step, KV words per 32 groups: word (g/32)·KV + k holds bit k of the choice j of groups
 * 32·⌊g/32⌋ … +31 (group g at bit g mod 32) — what one warp ballot per bit writes. */
static inline HARP_TVIT_HD uint32_t harp_tvit_bp_words(uint32_t G, int KV) { return (G + 31) / 32 * (uint32_t)KV; }

static inline HARP_TVIT_HD uint32_t harp_tvit_bp_get(const uint32_t *step, uint32_t g, int KV) {
    const uint32_t *w = step + (g >> 5) * (uint32_t)KV;
    uint32_t j = 0;
    for (int k = 0; k < KV; k++) j |= ((w[k] >> (g & 31)) & 1u) << k;
    return j;
}

/* Traceback of one sequence through its back-pointers bp (S steps of harp_tvit_bp_words each) from
 * the final state fin down to step stop: states[t] for t ≥ stop (states may be NULL); returns
 * s_stop. */
static inline HARP_TVIT_HD uint32_t harp_tvit_trace(const uint32_t *bp, uint32_t fin, int L, int KV, int S, int stop,
                                                    uint32_t *states) {
    const uint32_t G = (1u << L) >> KV, ws = harp_tvit_bp_words(G, KV);
    uint32_t s = fin;
    if (states) states[S - 1] = s;
    for (int t = S - 1; t > stop; t--) {
        const uint32_t g = s >> KV;
        s = g + harp_tvit_bp_get(bp + (size_t)t * ws, g, KV) * G;
        if (states) states[t - 1] = s;
    }
    return s;
}

/* The planes of one step from per-group choices j[G] (the CPU form of the kernel's ballots; tests). */
void harp_tvit_bp_pack(const uint8_t *j, uint32_t G, int KV, uint32_t *step);

typedef struct harp_tvit_gpu harp_tvit_gpu;

/* 1 if a CUDA device is present (else 0, with the reason in harp_last_error()). */
int harp_tvit_gpu_available(void);
/* Uploads the code values of cb and allocates a batch of at most max_seq sequences sized to the
 * device's free memory. HARP_ERR_NO_DEVICE without CUDA or a device, HARP_ERR_UNSUPPORTED for a
 * trellis whose best rows do not fit in shared memory, HARP_ERR_OOM (naming `what`). */
harp_status harp_tvit_gpu_create(const harp_tcb *cb, int64_t max_seq, const char *what, harp_tvit_gpu **out);
/* count sequences x (count × S·V floats, finite) → states (count × S) and cost (count, may be
 * NULL), batch after batch. */
harp_status harp_tvit_gpu_run(harp_tvit_gpu *g, int64_t count, const float *x, uint32_t *states, float *cost);
/* Sequences per launch sequence chosen at create. */
int64_t harp_tvit_gpu_batch(const harp_tvit_gpu *g);
void harp_tvit_gpu_destroy(harp_tvit_gpu *g);

/* The batched call on the CPU: harp_viterbi_tb(cb, x_i, states_i, ws, use_ref) for every i, OpenMP
 * over sequences (results do not depend on the thread count). gpu != NULL runs it on the device
 * instead. HARP_ERR_OOM naming `what`. */
harp_status harp_tvit_run(const harp_tcb *cb, harp_tvit_gpu *gpu, int64_t count, const float *x, uint32_t *states,
                          float *cost, int use_ref, const char *what);

/* harp_trellis_quantize_tiles with the selected tiles' Viterbi passes done as batched calls of
 * harp_tvit_run (the device when gpu is not NULL): the same codes and reconstruction. */
harp_status harp_trellis_quantize_tiles_batched(const harp_tcb *cb, harp_tvit_gpu *gpu, int64_t m, int64_t n,
                                                const float *X, int parts, int part, uint16_t *codes, float *recon,
                                                const char *what);

#endif
