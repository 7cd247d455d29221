/* Optimized forward kernels against their plain references at awkward sizes:
 * sgemm linear vs harp_matmul_f32_ref (|Δ| ≤ 1e-5·(1+|ref|)), threaded gemv vs ref, sgemm
 * attention vs harp_attention_ref (causal, GQA, sliding window, p0 > 0; |Δ| ≤ 1e-5), and
 * determinism (same inputs → bit-identical outputs). */
#include <stdlib.h>

#include "harp.h"
#include "model/kernels.h"
#include "test_util.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / 16777216.0f) * 2.0f - 1.0f;
}

static void test_linear(int rows, int out, int in) {
    unsigned s = 12345u + (unsigned)(rows * 7 + out * 3 + in);
    float *W = malloc(sizeof(float) * (size_t)out * in), *X = malloc(sizeof(float) * (size_t)rows * in);
    float *Y = malloc(sizeof(float) * (size_t)rows * out), *R = malloc(sizeof(float) * (size_t)rows * out);
    float *Y2 = malloc(sizeof(float) * (size_t)rows * out);
    for (int i = 0; i < out * in; i++) W[i] = frand(&s);
    for (int i = 0; i < rows * in; i++) X[i] = frand(&s);
    if (rows == 1) {
        harp_f32_gemv(W, out, in, X, Y);
        harp_f32_gemv(W, out, in, X, Y2);
    } else {
        harp_f32_matmul(W, out, in, X, rows, Y);
        harp_f32_matmul(W, out, in, X, rows, Y2);
    }
    harp_matmul_f32_ref(W, out, in, X, rows, R);
    double worst = 0;
    for (int i = 0; i < rows * out; i++) {
        double e = fabs(Y[i] - R[i]) / (1 + fabs(R[i]));
        if (e > worst) worst = e;
    }
    CHECK_MSG(worst <= 1e-5, "linear rows %d out %d in %d: rel err %.3g", rows, out, in, worst);
    CHECK_MSG(!memcmp(Y, Y2, sizeof(float) * (size_t)rows * out), "linear rows %d not deterministic", rows);
    free(W), free(X), free(Y), free(R), free(Y2);
}

static void test_attention(int nb, int p0, int nh, int nkv, int hd, int window) {
    unsigned s = 777u + (unsigned)(nb * 31 + p0 * 17 + hd + window);
    int T = p0 + nb, qd = nh * hd, kvd = nkv * hd;
    float *q = malloc(sizeof(float) * (size_t)nb * qd), *k = malloc(sizeof(float) * (size_t)T * kvd);
    float *v = malloc(sizeof(float) * (size_t)T * kvd), *o = malloc(sizeof(float) * (size_t)nb * qd);
    float *r = malloc(sizeof(float) * (size_t)nb * qd), *S = malloc(sizeof(float) * (size_t)nb * T);
    for (int i = 0; i < nb * qd; i++) q[i] = 2 * frand(&s);
    for (int i = 0; i < T * kvd; i++) k[i] = 2 * frand(&s), v[i] = frand(&s);
    harp_attention(q, k, v, nb, p0, nh, nkv, hd, window, S, o);
    harp_attention_ref(q, k, v, nb, p0, nh, nkv, hd, window, r);
    double worst = 0;
    for (int i = 0; i < nb * qd; i++) worst = fmax(worst, fabs(o[i] - r[i]));
    CHECK_MSG(worst <= 1e-5, "attention nb %d p0 %d heads %d/%d hd %d window %d: max |diff| %.3g", nb, p0, nh, nkv, hd,
              window, worst);
    free(q), free(k), free(v), free(o), free(r), free(S);
}

int main(void) {
    static const int rows[] = {1, 3, 17, 64}, outs[] = {1, 7, 33, 257}, ins[] = {1, 5, 15, 130};
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 4; c++) test_linear(rows[a], outs[b], ins[c]);
    test_attention(1, 0, 1, 1, 2, 0);
    test_attention(7, 0, 4, 2, 6, 0);
    test_attention(5, 11, 6, 3, 10, 0);
    test_attention(1, 40, 8, 4, 8, 0);
    test_attention(33, 9, 4, 1, 16, 5);
    test_attention(1, 30, 4, 2, 8, 16);
    return t_done();
}
