/* Decode-GEMV kernels (AVX2, portable) against the reference decoder at awkward sizes, the tile
 * dequantizer + sgemm path, the fused transforms, thread-count independence and the FWHT. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/core.h"
#include "harp/qkernels.h"
#include "quant/e8p.h"
#include "test_util.h"

typedef struct tmat {
    harp_qmat w;
    uint16_t *c0;
    void *c1;
} tmat;

static void make(tmat *t, harp_qfmt fmt, int m, int n, harp_rng *rng) {
    float s0 = 0.02f + 0.01f * (float)harp_rng_uniform(rng);
    float r = fmt == HARP_QFMT_RVQ3 ? RVQ3_RESID_SCALE : RVQ4_RESID_SCALE;
    CHECK_OK(harp_qmat_init(&t->w, fmt, m, n, s0, s0 / r));
    size_t cells = (size_t)m * t->w.ncode;
    t->c0 = malloc(cells * 2);
    t->c1 = fmt == HARP_QFMT_E8P2 ? NULL : malloc(cells * (fmt == HARP_QFMT_RVQ4 ? 2 : 1));
    for (size_t i = 0; i < cells; i++) {
        uint64_t u = harp_rng_u64(rng);
        t->c0[i] = (uint16_t)u;
        if (fmt == HARP_QFMT_RVQ4) ((uint16_t *)t->c1)[i] = (uint16_t)(u >> 16);
        if (fmt == HARP_QFMT_RVQ3) ((uint8_t *)t->c1)[i] = (uint8_t)(u >> 16);
    }
    t->w.codes0 = t->c0;
    t->w.codes1 = t->c1;
}

static void drop(tmat *t) {
    free(t->c0);
    free(t->c1);
}

static float lane_sum(const float l[8]) {
    float a0 = l[0] + l[4], a1 = l[1] + l[5], a2 = l[2] + l[6], a3 = l[3] + l[7];
    return (a0 + a2) + (a1 + a3);
}

/* The AVX2 kernel's exact arithmetic (FMA per lane, same reduction), expected bit for bit:
 * 8 lanes, lane = column % 8 (lanes = 16 emulates a 16-lane kernel: lanes l and l + 8 are added
 * before the 8-lane reduction; kept for a future wider kernel). */
static void emu_fma(const harp_qmat *w, const float *x, float *y, int lanes) {
    for (int r = 0; r < w->m; r++) {
        float a0[16] = {0}, a1[16] = {0};
        for (int k = 0; k < w->ncode; k++) {
            size_t idx = (size_t)r * w->ncode + k;
            int8_t q[8], q1[8] = {0};
            float e[8] = {0};
            e8p_decode_x4(w->codes0[idx], q);
            if (w->fmt == HARP_QFMT_RVQ4) e8p_decode_x4(((const uint16_t *)w->codes1)[idx], q1);
            if (w->fmt == HARP_QFMT_RVQ3) e81b_decode(((const uint8_t *)w->codes1)[idx], e);
            for (int i = 0; i < 8; i++) {
                int l = (8 * k + i) % lanes;
                float xv = 8 * k + i < w->n ? x[8 * k + i] : 0.0f;
                a0[l] = fmaf((float)q[i], xv, a0[l]);
                float v1 = w->fmt == HARP_QFMT_RVQ3 ? 4.0f * e[i] : (float)q1[i];
                if (w->fmt != HARP_QFMT_E8P2) a1[l] = fmaf(v1, xv, a1[l]);
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
static void abs_mass(const harp_qmat *w, const float *x, double *mass) {
    float *row = malloc(sizeof(float) * (size_t)w->n);
    for (int r = 0; r < w->m; r++) {
        harp_qmat_dequant_rows(w, r, r + 1, row, (size_t)w->n);
        double s = 0;
        for (int j = 0; j < w->n; j++) s += fabs((double)row[j] * x[j]);
        mass[r] = s;
    }
    free(row);
}

/* Tolerance: fp32 accumulation over ≤ n/8 terms per lane; 1e-5 of Σ|w x| is ~100x the typical
 * error at these sizes and far below any decode mistake (one wrong weight moves y by ~|w x|). */
#define REL_TOL 1e-5

static void test_shape(harp_qfmt fmt, int m, int n, harp_rng *rng) {
    tmat t;
    make(&t, fmt, m, n, rng);
    float *x = malloc(sizeof(float) * (size_t)n);
    float *yr = malloc(sizeof(float) * (size_t)m), *ya = malloc(sizeof(float) * (size_t)m);
    float *yp = malloc(sizeof(float) * (size_t)m), *ye = malloc(sizeof(float) * (size_t)m);
    float *yg = malloc(sizeof(float) * (size_t)m);
    double *mass = malloc(sizeof(double) * (size_t)m);
    for (int j = 0; j < n; j++) x[j] = (float)harp_rng_normal(rng);
    CHECK_OK(harp_qmat_check(&t.w, "test"));
    harp_qgemv_ref(&t.w, x, yr);
    harp_qgemv(&t.w, x, ya);
    harp_qgemv_portable(&t.w, x, yp);
    const char *isa = harp_qgemv_isa();
    emu_fma(&t.w, x, ye, 8);
    CHECK_OK(harp_qgemm(&t.w, x, 1, yg));
    abs_mass(&t.w, x, mass);
    int bad_a = 0, bad_p = 0, bad_g = 0, bad_e = 0;
    for (int r = 0; r < m; r++) {
        double tol = REL_TOL * mass[r] + 1e-30;
        bad_a += fabs((double)ya[r] - yr[r]) > tol;
        bad_p += fabs((double)yp[r] - yr[r]) > tol;
        bad_g += fabs((double)yg[r] - yr[r]) > tol;
        if (strcmp(isa, "portable") != 0) bad_e += memcmp(&ya[r], &ye[r], 4) != 0;
    }
    CHECK_MSG(!bad_a, "fmt %d %dx%d: %d rows of harp_qgemv (%s) off the reference", fmt, m, n, bad_a,
              harp_qgemv_isa());
    CHECK_MSG(!bad_p, "fmt %d %dx%d: %d rows of the portable kernel off", fmt, m, n, bad_p);
    CHECK_MSG(!bad_g, "fmt %d %dx%d: %d rows of harp_qgemm off", fmt, m, n, bad_g);
    CHECK_MSG(!bad_e, "fmt %d %dx%d: %d rows of the %s kernel not bit-exact vs FMA emulation", fmt,
              m, n, bad_e, isa);
    /* Thread count must not change a bit. */
    harp_set_threads(1);
    harp_qgemv(&t.w, x, yp);
    harp_set_threads(2);
    harp_qgemv(&t.w, x, ye);
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
    make(&t, HARP_QFMT_RVQ4, 3, 21, rng);
    float d[3 * 21];
    harp_qmat_dequant_rows(&t.w, 0, 3, d, 21);
    int ok = 1;
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < t.w.ncode; k++) {
            float a[8], b[8];
            e8p_decode(t.c0[r * t.w.ncode + k], a);
            e8p_decode(((uint16_t *)t.c1)[r * t.w.ncode + k], b);
            for (int i = 0; i < 8 && 8 * k + i < 21; i++)
                ok &= d[r * 21 + 8 * k + i] == t.w.scale0 * a[i] + t.w.scale1 * b[i];
        }
    CHECK(ok);
    drop(&t);
}

/* Prompt path with several activation rows: each output row equals the reference GEMV of its x. */
static void test_qgemm_batch(harp_rng *rng) {
    const int m = 70, n = 44, b = 3;
    tmat t;
    make(&t, HARP_QFMT_RVQ3, m, n, rng);
    float x[3 * 44], y[3 * 70], yr[70];
    double mass[70];
    for (int i = 0; i < b * n; i++) x[i] = (float)harp_rng_normal(rng);
    CHECK_OK(harp_qgemm(&t.w, x, b, y));
    int bad = 0;
    for (int i = 0; i < b; i++) {
        harp_qgemv_ref(&t.w, x + i * n, yr);
        abs_mass(&t.w, x + i * n, mass);
        for (int r = 0; r < m; r++) bad += fabs((double)y[i * m + r] - yr[r]) > REL_TOL * mass[r] + 1e-30;
    }
    CHECK_MSG(!bad, "harp_qgemm batch 3: %d outputs off the reference", bad);
    CHECK(harp_qgemm(&t.w, x, 0, y) == HARP_ERR_INVALID_ARG);
    drop(&t);
}

static void fwht_cb(void *user, float *v) { harp_fwht_f32(v, *(int *)user); }

/* Fused forward vs dense double-precision algebra with explicit Sylvester matrices. */
static void test_fused(harp_rng *rng) {
    int m = 32, n = 64;
    tmat t;
    make(&t, HARP_QFMT_E8P2, m, n, rng);
    float x[64], sin_[64], sout[32], y[32], scratch[64], W[32 * 64];
    for (int j = 0; j < n; j++) {
        x[j] = (float)harp_rng_normal(rng);
        sin_[j] = (harp_rng_u64(rng) & 1) ? 1.0f : -1.0f;
    }
    for (int i = 0; i < m; i++) sout[i] = ((harp_rng_u64(rng) & 1) ? 1.0f : -1.0f) * 1.7f;
    harp_qxform xf = {sin_, fwht_cb, &n, fwht_cb, &m, sout};
    harp_qlinear_forward(&t.w, &xf, x, y, scratch);
    harp_qmat_dequant_rows(&t.w, 0, m, W, (size_t)n);
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
    harp_qmat w;
    CHECK(harp_qmat_init(&w, HARP_QFMT_E8P2, 0, 8, 1, 0) == HARP_ERR_INVALID_ARG);
    CHECK(harp_qmat_init(&w, (harp_qfmt)9, 4, 8, 1, 0) == HARP_ERR_INVALID_ARG);
    CHECK_OK(harp_qmat_init(&w, HARP_QFMT_RVQ3, 4, 172, 1, 0.5f));
    CHECK(w.ncode == 22);
    CHECK(harp_qmat_check(&w, "m") == HARP_ERR_INVALID_ARG);   /* no code planes */
    CHECK(strstr(harp_last_error(), "m: missing code plane 0") != NULL);
    CHECK(harp_qmat_code_bytes(HARP_QFMT_RVQ3, 4, 172) == 4 * 22 * 3);
}

int main(void) {
    harp_rng rng;
    harp_rng_seed(&rng, 42);
    static const int shapes[][2] = {{1, 8},   {3, 24},   {5, 172},  {17, 1376}, {33, 13},
                                    {64, 64},  {7, 100},  {130, 520}, {4, 1},    {69, 4096},
                                    {6, 16},   {9, 40},   {11, 23}};
    const harp_qfmt fmts[3] = {HARP_QFMT_E8P2, HARP_QFMT_RVQ3, HARP_QFMT_RVQ4};
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
