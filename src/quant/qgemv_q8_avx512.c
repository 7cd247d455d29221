/* AVX-512 (BW, VBMI, VNNI, BITALG) rows of the int8-activation decode-GEMV: 64 codes per step.
 * The abs-table lookup of coordinate i for 64 codes is two vpermi2b over the 256-byte table plus a
 * blend on bit 7 of the abs index; the sign bits become a byte mask (vptestmb) for a masked
 * negation; the ±¼ shift (parity of the sign byte, vpopcntb) and the +16 that makes the weights
 * unsigned for vpdpbusd are one byte add. Exact integer sums, so the result equals the portable
 * twin in qgemv_q8.c bit for bit. */
#include "quant/qgemv_q8.h"

#include <stddef.h>

#include "quant/e8p.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define Q8_TARGET __attribute__((target("avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg,fma")))
#define Q8_INLINE Q8_TARGET static inline __attribute__((always_inline))

int qk_have_avx512q8(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vnni") &&
           __builtin_cpu_supports("avx512bitalg");
}

/* 256-entry byte lookup for 64 indices a (table tb = 4 registers of 64 bytes). */
Q8_INLINE __m512i lut256(const __m512i tb[4], __m512i a, __mmask64 k7) {
    const __m512i lo = _mm512_permutex2var_epi8(tb[0], a, tb[1]);
    const __m512i hi = _mm512_permutex2var_epi8(tb[2], a, tb[3]);
    return _mm512_mask_blend_epi8(k7, lo, hi);
}

/* Decoded sign / shift state of 64 E8P codes (codes past cnt read as 0; their x bytes are 0). */
typedef struct {
    __m512i a, ex, shift;
    __mmask64 k7;
} e8p_prep;

Q8_INLINE e8p_prep e8p_load(const uint16_t *codes, int32_t cnt) {
    __m512i c_lo, c_hi;
    if (cnt >= 64) {
        c_lo = _mm512_loadu_si512(codes);
        c_hi = _mm512_loadu_si512(codes + 32);
    } else {
        const __mmask64 km = ((__mmask64)1 << cnt) - 1;
        c_lo = _mm512_maskz_loadu_epi16((__mmask32)km, codes);
        c_hi = _mm512_maskz_loadu_epi16((__mmask32)(km >> 32), codes + 32);
    }
    /* byte 2j of the code pair registers is b_j (low byte), 2j + 1 is a_j */
    const __m512i odd = _mm512_set_epi8(127, 125, 123, 121, 119, 117, 115, 113, 111, 109, 107, 105, 103, 101, 99,
                                        97, 95, 93, 91, 89, 87, 85, 83, 81, 79, 77, 75, 73, 71, 69, 67, 65, 63,
                                        61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33, 31, 29, 27,
                                        25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const __m512i even = _mm512_sub_epi8(odd, _mm512_set1_epi8(1));
    e8p_prep p;
    p.a = _mm512_permutex2var_epi8(c_lo, odd, c_hi);
    const __m512i b = _mm512_permutex2var_epi8(c_lo, even, c_hi);
    const __m512i one = _mm512_set1_epi8(1);
    const __mmask64 kp = _mm512_test_epi8_mask(_mm512_popcnt_epi8(b), one);
    p.ex = _mm512_mask_blend_epi8(kp, b, _mm512_xor_si512(b, one));
    p.shift = _mm512_mask_blend_epi8(kp, _mm512_set1_epi8(17), _mm512_set1_epi8(15));
    p.k7 = _mm512_movepi8_mask(p.a);
    return p;
}

/* acc[j] += Σ (4w + 16)·xq over the 64 codes of row j < R; tables and x loaded once for the R rows. */
Q8_INLINE void e8p_block(const int8_t (*abs4)[256], const e8p_prep *p, int R, const int8_t *xt, __m512i *acc) {
    const __m512i zero = _mm512_setzero_si512();
    for (int i = 0; i < 8; i++) {
        const __m512i tb[4] = {_mm512_load_si512(abs4[i]), _mm512_load_si512(abs4[i] + 64),
                               _mm512_load_si512(abs4[i] + 128), _mm512_load_si512(abs4[i] + 192)};
        const __m512i xv = _mm512_load_si512(xt + 64 * i);
        const __m512i bit = _mm512_set1_epi8((char)(1 << e8p_sigma[i]));
        for (int j = 0; j < R; j++) {
            __m512i v = lut256(tb, p[j].a, p[j].k7);
            const __mmask64 ks = _mm512_test_epi8_mask(p[j].ex, bit);
            v = _mm512_mask_sub_epi8(v, ks, zero, v);
            v = _mm512_add_epi8(v, p[j].shift);
            acc[j] = _mm512_dpbusd_epi32(acc[j], v, xv);
        }
    }
}

Q8_INLINE __m512i e81b_block(const int8_t (*e81b4)[256], const uint8_t *codes, int32_t cnt, const int8_t *xt,
                             __m512i acc) {
    const __mmask64 km = cnt >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << cnt) - 1);
    const __m512i a = cnt >= 64 ? _mm512_loadu_si512(codes) : _mm512_maskz_loadu_epi8(km, codes);
    const __mmask64 k7 = _mm512_movepi8_mask(a);
    const __m512i sixteen = _mm512_set1_epi8(16);
    for (int i = 0; i < 8; i++) {
        const __m512i tb[4] = {_mm512_load_si512(e81b4[i]), _mm512_load_si512(e81b4[i] + 64),
                               _mm512_load_si512(e81b4[i] + 128), _mm512_load_si512(e81b4[i] + 192)};
        const __m512i v = _mm512_add_epi8(lut256(tb, a, k7), sixteen);
        acc = _mm512_dpbusd_epi32(acc, v, _mm512_load_si512(xt + 64 * i));
    }
    return acc;
}

/* Sum of the 16 lanes in the order of qk_q8_lane_sum (qgemv_q8.c). */
Q8_INLINE float lane_sum16(__m512 v) {
    float l[16];
    _mm512_storeu_ps(l, v);
    return qk_q8_lane_sum(l);
}

/* Rows [r, r + R), R ∈ {1, 2}: the two rows share every table and x load. */
Q8_INLINE void rows_block(const harp_e8p_view *w, const qk_xq8 *q, const qk_q8tab *t, float *y, int32_t r, int R,
                          int fmt) {
    const int32_t nc = w->ncode;
    __m512 f0[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()}, f1[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int32_t b = 0; b < q->nblk; b++) {
        const int32_t k0 = b * 64, cnt = nc - k0 < 64 ? nc - k0 : 64;
        const int8_t *xt = q->xt + (size_t)b * QK_Q8_BLOCK;
        const __m512 sb = _mm512_set1_ps(q->scale[b]);
        e8p_prep p[2];
        __m512i s0[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
        for (int j = 0; j < R; j++) p[j] = e8p_load(w->codes0 + (size_t)(r + j) * nc + k0, cnt);
        e8p_block(t->abs4, p, R, xt, s0);
        for (int j = 0; j < R; j++) f0[j] = _mm512_fmadd_ps(sb, _mm512_cvtepi32_ps(s0[j]), f0[j]);
        if (fmt == HARP_QTYPE_RVQ4) {
            __m512i s1[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
            for (int j = 0; j < R; j++) p[j] = e8p_load((const uint16_t *)w->codes1 + (size_t)(r + j) * nc + k0, cnt);
            e8p_block(t->abs4, p, R, xt, s1);
            for (int j = 0; j < R; j++) f1[j] = _mm512_fmadd_ps(sb, _mm512_cvtepi32_ps(s1[j]), f1[j]);
        } else if (fmt == HARP_QTYPE_RVQ3) {
            for (int j = 0; j < R; j++) {
                const __m512i s1 = e81b_block(t->e81b4, (const uint8_t *)w->codes1 + (size_t)(r + j) * nc + k0, cnt,
                                              xt, _mm512_setzero_si512());
                f1[j] = _mm512_fmadd_ps(sb, _mm512_cvtepi32_ps(s1), f1[j]);
            }
        }
    }
    for (int j = 0; j < R; j++) {
        const float a0 = lane_sum16(f0[j]) - q->offset;
        const float a1 = fmt == HARP_QTYPE_E8P2 ? 0.0f : lane_sum16(f1[j]) - q->offset;
        y[r + j] = (w->scale0 * a0 + w->scale1 * a1) * 0.25f;
    }
}

Q8_INLINE void rows_fmt(const harp_e8p_view *w, const qk_xq8 *q, const qk_q8tab *t, float *y, int32_t r0, int32_t r1,
                        int fmt) {
    int32_t r = r0;
    for (; r + 2 <= r1; r += 2) rows_block(w, q, t, y, r, 2, fmt);
    if (r < r1) rows_block(w, q, t, y, r, 1, fmt);
}

Q8_TARGET void qk_q8_rows_avx512(const harp_e8p_view *w, const qk_xq8 *q, float *y, int32_t r0, int32_t r1) {
    const qk_q8tab *t = qk_q8_tables();
    switch (w->type) {
    case HARP_QTYPE_RVQ4: rows_fmt(w, q, t, y, r0, r1, HARP_QTYPE_RVQ4); break;
    case HARP_QTYPE_RVQ3: rows_fmt(w, q, t, y, r0, r1, HARP_QTYPE_RVQ3); break;
    default: rows_fmt(w, q, t, y, r0, r1, HARP_QTYPE_E8P2); break;
    }
}

#else
int qk_have_avx512q8(void) { return 0; }
void qk_q8_rows_avx512(const harp_e8p_view *w, const qk_xq8 *q, float *y, int32_t r0, int32_t r1) {
    qk_q8_rows_portable(w, q, y, r0, r1);
}
#endif
