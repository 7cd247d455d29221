/* AVX2 + F16C + FMA QTIP decode-GEMV row tiles, chosen at run time when AVX-512 is absent. Same
 * lanes and summation order as the portable and AVX-512 kernels (trellis_gemv.c): each 16-lane
 * accumulator is held as two ymm halves. States come out of 32-bit gathers at each window's first
 * word (AVX2 has no 16-bit permute); values are computed 8 states at a time. */
#include <string.h>

#include "trellis_kern.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TA_ATTR __attribute__((target("avx2,fma,f16c")))
#define TA_INLINE TA_ATTR static inline __attribute__((always_inline))

TA_INLINE __m256 f16_round(__m256 v) {
    return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* The 8 low 16-bit halves of r's lanes (cvtph input) in the low 128 bits, the 8 high ones above. */
TA_INLINE __m256i split_halves(__m256i r) {
    const __m256i shuf = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9, 12,
                                          13, 2, 3, 6, 7, 10, 11, 14, 15);
    return _mm256_permute4x64_epi64(_mm256_shuffle_epi8(r, shuf), 0xD8);
}

TA_INLINE __m256 code8(__m256i s, harp_tcode code) {
    if (code == HARP_TCODE_1MAD) {
        const __m256i x = _mm256_add_epi32(_mm256_mullo_epi32(s, _mm256_set1_epi32(34038481)), _mm256_set1_epi32(76625530));
        const __m256i m = _mm256_set1_epi32(0x00FF00FF);
        const __m256i p = _mm256_add_epi32(_mm256_and_si256(x, m), _mm256_and_si256(_mm256_srli_epi32(x, 8), m));
        const __m256i y = _mm256_add_epi32(_mm256_and_si256(p, _mm256_set1_epi32(0xFFFF)), _mm256_srli_epi32(p, 16));
        const __m256 f = _mm256_cvtepi32_ps(_mm256_sub_epi32(y, _mm256_set1_epi32(510)));
        return f16_round(_mm256_mul_ps(f, _mm256_set1_ps(1.0f / 147.800537109375f)));
    }
    const __m256i x = _mm256_add_epi32(_mm256_mullo_epi32(s, _mm256_set1_epi32(89226354)), _mm256_set1_epi32(64248484));
    const __m256i r = _mm256_xor_si256(_mm256_and_si256(x, _mm256_set1_epi32((int)0x8FFF8FFFu)),
                                       _mm256_set1_epi32(0x3B603B60));
    const __m256i q = split_halves(r);
    const __m256 lo = _mm256_cvtph_ps(_mm256_castsi256_si128(q)), hi = _mm256_cvtph_ps(_mm256_extracti128_si256(q, 1));
    return f16_round(_mm256_add_ps(hi, lo));
}

/* Gather indices (word q of each state's window) and right shifts, 8 states per vector. */
typedef struct {
    _Alignas(32) int32_t q[32][8];
    _Alignas(32) int32_t sh[32][8];
} win_tab;

static void win_tab_build(int K, int V, win_tab *t) {
    for (int k = 0; k < HARP_TRELLIS_T / V; k++) {
        const int o = k * K * V;
        t->q[k >> 3][k & 7] = o >> 4, t->sh[k >> 3][k & 7] = 16 - (o & 15);
    }
}

/* All states of one tile: a 32-bit gather at each window's first word gives (w[q+1] : w[q]); the
 * halves swapped and shifted give the window. buf repeats word 0 after the last word (the wrap). */
TA_INLINE void tile_states(const uint16_t *wd, int K, int V, const win_tab *t, uint32_t *st) {
    uint16_t buf[16 * 4 + 2];
    memcpy(buf, wd, sizeof(uint16_t) * 16 * (size_t)K);
    buf[16 * K] = wd[0];
    for (int v = 0; v < HARP_TRELLIS_T / V / 8; v++) {
        const __m256i g = _mm256_i32gather_epi32((const int *)(const void *)buf, _mm256_load_si256((const __m256i *)t->q[v]), 2);
        const __m256i win = _mm256_or_si256(_mm256_slli_epi32(g, 16), _mm256_srli_epi32(g, 16));
        const __m256i s = _mm256_and_si256(_mm256_srlv_epi32(win, _mm256_load_si256((const __m256i *)t->sh[v])),
                                           _mm256_set1_epi32(0xFFFF));
        _mm256_store_si256((__m256i *)(st + 8 * v), s);
    }
}

/* acc[2R] (lanes 0–7) and acc[2R + 1] (lanes 8–15) += (lo, hi) · X_e. */
TA_INLINE void fma16(__m256 *acc, int R, int e, __m256 lo, __m256 hi, const float *x) {
    const float *xe = x + 16 * e;
    acc[2 * R] = _mm256_fmadd_ps(lo, _mm256_load_ps(xe), acc[2 * R]);
    acc[2 * R + 1] = _mm256_fmadd_ps(hi, _mm256_load_ps(xe + 8), acc[2 * R + 1]);
}

TA_INLINE void tile(const harp_tmat *w, const uint32_t *st, const float *x, __m256 *acc, harp_tcode code) {
    if (code == HARP_TCODE_HYB) {
        const int *tlut = (const int *)(const void *)w->tlut;
        for (int c = 0; c < 8; c++) { /* states 16c … 16c+15: coordinate 0 then 1 */
            __m256 f[2][2];
            for (int h = 0; h < 2; h++) {
                const __m256i s = _mm256_loadu_si256((const __m256i *)(st + 16 * c + 8 * h));
                const __m256i hs = _mm256_mullo_epi32(s, _mm256_add_epi32(s, _mm256_set1_epi32(1)));
                const __m256i row = _mm256_and_si256(_mm256_srli_epi32(hs, 6), _mm256_set1_epi32(HARP_HYB_N - 1));
                __m256i wd = _mm256_i32gather_epi32(tlut, row, 4);
                wd = split_halves(_mm256_xor_si256(wd, _mm256_and_si256(hs, _mm256_set1_epi32(0x8000))));
                f[0][h] = _mm256_cvtph_ps(_mm256_castsi256_si128(wd));
                f[1][h] = _mm256_cvtph_ps(_mm256_extracti128_si256(wd, 1));
            }
            fma16(acc, c, 0, f[0][0], f[0][1], x);
            fma16(acc, c, 1, f[1][0], f[1][1], x);
        }
        return;
    }
    for (int c = 0; c < 16; c++)
        fma16(acc, c >> 1, c & 1, code8(_mm256_loadu_si256((const __m256i *)(st + 16 * c)), code),
              code8(_mm256_loadu_si256((const __m256i *)(st + 16 * c + 8)), code), x);
}

TA_INLINE void rows(const harp_tmat *w, const float *xp, float *y, int32_t i0, int32_t i1, int K, harp_tcode code) {
    const int32_t nt = (w->n + 15) / 16;
    const int V = code == HARP_TCODE_HYB ? 2 : 1;
    _Alignas(32) uint32_t st[HARP_TRELLIS_T];
    win_tab t;
    win_tab_build(K, V, &t);
    for (int32_t i = i0; i < i1; i++) {
        __m256 acc[16];
        for (int r = 0; r < 16; r++) acc[r] = _mm256_setzero_ps();
        for (int32_t j = 0; j < nt; j++) {
            tile_states(trellis_tile_words(w, i, j), K, V, &t, st);
            tile(w, st, xp + 32 * j, acc, code);
        }
        _Alignas(32) float a[8][16];
        for (int r = 0; r < 8; r++) _mm256_store_ps(a[r], acc[2 * r]), _mm256_store_ps(a[r] + 8, acc[2 * r + 1]);
        trellis_gemv_store(w, &a[0][0], y, i);
    }
}

TA_ATTR void trellis_gemv_tiles_avx2(const harp_tmat *w, const float *xp, float *y, int32_t i0, int32_t i1) {
    const harp_tcode c = w->code;
#define TA_CASE(k)                                                                  \
    if (w->K == k) {                                                                \
        if (c == HARP_TCODE_HYB) rows(w, xp, y, i0, i1, k, HARP_TCODE_HYB);         \
        else if (c == HARP_TCODE_1MAD) rows(w, xp, y, i0, i1, k, HARP_TCODE_1MAD);  \
        else rows(w, xp, y, i0, i1, k, HARP_TCODE_3INST);                           \
    }
    TA_CASE(2) TA_CASE(3) TA_CASE(4)
#undef TA_CASE
}

#else
void trellis_gemv_tiles_avx2(const harp_tmat *w, const float *xp, float *y, int32_t i0, int32_t i1) {
    trellis_gemv_tiles_portable(w, xp, y, i0, i1);
}
#endif
