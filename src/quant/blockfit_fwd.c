/* Training forward of one decoder block in fp64 (blockfit.h): every intermediate the backward pass
 * needs is kept in the cache. Linears are dgemm; the rest are plain loops in a fixed order. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "quant/blockfit.h"

void harp_blk_lin_shape(const harp_blk_dims *dm, int i, int64_t *out, int64_t *in) {
    const int64_t qd = (int64_t)dm->nh * dm->hd, kvd = (int64_t)dm->nkv * dm->hd;
    const int64_t o[HARP_BLK_NLIN] = {qd, kvd, kvd, dm->d, dm->hid, dm->hid, dm->d};
    const int64_t n[HARP_BLK_NLIN] = {dm->d, dm->d, dm->d, qd, dm->d, dm->d, dm->hid};
    *out = o[i], *in = n[i];
}

harp_status harp_blk_dims_check(const harp_blk_dims *dm) {
    if (dm->d < 1 || dm->nh < 1 || dm->nkv < 1 || dm->hd < 2 || dm->hd % 2 || dm->nh % dm->nkv || dm->hid < 1 || dm->T < 1 ||
        dm->nseq < 1 || !dm->inv_freq)
        return harp_err(HARP_ERR_SHAPE,
                        "blockfit: bad block (d %d, heads %d, kv heads %d, head dim %d, hidden %d, T %d, sequences %d)", dm->d,
                        dm->nh, dm->nkv, dm->hd, dm->hid, dm->T, dm->nseq);
    return HARP_OK;
}

static size_t rows_of(const harp_blk_dims *dm) { return (size_t)dm->T * (size_t)dm->nseq; }

/* Width of linear-group input g. */
static int in_width(const harp_blk_dims *dm, int g) {
    const int w[HARP_BLK_NIN] = {dm->d, dm->nh * dm->hd, dm->d, dm->hid};
    return w[g];
}

harp_status harp_blk_wakv_check(const harp_blk_dims *dm, const harp_blk_wakv *wk) {
    static const char *const names[HARP_BLK_NQS] = {"q|k|v input", "o input", "up|gate input", "down input", "K", "V"};
    for (int g = 0; g < HARP_BLK_NIN; g++)
        if (wk->rot_in[g] && harp_rot_dim(wk->rot_in[g]) != in_width(dm, g))
            return harp_err(HARP_ERR_SHAPE, "blockfit: rotation of dimension %lld at the %s (width %d)",
                            (long long)harp_rot_dim(wk->rot_in[g]), names[g], in_width(dm, g));
    if (wk->r3 && harp_rot_dim(wk->r3) != dm->hd)
        return harp_err(HARP_ERR_SHAPE, "blockfit: R3 of dimension %lld, head dim %d", (long long)harp_rot_dim(wk->r3), dm->hd);
    for (int s = 0; s < HARP_BLK_NQS; s++) {
        const harp_aq_fmt *f = s < HARP_BLK_NIN ? wk->aq[s] : wk->kvq[s - HARP_BLK_NIN];
        if (!f) continue;
        HARP_TRY(harp_aq_check(f, s < HARP_BLK_NIN ? in_width(dm, s) : dm->nkv * dm->hd, names[s]));
        if (wk->frozen && !wk->frozen[s])
            return harp_err(HARP_ERR_INVALID_ARG, "blockfit: the %s quantizer has no frozen error", names[s]);
    }
    return HARP_OK;
}

harp_status harp_blk_cache_alloc(const harp_blk_dims *dm, harp_blk_cache *c) {
    return harp_blk_cache_alloc_wakv(dm, NULL, c);
}

harp_status harp_blk_cache_alloc_wakv(const harp_blk_dims *dm, const harp_blk_wakv *wk, harp_blk_cache *c) {
    memset(c, 0, sizeof *c);
    HARP_TRY(harp_blk_dims_check(dm));
    if (wk) {
        HARP_TRY(harp_blk_wakv_check(dm, wk));
        c->wk = *wk;
    }
    const size_t R = rows_of(dm), d = (size_t)dm->d, qd = (size_t)dm->nh * dm->hd, kvd = (size_t)dm->nkv * dm->hd;
    const size_t hid = (size_t)dm->hid, P = (size_t)dm->nseq * dm->nh * dm->T * dm->T;
    double **f[] = {&c->x, &c->r1, &c->h1, &c->q, &c->k, &c->v, &c->P, &c->ctx, &c->x2, &c->r2, &c->h2, &c->g, &c->u, &c->a, &c->y};
    const size_t len[] = {R * d, R, R * d, R * qd, R * kvd, R * kvd, P, R * qd, R * d, R, R * d, R * hid, R * hid, R * hid, R * d};
    for (size_t i = 0; i < sizeof len / sizeof len[0]; i++)
        if (!(*f[i] = harp_xcalloc(len[i], sizeof(double), "blockfit activations"))) {
            harp_blk_cache_free(c);
            return HARP_ERR_OOM;
        }
    for (int s = 0; s < HARP_BLK_NQS; s++)
        if ((s < HARP_BLK_NIN ? c->wk.aq[s] : c->wk.kvq[s - HARP_BLK_NIN]) &&
            !(c->qerr[s] = harp_xcalloc(R * (s < HARP_BLK_NIN ? (size_t)in_width(dm, s) : kvd), sizeof(double), "blockfit activations"))) {
            harp_blk_cache_free(c);
            return HARP_ERR_OOM;
        }
    return HARP_OK;
}

void harp_blk_cache_free(harp_blk_cache *c) {
    double *f[] = {c->x, c->r1, c->h1, c->q, c->k, c->v, c->P, c->ctx, c->x2, c->r2, c->h2, c->g, c->u, c->a, c->y};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) harp_free(f[i]);
    for (int s = 0; s < HARP_BLK_NQS; s++) harp_free(c->qerr[s]);
    memset(c, 0, sizeof *c);
}

harp_status harp_blk_w_alloc(const harp_blk_dims *dm, harp_blk_w *w) {
    memset(w, 0, sizeof *w);
    HARP_TRY(harp_blk_dims_check(dm));
    int ok = (w->attn_norm = harp_xcalloc((size_t)dm->d, sizeof(double), "blockfit weights")) &&
             (w->ffn_norm = harp_xcalloc((size_t)dm->d, sizeof(double), "blockfit weights"));
    for (int i = 0; ok && i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(dm, i, &m, &n);
        ok = (w->lin[i] = harp_xcalloc((size_t)(m * n), sizeof(double), "blockfit weights")) != NULL;
    }
    if (!ok) harp_blk_w_free(w);
    return ok ? HARP_OK : HARP_ERR_OOM;
}

void harp_blk_w_free(harp_blk_w *w) {
    harp_free(w->attn_norm), harp_free(w->ffn_norm);
    for (int i = 0; i < HARP_BLK_NLIN; i++) harp_free(w->lin[i]);
    memset(w, 0, sizeof *w);
}

/* Y (R × m) = X (R × n) · Wᵀ, W m × n. */
static void lin_fwd(const double *W, int64_t m, int64_t n, const double *X, size_t R, double *Y) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)m, (int)n, 1.0, X, (int)n, W, (int)n, 0.0, Y, (int)m);
}

/* h = x·r·w with r = 1/√(mean(x²) + eps) kept per row. */
static void rmsnorm_fwd(const double *x, const double *w, size_t R, int d, double eps, double *r, double *h) {
    for (size_t i = 0; i < R; i++) {
        const double *xi = x + i * d;
        double ss = 0;
        for (int j = 0; j < d; j++) ss += xi[j] * xi[j];
        r[i] = 1.0 / sqrt(ss / d + eps);
        for (int j = 0; j < d; j++) h[i * d + j] = w[j] * (xi[j] * r[i]);
    }
}

void harp_blk_rope(const harp_blk_dims *dm, double *x, int heads, double sign) {
    const int half = dm->hd / 2;
    for (size_t r = 0; r < rows_of(dm); r++) {
        const double pos = (double)(r % (size_t)dm->T);
        for (int i = 0; i < half; i++) {
            const double cs = cos(pos * dm->inv_freq[i]), sn = sign * sin(pos * dm->inv_freq[i]);
            for (int h = 0; h < heads; h++) {
                double *v = x + (r * heads + h) * dm->hd;
                const int i0 = dm->rope == HARP_ROPE_HALF ? i : 2 * i, i1 = dm->rope == HARP_ROPE_HALF ? i + half : 2 * i + 1;
                const double a = v[i0], b = v[i1];
                v[i0] = a * cs - b * sn;
                v[i1] = b * cs + a * sn;
            }
        }
    }
}

/* Causal softmax attention per (sequence, head): P (T × T, zeros above the diagonal) and ctx. */
static void attention_fwd(const harp_blk_dims *dm, const double *q, const double *k, const double *v, double *P, double *ctx) {
    const int T = dm->T, hd = dm->hd, qd = dm->nh * hd, kvd = dm->nkv * hd, grp = dm->nh / dm->nkv;
    const double scale = 1.0 / sqrt((double)hd);
    for (int s = 0; s < dm->nseq; s++)
        for (int h = 0; h < dm->nh; h++) {
            double *Ph = P + ((size_t)s * dm->nh + h) * T * T;
            const size_t r0 = (size_t)s * T;
            for (int i = 0; i < T; i++) {
                const double *qi = q + (r0 + i) * qd + (size_t)h * hd;
                double *p = Ph + (size_t)i * T, mx = -INFINITY, sum = 0;
                for (int j = 0; j <= i; j++) {
                    const double *kj = k + (r0 + j) * kvd + (size_t)(h / grp) * hd;
                    double dot = 0;
                    for (int t = 0; t < hd; t++) dot += qi[t] * kj[t];
                    p[j] = dot * scale;
                    mx = fmax(mx, p[j]);
                }
                for (int j = 0; j <= i; j++) sum += p[j] = exp(p[j] - mx);
                for (int j = 0; j <= i; j++) p[j] /= sum;
                double *o = ctx + (r0 + i) * qd + (size_t)h * hd;
                for (int t = 0; t < hd; t++) o[t] = 0;
                for (int j = 0; j <= i; j++) {
                    const double *vj = v + (r0 + j) * kvd + (size_t)(h / grp) * hd;
                    for (int t = 0; t < hd; t++) o[t] += p[j] * vj[t];
                }
            }
        }
}

/* Site s: x (R × n) ← its fake quantization by f (in fp32, as the inference forward), or x + the
 * frozen error (the surrogate); c->qerr[s] ← output − input. buf: R·n floats. */
static harp_status quant_site(harp_blk_cache *c, int s, const harp_aq_fmt *f, double *x, size_t R, int n, float *buf) {
    if (!f) return HARP_OK;
    double *e = c->qerr[s];
    const size_t len = R * (size_t)n;
    if (c->wk.frozen) {
        for (size_t i = 0; i < len; i++) e[i] = c->wk.frozen[s][i], x[i] += e[i];
        return HARP_OK;
    }
    for (size_t i = 0; i < len; i++) buf[i] = (float)x[i];
    HARP_TRY(harp_aq_fake(f, buf, (int64_t)R, n, n));
    for (size_t i = 0; i < len; i++) e[i] = (double)buf[i] - x[i], x[i] = buf[i];
    return HARP_OK;
}

/* The input x (R × width) of linear group g as the group sees it: rotated online, then quantized. */
static harp_status group_in(const harp_blk_dims *dm, harp_blk_cache *c, int g, double *x, float *buf) {
    const size_t R = rows_of(dm);
    if (c->wk.rot_in[g]) HARP_TRY(harp_rot_apply_f64(c->wk.rot_in[g], x, (int64_t)R, in_width(dm, g), 0));
    return quant_site(c, g, c->wk.aq[g], x, R, in_width(dm, g), buf);
}

/* After RoPE: R3 on every head of q and k, then the K and V quantizers. */
static harp_status qkv_wakv(const harp_blk_dims *dm, harp_blk_cache *c, float *buf) {
    const size_t R = rows_of(dm);
    if (c->wk.r3) {
        HARP_TRY(harp_rot_apply_f64(c->wk.r3, c->q, (int64_t)(R * dm->nh), dm->hd, 0));
        HARP_TRY(harp_rot_apply_f64(c->wk.r3, c->k, (int64_t)(R * dm->nkv), dm->hd, 0));
    }
    HARP_TRY(quant_site(c, HARP_BLK_QS_K, c->wk.kvq[0], c->k, R, dm->nkv * dm->hd, buf));
    return quant_site(c, HARP_BLK_QS_V, c->wk.kvq[1], c->v, R, dm->nkv * dm->hd, buf);
}

static harp_status forward_run(const harp_blk_dims *dm, const harp_blk_w *w, const double *x, harp_blk_cache *c, float *buf) {
    const size_t R = rows_of(dm), d = (size_t)dm->d;
    int64_t m, n;
    memcpy(c->x, x, R * d * sizeof *x);
    rmsnorm_fwd(x, w->attn_norm, R, dm->d, dm->eps, c->r1, c->h1);
    HARP_TRY(group_in(dm, c, HARP_BLK_IN_QKV, c->h1, buf));
    double *qkv[3] = {c->q, c->k, c->v};
    for (int i = HARP_BLK_Q; i <= HARP_BLK_V; i++) harp_blk_lin_shape(dm, i, &m, &n), lin_fwd(w->lin[i], m, n, c->h1, R, qkv[i]);
    harp_blk_rope(dm, c->q, dm->nh, 1.0);
    harp_blk_rope(dm, c->k, dm->nkv, 1.0);
    HARP_TRY(qkv_wakv(dm, c, buf));
    attention_fwd(dm, c->q, c->k, c->v, c->P, c->ctx);
    HARP_TRY(group_in(dm, c, HARP_BLK_IN_O, c->ctx, buf));
    harp_blk_lin_shape(dm, HARP_BLK_O, &m, &n);
    lin_fwd(w->lin[HARP_BLK_O], m, n, c->ctx, R, c->x2);
    for (size_t i = 0; i < R * d; i++) c->x2[i] += x[i];
    rmsnorm_fwd(c->x2, w->ffn_norm, R, dm->d, dm->eps, c->r2, c->h2);
    HARP_TRY(group_in(dm, c, HARP_BLK_IN_UG, c->h2, buf));
    harp_blk_lin_shape(dm, HARP_BLK_GATE, &m, &n);
    lin_fwd(w->lin[HARP_BLK_GATE], m, n, c->h2, R, c->g);
    lin_fwd(w->lin[HARP_BLK_UP], m, n, c->h2, R, c->u);
    for (size_t i = 0; i < R * (size_t)dm->hid; i++) c->a[i] = c->g[i] / (1.0 + exp(-c->g[i])) * c->u[i];
    HARP_TRY(group_in(dm, c, HARP_BLK_IN_DOWN, c->a, buf));
    harp_blk_lin_shape(dm, HARP_BLK_DOWN, &m, &n);
    lin_fwd(w->lin[HARP_BLK_DOWN], m, n, c->a, R, c->y);
    for (size_t i = 0; i < R * d; i++) c->y[i] += c->x2[i];
    return HARP_OK;
}

harp_status harp_blk_forward(const harp_blk_dims *dm, const harp_blk_w *w, const double *x, harp_blk_cache *c) {
    int quant = 0, widest = dm->nkv * dm->hd;
    for (int g = 0; g < HARP_BLK_NIN; g++) {
        quant |= c->wk.aq[g] != NULL;
        if (in_width(dm, g) > widest) widest = in_width(dm, g);
    }
    quant |= c->wk.kvq[0] || c->wk.kvq[1];
    float *buf = NULL;
    if (quant && !c->wk.frozen && !(buf = harp_xmalloc(rows_of(dm) * (size_t)widest * sizeof *buf, "blockfit quantizer scratch")))
        return HARP_ERR_OOM;
    harp_status st = forward_run(dm, w, x, c, buf);
    harp_free(buf);
    return st;
}
