/* RTN (§6.1): hand-checked parameters and codes for asymmetric / symmetric grids, half-to-even
 * rounding, the all-zero group, per-group layout with a ragged last group, and the error bound. */
#include "harp/quant.h"
#include "quant/quant_internal.h"
#include "quant_testlib.h"
#include "test_util.h"

static void test_hand(void) {
    float s;
    int z;
    double x1[] = {0, 1, 2, 3, 4, 5, 6, 7};
    harp_rtn_fit(x1, 8, 3, 0, &s, &z);
    CHECK(s == 1.0f && z == 0);
    CHECK(harp_rtn_code(2.5, s, z, 3, 0) == 2);   /* half to even */
    CHECK(harp_rtn_code(3.5, s, z, 3, 0) == 4);
    CHECK(harp_rtn_code(9.0, s, z, 3, 0) == 7);   /* clamp */
    double x2[] = {-4, -1, 0, 3};
    harp_rtn_fit(x2, 4, 3, 0, &s, &z);
    CHECK(s == 1.0f && z == 4);
    CHECK(harp_rtn_code(-4, s, z, 3, 0) == 0 && harp_rtn_code(3, s, z, 3, 0) == 7);
    double x3[] = {-2, -1, 0, 1, 2, 3.5, 7};
    harp_rtn_fit(x3, 7, 4, 1, &s, &z);   /* maxq 7, amax 7 → scale 1, offset 8 */
    CHECK(s == 1.0f && z == 8);
    CHECK(harp_rtn_code(3.5, s, z, 4, 1) == 12);
    CHECK(harp_rtn_code(-2, s, z, 4, 1) == 6);
    CHECK(harp_rtn_code(-100, s, z, 4, 1) == 0);   /* −(maxq+1) = −8 */
    CHECK(harp_rtn_code(100, s, z, 4, 1) == 15);
    double x4[] = {0, 0, 0};
    /* (−1, 1): scale = fp32(2/3) = 0.666666687, so −x_min/scale = 1.4999999 rounds to 1 */
    harp_rtn_fit(x4, 3, 2, 0, &s, &z);
    CHECK(s == (float)(2.0 / 3.0) && z == 1);
    CHECK(harp_scalar_value(s, harp_rtn_code(0, s, z, 2, 0), z) == 0.0);
    double x5[] = {0.5, 1.0};   /* positive only: range (0, 1), zero 0 */
    harp_rtn_fit(x5, 2, 2, 0, &s, &z);
    CHECK(s == (float)(1.0 / 3.0) && z == 0);
    double x6[] = {1e-9, -1e-9};   /* tiny: scale clamped to 1e-5 */
    harp_rtn_fit(x6, 2, 4, 1, &s, &z);
    CHECK(s == 1e-5f);
}

static void test_layout(void) {
    const int64_t m = 5, n = 300;
    harp_rng rng;
    harp_rng_seed(&rng, 3);
    float *W = malloc(sizeof(float) * m * n), *Wh = malloc(sizeof(float) * m * n);
    qt_weights(&rng, m, n, W);
    int bitsv[] = {2, 3, 4, 8};
    for (int b = 0; b < 4; b++)
        for (int sym = 0; sym < 2; sym++) {
            harp_quant_params p = harp_quant_default_params(HARP_QMETHOD_RTN, bitsv[b]);
            p.symmetric = sym;
            harp_qtensor q;
            CHECK_OK(harp_quantize_linear(&p, m, n, W, NULL, "rtn", &q));
            CHECK(q.type == harp_qtype_for(HARP_QMETHOD_RTN, bitsv[b]));
            CHECK(q.n_groups == 3 && q.group_size == 128 && q.planes[QT_SC_GIDX].data == NULL);
            CHECK_OK(harp_qtensor_check(&q, "rtn"));
            CHECK_OK(harp_qtensor_dequantize(&q, Wh));
            const float *qs = q.planes[QT_SC_SCALES].data;
            const uint8_t *qz = q.planes[QT_SC_ZEROS].data, *qw = q.planes[QT_SC_QWEIGHT].data;
            const int64_t rowbytes = harp_scalar_row_bytes(n, bitsv[b]);
            int bad = 0;
            for (int64_t r = 0; r < m; r++)
                for (int64_t c = 0; c < n; c++) {
                    int64_t G = c / 128, len = G == 2 ? 44 : 128;
                    double x[128];
                    for (int64_t k = 0; k < len; k++) x[k] = W[r * n + G * 128 + k];
                    float s;
                    int z;
                    harp_rtn_fit(x, len, bitsv[b], sym, &s, &z);
                    int code = harp_rtn_code(W[r * n + c], s, z, bitsv[b], sym);
                    const unsigned qc = harp_scalar_get(qw + r * rowbytes, c, bitsv[b]);
                    if (qs[r * 3 + G] != s || qz[r * 3 + G] != z || qc != (unsigned)code) bad++;
                    if (qc >= (1u << bitsv[b])) bad++;
                    /* inside the grid the error is at most half a step (the symmetric grid clips
                     * nothing either: −amax ≥ −(maxq+1)·scale) */
                    if (fabs((double)Wh[r * n + c] - W[r * n + c]) > 0.5 * s * (1 + 1e-6) + 1e-9) bad++;
                }
            CHECK_MSG(bad == 0, "rtn %d-bit sym %d: %d mismatches", bitsv[b], sym, bad);
            harp_qtensor_free(&q);
        }
    /* per channel */
    harp_quant_params p = harp_quant_default_params(HARP_QMETHOD_RTN, 4);
    p.group_size = 0;
    harp_qtensor q;
    CHECK_OK(harp_quantize_linear(&p, m, n, W, NULL, "rtn", &q));
    CHECK(q.n_groups == 1 && q.group_size == n);
    harp_qtensor_free(&q);
    p.bits = 5;
    CHECK(harp_quantize_linear(&p, m, n, W, NULL, "rtn", &q) == HARP_ERR_INVALID_ARG);
    free(W), free(Wh);
}

int main(void) {
    test_hand();
    test_layout();
    return t_done();
}
