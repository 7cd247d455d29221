/* Hessian handling (§1.4, §1.5, §9.3) and bad numeric input (issue item 6): consumer form from the
 * flat lower triangle + μμᵀ, QuIP# regularisation, GPTQ damping with dead columns, the safe
 * Cholesky escalation (jitter with a warning, then a clear error), NaN/Inf rejection, and a
 * non-positive-definite H repaired for every method without NaN codes. */
#include "harp/quant.h"
#include "quant/quant_internal.h"
#include "quant_testlib.h"
#include "test_util.h"

static int g_warns;
static char g_last[512];
static void logger(harp_log_level lv, const char *msg, void *u) {
    (void)u;
    if (lv == HARP_LOG_WARN) g_warns++, snprintf(g_last, sizeof g_last, "%s", msg);
}

static void test_flat(void) {
    const int64_t n = 5;
    float flat[15], mu[5];
    for (int i = 0; i < 15; i++) flat[i] = (float)(i + 1) * 0.5f;
    for (int i = 0; i < 5; i++) mu[i] = (float)i - 2.0f;
    double H[25];
    CHECK_OK(harp_hessian_from_flat(n, flat, mu, H));
    CHECK(H[3 * 5 + 1] == flat[3 * 4 / 2 + 1] + (double)mu[3] * mu[1]);
    CHECK(H[1 * 5 + 3] == H[3 * 5 + 1]);
    CHECK(H[4 * 5 + 4] == flat[14] + 4.0);
}

static void test_regularize_damp(void) {
    const int64_t n = 16;
    harp_rng rng;
    harp_rng_seed(&rng, 1);
    double H[256], md;
    qt_hessian(&rng, n, 50, H);
    double d0 = H[3 * n + 3];
    CHECK_OK(harp_hessian_regularize(n, H, 0.01, &md));
    double s = 0;
    for (int i = 0; i < n; i++) s += H[i * n + i];
    CHECK_NEAR(s / n, 1.01, 1e-12);
    CHECK_NEAR(H[3 * n + 3], d0 / md + 0.01, 1e-12);
    /* GPTQ damping: dead column 2 */
    qt_hessian(&rng, n, 50, H);
    for (int i = 0; i < n; i++) H[2 * n + i] = H[i * n + 2] = 0;
    float W[3 * 16];
    for (int i = 0; i < 48; i++) W[i] = 1.0f;
    double before = 0;
    for (int i = 0; i < n; i++) before += (i == 2 ? 1.0 : H[i * n + i]);
    int64_t dead = 0;
    CHECK_OK(harp_hessian_damp_gptq(n, H, 3, W, 0.01, &dead));
    CHECK(dead == 1 && W[2] == 0 && W[16 + 2] == 0 && W[3] == 1.0f);
    CHECK_NEAR(H[2 * n + 2], 1.0 + 0.01 * before / n, 1e-12);
    double z[4] = {0, 0, 0, 0};
    CHECK(harp_hessian_regularize(2, z, 0.01, NULL) == HARP_ERR_NUMERIC);
}

static void test_safe_cholesky(void) {
    const int64_t n = 12;
    harp_rng rng;
    harp_rng_seed(&rng, 2);
    double H[144], L[144];
    int k = -1;
    qt_hessian(&rng, n, 100, H);
    g_warns = 0;
    CHECK_OK(harp_safe_cholesky(n, H, L, &k, "spd"));
    CHECK(k == 0 && g_warns == 0);
    /* rank 3 PSD: fails plain Cholesky, repaired by jitter with a warning */
    double X[3 * 12];
    for (int i = 0; i < 36; i++) X[i] = harp_rng_normal(&rng);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int t = 0; t < 3; t++) s += X[t * n + i] * X[t * n + j];
            H[i * n + j] = s;
        }
    g_warns = 0;
    CHECK_OK(harp_safe_cholesky(n, H, L, &k, "rank3"));
    printf("rank-3 H: jitter step %d, warning: %s\n", k, g_last);
    CHECK(k >= 1 && k <= 5 && g_warns == 1 && strstr(g_last, "rank3") != NULL);
    for (int i = 0; i < n * n; i++) CHECK(isfinite(L[i]));
    /* aliasing L == A works */
    CHECK_OK(harp_safe_cholesky(n, H, H, &k, "alias"));
    /* clearly indefinite: clear error */
    for (int i = 0; i < n * n; i++) H[i] = 0;
    for (int i = 0; i < n; i++) H[i * n + i] = i == 4 ? -1.0 : 1.0;
    CHECK(harp_safe_cholesky(n, H, L, &k, "indefinite H") == HARP_ERR_NUMERIC);
    CHECK(strstr(harp_last_error(), "indefinite H: not positive definite") != NULL);
    H[7] = NAN;
    CHECK(harp_safe_cholesky(n, H, L, &k, "nan H") == HARP_ERR_NUMERIC);
    CHECK(strstr(harp_last_error(), "non-finite") != NULL);
}

static void test_entry_bad_input(void) {
    const int64_t m = 8, n = 16;
    harp_rng rng;
    harp_rng_seed(&rng, 4);
    float W[128];
    double H[256];
    qt_weights(&rng, m, n, W);
    qt_hessian(&rng, n, 40, H);
    harp_qmethod ms[] = {HARP_QMETHOD_RTN, HARP_QMETHOD_GPTQ, HARP_QMETHOD_QUIP};
    for (int k = 0; k < 3; k++) {
        harp_quant_params p = harp_quant_default_params(ms[k], 2);
        harp_qtensor q;
        float w = W[9];
        W[9] = INFINITY;
        CHECK(harp_quantize_linear(&p, m, n, W, H, "layers.0.q_proj", &q) == HARP_ERR_NUMERIC);
        CHECK(strstr(harp_last_error(), "layers.0.q_proj: weight: non-finite") != NULL);
        W[9] = w;
        if (ms[k] != HARP_QMETHOD_RTN) {
            double h = H[17];
            H[17] = NAN;
            CHECK(harp_quantize_linear(&p, m, n, W, H, "layers.0.q_proj", &q) == HARP_ERR_NUMERIC);
            CHECK(strstr(harp_last_error(), "Hessian: non-finite") != NULL);
            H[17] = h;
        }
    }
    /* singular PSD H (rank 2, plus a zero column) with QuIP# regularisation off and with GPTQ:
     * jitter repairs it, codes are finite */
    double X[2 * 16];
    for (int i = 0; i < 32; i++) X[i] = harp_rng_normal(&rng);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) H[i * n + j] = X[i] * X[j] + X[16 + i] * X[16 + j];
    harp_quant_params p = harp_quant_default_params(HARP_QMETHOD_QUIP, 2);
    p.regularize = 0;
    harp_qtensor q;
    g_warns = 0;
    CHECK_OK(harp_quantize_linear(&p, m, n, W, H, "layers.1.o_proj", &q));
    CHECK(q.chol_jitter_steps >= 1 && g_warns >= 1);
    float Wh[128];
    CHECK_OK(harp_qtensor_dequantize(&q, Wh));
    int fin = 1;
    for (int i = 0; i < 128; i++) fin &= isfinite(Wh[i]);
    CHECK(fin && isfinite(q.proxy_loss));
    harp_qtensor_free(&q);
    /* indefinite H without regularisation → clear error, no codes */
    for (int i = 0; i < n * n; i++) H[i] = 0;
    for (int i = 0; i < n; i++) H[i * n + i] = i == 3 ? -5.0 : 1.0;
    CHECK(harp_quantize_linear(&p, m, n, W, H, "layers.1.o_proj", &q) == HARP_ERR_NUMERIC);
    CHECK(q.planes[0].data == NULL);
    CHECK(strstr(harp_last_error(), "layers.1.o_proj") != NULL);
    /* all-zero weights: wscale 0, exact zero reconstruction */
    float Z[128] = {0};
    for (int i = 0; i < n; i++) H[i * n + i] = 1.0;
    CHECK_OK(harp_quantize_linear(&p, m, n, Z, H, "zero", &q));
    CHECK_OK(harp_qtensor_dequantize(&q, Wh));
    int zero = 1;
    for (int i = 0; i < 128; i++) zero &= Wh[i] == 0.0f;
    CHECK(zero && q.scale0 == 0);
    harp_qtensor_free(&q);
}

int main(void) {
    harp_set_log(logger, NULL);
    test_flat();
    test_regularize_damp();
    test_safe_cholesky();
    test_entry_bad_input();
    return t_done();
}
