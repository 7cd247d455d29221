/* Block LDL and BlockLDLQ (§5.4, §9.5): H = L D Lᵀ with identity diagonal blocks; the LDLQ identity
 * ℓ = Σ_k Σ_rows e_k D_k e_kᵀ with e = (Ẑ − Z) L (the per-step rounding errors); LDLQ beats plain
 * nearest rounding on the proxy loss; tune sweeps; padding of widths that are not multiples of 8;
 * determinism across thread counts. */
#include <omp.h>

#include "harp/quant.h"
#include "quant/quant_internal.h"
#include "quant_testlib.h"
#include "test_util.h"

static void e8p_vq(const void *ctx, const double x[8], double out[8], uint16_t *c1, uint16_t *c2) {
    (void)ctx;
    *c1 = harp_e8p_encode(x, out);
    *c2 = 0;
}

static void test_block_ldl(void) {
    const int64_t n = 48;
    harp_rng rng;
    harp_rng_seed(&rng, 5);
    double *H = malloc(sizeof(double) * n * n), *L = malloc(sizeof(double) * n * n), *D = malloc(sizeof(double) * n * 8);
    qt_hessian(&rng, n, 200, H);
    CHECK_OK(harp_block_ldl(n, 8, H, L, D, NULL, "test H"));
    double maxerr = 0, maxdiag = 0, hmax = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            /* (L D Lᵀ)_ij with D block diagonal */
            double s = 0;
            for (int64_t k = 0; k < n / 8; k++)
                for (int a = 0; a < 8; a++)
                    for (int b = 0; b < 8; b++) s += L[i * n + k * 8 + a] * D[k * 64 + a * 8 + b] * L[j * n + k * 8 + b];
            maxerr = fmax(maxerr, fabs(s - H[i * n + j]));
            hmax = fmax(hmax, fabs(H[i * n + j]));
            if (i / 8 == j / 8) maxdiag = fmax(maxdiag, fabs(L[i * n + j] - (i == j)));
            if (j > i && j / 8 != i / 8 && L[i * n + j] != 0) maxdiag = 1;
        }
    CHECK_MSG(maxerr <= 1e-12 * hmax, "|LDLᵀ − H| = %g (|H| %g)", maxerr, hmax);
    CHECK_MSG(maxdiag == 0, "L is not block unit lower triangular (%g)", maxdiag);
    free(H), free(L), free(D);
}

static double proxy_abs(int64_t m, int64_t n, const double *A, const double *B, const double *H) {
    double s = 0;
    for (int64_t r = 0; r < m; r++)
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) s += (B[r * n + i] - A[r * n + i]) * H[i * n + j] * (B[r * n + j] - A[r * n + j]);
    return s;
}

static void test_identity_and_gain(void) {
    const int64_t m = 24, n = 64;
    int wins = 0, seeds = 10;
    for (int seed = 0; seed < seeds; seed++) {
        harp_rng rng;
        harp_rng_seed(&rng, 100 + (uint64_t)seed);
        double *H = malloc(sizeof(double) * n * n), *Z = malloc(sizeof(double) * m * n), *Zq = malloc(sizeof(double) * m * n);
        double *Zr = malloc(sizeof(double) * m * n), *L = malloc(sizeof(double) * n * n), *D = malloc(sizeof(double) * n * 8);
        uint16_t *c = malloc(sizeof(uint16_t) * m * n / 8);
        qt_hessian(&rng, n, 300, H);
        CHECK_OK(harp_hessian_regularize(n, H, 0.01, NULL));
        for (int64_t i = 0; i < m * n; i++) Z[i] = harp_rng_normal(&rng) * 1.03;
        CHECK_OK(harp_ldlq(m, n, Z, H, e8p_vq, NULL, 0, Zq, c, NULL, NULL, "t", NULL, NULL));
        /* identity */
        CHECK_OK(harp_block_ldl(n, 8, H, L, D, NULL, "t"));
        double lhs = proxy_abs(m, n, Z, Zq, H), rhs = 0;
        for (int64_t r = 0; r < m; r++) {
            double e[64];
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t i = 0; i < n; i++) s += (Zq[r * n + i] - Z[r * n + i]) * L[i * n + j];
                e[j] = s;
            }
            for (int64_t k = 0; k < n / 8; k++)
                for (int a = 0; a < 8; a++)
                    for (int b = 0; b < 8; b++) rhs += e[k * 8 + a] * D[k * 64 + a * 8 + b] * e[k * 8 + b];
        }
        CHECK_MSG(fabs(lhs - rhs) <= 1e-9 * lhs, "LDLQ identity: ℓ = %.12g, Σ e D eᵀ = %.12g", lhs, rhs);
        /* nearest rounding without feedback */
        for (int64_t r = 0; r < m; r++)
            for (int64_t k = 0; k < n / 8; k++) harp_e8p_encode(Z + r * n + 8 * k, Zr + r * n + 8 * k);
        double l_rtn = proxy_abs(m, n, Z, Zr, H);
        wins += lhs < l_rtn;
        if (seed == 0) {
            double *Zt = malloc(sizeof(double) * m * n);
            CHECK_OK(harp_ldlq(m, n, Z, H, e8p_vq, NULL, 10, Zt, c, NULL, NULL, "t", NULL, NULL));
            printf("seed 0: proxy nearest %.4f, LDLQ %.4f, LDLQ+10 tune %.4f (absolute)\n", l_rtn, lhs,
                   proxy_abs(m, n, Z, Zt, H));
            free(Zt);
        }
        free(H), free(Z), free(Zq), free(Zr), free(L), free(D), free(c);
    }
    printf("LDLQ beat nearest rounding on %d of %d seeds\n", wins, seeds);
    CHECK(wins >= 9);
}

static void test_quip_entry(void) {
    /* n = 20: padded to 24; 3-bit; deterministic for 1 and 2 threads; tune improves on average */
    const int64_t m = 16, n = 20;
    float *W, *Wh = malloc(sizeof(float) * m * n);
    double *H;
    qt_problem(7, m, n, 100, &W, &H);
    for (int bits = 2; bits <= 4; bits++) {
        harp_quant_params p = harp_quant_default_params(HARP_QMETHOD_QUIP, bits);
        harp_qtensor a, b;
        omp_set_num_threads(1);
        CHECK_OK(harp_quantize_linear(&p, m, n, W, H, "q", &a));
        omp_set_num_threads(2);
        CHECK_OK(harp_quantize_linear(&p, m, n, W, H, "q", &b));
        CHECK(a.type == harp_qtype_for(HARP_QMETHOD_QUIP, bits) && harp_e8p_ncode(a.n) == 3);
        CHECK_OK(harp_qtensor_check(&a, "q"));
        for (int i = 0; i < harp_qtype_traits_of(a.type)->n_planes; i++)
            CHECK(a.planes[i].nbytes == b.planes[i].nbytes && memcmp(a.planes[i].data, b.planes[i].data, a.planes[i].nbytes) == 0);
        /* proxy_loss is the loss of the solver's fp64 reconstruction Wscale·(E8P + R/r) of the codes
         * (Wscale = rms(W)/scale, §5.1); the stored fp32 scales change it only in the rounding */
        const uint16_t *c1 = a.planes[0].data;
        const void *c2 = bits > 2 ? a.planes[1].data : NULL;
        double ss = 0;
        for (int64_t k = 0; k < m * n; k++) ss += (double)W[k] * (double)W[k];
        const double ws = sqrt(ss / (double)(m * n)) / (p.scale_override > 0 ? p.scale_override : harp_codebook_opt_scale(a.type));
        const double rs = harp_codebook_opt_resid_scale(a.type);
        for (int64_t r = 0; r < m; r++)
            for (int64_t k = 0; k < 3; k++) {
                const uint16_t k2 = !c2 ? 0 : bits == 3 ? ((const uint8_t *)c2)[r * 3 + k] : ((const uint16_t *)c2)[r * 3 + k];
                double v[8];
                harp_cb_decode8(a.type, rs, c1[r * 3 + k], k2, v);
                for (int j = 0; j < 8 && 8 * k + j < n; j++) Wh[r * n + 8 * k + j] = (float)(ws * v[j]);
            }
        double l = harp_proxy_loss(m, n, W, Wh, H);
        CHECK_NEAR(l, a.proxy_loss, 1e-12);
        CHECK_OK(harp_qtensor_dequantize(&a, Wh));
        CHECK_NEAR(harp_proxy_loss(m, n, W, Wh, H), a.proxy_loss, 1e-6 * a.proxy_loss);
        printf("quip %d-bit, n = 20 (padded): proxy %.4f\n", bits, l);
        CHECK(l < (bits == 2 ? 0.2 : bits == 3 ? 0.08 : 0.03));
        harp_qtensor_free(&a);
        harp_qtensor_free(&b);
    }
    free(W), free(Wh), free(H);
}

int main(void) {
    test_block_ldl();
    test_identity_and_gain();
    test_quip_entry();
    return t_done();
}
