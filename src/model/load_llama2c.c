/* llama2.c .bin loader: the header is validated against the file size (src/io/llama2c.c), then
 * each tensor is copied out of the mapping and checked for NaN/Inf. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "io/llama2c.h"
#include "model/model_internal.h"

static harp_status l2c_copy(const harp_mapped *map, const char *path, uint64_t off_floats, size_t n,
                            const char *what, float **out) {
    float *b = harp_model_falloc(n, what);
    if (!b) return HARP_ERR_OOM;
    memcpy(b, map->data + HARP_L2C_HEADER_BYTES + off_floats * 4, n * 4);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(b[i])) {
            free(b);
            return harp_err(HARP_ERR_NUMERIC, "%s: tensor '%s' holds a non-finite value at element %zu", path, what, i);
        }
    *out = b;
    return HARP_OK;
}

/* Linear `lin` of layer l (tensor base + l · its size) into its group's slice. */
static harp_status l2c_linear(const harp_mapped *map, const char *path, uint64_t base, int l, int lin, const char *what,
                              harp_model *m) {
    int s;
    harp_lgroup *g = harp_model_lin(m, l, lin, &s);
    size_t n = (size_t)g->out[s] * (size_t)g->in;
    return l2c_copy(map, path, base + (uint64_t)l * n, n, what, &g->w[s]);
}

static harp_status l2c_weights(const harp_mapped *map, const char *path, const harp_l2c_layout *y, harp_model *m) {
    const harp_model_config *c = &m->cfg;
    int dim = c->dim;
    HARP_TRY(l2c_copy(map, path, y->emb, (size_t)c->vocab_size * dim, "token_embedding_table", &m->tok_emb));
    for (int l = 0; l < c->n_layers; l++) {
        harp_layer *L = &m->layers[l];
        HARP_TRY(l2c_copy(map, path, y->rms_att + (uint64_t)l * dim, (size_t)dim, "rms_att_weight", &L->attn_norm));
        HARP_TRY(l2c_copy(map, path, y->rms_ffn + (uint64_t)l * dim, (size_t)dim, "rms_ffn_weight", &L->ffn_norm));
        HARP_TRY(l2c_linear(map, path, y->wq, l, HARP_LIN_Q, "wq", m));
        HARP_TRY(l2c_linear(map, path, y->wk, l, HARP_LIN_K, "wk", m));
        HARP_TRY(l2c_linear(map, path, y->wv, l, HARP_LIN_V, "wv", m));
        HARP_TRY(l2c_linear(map, path, y->wo, l, HARP_LIN_O, "wo", m));
        HARP_TRY(l2c_linear(map, path, y->w1, l, HARP_LIN_GATE, "w1", m));
        HARP_TRY(l2c_linear(map, path, y->w2, l, HARP_LIN_DOWN, "w2", m));
        HARP_TRY(l2c_linear(map, path, y->w3, l, HARP_LIN_UP, "w3", m));
    }
    HARP_TRY(l2c_copy(map, path, y->rms_final, (size_t)dim, "rms_final_weight", &m->final_norm));
    m->head_g.w_borrowed = c->tied;
    if (c->tied) m->head_g.w[0] = m->tok_emb;
    else HARP_TRY(l2c_copy(map, path, y->wcls, (size_t)c->vocab_size * dim, "wcls", &m->head_g.w[0]));
    return HARP_OK;
}

harp_status harp_load_llama2c(const char *path, harp_model **out) {
    *out = NULL;
    harp_mapped map;
    HARP_TRY(harp_map_file(path, &map));
    harp_model_config cfg;
    harp_l2c_layout lay;
    harp_model *m = NULL;
    harp_status st = harp_l2c_parse(map.data, map.size, path, &cfg, &lay);
    if (!st) st = harp_model_alloc(&cfg, &m);
    if (!st) st = l2c_weights(&map, path, &lay, m);
    if (!st) st = harp_model_init_rope(m);
    if (!st) harp_model_fill_info(m, "llama2c-bin", "F32");
    harp_unmap_file(&map);
    if (st) {
        harp_model_free(m);
        return st;
    }
    *out = m;
    return HARP_OK;
}
