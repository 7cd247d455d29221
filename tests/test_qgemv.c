/* Lattice decode-GEMV kernels (AVX2, portable) of e8p2 / rvq3 / rvq4 against the reference decoder
 * at awkward sizes, bit for bit against an FMA emulation of the AVX2 order, the tile dequantizer +
 * sgemm path, the fused transforms of harp_qtensor_apply, thread-count independence and the FWHT.
 * (Every type of the table against its reference: test_qtype.c.) */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/core.h"
#include "harp/qkernels.h"
#include "quant/e8p.h"
#include "quant/quant_internal.h"
#include "quant_testlib.h"
#include "test_util.h"

typedef harp_qtensor tmat;

static void make(tmat *t, harp_qtype fmt, int m, int n, harp_rng *rng) {
    CHECK_OK(qt_random_tensor(rng, fmt, m, n, 0, 0, t));
}

static void drop(tmat *t) { harp_qtensor_free(t); }

static void gemv_ref(const harp_qtensor *w, const float *x, float *y) { harp_qtype_traits_of(w->type)->gemv_ref(w, x, y); }
static void gemv_best(const harp_qtensor *w, const float *x, float *y) { CHECK_OK(harp_qtensor_apply(w, x, 1, y, 0)); }
static void dequant_rows(const harp_qtensor *w, int r0, int r1, float *out, size_t ld) {
    harp_qtype_traits_of(w->type)->dequant_rows(w, r0, r1, out, ld);
}

static float lane_sum(const float l[8]) {
    float a0 = l[0] + l[4], a1 = l[1] + l[5], a2 = l[2] + l[6], a3 = l[3] + l[7];
    return (a0 + a2) + (a1 + a3);
}

/* The AVX2 kernel's exact arithmetic (FMA per lane, same reduction), expected bit for bit:
 * 8 lanes, lane = column % 8 (lanes = 16 emulates a 16-lane kernel: lanes l and l + 8 are added
 * before the 8-lane reduction; kept for a future wider kernel). */
static void emu_fma(const harp_qtensor *t, const float *x, float *y, int lanes) {
    harp_e8p_view v, *w = &v;
    qt_e8p_view(t, w);
    for (int r = 0; r < w->m; r++) {
        float a0[16] = {0}, a1[16] = {0};
        for (int k = 0; k < w->ncode; k++) {
            size_t idx = (size_t)r * w->ncode + k;
            int8_t q[8], q1[8] = {0};
            float e[8] = {0};
            e8p_decode_x4(w->codes0[idx], q);
            if (w->type == HARP_QTYPE_RVQ4) e8p_decode_x4(((const uint16_t *)w->codes1)[idx], q1);
            if (w->type == HARP_QTYPE_RVQ3) e81b_decode(((const uint8_t *)w->codes1)[idx], e);
            for (int i = 0; i < 8; i++) {
                int l = (8 * k + i) % lanes;
                float xv = 8 * k + i < w->n ? x[8 * k + i] : 0.0f;
                a0[l] = fmaf((float)q[i], xv, a0[l]);
                float v1 = w->type == HARP_QTYPE_RVQ3 ? 4.0f * e[i] : (float)q1[i];
                if (w->type != HARP_QTYPE_E8P2) a1[l] = fmaf(v1, xv, a1[l]);
            }
        }
        if (lanes == 16)
            for (int i = 0; i < 8; i++) {
                a0[i] += a0[i + 8];
                a1[i] += a1[i + 8];
            }
        y[r] = (w->scale0 * lane_sum(a0) + w->scale1 * lane_sum(a1)) * 0.25f;
    }
}

/* Σ_j |W̃_rj x_j| per row: the scale of the rounding error of any summation order. */
static void abs_mass(const harp_qtensor *w, const float *x, double *mass) {
    float *row = malloc(sizeof(float) * (size_t)w->n);
    for (int r = 0; r < w->m; r++) {
        dequant_rows(w, r, r + 1, row, (size_t)w->n);
        double s = 0;
        for (int j = 0; j < w->n; j++) s += fabs((double)row[j] * x[j]);
        mass[r] = s;
    }
    free(row);
}

/* Tolerance: fp32 accumulation over ≤ n/8 terms per lane; 1e-5 of Σ|w x| is ~100x the typical
 * error at these sizes and far below any decode mistake (one wrong weight moves y by ~|w x|). */
#define REL_TOL 1e-5

static void test_shape(harp_qtype fmt, int m, int n, harp_rng *rng) {
    tmat t;
    make(&t, fmt, m, n, rng);
    float *x = malloc(sizeof(float) * (size_t)n);
    float *yr = malloc(sizeof(float) * (size_t)m), *ya = malloc(sizeof(float) * (size_t)m);
    float *yp = malloc(sizeof(float) * (size_t)m), *ye = malloc(sizeof(float) * (size_t)m);
    float *yg = malloc(sizeof(float) * (size_t)m);
    double *mass = malloc(sizeof(double) * (size_t)m);
    for (int j = 0; j < n; j++) x[j] = (float)harp_rng_normal(rng);
    CHECK_OK(harp_qtensor_check(&t, "test"));
    gemv_ref(&t, x, yr);
    gemv_best(&t, x, ya);
    CHECK_OK(harp_qgemv_portable(&t, x, yp));
    const char *isa = harp_qgemv_isa();
    emu_fma(&t, x, ye, 8);
    CHECK_OK(harp_qmm_tiles(&t, x, 1, yg));
    abs_mass(&t, x, mass);
    int bad_a = 0, bad_p = 0, bad_g = 0, bad_e = 0;
    for (int r = 0; r < m; r++) {
        double tol = REL_TOL * mass[r] + 1e-30;
        bad_a += fabs((double)ya[r] - yr[r]) > tol;
        bad_p += fabs((double)yp[r] - yr[r]) > tol;
        bad_g += fabs((double)yg[r] - yr[r]) > tol;
        if (strcmp(isa, "portable") != 0) bad_e += memcmp(&ya[r], &ye[r], 4) != 0;
    }
    CHECK_MSG(!bad_a, "fmt %d %dx%d: %d rows of the best GEMV (%s) off the reference", fmt, m, n, bad_a,
              harp_qgemv_isa());
    CHECK_MSG(!bad_p, "fmt %d %dx%d: %d rows of the portable kernel off", fmt, m, n, bad_p);
    CHECK_MSG(!bad_g, "fmt %d %dx%d: %d rows of the tile product off", fmt, m, n, bad_g);
    CHECK_MSG(!bad_e, "fmt %d %dx%d: %d rows of the %s kernel not bit-exact vs FMA emulation", fmt,
              m, n, bad_e, isa);
    /* Thread count must not change a bit. */
    harp_set_threads(1);
    gemv_best(&t, x, yp);
    harp_set_threads(2);
    gemv_best(&t, x, ye);
    CHECK(memcmp(yp, ya, sizeof(float) * (size_t)m) == 0 && memcmp(ye, ya, sizeof(float) * (size_t)m) == 0);
    free(x);
    free(yr);
    free(ya);
    free(yp);
    free(ye);
    free(yg);
    free(mass);
    drop(&t);
}

static void test_dequant_matches_decoder(harp_rng *rng) {
    tmat t;
    make(&t, HARP_QTYPE_RVQ4, 3, 21, rng);
    float d[3 * 21];
    CHECK_OK(harp_qtensor_dequantize(&t, d));
    const uint16_t *c0 = t.planes[0].data, *c1 = t.planes[1].data;
    const int nc = 3;
    int ok = 1;
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < nc; k++) {
            float a[8], b[8];
            e8p_decode(c0[r * nc + k], a);
            e8p_decode(c1[r * nc + k], b);
            for (int i = 0; i < 8 && 8 * k + i < 21; i++) ok &= d[r * 21 + 8 * k + i] == t.scale0 * a[i] + t.scale1 * b[i];
        }
    CHECK(ok);
    drop(&t);
}

/* Prompt path with several activation rows: each output row equals the reference GEMV of its x. */
static void test_qgemm_batch(harp_rng *rng) {
    const int m = 70, n = 44, b = 3;
    tmat t;
    make(&t, HARP_QTYPE_RVQ3, m, n, rng);
    float x[3 * 44], y[3 * 70], yr[70];
    double mass[70];
    for (int i = 0; i < b * n; i++) x[i] = (float)harp_rng_normal(rng);
    CHECK_OK(harp_qtensor_apply(&t, x, b, y, 0));
    int bad = 0;
    for (int i = 0; i < b; i++) {
        gemv_ref(&t, x + i * n, yr);
        abs_mass(&t, x + i * n, mass);
        for (int r = 0; r < m; r++) bad += fabs((double)y[i * m + r] - yr[r]) > REL_TOL * mass[r] + 1e-30;
    }
    CHECK_MSG(!bad, "many-row product, batch 3: %d outputs off the reference", bad);
    CHECK(harp_qtensor_apply(&t, x, 0, y, 0) == HARP_ERR_INVALID_ARG);
    drop(&t);
}

/* Fused forward vs dense double-precision algebra with explicit Sylvester matrices: the
 * transforms of harp_qtensor_apply (signs ⊙, Hadamard rotations, out_mul). */
static void test_fused(harp_rng *rng) {
    int m = 32, n = 64;
    tmat t;
    make(&t, HARP_QTYPE_E8P2, m, n, rng);
    float x[64], sin_[64], sout[32], y[32], W[32 * 64];
    t.xf.s_in = malloc((size_t)n);
    t.xf.s_out = malloc((size_t)m);
    for (int j = 0; j < n; j++) {
        x[j] = (float)harp_rng_normal(rng);
        t.xf.s_in[j] = (harp_rng_u64(rng) & 1) ? 1 : -1;
        sin_[j] = t.xf.s_in[j];
    }
    for (int i = 0; i < m; i++) t.xf.s_out[i] = (harp_rng_u64(rng) & 1) ? 1 : -1;
    t.xf.n_slices = 1;
    t.xf.slice_len[0] = m;
    t.xf.slice_scale[0] = 1.7f;
    for (int i = 0; i < m; i++) sout[i] = t.xf.s_out[i] * 1.7f;
    CHECK_OK(harp_rot_create(HARP_ROT_HADAMARD, n, NULL, 0, &t.xf.rot_in));
    CHECK_OK(harp_rot_create(HARP_ROT_HADAMARD, m, NULL, 0, &t.xf.rot_out));
    CHECK_OK(harp_qtensor_derive(&t));
    CHECK_OK(harp_qtensor_check(&t, "fused"));
    CHECK_OK(harp_qtensor_apply(&t, x, 1, y, 0));
    CHECK_OK(harp_qtensor_dequantize(&t, W));
    double xt[64], yt[32];
    for (int i = 0; i < n; i++) {
        xt[i] = 0;
        for (int j = 0; j < n; j++)
            xt[i] += ((__builtin_popcount((unsigned)(i & j)) & 1) ? -1.0 : 1.0) * sin_[j] * x[j];
        xt[i] /= sqrt((double)n);
    }
    for (int r = 0; r < m; r++) {
        yt[r] = 0;
        for (int j = 0; j < n; j++) yt[r] += (double)W[r * n + j] * xt[j];
    }
    int ok = 1;
    for (int i = 0; i < m; i++) {
        double s = 0;
        for (int r = 0; r < m; r++) s += ((__builtin_popcount((unsigned)(i & r)) & 1) ? -1.0 : 1.0) * yt[r];
        s = s / sqrt((double)m) * sout[i];
        ok &= fabs(s - y[i]) < 1e-4;
    }
    CHECK_MSG(ok, "fused forward != out_mul ⊙ H_m W̃ H_n (s ⊙ x)");
    drop(&t);
}

static void test_fwht_and_checks(void) {
    float v[16];
    for (int i = 0; i < 16; i++) v[i] = (float)i;
    CHECK_OK(harp_fwht_f32(v, 16));
    CHECK_OK(harp_fwht_f32(v, 16));   /* normalised Sylvester is an involution */
    int ok = 1;
    for (int i = 0; i < 16; i++) ok &= fabsf(v[i] - (float)i) < 1e-5f;
    CHECK(ok);
    CHECK(harp_fwht_f32(v, 12) == HARP_ERR_INVALID_ARG);
    harp_qtensor w;
    CHECK(harp_qtensor_init(&w, HARP_QTYPE_E8P2, 0, 8, 0) == HARP_ERR_INVALID_ARG);
    CHECK(harp_qtensor_init(&w, (harp_qtype)HARP_QTYPE_COUNT, 4, 8, 0) == HARP_ERR_INVALID_ARG);
    CHECK_OK(harp_qtensor_init(&w, HARP_QTYPE_RVQ3, 4, 172, 0));
    CHECK(harp_e8p_ncode(w.n) == 22);
    CHECK(harp_qtensor_check(&w, "m") == HARP_ERR_INVALID_ARG);   /* no code planes */
    CHECK(strstr(harp_last_error(), "m: missing code plane 0") != NULL);
    CHECK(harp_qplane_bytes(&w, 0) + harp_qplane_bytes(&w, 1) == 4 * 22 * 3);
}

int main(void) {
    harp_rng rng;
    harp_rng_seed(&rng, 42);
    static const int shapes[][2] = {{1, 8},   {3, 24},   {5, 172},  {17, 1376}, {33, 13},
                                    {64, 64},  {7, 100},  {130, 520}, {4, 1},    {69, 4096},
                                    {6, 16},   {9, 40},   {11, 23}};
    const harp_qtype fmts[3] = {HARP_QTYPE_E8P2, HARP_QTYPE_RVQ3, HARP_QTYPE_RVQ4};
    /* Every variant: AVX2 with the full table, AVX2 with the small tables, portable (where the CPU
     * has no AVX2 all three are the portable kernel). */
    static const struct { harp_qisa cap; int small; } variants[3] = {
        {HARP_QISA_AVX2, 0}, {HARP_QISA_AVX2, 1}, {HARP_QISA_PORTABLE, 0}};
    for (int v = 0; v < 3; v++) {
        harp_qgemv_max_isa(variants[v].cap);
        harp_qgemv_small_tables(variants[v].small);
        printf("variant: %s%s\n", harp_qgemv_isa(), variants[v].small ? " (small tables)" : "");
        for (int f = 0; f < 3; f++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                test_shape(fmts[f], shapes[s][0], shapes[s][1], &rng);
    }
    harp_qgemv_max_isa(HARP_QISA_AVX2);
    harp_qgemv_small_tables(0);
    test_dequant_matches_decoder(&rng);
    test_fused(&rng);
    test_qgemm_batch(&rng);
    test_fwht_and_checks();
    printf("kernel: %s\n", harp_qgemv_isa());
    return t_done();
}
