/* Determinism across thread counts: harp_quantize_linear gives bit-identical codes, scales and proxy
 * loss with 1 and 2 OpenMP threads (and leaves the OpenBLAS thread setting as it found it), on
 * awkward shapes: widths not multiples of 8 or of the GPTQ block, row counts not multiples of the
 * row chunk. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "harp/quant.h"
#include "quant_testlib.h"
#include "test_util.h"

static int same_bytes(const void *a, const void *b, size_t n) {
    if (!a || !b) return a == b;
    return memcmp(a, b, n) == 0;
}

static void check_case(const char *name, harp_quant_params p, int64_t m, int64_t n, uint64_t seed) {
    float *W;
    double *H;
    qt_problem(seed, m, n, 2 * n, &W, &H);
    harp_qtensor q[2];
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        openblas_set_num_threads(2);
        CHECK_OK(harp_quantize_linear(&p, m, n, W, H, name, &q[t]));
        CHECK_MSG(openblas_get_num_threads() == 2, "%s: OpenBLAS thread count not restored (%d)", name,
                  openblas_get_num_threads());
    }
    /* every stored plane: codes, residual codes and scales, or packed codes, scales, zeros, g_idx */
    int same = q[0].type == q[1].type;
    for (int i = 0; i < HARP_QT_MAX_PLANES; i++)
        same &= q[0].planes[i].nbytes == q[1].planes[i].nbytes &&
                same_bytes(q[0].planes[i].data, q[1].planes[i].data, q[0].planes[i].nbytes);
    same &= memcmp(&q[0].proxy_loss, &q[1].proxy_loss, sizeof(double)) == 0;
    CHECK_MSG(same, "%s (%lldx%lld): 1 and 2 threads differ (proxy %.17g vs %.17g)", name, (long long)m, (long long)n,
              q[0].proxy_loss, q[1].proxy_loss);
    CHECK_MSG(q[0].proxy_loss > 0 && q[0].proxy_loss < 1, "%s: proxy loss %g out of range", name, q[0].proxy_loss);
    harp_qtensor_free(&q[0]), harp_qtensor_free(&q[1]);
    free(W), free(H);
}

int main(void) {
    for (int bits = 2; bits <= 4; bits++) {
        harp_quant_params p = harp_quant_default_params(HARP_QMETHOD_QUIP, bits);
        p.tune_iters = 3;
        char name[64];
        snprintf(name, sizeof name, "quip%d", bits);
        check_case(name, p, 37, 200, 11 + (uint64_t)bits);
        if (bits != 3) check_case(name, p, 70, 172, 21 + (uint64_t)bits);
    }
    harp_quant_params g = harp_quant_default_params(HARP_QMETHOD_GPTQ, 4);
    g.act_order = 1;
    check_case("gptq4 g128 act-order", g, 37, 200, 31);
    g.bits = 2;
    check_case("gptq2 g128 act-order", g, 70, 300, 32);
    g.act_order = 0;
    g.group_size = 48; /* groups straddle the 128-column blocks */
    check_case("gptq3 g48", g, 37, 200, 33);
    harp_quant_params r = harp_quant_default_params(HARP_QMETHOD_RTN, 3);
    check_case("rtn3 g128", r, 37, 200, 34);
    return t_done();
}
