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

static harp_status l2c_linear(const harp_mapped *map, const char *path, uint64_t base, int l, int out, int in,
                              const char *what, harp_linear *lin) {
    float *W = NULL;
    size_t n = (size_t)out * (size_t)in;
    HARP_TRY(l2c_copy(map, path, base + (uint64_t)l * n, n, what, &W));
    harp_linear_init_f32(lin, W, out, in, 1);
    return HARP_OK;
}

static harp_status l2c_weights(const harp_mapped *map, const char *path, const harp_l2c_layout *y, harp_model *m) {
    const harp_model_config *c = &m->cfg;
    int dim = c->dim, kvd = c->n_kv_heads * c->head_dim, hid = c->hidden_dim;
    HARP_TRY(l2c_copy(map, path, y->emb, (size_t)c->vocab_size * dim, "token_embedding_table", &m->tok_emb));
    for (int l = 0; l < c->n_layers; l++) {
        harp_layer *L = &m->layers[l];
        HARP_TRY(l2c_copy(map, path, y->rms_att + (uint64_t)l * dim, (size_t)dim, "rms_att_weight", &L->attn_norm));
        HARP_TRY(l2c_copy(map, path, y->rms_ffn + (uint64_t)l * dim, (size_t)dim, "rms_ffn_weight", &L->ffn_norm));
        HARP_TRY(l2c_linear(map, path, y->wq, l, dim, dim, "wq", &L->q));
        HARP_TRY(l2c_linear(map, path, y->wk, l, kvd, dim, "wk", &L->k));
        HARP_TRY(l2c_linear(map, path, y->wv, l, kvd, dim, "wv", &L->v));
        HARP_TRY(l2c_linear(map, path, y->wo, l, dim, dim, "wo", &L->o));
        HARP_TRY(l2c_linear(map, path, y->w1, l, hid, dim, "w1", &L->gate));
        HARP_TRY(l2c_linear(map, path, y->w2, l, dim, hid, "w2", &L->down));
        HARP_TRY(l2c_linear(map, path, y->w3, l, hid, dim, "w3", &L->up));
    }
    HARP_TRY(l2c_copy(map, path, y->rms_final, (size_t)dim, "rms_final_weight", &m->final_norm));
    if (c->tied) {
        harp_linear_init_f32(&m->head, m->tok_emb, c->vocab_size, dim, 0);
    } else {
        float *W = NULL;
        HARP_TRY(l2c_copy(map, path, y->wcls, (size_t)c->vocab_size * dim, "wcls", &W));
        harp_linear_init_f32(&m->head, W, c->vocab_size, dim, 1);
    }
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
    if (!st) st = harp_model_build_layers(m, HARP_QTYPE_F32);
    if (!st) harp_model_fill_info(m, "llama2c-bin", "F32");
    harp_unmap_file(&map);
    if (st) {
        harp_model_free(m);
        return st;
    }
    *out = m;
    return HARP_OK;
}
