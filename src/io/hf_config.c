/* config.json → harp_model_config. Field names follow transformers' LlamaConfig, MistralConfig and
 * Qwen2Config; defaults are those classes' defaults where the field is optional. */
#include "io/hf_config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const supported_arch[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"};

/* Integer field: missing → def (or an error when def < 0); present → an integer in [lo, hi]. */
static harp_status cfg_int(const cJSON *root, const char *key, int def, int lo, int hi, const char *name, int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j || cJSON_IsNull(j)) {
        if (def < 0) return harp_err(HARP_ERR_FORMAT, "%s: missing field '%s'", name, key);
        *out = def;
        return HARP_OK;
    }
    if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble))
        return harp_err(HARP_ERR_FORMAT, "%s: field '%s' is not an integer", name, key);
    if (j->valuedouble > hi)
        return harp_err(HARP_ERR_FORMAT, "%s: field '%s' = %.17g is too large (at most %d)", name, key, j->valuedouble, hi);
    if (j->valuedouble < lo)
        return harp_err(HARP_ERR_FORMAT, "%s: field '%s' = %.17g is too small (at least %d)", name, key, j->valuedouble, lo);
    *out = (int)j->valuedouble;
    return HARP_OK;
}

static harp_status cfg_num(const cJSON *root, const char *key, double def, const char *name, double *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j || cJSON_IsNull(j)) {
        *out = def;
        return HARP_OK;
    }
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
        return harp_err(HARP_ERR_FORMAT, "%s: field '%s' is not a number", name, key);
    *out = j->valuedouble;
    return HARP_OK;
}

static int cfg_bool(const cJSON *root, const char *key, int def) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsBool(j)) return cJSON_IsTrue(j);
    return def;
}

/* bos/eos may be an integer or a list of integers (the first is taken). */
static int cfg_token_id(const cJSON *root, const char *key, int def) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsArray(j)) j = cJSON_GetArrayItem(j, 0);
    if (cJSON_IsNumber(j) && j->valuedouble >= 0 && j->valuedouble < 1e9) return (int)j->valuedouble;
    return def;
}

static harp_status cfg_rope_scaling(const cJSON *rs, const char *name, harp_model_config *c) {
    if (!rs || cJSON_IsNull(rs)) return HARP_OK;
    if (!cJSON_IsObject(rs)) return harp_err(HARP_ERR_FORMAT, "%s: rope_scaling is not an object", name);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!cJSON_IsString(type)) type = cJSON_GetObjectItemCaseSensitive(rs, "type");
    if (!cJSON_IsString(type)) return harp_err(HARP_ERR_FORMAT, "%s: rope_scaling has no rope_type", name);
    const char *t = type->valuestring;
    if (!strcmp(t, "default")) return HARP_OK;
    HARP_TRY(cfg_num(rs, "factor", 1.0, name, &c->rope_factor));
    if (!(c->rope_factor > 0)) return harp_err(HARP_ERR_FORMAT, "%s: rope_scaling factor must be > 0", name);
    if (!strcmp(t, "linear")) {
        c->rope_scaling = HARP_ROPE_SCALING_LINEAR;
    } else if (!strcmp(t, "llama3")) {
        c->rope_scaling = HARP_ROPE_SCALING_LLAMA3;
        HARP_TRY(cfg_num(rs, "low_freq_factor", 1.0, name, &c->rope_low_freq_factor));
        HARP_TRY(cfg_num(rs, "high_freq_factor", 4.0, name, &c->rope_high_freq_factor));
        HARP_TRY(cfg_int(rs, "original_max_position_embeddings", 8192, 1, HARP_CFG_MAX_SEQ, name, &c->rope_orig_max_pos));
        if (!(c->rope_high_freq_factor > c->rope_low_freq_factor) || c->rope_low_freq_factor <= 0 ||
            c->rope_orig_max_pos <= 0)
            return harp_err(HARP_ERR_FORMAT, "%s: llama3 rope_scaling needs high_freq_factor > low_freq_factor > 0", name);
    } else {
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: rope_scaling type '%s' is not supported (default, linear, llama3)", name, t);
    }
    return HARP_OK;
}

harp_status harp_config_validate(const harp_model_config *c, const char *name) {
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 ||
        c->vocab_size <= 0 || c->head_dim <= 0 || c->max_seq_len <= 0)
        return harp_err(HARP_ERR_FORMAT, "%s: sizes must be positive (dim %d, hidden %d, layers %d, heads %d/%d, head_dim %d, vocab %d, max_seq %d)",
                        name, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim,
                        c->vocab_size, c->max_seq_len);
    if (c->n_heads % c->n_kv_heads)
        return harp_err(HARP_ERR_FORMAT, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", name,
                        c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2) return harp_err(HARP_ERR_FORMAT, "%s: head_dim %d is odd (RoPE needs pairs)", name, c->head_dim);
    const struct { const char *what; int v, max; } lim[] = {
        {"dim", c->dim, HARP_CFG_MAX_DIM},          {"hidden dim", c->hidden_dim, HARP_CFG_MAX_HIDDEN},
        {"layers", c->n_layers, HARP_CFG_MAX_LAYERS}, {"heads", c->n_heads, HARP_CFG_MAX_HEADS},
        {"head_dim", c->head_dim, HARP_CFG_MAX_HEAD_DIM}, {"vocab", c->vocab_size, HARP_CFG_MAX_VOCAB},
        {"max_seq", c->max_seq_len, HARP_CFG_MAX_SEQ}};
    for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++)
        if (lim[i].v > lim[i].max)
            return harp_err(HARP_ERR_FORMAT, "%s: %s %d is implausibly large (limit %d)", name, lim[i].what, lim[i].v, lim[i].max);
    if (!(c->norm_eps > 0) || !(c->rope_theta > 0))
        return harp_err(HARP_ERR_FORMAT, "%s: rms_norm_eps and rope_theta must be > 0", name);
    return HARP_OK;
}

/* The integer shapes; head_dim and num_key_value_heads: absent → derived; present → at least 1. */
static harp_status cfg_shapes(const cJSON *root, const char *name, harp_model_config *c) {
    HARP_TRY(cfg_int(root, "hidden_size", -1, 1, HARP_CFG_MAX_DIM, name, &c->dim));
    HARP_TRY(cfg_int(root, "intermediate_size", -1, 1, HARP_CFG_MAX_HIDDEN, name, &c->hidden_dim));
    HARP_TRY(cfg_int(root, "num_hidden_layers", -1, 1, HARP_CFG_MAX_LAYERS, name, &c->n_layers));
    HARP_TRY(cfg_int(root, "num_attention_heads", -1, 1, HARP_CFG_MAX_HEADS, name, &c->n_heads));
    HARP_TRY(cfg_int(root, "num_key_value_heads", 0, 1, HARP_CFG_MAX_HEADS, name, &c->n_kv_heads));
    HARP_TRY(cfg_int(root, "head_dim", 0, 1, HARP_CFG_MAX_HEAD_DIM, name, &c->head_dim));
    HARP_TRY(cfg_int(root, "vocab_size", -1, 1, HARP_CFG_MAX_VOCAB, name, &c->vocab_size));
    HARP_TRY(cfg_int(root, "max_position_embeddings", 2048, 1, HARP_CFG_MAX_SEQ, name, &c->max_seq_len));
    if (c->n_kv_heads == 0) c->n_kv_heads = c->n_heads;
    if (c->head_dim == 0 && c->n_heads > 0) {
        if (c->dim % c->n_heads)
            return harp_err(HARP_ERR_FORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", name, c->dim,
                            c->n_heads);
        c->head_dim = c->dim / c->n_heads;
    }
    return HARP_OK;
}

/* rms_norm_eps, rope_theta, the q/k layout and the RoPE scaling. */
static harp_status cfg_norm_rope(const cJSON *root, const char *name, harp_model_config *c) {
    double eps = 1e-6, theta = 10000.0;
    HARP_TRY(cfg_num(root, "rms_norm_eps", 1e-6, name, &eps));
    c->norm_eps = (float)eps;
    /* transformers 5 moves rope_theta into rope_parameters (which may also carry the scaling). */
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    double def_theta = 10000.0;
    if (cJSON_IsObject(rp)) HARP_TRY(cfg_num(rp, "rope_theta", def_theta, name, &def_theta));
    HARP_TRY(cfg_num(root, "rope_theta", def_theta, name, &theta));
    c->rope_theta = theta;
    c->rope_layout = HARP_ROPE_HALF;
    /* harp quantized folders made from llama2.c checkpoints keep the interleaved (Meta) q/k layout */
    const cJSON *rl = cJSON_GetObjectItemCaseSensitive(root, "harp_rope_layout");
    if (cJSON_IsString(rl) && !strcmp(rl->valuestring, "interleaved")) c->rope_layout = HARP_ROPE_INTERLEAVED;
    c->rope_factor = 1.0;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if ((!rs || cJSON_IsNull(rs)) && cJSON_IsObject(rp)) rs = rp;
    return cfg_rope_scaling(rs, name, c);
}

harp_status harp_hf_config_parse(const char *json, size_t len, const char *name, harp_model_config *c) {
    memset(c, 0, sizeof *c);
    if (len == 0) return harp_err(HARP_ERR_FORMAT, "%s: empty file", name);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) return harp_err(HARP_ERR_FORMAT, "%s: not valid JSON", name);
    while (end && end < json + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
    harp_status st = HARP_OK;
    if (end != json + len) {
        st = harp_err(HARP_ERR_FORMAT, "%s: not valid JSON (trailing data after the object)", name);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        st = harp_err(HARP_ERR_FORMAT, "%s: top level is not a JSON object", name);
        goto done;
    }
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    if (!cJSON_IsString(a0)) {
        st = harp_err(HARP_ERR_FORMAT, "%s: missing 'architectures'", name);
        goto done;
    }
    size_t k;
    for (k = 0; k < sizeof supported_arch / sizeof supported_arch[0]; k++)
        if (!strcmp(a0->valuestring, supported_arch[k])) break;
    if (k == sizeof supported_arch / sizeof supported_arch[0]) {
        st = harp_err(HARP_ERR_UNSUPPORTED, "%s: unknown architecture '%.60s' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)",
                      name, a0->valuestring);
        goto done;
    }
    snprintf(c->arch, sizeof c->arch, "%s", supported_arch[k]);
    int is_qwen2 = !strcmp(c->arch, "Qwen2ForCausalLM"), is_mistral = !strcmp(c->arch, "MistralForCausalLM");
    if ((st = cfg_shapes(root, name, c)) || (st = cfg_norm_rope(root, name, c))) goto done;
    c->tied = cfg_bool(root, "tie_word_embeddings", 0);
    int attn_bias = cfg_bool(root, "attention_bias", 0);
    c->qkv_bias = is_qwen2 ? 1 : attn_bias;
    c->o_bias = is_qwen2 ? 0 : attn_bias;
    c->mlp_bias = cfg_bool(root, "mlp_bias", 0);
    int sw = 0;
    const cJSON *swj = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
    if (cJSON_IsNumber(swj) && swj->valuedouble >= 1 && swj->valuedouble < 1e9) sw = (int)swj->valuedouble;
    if (is_mistral) c->sliding_window = sw;
    else if (is_qwen2 && cfg_bool(root, "use_sliding_window", 0)) c->sliding_window = sw;
    c->bos_id = cfg_token_id(root, "bos_token_id", is_qwen2 ? -1 : 1);
    c->eos_id = cfg_token_id(root, "eos_token_id", is_qwen2 ? -1 : 2);
    st = harp_config_validate(c, name);
done:
    cJSON_Delete(root);
    return st;
}
