/* LDP fit (a) (src/quant/ldp_fit.c, algorithms.md §6.6): the proxy-loss gradient against central
 * finite differences in fp64, the levels' order by construction, the fit against uniform RTN / GPTQ
 * 2-bit on the same synthetic problem, and codes independent of the thread count. */
#include <math.h>
#include <omp.h>
#include <stdio.h>

#include "harp/quant.h"
#include "quant/ldp.h"
#include "quant/quant_internal.h"
#include "quant_testlib.h"
#include "test_util.h"

/* ∂L/∂θ with frozen codes vs (L(θ + h e_p) − L(θ − h e_p)) / 2h, fp64, ragged groups. */
static void test_gradient(harp_rng *rng) {
    const int64_t n = 40, g = 16, ng = 3, np = HARP_LDP_NPARAM * ng;
    double *H = malloc(sizeof(double) * n * n), w[40], th[15], grad[15], s[2 * 40 + 12];
    uint8_t q[40];
    qt_hessian(rng, n, 200, H);
    for (int64_t c = 0; c < n; c++) w[c] = harp_rng_normal(rng), q[c] = (uint8_t)(harp_rng_u64(rng) % 4);
    for (int64_t G = 0; G < ng; G++) {
        double *t = th + HARP_LDP_NPARAM * G;
        t[0] = -1.0 - harp_rng_uniform(rng), t[1] = 1.0 + harp_rng_uniform(rng);
        for (int j = 2; j < HARP_LDP_NPARAM; j++) t[j] = harp_rng_normal(rng);
    }
    const double L = harp_ldp_row_loss(n, g, w, q, th, H, grad, s);
    double gmax = 0;
    for (int64_t p = 0; p < np; p++) gmax = fmax(gmax, fabs(grad[p]));
    CHECK(L > 0 && gmax > 0);
    int bad = 0;
    double worst = 0;
    for (int64_t p = 0; p < np; p++) {
        const double h = 1e-5 * fmax(1.0, fabs(th[p])), keep = th[p];
        th[p] = keep + h;
        const double Lp = harp_ldp_row_loss(n, g, w, q, th, H, NULL, s);
        th[p] = keep - h;
        const double Lm = harp_ldp_row_loss(n, g, w, q, th, H, NULL, s);
        th[p] = keep;
        const double fd = (Lp - Lm) / (2 * h);
        /* relative to the component, with a floor of 1e-6 of the largest one (components near 0) */
        const double rel = fabs(fd - grad[p]) / fmax(fabs(grad[p]), 1e-6 * gmax);
        worst = fmax(worst, rel);
        bad += !(rel <= 1e-6);
    }
    printf("gradient: %lld parameters, worst relative difference to central differences %.2e\n", (long long)np, worst);
    CHECK_MSG(!bad, "%d gradient components off the finite differences (worst %.3g)", bad, worst);
    free(H);
}

/* Levels of any θ with α ≥ β are ordered and end at β and α exactly; the Jacobian rows of ℓ_0, ℓ_3
 * do not depend on φ. */
static void test_levels_ordered(harp_rng *rng) {
    int bad = 0;
    for (int i = 0; i < 10000; i++) {
        double th[HARP_LDP_NPARAM], lv[4], J[4][HARP_LDP_NPARAM];
        th[0] = harp_rng_normal(rng), th[1] = th[0] + fabs(harp_rng_normal(rng)) * (i % 10 ? 1.0 : 0.0);
        for (int j = 2; j < HARP_LDP_NPARAM; j++) th[j] = 8.0 * harp_rng_normal(rng);
        harp_ldp_levels(th, lv, J);
        bad += !(lv[0] == th[0] && lv[3] == th[1] && lv[0] <= lv[1] && lv[1] <= lv[2] && lv[2] <= lv[3]);
        for (int j = 2; j < HARP_LDP_NPARAM; j++) bad += J[0][j] != 0.0 || J[3][j] != 0.0;
        for (int k = 0; k < 4; k++) bad += harp_ldp_nearest(lv, lv[k]) > k || lv[harp_ldp_nearest(lv, lv[k])] != lv[k];
    }
    CHECK_MSG(!bad, "%d level sets out of order / nearest-level errors", bad);
}

static double fit(harp_qmethod method, int group, int64_t m, int64_t n, const float *W, const double *H, harp_qtensor *out) {
    harp_quant_params p = harp_quant_default_params(method, 2);
    p.group_size = group;
    CHECK_OK(harp_quantize_linear(&p, m, n, W, H, "synthetic", out));
    return out->proxy_loss;
}

/* Every stored level set of a fitted tensor is ordered (and harp_qtensor_check agrees). */
static int levels_sorted(const harp_qtensor *w) {
    const uint16_t *h = w->planes[QT_LDP_LEVELS].data;
    for (int64_t k = 0; k < w->m * w->n_groups; k++)
        for (int j = 1; j < 4; j++)
            if (harp_f16_to_f32(h[4 * k + j]) < harp_f16_to_f32(h[4 * k + j - 1])) return 0;
    return 1;
}

static void test_fit_vs_uniform(harp_rng *rng, int group, int64_t m, int64_t n) {
    float *W = malloc(sizeof(float) * m * n);
    double *H = malloc(sizeof(double) * n * n);
    qt_weights(rng, m, n, W);
    /* heavier tails than Gaussian (a few large weights), as in real linears */
    for (int64_t i = 0; i < m * n; i += 37) W[i] *= 4.0f;
    qt_hessian(rng, n, 2 * n, H);
    harp_qtensor rtn, gptq, ldp, ldp1;
    const double lr = fit(HARP_QMETHOD_RTN, group, m, n, W, H, &rtn);
    const double lg = fit(HARP_QMETHOD_GPTQ, group, m, n, W, H, &gptq);
    omp_set_num_threads(2);
    const double ll = fit(HARP_QMETHOD_LDP, group, m, n, W, H, &ldp);
    printf("proxy loss %lldx%lld group %d: rtn int2 %.5f  gptq int2 %.5f  ldp2 %.5f  (%.2f s)\n", (long long)m, (long long)n,
           group, lr, lg, ll, ldp.seconds);
    CHECK_MSG(ll <= lg && ll <= lr, "ldp %.6g not below gptq %.6g / rtn %.6g", ll, lg, lr);
    CHECK(ldp.type == HARP_QTYPE_LDP2 && levels_sorted(&ldp));
    CHECK_OK(harp_qtensor_check(&ldp, "synthetic ldp2"));
    /* thread count: the same codes and levels with one thread */
    omp_set_num_threads(1);
    fit(HARP_QMETHOD_LDP, group, m, n, W, H, &ldp1);
    omp_set_num_threads(2);
    for (int i = 0; i < 2; i++)
        CHECK_MSG(ldp.planes[i].nbytes == ldp1.planes[i].nbytes &&
                      !memcmp(ldp.planes[i].data, ldp1.planes[i].data, ldp.planes[i].nbytes),
                  "plane %d differs between 1 and 2 threads", i);
    harp_qtensor_free(&rtn), harp_qtensor_free(&gptq), harp_qtensor_free(&ldp), harp_qtensor_free(&ldp1);
    free(W), free(H);
}

static void test_bad_args(void) {
    harp_quant_params p = harp_quant_default_params(HARP_QMETHOD_LDP, 3);
    float W[16] = {0};
    double H[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    harp_qtensor out;
    CHECK(harp_quantize_linear(&p, 4, 4, W, H, "lin", &out) == HARP_ERR_INVALID_ARG && strstr(harp_last_error(), "lin"));
    p.bits = 2;
    CHECK(harp_quantize_linear(&p, 4, 4, W, NULL, "lin", &out) == HARP_ERR_INVALID_ARG);
    /* all-zero weights: every level 0, loss 0 */
    CHECK_OK(harp_quantize_linear(&p, 4, 4, W, H, "lin", &out));
    CHECK(levels_sorted(&out));
    harp_qtensor_free(&out);
}

int main(void) {
    harp_rng rng;
    harp_rng_seed(&rng, 15);
    test_gradient(&rng);
    test_levels_ordered(&rng);
    test_fit_vs_uniform(&rng, 64, 48, 256);
    test_fit_vs_uniform(&rng, 0, 33, 100);  /* per channel, odd sizes */
    test_fit_vs_uniform(&rng, 40, 17, 172); /* ragged last group, group not a multiple of 8 */
    test_bad_args();
    return t_done();
}
