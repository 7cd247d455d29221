/* Internals of the int8-activation decode-GEMV (qgemv_q8.c, qgemv_q8_avx512.c). */
#ifndef HARP_QUANT_QGEMV_Q8_H
#define HARP_QUANT_QGEMV_Q8_H

#include <stdint.h>

#include "harp/qkernels.h"
#include "quant/qblocks.h"

#define QK_Q8_BLOCK 512 /* columns per activation scale = 64 codes */

/* Quantized activations: xt[b·512 + i·64 + j] = round(x[512b + 8j + i] / scale[b]) (0 past n),
 * sum[b] = Σ of the block's int8 values. */
typedef struct qk_xq8 {
    int32_t nblk;
    float offset; /* Σ_b scale[b] · 16·sum[b] in block order (the +16 of the unsigned weights) */
    int8_t *xt;
    float *scale;
    int32_t *sum;
} qk_xq8;

/* Byte tables, coordinate-major: abs4[i][a] = 4·â_i of abs vector a (coordinate 7 sign folded in,
 * before the code's sign bits), e81b4[i][c] = 4·E81B[c]_i. */
typedef struct qk_q8tab {
    _Alignas(64) int8_t abs4[8][256];
    _Alignas(64) int8_t e81b4[8][256];
} qk_q8tab;

const qk_q8tab *qk_q8_tables(void);
/* Fixed-order sum of 16 lane accumulators (lane l holds codes 4l..4l+3 of every 64-code block). */
static inline float qk_q8_lane_sum(const float l[16]) {
    float a[8];
    for (int i = 0; i < 8; i++) a[i] = l[i] + l[i + 8];
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}
void qk_q8_quantize_x(const float *x, int32_t n, qk_xq8 *q);
void qk_q8_rows_portable(const harp_e8p_view *w, const qk_xq8 *q, float *y, int32_t r0, int32_t r1);
int qk_have_avx512q8(void);
void qk_q8_rows_avx512(const harp_e8p_view *w, const qk_xq8 *q, float *y, int32_t r0, int32_t r1);

#endif
