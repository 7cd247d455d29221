/* MSE-clipped weight grid (src/quant/aq.h, QuaRot/GPTQ `--w_clip`, algorithms.md §6.1): RTN through the
 * fitter hook equals harp_quantize_linear's RTN bit for bit with the min/max fitter; with the MSE fitter
 * every group's Σ|ŵ − w|^2.4 is the minimum over the shrink grid (checked against a plain fp64 scan)
 * and never above min/max; on heavy-tailed rows the squared error drops; thread count does not matter. */
#include <omp.h>

#include "core/core.h"
#include "quant/aq.h"
#include "test_util.h"

static void fill_t(float *W, int64_t count, uint64_t seed) {
    harp_rng g;
    harp_rng_seed(&g, seed);
    for (int64_t i = 0; i < count; i++) {   /* Student-t(4): weight-like heavy tails */
        double z = harp_rng_normal(&g), chi = 0;
        for (int k = 0; k < 4; k++) {
            double u = harp_rng_normal(&g);
            chi += u * u;
        }
        W[i] = (float)(0.02 * z / sqrt(chi / 4));
    }
}

static double dequant(const harp_qlinear *q, int64_t r, int64_t c) {
    int64_t k = r * q->n_groups + c / q->group_size;
    return (double)q->scale[k] * (q->q[r * q->n + c] - q->zero[k]);
}

/* Σ |ŵ − w|^2.4 of one group on grid (s, z), fp64 throughout (the twin of the fitter's search). */
static double err_at(const float *w, int64_t len, int bits, int sym, double s, int z) {
    int lo = sym ? -(1 << (bits - 1)) : 0, hi = sym ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
    double e = 0;
    for (int64_t i = 0; i < len; i++) {
        double q = nearbyint(w[i] / s) + (sym ? 0 : z);
        q = q < lo ? lo : q > hi ? hi : q;
        e += pow(fabs(s * (q - (sym ? 0 : z)) - w[i]), 2.4);
    }
    return e;
}

static double scan_best(const float *w, int64_t len, int bits, int sym) {
    double xmin = 0, xmax = 0, best = INFINITY;
    for (int64_t i = 0; i < len; i++) xmin = fmin(xmin, w[i]), xmax = fmax(xmax, w[i]);
    int maxq = sym ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
    if (sym) xmax = fmax(fmax(-xmin, xmax), 1e-5);
    for (int i = 0; i < 80; i++) {
        double p = 1 - i / 100.0, s = sym ? p * xmax / maxq : p * (xmax - xmin) / maxq;
        int z = sym ? 0 : (int)nearbyint(-p * xmin / s);
        best = fmin(best, err_at(w, len, bits, sym, s, z));
    }
    return best;
}

static void check_case(int bits, int sym, int group, int64_t m, int64_t n, uint64_t seed) {
    float *W = malloc((size_t)(m * n) * sizeof *W);
    fill_t(W, m * n, seed);
    harp_quant_params p = harp_quant_default_params(HARP_QMETHOD_RTN, bits);
    p.group_size = group;
    p.symmetric = sym;
    harp_qlinear a = {0}, b = {0}, c = {0};
    CHECK_OK(harp_quantize_linear(&p, m, n, W, NULL, "rtn", &a));
    CHECK_OK(harp_wq_rtn(&p, harp_wq_fit_minmax, NULL, m, n, W, "rtn hook", &b));
    const harp_wclip wc = harp_wclip_default();
    CHECK_OK(harp_wq_rtn(&p, harp_wq_fit_mse, &wc, m, n, W, "rtn mse", &c));
    if (!a.q || !b.q || !c.q) return;
    CHECK(!memcmp(a.q, b.q, (size_t)(m * n)) && !memcmp(a.scale, b.scale, (size_t)(m * a.n_groups) * 4) &&
          !memcmp(a.zero, b.zero, (size_t)(m * a.n_groups)));
    int64_t g = c.group_size, worse = 0, off_opt = 0;
    double l2a = 0, l2c = 0;
    for (int64_t r = 0; r < m; r++) {
        for (int64_t G = 0; G < c.n_groups; G++) {
            int64_t c0 = G * g, len = n - c0 < g ? n - c0 : g;
            const float *w = W + r * n + c0;
            int64_t k = r * c.n_groups + G;
            int zc = sym ? 0 : c.zero[k], za = sym ? 0 : a.zero[k];
            double ec = err_at(w, len, bits, sym, c.scale[k], zc), ea = err_at(w, len, bits, sym, a.scale[k], za);
            worse += ec > ea * (1 + 1e-6);
            off_opt += ec > scan_best(w, len, bits, sym) * (1 + 1e-4);
        }
        for (int64_t i = 0; i < n; i++) {
            double da = dequant(&a, r, i) - W[r * n + i], dc = dequant(&c, r, i) - W[r * n + i];
            l2a += da * da, l2c += dc * dc;
        }
    }
    CHECK_MSG(worse == 0, "bits %d sym %d g %d: %lld groups worse than min/max", bits, sym, group, (long long)worse);
    CHECK_MSG(off_opt == 0, "bits %d sym %d g %d: %lld groups off the grid optimum", bits, sym, group, (long long)off_opt);
    CHECK_MSG(l2c < l2a, "bits %d sym %d g %d: MSE clip L2 %.6g vs min/max %.6g", bits, sym, group, l2c, l2a);
    printf("bits %d %s group %4d: L2 error min/max %.5g, mse clip %.5g (%.1f%%)\n", bits, sym ? "sym " : "asym", group,
           l2a, l2c, 100 * (l2c / l2a - 1));
    harp_qlinear_free(&a), harp_qlinear_free(&b), harp_qlinear_free(&c);
    free(W);
}

static void test_threads(void) {
    const int64_t m = 64, n = 300;
    float *W = malloc((size_t)(m * n) * sizeof *W);
    fill_t(W, m * n, 77);
    harp_quant_params p = harp_quant_default_params(HARP_QMETHOD_RTN, 3);
    harp_qlinear a = {0}, b = {0};
    int prev = omp_get_max_threads();
    omp_set_num_threads(1);
    CHECK_OK(harp_wq_rtn(&p, harp_wq_fit_mse, NULL, m, n, W, "t1", &a));
    omp_set_num_threads(2);
    CHECK_OK(harp_wq_rtn(&p, harp_wq_fit_mse, NULL, m, n, W, "t2", &b));
    omp_set_num_threads(prev);
    CHECK(a.q && b.q && !memcmp(a.q, b.q, (size_t)(m * n)) && !memcmp(a.scale, b.scale, (size_t)(m * a.n_groups) * 4));
    harp_qlinear_free(&a), harp_qlinear_free(&b);
    /* refusals come from harp_quantize_linear: bad bits, NaN weights */
    harp_set_log_level(HARP_LOG_NONE);
    p.bits = 5;
    CHECK(harp_wq_rtn(&p, harp_wq_fit_mse, NULL, m, n, W, "bad", &a) == HARP_ERR_INVALID_ARG);
    p.bits = 4;
    W[5] = NAN;
    CHECK(harp_wq_rtn(&p, harp_wq_fit_mse, NULL, m, n, W, "nan", &a) == HARP_ERR_NUMERIC);
    harp_clear_error();
    harp_set_log_level(HARP_LOG_WARN);
    free(W);
}

int main(void) {
    uint64_t seed = 1;
    for (int bits = 2; bits <= 4; bits++)
        for (int sym = 0; sym <= 1; sym++) {
            check_case(bits, sym, 0, 24, 300, seed++);
            check_case(bits, sym, 128, 24, 300, seed++);
        }
    check_case(8, 1, 0, 8, 200, seed++);
    test_threads();
    return t_done();
}
