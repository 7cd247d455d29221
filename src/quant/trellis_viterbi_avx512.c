/* The fused Viterbi pass with AVX-512F (16 lanes), chosen at run time (trellis_viterbi.c). */
#include "trellis_kern.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TV_W 16
#define TV_INLINE __attribute__((target("avx512f"))) static inline __attribute__((always_inline))
#define TV_NAME __attribute__((target("avx512f"))) trellis_steps_avx512

typedef __m512 tv_f;
typedef __m512i tv_i;
typedef __mmask16 tv_m;
#define TV_MM(x) _mm512_##x

int trellis_cpu_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
}

int trellis_cpu_avx512vbmi(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vbmi2");
}

TV_INLINE tv_f tv_bcast(const float *p) { return _mm512_set1_ps(*p); }
TV_INLINE tv_i tv_expand_index(int KV) {
    return _mm512_srlv_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(KV));
}
TV_INLINE tv_f tv_expand(const float *p, tv_i idx) { return _mm512_permutexvar_ps(idx, _mm512_loadu_ps(p)); }
TV_INLINE tv_i tv_loadi(const int32_t *p) { return _mm512_load_si512((const void *)p); }
TV_INLINE void tv_storei(int32_t *p, tv_i v) { _mm512_store_si512((void *)p, v); }
TV_INLINE tv_m tv_lt(tv_f a, tv_f b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
TV_INLINE tv_f tv_blend(tv_m m, tv_f a, tv_f b) { return _mm512_mask_blend_ps(m, a, b); }
TV_INLINE tv_i tv_blendi(tv_m m, tv_i a, tv_i b) { return _mm512_mask_blend_epi32(m, a, b); }
TV_INLINE void tv_store_bytes(uint8_t *p, tv_i v) { _mm_storeu_si128((__m128i *)p, _mm512_cvtepi32_epi8(v)); }

#include "trellis_viterbi_tpl.h"

#else
int trellis_cpu_avx512(void) { return 0; }
int trellis_cpu_avx512vbmi(void) { return 0; }
void trellis_steps_avx512(const harp_tcb *cb, const float *x, harp_viterbi_ws *ws) {
    (void)cb, (void)x, (void)ws;
}
#endif
