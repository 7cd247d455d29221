/* Runtime of a quantized linear group and its validated construction from stored tensors.
 *
 * One group (qkv fused, o, up|gate fused, down) holds W̃ in the rotated basis. For X (rows × n):
 *   T = (X ⊙ s_in)·R_V               (harp_rot_apply, transpose 0)
 *   Ỹ = T · W̃ᵀ                       (E8P/RVQ: harp_qgemv / harp_qgemm; scalar: tile dequant)
 *   Y = (Ỹ·R_Uᵀ) ⊙ out_mul           (out_mul[i] = s_out[i]·slice_scale(i))
 * and every slice linear (q, k, v or up, gate) copies its columns of Y. The group result is cached
 * with a copy of its input, so q, k and v computed from the same X cost one group product; the
 * cache is exact (memcmp of the input) and guarded by a mutex. */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harp/qkernels.h"
#include "harp/rotate.h"
#include "qmodel/qmodel_internal.h"
#include "quant/quant_internal.h"

#define QG_TILE 64

typedef struct qgroup {
    int32_t m, n;
    int quip;
    harp_qmat qm;
    uint16_t *codes0;
    void *codes1;
    /* scalar */
    int bits, gsize;
    int64_t ngroups;
    uint8_t *q;        /* (m, n) unpacked codes */
    float *scale;      /* (m, ngroups) */
    uint8_t *zero;     /* (m, ngroups) */
    int32_t *g_idx;    /* (n) or NULL */
    /* transforms */
    float *in_mul;     /* (n) or NULL */
    harp_rot *rin, *rout;
    float *out_mul;    /* (m) */
    /* cache */
    pthread_mutex_t mu;
    float *xc, *yc, *tmp;
    int cache_rows, cap_rows;
    int refs;
    float bpw;
} qgroup;

typedef struct qslice {
    qgroup *g;
    int32_t off, len;
} qslice;

static void qg_free(qgroup *g) {
    if (!g) return;
    free(g->codes0);
    free(g->codes1);
    free(g->q);
    free(g->scale);
    free(g->zero);
    free(g->g_idx);
    free(g->in_mul);
    harp_rot_destroy(g->rin);
    harp_rot_destroy(g->rout);
    free(g->out_mul);
    free(g->xc);
    free(g->yc);
    free(g->tmp);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static float qg_scalar_w(const qgroup *g, int32_t r, int32_t c) {
    int64_t G = g->g_idx ? g->g_idx[c] : c / g->gsize;
    int64_t k = (int64_t)r * g->ngroups + G;
    return (float)harp_scalar_value(g->scale[k], g->q[(size_t)r * g->n + c], g->zero[k]);
}

/* Y (rows × m, ld m) = T · Ŵᵀ for scalar codes, 64-row tiles of Ŵ dequantized at a time. Each
 * output is summed by one thread in a fixed order (rows == 1) or by sgemm (as the fp32 path). */
static harp_status qg_scalar_mm(const qgroup *g, const float *T, int rows, float *Y) {
    float *tile = harp_xmalloc((size_t)QG_TILE * g->n * sizeof(float), "scalar dequant tile");
    if (!tile) return HARP_ERR_OOM;
    for (int32_t r0 = 0; r0 < g->m; r0 += QG_TILE) {
        int32_t r1 = r0 + QG_TILE < g->m ? r0 + QG_TILE : g->m;
        for (int32_t r = r0; r < r1; r++)
            for (int32_t c = 0; c < g->n; c++) tile[(size_t)(r - r0) * g->n + c] = qg_scalar_w(g, r, c);
        if (rows == 1) {
            for (int32_t r = r0; r < r1; r++) {
                const float *w = tile + (size_t)(r - r0) * g->n;
                double s = 0;
                for (int32_t c = 0; c < g->n; c++) s += (double)w[c] * T[c];
                Y[r] = (float)s;
            }
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, r1 - r0, g->n, 1.0f, T, g->n, tile, g->n, 0.0f,
                        Y + r0, g->m);
        }
    }
    free(tile);
    return HARP_OK;
}

static int qg_reserve(qgroup *g, int rows) {
    if (rows <= g->cap_rows) return 0;
    float *xc = realloc(g->xc, (size_t)rows * g->n * sizeof(float));
    if (xc) g->xc = xc;
    float *tmp = realloc(g->tmp, (size_t)rows * g->n * sizeof(float));
    if (tmp) g->tmp = tmp;
    float *yc = realloc(g->yc, (size_t)rows * g->m * sizeof(float));
    if (yc) g->yc = yc;
    if (!xc || !tmp || !yc) return -1;
    g->cap_rows = rows;
    return 0;
}

/* Full group product into g->yc (rows × m). */
static harp_status qg_forward(qgroup *g, const float *X, int rows) {
    float *T = g->tmp, *Y = g->yc;
    size_t nn = (size_t)rows * g->n;
    if (g->in_mul) {
        for (int r = 0; r < rows; r++)
            for (int32_t c = 0; c < g->n; c++) T[(size_t)r * g->n + c] = X[(size_t)r * g->n + c] * g->in_mul[c];
    } else {
        memcpy(T, X, nn * sizeof(float));
    }
    if (g->rin) HARP_TRY(harp_rot_apply(g->rin, T, rows, g->n, 0));
    if (g->quip) {
        if (rows == 1) harp_qgemv(&g->qm, T, Y);
        else HARP_TRY(harp_qgemm(&g->qm, T, rows, Y));
    } else {
        HARP_TRY(qg_scalar_mm(g, T, rows, Y));
    }
    if (g->rout) HARP_TRY(harp_rot_apply(g->rout, Y, rows, g->m, 1));
    for (int r = 0; r < rows; r++)
        for (int32_t i = 0; i < g->m; i++) Y[(size_t)r * g->m + i] *= g->out_mul[i];
    return HARP_OK;
}

static void qslice_run(const harp_linear *l, const float *X, int rows, float *Y) {
    const qslice *s = l->w;
    qgroup *g = s->g;
    pthread_mutex_lock(&g->mu);
    size_t nn = (size_t)rows * g->n;
    int hit = g->cache_rows == rows && !memcmp(g->xc, X, nn * sizeof(float));
    if (!hit) {
        g->cache_rows = 0;
        harp_status st = qg_reserve(g, rows) ? HARP_ERR_OOM : HARP_OK;
        if (!st) st = qg_forward(g, X, rows);
        if (st) {
            /* The harp_linear contract has no error channel: NaN marks the failure loudly. */
            harp_log(HARP_LOG_ERROR, "quantized linear: forward failed (%s)", harp_last_error());
            for (size_t i = 0; i < (size_t)rows * s->len; i++) Y[i] = NAN;
            pthread_mutex_unlock(&g->mu);
            return;
        }
        memcpy(g->xc, X, nn * sizeof(float));
        g->cache_rows = rows;
    }
    for (int r = 0; r < rows; r++)
        memcpy(Y + (size_t)r * s->len, g->yc + (size_t)r * g->m + s->off, (size_t)s->len * sizeof(float));
    pthread_mutex_unlock(&g->mu);
}

static void qslice_gemv(const harp_linear *l, const float *x, float *y) { qslice_run(l, x, 1, y); }

static void qslice_free(harp_linear *l) {
    qslice *s = l->w;
    if (!s) return;
    if (--s->g->refs == 0) qg_free(s->g);
    free(s);
    l->w = NULL;
}

/* ---- construction with validation ------------------------------------------------------------- */

static harp_status qm_get(const qt_list *l, const char *prefix, const char *suffix, harp_st_dtype dt, int ndim,
                          int64_t d0, int64_t d1, const qt_tensor **out) {
    char name[160];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    const qt_tensor *t = qt_find(l, name);
    if (!t) return harp_err(HARP_ERR_NOT_FOUND, "%s: missing tensor '%s'", l->origin, name);
    if (t->dtype != dt)
        return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected %s", l->origin, name,
                        harp_st_dtype_name(t->dtype), harp_st_dtype_name(dt));
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        if (ndim == 2)
            return harp_err(HARP_ERR_SHAPE, "%s: tensor '%s' has shape [%lld%s%lld], expected [%lld, %lld]", l->origin,
                            name, (long long)t->shape[0], t->ndim > 1 ? ", " : " ndim ",
                            (long long)(t->ndim > 1 ? t->shape[1] : t->ndim), (long long)d0, (long long)d1);
        return harp_err(HARP_ERR_SHAPE, "%s: tensor '%s' has %d dims / first dim %lld, expected [%lld]", l->origin,
                        name, t->ndim, (long long)t->shape[0], (long long)d0);
    }
    *out = t;
    return HARP_OK;
}

static harp_status qm_finite(const qt_list *l, const char *prefix, const char *suffix, const float *v, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return harp_err(HARP_ERR_NUMERIC, "%s: tensor '%s.%s' has a non-finite value at index %lld", l->origin, prefix,
                            suffix, (long long)i);
    return HARP_OK;
}

static harp_status qm_signs(const qt_list *l, const char *prefix, const char *suffix, int64_t n, const int8_t **out) {
    const qt_tensor *t;
    HARP_TRY(qm_get(l, prefix, suffix, HARP_ST_I8, 1, n, 0, &t));
    const int8_t *s = t->data;
    for (int64_t i = 0; i < n; i++)
        if (s[i] != 1 && s[i] != -1)
            return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s.%s' entry %lld is %d, expected +1 or -1", l->origin, prefix,
                            suffix, (long long)i, s[i]);
    *out = s;
    return HARP_OK;
}

static harp_status qm_rot(const qt_list *l, const char *prefix, const char *suffix, int64_t dim, harp_rot **out) {
    char name[160];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    const qt_tensor *t = qt_find(l, name);
    if (!t) return harp_err(HARP_ERR_NOT_FOUND, "%s: missing tensor '%s'", l->origin, name);
    if (t->dtype != HARP_ST_U8 || t->ndim != 1)
        return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s' must be a 1-D U8 rotation blob", l->origin, name);
    char what[400];
    snprintf(what, sizeof what, "%s: tensor '%s'", l->origin, name);
    HARP_TRY(harp_rot_deserialize(t->data, t->nbytes, what, out));
    if (harp_rot_dim(*out) != dim) {
        int64_t d = harp_rot_dim(*out);
        harp_rot_destroy(*out);
        *out = NULL;
        return harp_err(HARP_ERR_SHAPE, "%s: rotation dimension %lld, expected %lld", what, (long long)d, (long long)dim);
    }
    return HARP_OK;
}

static harp_status qg_build_scalar(const qt_list *l, const char *P, const qm_config *qc, qgroup *g) {
    const qt_tensor *t;
    int bits = qc->bits;
    int64_t gs = qc->group_size > 0 && qc->group_size < g->n ? qc->group_size : g->n;
    g->bits = bits;
    g->gsize = (int)gs;
    g->ngroups = (g->n + gs - 1) / gs;
    int64_t rowbytes = ((int64_t)g->n * bits + 7) / 8;
    HARP_TRY(qm_get(l, P, "qweight", HARP_ST_U8, 2, g->m, rowbytes, &t));
    const uint8_t *pk = t->data;
    g->q = harp_xmalloc((size_t)g->m * g->n, "scalar codes");
    if (!g->q) return HARP_ERR_OOM;
    for (int32_t r = 0; r < g->m; r++) {
        const uint8_t *row = pk + (size_t)r * rowbytes;
        for (int32_t c = 0; c < g->n; c++) {
            int64_t b0 = (int64_t)c * bits;
            unsigned v = 0;
            for (int b = 0; b < bits; b++) v |= (unsigned)((row[(b0 + b) >> 3] >> ((b0 + b) & 7)) & 1u) << b;
            g->q[(size_t)r * g->n + c] = (uint8_t)v;
        }
    }
    HARP_TRY(qm_get(l, P, "scales", HARP_ST_F32, 2, g->m, g->ngroups, &t));
    HARP_TRY(qm_finite(l, P, "scales", t->data, g->m * g->ngroups));
    g->scale = harp_xmalloc(t->nbytes, "scales");
    if (!g->scale) return HARP_ERR_OOM;
    memcpy(g->scale, t->data, t->nbytes);
    HARP_TRY(qm_get(l, P, "zeros", HARP_ST_U8, 2, g->m, g->ngroups, &t));
    const uint8_t *z = t->data;
    for (int64_t i = 0; i < g->m * g->ngroups; i++)
        if (z[i] >= (1u << bits))
            return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s.zeros' entry %lld is %u, out of range for %d-bit codes",
                            l->origin, P, (long long)i, z[i], bits);
    g->zero = harp_xmalloc(t->nbytes, "zeros");
    if (!g->zero) return HARP_ERR_OOM;
    memcpy(g->zero, t->data, t->nbytes);
    char gi[160];
    snprintf(gi, sizeof gi, "%s.g_idx", P);
    if (qt_find(l, gi)) {
        HARP_TRY(qm_get(l, P, "g_idx", HARP_ST_I32, 1, g->n, 0, &t));
        const int32_t *ix = t->data;
        for (int32_t c = 0; c < g->n; c++)
            if (ix[c] < 0 || ix[c] >= g->ngroups)
                return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s' entry %d is %d, out of range [0, %lld)", l->origin, gi, c,
                                ix[c], (long long)g->ngroups);
        g->g_idx = harp_xmalloc(t->nbytes, "g_idx");
        if (!g->g_idx) return HARP_ERR_OOM;
        memcpy(g->g_idx, t->data, t->nbytes);
    }
    return HARP_OK;
}

static harp_status qg_build_lattice(const qt_list *l, const char *P, const qm_config *qc, qgroup *g) {
    const qt_tensor *t;
    int32_t nc = (g->n + 7) / 8;
    harp_qfmt fmt = qc->codebook == HARP_CODEBOOK_E8P12 ? HARP_QFMT_E8P2
                    : qc->codebook == HARP_CODEBOOK_E8P12_RVQ3B ? HARP_QFMT_RVQ3 : HARP_QFMT_RVQ4;
    HARP_TRY(qm_get(l, P, "wscale", HARP_ST_F32, 1, 2, 0, &t));
    HARP_TRY(qm_finite(l, P, "wscale", t->data, 2));
    const float *ws = t->data;
    HARP_TRY(harp_qmat_init(&g->qm, fmt, g->m, g->n, ws[0], fmt == HARP_QFMT_E8P2 ? 0.0f : ws[1]));
    HARP_TRY(qm_get(l, P, "codes", HARP_ST_U16, 2, g->m, nc, &t));
    g->codes0 = harp_xmalloc(t->nbytes, "codes");
    if (!g->codes0) return HARP_ERR_OOM;
    memcpy(g->codes0, t->data, t->nbytes);
    g->qm.codes0 = g->codes0;
    if (fmt != HARP_QFMT_E8P2) {
        HARP_TRY(qm_get(l, P, "codes2", fmt == HARP_QFMT_RVQ3 ? HARP_ST_U8 : HARP_ST_U16, 2, g->m, nc, &t));
        g->codes1 = harp_xmalloc(t->nbytes, "codes2");
        if (!g->codes1) return HARP_ERR_OOM;
        memcpy(g->codes1, t->data, t->nbytes);
        g->qm.codes1 = g->codes1;
    }
    char what[200];
    snprintf(what, sizeof what, "%s: %s", l->origin, P);
    return harp_qmat_check(&g->qm, what);
}

static harp_status qg_build(const harp_model_config *c, const qm_config *qc, const qt_list *l, int layer, int gi,
                            qgroup **out) {
    *out = NULL;
    int32_t len[3];
    int64_t n;
    int ns = qm_group_slices(c, gi, len, &n);
    int64_t m = 0;
    for (int i = 0; i < ns; i++) m += len[i];
    char P[128];
    snprintf(P, sizeof P, "model.layers.%d.%s", layer, qm_group_tensor_name[gi]);
    qgroup *g = harp_xcalloc(1, sizeof *g, "quantized group");
    if (!g) return HARP_ERR_OOM;
    pthread_mutex_init(&g->mu, NULL);
    g->m = (int32_t)m;
    g->n = (int32_t)n;
    g->quip = qc->method == HARP_QMETHOD_QUIP;
    harp_status st = g->quip ? qg_build_lattice(l, P, qc, g) : qg_build_scalar(l, P, qc, g);
    const qt_tensor *t;
    if (!st) st = qm_get(l, P, "slice_scales", HARP_ST_F32, 1, ns, 0, &t);
    if (!st) st = qm_finite(l, P, "slice_scales", t->data, ns);
    const float *ss = st ? NULL : t->data;
    const int8_t *su = NULL, *sv = NULL;
    if (!st && qc->rotation != HARP_QROT_NONE) {
        st = qm_signs(l, P, "su", n, &su);
        if (!st) st = qm_signs(l, P, "sv", m, &sv);
        if (!st) st = qm_rot(l, P, "rot_in", n, &g->rin);
        if (!st) st = qm_rot(l, P, "rot_out", m, &g->rout);
    }
    if (!st) {
        g->out_mul = harp_model_falloc((size_t)m, "out_mul");
        if (su) g->in_mul = harp_model_falloc((size_t)n, "in_mul");
        if (!g->out_mul || (su && !g->in_mul)) st = HARP_ERR_OOM;
    }
    if (!st) {
        for (int64_t j = 0; su && j < n; j++) g->in_mul[j] = (float)su[j];
        int64_t r = 0;
        for (int i = 0; i < ns; i++)
            for (int32_t k = 0; k < len[i]; k++, r++) g->out_mul[r] = (sv ? (float)sv[r] : 1.0f) * ss[i];
        int64_t bytes = qt_bytes_with_prefix(l, P);
        g->bpw = (float)(8.0 * (double)bytes / ((double)m * (double)n));
    }
    if (st) {
        qg_free(g);
        return st;
    }
    *out = g;
    return HARP_OK;
}

static void qslice_init(harp_linear *lin, qgroup *g, qslice *s, int32_t off, int32_t len, const char *kind) {
    float *bias = lin->bias;
    memset(lin, 0, sizeof *lin);
    lin->bias = bias;
    lin->in = g->n;
    lin->out = len;
    s->g = g;
    s->off = off;
    s->len = len;
    lin->w = s;
    lin->matmul = qslice_run;
    lin->gemv = qslice_gemv;
    lin->free_w = qslice_free;
    lin->kind = kind;
    lin->bits = g->bpw;
    g->refs++;
}

harp_status qm_install_linears(harp_model *m, const qm_config *qc, const qt_list *l) {
    const harp_model_config *c = &m->cfg;
    int ng = c->n_layers * QM_NGROUPS, nsl = c->n_layers * 7;
    qgroup **gs = harp_xcalloc((size_t)ng, sizeof *gs, "quantized groups");
    qslice **sl = harp_xcalloc((size_t)nsl, sizeof *sl, "quantized slices");
    harp_status st = gs && sl ? HARP_OK : HARP_ERR_OOM;
    for (int i = 0; i < nsl && !st; i++)
        if (!(sl[i] = harp_xcalloc(1, sizeof **sl, "quantized slice"))) st = HARP_ERR_OOM;
    for (int i = 0; i < ng && !st; i++) st = qg_build(c, qc, l, i / QM_NGROUPS, i % QM_NGROUPS, &gs[i]);
    if (st) {
        for (int i = 0; gs && i < ng; i++) qg_free(gs[i]);
        for (int i = 0; sl && i < nsl; i++) free(sl[i]);
        free(gs);
        free(sl);
        return st;
    }
    static const char *const kinds[] = {"harp-rtn", "harp-gptq", "harp-quip"};
    const char *kind = kinds[qc->method];
    /* Slice order inside a fused group: q, k, v and up, gate (§4.1). */
    for (int layer = 0; layer < c->n_layers; layer++) {
        harp_layer *L = &m->layers[layer];
        harp_linear *lin[7] = {&L->q, &L->k, &L->v, &L->o, &L->up, &L->gate, &L->down};
        static const int grp[7] = {QM_QKV, QM_QKV, QM_QKV, QM_O, QM_UPGATE, QM_UPGATE, QM_DOWN};
        static const int idx[7] = {0, 1, 2, 0, 0, 1, 0};
        int32_t off = 0;
        for (int i = 0; i < 7; i++) {
            harp_linear_free(lin[i]);
            int32_t len3[3];
            int64_t nin;
            qm_group_slices(c, grp[i], len3, &nin);
            if (idx[i] == 0) off = 0;
            qslice_init(lin[i], gs[layer * QM_NGROUPS + grp[i]], sl[layer * 7 + i], off, len3[idx[i]], kind);
            off += len3[idx[i]];
        }
    }
    free(sl);
    free(gs);
    return HARP_OK;
}
