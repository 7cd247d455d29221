/* AVX-512 (F + BW + VL, VNNI when present) QTIP decode-GEMV row tiles, chosen at run time. Lane
 * layout and summation order: trellis_gemv.c.
 *
 * A tile's 16·K code words sit in one or two zmm registers, and states come out of them with word
 * permutes (vpermt2w) whose index wraps the last word to the first — the tail-biting wrap.
 *  - HYB (V = 2): 32 states per step in 16-bit lanes: s = (w_q << sh) | (w_{q+1} >> (16 − sh)),
 *    h = s·(s+1) mod 2^16 (vpmullw: only hash bits 6..15 are used), and each coordinate's 512-entry
 *    fp16 column is looked up in registers: 8 vpermt2w over 64-entry slices, merged by hash bits
 *    12..14 in a blend tree — gathers cost ~4× more on this class of CPU. Bit 15 flips the sign of
 *    coordinate 0 (one vpternlogd). With VBMI (+ VBMI2 funnel shifts) the lookup is done on bytes
 *    instead, 64 states at a time: 4 byte columns × (4 vpermt2b over 128 entries + 3 blends), the
 *    bytes re-interleaved into fp16 with vpermt2b — about 25 % fewer instructions.
 *  - 1MAD / 3INST (V = 1): 16 states in 32-bit lanes (vpermt2w, variable shift, mask), the LCG step,
 *    then the byte sum (one vpdpbusd with VNNI) or the two fp16 halves, rounded to fp16 exactly as
 *    the scalar definition. */
#include <string.h>

#include "trellis_kern.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TG_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define TG_INLINE TG_ATTR static inline __attribute__((always_inline))

/* Per step: word-permute indices and shifts (V = 1: 16 chunks of 16 states in 32-bit lanes;
 * V = 2: 4 chunks of 32 states in 16-bit lanes), plus the two HYB columns. */
typedef struct {
    _Alignas(64) uint16_t iq[16][32];   /* V = 1: (q+1, q) word pairs per lane; V = 2: q        */
    _Alignas(64) uint16_t iq1[4][32];   /* V = 2: q + 1 (wrapping)                               */
    _Alignas(64) uint32_t sh1[16][16];  /* V = 1: right shift per 32-bit lane                       */
    _Alignas(64) uint16_t sh[4][32];    /* V = 2: left shift per 16-bit lane                        */
    _Alignas(64) uint16_t col[2][512];  /* HYB fp16 columns                                       */
    _Alignas(64) uint8_t byt[4][512];   /* HYB byte columns: coordinate 0 low, high, 1 low, high   */
} tabs;

static void tabs_build(const harp_tmat *w, int V, tabs *t) {
    const int KV = w->K * V, nw = 16 * w->K;
    for (int k = 0; k < HARP_TRELLIS_T / V; k++) {
        const int o = k * KV, q = o >> 4;
        if (V == 1) {
            t->iq[k >> 4][2 * (k & 15)] = (uint16_t)((q + 1) % nw), t->iq[k >> 4][2 * (k & 15) + 1] = (uint16_t)q;
            t->sh1[k >> 4][k & 15] = (uint32_t)(16 - (o & 15));
        } else {
            t->iq[k >> 5][k & 31] = (uint16_t)q, t->iq1[k >> 5][k & 31] = (uint16_t)((q + 1) % nw);
            t->sh[k >> 5][k & 31] = (uint16_t)(o & 15);
        }
    }
    if (V == 2)
        for (int i = 0; i < HARP_HYB_N; i++)
            for (int d = 0; d < 2; d++) {
                t->col[d][i] = w->tlut[2 * i + d];
                t->byt[2 * d][i] = (uint8_t)(w->tlut[2 * i + d] & 0xFF), t->byt[2 * d + 1][i] = (uint8_t)(w->tlut[2 * i + d] >> 8);
            }
}

TG_INLINE __m512 f16_round(__m512 v) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* ---- HYB ------------------------------------------------------------------------------------- */

/* col[h >> 6 & 511] for 32 lanes: 8 two-register permutes, merged by hash bits 12, 13, 14. */
TG_INLINE __m512i lut512(const uint16_t *col, __m512i idx, __mmask32 m12, __mmask32 m13, __mmask32 m14) {
    __m512i r[8];
    for (int s = 0; s < 8; s++)
        r[s] = _mm512_permutex2var_epi16(_mm512_load_si512(col + 64 * s), idx, _mm512_load_si512(col + 64 * s + 32));
    for (int s = 0; s < 8; s += 2) r[s] = _mm512_mask_blend_epi16(m12, r[s], r[s + 1]);
    r[0] = _mm512_mask_blend_epi16(m13, r[0], r[2]), r[4] = _mm512_mask_blend_epi16(m13, r[4], r[6]);
    return _mm512_mask_blend_epi16(m14, r[0], r[4]);
}

TG_INLINE void tile_hyb(const tabs *t, __m512i A, __m512i B, __m512 x0, __m512 x1, __m512 *acc) {
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        const __m512i wq = _mm512_permutex2var_epi16(A, _mm512_load_si512(t->iq[c]), B);
        const __m512i wq1 = _mm512_permutex2var_epi16(A, _mm512_load_si512(t->iq1[c]), B);
        const __m512i sh = _mm512_load_si512(t->sh[c]);
        const __m512i s = _mm512_or_si512(_mm512_sllv_epi16(wq, sh),
                                          _mm512_srlv_epi16(wq1, _mm512_sub_epi16(_mm512_set1_epi16(16), sh)));
        const __m512i h = _mm512_mullo_epi16(s, _mm512_add_epi16(s, _mm512_set1_epi16(1)));
        const __m512i idx = _mm512_srli_epi16(h, 6);
        const __mmask32 m12 = _mm512_test_epi16_mask(h, _mm512_set1_epi16(1 << 12));
        const __mmask32 m13 = _mm512_test_epi16_mask(h, _mm512_set1_epi16(1 << 13));
        const __mmask32 m14 = _mm512_test_epi16_mask(h, _mm512_set1_epi16(1 << 14));
        /* coordinate 0 ^= h & 0x8000 */
        const __m512i v0 = _mm512_ternarylogic_epi32(lut512(t->col[0], idx, m12, m13, m14), h,
                                                     _mm512_set1_epi32((int)0x80008000u), 0x78);
        const __m512i v1 = lut512(t->col[1], idx, m12, m13, m14);
        __m512 *a = acc + 2 * c;
        a[0] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(v0)), x0, a[0]);
        a[0] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(v1)), x1, a[0]);
        a[1] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(v0, 1)), x0, a[1]);
        a[1] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(v1, 1)), x1, a[1]);
    }
}

/* ---- HYB with VBMI: byte-table lookups over 64 states ------------------------------------------ */

#define TG_VBMI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,avx512vbmi2,fma")))
#define TG_VBMI_INLINE TG_VBMI static inline __attribute__((always_inline))

/* Hash of the 32 states of step group c in 16-bit lanes (one funnel shift per lane). */
TG_VBMI_INLINE __m512i hash32_vbmi(const tabs *t, int c, __m512i A, __m512i B) {
    const __m512i wq = _mm512_permutex2var_epi16(A, _mm512_load_si512(t->iq[c]), B);
    const __m512i wq1 = _mm512_permutex2var_epi16(A, _mm512_load_si512(t->iq1[c]), B);
    const __m512i s = _mm512_shldv_epi16(wq, wq1, _mm512_load_si512(t->sh[c]));
    return _mm512_mullo_epi16(s, _mm512_add_epi16(s, _mm512_set1_epi16(1)));
}

/* byt[row] for 64 byte lanes: 4 two-register byte permutes merged by row bits 7 and 8. */
TG_VBMI_INLINE __m512i lut512b(const uint8_t *b, __m512i idx, __mmask64 m7, __mmask64 m8) {
    __m512i r[4];
    for (int s = 0; s < 4; s++)
        r[s] = _mm512_permutex2var_epi8(_mm512_load_si512(b + 128 * s), idx, _mm512_load_si512(b + 128 * s + 64));
    r[0] = _mm512_mask_blend_epi8(m7, r[0], r[1]), r[2] = _mm512_mask_blend_epi8(m7, r[2], r[3]);
    return _mm512_mask_blend_epi8(m8, r[0], r[2]);
}

TG_VBMI_INLINE void fma32(__m512i v0, __m512i v1, __m512 x0, __m512 x1, __m512 *a) {
    a[0] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(v0)), x0, a[0]);
    a[0] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(v1)), x1, a[0]);
    a[1] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(v0, 1)), x0, a[1]);
    a[1] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(v1, 1)), x1, a[1]);
}

/* vpermt2b indices: 0 = low bytes of two 16-bit vectors, 1 = high bytes, 2 / 3 = interleave bytes
 * 0–31 / 32–63 of a (low) and b (high) back into 16-bit lanes. */
static void byte_indices(__m512i *bix) {
    _Alignas(64) uint8_t ix[4][64];
    for (int j = 0; j < 64; j++) {
        ix[0][j] = (uint8_t)(2 * j), ix[1][j] = (uint8_t)(2 * j + 1);
        for (int p = 0; p < 2; p++) ix[2 + p][j] = (uint8_t)((j & 1 ? 64 : 0) + 32 * p + (j >> 1));
    }
    memcpy(bix, ix, sizeof ix);
}

TG_VBMI_INLINE void tile_hyb_vbmi(const tabs *t, __m512i A, __m512i B, __m512 x0, __m512 x1, __m512 *acc,
                                  const __m512i *bix) {
#pragma GCC unroll 2
    for (int g = 0; g < 2; g++) { /* states 64g … 64g+63 */
        const __m512i h0 = hash32_vbmi(t, 2 * g, A, B), h1 = hash32_vbmi(t, 2 * g + 1, A, B);
        /* row bits 0..6 (hash bits 6..12) as byte indices; the hash's high bytes carry row bits 7, 8
         * (bits 5, 6) and the sign (bit 7) */
        const __m512i idx = _mm512_permutex2var_epi8(_mm512_srli_epi16(h0, 6), bix[0], _mm512_srli_epi16(h1, 6));
        const __m512i hib = _mm512_permutex2var_epi8(h0, bix[1], h1);
        const __mmask64 m7 = _mm512_test_epi8_mask(hib, _mm512_set1_epi8(0x20));
        const __mmask64 m8 = _mm512_test_epi8_mask(hib, _mm512_set1_epi8(0x40));
        const __m512i c0l = lut512b(t->byt[0], idx, m7, m8), c1l = lut512b(t->byt[2], idx, m7, m8);
        const __m512i c1h = lut512b(t->byt[3], idx, m7, m8);
        const __m512i c0h = _mm512_ternarylogic_epi32(lut512b(t->byt[1], idx, m7, m8), hib, _mm512_set1_epi8((char)0x80), 0x78);
        for (int p = 0; p < 2; p++) /* 16-bit values of states 64g + 32p … +31, in state order */
            fma32(_mm512_permutex2var_epi8(c0l, bix[2 + p], c0h), _mm512_permutex2var_epi8(c1l, bix[2 + p], c1h), x0, x1,
                  acc + 4 * g + 2 * p);
    }
}

/* ---- computed codes (V = 1) -------------------------------------------------------------------- */

TG_INLINE __m512i states16(const tabs *t, int c, __m512i A, __m512i B) {
    const __m512i w = _mm512_permutex2var_epi16(A, _mm512_load_si512(t->iq[c]), B);
    return _mm512_and_si512(_mm512_srlv_epi32(w, _mm512_load_si512(t->sh1[c])), _mm512_set1_epi32(0xFFFF));
}

/* code: 1 = 1MAD with the 7-op byte sum, 2 = 1MAD with vpdpbusd, 3 = 3INST. */
TG_INLINE __m512 code16(__m512i s, int code) {
    if (code == 3) {
        const __m512i x = _mm512_add_epi32(_mm512_mullo_epi32(s, _mm512_set1_epi32(89226354)), _mm512_set1_epi32(64248484));
        const __m512i r = _mm512_ternarylogic_epi32(x, _mm512_set1_epi32((int)0x8FFF8FFFu), _mm512_set1_epi32(0x3B603B60),
                                                    0x6A); /* (x & m) ^ c */
        const __m512 lo = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(r));
        const __m512 hi = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
        return f16_round(_mm512_add_ps(hi, lo));
    }
    const __m512i x = _mm512_add_epi32(_mm512_mullo_epi32(s, _mm512_set1_epi32(34038481)), _mm512_set1_epi32(76625530));
    __m512i y;
    if (code == 2) {
        /* vpdpbusd (VNNI, checked at run time) as inline asm, so this file needs no VNNI target */
        y = _mm512_set1_epi32(-510);
        __asm__("vpdpbusd %2, %1, %0" : "+v"(y) : "v"(x), "v"(_mm512_set1_epi32(0x01010101)));
    } else {
        const __m512i m = _mm512_set1_epi32(0x00FF00FF);
        const __m512i p = _mm512_add_epi32(_mm512_and_si512(x, m), _mm512_and_si512(_mm512_srli_epi32(x, 8), m));
        y = _mm512_sub_epi32(_mm512_add_epi32(_mm512_and_si512(p, _mm512_set1_epi32(0xFFFF)), _mm512_srli_epi32(p, 16)),
                             _mm512_set1_epi32(510));
    }
    /* y / 147.800537109375 and y · fp32(1/147.800537109375) round to the same fp16 for all 1 021
     * possible y: tests/test_trellis_gemv.c puts all 2^16 states through this path */
    return f16_round(_mm512_mul_ps(_mm512_cvtepi32_ps(y), _mm512_set1_ps(1.0f / 147.800537109375f)));
}

TG_INLINE void tile_v1(const tabs *t, __m512i A, __m512i B, int code, __m512 x0, __m512 x1, __m512 *acc) {
#pragma GCC unroll 16
    for (int c = 0; c < 16; c++)
        acc[c >> 1] = _mm512_fmadd_ps(code16(states16(t, c, A, B), code), (c & 1) ? x1 : x0, acc[c >> 1]);
}

/* ---- driver ------------------------------------------------------------------------------------ */

TG_INLINE void load_tile(const uint16_t *wd, int K, __m512i *A, __m512i *B) {
    *A = _mm512_loadu_si512(wd);
    *B = K == 2 ? *A : K == 3 ? _mm512_maskz_loadu_epi16(0xFFFFu, wd + 32) : _mm512_loadu_si512(wd + 32);
}

/* Rows of row tile i from the accumulators (shared tail, fixed lane order). */
TG_INLINE void store_rows(const harp_tmat *w, const __m512 *acc, float *y, int32_t i) {
    _Alignas(64) float a[8][16];
    for (int r = 0; r < 8; r++) _mm512_store_ps(a[r], acc[r]);
    trellis_gemv_store(w, &a[0][0], y, i);
}

/* The row-tile loop shared by both HYB paths and the computed codes; TILE consumes A, B (the tile's
 * code words), x0, x1 (its x vectors) and acc. */
#define TG_ROW_LOOP(TILE)                                                                            \
    for (int32_t i = i0; i < i1; i++) {                                                              \
        __m512 acc[8];                                                                               \
        for (int r = 0; r < 8; r++) acc[r] = _mm512_setzero_ps();                                    \
        const uint16_t *wd = trellis_tile_words(w, i, 0);                                            \
        for (int32_t j = 0; j < (w->n + 15) / 16; j++, wd += 16 * K) {                               \
            __m512i A, B;                                                                            \
            load_tile(wd, K, &A, &B);                                                                \
            const __m512 x0 = _mm512_load_ps(xp + 32 * j), x1 = _mm512_load_ps(xp + 32 * j + 16);    \
            TILE;                                                                                    \
        }                                                                                            \
        store_rows(w, acc, y, i);                                                                    \
    }

/* Row tiles [i0, i1) for one (K, code), both compile-time after inlining (code as in code16, 0 = HYB). */
TG_INLINE void rows(const harp_tmat *w, const tabs *t, const float *xp, float *y, int32_t i0, int32_t i1, int K,
                    int code) {
    TG_ROW_LOOP(if (code == 0) tile_hyb(t, A, B, x0, x1, acc); else tile_v1(t, A, B, code, x0, x1, acc))
}

TG_VBMI_INLINE void rows_hyb_vbmi(const harp_tmat *w, const tabs *t, const float *xp, float *y, int32_t i0, int32_t i1,
                                  int K) {
    __m512i bix[4];
    byte_indices(bix);
    TG_ROW_LOOP(tile_hyb_vbmi(t, A, B, x0, x1, acc, bix))
}
#undef TG_ROW_LOOP

#define TG_CASES(code)                                             \
    do {                                                           \
        if (w->K == 2) rows(w, &t, xp, y, i0, i1, 2, code);        \
        else if (w->K == 3) rows(w, &t, xp, y, i0, i1, 3, code);   \
        else rows(w, &t, xp, y, i0, i1, 4, code);                  \
    } while (0)

TG_ATTR void trellis_gemv_tiles_avx512(const harp_tmat *w, const float *xp, float *y, int32_t i0, int32_t i1) {
    /* libgcc fills the CPU model in a constructor; reading it here is cheap and race-free */
    const int vnni = __builtin_cpu_supports("avx512vnni");
    tabs t;
    tabs_build(w, harp_tcode_v(w->code), &t);
    if (w->code == HARP_TCODE_HYB) TG_CASES(0);
    else if (w->code == HARP_TCODE_1MAD && vnni) TG_CASES(2);
    else if (w->code == HARP_TCODE_1MAD) TG_CASES(1);
    else TG_CASES(3);
}
TG_VBMI void trellis_gemv_tiles_avx512vbmi(const harp_tmat *w, const float *xp, float *y, int32_t i0, int32_t i1) {
    if (w->code != HARP_TCODE_HYB) {
        trellis_gemv_tiles_avx512(w, xp, y, i0, i1);
        return;
    }
    tabs t;
    tabs_build(w, 2, &t);
    if (w->K == 2) rows_hyb_vbmi(w, &t, xp, y, i0, i1, 2);
    else if (w->K == 3) rows_hyb_vbmi(w, &t, xp, y, i0, i1, 3);
    else rows_hyb_vbmi(w, &t, xp, y, i0, i1, 4);
}
#undef TG_CASES

#else
void trellis_gemv_tiles_avx512(const harp_tmat *w, const float *xp, float *y, int32_t i0, int32_t i1) {
    trellis_gemv_tiles_portable(w, xp, y, i0, i1);
}
void trellis_gemv_tiles_avx512vbmi(const harp_tmat *w, const float *xp, float *y, int32_t i0, int32_t i1) {
    trellis_gemv_tiles_portable(w, xp, y, i0, i1);
}
#endif
