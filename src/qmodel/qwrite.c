/* Quantized folder writer: config.json (source config + quantization_config), model.safetensors
 * (unquantized embeddings / norms / head in the source dtype, then the quantized tensors, in a
 * fixed order), tokenizer files copied. Every file is written atomically and holds no timestamp,
 * so equal runs give byte-identical folders. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/st_writer.h"
#include "qmodel/qmodel_internal.h"

/* Adds an fp32 vector/matrix in the source dtype (values came from that dtype, so exact). */
static harp_status qw_add_f(st_writer *w, const char *name, harp_st_dtype dt, const float *x, int64_t d0, int64_t d1) {
    int64_t shape[2] = {d0, d1};
    int nd = d1 ? 2 : 1;
    size_t n = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    if (dt == HARP_ST_F32) return st_writer_add(w, name, HARP_ST_F32, shape, nd, x);
    uint16_t *h = harp_xmalloc(n * 2 + 2, name);
    if (!h) return HARP_ERR_OOM;
    for (size_t i = 0; i < n; i++) {
        if (dt == HARP_ST_F16) {
            h[i] = harp_f32_to_f16(x[i]);
        } else {
            uint32_t u;
            memcpy(&u, &x[i], 4);
            h[i] = (uint16_t)(u >> 16);
        }
    }
    harp_status st = st_writer_add(w, name, dt, shape, nd, h);
    free(h);
    return st;
}

static harp_status qw_tensors(const harp_model *m, const qf_tensors *q, const char *path) {
    const harp_model_config *c = &m->cfg;
    harp_st_dtype dt = !strcmp(m->info.weight_dtype, "F16")    ? HARP_ST_F16
                       : !strcmp(m->info.weight_dtype, "BF16") ? HARP_ST_BF16
                                                               : HARP_ST_F32;
    st_writer *w = st_writer_new();
    if (!w) return harp_err(HARP_ERR_OOM, "%s: out of memory", path);
    harp_status st = qw_add_f(w, "model.embed_tokens.weight", dt, m->tok_emb, c->vocab_size, c->dim);
    for (int l = 0; l < c->n_layers && !st; l++) {
        const harp_layer *L = &m->layers[l];
        char n[160];
        snprintf(n, sizeof n, "model.layers.%d.input_layernorm.weight", l);
        st = qw_add_f(w, n, dt, L->attn_norm, c->dim, 0);
        snprintf(n, sizeof n, "model.layers.%d.post_attention_layernorm.weight", l);
        if (!st) st = qw_add_f(w, n, dt, L->ffn_norm, c->dim, 0);
        for (int i = 0; i < HARP_LIN_COUNT && !st; i++) {
            int s;
            const harp_lgroup *g = harp_model_lin_c(m, l, i, &s);
            if (!g->bias[s]) continue;
            snprintf(n, sizeof n, "model.layers.%d.%s.bias", l, harp_lin_slots[i].hf_name);
            st = qw_add_f(w, n, dt, g->bias[s], g->out[s], 0);
        }
        /* this layer's quantized tensors, in the order the pipeline produced them */
        snprintf(n, sizeof n, "model.layers.%d.", l);
        if (!st) st = qf_tensors_to_writer(q, n, w);
    }
    if (!st) st = qw_add_f(w, "model.norm.weight", dt, m->final_norm, c->dim, 0);
    if (!st && !c->tied) {
        const float *H = m->head_g.qt ? NULL : m->head_g.w[0];
        if (!H) st = harp_err(HARP_ERR_UNSUPPORTED, "%s: head is not an fp32 matrix", path);
        else st = qw_add_f(w, "lm_head.weight", dt, H, c->vocab_size, c->dim);
    }
    if (!st) st = st_writer_save(w, path);
    st_writer_free(w);
    return st;
}

/* config.json for a llama2.c source: an HF Llama config plus the interleaved RoPE marker. */
static cJSON *qw_synth_config(const harp_model *m) {
    const harp_model_config *c = &m->cfg;
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "architectures");
    cJSON_AddItemToArray(a, cJSON_CreateString("LlamaForCausalLM"));
    cJSON_AddStringToObject(o, "model_type", "llama");
    cJSON_AddNumberToObject(o, "hidden_size", c->dim);
    cJSON_AddNumberToObject(o, "intermediate_size", c->hidden_dim);
    cJSON_AddNumberToObject(o, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(o, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(o, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(o, "max_position_embeddings", c->max_seq_len);
    cJSON_AddNumberToObject(o, "rms_norm_eps", (double)c->norm_eps);
    cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
    cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tied);
    cJSON_AddNumberToObject(o, "bos_token_id", c->bos_id);
    cJSON_AddNumberToObject(o, "eos_token_id", c->eos_id);
    cJSON_AddStringToObject(o, "harp_rope_layout", c->rope_layout == HARP_ROPE_INTERLEAVED ? "interleaved" : "half");
    cJSON_AddStringToObject(o, "harp_source_format", "llama2c-bin");
    return o;
}

static harp_status qw_config(const harp_model *m, const char *model_path, const char *out_dir, const cJSON *qcfg) {
    cJSON *root = NULL;
    harp_status st = HARP_OK;
    if (harp_dir_exists(model_path)) {
        char *src = harp_path_join(model_path, "config.json");
        char *text = NULL;
        size_t len = 0;
        st = src ? harp_read_file(src, &text, &len) : HARP_ERR_OOM;
        if (!st) {
            root = cJSON_ParseWithLength(text, len);
            if (!cJSON_IsObject(root)) st = harp_err(HARP_ERR_FORMAT, "%s: not a JSON object", src);
        }
        free(text);
        free(src);
        if (!st) cJSON_DeleteItemFromObjectCaseSensitive(root, "quantization_config");
    } else {
        root = qw_synth_config(m);
    }
    if (!st) {
        cJSON_AddItemToObject(root, "quantization_config", cJSON_Duplicate(qcfg, 1));
        char *out = cJSON_Print(root);
        char *path = harp_path_join(out_dir, "config.json");
        if (!out || !path) st = HARP_ERR_OOM;
        else {
            size_t n = strlen(out);
            out[n] = '\n';
            st = harp_write_file_atomic(path, out, n + 1);
            out[n] = 0;
        }
        free(path);
        free(out);
    }
    cJSON_Delete(root);
    return st;
}

static harp_status qw_copy(const char *src, const char *dst_dir, const char *dst_name) {
    char *text = NULL;
    size_t len = 0;
    HARP_TRY(harp_read_file(src, &text, &len));
    char *dst = harp_path_join(dst_dir, dst_name);
    harp_status st = dst ? harp_write_file_atomic(dst, text, len) : HARP_ERR_OOM;
    free(dst);
    free(text);
    return st;
}

/* Tokenizer files: the HF names from a folder; for a llama2.c .bin the tokenizer.bin or the first
 * tok*.bin (by name) beside it, saved as tokenizer.bin (the name the folder loader looks for). */
static harp_status qw_tokenizer(const char *model_path, const char *out_dir) {
    if (harp_dir_exists(model_path)) {
        static const char *const names[] = {"tokenizer.model", "tokenizer.json", "tokenizer_config.json",
                                            "special_tokens_map.json", "generation_config.json", "tokenizer.bin"};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            char *p = harp_path_join(model_path, names[i]);
            if (!p) return HARP_ERR_OOM;
            harp_status st = harp_file_exists(p) ? qw_copy(p, out_dir, names[i]) : HARP_OK;
            free(p);
            HARP_TRY(st);
        }
        return HARP_OK;
    }
    char *best = NULL;
    HARP_TRY(harp_tokenizer_find_beside(model_path, &best));
    harp_status st = best ? qw_copy(best, out_dir, "tokenizer.bin") : HARP_OK;
    if (!best) harp_log(HARP_LOG_WARN, "%s: no tokenizer.bin or tok*.bin beside the model; folder has no tokenizer", model_path);
    free(best);
    return st;
}

/* config.json is what makes the folder a model: it is removed first (a folder left by an earlier
 * run must not pair its config with this run's tensors if this run is interrupted) and written
 * last, so a folder that has one is complete. */
harp_status qm_write_folder(const harp_model *m, const char *model_path, const char *out_dir, const cJSON *qcfg,
                            const qf_tensors *q) {
    char *cfg = harp_path_join(out_dir, "config.json");
    char *path = harp_path_join(out_dir, "model.safetensors");
    harp_status st = cfg && path ? HARP_OK : HARP_ERR_OOM;
    if (!st && unlink(cfg) != 0 && errno != ENOENT) st = harp_err(HARP_ERR_IO, "%s: cannot remove: %s", cfg, strerror(errno));
    if (!st) st = qw_tokenizer(model_path, out_dir);
    if (!st) st = qw_tensors(m, q, path);
    if (!st) st = qw_config(m, model_path, out_dir, qcfg);
    free(cfg);
    free(path);
    return st;
}
