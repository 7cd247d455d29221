/* HARP fit engine: the loss equals an independent computation through the public rotation API, and
 * the hand gradient of the full loss (proxy with a fixed target + λ·HBD) matches central finite
 * differences in fp64 (algorithms.md §9.2 item 11) on small odd shapes; the fp32 engine's gradient
 * matches the fp64 one. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harpfit/hf_internal.h"
#include "harpfit_problem.h"
#include "test_util.h"

typedef struct gcase {
    int m, n;
    int su[4], nsu, sv[4], nsv;
    int givens;
    double clip, lambda;
    int beta;
    harp_codebook cb;
} gcase;


static void problem(int m, int n, uint64_t seed, float *W, double *H) {
    harp_rng g;
    harp_rng_seed(&g, seed);
    for (int i = 0; i < m * n; i++) W[i] = (float)harp_rng_normal(&g);
    int k = 2 * n;
    double *A = malloc(sizeof(double) * (size_t)n * k);
    for (int i = 0; i < n * k; i++) A[i] = harp_rng_normal(&g) * (1.0 + (i % n) * 0.05);
    hft_gram(A, n, k, H);
    free(A);
}

/* Independent loss through harp_rot_weight_f64 / harp_rot_hessian_f64 (fresh target). */
static void ref_loss(harp_rot *U, harp_rot *V, int m, int n, const float *W, const double *H, const hf_opts *o,
                     double *proxy, double *hbd) {
    double *Wt = malloc(sizeof(double) * (size_t)m * n), *Ht = malloc(sizeof(double) * (size_t)n * n);
    for (int i = 0; i < m * n; i++) Wt[i] = W[i];
    memcpy(Ht, H, sizeof(double) * (size_t)n * n);
    CHECK_OK(harp_rot_weight_f64(U, V, Wt, m, n, 0));
    CHECK_OK(harp_rot_hessian_f64(V, Ht, n, 0));
    double ss = 0, dm = 0;
    for (int i = 0; i < m * n; i++) ss += Wt[i] * Wt[i];
    double s = (sqrt(ss / (m * n)) + 1e-8) / o->so;
    for (int j = 0; j < n; j++) dm += fabs(Ht[j * n + j]) / n;
    double p = 0;
    for (int i = 0; i < m; i++)
        for (int j0 = 0; j0 < n; j0 += 8) {
            double x[8] = {0}, q[8];
            for (int k = 0; k < 8 && j0 + k < n; k++) x[k] = Wt[i * n + j0 + k] / s;
            harp_cb_quantize8(o->cb, o->resid, x, q, NULL);
            for (int k = 0; k < 8 && j0 + k < n; k++) {
                double h = fabs(Ht[(j0 + k) * n + j0 + k]) / (dm + 1e-8), e = x[k] - q[k];
                p += h * e * e;
            }
        }
    *proxy = p / ((double)m * n);
    int beta = o->hbd_block > 0 && n % o->hbd_block == 0 ? o->hbd_block : 1;
    double hb = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i / beta != j / beta) hb += Ht[i * n + j] * Ht[i * n + j];
    *hbd = hb / ((double)n * n);
    free(Wt);
    free(Ht);
}

static void run_case(const gcase *gc, uint64_t seed) {
    int m = gc->m, n = gc->n;
    float *W = malloc(sizeof(float) * (size_t)m * n);
    double *H = malloc(sizeof(double) * (size_t)n * n);
    problem(m, n, seed, W, H);
    harp_rot *U = hft_rot(m, gc->su, gc->nsu, gc->givens, gc->clip, 0.25, seed + 1),
             *V = hft_rot(n, gc->sv, gc->nsv, gc->givens, gc->clip, 0.25, seed + 2);
    CHECK_MSG(U && V, "butterfly: %s", harp_last_error());
    hf_opts o = {gc->lambda, gc->beta, gc->cb, harp_codebook_opt_scale(gc->cb), harp_codebook_opt_resid_scale(gc->cb), 1, NULL, NULL};
    hf_ctx_f64 *c = NULL;
    hf_ctx_f32 *c32 = NULL;
    CHECK_OK(hf_ctx_create_f64(U, V, W, H, &o, &c));
    CHECK_OK(hf_ctx_create_f32(U, V, W, H, &o, &c32));
    int64_t nu = harp_rot_butterfly_num_params(U), nv = harp_rot_butterfly_num_params(V);
    double *gU = calloc((size_t)nu, sizeof(double)), *gV = calloc((size_t)nv, sizeof(double));
    double *gU32 = calloc((size_t)nu, sizeof(double)), *gV32 = calloc((size_t)nv, sizeof(double));
    double *th = malloc(sizeof(double) * (size_t)(nu > nv ? nu : nv));
    hf_terms t0, t32;
    CHECK_OK(hf_eval_f64(c, 1, &t0, gU, gV));
    CHECK_OK(hf_eval_f32(c32, 1, &t32, gU32, gV32));
    double rp, rh;
    ref_loss(U, V, m, n, W, H, &o, &rp, &rh);
    CHECK_MSG(fabs(t0.proxy - rp) <= 1e-10 * fabs(rp), "%dx%d proxy %.15g vs independent %.15g", m, n, t0.proxy, rp);
    CHECK_MSG(fabs(t0.hbd - rh) <= 1e-10 * fabs(rh), "%dx%d hbd %.15g vs independent %.15g", m, n, t0.hbd, rh);
    CHECK_MSG(fabs(t32.loss - t0.loss) <= 1e-4 * fabs(t0.loss), "fp32 loss %.9g vs fp64 %.9g", t32.loss, t0.loss);
    /* finite differences on every parameter of both sides (fixed target and weights) */
    const double h = 1e-6;
    double worst = 0, gnorm = 0, dnorm = 0;
    for (int side = 0; side < 2; side++) {
        harp_rot *r = side ? V : U;
        int64_t np = side ? nv : nu;
        double *g = side ? gV : gU, *g32 = side ? gV32 : gU32;
        CHECK_OK(harp_rot_butterfly_get_theta(r, th));
        for (int64_t k = 0; k < np; k++) {
            double keep = th[k];
            hf_terms a, b;
            th[k] = keep + h;
            CHECK_OK(harp_rot_butterfly_set_theta(r, th));
            CHECK_OK(hf_eval_f64(c, 0, &a, NULL, NULL));
            th[k] = keep - h;
            CHECK_OK(harp_rot_butterfly_set_theta(r, th));
            CHECK_OK(hf_eval_f64(c, 0, &b, NULL, NULL));
            th[k] = keep;
            double fd = (a.loss - b.loss) / (2 * h);
            double err = fabs(fd - g[k]) / (fabs(fd) + 1e-3 * fabs(t0.loss));
            worst = err > worst ? err : worst;
            gnorm += g[k] * g[k], dnorm += (g32[k] - g[k]) * (g32[k] - g[k]);
        }
        CHECK_OK(harp_rot_butterfly_set_theta(r, th));
    }
    CHECK_MSG(worst < 1e-5, "%dx%d: worst gradient rel. error vs finite differences %.3g", m, n, worst);
    CHECK_MSG(sqrt(dnorm) <= 1e-4 * sqrt(gnorm), "%dx%d: fp32 gradient differs from fp64 by %.3g (norm %.3g)", m, n,
              sqrt(dnorm), sqrt(gnorm));
    printf("%dx%d: loss %.6g (proxy %.6g hbd %.6g), FD worst rel err %.2e, fp32 grad rel diff %.2e\n", m, n, t0.loss,
           t0.proxy, t0.hbd, worst, sqrt(dnorm / gnorm));
    free(gU), free(gV), free(gU32), free(gV32), free(th), free(W), free(H);
    hf_ctx_destroy_f64(c);
    hf_ctx_destroy_f32(c32);
    harp_rot_destroy(U);
    harp_rot_destroy(V);
}

int main(void) {
    gcase cases[] = {
        {24, 40, {4, 6}, 2, {8, 5}, 2, 0, 0.0, 0.1, 8, HARP_CODEBOOK_E8P12},
        {16, 24, {2, 8}, 2, {2, 3, 4}, 3, 1, 0.7, 0.5, 8, HARP_CODEBOOK_E8P12_RVQ4B},
        {12, 20, {3, 4}, 2, {4, 5}, 2, 0, 0.0, 0.3, 8, HARP_CODEBOOK_E8P12_RVQ3B},
        {18, 11, {3, 6}, 2, {11}, 1, 0, 0.0, 1.0, 4, HARP_CODEBOOK_E8P12},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], 100 + i);
    return t_done();
}
