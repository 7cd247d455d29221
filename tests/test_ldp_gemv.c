/* ldp2 GEMV kernels against their reference twins at awkward sizes: rows and widths that are not
 * multiples of the 16-column block (widths 172 and 1536 among them), per-channel, ragged and
 * unaligned groups; fp32 and int4 activations (on AVX-512 the int4 kernel sums per level in integers
 * where groups start on 64-column blocks, and falls back to the float kernel elsewhere). Tolerance: the fast kernels sum in float, so each
 * output may differ from the double reference by at most (n + 2)·2⁻²⁴·Σ_c |w_c x_c| (the standard
 * bound for a float sum of n products; the weights and the int4 codes are exact in both). */
#include <math.h>
#include <omp.h>
#include <stdio.h>

#include "quant/ldp.h"
#include "quant_testlib.h"
#include "test_util.h"

static int off(const float *y, const float *yr, const double *mass, int64_t m, int64_t n) {
    int bad = 0;
    for (int64_t r = 0; r < m; r++) bad += !(fabs((double)y[r] - yr[r]) <= (double)(n + 2) * 0x1p-24 * mass[r]);
    return bad;
}

static void check_shape(harp_rng *rng, int64_t m, int64_t n, int64_t group) {
    harp_qtensor w;
    CHECK_OK(qt_random_tensor(rng, HARP_QTYPE_LDP2, m, n, group, 0, &w));
    float *W = malloc(sizeof(float) * m * n), *x = malloc(sizeof(float) * n);
    float *yr = malloc(sizeof(float) * m), *y = malloc(sizeof(float) * m), *y1 = malloc(sizeof(float) * m);
    double *mass = malloc(sizeof(double) * m), *massq = malloc(sizeof(double) * m);
    for (int64_t c = 0; c < n; c++) x[c] = (float)harp_rng_normal(rng) * (c % 13 == 0 ? 8.0f : 1.0f);
    CHECK_OK(harp_qtensor_dequantize(&w, W));
    /* int4 codes of x as the kernels see them (per-token symmetric, max|x|/7) */
    float amax = 0;
    for (int64_t c = 0; c < n; c++) amax = fmaxf(amax, fabsf(x[c]));
    for (int64_t r = 0; r < m; r++) {
        mass[r] = massq[r] = 0;
        for (int64_t c = 0; c < n; c++) {
            mass[r] += fabs((double)W[r * n + c] * x[c]);
            massq[r] += fabs((double)W[r * n + c]) * 8.0 * (amax / 7.0); /* |s·xq| ≤ 8s */
        }
    }
    const harp_qtype_traits *tr = harp_qtype_traits_of(HARP_QTYPE_LDP2);
    tr->gemv_ref(&w, x, yr);
    CHECK_OK(tr->gemv(&w, x, y, 0));
    const int b1 = off(y, yr, mass, m, n);
    CHECK_OK(harp_ldp_gemv_a4_ref(&w, x, yr));
    CHECK_OK(harp_ldp_gemv_a4(&w, x, y));
    const int b2 = off(y, yr, massq, m, n + 1);
    omp_set_num_threads(1);
    CHECK_OK(harp_ldp_gemv_a4(&w, x, y1));
    omp_set_num_threads(2);
    CHECK_MSG(!b1, "ldp2 %lldx%lld group %lld: %d rows of the fp32 GEMV off the reference", (long long)m, (long long)n,
              (long long)group, b1);
    CHECK_MSG(!b2, "ldp2 %lldx%lld group %lld: %d rows of the int4 GEMV off the reference", (long long)m, (long long)n,
              (long long)group, b2);
    CHECK_MSG(!memcmp(y, y1, sizeof(float) * m), "ldp2 a4 %lldx%lld: 1 and 2 threads differ", (long long)m, (long long)n);
    harp_qtensor_free(&w);
    free(W), free(x), free(yr), free(y), free(y1), free(mass), free(massq);
}

int main(void) {
    harp_rng rng;
    harp_rng_seed(&rng, 1515);
    static const int64_t shapes[][3] = {{1, 1, 0},     {7, 172, 0},   {7, 172, 128}, {33, 172, 32},  {5, 1536, 128},
                                        {9, 1536, 40}, {3, 1536, 0},  {17, 100, 12}, {2, 9, 4},      {64, 4096, 128},
                                        {13, 300, 6},  {4, 1537, 128},
                                        /* the int4 AVX-512 rows: groups of 64k columns, per channel, partial last blocks */
                                        {19, 640, 64}, {2, 130, 64},   {5, 4100, 256}, {33, 1000, 192}, {3, 1601, 0},
                                        {2, 11008, 0}, {17, 64, 0},    {1, 63, 0}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) check_shape(&rng, shapes[i][0], shapes[i][1], shapes[i][2]);
    printf("ldp2 GEMV kernels: %s (fp32), %s (int4), %zu shapes\n", harp_ldp_gemv_isa(0), harp_ldp_gemv_isa(1), sizeof shapes / sizeof shapes[0]);
    return t_done();
}
