/* Decode-GEMV with int8 activations (harp_qgemv_q8): x is quantized once per call to int8 in blocks
 * of QK_Q8_BLOCK = 512 columns (one fp32 scale each, absmax / 127, round to nearest), stored
 * coordinate-major per block so that byte j of register i is x[8j + i]: one 64-byte vector then
 * lines up with coordinate i of 64 consecutive codes. The weights stay exact (4·w is an integer);
 * per block the dot product Σ (4w + 16)·xq is exact int32 arithmetic, and the block result
 * scale_b · (Σ − 16·Σxq) is added to a float accumulator in block order. The portable twin below
 * does the same integer sums and the same float operations, so the AVX-512 kernel
 * (qgemv_q8_avx512.c) matches it bit for bit; the only deviation from harp_qgemv_ref is the
 * activation rounding, at most scale_b / 2 per element (tests/test_qgemv_q8.c checks that bound). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "quant/e8p.h"
#include "quant/qgemv_q8.h"

void qk_q8_quantize_x(const float *x, int32_t n, qk_xq8 *q) {
    const int32_t nblk = (n + QK_Q8_BLOCK - 1) / QK_Q8_BLOCK;
    memset(q->xt, 0, (size_t)nblk * QK_Q8_BLOCK);
    for (int32_t b = 0; b < nblk; b++) {
        const int32_t c0 = b * QK_Q8_BLOCK, c1 = c0 + QK_Q8_BLOCK < n ? c0 + QK_Q8_BLOCK : n;
        float amax = 0;
        for (int32_t c = c0; c < c1; c++) amax = fabsf(x[c]) > amax ? fabsf(x[c]) : amax;
        int32_t sum = 0;
        if (amax > 0) {
            const float inv = 127.0f / amax;
            int8_t *xt = q->xt + (size_t)b * QK_Q8_BLOCK;
            for (int32_t c = c0; c < c1; c++) {
                long v = lrintf(x[c] * inv);
                v = v > 127 ? 127 : v < -127 ? -127 : v;
                const int32_t j = (c - c0) / 8, i = (c - c0) % 8;
                xt[i * 64 + j] = (int8_t)v;
                sum += (int32_t)v;
            }
        }
        q->scale[b] = amax / 127.0f;
        q->sum[b] = sum;
    }
    q->nblk = nblk;
    float off = 0;
    for (int32_t b = 0; b < nblk; b++) off += q->scale[b] * (float)(16 * q->sum[b]);
    q->offset = off;
}

static qk_q8tab g_q8;
static pthread_once_t g_q8_once = PTHREAD_ONCE_INIT;

static void build_q8(void) {
    {
        const uint32_t *P = e8p_packed();
        const float *E = e81b_codebook();
        for (int a = 0; a < 256; a++)
            for (int i = 0; i < 8; i++) {
                g_q8.abs4[i][a] = (int8_t)(2 * ((int)((P[a] >> (4 * e8p_sigma[i])) & 15u) - 8));
                g_q8.e81b4[i][a] = (int8_t)lrintf(4.0f * E[8 * a + i]);
            }
    }
}

const qk_q8tab *qk_q8_tables(void) {
    pthread_once(&g_q8_once, build_q8);
    return &g_q8;
}

/* Lane sums of Σ (4w + 16)·xq over one block of cnt ≤ 64 codes, lane l = codes 4l..4l+3: exactly
 * the 16 int32 lanes vpdpbusd accumulates. */
static void block_dot_e8p(const qk_q8tab *t, const uint16_t *codes, int32_t cnt, const int8_t *xt, int32_t lane[16]) {
    for (int32_t j = 0; j < 64; j++) {
        const unsigned c = j < cnt ? codes[j] : 0u, a = c >> 8, b = c & 255u;
        const unsigned p = (unsigned)__builtin_popcount(b) & 1u, e = b ^ p;
        for (int i = 0; i < 8; i++) {
            int v = t->abs4[i][a];
            if ((e >> e8p_sigma[i]) & 1u) v = -v;
            v += p ? 15 : 17;
            lane[j / 4] += v * xt[i * 64 + j];
        }
    }
}

static void block_dot_e81b(const qk_q8tab *t, const uint8_t *codes, int32_t cnt, const int8_t *xt, int32_t lane[16]) {
    for (int32_t j = 0; j < 64; j++) {
        const unsigned c = j < cnt ? codes[j] : 0u;
        for (int i = 0; i < 8; i++) lane[j / 4] += (t->e81b4[i][c] + 16) * xt[i * 64 + j];
    }
}

void qk_q8_rows_portable(const harp_e8p_view *w, const qk_xq8 *q, float *y, int32_t r0, int32_t r1) {
    const qk_q8tab *t = qk_q8_tables();
    const int32_t nc = w->ncode;
    for (int32_t r = r0; r < r1; r++) {
        float f0[16] = {0}, f1[16] = {0};
        for (int32_t b = 0; b < q->nblk; b++) {
            const int32_t k0 = b * 64, cnt = nc - k0 < 64 ? nc - k0 : 64;
            const size_t idx = (size_t)r * nc + k0;
            const int8_t *xt = q->xt + (size_t)b * QK_Q8_BLOCK;
            int32_t l0[16] = {0}, l1[16] = {0};
            block_dot_e8p(t, w->codes0 + idx, cnt, xt, l0);
            if (w->type == HARP_QTYPE_RVQ4) block_dot_e8p(t, (const uint16_t *)w->codes1 + idx, cnt, xt, l1);
            else if (w->type == HARP_QTYPE_RVQ3) block_dot_e81b(t, (const uint8_t *)w->codes1 + idx, cnt, xt, l1);
            for (int l = 0; l < 16; l++) {
                f0[l] = fmaf(q->scale[b], (float)l0[l], f0[l]);
                f1[l] = fmaf(q->scale[b], (float)l1[l], f1[l]);
            }
        }
        const float a0 = qk_q8_lane_sum(f0) - q->offset;
        const float a1 = w->type == HARP_QTYPE_E8P2 ? 0.0f : qk_q8_lane_sum(f1) - q->offset;
        y[r] = (w->scale0 * a0 + w->scale1 * a1) * 0.25f;
    }
}
