/* AVX2 rows of the int4 GEMV (qt_scalar.c), compiled with target attributes and chosen at run time.
 * Eight rows at a time: each row's 4-bit codes become floats by two vpermps lookups into the group's
 * 16 values (the quantizer's formula, as the reference computes them), an 8 × 8 transpose puts one
 * column of the eight rows in each vector, and the rows' sums run as two vectors of four doubles:
 * (double)w·x is exact, so multiply then add rounds once per column, in column order — the reference's
 * bits. */
#include "quant/quant_internal.h"

#include <string.h>

#include "quant/qgemv_tab.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define QS_AVX2 __attribute__((target("avx2")))

QS_AVX2 static inline void transpose8(__m256 v[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    const __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
    const __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    v[0] = _mm256_permute2f128_ps(s0, s4, 0x20), v[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    v[2] = _mm256_permute2f128_ps(s2, s6, 0x20), v[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    v[4] = _mm256_permute2f128_ps(s0, s4, 0x31), v[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    v[6] = _mm256_permute2f128_ps(s2, s6, 0x31), v[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

QS_AVX2 void qt_scalar4_rows8_avx2(const harp_qtensor *w, int64_t r0, const float *x, double *out) {
    const int64_t n = w->n, ng = w->n_groups, g = w->group_size;
    const size_t rb = harp_scalar_row_bytes(n, 4);
    const uint8_t *rows[8];
    const float *sc[8];
    const uint8_t *zr[8];
    for (int r = 0; r < 8; r++) {
        rows[r] = (const uint8_t *)w->planes[0].data + (size_t)(r0 + r) * rb;
        sc[r] = (const float *)w->planes[1].data + (r0 + r) * ng;
        zr[r] = (const uint8_t *)w->planes[2].data + (r0 + r) * ng;
    }
    const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28), m15 = _mm256_set1_epi32(15);
    __m256d acc_lo = _mm256_setzero_pd(), acc_hi = _mm256_setzero_pd();
    float lut[8][16] __attribute__((aligned(32)));
    for (int64_t G = 0, c0 = 0; G < ng; G++, c0 += g) {
        const int64_t c1 = c0 + g < n ? c0 + g : n;
        for (int r = 0; r < 8; r++) harp_scalar_lut(sc[r][G], zr[r][G], 4, lut[r]);
        for (int64_t c = c0; c < c1; c += 8) {
            __m256 v[8];
            for (int r = 0; r < 8; r++) {
                uint32_t word;
                memcpy(&word, rows[r] + (c >> 1), 4);   /* columns c … c + 7, low nibble first */
                const __m256i idx = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)word), shifts), m15);
                const __m256 lo = _mm256_permutevar8x32_ps(_mm256_load_ps(lut[r]), idx);
                const __m256 hi = _mm256_permutevar8x32_ps(_mm256_load_ps(lut[r] + 8), idx);
                v[r] = _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
            }
            transpose8(v);   /* v[j]: column c + j of rows 0 … 7 */
            for (int j = 0; j < 8; j++) {
                const __m256d xd = _mm256_set1_pd((double)x[c + j]);
                acc_lo = _mm256_add_pd(acc_lo, _mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v[j])), xd));
                acc_hi = _mm256_add_pd(acc_hi, _mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v[j], 1)), xd));
            }
        }
    }
    _mm256_storeu_pd(out, acc_lo);
    _mm256_storeu_pd(out + 4, acc_hi);
}

int qt_scalar4_avx2_applies(const harp_qtensor *w) {
    return w->type == HARP_QTYPE_INT4 && !w->planes[3].data && w->n % 8 == 0 && w->group_size % 8 == 0 && qk_isa() == HARP_QISA_AVX2;
}
#else
int qt_scalar4_avx2_applies(const harp_qtensor *w) {
    (void)w;
    return 0;
}

void qt_scalar4_rows8_avx2(const harp_qtensor *w, int64_t r0, const float *x, double *out) {
    (void)w, (void)r0, (void)x, (void)out;
}
#endif
