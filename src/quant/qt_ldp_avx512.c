/* AVX-512 (BW, VNNI, BITALG) rows of the ldp2 GEMV with int4 activations (harp_ldp_gemv_a4).
 *
 * Why integer sums: a row of group G is Σ_k ℓ_k S_k with S_k = Σ_{c: q_c = k} x_c, the int4 codes of x
 * summed per level — four exact integers per group, then four float multiply-adds, where the float
 * table kernel spends a permute and a multiply-add on every weight. With the code bits b0, b1 of 64
 * columns as two byte masks (one vpshufbitqmb each, straight from the packed bytes), the masked sums
 * T1 = Σ b0·x, T2 = Σ b1·x, T3 = Σ b0·b1·x are three vpdpbusd, and S3 = T3, S1 = T1 − T3, S2 = T2 − T3,
 * S0 = X − T1 − T2 + T3 (X = Σ x of the group, once per call). The levels multiply S_k, not T: each
 * product is bounded by Σ |w·x| of its own columns, so the float rounding stays within the reference
 * GEMV's bound (tests/test_ldp_gemv.c) — a basis of differences (ℓ1 − ℓ0, …) could cancel.
 *
 * Mask bit 8i + j of a 64-column block reads qword i of the 16 code bytes broadcast as (w0, w1, w0, w1 …):
 * column 32·(i mod 2) + 8·⌊i/2⌋ + j. The activations are stored once per call in that order
 * (qk_ldp_a4_prep), so no per-row permute is needed. */
#include <stddef.h>
#include <string.h>

#include "core/core.h"
#include "quant/ldp.h"
#include "quant/qblocks.h"
#include "quant/qgemv_q8.h"
#include "quant/quant_internal.h"
#include "quant/qtype_traits.h"

/* Column of block position p (the mask bit order above). */
static inline int64_t a4_col(int p) { return 32 * ((p >> 3) & 1) + 8 * (p >> 4) + (p & 7); }

int64_t qk_ldp_a4_blocks(int64_t n) { return (n + 63) / 64; }

int qk_ldp_a4_fits(const harp_qtensor *w) { return w->n_groups == 1 || w->group_size % 64 == 0; }

void qk_ldp_a4_prep(const harp_qtensor *w, const int8_t *xq, int8_t *xp, int32_t *xg) {
    const int64_t n = w->n, nb = qk_ldp_a4_blocks(n), bpg = w->n_groups == 1 ? nb : w->group_size / 64;
    for (int64_t b = 0; b < nb; b++)
        for (int p = 0; p < 64; p++) {
            const int64_t c = 64 * b + a4_col(p);
            xp[64 * b + p] = c < n ? xq[c] : 0;
        }
    /* lane l of group G: Σ of positions 4l … 4l + 3 over the group's blocks (the lanes of vpdpbusd) */
    memset(xg, 0, sizeof(int32_t) * 16 * (size_t)w->n_groups);
    for (int64_t b = 0; b < nb; b++)
        for (int p = 0; p < 64; p++) xg[16 * (b / bpg) + p / 4] += xp[64 * b + p];
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define A4_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bitalg,f16c")))

typedef struct {
    __m512i t1, t2, t3;
} a4_sums;

/* The masked sums of one 64-column block added into s (cb: its 16 code bytes in every 128-bit lane). */
A4_TARGET static inline void a4_block(a4_sums *s, __m512i cb, const int8_t *xb, __m512i ctl0, __m512i ctl1, __m512i ones) {
    const __mmask64 k0 = _mm512_bitshuffle_epi64_mask(cb, ctl0), k1 = _mm512_bitshuffle_epi64_mask(cb, ctl1);
    s->t1 = _mm512_dpbusd_epi32(s->t1, ones, _mm512_maskz_loadu_epi8(k0, xb));
    s->t2 = _mm512_dpbusd_epi32(s->t2, ones, _mm512_maskz_loadu_epi8(k1, xb));
    s->t3 = _mm512_dpbusd_epi32(s->t3, ones, _mm512_maskz_loadu_epi8(_kand_mask64(k0, k1), xb));
}

A4_TARGET static inline __m512i a4_codes(const uint8_t *row, int64_t b) {
    return _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(row + 16 * b)));
}

A4_TARGET void qk_ldp_a4_rows_avx512(const harp_qtensor *w, const int8_t *xp, const int32_t *xg, float s, float *lv, float *y,
                                     int64_t r0, int64_t r1) {
    const int64_t n = w->n, ng = w->n_groups, nb = qk_ldp_a4_blocks(n), bpg = ng == 1 ? nb : w->group_size / 64;
    const int64_t rb = harp_scalar_row_bytes(n, 2), nfull = rb / 16;
    __m512i ctl0 = _mm512_setzero_si512();
    {
        uint8_t c[64];
        for (int p = 0; p < 64; p++) c[p] = (uint8_t)(2 * (a4_col(p) & 31));   /* bit 2·col of its qword */
        ctl0 = _mm512_loadu_si512(c);
    }
    const __m512i ctl1 = _mm512_add_epi8(ctl0, _mm512_set1_epi8(1)), ones = _mm512_set1_epi8(1);
    const uint8_t *lv16 = (const uint8_t *)w->planes[QT_LDP_LEVELS].data;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->planes[QT_LDP_QWEIGHT].data + r * rb;
        const uint8_t *lr = lv16 + 8 * (size_t)(r * ng);   /* may be unaligned: byte loads */
        for (int64_t k = 0; k < 4 * ng; k += 16) {
            const int64_t left = 4 * ng - k;
            const __mmask16 km = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
            _mm512_mask_storeu_ps(lv + k, km, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(km, lr + 2 * k)));
        }
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t G = 0; G < ng; G++) {
            const int64_t b0 = G * bpg, b1 = b0 + bpg < nb ? b0 + bpg : nb;
            a4_sums e = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
            const int64_t bf = b1 < nfull ? b1 : nfull;   /* blocks with all 16 code bytes in the row */
            int64_t b = b0;
            if (bf - b0 > 2) {
                /* two independent chains for long groups (per channel), so vpdpbusd's latency stays hidden */
                a4_sums o = e;
                for (; b + 2 <= bf; b += 2) {
                    a4_block(&e, a4_codes(row, b), xp + 64 * b, ctl0, ctl1, ones);
                    a4_block(&o, a4_codes(row, b + 1), xp + 64 * (b + 1), ctl0, ctl1, ones);
                }
                e.t1 = _mm512_add_epi32(e.t1, o.t1), e.t2 = _mm512_add_epi32(e.t2, o.t2), e.t3 = _mm512_add_epi32(e.t3, o.t3);
            }
            for (; b < bf; b++) a4_block(&e, a4_codes(row, b), xp + 64 * b, ctl0, ctl1, ones);
            if (b < b1) /* the row's last block, short of code bytes */
                a4_block(&e, _mm512_broadcast_i32x4(_mm_maskz_loadu_epi8((__mmask16)((1u << (rb - 16 * b)) - 1u), row + 16 * b)),
                         xp + 64 * b, ctl0, ctl1, ones);
            const __m512i t1 = e.t1, t2 = e.t2, t3 = e.t3;
            const __m512i s1 = _mm512_sub_epi32(t1, t3), s2 = _mm512_sub_epi32(t2, t3);
            const __m512i s0 = _mm512_sub_epi32(_mm512_loadu_si512(xg + 16 * G), _mm512_add_epi32(t1, s2));
            a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_set1_ps(lv[4 * G]), a0);
            a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), _mm512_set1_ps(lv[4 * G + 1]), a1);
            a2 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s2), _mm512_set1_ps(lv[4 * G + 2]), a2);
            a3 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t3), _mm512_set1_ps(lv[4 * G + 3]), a3);
        }
        float l[16];
        _mm512_storeu_ps(l, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        y[r] = s * qk_q8_lane_sum(l);
    }
}
#else
void qk_ldp_a4_rows_avx512(const harp_qtensor *w, const int8_t *xp, const int32_t *xg, float s, float *lv, float *y, int64_t r0,
                           int64_t r1) {
    (void)w, (void)xp, (void)xg, (void)s, (void)lv, (void)y, (void)r0, (void)r1;
}
#endif
