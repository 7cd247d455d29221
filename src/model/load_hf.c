/* Hugging Face folder loader: config.json + model.safetensors or sharded model-*.safetensors with
 * model.safetensors.index.json. Every tensor is looked up by name, shape-checked, converted to
 * fp32 and NaN/Inf-checked; the files are unmapped again before returning. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "io/safetensors.h"
#include "model/model_internal.h"
#include "model/slots.h"
#include "qformat/qformat.h"

/* config.json and the shard index are a few kB (an index of 1000 tensors ~ 100 kB); larger files
 * are refused unread, so that their parse trees stay small. */
#define HARP_CONFIG_MAX_BYTES (1 << 20)
#define HARP_INDEX_MAX_BYTES (4 << 20)

typedef struct hf_files {
    harp_st_file *files;
    int n;
    const char *dtype_seen;   /* first dtype name; "mixed" once two differ */
} hf_files;

static void hf_files_close(hf_files *h) {
    for (int i = 0; i < h->n; i++) harp_st_close(&h->files[i]);
    free(h->files);
    h->files = NULL;
    h->n = 0;
}

/* Opens the single file, or every distinct shard named in the index's weight_map. */
static harp_status hf_open_files(const char *dir, hf_files *h) {
    memset(h, 0, sizeof *h);
    char *single = harp_path_join(dir, "model.safetensors");
    char *index = harp_path_join(dir, "model.safetensors.index.json");
    harp_status st = HARP_OK;
    if (!single || !index) {
        st = HARP_ERR_OOM;
        goto done;
    }
    if (harp_file_exists(single) || !harp_file_exists(index)) {
        h->files = harp_xcalloc(1, sizeof *h->files, "safetensors files");
        if (!h->files) {
            st = HARP_ERR_OOM;
            goto done;
        }
        if (!harp_file_exists(single)) {
            st = harp_err(HARP_ERR_NOT_FOUND, "%s: no model.safetensors or model.safetensors.index.json", dir);
            goto done;
        }
        st = harp_st_open(single, &h->files[0]);
        if (!st) h->n = 1;
        goto done;
    }
    char *text = NULL;
    size_t len = 0;
    if ((st = harp_read_file_max(index, HARP_INDEX_MAX_BYTES, &text, &len))) goto done;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *wm = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        st = harp_err(HARP_ERR_FORMAT, "%s: not valid JSON with a 'weight_map' object", index);
        goto done;
    }
    int cap = cJSON_GetArraySize(wm);
    h->files = harp_xcalloc((size_t)cap + 1, sizeof *h->files, "safetensors shards");
    const char **names = harp_xcalloc((size_t)cap + 1, sizeof *names, "shard names");
    if (!h->files || !names) st = HARP_ERR_OOM;
    for (const cJSON *e = wm->child; e && !st; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/')) {
            st = harp_err(HARP_ERR_FORMAT, "%s: weight_map entry '%s' is not a plain file name", index, e->string ? e->string : "?");
            break;
        }
        int seen = 0;
        for (int i = 0; i < h->n; i++) seen |= !strcmp(names[i], e->valuestring);
        if (seen) continue;
        char *p = harp_path_join(dir, e->valuestring);
        if (!p) {
            st = HARP_ERR_OOM;
            break;
        }
        st = harp_st_open(p, &h->files[h->n]);
        free(p);
        if (!st) names[h->n++] = e->valuestring;
    }
    free(names);
    cJSON_Delete(root);
done:
    free(single);
    free(index);
    if (st) hf_files_close(h);
    return st;
}

static harp_status hf_find(const hf_files *h, const char *name, const harp_st_file **f, const harp_st_tensor **t) {
    for (int i = 0; i < h->n; i++) {
        const harp_st_tensor *x = harp_st_find(&h->files[i], name);
        if (x) {
            *f = &h->files[i];
            *t = x;
            return HARP_OK;
        }
    }
    return harp_err(HARP_ERR_NOT_FOUND, "%s: missing tensor '%s'", h->n ? h->files[0].path : "model", name);
}

/* Loads tensor `name` of shape (d0[, d1]) as a fresh fp32 buffer. d1 = 0 means a 1-D tensor. */
static harp_status hf_tensor(hf_files *h, const char *name, int64_t d0, int64_t d1, float **out) {
    const harp_st_file *f = NULL;
    const harp_st_tensor *t = NULL;
    *out = NULL;
    HARP_TRY(hf_find(h, name, &f, &t));
    int nd = d1 ? 2 : 1;
    if (t->ndim != nd || t->shape[0] != d0 || (nd == 2 && t->shape[1] != d1)) {
        char got[96] = "";
        size_t o = 0;
        for (int i = 0; i < t->ndim && o < sizeof got - 24; i++)
            o += (size_t)snprintf(got + o, sizeof got - o, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (nd == 2)
            return harp_err(HARP_ERR_SHAPE, "%s: tensor '%s' has shape [%s], expected [%lld, %lld]", f->path, name, got,
                            (long long)d0, (long long)d1);
        return harp_err(HARP_ERR_SHAPE, "%s: tensor '%s' has shape [%s], expected [%lld]", f->path, name, got, (long long)d0);
    }
    float *buf = harp_model_falloc((size_t)t->numel, name);
    if (!buf) return HARP_ERR_OOM;
    harp_status st = harp_st_to_f32(f, t, buf);
    if (st) {
        free(buf);
        return st;
    }
    const char *dn = harp_st_dtype_name(t->dtype);
    if (!h->dtype_seen) h->dtype_seen = dn;
    else if (strcmp(h->dtype_seen, dn)) h->dtype_seen = "mixed";
    *out = buf;
    return HARP_OK;
}

/* Linear `lin` of layer l into its group's slice. quant != 0: a harp quantized folder; only the bias
 * is read here, the group's weights come from harp_model_set_quantized afterwards. */
static harp_status hf_linear(hf_files *h, harp_model *m, int l, int lin, int quant) {
    const harp_model_config *c = &m->cfg;
    int s;
    harp_lgroup *g = harp_model_lin(m, l, lin, &s);
    const int bias = lin <= HARP_LIN_V ? c->qkv_bias : lin == HARP_LIN_O ? c->o_bias : c->mlp_bias;
    char name[256];
    if (!quant) {
        snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, harp_lin_slots[lin].hf_name);
        HARP_TRY(hf_tensor(h, name, g->out[s], g->in, &g->w[s]));
    }
    if (bias) {
        snprintf(name, sizeof name, "model.layers.%d.%s.bias", l, harp_lin_slots[lin].hf_name);
        HARP_TRY(hf_tensor(h, name, g->out[s], 0, &g->bias[s]));
    }
    return HARP_OK;
}

static harp_status hf_load_weights(hf_files *h, harp_model *m, int quant) {
    const harp_model_config *c = &m->cfg;
    HARP_TRY(hf_tensor(h, "model.embed_tokens.weight", c->vocab_size, c->dim, &m->tok_emb));
    for (int l = 0; l < c->n_layers; l++) {
        harp_layer *L = &m->layers[l];
        char n[160];
        snprintf(n, sizeof n, "model.layers.%d.input_layernorm.weight", l);
        HARP_TRY(hf_tensor(h, n, c->dim, 0, &L->attn_norm));
        snprintf(n, sizeof n, "model.layers.%d.post_attention_layernorm.weight", l);
        HARP_TRY(hf_tensor(h, n, c->dim, 0, &L->ffn_norm));
        for (int k = 0; k < HARP_LIN_COUNT; k++) HARP_TRY(hf_linear(h, m, l, k, quant));
    }
    HARP_TRY(hf_tensor(h, "model.norm.weight", c->dim, 0, &m->final_norm));
    m->head_g.w_borrowed = c->tied;
    if (c->tied) m->head_g.w[0] = m->tok_emb;
    else HARP_TRY(hf_tensor(h, "lm_head.weight", c->vocab_size, c->dim, &m->head_g.w[0]));
    return HARP_OK;
}

static harp_status hf_install_quantized(harp_model *m, const qf_config *qc, const harp_st_file *f) {
    qf_tensors ql = {0};
    harp_status st = qf_tensors_from_st(f, &ql);
    if (!st) st = harp_model_set_quantized(m, qc, &ql);
    qf_tensors_free(&ql);
    return st;
}

harp_status harp_load_hf(const char *dir, harp_model **out) {
    *out = NULL;
    char *cfg_path = harp_path_join(dir, "config.json");
    if (!cfg_path) return HARP_ERR_OOM;
    char *text = NULL;
    size_t len = 0;
    harp_model_config cfg;
    harp_status st = harp_read_file_max(cfg_path, HARP_CONFIG_MAX_BYTES, &text, &len);
    if (!st) st = harp_hf_config_parse(text, len, cfg_path, &cfg);
    int is_q = 0;
    qf_config qc = {0};
    if (!st) st = qf_config_parse(text, len, cfg_path, cfg.n_layers, &is_q, &qc);
    if (st) {
        free(text);
        free(cfg_path);
        return st;
    }
    hf_files h;
    if ((st = hf_open_files(dir, &h))) {
        qf_config_free(&qc);
        free(text);
        free(cfg_path);
        return st;
    }
    harp_model *m = NULL;
    st = harp_model_alloc(&cfg, &m);
    if (!st) st = hf_load_weights(&h, m, is_q);
    if (!st) st = harp_model_init_rope(m);
    if (!st) harp_model_fill_info(m, is_q ? "harp-quantized" : "hf-safetensors", h.dtype_seen ? h.dtype_seen : "F32");
    if (!st && is_q) {
        if (h.n != 1) st = harp_err(HARP_ERR_FORMAT, "%s: a harp quantized folder must hold one model.safetensors", dir);
        if (!st) st = hf_install_quantized(m, &qc, &h.files[0]);
    }
    if (!st && is_q) st = harp_model_exec_from_config(m, text, len, cfg_path);   /* W/A/KV slots, if any */
    free(text);
    free(cfg_path);
    qf_config_free(&qc);
    hf_files_close(&h);
    if (st) {
        harp_model_free(m);
        return st;
    }
    *out = m;
    return HARP_OK;
}
