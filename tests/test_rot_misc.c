/* Acceptance 3 (GSR) and 5 (serialisation), plus the dense baselines and the two-sided helpers. */
#include <string.h>

#include "rot_test_util.h"
#include "test_util.h"

static harp_rot *mk(harp_rot_kind k, int64_t n, const harp_rot_params *p, uint64_t seed) {
    harp_rot *r = NULL;
    CHECK_OK(harp_rot_create(k, n, p, seed, &r));
    return r;
}

static void test_gsr(void) {
    harp_rot_params p;
    harp_rot_params_default(&p);
    /* ungrouped: output j is the coefficient of the basis vector (column j of R) with j sign changes */
    static const int64_t ns[] = {8, 16, 128, 256};
    for (size_t k = 0; k < 4; k++) {
        int64_t n = ns[k];
        p.gsr_group = -1;
        p.gsr_signs = 0;
        harp_rot *r = mk(HARP_ROT_GSR, n, &p, 1);
        if (!r) continue;
        double *R = malloc((size_t)n * (size_t)n * sizeof(double));
        CHECK_OK(harp_rot_materialize(r, R));
        int prev = -1, exact = 1, nondec = 1;
        for (int64_t j = 0; j < n; j++) {
            int sq = harp_sequency(R + j, n, n);
            nondec &= sq >= prev;
            exact &= sq == j;
            prev = sq;
        }
        CHECK_MSG(nondec && exact, "gsr n=%lld: sequency not non-decreasing (0,1,…,n−1)", (long long)n);
        CHECK(rt_orth_err(R, n) <= 1e-12);
        free(R);
        harp_rot_destroy(r);
    }
    /* grouped (G = 128, the default) with random signs: block-diagonal and orthogonal */
    p.gsr_group = 0;
    p.gsr_signs = 1;
    int64_t n = 512;
    harp_rot *r = mk(HARP_ROT_GSR, n, &p, 9);
    if (r) {
        double *R = malloc((size_t)n * (size_t)n * sizeof(double));
        CHECK_OK(harp_rot_materialize(r, R));
        int blockdiag = 1;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++)
                if (i / 128 != j / 128 && R[i * n + j] != 0) blockdiag = 0;
        CHECK_MSG(blockdiag, "grouped gsr is not block-diagonal");
        double e = rt_orth_err(R, n);
        CHECK_MSG(e <= 1e-12, "grouped gsr fp64 orth err %.3g", e);
        free(R);
        R = rt_materialize_f32(r);
        e = rt_orth_err(R, n);
        CHECK_MSG(e <= 1e-5, "grouped gsr fp32 orth err %.3g", e);
        free(R);
        /* optimised vs ref */
        size_t tot = 5 * (size_t)n;
        float *a = malloc(tot * sizeof(float)), *b = malloc(tot * sizeof(float));
        rt_fill_normal(a, tot, 3);
        for (int tr = 0; tr < 2; tr++) {
            memcpy(b, a, tot * sizeof(float));
            CHECK_OK(harp_rot_apply(r, a, 5, n, tr));
            CHECK_OK(harp_rot_apply_ref(r, b, 5, n, tr));
            CHECK(!memcmp(a, b, tot * sizeof(float)));
        }
        free(a), free(b);
        harp_rot_destroy(r);
    }
    p.gsr_group = 96;
    harp_rot *bad = NULL;
    CHECK(harp_rot_create(HARP_ROT_GSR, 384, &p, 0, &bad) == HARP_ERR_INVALID_ARG);
}

static void test_dense_kinds(void) {
    static const int64_t ns[] = {96, 172, 7};
    for (size_t k = 0; k < 3; k++)
        for (int kind = HARP_ROT_RANDOM_ORTHOGONAL; kind <= HARP_ROT_KRON; kind++) {
            int64_t n = ns[k];
            harp_rot *r = mk((harp_rot_kind)kind, n, NULL, 5);
            if (!r) continue;
            double *R = malloc((size_t)n * (size_t)n * sizeof(double));
            CHECK_OK(harp_rot_materialize(r, R));
            double e = rt_orth_err(R, n);
            CHECK_MSG(e <= 1e-12, "%s n=%lld: fp64 orth err %.3g", harp_rot_kind_name((harp_rot_kind)kind), (long long)n, e);
            free(R);
            R = rt_materialize_f32(r);
            e = rt_orth_err(R, n);
            CHECK_MSG(e <= 1e-5, "%s n=%lld: fp32 orth err %.3g", harp_rot_kind_name((harp_rot_kind)kind), (long long)n, e);
            free(R);
            /* BLAS path vs plain reference loop (different summation order: 1e−5 relative) */
            size_t tot = 3 * (size_t)n;
            float *a = malloc(tot * sizeof(float)), *b = malloc(tot * sizeof(float));
            rt_fill_normal(a, tot, 8);
            memcpy(b, a, tot * sizeof(float));
            CHECK_OK(harp_rot_apply(r, a, 3, n, 1));
            CHECK_OK(harp_rot_apply_ref(r, b, 3, n, 1));
            CHECK(rt_rel_err(a, b, tot) <= 1e-5);
            free(a), free(b);
            harp_rot_destroy(r);
        }
}

/* Uᵀ W V, U W Vᵀ and Vᵀ H V against explicit products of the materialised rotations. */
static void test_two_sided(void) {
    const int64_t m = 48, n = 64;
    harp_rot *U = mk(HARP_ROT_RHT, m, NULL, 1), *V = mk(HARP_ROT_BUTTERFLY, n, NULL, 2);
    if (!U || !V) return;
    double *Ud = malloc(m * m * sizeof(double)), *Vd = malloc(n * n * sizeof(double));
    double *W = malloc(m * n * sizeof(double)), *T = malloc(m * n * sizeof(double)), *E = malloc(m * n * sizeof(double));
    harp_rot_materialize(U, Ud);
    harp_rot_materialize(V, Vd);
    rt_fill_normal_f64(W, m * n, 4);
    memcpy(T, W, m * n * sizeof(double));
    CHECK_OK(harp_rot_weight_f64(U, V, T, m, n, 0));
    double *A = malloc(m * n * sizeof(double));
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)n, 1, W, (int)n, Vd, (int)n, 0, A, (int)n);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)n, (int)m, 1, Ud, (int)m, A, (int)n, 0, E, (int)n);
    double e = 0;
    for (int64_t i = 0; i < m * n; i++) e = fmax(e, fabs(T[i] - E[i]));
    CHECK_MSG(e < 1e-12, "Uᵀ W V differs from the dense product by %.3g", e);
    CHECK_OK(harp_rot_weight_f64(U, V, T, m, n, 1));
    e = 0;
    for (int64_t i = 0; i < m * n; i++) e = fmax(e, fabs(T[i] - W[i]));
    CHECK_MSG(e < 1e-12, "U (Uᵀ W V) Vᵀ != W (%.3g)", e);
    float *Wf = malloc(m * n * sizeof(float));
    for (int64_t i = 0; i < m * n; i++) Wf[i] = (float)W[i];
    CHECK_OK(harp_rot_weight(U, V, Wf, m, n, 0));
    e = 0;
    for (int64_t i = 0; i < m * n; i++) e = fmax(e, fabs(Wf[i] - E[i]));
    CHECK_MSG(e < 1e-5, "fp32 Uᵀ W V differs by %.3g", e);
    /* Hessian: H = B Bᵀ, check Vᵀ H V */
    double *H = malloc(n * n * sizeof(double)), *B = malloc(n * n * sizeof(double)), *G = malloc(n * n * sizeof(double));
    rt_fill_normal_f64(B, n * n, 6);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1, B, (int)n, B, (int)n, 0, H, (int)n);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1, H, (int)n, Vd, (int)n, 0, B, (int)n);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1, Vd, (int)n, B, (int)n, 0, G, (int)n);
    CHECK_OK(harp_rot_hessian_f64(V, H, n, 0));
    e = 0;
    for (int64_t i = 0; i < n * n; i++) e = fmax(e, fabs(H[i] - G[i]));
    CHECK_MSG(e < 1e-10, "Vᵀ H V differs by %.3g", e);
    CHECK(harp_rot_weight_f64(V, V, T, m, n, 0) == HARP_ERR_SHAPE);
    free(Ud), free(Vd), free(W), free(T), free(E), free(A), free(Wf), free(H), free(B), free(G);
    harp_rot_destroy(U);
    harp_rot_destroy(V);
}

static void reseal(uint8_t *b, size_t n) {
    uint64_t h = harp_fnv1a64(b, n - 8, 0);
    for (int i = 0; i < 8; i++) b[n - 8 + i] = (uint8_t)(h >> (8 * i));
}

static void test_serialise(void) {
    harp_rot_params p;
    harp_rot *rs[12];
    int nr = 0;
    rs[nr++] = mk(HARP_ROT_HADAMARD, 1376, NULL, 1);
    rs[nr++] = mk(HARP_ROT_RHT, 4864, NULL, 2);
    harp_rot_params_default(&p);
    p.gsr_signs = 1;
    rs[nr++] = mk(HARP_ROT_GSR, 512, &p, 3);
    rs[nr++] = mk(HARP_ROT_RANDOM_ORTHOGONAL, 60, NULL, 4);
    rs[nr++] = mk(HARP_ROT_KRON, 96, NULL, 5);
    harp_rot_params_default(&p);
    p.theta_init_scale = 0.2;
    p.givens_b2 = 1;
    p.theta_clip = 1.25;
    p.n_passes = 2;
    rs[nr++] = mk(HARP_ROT_BUTTERFLY, 5632, &p, 6);   /* [8,8,8,11]: stored radix-11 mixer */
    harp_rot_params_default(&p);
    p.n_stages = 4, p.stages[0] = 2, p.stages[1] = 3, p.stages[2] = 43, p.stages[3] = 2;
    p.givens_b2 = 1, p.theta_init_scale = 0.1;
    rs[nr++] = mk(HARP_ROT_BUTTERFLY, 516, &p, 7);
    /* schedule hadamard (blob version 3: fixed Had_K stage, identity-mixer stages): f64, int8, fp16 θ */
    for (int e = 0; e < 3; e++) {
        static const int64_t wn[3] = {1376, 1536, 172};
        harp_rot_params_default(&p);
        p.schedule = HARP_BF_SCHEDULE_HADAMARD;
        p.theta_init_scale = 0.1;
        p.n_passes = 1 + (e == 1), p.givens_b2 = e == 1;
        harp_rot *r = mk(HARP_ROT_BUTTERFLY, wn[e], &p, 8 + (uint64_t)e);
        if (r && e) CHECK_OK(harp_rot_butterfly_round_theta(r, e == 1 ? HARP_THETA_INT8 : HARP_THETA_FP16));
        rs[nr++] = r;
    }
    for (int k = 0; k < nr; k++) {
        harp_rot *r = rs[k];
        if (!r) continue;
        const char *kn = harp_rot_kind_name(harp_rot_get_kind(r));
        uint8_t *b1 = NULL, *b2 = NULL;
        size_t s1 = 0, s2 = 0;
        CHECK_OK(harp_rot_serialize(r, &b1, &s1));
        harp_rot *q = NULL;
        CHECK_OK(harp_rot_deserialize(b1, s1, "test blob", &q));
        if (!q) continue;
        CHECK_OK(harp_rot_serialize(q, &b2, &s2));
        CHECK_MSG(s1 == s2 && !memcmp(b1, b2, s1), "%s: re-serialised blob differs", kn);
        int64_t n = harp_rot_dim(r);
        size_t tot = 3 * (size_t)n;
        float *x = malloc(tot * sizeof(float)), *y = malloc(tot * sizeof(float));
        rt_fill_normal(x, tot, 11);
        memcpy(y, x, tot * sizeof(float));
        for (int tr = 0; tr < 2; tr++) {
            CHECK_OK(harp_rot_apply(r, x, 3, n, tr));
            CHECK_OK(harp_rot_apply(q, y, 3, n, tr));
            CHECK_MSG(!memcmp(x, y, tot * sizeof(float)), "%s: loaded rotation gives different bits", kn);
        }
        if (harp_rot_get_kind(r) == HARP_ROT_BUTTERFLY) {
            /* a loaded butterfly keeps θ only as its int8 / fp16 codes: θ, the fp64 blocks, dθ and a
             * later θ change read them back to the same bits */
            const int64_t np = harp_rot_butterfly_num_params(r);
            double *t1 = malloc((size_t)np * sizeof(double) + 8), *t2 = malloc((size_t)np * sizeof(double) + 8);
            double *d1 = calloc((size_t)np + 1, sizeof(double)), *d2 = calloc((size_t)np + 1, sizeof(double));
            double *xd = malloc(2 * tot * sizeof(double));
            CHECK_OK(harp_rot_butterfly_get_theta(r, t1));
            CHECK_OK(harp_rot_butterfly_get_theta(q, t2));
            CHECK_MSG(!memcmp(t1, t2, (size_t)np * sizeof(double)), "%s n=%lld: loaded theta differs", kn, (long long)n);
            harp_rot_cache *c1 = harp_rot_cache_create(), *c2 = harp_rot_cache_create();
            for (size_t i = 0; i < tot; i++) xd[i] = xd[tot + i] = x[i];
            CHECK_OK(harp_rot_butterfly_forward_batch(r, xd, 3, xd, c1));
            CHECK_OK(harp_rot_butterfly_forward_batch(q, xd + tot, 3, xd + tot, c2));
            CHECK_MSG(!memcmp(xd, xd + tot, tot * sizeof(double)), "%s n=%lld: loaded fp64 apply differs", kn, (long long)n);
            CHECK_OK(harp_rot_butterfly_backward(r, c1, xd, NULL, d1));
            CHECK_OK(harp_rot_butterfly_backward(q, c2, xd, NULL, d2));
            CHECK_MSG(!memcmp(d1, d2, (size_t)np * sizeof(double)), "%s n=%lld: loaded dtheta differs", kn, (long long)n);
            for (int64_t i = 0; i < np; i++) t1[i] *= 0.5;
            CHECK_OK(harp_rot_butterfly_set_theta(r, t1));
            CHECK_OK(harp_rot_butterfly_set_theta(q, t1));
            uint8_t *b3 = NULL, *b4 = NULL;
            size_t s3 = 0, s4 = 0;
            CHECK_OK(harp_rot_serialize(r, &b3, &s3));
            CHECK_OK(harp_rot_serialize(q, &b4, &s4));
            CHECK_MSG(s3 == s4 && !memcmp(b3, b4, s3), "%s n=%lld: new theta on a loaded rotation serialises differently", kn, (long long)n);
            harp_rot_cache_destroy(c1), harp_rot_cache_destroy(c2);
            free(t1), free(t2), free(d1), free(d2), free(xd), free(b3), free(b4);
        }
        /* every single-byte corruption is caught (checksum), every truncation too */
        int caught = 0, tried = 0;
        for (size_t pos = 0; pos < s1; pos += s1 / 97 + 1) {
            b2[pos] ^= 0x5a;
            harp_rot *z = NULL;
            harp_clear_error();
            tried++;
            if (harp_rot_deserialize(b2, s1, "corrupt blob", &z) != HARP_OK && z == NULL && strstr(harp_last_error(), "corrupt blob"))
                caught++;
            harp_rot_destroy(z);
            b2[pos] ^= 0x5a;
        }
        CHECK_MSG(caught == tried, "%s: %d of %d corruptions accepted", kn, tried - caught, tried);
        caught = tried = 0;
        for (size_t len = 0; len < s1; len += s1 / 31 + 1) {
            harp_rot *z = NULL;
            tried++;
            if (harp_rot_deserialize(b2, len, "short blob", &z) == HARP_ERR_FORMAT && strstr(harp_last_error(), "truncated")) caught++;
            harp_rot_destroy(z);
        }
        CHECK_MSG(caught == tried, "%s: %d of %d truncations not reported as truncated", kn, tried - caught, tried);
        free(x), free(y), free(b1), free(b2);
        harp_rot_destroy(q);
    }
    /* validation behind a valid checksum: a sign of 2 in the RHT blob */
    uint8_t *b;
    size_t s;
    if (rs[1] && harp_rot_serialize(rs[1], &b, &s) == HARP_OK) {
        b[40 + 12 + 5] = 2;
        reseal(b, s);
        harp_rot *z = NULL;
        CHECK(harp_rot_deserialize(b, s, "rht blob", &z) == HARP_ERR_FORMAT);
        CHECK(strstr(harp_last_error(), "not +1/-1") != NULL);
        b[8] = 9;   /* version */
        reseal(b, s);
        CHECK(harp_rot_deserialize(b, s, "rht blob", &z) == HARP_ERR_UNSUPPORTED);
        free(b);
    }
    /* schedule hadamard: a fixed-stage order this build would not choose for n is refused */
    if (rs[7] && harp_rot_serialize(rs[7], &b, &s) == HARP_OK) {
        CHECK(b[8] == 3);
        b[40 + 24] ^= 1;   /* u32 K after passes, stages, givens flag, mixer count and θ clip */
        reseal(b, s);
        harp_rot *z = NULL;
        CHECK(harp_rot_deserialize(b, s, "v3 blob", &z) == HARP_ERR_FORMAT && strstr(harp_last_error(), "fixed-stage K"));
        free(b);
    }
    /* file round trip */
    if (rs[5]) {
        const char *path = t_tmp("rot_test.hrot");
        CHECK_OK(harp_rot_save(rs[5], path));
        harp_rot *z = NULL;
        CHECK_OK(harp_rot_load(path, &z));
        int64_t np = harp_rot_butterfly_num_params(rs[5]);
        double *t1 = malloc((size_t)np * sizeof(double)), *t2 = malloc((size_t)np * sizeof(double));
        harp_rot_butterfly_get_theta(rs[5], t1);
        if (z) harp_rot_butterfly_get_theta(z, t2);
        CHECK(z && np == harp_rot_butterfly_num_params(z) && !memcmp(t1, t2, (size_t)np * sizeof(double)));
        free(t1), free(t2);
        harp_rot_destroy(z);
    }
    for (int k = 0; k < nr; k++) harp_rot_destroy(rs[k]);
}

int main(void) {
    harp_set_log_level(HARP_LOG_NONE);   /* expected errors are checked through harp_last_error() */
    test_gsr();
    test_dense_kinds();
    test_two_sided();
    test_serialise();
    return t_done();
}
