/* MSE-clipped weight grid (src/quant/aq.h, QuaRot/GPTQ `--w_clip`, algorithms.md §6.1): RTN through the
 * fitter hook equals harp_quantize_linear's RTN bit for bit with the min/max fitter; with the MSE fitter
 * every group's Σ|ŵ − w|^2.4 is the minimum over the shrink grid (checked against a plain fp64 scan)
 * and never above min/max; on heavy-tailed rows the squared error drops; thread count does not matter. */
#include <omp.h>

#include "core/core.h"
#include "quant/aq.h"
#include "quant/qblocks.h"
#include "quant/quant_internal.h"
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

static int bits_of(const harp_qtensor *q) { return harp_qtype_bits(q->type); }

static unsigned code_at(const harp_qtensor *q, int64_t r, int64_t c) {
    const uint8_t *row = (const uint8_t *)q->planes[QT_SC_QWEIGHT].data + r * harp_scalar_row_bytes(q->n, bits_of(q));
    return harp_scalar_get(row, c, bits_of(q));
}

static double dequant(const harp_qtensor *q, int64_t r, int64_t c) {
    int64_t k = r * q->n_groups + c / q->group_size;
    const float *scale = q->planes[QT_SC_SCALES].data;
    const uint8_t *zero = q->planes[QT_SC_ZEROS].data;
    return (double)scale[k] * ((int)code_at(q, r, c) - zero[k]);
}

/* Codes, scales and zero points byte for byte. */
static int same_planes(const harp_qtensor *a, const harp_qtensor *b) {
    for (int i = QT_SC_QWEIGHT; i <= QT_SC_ZEROS; i++)
        if (a->planes[i].nbytes != b->planes[i].nbytes || memcmp(a->planes[i].data, b->planes[i].data, a->planes[i].nbytes))
            return 0;
    return 1;
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
    harp_qtensor a = {0}, b = {0}, c = {0};
    CHECK_OK(harp_quantize_linear(&p, m, n, W, NULL, "rtn", &a));
    CHECK_OK(harp_wq_rtn(&p, harp_wq_fit_minmax, NULL, m, n, W, "rtn hook", &b));
    const harp_wclip wc = harp_wclip_default();
    CHECK_OK(harp_wq_rtn(&p, harp_wq_fit_mse, &wc, m, n, W, "rtn mse", &c));
    if (!a.planes[QT_SC_QWEIGHT].data || !b.planes[QT_SC_QWEIGHT].data || !c.planes[QT_SC_QWEIGHT].data) return;
    CHECK(same_planes(&a, &b));
    const float *cscale = c.planes[QT_SC_SCALES].data, *ascale = a.planes[QT_SC_SCALES].data;
    const uint8_t *czero = c.planes[QT_SC_ZEROS].data, *azero = a.planes[QT_SC_ZEROS].data;
    int64_t g = c.group_size, worse = 0, off_opt = 0;
    double l2a = 0, l2c = 0;
    for (int64_t r = 0; r < m; r++) {
        for (int64_t G = 0; G < c.n_groups; G++) {
            int64_t c0 = G * g, len = n - c0 < g ? n - c0 : g;
            const float *w = W + r * n + c0;
            int64_t k = r * c.n_groups + G;
            int zc = sym ? 0 : czero[k], za = sym ? 0 : azero[k];
            double ec = err_at(w, len, bits, sym, cscale[k], zc), ea = err_at(w, len, bits, sym, ascale[k], za);
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
    harp_qtensor_free(&a), harp_qtensor_free(&b), harp_qtensor_free(&c);
    free(W);
}

static void test_threads(void) {
    const int64_t m = 64, n = 300;
    float *W = malloc((size_t)(m * n) * sizeof *W);
    fill_t(W, m * n, 77);
    harp_quant_params p = harp_quant_default_params(HARP_QMETHOD_RTN, 3);
    harp_qtensor a = {0}, b = {0};
    int prev = omp_get_max_threads();
    omp_set_num_threads(1);
    CHECK_OK(harp_wq_rtn(&p, harp_wq_fit_mse, NULL, m, n, W, "t1", &a));
    omp_set_num_threads(2);
    CHECK_OK(harp_wq_rtn(&p, harp_wq_fit_mse, NULL, m, n, W, "t2", &b));
    omp_set_num_threads(prev);
    CHECK(a.planes[QT_SC_QWEIGHT].data && b.planes[QT_SC_QWEIGHT].data && same_planes(&a, &b));
    harp_qtensor_free(&a), harp_qtensor_free(&b);
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
