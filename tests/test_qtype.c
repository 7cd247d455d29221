/* The quant-type table, row by row (a loop over the table, not a hand list): names and mappings,
 * plane rules, and for every type at awkward sizes — dequantization, the best GEMV, the many-row
 * product and harp_qtensor_apply with transforms — against the type's reference, with sentinels
 * around every output; value checks reject corrupted planes with a message naming the plane.
 * Tolerances: the reference sums (double)w·x in fp64 (the format's definition); the optimized
 * kernels accumulate in fp32 in another order, within 1e-5 · Σ|w x| per output (fp32 rounding over
 * ≤ 10^4 terms is ~1e-6 of that mass; one wrongly decoded weight moves an output by ~|w x|). */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "harp/qkernels.h"
#include "quant_testlib.h"
#include "test_util.h"

#define REL_TOL 1e-5
#define GUARD 16
#define SENTINEL -12345.5f

/* Output buffer of n floats with GUARD sentinels on both sides. */
static float *guarded(size_t n) {
    float *b = malloc(sizeof(float) * (n + 2 * GUARD));
    for (size_t i = 0; i < n + 2 * GUARD; i++) b[i] = SENTINEL;
    return b + GUARD;
}
static int guards_intact(const float *y, size_t n) {
    int ok = 1;
    for (int i = 1; i <= GUARD; i++) ok &= y[-i] == SENTINEL && y[n + (size_t)i - 1] == SENTINEL;
    return ok;
}
static void unguard(float *y) { free(y - GUARD); }

static void test_names_and_mappings(void) {
    for (int t = 0; t < HARP_QTYPE_COUNT; t++) {
        const harp_qtype_traits *tr = harp_qtype_traits_of((harp_qtype)t);
        /* 13 … 19 are reserved for activation / KV-cache types */
        CHECK_MSG((tr && tr->name) || (t >= 13 && t < HARP_QTYPE_LDP2), "type %d has no traits row", t);
        if (!tr) continue;
        harp_qtype back;
        CHECK(harp_qtype_parse(harp_qtype_name((harp_qtype)t), &back) == HARP_OK && back == (harp_qtype)t);
        CHECK(harp_qtype_bits((harp_qtype)t) == tr->bits && tr->bits > 0);
        CHECK(tr->n_planes >= 1 && tr->n_planes <= HARP_QT_MAX_PLANES && tr->block_rows >= 1 && tr->block_cols >= 1);
        CHECK(tr->dequant_rows && tr->gemv_ref && tr->gemv && tr->mm);
        for (int i = 0; i < tr->n_planes; i++) {
            CHECK(harp_qplane_index((harp_qtype)t, tr->planes[i].suffix) == i);
            for (int j = 0; j < i; j++) CHECK(strcmp(tr->planes[i].suffix, tr->planes[j].suffix) != 0);
        }
        if (tr->legacy_codebook) CHECK(harp_qtype_legacy_codebook_known(tr->legacy_codebook));
    }
    harp_qtype x;
    CHECK(harp_qtype_parse("q4_0", &x) == HARP_ERR_INVALID_ARG && strstr(harp_last_error(), "rvq4"));
    CHECK(harp_qtype_name(HARP_QTYPE_COUNT) == NULL && harp_qtype_name(HARP_QTYPE_NONE) == NULL);
    /* fixed numbers (stored and sent to devices) and the one solver + bits → type mapping */
    CHECK(HARP_QTYPE_F32 == 0 && HARP_QTYPE_INT2 == 3 && HARP_QTYPE_INT8 == 6 && HARP_QTYPE_E8P2 == 7 && HARP_QTYPE_RVQ4 == 9);
    static const int sbits[] = {2, 3, 4, 8};
    static const harp_qtype stypes[] = {HARP_QTYPE_INT2, HARP_QTYPE_INT3, HARP_QTYPE_INT4, HARP_QTYPE_INT8};
    for (int i = 0; i < 4; i++) {
        CHECK(harp_qtype_for(HARP_QMETHOD_RTN, sbits[i]) == stypes[i]);
        CHECK(harp_qtype_for(HARP_QMETHOD_GPTQ, sbits[i]) == stypes[i]);
        CHECK(!strcmp(harp_qtype_traits_of(stypes[i])->legacy_codebook, "scalar"));
    }
    CHECK(harp_qtype_for(HARP_QMETHOD_QUIP, 2) == HARP_QTYPE_E8P2 && harp_qtype_for(HARP_QMETHOD_QUIP, 3) == HARP_QTYPE_RVQ3 &&
          harp_qtype_for(HARP_QMETHOD_QUIP, 4) == HARP_QTYPE_RVQ4);
    CHECK(!strcmp(harp_qtype_traits_of(HARP_QTYPE_E8P2)->legacy_codebook, "e8p12") &&
          !strcmp(harp_qtype_traits_of(HARP_QTYPE_RVQ3)->legacy_codebook, "e8p12_rvq3b") &&
          !strcmp(harp_qtype_traits_of(HARP_QTYPE_RVQ4)->legacy_codebook, "e8p12_rvq4b"));
    CHECK(harp_qtype_for(HARP_QMETHOD_QUIP, 8) == HARP_QTYPE_NONE && harp_qtype_for(HARP_QMETHOD_RTN, 5) == HARP_QTYPE_NONE);
    CHECK(!strcmp(harp_qmethod_name(HARP_QMETHOD_GPTQ), "gptq"));
    CHECK(HARP_QTYPE_LDP2 == 20 && harp_qtype_for(HARP_QMETHOD_LDP, 2) == HARP_QTYPE_LDP2 &&
          harp_qtype_for(HARP_QMETHOD_LDP, 3) == HARP_QTYPE_NONE && !strcmp(harp_qmethod_name(HARP_QMETHOD_LDP), "ldp"));
    CHECK(harp_qtype_parse("ldp2", &x) == HARP_OK && x == HARP_QTYPE_LDP2);
    CHECK(HARP_QTYPE_QTIP2 == 10 && HARP_QTYPE_QTIP3 == 11 && HARP_QTYPE_QTIP4 == 12);
    CHECK(harp_qtype_for(HARP_QMETHOD_QTIP, 2) == HARP_QTYPE_QTIP2 && harp_qtype_for(HARP_QMETHOD_QTIP, 3) == HARP_QTYPE_QTIP3 &&
          harp_qtype_for(HARP_QMETHOD_QTIP, 4) == HARP_QTYPE_QTIP4 && harp_qtype_for(HARP_QMETHOD_QTIP, 8) == HARP_QTYPE_NONE);
    CHECK(!strcmp(harp_qmethod_name(HARP_QMETHOD_QTIP), "qtip") && !strcmp(harp_qtype_name(HARP_QTYPE_QTIP3), "qtip3"));
}

/* Σ_c |w_rc x_c| per row, from the dense dequantization. */
static void abs_mass(const float *W, int64_t m, int64_t n, const float *x, double *mass) {
    for (int64_t r = 0; r < m; r++) {
        double s = 0;
        for (int64_t c = 0; c < n; c++) s += fabs((double)W[r * n + c] * x[c]);
        mass[r] = s;
    }
}

static int rows_off(const float *y, const float *yr, const double *mass, int64_t m, double tol) {
    int bad = 0;
    for (int64_t r = 0; r < m; r++) bad += !(fabs((double)y[r] - yr[r]) <= tol * mass[r] + 1e-30);
    return bad;
}

/* Dequantization, reference, best GEMV, many rows: one type, one shape, one group setting. */
static void check_products(const harp_qtensor *w, harp_rng *rng, const char *tag) {
    const harp_qtype_traits *tr = harp_qtype_traits_of(w->type);
    const int64_t m = w->m, n = w->n, rows = 3;
    float *W = malloc(sizeof(float) * (size_t)(m * n)), *T = malloc(sizeof(float) * (size_t)(m * n));
    float *X = malloc(sizeof(float) * (size_t)(rows * n));
    float *yr = malloc(sizeof(float) * (size_t)(rows * m)), *y = guarded((size_t)(rows * m)), *y1 = guarded((size_t)m);
    double *mass = malloc(sizeof(double) * (size_t)m);
    for (int64_t i = 0; i < rows * n; i++) X[i] = (float)harp_rng_normal(rng);
    CHECK_OK(harp_qtensor_dequantize(w, W));
    /* rows in ragged tiles give the same values as the whole matrix */
    for (int64_t r0 = 0; r0 < m; r0 += 5) tr->dequant_rows(w, r0, r0 + 5 < m ? r0 + 5 : m, T + r0 * n, (size_t)n);
    CHECK_MSG(!memcmp(W, T, sizeof(float) * (size_t)(m * n)), "%s: dequant_rows in tiles differs", tag);
    int bad_ref = 0, bad_gemv = 0, bad_mm = 0;
    for (int64_t b = 0; b < rows; b++) {
        const float *x = X + b * n;
        tr->gemv_ref(w, x, yr + b * m);
        abs_mass(W, m, n, x, mass);
        /* the reference is the dense values summed in fp64 (up to fp32 rounding of each weight) */
        double *yd = malloc(sizeof(double) * (size_t)m);
        float *ydf = malloc(sizeof(float) * (size_t)m);
        for (int64_t r = 0; r < m; r++) {
            yd[r] = 0;
            for (int64_t c = 0; c < n; c++) yd[r] += (double)W[r * n + c] * x[c];
            ydf[r] = (float)yd[r];
        }
        bad_ref += rows_off(yr + b * m, ydf, mass, m, 1e-6);
        free(yd), free(ydf);
    }
    CHECK_OK(harp_qtensor_apply(w, X, 1, y1, 0));
    abs_mass(W, m, n, X, mass);
    bad_gemv = rows_off(y1, yr, mass, m, REL_TOL);
    /* the scalar group types define their product as the reference's fixed-order double sum: the fast
     * kernel (rows interleaved, qt_scalar.c) must give exactly its bits */
    if (tr->legacy_codebook && !strcmp(tr->legacy_codebook, "scalar"))
        CHECK_MSG(!memcmp(y1, yr, sizeof(float) * (size_t)m), "%s: scalar GEMV not bit-identical to its reference", tag);
    CHECK_OK(harp_qtensor_apply(w, X, rows, y, 0));
    for (int64_t b = 0; b < rows; b++) {
        abs_mass(W, m, n, X + b * n, mass);
        bad_mm += rows_off(y + b * m, yr + b * m, mass, m, REL_TOL);
    }
    CHECK_MSG(!bad_ref, "%s: %d reference rows off the dense fp64 product", tag, bad_ref);
    CHECK_MSG(!bad_gemv, "%s: %d rows of the best GEMV off the reference", tag, bad_gemv);
    CHECK_MSG(!bad_mm, "%s: %d outputs of the many-row product off the reference", tag, bad_mm);
    CHECK_MSG(guards_intact(y, (size_t)(rows * m)) && guards_intact(y1, (size_t)m), "%s: output sentinels overwritten", tag);
    /* one row: the same bits for 1 and 2 threads */
    float *y2 = guarded((size_t)m);
    omp_set_num_threads(1);
    CHECK_OK(harp_qtensor_apply(w, X, 1, y2, 0));
    omp_set_num_threads(2);
    CHECK_MSG(!memcmp(y1, y2, sizeof(float) * (size_t)m), "%s: GEMV differs between 1 and 2 threads", tag);
    unguard(y2);
    free(W), free(T), free(X), free(yr), free(mass);
    unguard(y), unguard(y1);
}

/* Signs, random orthogonal rotations (any width) and two slices around the product: apply vs its
 * reference twin. */
static void check_transforms(harp_qtensor *w, harp_rng *rng, const char *tag) {
    const int64_t m = w->m, n = w->n, rows = 2;
    harp_qxf *x = &w->xf;
    x->s_in = malloc((size_t)n);
    x->s_out = malloc((size_t)m);
    for (int64_t j = 0; j < n; j++) x->s_in[j] = (harp_rng_u64(rng) >> 63) ? -1 : 1;
    for (int64_t i = 0; i < m; i++) x->s_out[i] = (harp_rng_u64(rng) >> 63) ? -1 : 1;
    x->n_slices = m >= 2 ? 2 : 1;
    x->slice_len[0] = m >= 2 ? m / 2 : m;
    x->slice_len[1] = m - x->slice_len[0];
    x->slice_scale[0] = 0.7f, x->slice_scale[1] = 1.3f;
    CHECK_OK(harp_rot_create(HARP_ROT_RANDOM_ORTHOGONAL, n, NULL, harp_rng_u64(rng), &x->rot_in));
    CHECK_OK(harp_rot_create(HARP_ROT_RANDOM_ORTHOGONAL, m, NULL, harp_rng_u64(rng), &x->rot_out));
    CHECK(harp_qtensor_check(w, tag) == HARP_ERR_INVALID_ARG); /* transforms changed, not derived yet */
    CHECK_OK(harp_qtensor_derive(w));
    CHECK_OK(harp_qtensor_check(w, tag));
    float *X = malloc(sizeof(float) * (size_t)(rows * n)), *yr = malloc(sizeof(float) * (size_t)(rows * m));
    float *y = guarded((size_t)(rows * m));
    for (int64_t i = 0; i < rows * n; i++) X[i] = (float)harp_rng_normal(rng);
    int bad = 0;
    for (int64_t b = 1; b <= rows; b++) {
        CHECK_OK(harp_qtensor_apply_ref(w, X, b, yr));
        CHECK_OK(harp_qtensor_apply(w, X, b, y, 0));
        /* dense fp32 rotations on both sides (n, m ≤ 300 terms): 2e-5 of the largest output */
        double scale = 0;
        for (int64_t i = 0; i < b * m; i++) scale = fmax(scale, fabs((double)yr[i]));
        for (int64_t i = 0; i < b * m; i++) bad += !(fabs((double)y[i] - yr[i]) <= 2e-5 * scale);
    }
    CHECK_MSG(!bad, "%s: %d outputs of apply with transforms off apply_ref", tag, bad);
    CHECK_MSG(guards_intact(y, (size_t)(rows * m)), "%s: output sentinels overwritten (transforms)", tag);
    free(X), free(yr);
    unguard(y);
}

/* Each value rule rejects a bad entry with a message naming the plane. */
static void check_value_rules(harp_qtensor *w, const char *tag) {
    const harp_qtype_traits *tr = harp_qtype_traits_of(w->type);
    for (int i = 0; i < tr->n_planes; i++) {
        uint8_t *p = w->planes[i].owned;
        if (!p || tr->planes[i].values == HARP_QV_ANY) continue;
        uint8_t save[4];
        const size_t keep = w->planes[i].nbytes < 4 ? w->planes[i].nbytes : 4; /* a 1×1 zeros plane is 1 byte */
        memcpy(save, p, keep);
        harp_status want = HARP_ERR_FORMAT;
        if (tr->planes[i].values == HARP_QV_FINITE) {
            const float nan = NAN;
            memcpy(p, &nan, 4);
            want = HARP_ERR_NUMERIC;
        } else if (tr->planes[i].values == HARP_QV_ZERO_POINT) {
            p[0] = (uint8_t)(1u << (int)tr->bits);
        } else if (tr->planes[i].values == HARP_QV_LEVELS4) { /* levels of group 0 out of order */
            const uint16_t hi = harp_f32_to_f16(1.0f), lo = harp_f32_to_f16(-1.0f);
            memcpy(p, &hi, 2), memcpy(p + 2, &lo, 2);
        } else {
            const int32_t g = (int32_t)w->n_groups;
            memcpy(p, &g, 4);
        }
        if (tr->planes[i].values == HARP_QV_ZERO_POINT && tr->bits >= 8) { /* every u8 is a valid 8-bit zero */
            memcpy(p, save, keep);
            continue;
        }
        harp_status st = harp_qplane_check_values(w, i, "file", "P");
        char want_name[64];
        snprintf(want_name, sizeof want_name, "'P.%s'", tr->planes[i].suffix);
        CHECK_MSG(st == want && strstr(harp_last_error(), want_name), "%s: corrupted plane %s gave %d: %s", tag,
                  tr->planes[i].suffix, st, harp_last_error());
        memcpy(p, save, keep);
    }
    const size_t nb = w->planes[0].nbytes;
    w->planes[0].nbytes = nb + 1;
    CHECK(harp_qtensor_check(w, tag) == HARP_ERR_SHAPE);
    w->planes[0].nbytes = nb;
    CHECK_OK(harp_qtensor_check(w, tag));
}

int main(void) {
    harp_rng rng;
    harp_rng_seed(&rng, 2024);
    test_names_and_mappings();
    static const int shapes[][2] = {{1, 1}, {3, 7}, {7, 17}, {17, 33}, {33, 15}, {64, 129}, {70, 172}, {5, 300}, {2, 8}, {17, 64}, {24, 256}};
    /* group settings for the scalar types: per row, 32, 40 (ragged) with act-order g_idx */
    static const struct { int group, gidx; } groups[] = {{0, 0}, {32, 0}, {40, 1}};
    int cases = 0;
    for (int t = 0; t < HARP_QTYPE_COUNT; t++) {
        const harp_qtype_traits *tr = harp_qtype_traits_of((harp_qtype)t);
        if (!tr) continue;
        const int ng = harp_qlayout_grouped(tr->layout) ? 3 : 1;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int g = 0; g < ng; g++) {
                const int m = shapes[s][0], n = shapes[s][1];
                char tag[96];
                snprintf(tag, sizeof tag, "%s %dx%d group %d%s", tr->name, m, n, groups[g].group, groups[g].gidx ? " g_idx" : "");
                harp_qtensor w;
                CHECK_OK(qt_random_tensor(&rng, (harp_qtype)t, m, n, groups[g].group, groups[g].gidx, &w));
                CHECK_OK(harp_qtensor_check(&w, tag));
                check_products(&w, &rng, tag);
                check_value_rules(&w, tag);
                check_transforms(&w, &rng, tag);
                harp_qtensor_free(&w);
                cases++;
            }
    }
    printf("%d type x shape cases, GEMV kernel %s\n", cases, harp_qgemv_isa());
    return t_done();
}
