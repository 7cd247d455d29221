/* Private to the trellis sources: the search workspace and the SIMD kernel entry points. */
#ifndef HARP_QUANT_TRELLIS_KERN_H
#define HARP_QUANT_TRELLIS_KERN_H

#include <stdint.h>

#include "trellis.h"

/* Padding after each best row, so that a SIMD load of 16 floats at any group start stays inside. */
#define TRELLIS_BEST_PAD 16

struct harp_viterbi_ws {
    int L, KV, S, V;
    uint8_t *bp;       /* (S, 2^{L−KV}) back-pointer j of each group at each step           */
    float *cost;       /* (2^L) reference search: explicit cost row                           */
    float *best[2];    /* (2^{L−KV} + pad) fused search: best cost per group, two rows          */
    int32_t *arg;      /* (2^{L−KV}) fused search: running argmin between slice blocks          */
    float *xrot;       /* (S·V) the rotated sequence of the tail-biting first pass              */
    uint32_t *tmp;     /* (S) states of the first pass                                          */
};

/* One fused forward pass of the search: for t = 1 … S−1, best_t[g] = min_j cost_{t−1}(g + j·G)
 * with cost_t(s) = dist_t(s) + best_t[s >> KV] (best_0 = ws->best[0] on entry), back-pointers in
 * ws->bp. On return ws->best[0] holds best_{S−1}. Needs 2^{L−KV} ≥ twice the vector width. */
typedef void (*trellis_steps_fn)(const harp_tcb *cb, const float *x, harp_viterbi_ws *ws);
void trellis_steps_avx512(const harp_tcb *cb, const float *x, harp_viterbi_ws *ws);
void trellis_steps_avx2(const harp_tcb *cb, const float *x, harp_viterbi_ws *ws);

/* A 16 × 16 tile (row stride ld) → its sequence (the kernel permutation), and a tail-biting path of
 * it → packed words and, when recon is not NULL, the reconstruction (row stride ldr). */
void trellis_tile_seq(const float *tile, int64_t ld, float *seq);
void trellis_tile_finish(const harp_tcb *cb, const uint32_t *states, uint16_t *words, float *recon, int64_t ldr);

/* CPU support, ignoring the cap. */
int trellis_cpu_avx512(void);
int trellis_cpu_avx512vbmi(void);   /* VBMI + VBMI2 (on top of trellis_cpu_avx512) */
int trellis_cpu_avx2(void);

/* Words of tile (i, j) of a stored matrix. */
static inline const uint16_t *trellis_tile_words(const harp_tmat *w, int32_t i, int32_t j) {
    return w->codes + ((size_t)i * (size_t)((w->n + 15) / 16) + (size_t)j) * (size_t)(16 * w->K);
}
/* Shared tail of every GEMV kernel: rows of row tile i from the 8 accumulators acc (8 × 16). */
void trellis_gemv_store(const harp_tmat *w, const float *acc, float *y, int32_t i);

/* GEMV row-tile kernels: rows tiles [i0, i1) of w into y (16 floats per row tile), with xp the
 * permuted input (2 × 16 floats per column tile, see trellis_gemv.c). */
void trellis_gemv_tiles_portable(const harp_tmat *w, const float *xp, float *y, int32_t i0, int32_t i1);
void trellis_gemv_tiles_avx512(const harp_tmat *w, const float *xp, float *y, int32_t i0, int32_t i1);
void trellis_gemv_tiles_avx512vbmi(const harp_tmat *w, const float *xp, float *y, int32_t i0, int32_t i1);
void trellis_gemv_tiles_avx2(const harp_tmat *w, const float *xp, float *y, int32_t i0, int32_t i1);

#endif
