/* The whole offline rotation of a model (wakv.h, harp_wakv_rotate): fold every RMSNorm, untie the
 * head, fuse R1 into the residual-stream readers and writers, R2 into v and o, and R4's offline half
 * into down. Works layer by layer on copies; the input arrays are never modified. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "wakv.h"

static void layer_free(harp_wakv_layer *L) {
    free(L->attn_norm), free(L->ffn_norm);
    free(L->wq), free(L->wk), free(L->wv), free(L->wo);
    free(L->bq), free(L->bk), free(L->bv);
    free(L->w_gate), free(L->w_up), free(L->w_down);
    memset(L, 0, sizeof *L);
}

void harp_wakv_layer_free(harp_wakv_layer *L) {
    if (L) layer_free(L);
}

void harp_wakv_weights_free(harp_wakv_weights *w) {
    if (!w) return;
    free(w->embed), free(w->head), free(w->final_norm);
    for (int l = 0; w->layers && l < w->dims.n_layer; l++) layer_free(&w->layers[l]);
    free(w->layers);
    memset(w, 0, sizeof *w);
}

static float *alloc_f(int64_t count) { return harp_xmalloc((size_t)count * sizeof(float) + 1, "rotated weights"); }

static float *dup_f(const float *src, int64_t count) {
    float *p = src ? alloc_f(count) : NULL;
    if (p) memcpy(p, src, (size_t)count * sizeof *p);
    return p;
}

static float *ones_f(int64_t count) {
    float *p = alloc_f(count);
    for (int64_t i = 0; p && i < count; i++) p[i] = 1.0f;
    return p;
}

/* *out (m × n') = [W·diag(γ), 0]·R for W (m × n). */
static harp_status fold_rot_in(const harp_padrot *R, const float *W, const float *gamma, int64_t m, float **out) {
    const int64_t n = harp_padrot_n(R);
    float *t = dup_f(W, m * n);
    *out = alloc_f(m * harp_padrot_n_pad(R));
    harp_status st = t && *out ? HARP_OK : HARP_ERR_OOM;
    if (st == HARP_OK) {
        if (gamma) harp_wakv_fold_norm(gamma, n, t, m);
        st = harp_wakv_rot_in(R, t, m, *out);
    }
    free(t);
    return st;
}

typedef struct rot_ctx {
    const harp_wakv_dims *dm;
    const harp_padrot *r1, *r4;  /* never NULL: identities stand in for "none" */
    const harp_padrot *ro;       /* NULL = none */
} rot_ctx;

static harp_status rotate_layer_ctx(const rot_ctx *c, const harp_wakv_layer *in, const harp_padrot *r2,
                                   harp_wakv_layer *o) {
    const harp_wakv_dims *dm = c->dm;
    const int64_t hd = dm->head_dim, qm = dm->n_head * hd, kvm = dm->n_kv * hd, I = dm->ffn, d = dm->d;
    const int64_t d2 = harp_padrot_n_pad(c->r1), I2 = harp_padrot_n_pad(c->r4);
    HARP_TRY(fold_rot_in(c->r1, in->wq, in->attn_norm, qm, &o->wq));
    HARP_TRY(fold_rot_in(c->r1, in->wk, in->attn_norm, kvm, &o->wk));
    HARP_TRY(fold_rot_in(c->r1, in->wv, in->attn_norm, kvm, &o->wv));
    if ((in->bq && !(o->bq = dup_f(in->bq, qm))) || (in->bk && !(o->bk = dup_f(in->bk, kvm))) ||
        (in->bv && !(o->bv = dup_f(in->bv, kvm))))
        return HARP_ERR_OOM;
    if (r2) HARP_TRY(harp_wakv_rot_heads_out(r2, o->wv, o->bv, dm->n_kv, d2));
    float *t = dup_f(in->wo, d * qm);
    if (!t || !(o->wo = alloc_f(d2 * qm))) {
        free(t);
        return HARP_ERR_OOM;
    }
    harp_status st = r2 ? harp_wakv_rot_heads_in(r2, t, d, dm->n_head) : HARP_OK;
    if (st == HARP_OK && c->ro) {   /* R_o's offline half on the input columns, after R2 */
        float *u = alloc_f(d * qm);
        st = u ? harp_wakv_rot_in(c->ro, t, d, u) : HARP_ERR_OOM;
        free(t);
        t = u;
    }
    if (st == HARP_OK) st = harp_wakv_rot_out(c->r1, t, qm, o->wo);
    free(t);
    HARP_TRY(st);
    HARP_TRY(fold_rot_in(c->r1, in->w_gate, in->ffn_norm, I, &o->w_gate));
    HARP_TRY(fold_rot_in(c->r1, in->w_up, in->ffn_norm, I, &o->w_up));
    /* down (d × I): R4 on its input columns, then R1 on its output rows */
    t = alloc_f(d * I2);
    if (!t || !(o->w_down = alloc_f(d2 * I2))) {
        free(t);
        return HARP_ERR_OOM;
    }
    st = harp_wakv_rot_in(c->r4, in->w_down, d, t);
    if (st == HARP_OK) st = harp_wakv_rot_out(c->r1, t, I2, o->w_down);
    free(t);
    HARP_TRY(st);
    if (!(o->attn_norm = ones_f(d2)) || !(o->ffn_norm = ones_f(d2))) return HARP_ERR_OOM;
    return HARP_OK;
}

static harp_status check_model(const harp_wakv_weights *in, const harp_wakv_rots *R) {
    const harp_wakv_dims *dm = &in->dims;
    if (!in->embed || !in->final_norm || !in->layers || dm->n_layer < 1 || dm->n_head < 1 || dm->n_kv < 1 ||
        dm->n_head % dm->n_kv || dm->vocab < 1)
        return harp_err(HARP_ERR_INVALID_ARG, "wakv rotate: incomplete model arrays or bad head counts");
    if ((in->norm_div && in->norm_div != dm->d) || (in->down_in && in->down_in != dm->ffn))
        return harp_err(HARP_ERR_INVALID_ARG, "wakv rotate: the model is already expanded (rotate the original)");
    if ((R->r1 && harp_padrot_n(R->r1) != dm->d) || (R->r4 && harp_padrot_n(R->r4) != dm->ffn) ||
        (R->ro && (harp_padrot_n(R->ro) != (int64_t)dm->n_head * dm->head_dim ||
                   harp_padrot_n_pad(R->ro) != harp_padrot_n(R->ro))) ||
        (R->r2 && R->n_layer != dm->n_layer))
        return harp_err(HARP_ERR_SHAPE, "wakv rotate: rotations were built for other model dimensions");
    for (int l = 0; R->r2 && l < dm->n_layer; l++)
        if (R->r2[l] && harp_padrot_n(R->r2[l]) != dm->head_dim)
            return harp_err(HARP_ERR_SHAPE, "wakv rotate: R2 of layer %d is not head_dim wide", l);
    return HARP_OK;
}

static harp_status rotate_all(const harp_wakv_weights *in, const rot_ctx *c, const harp_wakv_rots *R,
                              harp_wakv_weights *out) {
    const harp_wakv_dims *dm = &in->dims;
    out->layers = harp_xcalloc((size_t)dm->n_layer, sizeof *out->layers, "rotated layers");
    if (!out->layers) return HARP_ERR_OOM;
    HARP_TRY(fold_rot_in(c->r1, in->embed, NULL, dm->vocab, &out->embed));
    HARP_TRY(fold_rot_in(c->r1, in->head ? in->head : in->embed, in->final_norm, dm->vocab, &out->head));
    if (!(out->final_norm = ones_f(harp_padrot_n_pad(c->r1)))) return HARP_ERR_OOM;
    for (int l = 0; l < dm->n_layer; l++)
        HARP_TRY(rotate_layer_ctx(c, &in->layers[l], R->r2 ? R->r2[l] : NULL, &out->layers[l]));
    return HARP_OK;
}

/* The context of dims and R, with identities (to destroy with ctx_done) standing in for absent R1 / R4. */
static harp_status ctx_make(const harp_wakv_dims *dm, const harp_wakv_rots *R, rot_ctx *c, harp_padrot **id) {
    id[0] = id[1] = NULL;
    harp_status st = R->r1 ? HARP_OK : harp_padrot_wrap(NULL, dm->d, &id[0]);
    if (st == HARP_OK && !R->r4) st = harp_padrot_wrap(NULL, dm->ffn, &id[1]);
    c->dm = dm, c->r1 = R->r1 ? R->r1 : id[0], c->r4 = R->r4 ? R->r4 : id[1], c->ro = R->ro;
    return st;
}

static void ctx_done(harp_padrot **id) { harp_padrot_destroy(id[0]), harp_padrot_destroy(id[1]); }

harp_status harp_wakv_rotate_layer(const harp_wakv_dims *dm, const harp_wakv_rots *R, int l, const harp_wakv_layer *in,
                                   harp_wakv_layer *out) {
    if (!dm || !R || !in || !out || l < 0 || l >= dm->n_layer)
        return harp_err(HARP_ERR_INVALID_ARG, "wakv rotate layer: bad arguments (layer %d)", l);
    memset(out, 0, sizeof *out);
    rot_ctx c;
    harp_padrot *id[2];
    harp_status st = ctx_make(dm, R, &c, id);
    if (st == HARP_OK) st = rotate_layer_ctx(&c, in, R->r2 ? R->r2[l] : NULL, out);
    ctx_done(id);
    if (st != HARP_OK) layer_free(out);
    return st;
}

harp_status harp_wakv_rotate(const harp_wakv_weights *in, const harp_wakv_rots *R, harp_wakv_weights *out) {
    if (!in || !R || !out) return harp_err(HARP_ERR_INVALID_ARG, "wakv rotate: NULL argument");
    memset(out, 0, sizeof *out);
    HARP_TRY(check_model(in, R));
    rot_ctx c;
    harp_padrot *id[2];
    harp_status st = ctx_make(&in->dims, R, &c, id);
    out->dims = in->dims;
    if (st == HARP_OK) st = rotate_all(in, &c, R, out);
    if (st == HARP_OK) {
        out->dims.d = harp_padrot_n_pad(c.r1);
        out->down_in = harp_padrot_n_pad(c.r4);
        out->norm_div = in->norm_div ? in->norm_div : in->dims.d;
    } else {
        harp_wakv_weights_free(out);
    }
    ctx_done(id);
    return st;
}
