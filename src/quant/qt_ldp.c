/* Row of the non-uniform 2-bit type ldp2 in the traits table (RCP's LDP, algorithms.md §6.6).
 * Planes: qweight (2-bit codes bit-packed per row, the scalar packing of qblocks.h: code c at bits
 * 2(c%4) of byte c/4) and levels (fp16, 4 per (row, group), non-decreasing). The value of code q in
 * group G of row r is (float)levels[r][4G + q]; the reference GEMV sums (double)w · x over the columns
 * in order — the definition of the format. The fast GEMV turns each group's 4 levels into a table
 * that one permute indexes with 8 codes at a time (AVX2; 32 codes per 8-byte load), summing in float.
 * With int4 activations on AVX-512 the codes are summed per level in integers instead (qt_ldp_avx512.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "quant/aq.h"
#include "quant/ldp.h"
#include "quant/qgemv_tab.h"
#include "quant/quant_internal.h"
#include "quant/qtype_traits.h"

static inline const uint8_t *ldp_codes(const harp_qtensor *w, int64_t r) {
    return (const uint8_t *)w->planes[QT_LDP_QWEIGHT].data + r * harp_scalar_row_bytes(w->n, 2);
}

/* The 4 levels of (row r, group G) as floats (memcpy: a folder plane may be unaligned). */
static inline void ldp_lut(const harp_qtensor *w, int64_t r, int64_t G, float lv[4]) {
    uint16_t h[4];
    memcpy(h, (const uint8_t *)w->planes[QT_LDP_LEVELS].data + 2 * (size_t)(4 * (r * w->n_groups + G)), sizeof h);
    for (int k = 0; k < 4; k++) lv[k] = harp_f16_to_f32(h[k]);
}

static void ldp_row(const harp_qtensor *w, int64_t r, float *o) {
    const uint8_t *row = ldp_codes(w, r);
    for (int64_t G = 0, c0 = 0; G < w->n_groups; G++, c0 += w->group_size) {
        const int64_t c1 = c0 + w->group_size < w->n ? c0 + w->group_size : w->n;
        float lv[4];
        ldp_lut(w, r, G, lv);
        for (int64_t c = c0; c < c1; c++) o[c] = lv[(row[c >> 2] >> (2 * (c & 3))) & 3];
    }
}

void qt_ldp_dequant_rows(const harp_qtensor *w, int64_t r0, int64_t r1, float *out, size_t ld) {
    for (int64_t r = r0; r < r1; r++) ldp_row(w, r, out + (size_t)(r - r0) * ld);
}

/* Plain twin: every weight decoded on its own with the generic unpacker. */
void qt_ldp_gemv_ref(const harp_qtensor *w, const float *x, float *y) {
    for (int64_t r = 0; r < w->m; r++) {
        const uint8_t *row = ldp_codes(w, r);
        double s = 0;
        for (int64_t c = 0; c < w->n; c++) {
            float lv[4];
            ldp_lut(w, r, c / w->group_size, lv);
            s += (double)lv[harp_scalar_get(row, c, 2)] * x[c];
        }
        y[r] = (float)s;
    }
}

harp_status qt_ldp_check_levels(const void *p, int64_t count, const char *file, const char *prefix, const char *suffix) {
    for (int64_t k = 0; k < count; k++) {
        uint16_t h;
        memcpy(&h, (const uint8_t *)p + 2 * k, 2);
        const float f = harp_f16_to_f32(h);
        if (!isfinite(f))
            return harp_err(HARP_ERR_NUMERIC, "%s: tensor '%s.%s' has a non-finite level at index %lld", file, prefix, suffix,
                            (long long)k);
        if (k % 4) {
            uint16_t h0;
            memcpy(&h0, (const uint8_t *)p + 2 * (k - 1), 2);
            if (f < harp_f16_to_f32(h0))
                return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s.%s' levels of group %lld are not in increasing order", file,
                                prefix, suffix, (long long)(k / 4));
        }
    }
    return HARP_OK;
}

/* ---- fast rows ------------------------------------------------------------------------------------ */

/* Float dot of row r with x, group by group (portable). */
static float ldp_dot_c(const harp_qtensor *w, int64_t r, const float *x) {
    const uint8_t *row = ldp_codes(w, r);
    float s = 0.0f;
    for (int64_t G = 0, c0 = 0; G < w->n_groups; G++, c0 += w->group_size) {
        const int64_t c1 = c0 + w->group_size < w->n ? c0 + w->group_size : w->n;
        float lv[4], a = 0.0f;
        ldp_lut(w, r, G, lv);
        for (int64_t c = c0; c < c1; c++) a += lv[(row[c >> 2] >> (2 * (c & 3))) & 3] * x[c];
        s += a;
    }
    return s;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define LDP_AVX2 __attribute__((target("avx2,fma,f16c")))

/* Codes c … c+7 of a 16-code word broadcast in every lane: a variable shift puts code i in bits
 * 0–1 of lane i; vpermps reads only index bits 0–2, and the table holds the 4 levels twice, so the
 * next code's low bit in bit 2 needs no mask. */
LDP_AVX2 static inline __m256 ldp_dec8(__m256 lut, __m256i word, __m256i shifts) {
    return _mm256_permutevar8x32_ps(lut, _mm256_srlv_epi32(word, shifts));
}

LDP_AVX2 static float ldp_dot_avx2(const harp_qtensor *w, int64_t r, const float *x) {
    const uint8_t *row = ldp_codes(w, r);
    const int64_t g = w->group_size, n = w->n;
    const uint8_t *lvp = (const uint8_t *)w->planes[QT_LDP_LEVELS].data + 8 * (size_t)(r * w->n_groups);
    const __m256i sh0 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14), sh1 = _mm256_setr_epi32(16, 18, 20, 22, 24, 26, 28, 30);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    float tail = 0.0f;
    for (int64_t G = 0, c0 = 0; G < w->n_groups; G++, c0 += g) {
        const int64_t c1 = c0 + g < n ? c0 + g : n;
        uint64_t h4;
        memcpy(&h4, lvp + 8 * G, 8);
        const __m128 l4 = _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h4));
        const __m256 lut = _mm256_set_m128(l4, l4);
        int64_t c = c0;
        if (!(c0 & 3)) {
            for (; c + 32 <= c1; c += 32) {
                uint32_t u[2];
                memcpy(u, row + (c >> 2), 8);
                const __m256i lo = _mm256_set1_epi32((int)u[0]), hi = _mm256_set1_epi32((int)u[1]);
                acc0 = _mm256_fmadd_ps(ldp_dec8(lut, lo, sh0), _mm256_loadu_ps(x + c), acc0);
                acc1 = _mm256_fmadd_ps(ldp_dec8(lut, lo, sh1), _mm256_loadu_ps(x + c + 8), acc1);
                acc2 = _mm256_fmadd_ps(ldp_dec8(lut, hi, sh0), _mm256_loadu_ps(x + c + 16), acc2);
                acc3 = _mm256_fmadd_ps(ldp_dec8(lut, hi, sh1), _mm256_loadu_ps(x + c + 24), acc3);
            }
            for (; c + 8 <= c1; c += 8) {
                const unsigned u = (unsigned)row[c >> 2] | (unsigned)row[(c >> 2) + 1] << 8;
                acc0 = _mm256_fmadd_ps(ldp_dec8(lut, _mm256_set1_epi32((int)u), sh0), _mm256_loadu_ps(x + c), acc0);
            }
        }
        float lv[4];
        _mm_storeu_ps(lv, l4);
        for (; c < c1; c++) tail += lv[(row[c >> 2] >> (2 * (c & 3))) & 3] * x[c];
    }
    __m256 a = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s) + tail;
}

static int ldp_simd(void) {
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        unsigned a, b, c, d;   /* F16C: CPUID.1:ECX bit 29 (clang's __builtin_cpu_supports has no "f16c") */
        have = qk_have_avx2() && __get_cpuid(1, &a, &b, &c, &d) && ((c >> 29) & 1u);
    }
    return have;
}
#else
static float ldp_dot_avx2(const harp_qtensor *w, int64_t r, const float *x) { return ldp_dot_c(w, r, x); }
static int ldp_simd(void) { return 0; }
#endif

/* y[r] = mul · dot(row r, x), rows over threads (each row one thread: thread-count independent). */
static void ldp_rows(const harp_qtensor *w, const float *x, float *y, float mul) {
    const int simd = ldp_simd();
    const int64_t m = w->m;
#pragma omp parallel for schedule(static) if (m * w->n >= 65536)
    for (int64_t r = 0; r < m; r++) y[r] = mul * (simd ? ldp_dot_avx2(w, r, x) : ldp_dot_c(w, r, x));
}

harp_status qt_ldp_gemv(const harp_qtensor *w, const float *x, float *y, int act_q8) {
    (void)act_q8; /* the int-activation kernel is harp_ldp_gemv_a4 */
    ldp_rows(w, x, y, 1.0f);
    return HARP_OK;
}

/* ---- int4 activations ------------------------------------------------------------------------------ */

static const harp_aq_fmt k_a4 = {.bits = 4, .sym = 1, .group = 0, .clip = 1.0f, .scale_f16 = 0};

/* x → its int4 codes (as exact floats in xq and / or as bytes in xq8) and the per-token scale, with
 * the reference or the fast quantizer. */
static harp_status a4_quantize(const float *x, int64_t n, int ref, float *xq, int8_t *xq8, float *scale) {
    harp_aq_planes pl;
    HARP_TRY(harp_aq_planes_alloc(&k_a4, 1, n, &pl));
    harp_status st = ref ? harp_aq_quantize_ref(&k_a4, x, 1, n, n, &pl) : harp_aq_quantize(&k_a4, x, 1, n, n, &pl);
    if (!st) {
        for (int64_t c = 0; c < n; c++) {
            const int q = harp_aq_code_get(pl.codes, c, 4, 1);
            if (xq) xq[c] = (float)q;
            if (xq8) xq8[c] = (int8_t)q;
        }
        *scale = pl.scale[0];
    }
    harp_aq_planes_free(&pl);
    return st;
}

harp_status harp_ldp_gemv_a4_ref(const harp_qtensor *w, const float *x, float *y) {
    float *xq = harp_xmalloc((size_t)w->n * sizeof *xq, "ldp2 int4 activations");
    float s = 0.0f;
    harp_status st = xq ? a4_quantize(x, w->n, 1, xq, NULL, &s) : HARP_ERR_OOM;
    for (int64_t r = 0; !st && r < w->m; r++) {
        const uint8_t *row = ldp_codes(w, r);
        double acc = 0;
        for (int64_t c = 0; c < w->n; c++) {
            float lv[4];
            ldp_lut(w, r, c / w->group_size, lv);
            acc += (double)lv[harp_scalar_get(row, c, 2)] * (double)xq[c];
        }
        y[r] = (float)((double)s * acc);
    }
    harp_free(xq);
    return st;
}

static int ldp_a4_int(const harp_qtensor *w) { return qk_q8_simd() && qk_ldp_a4_fits(w); }

/* (groups that do not start on 64-column blocks take the float kernel even where this says avx512vnni) */
const char *harp_ldp_gemv_isa(int a4) { return a4 && qk_q8_simd() ? "avx512vnni" : ldp_simd() ? "avx2" : "c"; }

enum { A4_CHUNK = 16 };   /* rows per scheduling unit: the result of a row does not depend on the split */

/* Integer sums per level (qt_ldp_avx512.c); rows in chunks over the threads, each with its level scratch. */
static harp_status ldp_a4_rows_int(const harp_qtensor *w, const float *x, float *y) {
    const int64_t n = w->n, m = w->m, ng = w->n_groups, nb = qk_ldp_a4_blocks(n);
    int8_t *xq = harp_xmalloc((size_t)n, "ldp2 int4 activations"), *xp = harp_xmalloc((size_t)(64 * nb), "ldp2 int4 activations");
    int32_t *xg = harp_xmalloc(sizeof(int32_t) * 16 * (size_t)ng, "ldp2 int4 activations");
    float s = 0.0f;
    harp_status st = xq && xp && xg ? a4_quantize(x, n, 0, NULL, xq, &s) : HARP_ERR_OOM;
    if (!st) {
        qk_ldp_a4_prep(w, xq, xp, xg);
        const int64_t chunks = (m + A4_CHUNK - 1) / A4_CHUNK;
        int oom = 0;
#pragma omp parallel if (m * n >= 65536) reduction(| : oom)
        {
            float *lv = harp_xmalloc(sizeof(float) * (size_t)(4 * ng + 16), "ldp2 level scratch");
            oom = !lv;
#pragma omp for schedule(static)
            for (int64_t c = 0; c < chunks; c++)
                if (lv) qk_ldp_a4_rows_avx512(w, xp, xg, s, lv, y, c * A4_CHUNK, c * A4_CHUNK + A4_CHUNK < m ? c * A4_CHUNK + A4_CHUNK : m);
            harp_free(lv);
        }
        if (oom) st = HARP_ERR_OOM;
    }
    harp_free(xq), harp_free(xp), harp_free(xg);
    return st;
}

harp_status harp_ldp_gemv_a4(const harp_qtensor *w, const float *x, float *y) {
    if (ldp_a4_int(w)) return ldp_a4_rows_int(w, x, y);
    float *xq = harp_xmalloc((size_t)w->n * sizeof *xq, "ldp2 int4 activations");
    float s = 0.0f;
    harp_status st = xq ? a4_quantize(x, w->n, 0, xq, NULL, &s) : HARP_ERR_OOM;
    if (!st) ldp_rows(w, xq, y, s);
    harp_free(xq);
    return st;
}

/* ---- the planes as plain arrays (fit (b) starts from and returns to the stored form) --------------- */

void harp_ldp_unpack(int64_t n, int64_t ng, int64_t r0, int64_t rows, const uint8_t *qweight, const uint16_t *lv16, uint8_t *q,
                     float *levels) {
    const int64_t rb = harp_scalar_row_bytes(n, 2);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < n; c++) q[r * n + c] = (uint8_t)harp_scalar_get(qweight + (r0 + r) * rb, c, 2);
    for (int64_t k = 0; k < 4 * rows * ng; k++) {
        uint16_t h;
        memcpy(&h, (const uint8_t *)lv16 + 2 * (size_t)(4 * r0 * ng + k), 2); /* a folder plane may be unaligned */
        levels[k] = harp_f16_to_f32(h);
    }
}

void harp_ldp_pack(int64_t n, int64_t ng, int64_t r0, int64_t rows, const uint8_t *q, const float *levels, uint8_t *qweight,
                   uint16_t *lv16) {
    const int64_t rb = harp_scalar_row_bytes(n, 2);
    memset(qweight + r0 * rb, 0, (size_t)(rows * rb));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < n; c++) harp_scalar_put(qweight + (r0 + r) * rb, c, 2, q[r * n + c]);
    for (int64_t k = 0; k < 4 * rows * ng; k++) {
        const uint16_t h = harp_f32_to_f16(levels[k]);
        memcpy((uint8_t *)lv16 + 2 * (size_t)(4 * r0 * ng + k), &h, 2);
    }
}
