/* A model's weights on a backend, loaded once per (model, backend) and kept until the model is
 * freed (or harp_model_unload): contexts on the same backend share them. On a host backend they
 * are the model's own arrays. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model_internal.h"

static const harp_lgroup *group_of(const harp_model *m, int i) {
    return &m->layers[i / HARP_LG_COUNT].cfg.g[i % HARP_LG_COUNT];
}

static void mw_free(const harp_model *m, harp_mweights *w) {
    if (!w) return;
    harp_backend *b = w->b;
    int L = m->cfg.n_layers;
    for (int i = 0; w->groups && i < L * HARP_LG_COUNT; i++)
        if (w->groups[i]) b->vt->free_group(b, w->groups[i]);
    if (w->head) b->vt->free_group(b, w->head);
    if (w->owned) {
        b->vt->free(b, w->final_norm);
        b->vt->free(b, w->inv_freq);
        for (int l = 0; l < L; l++) {
            if (w->attn_norm) b->vt->free(b, w->attn_norm[l]);
            if (w->ffn_norm) b->vt->free(b, w->ffn_norm[l]);
        }
    }
    free(w->attn_norm);
    free(w->ffn_norm);
    free(w->groups);
    harp_backend_free(b);
    free(w);
}

static harp_status put(harp_mweights *w, float *src, size_t n, const char *what, float **dst) {
    harp_backend *b = w->b;
    if (!w->owned) {
        *dst = src;
        return HARP_OK;
    }
    *dst = b->vt->alloc(b, n * sizeof(float), what);
    if (!*dst) return HARP_ERR_OOM;
    return b->vt->upload(b, *dst, src, n * sizeof(float));
}

static harp_status load_group(harp_mweights *w, const harp_lgroup *g, const char *what, void **handle) {
    harp_backend *b = w->b;
    if (!harp_backend_supports(b, HARP_OP_LINEAR, g->qtype))
        return harp_err(HARP_ERR_UNSUPPORTED, "backend %s: %s has weights of type %d, which it cannot run", b->name, what,
                        (int)g->qtype);
    harp_status st = b->vt->load_group(b, g, handle);
    if (st) harp_err(st, "backend %s: cannot load %s", b->name, what);
    return st;
}

static harp_status mw_fill(harp_model *m, harp_mweights *w) {
    const harp_model_config *c = &m->cfg;
    int L = c->n_layers;
    w->attn_norm = harp_xcalloc((size_t)L, sizeof *w->attn_norm, "backend norms");
    w->ffn_norm = harp_xcalloc((size_t)L, sizeof *w->ffn_norm, "backend norms");
    w->groups = harp_xcalloc((size_t)L * HARP_LG_COUNT, sizeof *w->groups, "backend groups");
    if (!w->attn_norm || !w->ffn_norm || !w->groups) return HARP_ERR_OOM;
    HARP_TRY(put(w, m->final_norm, (size_t)c->dim, "final norm", &w->final_norm));
    HARP_TRY(put(w, m->rope_inv_freq, (size_t)c->head_dim / 2, "rope frequencies", &w->inv_freq));
    for (int l = 0; l < L; l++) {
        HARP_TRY(put(w, m->layers[l].attn_norm, (size_t)c->dim, "attention norm", &w->attn_norm[l]));
        HARP_TRY(put(w, m->layers[l].ffn_norm, (size_t)c->dim, "mlp norm", &w->ffn_norm[l]));
    }
    static const char *const names[HARP_LG_COUNT] = {"q|k|v", "o", "up|gate", "down"};
    for (int i = 0; i < L * HARP_LG_COUNT; i++) {
        char what[64];
        snprintf(what, sizeof what, "layer %d %s", i / HARP_LG_COUNT, names[i % HARP_LG_COUNT]);
        HARP_TRY(load_group(w, group_of(m, i), what, &w->groups[i]));
    }
    return load_group(w, &m->head_g, "head", &w->head);
}

harp_status harp_model_weights(harp_model *m, harp_backend *b, const harp_mweights **out) {
    *out = NULL;
    pthread_mutex_lock(&m->backends_mu);
    harp_mweights *w = m->on_backends;
    while (w && w->b != b) w = w->next;
    harp_status st = HARP_OK;
    if (!w) {
        w = harp_xcalloc(1, sizeof *w, "backend weights");
        if (!w) st = HARP_ERR_OOM;
        else if (!(w->b = harp_backend_retain(b))) {
            free(w);
            w = NULL;
            st = harp_err(HARP_ERR_INVALID_ARG, "backend %s: used after it was freed", b->name);
        } else {
            w->owned = !b->vt->host_memory;
            st = mw_fill(m, w);
            if (st) {
                mw_free(m, w);
                w = NULL;
            } else {
                static atomic_uint_fast64_t serials;
                w->serial = atomic_fetch_add(&serials, 1) + 1;
                w->next = m->on_backends;
                m->on_backends = w;
            }
        }
    }
    pthread_mutex_unlock(&m->backends_mu);
    *out = w;
    return st;
}

void harp_model_weights_free_all(harp_model *m) {
    pthread_mutex_lock(&m->backends_mu);
    harp_mweights *w = m->on_backends;
    m->on_backends = NULL;
    pthread_mutex_unlock(&m->backends_mu);
    while (w) {
        harp_mweights *n = w->next;
        mw_free(m, w);
        w = n;
    }
}

void harp_model_unload(harp_model *m) {
    if (m) harp_model_weights_free_all(m);
}

/* The float arrays beside the groups: final norm, two norms per layer, RoPE frequencies (mw_fill). */
static size_t vec_bytes(const harp_model_config *c) {
    return ((size_t)c->dim * (1 + 2 * (size_t)c->n_layers) + (size_t)c->head_dim / 2) * sizeof(float);
}

/* What m's weights take on b (0 on a host backend: they are the model's own arrays). */
size_t harp_model_weights_bytes(const harp_model *m, harp_backend *b) {
    if (!m || !b || b->vt->host_memory) return 0;
    const harp_model_config *c = &m->cfg;
    size_t n = vec_bytes(c);
    for (int i = 0; i < c->n_layers * HARP_LG_COUNT; i++) n += b->vt->group_bytes(b, group_of(m, i));
    return n + b->vt->group_bytes(b, &m->head_g);
}

size_t harp_mweights_held(const harp_model *m, const harp_mweights *w) {
    harp_backend *b = w->b;
    if (b->vt->host_memory) return 0;
    if (!b->vt->group_held) return harp_model_weights_bytes(m, b);
    const harp_model_config *c = &m->cfg;
    size_t n = vec_bytes(c);
    for (int i = 0; i < c->n_layers * HARP_LG_COUNT; i++) n += b->vt->group_held(b, w->groups[i]);
    return n + b->vt->group_held(b, w->head);
}

size_t harp_model_backend_bytes(harp_model *m, harp_backend *b) {
    if (!m || !b) return 0;
    pthread_mutex_lock(&m->backends_mu);
    const harp_mweights *w = m->on_backends;
    while (w && w->b != b) w = w->next;
    pthread_mutex_unlock(&m->backends_mu);
    return w ? 0 : harp_model_weights_bytes(m, b);
}

harp_status harp_backend_free_memory(harp_backend *b, size_t *bytes) {
    if (!b || !bytes) return harp_err(HARP_ERR_INVALID_ARG, "harp_backend_free_memory: NULL argument");
    return b->vt->mem_free(b, bytes);
}
