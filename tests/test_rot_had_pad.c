/* Padded rotations (src/rotate/had_pad.h): the expansion rule, the fast transform against its dense
 * twin built from the definition at the widths of the issue (64, 96, 160, 172, 640, 896, 3584) and at
 * widths that need expansion, orthogonality, inverse, inner products, in-place expansion, wrapping
 * of other kinds, and the refusal when padding is not allowed. Tolerances: fp32 transform vs fp64
 * dense product within 4e-6·‖x‖∞·√log2(n') (a few ulps per FWHT level plus the hadK sum). */
#include "rot_test_util.h"
#include "rotate/had_pad.h"
#include "test_util.h"

static void fill(float *x, int64_t count, uint64_t seed) {
    harp_rng g;
    harp_rng_seed(&g, seed);
    for (int64_t i = 0; i < count; i++) x[i] = (float)harp_rng_normal(&g);
}

static void test_dims(void) {
    /* widths with a construction stay; the others go to the nearest width that has one */
    static const int64_t same[] = {1, 2, 4, 12, 64, 96, 160, 172, 640, 896, 1536, 3584, 4864, 11008, 18944};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        int64_t np = 0;
        int K = 0;
        CHECK_OK(harp_had_pad_dim(same[i], &np, &K));
        CHECK_MSG(np == same[i], "n=%lld padded to %lld", (long long)same[i], (long long)np);
    }
    static const int64_t grow[][2] = {{3, 4}, {6, 8}, {9, 12}, {14, 16}, {15, 16}, {46, 48}, {86, 88}, {92, 96}, {184, 192}};
    for (size_t i = 0; i < sizeof grow / sizeof grow[0]; i++) {
        int64_t np = 0;
        CHECK_OK(harp_had_pad_dim(grow[i][0], &np, NULL));
        CHECK_MSG(np == grow[i][1], "n=%lld: padded to %lld, expected %lld", (long long)grow[i][0], (long long)np,
                  (long long)grow[i][1]);
    }
    /* the quiet rule agrees with harp_hadamard_choose_k on every width up to 3000 */
    harp_set_log_level(HARP_LOG_NONE);
    int agree = 1;
    for (int64_t n = 1; n <= 3000; n++) {
        int K1 = 0, K2 = 0;
        int64_t np = 0;
        harp_status st = harp_hadamard_choose_k(n, &K1);
        if (harp_had_pad_dim(n, &np, &K2) != HARP_OK) agree = 0;
        if (st == HARP_OK && (np != n || K1 != K2)) agree = 0;
        if (st != HARP_OK && np <= n) agree = 0;
        if (!agree) {
            fprintf(stderr, "n=%lld: choose_k %d (st %d), pad -> %lld K %d\n", (long long)n, K1, (int)st, (long long)np, K2);
            break;
        }
    }
    harp_clear_error();
    harp_set_log_level(HARP_LOG_WARN);
    CHECK(agree);
}

/* fwd vs dense twin, inverse, orthogonality and inner products for one rotation. */
static void check_rot(const harp_padrot *p, const char *label) {
    const int64_t n = harp_padrot_n(p), np = harp_padrot_n_pad(p), rows = 5;
    float *X = malloc((size_t)(rows * n) * sizeof *X), *Y = malloc((size_t)(rows * np) * sizeof *Y);
    float *Yr = malloc((size_t)(rows * np) * sizeof *Yr), *Xb = malloc((size_t)(rows * n) * sizeof *Xb);
    fill(X, rows * n, (uint64_t)n * 7 + 1);
    CHECK_OK(harp_padrot_fwd(p, X, n, Y, np, rows));
    CHECK_OK(harp_padrot_fwd_ref(p, X, n, Yr, np, rows));
    double xmax = 0, e = 0, einv = 0;
    for (int64_t i = 0; i < rows * n; i++) xmax = fmax(xmax, fabs(X[i]));
    for (int64_t i = 0; i < rows * np; i++) e = fmax(e, fabs((double)Y[i] - Yr[i]));
    double tol = 4e-6 * xmax * sqrt(log2((double)np) + 1);
    CHECK_MSG(e <= tol, "%s n=%lld (n'=%lld): fast vs dense max|diff| %.3g > %.3g", label, (long long)n, (long long)np, e, tol);
    CHECK_OK(harp_padrot_inv(p, Y, np, Xb, n, rows));
    for (int64_t i = 0; i < rows * n; i++) einv = fmax(einv, fabs((double)Xb[i] - X[i]));
    CHECK_MSG(einv <= 2 * tol, "%s n=%lld: inverse max|diff| %.3g", label, (long long)n, einv);
    /* ⟨x0, x1⟩ = ⟨y0, y1⟩ */
    double a = 0, b = 0, s = 0;
    for (int64_t i = 0; i < n; i++) a += (double)X[i] * X[n + i], s += fabs((double)X[i] * X[n + i]);
    for (int64_t i = 0; i < np; i++) b += (double)Y[i] * Y[np + i];
    CHECK_MSG(fabs(a - b) <= 1e-5 * s, "%s n=%lld: inner product %.9g vs %.9g", label, (long long)n, a, b);
    if (np <= 1024) {
        double *R = malloc((size_t)(np * np) * sizeof *R);
        CHECK_OK(harp_padrot_dense(p, R));
        double oe = rt_orth_err(R, np);
        CHECK_MSG(oe < 1e-12, "%s n'=%lld: dense R not orthogonal (%.3g)", label, (long long)np, oe);
        free(R);
    }
    free(X), free(Y), free(Yr), free(Xb);
}

static void test_hadamard_widths(void) {
    static const int64_t widths[] = {64, 96, 160, 172, 640, 896, 3584, 14, 92, 184, 1000};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++)
        for (int signs = 0; signs <= 1; signs++) {
            harp_padrot *p = NULL;
            CHECK_OK(harp_padrot_hadamard(widths[i], 1, signs, 42, "test", &p));
            if (!p) continue;
            check_rot(p, signs ? "random hadamard" : "hadamard");
            harp_padrot_destroy(p);
        }
}

/* Unpadded: the dense twin equals the existing transform's own materialisation (same convention). */
static void test_convention(void) {
    static const int64_t widths[] = {96, 172};
    for (size_t i = 0; i < 2; i++) {
        int64_t n = widths[i];
        harp_padrot *p = NULL;
        CHECK_OK(harp_padrot_hadamard(n, 0, 0, 0, "test", &p));
        double *R = malloc((size_t)(n * n) * sizeof *R), *M = malloc((size_t)(n * n) * sizeof *M);
        CHECK_OK(harp_padrot_dense(p, R));
        CHECK_OK(harp_rot_materialize(harp_padrot_rot(p), M));
        double e = 0;
        for (int64_t k = 0; k < n * n; k++) e = fmax(e, fabs(R[k] - M[k]));
        CHECK_MSG(e < 1e-12, "n=%lld: dense twin vs harp_rot_materialize %.3g", (long long)n, e);
        free(R), free(M);
        harp_padrot_destroy(p);
    }
}

static void test_in_place_and_wrap(void) {
    const int64_t n = 92, rows = 3;
    harp_padrot *p = NULL;
    CHECK_OK(harp_padrot_hadamard(n, 1, 1, 7, "test", &p));
    const int64_t np = harp_padrot_n_pad(p);
    CHECK(np == 96);
    float *X = malloc((size_t)(rows * np) * sizeof *X), *Y = malloc((size_t)(rows * np) * sizeof *Y);
    fill(X, rows * n, 3);
    CHECK_OK(harp_padrot_fwd(p, X, n, Y, np, rows));
    CHECK_OK(harp_padrot_fwd(p, X, n, X, np, rows));   /* packed rows of n expanded in place to rows of n' */
    CHECK(memcmp(X, Y, (size_t)(rows * np) * sizeof *X) == 0);
    free(X), free(Y);
    harp_padrot_destroy(p);
    /* refusal without padding: one line naming the place */
    harp_set_log_level(HARP_LOG_NONE);
    CHECK(harp_padrot_hadamard(43, 0, 0, 0, "R3 (test)", &p) == HARP_ERR_UNSUPPORTED && !p);
    CHECK(strstr(harp_last_error(), "R3 (test)") && strstr(harp_last_error(), "43") && !strchr(harp_last_error(), '\n'));
    harp_set_log_level(HARP_LOG_WARN);
    /* other kinds wrapped: identity, GSR, random orthogonal */
    CHECK_OK(harp_padrot_wrap(NULL, 40, &p));
    check_rot(p, "identity");
    harp_padrot_destroy(p);
    harp_rot_params rp;
    harp_rot_params_default(&rp);
    rp.gsr_group = 32;
    harp_rot *r = NULL;
    CHECK_OK(harp_rot_create(HARP_ROT_GSR, 160, &rp, 1, &r));
    CHECK_OK(harp_padrot_wrap(r, 160, &p));
    check_rot(p, "gsr");
    harp_padrot_destroy(p);
    CHECK_OK(harp_rot_create(HARP_ROT_RANDOM_ORTHOGONAL, 100, NULL, 5, &r));
    CHECK_OK(harp_padrot_wrap(r, 97, &p));   /* a wider rotation acting on zero-padded rows */
    check_rot(p, "random orthogonal");
    harp_padrot_destroy(p);
}

int main(void) {
    test_dims();
    test_hadamard_widths();
    test_convention();
    test_in_place_and_wrap();
    return t_done();
}
