/* Internal tables, per-ISA row kernels and dispatch of the lattice decode-GEMV (qgemv*.c). */
#ifndef HARP_QUANT_QGEMV_TAB_H
#define HARP_QUANT_QGEMV_TAB_H

#include <stdint.h>

#include "harp/qkernels.h"
#include "quant/qblocks.h"

/* Decode tables in units of 1/4 (every E8P12 weight times 4 is an odd integer in [-15, 15],
 * every E81B entry times 4 is an even integer), so that decoding is exact integer work:
 *   4·w = (absf[a] XOR sgn[b]) + shift[b]   for code (a << 8) | b. */
typedef struct qk_tables {
    _Alignas(64) float absf[256][8];   /* 2·(nibble - 8) = 4·â_i (coordinate order) */
    _Alignas(64) uint32_t sgn[256][8]; /* 0x80000000 where bit σ(i) of b ^ parity(b) is set */
    _Alignas(64) float shift[256];     /* +1 (even parity of b) or -1 */
    _Alignas(64) float e81b[256][8];   /* 4·E81B */
} qk_tables;

const qk_tables *qk_tables_get(void);

/* y[r] for r in [r0, r1). x has at least n readable floats; lanes past n are treated as zero. */
void qk_gemv_rows_portable(const harp_e8p_view *w, const qk_tables *t, const float *x, float *y,
                           int32_t r0, int32_t r1);
/* full: the 65536×8 int8 table of 4·w (e8p_codebook_x4), or NULL to decode from the small
 * abs/sign tables; both give the same vectors, hence the same bits. */
void qk_gemv_rows_avx2(const harp_e8p_view *w, const qk_tables *t, const int8_t *full, const float *x,
                       float *y, int32_t r0, int32_t r1);
int qk_have_avx2(void);

/* The variant in use (best available, capped by harp_qgemv_max_isa). */
harp_qisa qk_isa(void);
/* y = W̃ x over all rows with the given variant, row blocks spread over OpenMP threads. */
void qk_gemv_run(const harp_e8p_view *w, const float *x, float *y, harp_qisa isa);
/* Int8-activation GEMV (qgemv_q8.c): simd = 1 runs the AVX-512 rows (only if qk_q8_simd()). */
int qk_q8_simd(void);
harp_status qk_q8_run(const harp_e8p_view *w, const float *x, float *y, int simd);

#endif
