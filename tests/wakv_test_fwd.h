/* Shared by the W/A/KV rotation tests: a plain fp64 forward pass of a Llama/Qwen2 model held as
 * harp_wakv_weights (rotate-half RoPE, GQA, SwiGLU, optional q/k/v biases, RMSNorm over norm_div),
 * with the online R3 (after RoPE) and R4 (before down) applied in fp32 through the library, as a real
 * forward pass would, and optional fake activation / KV quantization at the places of
 * docs/design-wakv.md §4. Written with loops, independent of src/model. */
#ifndef WAKV_TEST_FWD_H
#define WAKV_TEST_FWD_H

#include "core/core.h"
#include "qmodel/wakv.h"
#include "quant/aq.h"
#include "test_util.h"

typedef struct wt_arch {
    double rope_theta, eps;
} wt_arch;

/* Fake quantization inside the forward (bits 0 = off): a = every linear input except the head (per
 * token), kv = K (after RoPE and R3) and V, rows of n_kv·head_dim with the caller's group. */
typedef struct wt_quant {
    harp_aq_fmt a, kv;
} wt_quant;

static inline void wt_fake(const harp_aq_fmt *f, double *x, int64_t rows, int64_t n) {
    if (!f || !f->bits) return;
    float *t = malloc((size_t)(rows * n) * sizeof *t);
    for (int64_t i = 0; i < rows * n; i++) t[i] = (float)x[i];
    CHECK_OK(harp_aq_fake(f, t, rows, n, n));
    for (int64_t i = 0; i < rows * n; i++) x[i] = t[i];
    free(t);
}

/* y (m) = W (m × n) x (n) + b */
static inline void wt_lin(const float *W, const float *b, const double *x, int64_t m, int64_t n, double *y) {
    for (int64_t i = 0; i < m; i++) {
        double a = b ? b[i] : 0;
        for (int64_t j = 0; j < n; j++) a += (double)W[i * n + j] * x[j];
        y[i] = a;
    }
}

static inline void wt_rmsnorm(const double *x, const float *g, int64_t n, int64_t div, double eps, double *y) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / (double)div + eps);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * r * g[i];
}

/* rotate-half RoPE on one head at position pos */
static inline void wt_rope(double *v, int64_t hd, int pos, double theta) {
    for (int64_t i = 0; i < hd / 2; i++) {
        double f = pos * pow(theta, -2.0 * (double)i / (double)hd), c = cos(f), s = sin(f);
        double a = v[i], b = v[i + hd / 2];
        v[i] = a * c - b * s;
        v[i + hd / 2] = b * c + a * s;
    }
}

/* in-place online transform of `rows` rows of width n (via fp32, as a real forward pass would) */
static inline void wt_online(const harp_padrot *R, double *x, int64_t rows, int heads) {
    const int64_t n = harp_padrot_n(R), np = harp_padrot_n_pad(R);
    float *t = malloc((size_t)(rows * (heads ? n * heads : np)) * sizeof *t);
    int64_t w = heads ? n * heads : n;
    for (int64_t i = 0; i < rows * w; i++) t[i] = (float)x[i];
    if (heads) CHECK_OK(harp_wakv_r3_apply(R, t, rows, w, heads));
    else CHECK_OK(harp_wakv_r4_apply(R, t, n, t, np, rows));
    for (int64_t i = 0; i < rows * (heads ? w : np); i++) x[i] = t[i];
    free(t);
}

static inline void wt_forward(const harp_wakv_weights *w, const wt_arch *ar, const harp_padrot *R3, const harp_padrot *R4,
                       const wt_quant *qz, const int *ids, int T, double *logits) {
    const harp_aq_fmt *fa = qz ? &qz->a : NULL, *fkv = qz ? &qz->kv : NULL;
    const harp_wakv_dims *c = &w->dims;
    const int64_t d = c->d, hd = c->head_dim, qm = c->n_head * hd, kvm = c->n_kv * hd, I = c->ffn;
    const int64_t div = w->norm_div ? w->norm_div : d, din = w->down_in ? w->down_in : I;
    double *x = malloc((size_t)(T * d) * sizeof *x), *h = malloc((size_t)d * sizeof *h);
    double *q = malloc((size_t)(T * qm) * sizeof *q), *k = malloc((size_t)(T * kvm) * sizeof *k);
    double *v = malloc((size_t)(T * kvm) * sizeof *v), *o = malloc((size_t)qm * sizeof *o);
    double *y = malloc((size_t)d * sizeof *y), *gt = malloc((size_t)(din > I ? din : I) * sizeof *gt);
    double *up = malloc((size_t)I * sizeof *up), *att = malloc((size_t)T * sizeof *att);
    for (int t = 0; t < T; t++)
        for (int64_t i = 0; i < d; i++) x[t * d + i] = w->embed[ids[t] * d + i];
    for (int l = 0; l < c->n_layer; l++) {
        const harp_wakv_layer *L = &w->layers[l];
        for (int t = 0; t < T; t++) {
            wt_rmsnorm(x + t * d, L->attn_norm, d, div, ar->eps, h);
            wt_fake(fa, h, 1, d);
            wt_lin(L->wq, L->bq, h, qm, d, q + t * qm);
            wt_lin(L->wk, L->bk, h, kvm, d, k + t * kvm);
            wt_lin(L->wv, L->bv, h, kvm, d, v + t * kvm);
            for (int hh = 0; hh < c->n_head; hh++) wt_rope(q + t * qm + hh * hd, hd, t, ar->rope_theta);
            for (int hh = 0; hh < c->n_kv; hh++) wt_rope(k + t * kvm + hh * hd, hd, t, ar->rope_theta);
        }
        if (R3) wt_online(R3, q, T, c->n_head), wt_online(R3, k, T, c->n_kv);
        wt_fake(fkv, k, T, kvm);
        wt_fake(fkv, v, T, kvm);
        for (int t = 0; t < T; t++) {
            for (int hh = 0; hh < c->n_head; hh++) {
                const int kh = hh / (c->n_head / c->n_kv);
                double mx = -INFINITY, sum = 0;
                for (int s = 0; s <= t; s++) {
                    double a = 0;
                    for (int64_t i = 0; i < hd; i++) a += q[t * qm + hh * hd + i] * k[s * kvm + kh * hd + i];
                    att[s] = a / sqrt((double)hd);
                    mx = fmax(mx, att[s]);
                }
                for (int s = 0; s <= t; s++) sum += att[s] = exp(att[s] - mx);
                for (int64_t i = 0; i < hd; i++) {
                    double a = 0;
                    for (int s = 0; s <= t; s++) a += att[s] / sum * v[s * kvm + kh * hd + i];
                    o[hh * hd + i] = a;
                }
            }
            wt_fake(fa, o, 1, qm);
            wt_lin(L->wo, NULL, o, d, qm, y);
            for (int64_t i = 0; i < d; i++) x[t * d + i] += y[i];
            wt_rmsnorm(x + t * d, L->ffn_norm, d, div, ar->eps, h);
            wt_fake(fa, h, 1, d);
            wt_lin(L->w_gate, NULL, h, I, d, gt);
            wt_lin(L->w_up, NULL, h, I, d, up);
            for (int64_t i = 0; i < I; i++) gt[i] = gt[i] / (1 + exp(-gt[i])) * up[i];
            if (R4) wt_online(R4, gt, 1, 0);
            wt_fake(fa, gt, 1, din);
            wt_lin(L->w_down, NULL, gt, d, din, y);
            for (int64_t i = 0; i < d; i++) x[t * d + i] += y[i];
        }
    }
    const float *head = w->head ? w->head : w->embed;
    for (int t = 0; t < T; t++) {
        wt_rmsnorm(x + t * d, w->final_norm, d, div, ar->eps, h);
        wt_lin(head, NULL, h, c->vocab, d, logits + t * c->vocab);
    }
    free(x), free(h), free(q), free(k), free(v), free(o), free(y), free(gt), free(up), free(att);
}

/* Frees arrays of a model built by the tests (malloc'd arrays, layers calloc'd). */
static inline void wt_free(harp_wakv_weights *w) {
    for (int l = 0; w->layers && l < w->dims.n_layer; l++) {
        harp_wakv_layer *L = &w->layers[l];
        free(L->attn_norm), free(L->ffn_norm), free(L->wq), free(L->wk), free(L->wv), free(L->wo);
        free(L->bq), free(L->bk), free(L->bv), free(L->w_gate), free(L->w_up), free(L->w_down);
    }
    free(w->layers), free(w->embed), free(w->head), free(w->final_norm);
    memset(w, 0, sizeof *w);
}

/* max |a − b| and max |a| over count values */
static inline void wt_diff(const double *a, const double *b, int64_t count, double *maxdiff, double *maxabs) {
    double e = 0, m = 0;
    for (int64_t i = 0; i < count; i++) m = fmax(m, fabs(a[i])), e = fmax(e, fabs(a[i] - b[i]));
    *maxdiff = e, *maxabs = m;
}

#endif
