/* GPU HARP engine (hf_gpu_*) against the CPU fp32 engine hf_eval_f32 at awkward sizes, every
 * codebook, λ = 0 and 0.1, at random θ (not only θ = 0). Skipped (77) without -DHARP_CUDA=ON or
 * without a device. Tolerances:
 *   loss, proxy, hbd   rel. error ≤ 1e-5: both sides transform in fp32 with the same per-stage
 *                      formulas; only the order of fp32 rounding (FMA contraction on the GPU) and of
 *                      the double reductions differs, ~1e-7 relative per element;
 *   dθ (each side)     rel. L2 error ≤ 1e-4: the same fp32 differences, amplified in the backward
 *                      pass (products of upstream gradients and stage inputs, then a b×b solve);
 *   target             the GPU target must equal hf_quantize8_fast applied to the GPU's own W̃/s
 *                      exactly (same fp32 operations, no FMA). Against the CPU engine's own target a
 *                      vector can flip where W̃/s lies on a near-tie (the two engines' W̃ differ by
 *                      ~1e-7 relative). Such vectors are counted: a vector is a near-tie when moving
 *                      any one coordinate by ±1e-5·max|x| changes its codeword (this catches every
 *                      decision boundary within ~3.5e-6 relative, far wider than the engines'
 *                      difference). A flipped vector changes dθ by O(1/(mn)) of its codeword step,
 *                      so the 1e-4 gradient bound is enforced for the target of rounds with no
 *                      near-tie; rounds with near-ties are printed and held to 5e-2 (catches gross
 *                      errors only); the loss bound is enforced always (a flip at a tie barely
 *                      changes the loss);
 *   determinism        two evaluations bit-identical (loss and dθ);
 *   harp_fit 50 steps  loss0 within 1e-5; final loss within 1e-3 relative on 64×96 (2 bits), within
 *                      2e-2 on 96×172 (2 and 4 bits), both runs lowering the loss. Why not 1e-3
 *                      everywhere: the fit is chaotic at that level — one target flipping on a
 *                      near-tie in one step sends Adam on a different path. Measured on the CPU
 *                      engine alone, W moved by 1 ulp in every element changes the 50-step final
 *                      loss by 1.3e-2 (64×96, 2 bits), 3.6e-3 (96×172, 2 bits), 1.4e-2 (96×172, 4
 *                      bits); GPU vs CPU measured 2.2e-9, 9.1e-3, 6.5e-3 (H100, docs/gpu.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harpfit/hf_gpu.h"
#include "harpfit/hf_internal.h"
#include "harpfit_problem.h"
#include "test_util.h"

typedef struct gcase {
    int m, n;
    int su[4], nsu, sv[4], nsv; /* 0 stages: the default schedule (base_b = max_b = 8) */
} gcase;



/* θ += N(0, 0.05²): a "random update" away from the initial draw. */
static void perturb(harp_rot *r, harp_rng *g) {
    int64_t np = harp_rot_butterfly_num_params(r);
    double *th = malloc(sizeof(double) * (size_t)np);
    CHECK_OK(harp_rot_butterfly_get_theta(r, th));
    for (int64_t k = 0; k < np; k++) th[k] += 0.05 * harp_rng_normal(g);
    CHECK_OK(harp_rot_butterfly_set_theta(r, th));
    free(th);
}

static double rel_l2(const double *a, const double *b, int64_t n) {
    double d = 0, s = 0;
    for (int64_t k = 0; k < n; k++) d += (a[k] - b[k]) * (a[k] - b[k]), s += b[k] * b[k];
    return s > 0 ? sqrt(d / s) : sqrt(d);
}

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-300); }

static const char *cbname(harp_codebook cb) {
    return cb == HARP_CODEBOOK_E8P12 ? "E8P" : cb == HARP_CODEBOOK_E8P12_RVQ3B ? "RVQ3B" : "RVQ4B";
}

static int total_flips, total_ties;

static int same8(const double *a, const double *b, int len) {
    for (int k = 0; k < len; k++)
        if ((float)a[k] != (float)b[k]) return 0;
    return 1;
}

/* Vectors of W̃/s whose codeword changes when one coordinate moves by ±1e-5·max|x|. */
static int near_ties(harp_codebook cb, double resid, const float *wt, double s, int m, int n) {
    const int nb = (n + 7) / 8;
    int ties = 0;
    for (int i = 0; i < m; i++)
        for (int b = 0; b < nb; b++) {
            const int len = n - 8 * b < 8 ? n - 8 * b : 8;
            double x[8] = {0}, q[8], y[8], r[8], mx = 0;
            for (int k = 0; k < len; k++) x[k] = (double)(wt[i * n + 8 * b + k] / (float)s), mx = fmax(mx, fabs(x[k]));
            hf_quantize8_fast(cb, resid, x, q);
            int tie = 0;
            for (int k = 0; k < len && !tie; k++)
                for (int sg = -1; sg <= 1 && !tie; sg += 2) {
                    memcpy(y, x, sizeof y);
                    y[k] += sg * 1e-5 * fmax(mx, 1e-3);
                    hf_quantize8_fast(cb, resid, y, r);
                    tie = !same8(q, r, len);
                }
            ties += tie;
        }
    return ties;
}

static void compare(const gcase *gc, harp_codebook cb, double lambda, uint64_t seed) {
    const int m = gc->m, n = gc->n;
    float *W = malloc(sizeof(float) * (size_t)m * n);
    double *H = malloc(sizeof(double) * (size_t)n * n);
    hft_problem(m, n, seed, W, H);
    harp_rot *U = hft_rot(m, gc->su, gc->nsu, 0, 0, 0.15, seed + 1), *V = hft_rot(n, gc->sv, gc->nsv, 0, 0, 0.15, seed + 2);
    CHECK_MSG(U && V, "butterfly: %s", harp_last_error());
    harp_rng g;
    harp_rng_seed(&g, seed + 3);
    perturb(U, &g), perturb(V, &g);
    hf_opts o = {lambda, 8, cb, cb == HARP_CODEBOOK_E8P12 ? 0.9 : harp_codebook_opt_scale(cb),
                 harp_codebook_opt_resid_scale(cb), 0, NULL, NULL};
    hf_ctx_f32 *c = NULL;
    hf_gpu *gp = NULL;
    CHECK_OK(hf_ctx_create_f32(U, V, W, H, &o, &c));
    CHECK_OK(hf_gpu_create(U, V, W, H, &o, &gp));
    int64_t nu = harp_rot_butterfly_num_params(U), nv = harp_rot_butterfly_num_params(V);
    double *cu = calloc((size_t)nu, 8), *cv = calloc((size_t)nv, 8), *gu = calloc((size_t)nu, 8),
           *gv = calloc((size_t)nv, 8), *gu2 = calloc((size_t)nu, 8), *gv2 = calloc((size_t)nv, 8);
    float *wt = malloc(sizeof(float) * (size_t)m * n), *tg = malloc(sizeof(float) * (size_t)m * n);
    double worst_l = 0, worst_g = 0, worst_tie_g = 0;
    int flips = 0, ties = 0, tie_rounds = 0;
    for (int round = 0; round < 3; round++) {
        /* round 0: fresh target; 1: θ moved, cached target; 2: θ moved, fresh target */
        int refresh = round != 1;
        hf_terms tc, tgp, tg2;
        memset(cu, 0, (size_t)nu * 8), memset(cv, 0, (size_t)nv * 8);
        memset(gu, 0, (size_t)nu * 8), memset(gv, 0, (size_t)nv * 8);
        memset(gu2, 0, (size_t)nu * 8), memset(gv2, 0, (size_t)nv * 8);
        CHECK_OK(hf_eval_f32(c, refresh, &tc, cu, cv));
        CHECK_OK(hf_gpu_eval(gp, refresh, &tgp, gu, gv));
        if (refresh) {
            /* the target of the GPU equals the CPU fast encoder on the GPU's own W̃/s */
            double s;
            CHECK_OK(hf_gpu_debug(gp, wt, tg, &s));
            ties = near_ties(cb, o.resid, wt, s, m, n);
            total_ties += ties;
            const int nb = (n + 7) / 8;
            for (int i = 0; i < m; i++)
                for (int b = 0; b < nb; b++) {
                    double x[8] = {0}, q[8];
                    for (int k = 0; k < 8 && 8 * b + k < n; k++) x[k] = (double)(wt[i * n + 8 * b + k] / (float)s);
                    hf_quantize8_fast(cb, o.resid, x, q);
                    int diff = 0;
                    for (int k = 0; k < 8 && 8 * b + k < n; k++) diff |= (float)q[k] != tg[i * n + 8 * b + k];
                    flips += diff;
                }
        }
        /* determinism: a second identical evaluation (no refresh: same cached target) */
        if (round == 1) {
            CHECK_OK(hf_gpu_eval(gp, 0, &tg2, gu2, gv2));
            CHECK_MSG(memcmp(&tg2, &tgp, sizeof tg2) == 0 && memcmp(gu, gu2, (size_t)nu * 8) == 0 &&
                          memcmp(gv, gv2, (size_t)nv * 8) == 0,
                      "%dx%d %s: two GPU evaluations differ", m, n, cbname(cb));
        }
        double el = fmax(rel(tgp.loss, tc.loss), fmax(rel(tgp.proxy, tc.proxy), lambda > 0 ? rel(tgp.hbd, tc.hbd) : 0));
        double eg = fmax(rel_l2(gu, cu, nu), rel_l2(gv, cv, nv));
        worst_l = fmax(worst_l, el);
        if (ties) worst_tie_g = fmax(worst_tie_g, eg), tie_rounds++;
        else worst_g = fmax(worst_g, eg);
        CHECK_MSG(el <= 1e-5, "%dx%d %s λ=%g round %d: loss GPU %.9g CPU %.9g (proxy %.9g / %.9g, hbd %.9g / %.9g)", m, n,
                  cbname(cb), lambda, round, tgp.loss, tc.loss, tgp.proxy, tc.proxy, tgp.hbd, tc.hbd);
        CHECK_MSG(eg <= (ties ? 5e-2 : 1e-4), "%dx%d %s λ=%g round %d (%d near-tie vectors): dθ rel. L2 error U %.3g V %.3g",
                  m, n, cbname(cb), lambda, round, ties, rel_l2(gu, cu, nu), rel_l2(gv, cv, nv));
        perturb(U, &g), perturb(V, &g);
    }
    CHECK_MSG(flips == 0, "%dx%d %s: %d GPU target vectors differ from the CPU encoder on the same input", m, n,
              cbname(cb), flips);
    total_flips += flips;
    printf("%5dx%-5d %-5s λ=%-3g loss rel err %.2e  dθ rel L2 err %.2e (tie-free rounds)  target mismatches %d  "
           "near-tie rounds %d (dθ err %.2e)\n",
           m, n, cbname(cb), lambda, worst_l, worst_g, flips, tie_rounds, worst_tie_g);
    free(cu), free(cv), free(gu), free(gv), free(gu2), free(gv2), free(wt), free(tg), free(W), free(H);
    hf_ctx_destroy_f32(c);
    hf_gpu_destroy(gp);
    harp_rot_destroy(U);
    harp_rot_destroy(V);
}

static void fit_compare(int m, int n, int bits, uint64_t seed) {
    float *W = malloc(sizeof(float) * (size_t)m * n);
    double *H = malloc(sizeof(double) * (size_t)n * n);
    hft_problem(m, n, seed, W, H);
    harp_fit_params p = harp_fit_default_params(bits);
    p.steps = 50;
    harp_rot *U[2], *V[2];
    harp_fit_report r[2];
    for (int k = 0; k < 2; k++) {
        p.gpu = k;
        CHECK_OK(harp_fit(&p, m, n, W, H, seed, "fit", &U[k], &V[k], &r[k]));
    }
    double e0 = rel(r[1].loss0, r[0].loss0), ef = rel(r[1].loss_final, r[0].loss_final);
    const double tol = m == 64 ? 1e-3 : 2e-2;
    CHECK_MSG(e0 <= 1e-5 && ef <= tol, "%dx%d %d-bit 50-step fit: loss0 GPU %.9g CPU %.9g, final GPU %.9g CPU %.9g", m, n,
              bits, r[1].loss0, r[0].loss0, r[1].loss_final, r[0].loss_final);
    CHECK_MSG(r[0].loss_final < r[0].loss0 && r[1].loss_final < r[1].loss0, "%dx%d %d-bit fit did not lower the loss", m, n,
              bits);
    printf("fit %dx%d %d bits 50 steps: CPU %.6g -> %.6g (%.1f steps/s)  GPU %.6g -> %.6g (%.1f steps/s)  final rel diff %.2e\n",
           m, n, bits, r[0].loss0, r[0].loss_final, r[0].steps_per_s, r[1].loss0, r[1].loss_final, r[1].steps_per_s, ef);
    for (int k = 0; k < 2; k++) harp_rot_destroy(U[k]), harp_rot_destroy(V[k]);
    free(W), free(H);
}

int main(void) {
    if (!hf_gpu_available()) {
        printf("skipped: %s\n", harp_last_error());
        return 77;
    }
    /* the no-device error path is exercised by the stub build; here the device exists */
    const gcase small[] = {
        {24, 40, {4, 6}, 2, {8, 5}, 2},      /* generic-radix kernels (6, 5) */
        {96, 172, {0}, 0, {0}, 0},           /* 172 = 4·43: a 43-radix stage */
        {72, 120, {0}, 0, {0}, 0},           /* 72 = 8·9, 120 = 8·15 */
    };
    const harp_codebook cbs[] = {HARP_CODEBOOK_E8P12, HARP_CODEBOOK_E8P12_RVQ3B, HARP_CODEBOOK_E8P12_RVQ4B};
    uint64_t seed = 10;
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
        for (int c = 0; c < 3; c++)
            for (int l = 0; l < 2; l++) compare(&small[i], cbs[c], l ? 0.1 : 0.0, seed++);
    const gcase big[] = {{1024, 512, {0}, 0, {0}, 0}, {512, 1536, {0}, 0, {0}, 0}};
    compare(&big[0], HARP_CODEBOOK_E8P12, 0.1, seed++);
    compare(&big[0], HARP_CODEBOOK_E8P12_RVQ3B, 0.0, seed++);
    compare(&big[1], HARP_CODEBOOK_E8P12_RVQ4B, 0.1, seed++);
    printf("target mismatches in all cases: %d; near-tie vectors over all refreshes: %d\n", total_flips, total_ties);
    fit_compare(64, 96, 2, 40);
    fit_compare(96, 172, 2, 41);
    fit_compare(96, 172, 4, 41);
    return t_done();
}
