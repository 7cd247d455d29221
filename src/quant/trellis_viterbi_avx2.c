/* The fused Viterbi pass with AVX2 (8 lanes), chosen at run time (trellis_viterbi.c). */
#include "trellis_kern.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TV_W 8
#define TV_INLINE __attribute__((target("avx2"))) static inline __attribute__((always_inline))
#define TV_NAME __attribute__((target("avx2"))) trellis_steps_avx2

typedef __m256 tv_f;
typedef __m256i tv_i;
typedef __m256 tv_m;
#define TV_MM(x) _mm256_##x

int trellis_cpu_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

TV_INLINE tv_f tv_bcast(const float *p) { return _mm256_broadcast_ss(p); }
TV_INLINE tv_i tv_expand_index(int KV) {
    return _mm256_srlv_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(KV));
}
TV_INLINE tv_f tv_expand(const float *p, tv_i idx) { return _mm256_permutevar8x32_ps(_mm256_loadu_ps(p), idx); }
TV_INLINE tv_i tv_loadi(const int32_t *p) { return _mm256_load_si256((const __m256i *)p); }
TV_INLINE void tv_storei(int32_t *p, tv_i v) { _mm256_store_si256((__m256i *)p, v); }
TV_INLINE tv_m tv_lt(tv_f a, tv_f b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
TV_INLINE tv_f tv_blend(tv_m m, tv_f a, tv_f b) { return _mm256_blendv_ps(a, b, m); }
TV_INLINE tv_i tv_blendi(tv_m m, tv_i a, tv_i b) {
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(b), m));
}
TV_INLINE void tv_store_bytes(uint8_t *p, tv_i v) {
    const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64((__m128i *)p, _mm_packus_epi16(w, w));
}

#include "trellis_viterbi_tpl.h"

#else
int trellis_cpu_avx2(void) { return 0; }
void trellis_steps_avx2(const harp_tcb *cb, const float *x, harp_viterbi_ws *ws) {
    (void)cb, (void)x, (void)ws;
}
#endif
