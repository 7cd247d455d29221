/* W/A/KV on an in-memory fp32 model: the offline rotation of wakv_model.c applied to a harp_model in
 * place (so that the one forward pass, with the R3 / R4 slots of model/slots.h, runs it), and weights
 * replaced by their RTN grid values (fake quantization: the products are those of the stored codes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/slots.h"
#include "qmodel/wakv.h"
#include "quant/aq.h"

/* fp32 weight of linear `lin` (HARP_LIN_*) of layer l, NULL when its group is quantized; its bias in *bias */
static float *lin_w(harp_model *m, int l, int lin, float **bias) {
    int s;
    harp_lgroup *g = harp_model_lin(m, l, lin, &s);
    if (bias) *bias = g->bias[s];
    return g->qt ? NULL : g->w[s];
}
static float *lin_wb(harp_model *m, int l, int lin) {
    float *b;
    float *w = lin_w(m, l, lin, &b);
    return b ? NULL : w;   /* a linear that must have no bias */
}

harp_wakv_dims harp_wakv_model_dims(const harp_model *m) {
    const harp_model_config *c = &m->cfg;
    harp_wakv_dims d = {c->dim, c->hidden_dim, c->vocab_size, c->head_dim, c->n_layers, c->n_heads, c->n_kv_heads};
    return d;
}

/* The model's arrays as harp_wakv_weights (a view: nothing is copied); HARP_ERR_UNSUPPORTED unless fp32. */
static harp_status model_view(harp_model *m, harp_wakv_weights *w) {
    memset(w, 0, sizeof *w);
    w->dims = harp_wakv_model_dims(m);
    w->embed = m->tok_emb;
    w->final_norm = m->final_norm;
    w->head = m->cfg.tied ? NULL : m->head_g.w[0];
    if (!(w->layers = harp_xcalloc((size_t)m->cfg.n_layers, sizeof *w->layers, "layer views"))) return HARP_ERR_OOM;
    int ok = m->cfg.tied || w->head;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        harp_layer *L = &m->layers[l];
        harp_wakv_layer *o = &w->layers[l];
        float *bq, *bk, *bv;
        float *wq = lin_w(m, l, HARP_LIN_Q, &bq), *wk = lin_w(m, l, HARP_LIN_K, &bk), *wv = lin_w(m, l, HARP_LIN_V, &bv);
        *o = (harp_wakv_layer){L->attn_norm, wq, wk, wv, lin_wb(m, l, HARP_LIN_O), bq, bk, bv, L->ffn_norm,
                               lin_wb(m, l, HARP_LIN_GATE), lin_wb(m, l, HARP_LIN_UP), lin_wb(m, l, HARP_LIN_DOWN)};
        ok &= o->wq && o->wk && o->wv && o->wo && o->w_gate && o->w_up && o->w_down;
    }
    if (ok) return HARP_OK;
    free(w->layers);
    return harp_err(HARP_ERR_UNSUPPORTED, "wakv: the model's linears must be fp32 without o/gate/up/down biases "
                    "(rotate the unquantized model)");
}

static void put(float *dst, const float *src, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

/* The rotated arrays of r into m's own arrays (same shapes); the head gets its own array when tied. */
static harp_status model_store(harp_model *m, const harp_wakv_weights *r) {
    const harp_model_config *c = &m->cfg;
    int64_t d = c->dim, I = c->hidden_dim, V = c->vocab_size, qd = (int64_t)c->n_heads * c->head_dim,
            kd = (int64_t)c->n_kv_heads * c->head_dim;
    put(m->tok_emb, r->embed, V * d);
    put(m->final_norm, r->final_norm, d);
    if (c->tied) {
        float *h = harp_model_falloc((size_t)(V * d), "untied head");
        if (!h) return HARP_ERR_OOM;
        m->head_g.w[0] = h;
        m->head_g.w_borrowed = 0;
        m->cfg.tied = 0;
        m->info.tied_embeddings = 0;
    }
    /* the values no longer come from the source dtype: a folder stores them as fp32 */
    snprintf(m->info.weight_dtype, sizeof m->info.weight_dtype, "F32");
    put(m->head_g.w[0], r->head, V * d);
    for (int l = 0; l < c->n_layers; l++) {
        harp_layer *L = &m->layers[l];
        const harp_wakv_layer *o = &r->layers[l];
        put(L->attn_norm, o->attn_norm, d);
        put(L->ffn_norm, o->ffn_norm, d);
        float *bq, *bk, *bv;
        put(lin_w(m, l, HARP_LIN_Q, &bq), o->wq, qd * d), put(lin_w(m, l, HARP_LIN_K, &bk), o->wk, kd * d);
        put(lin_w(m, l, HARP_LIN_V, &bv), o->wv, kd * d);
        put(lin_w(m, l, HARP_LIN_O, NULL), o->wo, d * qd);
        put(lin_w(m, l, HARP_LIN_GATE, NULL), o->w_gate, I * d), put(lin_w(m, l, HARP_LIN_UP, NULL), o->w_up, I * d);
        put(lin_w(m, l, HARP_LIN_DOWN, NULL), o->w_down, d * I);
        if (o->bq) put(bq, o->bq, qd);
        if (o->bk) put(bk, o->bk, kd);
        if (o->bv) put(bv, o->bv, kd);
    }
    return HARP_OK;
}

harp_status harp_wakv_model_rotate(harp_model *m, const harp_wakv_rots *R) {
    if (!m || !R) return harp_err(HARP_ERR_INVALID_ARG, "harp_wakv_model_rotate: NULL argument");
    if ((R->r1 && harp_padrot_n_pad(R->r1) != m->cfg.dim) || (R->r4 && harp_padrot_n_pad(R->r4) != m->cfg.hidden_dim))
        return harp_err(HARP_ERR_UNSUPPORTED, "wakv: R1 or R4 expands the width (%d → %lld, %d → %lld); the forward "
                        "pass runs only rotations of the model's own widths", m->cfg.dim,
                        (long long)(R->r1 ? harp_padrot_n_pad(R->r1) : m->cfg.dim), m->cfg.hidden_dim,
                        (long long)(R->r4 ? harp_padrot_n_pad(R->r4) : m->cfg.hidden_dim));
    harp_wakv_weights in, out;
    HARP_TRY(model_view(m, &in));
    harp_status st = harp_wakv_rotate(&in, R, &out);
    free(in.layers);
    if (st) return st;
    harp_model_unload(m);
    st = model_store(m, &out);
    harp_wakv_weights_free(&out);
    if (!st) harp_model_slots_install(m);
    return st;
}

/* One fp32 linear ← its RTN grid values (MSE clip when mse). */
static harp_status wq_linear(float *W, int out, int in, const harp_quant_params *p, int mse, const char *what) {
    harp_wclip wc = harp_wclip_default();
    harp_qtensor q;
    HARP_TRY(harp_wq_rtn(p, mse ? harp_wq_fit_mse : harp_wq_fit_minmax, &wc, out, in, W, what, &q));
    harp_status st = harp_qtensor_dequantize(&q, W);
    harp_qtensor_free(&q);
    return st;
}

harp_status harp_wakv_model_wquant_rtn(harp_model *m, int bits, int group, int sym, int mse) {
    if (!m) return harp_err(HARP_ERR_INVALID_ARG, "harp_wakv_model_wquant_rtn: NULL model");
    harp_quant_params p = harp_quant_default_params(HARP_QMETHOD_RTN, bits);
    p.group_size = group;
    p.symmetric = sym;
    harp_model_unload(m);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        for (int i = 0; i < HARP_LIN_COUNT; i++) {
            char what[64];
            snprintf(what, sizeof what, "layer %d linear %d", l, i);
            int s;
            const harp_lgroup *g = harp_model_lin(m, l, i, &s);
            float *W = lin_w(m, l, i, NULL);
            if (!W) return harp_err(HARP_ERR_UNSUPPORTED, "wakv: %s is not fp32", what);
            HARP_TRY(wq_linear(W, g->out[s], g->in, &p, mse, what));
        }
    }
    return HARP_OK;
}
