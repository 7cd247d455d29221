/* Shared by the W/A/KV tests on real checkpoints: a Hugging Face Llama/Qwen2 folder read with the
 * safetensors reader into harp_wakv_weights (every array malloc'd; free with wt_free). */
#ifndef WAKV_TEST_HF_H
#define WAKV_TEST_HF_H

#include <cjson/cJSON.h>

#include "io/safetensors.h"
#include "test_json.h"
#include "wakv_test_fwd.h"

static inline double wt_jnum(const cJSON *o, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static inline float *wt_tensor(const harp_st_file *f, const char *name, int64_t numel, int required) {
    const harp_st_tensor *t = harp_st_find(f, name);
    if (!t) {
        CHECK_MSG(!required, "%s: tensor %s missing", f->path, name);
        return NULL;
    }
    CHECK_MSG(t->numel == numel, "%s: %s has %lld elements, expected %lld", f->path, name, (long long)t->numel,
              (long long)numel);
    float *p = malloc((size_t)t->numel * sizeof *p);
    CHECK_OK(harp_st_to_f32(f, t, p));
    return p;
}

static inline int wt_load_hf(const char *dir, harp_wakv_weights *w, wt_arch *ar) {
    char path[1280];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *cfg = harp_file_exists(path) ? t_load_json(path) : NULL;
    if (!cfg) return 0;
    memset(w, 0, sizeof *w);
    harp_wakv_dims *d = &w->dims;
    d->d = (int64_t)wt_jnum(cfg, "hidden_size", 0), d->ffn = (int64_t)wt_jnum(cfg, "intermediate_size", 0);
    d->vocab = (int64_t)wt_jnum(cfg, "vocab_size", 0), d->n_layer = (int)wt_jnum(cfg, "num_hidden_layers", 0);
    d->n_head = (int)wt_jnum(cfg, "num_attention_heads", 1), d->n_kv = (int)wt_jnum(cfg, "num_key_value_heads", d->n_head);
    d->head_dim = (int64_t)wt_jnum(cfg, "head_dim", (double)(d->d / d->n_head));
    ar->eps = wt_jnum(cfg, "rms_norm_eps", 1e-5);
    ar->rope_theta = wt_jnum(cfg, "rope_theta", wt_jnum(cJSON_GetObjectItem(cfg, "rope_parameters"), "rope_theta", 10000.0));
    cJSON_Delete(cfg);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    harp_st_file f;
    CHECK_OK(harp_st_open(path, &f));
    const int64_t D = d->d, hd = d->head_dim, qm = d->n_head * hd, kvm = d->n_kv * hd, I = d->ffn;
    w->embed = wt_tensor(&f, "model.embed_tokens.weight", d->vocab * D, 1);
    w->head = wt_tensor(&f, "lm_head.weight", d->vocab * D, 0);
    w->final_norm = wt_tensor(&f, "model.norm.weight", D, 1);
    w->layers = calloc((size_t)d->n_layer, sizeof *w->layers);
    for (int l = 0; l < d->n_layer; l++) {
        harp_wakv_layer *L = &w->layers[l];
        char n[160];
#define T(field, suffix, count, req) \
    (snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix), L->field = wt_tensor(&f, n, count, req))
        T(attn_norm, "input_layernorm.weight", D, 1), T(ffn_norm, "post_attention_layernorm.weight", D, 1);
        T(wq, "self_attn.q_proj.weight", qm * D, 1), T(wk, "self_attn.k_proj.weight", kvm * D, 1);
        T(wv, "self_attn.v_proj.weight", kvm * D, 1), T(wo, "self_attn.o_proj.weight", D * qm, 1);
        T(bq, "self_attn.q_proj.bias", qm, 0), T(bk, "self_attn.k_proj.bias", kvm, 0), T(bv, "self_attn.v_proj.bias", kvm, 0);
        T(w_gate, "mlp.gate_proj.weight", I * D, 1), T(w_up, "mlp.up_proj.weight", I * D, 1);
        T(w_down, "mlp.down_proj.weight", D * I, 1);
#undef T
    }
    harp_st_close(&f);
    return 1;
}

#endif
