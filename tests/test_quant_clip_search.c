/* Clip-ratio search (src/quant/aq.h, algorithms.md §6.3, our schedule): synthetic losses with a known
 * optimum (smooth, kinked, monotone, flat, optimum outside the bracket), several classes searched in
 * order, warm-started passes, determinism, the evaluation count, error paths, and the real per-token
 * A4 / KV4 quantization error of heavy-tailed data against a dense scan of the ratio. */
#include "core/core.h"
#include "quant/aq.h"
#include "test_util.h"

typedef struct synth {
    int kind;          /* 0 quadratic, 1 |c − c*|, 2 decreasing, 3 flat, 4 pass-dependent */
    double opt[4];
    int64_t calls;
} synth;

static harp_status synth_loss(void *user, int pass, int cls, const double *c, double *loss) {
    synth *s = user;
    s->calls++;
    double v = 0;
    for (int k = 0; k <= cls; k++) {   /* classes after cls still hold their starting values */
        double o = s->opt[k] - (s->kind == 4 ? 0.05 * pass : 0);
        switch (s->kind) {
        case 0: case 4: v += (c[k] - o) * (c[k] - o); break;
        case 1: v += fabs(c[k] - o); break;
        case 2: v += 1 - c[k]; break;
        default: break;
        }
    }
    *loss = v;
    return HARP_OK;
}

static void test_synthetic(void) {
    harp_clip_search s = harp_clip_search_default(1);
    const double width = 0.5 * pow(2.0 / 3.0, 10);   /* final bracket of 10 ternary steps */
    static const double opts[] = {0.83, 0.5001, 0.9999, 0.71, 0.62};
    for (int kind = 0; kind <= 1; kind++)
        for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
            synth u = {kind, {opts[i]}, 0};
            double c = 1.0, loss = -1;
            int64_t ev = 0;
            CHECK_OK(harp_clip_search_run(&s, synth_loss, &u, &c, &loss, &ev));
            CHECK_MSG(fabs(c - opts[i]) <= width, "kind %d: optimum %.4f found %.6f", kind, opts[i], c);
            CHECK(ev == u.calls && ev == 1 + 2 * 10 + 1);   /* start (= hi), 10 pairs, the midpoint */
        }
    /* monotone decreasing: no clipping; flat: ties keep the largest ratio; optimum below the bracket: lo side */
    synth d = {2, {0}, 0}, f = {3, {0}, 0}, lo = {0, {0.3}, 0};
    double c = 1.0;
    CHECK_OK(harp_clip_search_run(&s, synth_loss, &d, &c, NULL, NULL));
    CHECK(c == 1.0);
    c = 0.8;
    CHECK_OK(harp_clip_search_run(&s, synth_loss, &f, &c, NULL, NULL));
    CHECK(c == 1.0);
    c = 1.0;
    CHECK_OK(harp_clip_search_run(&s, synth_loss, &lo, &c, NULL, NULL));
    CHECK_MSG(c >= 0.5 && c <= 0.5 + width, "optimum below the bracket: %.6f", c);
}

static void test_classes_and_passes(void) {
    harp_clip_search s = harp_clip_search_default(4);
    synth u = {0, {0.95, 0.6, 0.77, 0.88}, 0};
    double c[4] = {1, 1, 1, 1}, loss[4];
    int64_t ev = 0;
    CHECK_OK(harp_clip_search_run(&s, synth_loss, &u, c, loss, &ev));
    for (int k = 0; k < 4; k++) CHECK_MSG(fabs(c[k] - u.opt[k]) < 0.01, "class %d: %.5f vs %.5f", k, c[k], u.opt[k]);
    CHECK(ev == 4 * 22);
    /* the second pass restarts in [c − warm, c + warm] and follows the pass-dependent optimum */
    s.passes = 2;
    synth p = {4, {0.9, 0.7, 0.8, 0.95}, 0};
    double c2[4] = {1, 1, 1, 1}, again[4] = {1, 1, 1, 1};
    CHECK_OK(harp_clip_search_run(&s, synth_loss, &p, c2, NULL, NULL));
    for (int k = 0; k < 4; k++) CHECK_MSG(fabs(c2[k] - (p.opt[k] - 0.05)) < 0.2 * pow(2.0 / 3.0, 10) + 1e-12, "pass 2 class %d: %.6f", k, c2[k]);
    /* deterministic */
    CHECK_OK(harp_clip_search_run(&s, synth_loss, &p, again, NULL, NULL));
    CHECK(!memcmp(c2, again, sizeof c2));
}

static int n_fail_calls;
static harp_status failing_loss(void *user, int pass, int cls, const double *c, double *loss) {
    HARP_UNUSED(user), HARP_UNUSED(pass), HARP_UNUSED(cls);
    if (++n_fail_calls == 3) return HARP_ERR_OOM;
    *loss = c[0] > 0.7 ? NAN : c[0];
    return HARP_OK;
}

static void test_errors(void) {
    harp_set_log_level(HARP_LOG_NONE);
    harp_clip_search s = harp_clip_search_default(1);
    double c = 0.6;
    n_fail_calls = 0;
    CHECK(harp_clip_search_run(&s, failing_loss, NULL, &c, NULL, NULL) == HARP_ERR_NUMERIC);  /* NaN at hi = 1 */
    c = 0.6, n_fail_calls = 1;
    s.hi = 0.7;
    CHECK(harp_clip_search_run(&s, failing_loss, NULL, &c, NULL, NULL) == HARP_ERR_OOM);      /* the callback's error */
    synth u = {0, {0.8}, 0};
    harp_clip_search bad = harp_clip_search_default(1);
    bad.lo = 0;
    CHECK(harp_clip_search_run(&bad, synth_loss, &u, &c, NULL, NULL) == HARP_ERR_INVALID_ARG);
    bad = harp_clip_search_default(1);
    c = 1.5;
    CHECK(harp_clip_search_run(&bad, synth_loss, &u, &c, NULL, NULL) == HARP_ERR_INVALID_ARG);
    harp_clear_error();
    harp_set_log_level(HARP_LOG_WARN);
}

/* Real quantization error: per-token activations (A4 asymmetric) or per-head K (KV4, group 32) of
 * Student-t(3) data; loss = mean squared fake-quantization error with the candidate clip ratio. */
typedef struct real_ctx {
    const float *X;
    float *work;
    int64_t rows, n;
    harp_aq_fmt f;
} real_ctx;

static harp_status real_loss(void *user, int pass, int cls, const double *c, double *loss) {
    HARP_UNUSED(pass);
    real_ctx *r = user;
    harp_aq_fmt f = r->f;
    f.clip = (float)c[cls];
    memcpy(r->work, r->X, (size_t)(r->rows * r->n) * sizeof(float));
    HARP_TRY(harp_aq_fake(&f, r->work, r->rows, r->n, 0));
    double e = 0;
    for (int64_t i = 0; i < r->rows * r->n; i++) e += ((double)r->work[i] - r->X[i]) * ((double)r->work[i] - r->X[i]);
    *loss = e / (double)(r->rows * r->n);
    return HARP_OK;
}

static void test_real(void) {
    const int64_t rows = 64, n = 256;
    float *X = malloc((size_t)(rows * n) * sizeof *X), *W = malloc((size_t)(rows * n) * sizeof *W);
    harp_rng g;
    harp_rng_seed(&g, 2024);
    for (int64_t i = 0; i < rows * n; i++) {   /* Student-t with 3 degrees of freedom */
        double z = harp_rng_normal(&g), chi = 0;
        for (int k = 0; k < 3; k++) {
            double u = harp_rng_normal(&g);
            chi += u * u;
        }
        X[i] = (float)(z / sqrt(chi / 3));
    }
    static const harp_aq_fmt fmts[] = {{4, 0, 0, 1.0f, 0}, {4, 0, 32, 1.0f, 1}, {3, 1, 0, 1.0f, 0}};
    /* clipping pays off more on long rows and at fewer bits (measured: 0.90, 0.99, 0.64 of the no-clip MSE) */
    static const double gain[] = {0.95, 1.0, 0.7};
    for (size_t k = 0; k < sizeof fmts / sizeof fmts[0]; k++) {
        real_ctx r = {X, W, rows, n, fmts[k]};
        double best = INFINITY, best_c = 1, at1 = 0, c = 1.0, found = 0;
        for (int i = 0; i <= 500; i++) {   /* dense scan of [0.5, 1] */
            double ci = 0.5 + i * 0.001, v = 0;
            CHECK_OK(real_loss(&r, 0, 0, &ci, &v));
            if (v < best) best = v, best_c = ci;
            if (i == 500) at1 = v;
        }
        harp_clip_search s = harp_clip_search_default(1);
        CHECK_OK(harp_clip_search_run(&s, real_loss, &r, &c, &found, NULL));
        printf("bits %d sym %d group %lld: scan optimum %.3f (mse %.5g), search %.4f (mse %.5g), no clip %.5g\n",
               fmts[k].bits, fmts[k].sym, (long long)fmts[k].group, best_c, best, c, found, at1);
        CHECK_MSG(found <= best * 1.02, "search loss %.6g vs scan optimum %.6g", found, best);
        CHECK_MSG(found < gain[k] * at1, "clipping should pay off on heavy tails: %.6g vs %.6g", found, at1);
    }
    free(X), free(W);
}

int main(void) {
    test_synthetic();
    test_classes_and_passes();
    test_errors();
    test_real();
    return t_done();
}
