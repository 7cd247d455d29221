/* fp32 linear: OpenBLAS sgemm for batches, a threaded row-dot gemv for single tokens. */
#include "model/linear.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

static void f32_matmul(const harp_linear *l, const float *X, int rows, float *Y) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, l->out, l->in, 1.0f, X, l->in,
                (const float *)l->w, l->in, 0.0f, Y, l->out);
}

/* Each output is one dot product with a fixed summation order, so the result does not depend on
 * the number of threads. */
static void f32_gemv(const harp_linear *l, const float *x, float *y) {
    const float *W = (const float *)l->w;
    int in = l->in, out = l->out;
#pragma omp parallel for schedule(static) if (out >= 256)
    for (int i = 0; i < out; i++) {
        const float *w = W + (size_t)i * in;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int j = 0;
        for (; j + 4 <= in; j += 4) {
            s0 += w[j] * x[j];
            s1 += w[j + 1] * x[j + 1];
            s2 += w[j + 2] * x[j + 2];
            s3 += w[j + 3] * x[j + 3];
        }
        for (; j < in; j++) s0 += w[j] * x[j];
        y[i] = (s0 + s1) + (s2 + s3);
    }
}

static void f32_free(harp_linear *l) {
    free(l->w);
    l->w = NULL;
}

void harp_linear_init_f32(harp_linear *l, float *W, int out, int in, int owns) {
    memset(l, 0, sizeof *l);
    l->in = in;
    l->out = out;
    l->w = W;
    l->matmul = f32_matmul;
    l->gemv = f32_gemv;
    l->free_w = owns ? f32_free : NULL;
    l->kind = "f32";
    l->bits = 32;
}

void harp_linear_apply(const harp_linear *l, const float *X, int rows, float *Y) {
    if (rows == 1) l->gemv(l, X, Y);
    else l->matmul(l, X, rows, Y);
    if (l->bias)
        for (int r = 0; r < rows; r++) {
            float *y = Y + (size_t)r * l->out;
            for (int i = 0; i < l->out; i++) y[i] += l->bias[i];
        }
}

void harp_linear_free(harp_linear *l) {
    if (l && l->free_w) l->free_w(l);
}

const float *harp_linear_f32_weight(const harp_linear *l) {
    return l->matmul == f32_matmul ? (const float *)l->w : NULL;
}

void harp_matmul_f32_ref(const float *W, int out, int in, const float *X, int rows, float *Y) {
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < out; i++) {
            double s = 0;
            for (int j = 0; j < in; j++) s += (double)X[(size_t)r * in + j] * W[(size_t)i * in + j];
            Y[(size_t)r * out + i] = (float)s;
        }
}
