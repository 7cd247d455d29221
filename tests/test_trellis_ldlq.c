/* QTIP linear quantizer: block LDL with b = 16; BlockLDLQ feedback beats feedback-free trellis
 * rounding on a correlated Hessian; decoding the stored codes reproduces the quantizer's Ŵ̃ bit for
 * bit (also with padding to 16); codes are identical for 1 and 2 threads; QuIP# E8P at the same
 * 2 bits is printed alongside; bad input and cancellation are reported. */
#include <omp.h>
#include <stdlib.h>

#include "core/core.h"
#include "harp/quant.h"
#include "quant/trellis.h"
#include "quant_testlib.h"
#include "test_util.h"

static void test_block_ldl16(harp_rng *rng) {
    const int n = 64;
    double *H = malloc(sizeof(double) * n * n), *L = malloc(sizeof(double) * n * n), *D = malloc(sizeof(double) * n * 16);
    qt_hessian(rng, n, 4 * n, H);
    CHECK_OK(harp_block_ldl(n, 16, H, L, D, NULL, "ldl16"));
    double err = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;   /* (L D Lᵀ)_ij with D block-diagonal */
            for (int k = 0; k < n / 16; k++)
                for (int a = 0; a < 16; a++)
                    for (int b = 0; b < 16; b++) s += L[i * n + 16 * k + a] * D[k * 256 + a * 16 + b] * L[j * n + 16 * k + b];
            err = fmax(err, fabs(s - H[i * n + j]));
        }
    CHECK_MSG(err < 1e-9, "H != L D Lᵀ for b = 16 (max error %.3g)", err);
    free(H), free(L), free(D);
}

/* The stored matrix of a quantized linear. */
static harp_tmat as_tmat(const harp_trellis_linear *q) {
    return (harp_tmat){(int32_t)q->m, (int32_t)q->n, q->K, q->code, (float)q->wscale, q->codes,
                       harp_tmat_code_words((int32_t)q->m, (int32_t)q->n, q->K), q->code == HARP_TCODE_HYB ? q->tlut : NULL};
}

static void check_decode(const harp_trellis_linear *q, const char *what) {
    const harp_tmat w = as_tmat(q);
    CHECK_OK(harp_tmat_check(&w, what));
    float *D = malloc(sizeof(float) * (size_t)(q->m * q->n));
    harp_tmat_dequant_rows(&w, 0, (int32_t)q->m, D, (size_t)q->n);
    CHECK_MSG(memcmp(D, q->w_hat, sizeof(float) * (size_t)(q->m * q->n)) == 0,
              "%s: decoding the codes does not reproduce the quantizer's Ŵ̃", what);
    free(D);
}

static void test_quality(harp_rng *rng, const uint16_t *tlut) {
    const int m = 64, n = 128;
    float *W = malloc(sizeof(float) * m * n), *Wq = malloc(sizeof(float) * m * n), *Z = malloc(sizeof(float) * m * n);
    double *H = malloc(sizeof(double) * n * n);
    qt_weights(rng, m, n, W);
    qt_hessian(rng, n, 4 * n, H);
    harp_trellis_params p = harp_trellis_default_params(2, HARP_TCODE_HYB, tlut);
    p.keep_w_hat = 1;
    harp_trellis_linear q1, q2;
    omp_set_num_threads(1);
    CHECK_OK(harp_trellis_quantize_linear(&p, m, n, W, H, "ldlq 1 thread", &q1));
    omp_set_num_threads(2);
    CHECK_OK(harp_trellis_quantize_linear(&p, m, n, W, H, "ldlq 2 threads", &q2));
    CHECK(memcmp(q1.codes, q2.codes, harp_tmat_code_words(m, n, 2) * 2) == 0 && q1.wscale == q2.wscale);
    check_decode(&q1, "hyb 64x128");
    /* the same trellis without feedback: every tile of W̃ / wscale rounded on its own */
    harp_tcb cb;
    CHECK_OK(harp_tcb_init(&cb, HARP_TCODE_HYB, 2, tlut, "plain"));
    uint16_t *codes = malloc(harp_tmat_code_words(m, n, 2) * 2);
    for (int i = 0; i < m * n; i++) Z[i] = (float)(W[i] / q1.wscale);
    CHECK_OK(harp_trellis_quantize_tiles(&cb, m, n, Z, 1, 0, codes, Wq, "plain"));
    for (int i = 0; i < m * n; i++) Wq[i] *= (float)q1.wscale;
    const double plain = harp_proxy_loss(m, n, W, Wq, H);
    /* QuIP# E8P 2-bit (BlockLDLQ + 10 tune sweeps) on the same problem, for scale */
    harp_quant_params qp = harp_quant_default_params(HARP_QMETHOD_QUIP, 2);
    harp_qtensor e8 = {0};
    CHECK_OK(harp_quantize_linear(&qp, m, n, W, H, "e8p", &e8));
    printf("64x128 2-bit proxy loss: QTIP-HYB LDLQ %.5f, trellis without feedback %.5f, QuIP# E8P %.5f\n",
           q1.proxy_loss, plain, e8.proxy_loss);
    CHECK_MSG(q1.proxy_loss < plain, "LDLQ feedback (%.5f) did not beat feedback-free rounding (%.5f)", q1.proxy_loss, plain);
    /* the method's premise: a 256-dimensional trellis beats the 8-dimensional lattice at 2 bits */
    CHECK_MSG(q1.proxy_loss < e8.proxy_loss, "QTIP 2-bit (%.5f) not below QuIP# E8P 2-bit (%.5f)", q1.proxy_loss,
              e8.proxy_loss);
    harp_qtensor_free(&e8);
    harp_tcb_free(&cb);
    harp_trellis_linear_free(&q1), harp_trellis_linear_free(&q2);
    free(W), free(Wq), free(Z), free(H), free(codes);
}

static int cancel_at_first(void *user, const char *stage, int64_t done, int64_t total) {
    (void)user, (void)stage, (void)done, (void)total;
    return 1;
}

static void test_padding_and_errors(harp_rng *rng, const uint16_t *tlut) {
    const int m = 20, n = 40;
    float *W = malloc(sizeof(float) * m * n);
    double *H = malloc(sizeof(double) * n * n);
    qt_weights(rng, m, n, W);
    qt_hessian(rng, n, 4 * n, H);
    harp_trellis_params p = harp_trellis_default_params(3, HARP_TCODE_1MAD, NULL);
    p.keep_w_hat = 1;
    harp_trellis_linear q;
    CHECK_OK(harp_trellis_quantize_linear(&p, m, n, W, H, "padded", &q));
    CHECK(q.m_pad == 32 && q.n_pad == 48 && q.proxy_loss > 0 && q.proxy_loss < 0.2);
    check_decode(&q, "1mad 20x40");
    harp_trellis_linear_free(&q);
    p.code = HARP_TCODE_HYB;   /* no table */
    CHECK(harp_trellis_quantize_linear(&p, m, n, W, H, "layers.0.mlp.up_proj", &q) == HARP_ERR_FORMAT);
    CHECK(strstr(harp_last_error(), "layers.0.mlp.up_proj") && strstr(harp_last_error(), "missing"));
    p.tlut = tlut, p.K = 5;
    CHECK(harp_trellis_quantize_linear(&p, m, n, W, H, "k5", &q) == HARP_ERR_INVALID_ARG);
    p.K = 2;
    p.progress = cancel_at_first;
    CHECK(harp_trellis_quantize_linear(&p, m, n, W, H, "cancel", &q) == HARP_ERR_CANCELLED);
    p.progress = NULL;
    W[7] = NAN;
    CHECK(harp_trellis_quantize_linear(&p, m, n, W, H, "layers.1.self_attn.q_proj", &q) == HARP_ERR_NUMERIC);
    CHECK(strstr(harp_last_error(), "layers.1.self_attn.q_proj") != NULL);
    free(W), free(H);
}

int main(void) {
    harp_rng rng;
    harp_rng_seed(&rng, 21);
    uint16_t tlut[2 * HARP_HYB_N];
    CHECK_OK(harp_hyb_table_build_ex(4, 1 << 15, 10, tlut));
    test_block_ldl16(&rng);
    test_quality(&rng, tlut);
    test_padding_and_errors(&rng, tlut);
    printf("%d passed, %d failed\n", t_pass_, t_fail_);
    return t_fail_ ? 1 : 0;
}
