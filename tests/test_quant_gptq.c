/* GPTQ (§6.2) against the textbook algorithm in fp64: columns in order, error feedback through the
 * explicit inverse Hessian with Schur-complement downdating after each column (OBQ form). The
 * library's Cholesky/lazy-block form must give identical codes and scales; with act-order the
 * textbook runs on the permuted problem; with the MSE-clipped grid (mse_clip) the textbook fits each
 * group with harp_wq_fit_mse. Also: GPTQ beats RTN on the proxy; thread determinism. */
#include <lapacke.h>
#include <omp.h>

#include "harp/quant.h"
#include "quant/aq.h"
#include "quant/quant_internal.h"
#include "quant_testlib.h"
#include "test_util.h"

typedef struct {
    uint8_t *q;
    float *scale;
    uint8_t *zero;
} tb_out;

/* perm: processing order (original column index at each position). Dynamic groups over positions. */
static void textbook(int64_t m, int64_t n, const float *W, const double *Hin, const int64_t *perm, int bits, int sym,
                     int mse, int g, tb_out *o) {
    double *H = malloc(sizeof(double) * n * n), *Hi = malloc(sizeof(double) * n * n), *w = malloc(sizeof(double) * m * n);
    double md = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) H[i * n + j] = Hin[perm[i] * n + perm[j]];
    for (int64_t r = 0; r < m; r++)
        for (int64_t i = 0; i < n; i++) w[r * n + i] = H[i * n + i] == 0 ? 0 : W[r * n + perm[i]];
    for (int64_t i = 0; i < n; i++)
        if (H[i * n + i] == 0) H[i * n + i] = 1;
    for (int64_t i = 0; i < n; i++) md += H[i * n + i];
    md /= (double)n;
    for (int64_t i = 0; i < n; i++) H[i * n + i] += 0.01 * md;
    memcpy(Hi, H, sizeof(double) * n * n);
    LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (int)n, Hi, (int)n);
    LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', (int)n, Hi, (int)n);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) Hi[i * n + j] = Hi[j * n + i];
    const int64_t ng = (n + g - 1) / g;
    float *s = malloc(sizeof(float) * m);
    int *z = malloc(sizeof(int) * m);
    for (int64_t i = 0; i < n; i++) {
        for (int64_t r = 0; r < m; r++) {
            if (i % g == 0) {
                int64_t len = n - i < g ? n - i : g;
                if (mse) harp_wq_fit_mse(NULL, w + r * n + i, len, bits, sym, &s[r], &z[r]);
                else harp_rtn_fit(w + r * n + i, len, bits, sym, &s[r], &z[r]);
                o->scale[r * ng + i / g] = s[r];
                o->zero[r * ng + i / g] = (uint8_t)z[r];
            }
            int q = harp_rtn_code(w[r * n + i], s[r], z[r], bits, sym);
            o->q[r * n + perm[i]] = (uint8_t)q;
            double err = (w[r * n + i] - (double)s[r] * (q - z[r])) / Hi[i * n + i];
            for (int64_t j = i + 1; j < n; j++) w[r * n + j] -= err * Hi[i * n + j];
        }
        double d = Hi[i * n + i];
        for (int64_t a = i + 1; a < n; a++)
            for (int64_t b = i + 1; b < n; b++) Hi[a * n + b] -= Hi[a * n + i] * Hi[i * n + b] / d;
    }
    free(H), free(Hi), free(w), free(s), free(z);
}

static void compare(int64_t m, int64_t n, int bits, int sym, int mse, int g, int act, const float *W, const double *H) {
    harp_quant_params p = harp_quant_default_params(HARP_QMETHOD_GPTQ, bits);
    p.symmetric = sym, p.mse_clip = mse, p.group_size = g, p.act_order = act, p.block_size = 32;
    harp_qtensor out;
    CHECK_OK(harp_quantize_linear(&p, m, n, W, H, "gptq test", &out));
    CHECK_OK(harp_qtensor_check(&out, "gptq test"));
    const float *oscale = out.planes[QT_SC_SCALES].data;
    const int32_t *og_idx = out.planes[QT_SC_GIDX].data;
    int64_t *perm = malloc(sizeof(int64_t) * n);
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    if (act) /* decreasing diag, ties by index (insertion sort) */
        for (int64_t i = 1; i < n; i++)
            for (int64_t j = i; j > 0 && H[perm[j] * n + perm[j]] > H[perm[j - 1] * n + perm[j - 1]]; j--) {
                int64_t t = perm[j];
                perm[j] = perm[j - 1], perm[j - 1] = t;
            }
    int ge = g > 0 && g < n ? g : (int)n;
    int64_t ng = (n + ge - 1) / ge;
    tb_out o = {malloc((size_t)(m * n)), malloc(sizeof(float) * m * ng), malloc((size_t)(m * ng))};
    textbook(m, n, W, H, perm, bits, sym, mse, ge, &o);
    int64_t qdiff = 0;
    const int64_t rowbytes = harp_scalar_row_bytes(n, bits);
    for (int64_t i = 0; i < m * n; i++)
        qdiff += o.q[i] != harp_scalar_get((const uint8_t *)out.planes[QT_SC_QWEIGHT].data + i / n * rowbytes, i % n, bits);
    double sdiff = 0;
    for (int64_t i = 0; i < m * ng; i++) sdiff = fmax(sdiff, fabs((double)o.scale[i] - oscale[i]) / o.scale[i]);
    CHECK_MSG(qdiff == 0 && sdiff <= 1e-6, "bits %d sym %d mse %d g %d act %d: %lld codes differ, scale rel diff %g", bits,
              sym, mse, g, act, (long long)qdiff, sdiff);
    if (act && ge < n) {
        for (int64_t i = 0; i < n; i++) CHECK(og_idx && og_idx[perm[i]] == i / ge);
    }
    harp_qtensor_free(&out);
    free(perm), free(o.q), free(o.scale), free(o.zero);
}

int main(void) {
    const int64_t m = 12, n = 96;
    float *W, *Wh = malloc(sizeof(float) * m * n);
    double *H;
    qt_problem(11, m, n, 400, &W, &H);
    /* one dead input column */
    for (int64_t i = 0; i < n; i++) H[5 * n + i] = H[i * n + 5] = 0;
    int bitsv[] = {2, 3, 4, 8};
    for (int b = 0; b < 4; b++)
        for (int sym = 0; sym < 2; sym++)
            for (int mse = 0; mse < 2; mse++) {
                compare(m, n, bitsv[b], sym, mse, 32, 0, W, H);
                compare(m, n, bitsv[b], sym, mse, 0, 0, W, H);
                compare(m, n, bitsv[b], sym, mse, 0, 1, W, H);    /* per channel, act-order */
                compare(m, n, bitsv[b], sym, mse, 40, 1, W, H);   /* ragged groups, act-order */
            }
    /* proxy: GPTQ < RTN, dead column decodes to 0, determinism over thread counts */
    for (int bits = 2; bits <= 4; bits++) {
        harp_quant_params pg = harp_quant_default_params(HARP_QMETHOD_GPTQ, bits), pr = pg;
        pr.method = HARP_QMETHOD_RTN;
        pg.group_size = pr.group_size = 32;
        harp_qtensor a, b, rt;
        omp_set_num_threads(1);
        CHECK_OK(harp_quantize_linear(&pg, m, n, W, H, "g", &a));
        omp_set_num_threads(2);
        CHECK_OK(harp_quantize_linear(&pg, m, n, W, H, "g", &b));
        CHECK_OK(harp_quantize_linear(&pr, m, n, W, H, "r", &rt));
        CHECK(a.planes[QT_SC_QWEIGHT].nbytes == b.planes[QT_SC_QWEIGHT].nbytes &&
              memcmp(a.planes[QT_SC_QWEIGHT].data, b.planes[QT_SC_QWEIGHT].data, a.planes[QT_SC_QWEIGHT].nbytes) == 0 &&
              memcmp(a.planes[QT_SC_SCALES].data, b.planes[QT_SC_SCALES].data, sizeof(float) * m * a.n_groups) == 0);
        CHECK(a.n_dead == 1);
        CHECK_OK(harp_qtensor_dequantize(&a, Wh));
        for (int64_t r = 0; r < m; r++) CHECK(Wh[r * n + 5] == 0.0f);
        printf("%d-bit g32: proxy RTN %.4f  GPTQ %.4f\n", bits, rt.proxy_loss, a.proxy_loss);
        CHECK(a.proxy_loss < rt.proxy_loss);
        harp_qtensor_free(&a), harp_qtensor_free(&b), harp_qtensor_free(&rt);
    }
    free(W), free(Wh), free(H);
    return t_done();
}
