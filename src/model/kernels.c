/* fp32 forward kernels. Attention uses sgemm per head for the score and context products (the
 * prompt / perplexity path is dominated by those shapes). The elementwise kernels are deliberately
 * single-threaded: they cost a few percent of a window, and an OpenMP team spinning between them
 * competes with OpenBLAS's own threads for the cores (measured: half the throughput on 2 cores). */
#include "model/kernels.h"

#include "core/core.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

void harp_rmsnorm(const float *x, const float *w, int rows, int n, float eps, float *y) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n;
        float *yr = y + (size_t)r * n;
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)xr[i] * xr[i];
        float var = (float)(ss / n);
        float s = 1.0f / sqrtf(var + eps);
        for (int i = 0; i < n; i++) yr[i] = w[i] * (xr[i] * s);
    }
}

void harp_rope(float *x, int rows, int n_heads, int head_dim, int pos0, const float *inv_freq,
               harp_rope_layout layout) {
    int half = head_dim / 2;
    for (int r = 0; r < rows; r++) {
        float pos = (float)(pos0 + r);
        float cs[2048], sn[2048];   /* head_dim ≤ 4096 is enforced by config validation */
        for (int i = 0; i < half; i++) {
            float a = pos * inv_freq[i];
            cs[i] = cosf(a);
            sn[i] = sinf(a);
        }
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)r * n_heads * head_dim + (size_t)h * head_dim;
            if (layout == HARP_ROPE_HALF) {
                for (int i = 0; i < half; i++) {
                    float a = v[i], b = v[i + half];
                    v[i] = a * cs[i] - b * sn[i];
                    v[i + half] = b * cs[i] + a * sn[i];
                }
            } else {
                for (int i = 0; i < half; i++) {
                    float a = v[2 * i], b = v[2 * i + 1];
                    v[2 * i] = a * cs[i] - b * sn[i];
                    v[2 * i + 1] = a * sn[i] + b * cs[i];
                }
            }
        }
    }
}

void harp_swiglu(float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = g[i];
        g[i] = x / (1.0f + expf(-x)) * u[i];
    }
}

/* Visible key range [lo, hi) of a query at absolute position p. */
static void key_range(int p, int window, int *lo, int *hi) {
    *hi = p + 1;
    *lo = window > 0 && p + 1 > window ? p + 1 - window : 0;
}

void harp_attention(const float *q, const float *kc, const float *vc, int nb, int p0, int nh, int nkv,
                    int hd, int window, float *S, float *out) {
    int T = p0 + nb, qd = nh * hd, kvd = nkv * hd, grp = nh / nkv;
    float scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < nh; h++) {
        const float *kh = kc + (size_t)(h / grp) * hd, *vh = vc + (size_t)(h / grp) * hd;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, T, hd, scale, q + (size_t)h * hd, qd, kh, kvd,
                    0.0f, S, T);
        for (int i = 0; i < nb; i++) {
            float *s = S + (size_t)i * T;
            int lo, hi;
            key_range(p0 + i, window, &lo, &hi);
            float mx = -INFINITY;
            for (int j = lo; j < hi; j++) mx = s[j] > mx ? s[j] : mx;
            double sum = 0;
            for (int j = lo; j < hi; j++) {
                s[j] = expf(s[j] - mx);
                sum += s[j];
            }
            float inv = (float)(1.0 / sum);
            for (int j = 0; j < lo; j++) s[j] = 0;
            for (int j = lo; j < hi; j++) s[j] *= inv;
            for (int j = hi; j < T; j++) s[j] = 0;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, hd, T, 1.0f, S, T, vh, kvd, 0.0f,
                    out + (size_t)h * hd, qd);
    }
}

void harp_attention_ref(const float *q, const float *kc, const float *vc, int nb, int p0, int nh, int nkv,
                        int hd, int window, float *out) {
    int qd = nh * hd, kvd = nkv * hd, grp = nh / nkv;
    for (int i = 0; i < nb; i++)
        for (int h = 0; h < nh; h++) {
            const float *qi = q + (size_t)i * qd + (size_t)h * hd;
            int lo, hi;
            key_range(p0 + i, window, &lo, &hi);
            double mx = -INFINITY, sum = 0, acc[4096];
            double sc[8192];
            int cnt = hi - lo;
            double *s = cnt <= 8192 ? sc : NULL;
            if (!s) return;   /* reference limited to 8192 visible keys */
            for (int j = lo; j < hi; j++) {
                const float *kj = kc + (size_t)j * kvd + (size_t)(h / grp) * hd;
                double d = 0;
                for (int t = 0; t < hd; t++) d += (double)qi[t] * kj[t];
                s[j - lo] = d / sqrt((double)hd);
                if (s[j - lo] > mx) mx = s[j - lo];
            }
            for (int t = 0; t < hd; t++) acc[t] = 0;
            for (int j = lo; j < hi; j++) {
                double e = exp(s[j - lo] - mx);
                sum += e;
                const float *vj = vc + (size_t)j * kvd + (size_t)(h / grp) * hd;
                for (int t = 0; t < hd; t++) acc[t] += e * vj[t];
            }
            for (int t = 0; t < hd; t++) out[(size_t)i * qd + (size_t)h * hd + t] = (float)(acc[t] / sum);
        }
}

double harp_logsumexp_row(const float *l, int vocab, float *max, int *argmax) {
    float mx = l[0];
    int am = 0;
    for (int j = 1; j < vocab; j++)
        if (l[j] > mx) {
            mx = l[j];
            am = j;
        }
    double s = 0;
    for (int j = 0; j < vocab; j++) s += exp((double)l[j] - mx);
    *max = mx;
    if (argmax) *argmax = am;
    return log(s);
}

double harp_score_row(const float *l, int vocab, int target, int *argmax, double *lse) {
    float mx;
    double e = harp_logsumexp_row(l, vocab, &mx, argmax) + mx;
    if (lse) *lse = e;
    return e - l[target];
}

double harp_kl_row(const float *l, double lse, const float *ref, double lse_ref, int vocab) {
    double kl = 0;
    for (int j = 0; j < vocab; j++) {
        double lpb = (double)ref[j] - lse_ref, lpt = (double)l[j] - lse;
        double pb = exp(lpb);
        if (pb > 0) kl += pb * (lpb - lpt);
    }
    return kl;
}

void harp_f32_matmul(const float *W, int out, int in, const float *X, int rows, float *Y) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, in, 1.0f, X, in, W, in, 0.0f, Y, out);
}

void harp_f32_gemv(const float *W, int out, int in, const float *x, float *y) {
#pragma omp parallel for schedule(static) if (out >= 256)
    for (int i = 0; i < out; i++) y[i] = harp_dot4_f32(W + (size_t)i * in, x, in);
}

void harp_matmul_f32_ref(const float *W, int out, int in, const float *X, int rows, float *Y) {
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < out; i++) {
            double s = 0;
            for (int j = 0; j < in; j++) s += (double)X[(size_t)r * in + j] * W[(size_t)i * in + j];
            Y[(size_t)r * out + i] = (float)s;
        }
}
