/* Acceptance 2: HARP butterfly. θ = 0 and n = 2^k gives natural-order Sylvester H/√n (the fixed
 * permutation is the identity); orthogonal for any n; inverse; optimised == _ref bit-exactly; the
 * hand-written backward matches central finite differences in fp64 (Cayley and Givens). The same for
 * schedule hadamard (issue 18: fixed Had_K stage, then learned stages), plus its schedules. */
#include <string.h>

#include "rot_test_util.h"
#include "rotate/rot_internal.h"
#include "test_util.h"

static int g_schedule = HARP_BF_SCHEDULE_GREEDY;   /* schedule of every make() */

static harp_rot *make(int64_t n, const int *stages, int ns, int passes, int givens, double clip, double init, uint64_t seed) {
    harp_rot *r = rt_butterfly(n, stages, ns, g_schedule, passes, givens, clip, init, seed);
    CHECK_MSG(r != NULL, "butterfly n=%lld: %s", (long long)n, harp_last_error());
    return r;
}

static void test_schedule(void) {
    static const struct {
        int64_t n;
        int s[8];
    } sch[] = {{4096, {8, 8, 8, 8}}, {11008, {8, 8, 4, 43}}, {14336, {8, 8, 8, 7, 4}}, {5120, {8, 8, 8, 5, 2}},
               {13824, {8, 8, 8, 3, 3, 3}}, {18944, {8, 8, 8, 37}}, {5632, {8, 8, 8, 11}}, {48, {8, 6}},
               {1376, {8, 4, 43}}, {1536, {8, 8, 8, 3}}, {57344, {8, 8, 8, 8, 7, 2}}, {172, {4, 43}}};
    for (size_t i = 0; i < sizeof sch / sizeof sch[0]; i++) {
        harp_rot *r = make(sch[i].n, NULL, 0, 1, 0, 0, 0, 1);
        if (!r) continue;
        const int *st;
        int T = harp_rot_butterfly_stages(r, &st), ok = 1, k = 0;
        for (; k < 8 && sch[i].s[k]; k++) ok &= k < T && st[k] == sch[i].s[k];
        CHECK_MSG(ok && T == k, "n=%lld: greedy(8,8) schedule differs from §4.2/§3.6", (long long)sch[i].n);
        harp_rot_destroy(r);
    }
    harp_rot_params p;
    harp_rot_params_default(&p);
    p.n_stages = 2, p.stages[0] = 8, p.stages[1] = 5;
    harp_rot *r = NULL;
    CHECK(harp_rot_create(HARP_ROT_BUTTERFLY, 48, &p, 0, &r) == HARP_ERR_INVALID_ARG);
}

/* schedule hadamard: the greedy radices behind the fixed Had_K stage of the RHT (issue 18's widths) */
static void test_schedule_hadamard(void) {
    static const struct {
        int64_t n;
        int K, s[8];
    } sch[] = {{1536, 12, {8, 8, 8, 3}}, {11008, 172, {8, 8, 4, 43}}, {14336, 28, {8, 8, 8, 7, 4}}, {4864, 76, {8, 8, 4, 19}},
               {1728, 108, {8, 8, 3, 3, 3}}, {172, 172, {4, 43}},    {344, 172, {8, 43}},             {4096, 0, {8, 8, 8, 8}}};
    harp_rot_params p;
    for (size_t i = 0; i < sizeof sch / sizeof sch[0]; i++) {
        harp_rot_params_default(&p);
        p.schedule = HARP_BF_SCHEDULE_HADAMARD;
        harp_rot *r = NULL;
        CHECK_OK(harp_rot_create(HARP_ROT_BUTTERFLY, sch[i].n, &p, 1, &r));
        if (!r) continue;
        const int *st;
        int T = harp_rot_butterfly_stages(r, &st), ok = 1, k = 0;
        for (; k < 8 && sch[i].s[k]; k++) ok &= k < T && st[k] == sch[i].s[k];
        CHECK_MSG(ok && T == k && harp_rot_butterfly_fixed_k(r) == sch[i].K, "n=%lld: hadamard schedule K %d, [%d,%d,...]",
                  (long long)sch[i].n, harp_rot_butterfly_fixed_k(r), T > 0 ? st[0] : 0, T > 1 ? st[1] : 0);
        harp_rot_destroy(r);
    }
    /* a stage that straddles the chunk length (48 = 12·4) must split there into a power of two below it:
     * [8, 6] (8 = 4 inside × 2 outside) and [2, 24] are fine, [3, 16] is not */
    static const int ok1[] = {8, 6}, ok2[] = {2, 24}, bad[] = {3, 16};
    const int *lists[3] = {ok1, ok2, bad};
    for (int k = 0; k < 3; k++) {
        harp_rot_params_default(&p);
        p.schedule = HARP_BF_SCHEDULE_HADAMARD;
        p.n_stages = 2, p.stages[0] = lists[k][0], p.stages[1] = lists[k][1];
        harp_rot *r = NULL;
        harp_status st = harp_rot_create(HARP_ROT_BUTTERFLY, 48, &p, 0, &r);
        if (k < 2) CHECK_OK(st);
        else CHECK(st == HARP_ERR_INVALID_ARG && strstr(harp_last_error(), "does not split"));
        harp_rot_destroy(r);
    }
    /* a width without a Hadamard order has no hadamard schedule */
    harp_rot_params_default(&p);
    p.schedule = HARP_BF_SCHEDULE_HADAMARD;
    harp_rot *r = NULL;
    CHECK(harp_rot_create(HARP_ROT_BUTTERFLY, 14, &p, 0, &r) == HARP_ERR_UNSUPPORTED && r == NULL);
}

static void test_sylvester(void) {
    static const int64_t ns[] = {8, 64, 512, 2048};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        int64_t n = ns[k];
        harp_rot *r = make(n, NULL, 0, 1, 0, 0, 0, 3);
        if (!r) continue;
        double *R = malloc((size_t)n * (size_t)n * sizeof(double));
        CHECK_OK(harp_rot_materialize(r, R));
        double e = 0, e32 = 0;
        double *F = rt_materialize_f32(r);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) {
                double want = ((__builtin_popcountll((unsigned long long)(i & j)) & 1) ? -1.0 : 1.0) / sqrt((double)n);
                e = fmax(e, fabs(R[i * n + j] - want));
                e32 = fmax(e32, fabs(F[i * n + j] - want));
            }
        /* identity permutation: R[i][j] = (−1)^popcount(i&j)/√n, up to fp rounding of products of 1/√b */
        CHECK_MSG(e <= 1e-15, "n=%lld: θ=0 butterfly differs from Sylvester H/√n by %.3g (fp64)", (long long)n, e);
        CHECK_MSG(e32 <= 1e-7, "n=%lld: θ=0 butterfly differs from Sylvester H/√n by %.3g (fp32)", (long long)n, e32);
        free(R);
        free(F);
        harp_rot_destroy(r);
    }
}

static void test_orthogonal(void) {
    static const struct {
        int64_t n;
        int s[6], ns, passes, givens;
    } cfg[] = {{48, {0}, 0, 1, 0},           {172, {4, 43}, 2, 1, 0}, {288, {0}, 0, 2, 0}, {1536, {8, 8, 8, 3}, 4, 1, 0},
               {1600, {0}, 0, 1, 0},         {96, {2, 8, 2, 3}, 4, 1, 1}, {4096, {0}, 0, 1, 0}, {11008, {0}, 0, 1, 0},
               {1042, {2, 521}, 2, 1, 0} /* radix above the tile kernel's fusion limit (512) */};
    /* schedule hadamard (fixed Had_K stage first): default and explicit stages, passes, Givens */
    static const struct {
        int64_t n;
        int s[6], ns, passes, givens;
    } cfh[] = {{48, {0}, 0, 1, 0},    {172, {0}, 0, 2, 0},    {288, {0}, 0, 1, 0},   {1536, {0}, 0, 1, 0},
               {1600, {0}, 0, 1, 0},  {96, {2, 8, 2, 3}, 4, 1, 1}, {1728, {0}, 0, 1, 0}, {11008, {0}, 0, 1, 0},
               {4864, {0}, 0, 1, 0}};
    const int had = g_schedule == HARP_BF_SCHEDULE_HADAMARD;
    const size_t ncfg = had ? sizeof cfh / sizeof cfh[0] : sizeof cfg / sizeof cfg[0];
    for (size_t k = 0; k < ncfg; k++) {
        int64_t n = had ? cfh[k].n : cfg[k].n;
        harp_rot *r = had ? make(n, cfh[k].s, cfh[k].ns, cfh[k].passes, cfh[k].givens, 0, 0.3, 11 + k)
                          : make(n, cfg[k].s, cfg[k].ns, cfg[k].passes, cfg[k].givens, 0, 0.3, 11 + k);
        if (!r) continue;
        if (n <= 1600 && n != 1042) {   /* dense R·Rᵀ; the rest rely on the row checks below */
            double *R = rt_materialize_f32(r);
            double e = rt_orth_err(R, n);
            CHECK_MSG(e <= 1e-5, "butterfly n=%lld: fp32 max|RRᵀ−I| = %.3g", (long long)n, e);
            free(R);
            R = malloc((size_t)n * (size_t)n * sizeof(double));
            CHECK_OK(harp_rot_materialize(r, R));
            e = rt_orth_err(R, n);
            CHECK_MSG(e <= 1e-12, "butterfly n=%lld: fp64 max|RRᵀ−I| = %.3g", (long long)n, e);
            free(R);
        }
        /* inverse(forward(x)) and norm preservation on random rows (all sizes; the only check for large n) */
        enum { V = 19 };   /* two 8-row tiles (tile kernel) and 3 rows through the row kernel */
        size_t tot = (size_t)V * (size_t)n;
        float *x = malloc(tot * sizeof(float)), *y = malloc(tot * sizeof(float)), *z = malloc(tot * sizeof(float));
        rt_fill_normal(x, tot, 5 + (uint64_t)n);
        memcpy(y, x, tot * sizeof(float));
        CHECK_OK(harp_rot_apply(r, y, V, n, 0));
        double nx = 0, ny = 0;
        for (size_t i = 0; i < tot; i++) nx += (double)x[i] * x[i], ny += (double)y[i] * y[i];
        CHECK_MSG(fabs(sqrt(ny / nx) - 1) <= 1e-6, "butterfly n=%lld: norm ratio %.9f", (long long)n, sqrt(ny / nx));
        memcpy(z, y, tot * sizeof(float));
        CHECK_OK(harp_rot_apply(r, z, V, n, 1));
        double ie = rt_rel_err(z, x, tot);
        CHECK_MSG(ie <= 1e-6, "butterfly n=%lld: inverse(forward(x)) rel err %.3g", (long long)n, ie);
        /* optimised vs _ref: identical bits, both directions, fp32 and fp64 */
        for (int tr = 0; tr < 2; tr++) {
            int bad = rt_apply_vs_ref(r, x, V, tr);
            CHECK_MSG(!(bad & 1), "butterfly n=%lld tr=%d: fp32 optimised != ref", (long long)n, tr);
            CHECK_MSG(!(bad & 2), "butterfly n=%lld tr=%d: fp64 optimised != ref", (long long)n, tr);
        }
        free(x), free(y), free(z);
        harp_rot_destroy(r);
    }
}

/* L = Σ C⊙Y + ½ΣY² with Y = X·R, so dL/dY = C + Y. The central difference is formed as
 * Σ (Y₊ − Y₋)⊙(C + ½(Y₊ + Y₋)) = L₊ − L₋ exactly in real arithmetic, without cancelling two large sums. */
static double loss_diff(const harp_rot *r, const double *Xp, const double *Xm, const double *C, int64_t rows, double *Yp,
                        double *Ym) {
    int64_t n = harp_rot_dim(r);
    harp_rot_butterfly_forward_batch(r, Xp, rows, Yp, NULL);
    harp_rot_butterfly_forward_batch(r, Xm, rows, Ym, NULL);
    double d = 0;
    for (int64_t i = 0; i < rows * n; i++) d += (Yp[i] - Ym[i]) * (C[i] + 0.5 * (Yp[i] + Ym[i]));
    return d;
}

static void gradcheck(int64_t n, const int *stages, int ns, int passes, int givens, double clip) {
    harp_rot *r = make(n, stages, ns, passes, givens, clip, 0.3, 1234 + (uint64_t)n);
    if (!r) return;
    const int64_t rows = 3;
    int64_t np = harp_rot_butterfly_num_params(r);
    size_t tot = (size_t)rows * (size_t)n;
    double *X = malloc(tot * sizeof(double)), *C = malloc(tot * sizeof(double)), *Y = malloc(tot * sizeof(double));
    double *dY = malloc(tot * sizeof(double)), *dX = malloc(tot * sizeof(double));
    double *Yp = malloc(tot * sizeof(double)), *Xm = malloc(tot * sizeof(double));
    double *th = malloc((size_t)np * sizeof(double)), *dth = calloc((size_t)np, sizeof(double));
    rt_fill_normal_f64(X, tot, 1);
    rt_fill_normal_f64(C, tot, 2);
    harp_rot_cache *cache = harp_rot_cache_create();
    CHECK_OK(harp_rot_butterfly_forward_batch(r, X, rows, Y, cache));
    for (size_t i = 0; i < tot; i++) dY[i] = C[i] + Y[i];
    CHECK_OK(harp_rot_butterfly_backward(r, cache, dY, dX, dth));
    CHECK_OK(harp_rot_butterfly_get_theta(r, th));
    /* central differences, step 1e−6, on a spread of θ entries (every stage is hit) and of X entries */
    const double h = 1e-6;
    double num = 0, den = 0;
    int64_t stride = np / 40 > 0 ? np / 40 : 1;
    for (int64_t k = 0; k < np; k += stride) {
        double t0 = th[k];
        th[k] = t0 + h;
        harp_rot_butterfly_set_theta(r, th);
        harp_rot_butterfly_forward_batch(r, X, rows, Yp, NULL);
        th[k] = t0 - h;
        harp_rot_butterfly_set_theta(r, th);
        harp_rot_butterfly_forward_batch(r, X, rows, Y, NULL);
        th[k] = t0;
        double dl = 0;
        for (size_t i = 0; i < tot; i++) dl += (Yp[i] - Y[i]) * (C[i] + 0.5 * (Yp[i] + Y[i]));
        double fd = dl / (2 * h);
        num += (fd - dth[k]) * (fd - dth[k]);
        den += fd * fd;
    }
    harp_rot_butterfly_set_theta(r, th);
    double relt = sqrt(num / den);
    num = den = 0;
    for (size_t i = 0; i < tot; i += tot / 17 + 1) {
        double x0 = X[i];
        memcpy(Xm, X, tot * sizeof(double));
        X[i] = x0 + h;
        Xm[i] = x0 - h;
        double fd = loss_diff(r, X, Xm, C, rows, Yp, Y) / (2 * h);
        X[i] = x0;
        num += (fd - dX[i]) * (fd - dX[i]);
        den += fd * fd;
    }
    double relx = sqrt(num / den);
    CHECK_MSG(relt <= 1e-6, "gradcheck n=%lld givens=%d clip=%g passes=%d: dθ rel err %.3g", (long long)n, givens, clip, passes, relt);
    CHECK_MSG(relx <= 1e-6, "gradcheck n=%lld: dX rel err %.3g", (long long)n, relx);
    printf("gradcheck n=%lld stages=%d passes=%d givens=%d clip=%g: dθ rel %.2e, dX rel %.2e (%lld params)\n", (long long)n, ns,
           passes, givens, clip, relt, relx, (long long)np);
    /* f32 API gives the same gradient (computed in fp64 internally) */
    float *Xf = malloc(tot * sizeof(float)), *Yf = malloc(tot * sizeof(float)), *dYf = malloc(tot * sizeof(float));
    double *dth2 = calloc((size_t)np, sizeof(double));
    for (size_t i = 0; i < tot; i++) Xf[i] = (float)X[i], dYf[i] = (float)dY[i];
    CHECK_OK(harp_rot_butterfly_forward_batch_f32(r, Xf, rows, Yf, cache));
    CHECK_OK(harp_rot_butterfly_backward_f32(r, cache, dYf, Yf, dth2));
    double md = 0, mx = 0;
    for (int64_t k = 0; k < np; k++) md = fmax(md, fabs(dth2[k] - dth[k])), mx = fmax(mx, fabs(dth[k]));
    CHECK_MSG(md <= 1e-5 * (mx + 1), "f32 backward differs from fp64 by %.3g", md);
    harp_rot_cache_destroy(cache);
    free(X), free(C), free(Y), free(dY), free(dX), free(th), free(dth), free(Xf), free(Yf), free(dYf), free(dth2), free(Yp), free(Xm);
    harp_rot_destroy(r);
}

/* The fp64 blocks are made on first fp64 use (a model that only runs holds fp32 ones): made before a
 * θ change and kept current, or made after it, from several threads at once, they give the same bits. */
static void test_f64_on_demand(void) {
    const int64_t n = 1536, rows = 4;
    harp_rot *a = make(n, NULL, 0, 2, 0, 0, 0.3, 99), *b = make(n, NULL, 0, 2, 0, 0, 0.3, 99);
    if (!a || !b) return;
    const int64_t np = harp_rot_butterfly_num_params(a);
    double *th = malloc((size_t)np * sizeof(double)), *X = malloc((size_t)(rows * n) * sizeof(double));
    double *Ya = malloc((size_t)(rows * n) * sizeof(double)), *Yb = malloc((size_t)(8 * rows * n) * sizeof(double));
    rt_fill_normal_f64(th, (size_t)np, 7);
    for (int64_t i = 0; i < np; i++) th[i] *= 0.2;
    rt_fill_normal_f64(X, (size_t)(rows * n), 8);
    float *xf = malloc((size_t)(rows * n) * sizeof(float));
    for (int64_t i = 0; i < rows * n; i++) xf[i] = (float)X[i];
    CHECK_OK(harp_rot_apply(a, xf, rows, n, 0));
    CHECK_MSG(!a->has_f64 && !a->kd_fwd[0] && !a->kd_can[0], "butterfly: fp64 blocks made by an fp32 apply");
    free(xf);
    memcpy(Ya, X, (size_t)(rows * n) * sizeof(double));
    CHECK_OK(harp_rot_apply_f64(a, Ya, rows, n, 0));   /* a: fp64 blocks now, refreshed by the θ change */
    CHECK_MSG(a->has_f64 && a->kd_fwd[a->P * a->T - 1], "butterfly: no fp64 blocks after an fp64 apply");
    CHECK_OK(harp_rot_butterfly_set_theta(a, th));
    CHECK_OK(harp_rot_butterfly_set_theta(b, th));      /* b: none yet */
    memcpy(Ya, X, (size_t)(rows * n) * sizeof(double));
    CHECK_OK(harp_rot_apply_f64(a, Ya, rows, n, 1));
    int bad = 0;
#pragma omp parallel for num_threads(8) reduction(| : bad)
    for (int k = 0; k < 8; k++) {
        double *y = Yb + (size_t)k * rows * n;
        memcpy(y, X, (size_t)(rows * n) * sizeof(double));
        bad |= harp_rot_apply_f64(b, y, rows, n, 1) != HARP_OK;
        bad |= memcmp(y, Ya, (size_t)(rows * n) * sizeof(double)) != 0;
    }
    CHECK_MSG(!bad, "butterfly fp64 blocks made on first use differ from blocks kept current");
    /* once θ has codes the fp64 θ is not kept; reading and changing θ still work */
    CHECK_OK(harp_rot_butterfly_round_theta(b, HARP_THETA_INT8));
    CHECK_MSG(b->theta == NULL && b->theta_q, "butterfly: fp64 theta kept beside its int8 codes");
    CHECK_OK(harp_rot_butterfly_get_theta(b, th));
    CHECK_OK(harp_rot_butterfly_set_theta(b, th));
    CHECK_MSG(b->theta != NULL && b->theta_enc == HARP_THETA_F64, "butterfly: set_theta after the codes left no fp64 theta");
    free(th), free(X), free(Ya), free(Yb);
    harp_rot_destroy(a);
    harp_rot_destroy(b);
}

int main(void) {
    harp_set_log_level(HARP_LOG_NONE);   /* expected errors are checked through harp_last_error() */
    test_schedule();
    test_sylvester();
    test_orthogonal();
    static const int s172[] = {4, 43}, s1536[] = {8, 8, 8, 3}, s48[] = {2, 8, 3}, s16[] = {2, 2, 2, 2}, s64[] = {8, 8};
    gradcheck(172, s172, 2, 1, 0, 0);
    gradcheck(1536, s1536, 4, 1, 0, 0);
    gradcheck(48, s48, 3, 1, 1, 0);     /* Givens parameterisation on the b = 2 stage */
    gradcheck(16, s16, 4, 2, 1, 1.5);   /* all-Givens, two passes, tanh clip */
    gradcheck(64, s64, 2, 2, 0, 0.8);   /* Cayley with clip, two passes */
    gradcheck(48, s48, 3, 1, 0, 0);     /* Cayley on the b = 2 stage */
    /* schedule hadamard: the fixed Had_K stage in front (dX goes through its transpose) */
    g_schedule = HARP_BF_SCHEDULE_HADAMARD;
    test_schedule_hadamard();
    test_orthogonal();
    test_f64_on_demand();
    static const int h48[] = {2, 2, 4, 3};
    gradcheck(172, NULL, 0, 1, 0, 0);
    gradcheck(1536, NULL, 0, 2, 0, 0);
    gradcheck(48, h48, 4, 1, 1, 0.9);   /* Givens b = 2 stages inside the chunk, clip */
    return t_done();
}
