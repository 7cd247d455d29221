/* Activation / KV quantizer (src/quant/aq.h): hand-computed codes (§6.1 formulas, half-to-even ties,
 * zero point, clip), the packed layouts (int8, low-nibble-first int4, 3-bit streams, two's complement),
 * fast == reference bit for bit over bits 2…8 × sym/asym × groups × clip × fp16/fp32 scales at awkward
 * sizes and thread counts, fake == dequantize(quantize), the error bound |x − x̂| ≤ s/2 inside the
 * range, and the refusals (bad format, NaN/Inf). */
#include <omp.h>

#include "core/core.h"
#include "quant/aq.h"
#include "test_util.h"

static void fill(float *x, int64_t count, uint64_t seed, double heavy) {
    harp_rng g;
    harp_rng_seed(&g, seed);
    for (int64_t i = 0; i < count; i++) {
        double v = harp_rng_normal(&g);
        if (harp_rng_uniform(&g) < heavy) v *= 30;   /* outliers */
        x[i] = (float)v;
    }
}

static void test_hand(void) {
    /* asymmetric 4 bits: range [−1, 2.75] → s = 0.25, z = 4; 0.375/s = 1.5 → 2 and 0.625/s = 2.5 → 2 (even) */
    const float x[6] = {-1.0f, 0.25f, 2.75f, 0.375f, 0.625f, 0.0f};
    harp_aq_fmt f = {4, 0, 0, 1.0f, 0};
    harp_aq_planes p;
    CHECK_OK(harp_aq_planes_alloc(&f, 1, 6, &p));
    CHECK_OK(harp_aq_quantize(&f, x, 1, 6, 0, &p));
    CHECK(p.scale[0] == 0.25f && p.zero[0] == 4);
    const int want[6] = {0, 5, 15, 6, 6, 4};
    for (int i = 0; i < 6; i++) CHECK_MSG(harp_aq_code_get(p.codes, i, 4, 0) == want[i], "code %d", i);
    CHECK(p.codes[0] == (0 | 5 << 4) && p.codes[1] == (15 | 6 << 4) && p.codes[2] == (6 | 4 << 4));
    float y[6];
    CHECK_OK(harp_aq_dequantize(&f, &p, 1, 6, y, 0));
    CHECK(y[0] == -1.0f && y[1] == 0.25f && y[2] == 2.75f && y[3] == 0.5f && y[4] == 0.5f && y[5] == 0.0f);
    harp_aq_planes_free(&p);
    /* symmetric 8 bits with clip 0.5: amax 254 → 127, s = 1; ±254 saturate to 127 / −128 */
    const float z[4] = {254.0f, -254.0f, -3.5f, 2.5f};
    harp_aq_fmt g = {8, 1, 0, 0.5f, 0};
    CHECK_OK(harp_aq_planes_alloc(&g, 1, 4, &p));
    CHECK(p.zero == NULL);
    CHECK_OK(harp_aq_quantize(&g, z, 1, 4, 0, &p));
    CHECK(p.scale[0] == 1.0f);
    CHECK((int8_t)p.codes[0] == 127 && (int8_t)p.codes[1] == -128 && (int8_t)p.codes[2] == -4 && (int8_t)p.codes[3] == 2);
    harp_aq_planes_free(&p);
    /* all-zero rows: asymmetric range (−1, 1), s = fp32(2/15); −x_min/s = 7.4999995 in fp32, so z = 7 */
    const float zero[3] = {0, 0, 0};
    CHECK_OK(harp_aq_planes_alloc(&f, 1, 3, &p));
    CHECK_OK(harp_aq_quantize(&f, zero, 1, 3, 0, &p));
    CHECK(p.scale[0] == 2.0f / 15 && p.zero[0] == 7);
    harp_aq_planes_free(&p);
    /* 3 bits: 8 codes in 3 bytes, code i at bits 3i… (little-endian stream), two's complement */
    const float t[8] = {-4, -3, -2, -1, 0, 1, 2, 3};
    harp_aq_fmt h = {3, 1, 0, 1.0f, 0};
    CHECK_OK(harp_aq_planes_alloc(&h, 1, 8, &p));
    CHECK(harp_aq_row_bytes(&h, 8) == 3);
    CHECK_OK(harp_aq_quantize(&h, t, 1, 8, 0, &p));   /* amax 4 → s = 4/3: codes round(t·3/4) */
    uint32_t bits = p.codes[0] | (uint32_t)p.codes[1] << 8 | (uint32_t)p.codes[2] << 16;
    const int w3[8] = {-3, -2, -2, -1, 0, 1, 2, 2};
    for (int i = 0; i < 8; i++) {
        int v = (int)(bits >> (3 * i) & 7);
        CHECK_MSG((v >= 4 ? v - 8 : v) == w3[i], "3-bit code %d: %d", i, v);
    }
    harp_aq_planes_free(&p);
}

static int planes_equal(const harp_aq_fmt *f, const harp_aq_planes *a, const harp_aq_planes *b, int64_t rows, int64_t n) {
    int64_t ng = rows * harp_aq_groups(f, n);
    if (memcmp(a->codes, b->codes, (size_t)(rows * harp_aq_row_bytes(f, n)))) return 0;
    if (f->scale_f16 ? memcmp(a->scale16, b->scale16, (size_t)ng * 2) : memcmp(a->scale, b->scale, (size_t)ng * 4)) return 0;
    return f->sym || !memcmp(a->zero, b->zero, (size_t)ng);
}

/* fast vs reference, fake vs dequant(quant), and the rounding bound, for one format and shape */
static void check_fmt(const harp_aq_fmt *f, int64_t rows, int64_t n, uint64_t seed) {
    const int64_t ld = n + 3;
    float *X = malloc((size_t)(rows * ld) * sizeof *X), *Y = malloc((size_t)(rows * ld) * sizeof *Y);
    float *Yr = malloc((size_t)(rows * ld) * sizeof *Yr);
    fill(X, rows * ld, seed, 0.02);
    harp_aq_planes a, b;
    CHECK_OK(harp_aq_planes_alloc(f, rows, n, &a));
    CHECK_OK(harp_aq_planes_alloc(f, rows, n, &b));
    CHECK_OK(harp_aq_quantize(f, X, rows, n, ld, &a));
    CHECK_OK(harp_aq_quantize_ref(f, X, rows, n, ld, &b));
    int same = planes_equal(f, &a, &b, rows, n);
    CHECK_MSG(same, "bits %d sym %d group %lld clip %g f16 %d rows %lld n %lld: fast != ref planes", f->bits, f->sym,
              (long long)f->group, (double)f->clip, f->scale_f16, (long long)rows, (long long)n);
    CHECK_OK(harp_aq_dequantize(f, &a, rows, n, Y, ld));
    CHECK_OK(harp_aq_dequantize_ref(f, &b, rows, n, Yr, ld));
    int deq = 1, fake = 1, bound = 1;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) deq &= Y[r * ld + i] == Yr[r * ld + i];
    CHECK_MSG(deq, "bits %d sym %d: fast != ref dequantized", f->bits, f->sym);
    /* rounding bound inside the representable range */
    const int64_t g = f->group ? f->group : n;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t G = 0; G < n / g; G++) {
            float s = f->scale_f16 ? harp_f16_to_f32(a.scale16[r * (n / g) + G]) : a.scale[r * (n / g) + G];
            int z = f->sym ? 0 : a.zero[r * (n / g) + G];
            int qlo = f->sym ? -(1 << (f->bits - 1)) : 0, qhi = f->sym ? (1 << (f->bits - 1)) - 1 : (1 << f->bits) - 1;
            for (int64_t i = 0; i < g; i++) {
                float x = X[r * ld + G * g + i], y = Y[r * ld + G * g + i];
                if (x >= s * (float)(qlo - z) && x <= s * (float)(qhi - z)) bound &= fabsf(x - y) <= 0.5f * s * (1 + 1e-5f);
            }
        }
    CHECK_MSG(bound, "bits %d sym %d group %lld: |x - x̂| > s/2 inside the range", f->bits, f->sym, (long long)f->group);
    memcpy(Yr, X, (size_t)(rows * ld) * sizeof *X);
    CHECK_OK(harp_aq_fake(f, Yr, rows, n, ld));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) fake &= Yr[r * ld + i] == Y[r * ld + i];
    CHECK_MSG(fake, "bits %d sym %d: fake != dequantize(quantize)", f->bits, f->sym);
    harp_aq_planes_free(&a), harp_aq_planes_free(&b);
    free(X), free(Y), free(Yr);
}

static void test_fast_vs_ref(void) {
    static const int64_t shapes[][3] = {{1, 1, 0}, {3, 7, 0}, {5, 43, 43}, {17, 172, 43}, {9, 128, 32}, {33, 96, 0},
                                        {200, 512, 64}, {4, 15, 5}};
    static const float clips[] = {1.0f, 0.9f, 0.37f};
    uint64_t seed = 1;
    for (int bits = 2; bits <= 8; bits++)
        for (int sym = 0; sym <= 1; sym++)
            for (int f16 = 0; f16 <= 1; f16++)
                for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                    for (size_t c = 0; c < 3; c++) {
                        harp_aq_fmt f = {bits, sym, shapes[s][2], clips[c], f16};
                        check_fmt(&f, shapes[s][0], shapes[s][1], seed++);
                    }
}

/* The same codes for 1 and 2 threads (rows split differently). */
static void test_threads(void) {
    harp_aq_fmt f = {4, 0, 128, 0.95f, 1};
    const int64_t rows = 300, n = 1024;
    float *X = malloc((size_t)(rows * n) * sizeof *X);
    fill(X, rows * n, 99, 0.01);
    harp_aq_planes a, b;
    CHECK_OK(harp_aq_planes_alloc(&f, rows, n, &a));
    CHECK_OK(harp_aq_planes_alloc(&f, rows, n, &b));
    int prev = omp_get_max_threads();
    omp_set_num_threads(1);
    CHECK_OK(harp_aq_quantize(&f, X, rows, n, 0, &a));
    omp_set_num_threads(2);
    CHECK_OK(harp_aq_quantize(&f, X, rows, n, 0, &b));
    omp_set_num_threads(prev);
    CHECK(planes_equal(&f, &a, &b, rows, n));
    /* one row through the row view equals that row of the whole matrix */
    harp_aq_planes c;
    CHECK_OK(harp_aq_planes_alloc(&f, 1, n, &c));
    CHECK_OK(harp_aq_quantize(&f, X + 123 * n, 1, n, 0, &c));
    harp_aq_planes v = harp_aq_planes_row(&f, n, &a, 123);
    CHECK(!memcmp(v.codes, c.codes, (size_t)harp_aq_row_bytes(&f, n)) && !memcmp(v.scale16, c.scale16, 2 * 8) &&
          !memcmp(v.zero, c.zero, 8));
    harp_aq_planes_free(&a), harp_aq_planes_free(&b), harp_aq_planes_free(&c);
    free(X);
}

static void test_refusals(void) {
    harp_set_log_level(HARP_LOG_NONE);
    harp_aq_planes p = {0};
    harp_aq_fmt bad[] = {{1, 1, 0, 1.0f, 0}, {9, 0, 0, 1.0f, 0}, {4, 0, 0, 0.0f, 0}, {4, 0, 0, 1.5f, 0}, {4, 0, 5, 1.0f, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK(harp_aq_check(&bad[i], 64, "test") == HARP_ERR_INVALID_ARG);
    harp_aq_fmt f = {4, 1, 16, 1.0f, 1};
    float x[32];
    fill(x, 32, 5, 0);
    x[20] = NAN;
    CHECK_OK(harp_aq_planes_alloc(&f, 2, 16, &p));
    CHECK(harp_aq_quantize(&f, x, 2, 16, 0, &p) == HARP_ERR_NUMERIC);
    CHECK(strstr(harp_last_error(), "row 1") != NULL);
    CHECK(harp_aq_quantize_ref(&f, x, 2, 16, 0, &p) == HARP_ERR_NUMERIC);
    x[20] = INFINITY;
    CHECK(harp_aq_quantize(&f, x, 2, 16, 0, &p) == HARP_ERR_NUMERIC);
    CHECK(harp_aq_fake(&f, x, 2, 16, 0) == HARP_ERR_NUMERIC);
    harp_aq_planes q = {p.codes, NULL, NULL, NULL};
    CHECK(harp_aq_quantize(&f, x, 2, 16, 0, &q) == HARP_ERR_INVALID_ARG);   /* fp16 scale plane missing */
    harp_aq_planes_free(&p);
    /* fp16 scale saturation: huge values keep a finite scale, tiny ones a non-zero one */
    float big[4] = {1e9f, -1e9f, 1, 0}, tiny[4] = {1e-30f, -1e-30f, 0, 0}, y[4];
    harp_aq_fmt f4 = {4, 1, 0, 1.0f, 1};
    CHECK_OK(harp_aq_planes_alloc(&f4, 1, 4, &p));
    CHECK_OK(harp_aq_quantize(&f4, big, 1, 4, 0, &p));
    CHECK(p.scale16[0] == 0x7BFF);
    CHECK_OK(harp_aq_dequantize(&f4, &p, 1, 4, y, 0));
    CHECK(y[0] == 65504.0f * 7 && y[1] == -65504.0f * 8);
    CHECK_OK(harp_aq_quantize(&f4, tiny, 1, 4, 0, &p));
    CHECK(p.scale16[0] == 0x0001);
    harp_aq_planes_free(&p);
    harp_clear_error();
    harp_set_log_level(HARP_LOG_WARN);
}

int main(void) {
    test_hand();
    test_fast_vs_ref();
    test_threads();
    test_refusals();
    return t_done();
}
