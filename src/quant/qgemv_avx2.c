/* AVX2 + FMA decode-GEMV rows (compiled with target attributes; chosen at run time).
 * Per code, default: one 8-byte load of 4·w from the 512 KiB int8 codebook (L2-resident),
 * vpmovsxbd + vcvtdq2ps (exact), one FMA with x. Small-table variant: 4·w = (absf[a] XOR sgn[b])
 * + shift[b] — L1 tables, two exact vector ops, but about twice the instructions. Four rows share each x load. Summation order per row: eight
 * lane accumulators over the codes, then ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)), which the
 * portable kernel and the tests reproduce. */
#include "quant/qgemv_tab.h"

#include <stddef.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define QK_AVX2 __attribute__((target("avx2,fma")))
#define QK_INLINE QK_AVX2 static inline __attribute__((always_inline))

int qk_have_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

QK_INLINE __m256 dec_e8p(const qk_tables *t, const int8_t *full, unsigned c) {
    if (full) {
        /* One 8-byte load of the eight odd integers 4·w, sign-extended and converted exactly. */
        __m128i q = _mm_loadl_epi64((const __m128i *)(full + 8 * (size_t)c));
        return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
    }
    const unsigned a = c >> 8, b = c & 255u;
    __m256 v = _mm256_xor_ps(_mm256_load_ps(t->absf[a]),
                             _mm256_castsi256_ps(_mm256_load_si256((const __m256i *)t->sgn[b])));
    return _mm256_add_ps(v, _mm256_broadcast_ss(&t->shift[b]));
}

QK_INLINE __m256 dec_plane1(const harp_e8p_view *w, const qk_tables *t, const int8_t *full, size_t idx,
                            int fmt) {
    if (fmt == HARP_QTYPE_RVQ4) return dec_e8p(t, full, ((const uint16_t *)w->codes1)[idx]);
    return _mm256_load_ps(t->e81b[((const uint8_t *)w->codes1)[idx]]);
}

QK_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}

QK_INLINE __m256 load_x(const float *x, int32_t k, int32_t nfull, __m256i tailmask) {
    return k < nfull ? _mm256_loadu_ps(x + 8 * k) : _mm256_maskload_ps(x + 8 * k, tailmask);
}

/* Rows [r, r + R) with R ∈ {1, 4}; fmt a compile-time constant after inlining. */
QK_INLINE void rows_block(const harp_e8p_view *w, const qk_tables *t, const int8_t *full, const float *x,
                          float *y, int32_t r, int R, int fmt, __m256i tailmask) {
    const int32_t nc = w->ncode, nfull = w->n / 8;
    __m256 a0[4], a1[4];
    for (int j = 0; j < 4; j++) a0[j] = a1[j] = _mm256_setzero_ps();
    const uint16_t *c0 = w->codes0 + (size_t)r * nc;
    for (int32_t k = 0; k < nc; k++) {
        /* Pull the next row block's codes towards L1 a cache line at a time while this block
         * computes: the decode is table-bound and leaves the memory pipe idle otherwise. */
        if ((k & 31) == 0 && r + 2 * R <= w->m)
            for (int j = 0; j < R; j++) {
                const size_t next = (size_t)(r + R + j) * nc + k;
                _mm_prefetch((const char *)(w->codes0 + next), _MM_HINT_T0);
                if (fmt == HARP_QTYPE_RVQ4)
                    _mm_prefetch((const char *)((const uint16_t *)w->codes1 + next), _MM_HINT_T0);
                else if (fmt == HARP_QTYPE_RVQ3 && (k & 63) == 0)
                    _mm_prefetch((const char *)((const uint8_t *)w->codes1 + next), _MM_HINT_T0);
            }
        const __m256 xv = load_x(x, k, nfull, tailmask);
        for (int j = 0; j < R; j++) {
            a0[j] = _mm256_fmadd_ps(dec_e8p(t, full, c0[(size_t)j * nc + k]), xv, a0[j]);
            if (fmt != HARP_QTYPE_E8P2)
                a1[j] = _mm256_fmadd_ps(dec_plane1(w, t, full, (size_t)(r + j) * nc + k, fmt), xv, a1[j]);
        }
    }
    for (int j = 0; j < R; j++) {
        float s0 = hsum(a0[j]), s1 = hsum(a1[j]);
        y[r + j] = (w->scale0 * s0 + w->scale1 * s1) * 0.25f;
    }
}

QK_INLINE void rows_fmt(const harp_e8p_view *w, const qk_tables *t, const int8_t *full, const float *x,
                        float *y, int32_t r0, int32_t r1, int fmt) {
    const int32_t rem = w->n % 8;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i tailmask = _mm256_cmpgt_epi32(_mm256_set1_epi32(rem), lane);
    int32_t r = r0;
    for (; r + 4 <= r1; r += 4) rows_block(w, t, full, x, y, r, 4, fmt, tailmask);
    for (; r < r1; r++) rows_block(w, t, full, x, y, r, 1, fmt, tailmask);
}

/* Each (format, table) pair is its own instantiation so that no branch is left in the loop. */
QK_AVX2 void qk_gemv_rows_avx2(const harp_e8p_view *w, const qk_tables *t, const int8_t *full,
                               const float *x, float *y, int32_t r0, int32_t r1) {
    if (full) {
        switch (w->type) {
        case HARP_QTYPE_RVQ4: rows_fmt(w, t, full, x, y, r0, r1, HARP_QTYPE_RVQ4); break;
        case HARP_QTYPE_RVQ3: rows_fmt(w, t, full, x, y, r0, r1, HARP_QTYPE_RVQ3); break;
        default: rows_fmt(w, t, full, x, y, r0, r1, HARP_QTYPE_E8P2); break;
        }
    } else {
        switch (w->type) {
        case HARP_QTYPE_RVQ4: rows_fmt(w, t, NULL, x, y, r0, r1, HARP_QTYPE_RVQ4); break;
        case HARP_QTYPE_RVQ3: rows_fmt(w, t, NULL, x, y, r0, r1, HARP_QTYPE_RVQ3); break;
        default: rows_fmt(w, t, NULL, x, y, r0, r1, HARP_QTYPE_E8P2); break;
        }
    }
}

#else
int qk_have_avx2(void) { return 0; }
void qk_gemv_rows_avx2(const harp_e8p_view *w, const qk_tables *t, const int8_t *full, const float *x,
                       float *y, int32_t r0, int32_t r1) {
    (void)full;
    qk_gemv_rows_portable(w, t, x, y, r0, r1);
}
#endif
