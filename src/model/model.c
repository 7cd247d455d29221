/* Model handle: open (format dispatch + tokenizer lookup), info, free, RoPE frequencies. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model_internal.h"
#include "qformat/qformat.h"
#include "model/slots.h"

harp_model_params harp_model_default_params(void) {
    harp_model_params p = {NULL, 1};
    return p;
}

float *harp_model_falloc(size_t n, const char *what) {
    return harp_xmalloc((n ? n : 1) * sizeof(float), what);
}

/* Empty fp32 groups of the shapes cfg gives (the loaders fill their weights), empty slots. */
static harp_status init_groups(harp_model *m) {
    const harp_model_config *c = &m->cfg;
    static const char *const names[HARP_LG_COUNT] = {"q|k|v", "o", "up|gate", "down"};
    for (int l = 0; l < c->n_layers; l++) {
        harp_layer_cfg *lc = &m->layers[l].cfg;
        lc->kv_qtype = HARP_QTYPE_F32;
        for (int g = 0; g < HARP_LG_COUNT; g++) {
            int64_t len[3], n;
            int ns = qf_group_slices(c, g, len, &n), out[3];
            for (int s = 0; s < ns; s++) out[s] = (int)len[s];
            char what[64];
            snprintf(what, sizeof what, "layer %d %s", l, names[g]);
            HARP_TRY(harp_lgroup_init(&lc->g[g], ns, out, (int)n, what));
        }
    }
    return harp_lgroup_init(&m->head_g, 1, &c->vocab_size, c->dim, "head");
}

harp_status harp_model_alloc(const harp_model_config *cfg, harp_model **out) {
    *out = NULL;
    harp_model *m = harp_xcalloc(1, sizeof *m, "model");
    if (!m) return HARP_ERR_OOM;
    m->cfg = *cfg;
    m->layers = harp_xcalloc((size_t)cfg->n_layers, sizeof *m->layers, "model layers");
    pthread_mutex_init(&m->backends_mu, NULL);
    harp_status st = m->layers ? init_groups(m) : HARP_ERR_OOM;
    if (st) {
        harp_model_free(m);
        return st;
    }
    *out = m;
    return HARP_OK;
}

harp_lgroup *harp_model_lin(harp_model *m, int l, int lin, int *slice) {
    *slice = harp_lin_slots[lin].slice;
    return &m->layers[l].cfg.g[harp_lin_slots[lin].group];
}

const harp_lgroup *harp_model_lin_c(const harp_model *m, int l, int lin, int *slice) {
    *slice = harp_lin_slots[lin].slice;
    return &m->layers[l].cfg.g[harp_lin_slots[lin].group];
}

/* Mirrors transformers' float32 computation of inv_freq (and its llama3 / linear variants) so that
 * rotation angles agree to the last bit where possible. */
harp_status harp_model_init_rope(harp_model *m) {
    const harp_model_config *c = &m->cfg;
    int half = c->head_dim / 2;
    m->rope_inv_freq = harp_model_falloc((size_t)half, "rope frequencies");
    if (!m->rope_inv_freq) return HARP_ERR_OOM;
    for (int i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)c->head_dim;
        float inv = 1.0f / powf((float)c->rope_theta, e);
        if (c->rope_scaling == HARP_ROPE_SCALING_LINEAR) {
            inv = inv / (float)c->rope_factor;
        } else if (c->rope_scaling == HARP_ROPE_SCALING_LLAMA3) {
            double factor = c->rope_factor, lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor;
            double old_ctx = c->rope_orig_max_pos;
            double low_wl = old_ctx / lo, high_wl = old_ctx / hi;
            double wl = 2.0 * 3.14159265358979323846 / inv;
            float scaled = wl > low_wl ? (float)(inv / factor) : inv;
            if (!(wl < high_wl) && !(wl > low_wl)) {
                double smooth = (old_ctx / wl - lo) / (hi - lo);
                scaled = (float)((1.0 - smooth) * scaled / factor + smooth * scaled);
            }
            inv = scaled;
        }
        m->rope_inv_freq[i] = inv;
    }
    return HARP_OK;
}

void harp_model_fill_info(harp_model *m, const char *source_format, const char *dtype) {
    const harp_model_config *c = &m->cfg;
    harp_model_info *in = &m->info;
    memset(in, 0, sizeof *in);
    snprintf(in->arch, sizeof in->arch, "%s", c->arch);
    snprintf(in->source_format, sizeof in->source_format, "%s", source_format);
    snprintf(in->weight_dtype, sizeof in->weight_dtype, "%s", dtype);
    in->dim = c->dim;
    in->hidden_dim = c->hidden_dim;
    in->n_layers = c->n_layers;
    in->n_heads = c->n_heads;
    in->n_kv_heads = c->n_kv_heads;
    in->head_dim = c->head_dim;
    in->vocab_size = c->vocab_size;
    in->max_seq_len = c->max_seq_len;
    in->norm_eps = c->norm_eps;
    in->rope_theta = (float)c->rope_theta;
    in->rope_layout = c->rope_layout;
    in->tied_embeddings = c->tied;
    in->qkv_bias = c->qkv_bias;
    in->bos_id = c->bos_id;
    in->eos_id = c->eos_id;
    int64_t n = (int64_t)c->vocab_size * c->dim * (c->tied ? 1 : 2) + c->dim;
    for (int l = 0; l < c->n_layers; l++) {
        n += 2 * (int64_t)c->dim;
        for (int g = 0; g < HARP_LG_COUNT; g++) {
            const harp_lgroup *G = &m->layers[l].cfg.g[g];
            for (int s = 0; s < G->n_slices; s++) n += (int64_t)G->in * G->out[s] + (G->bias[s] ? G->out[s] : 0);
        }
    }
    in->n_params = n;
}

static int is_llama2c_path(const char *path) {
    size_t n = strlen(path);
    return n > 4 && !strcmp(path + n - 4, ".bin") && !harp_dir_exists(path);
}

/* Tokenizer candidates beside a model: an explicit override first, then the usual file names. */
static harp_status model_open_tokenizer(harp_model *m, const char *path, const harp_model_params *p) {
    if (p->tokenizer_path) return harp_tokenizer_open(p->tokenizer_path, m->cfg.vocab_size, &m->tok);
    return harp_tokenizer_open_for_model(path, m->cfg.vocab_size, &m->tok);
}

harp_status harp_model_open(const char *path, const harp_model_params *params, harp_model **out) {
    harp_model_params defp = harp_model_default_params();
    if (!params) params = &defp;
    if (!path || !out) return harp_err(HARP_ERR_INVALID_ARG, "harp_model_open: NULL argument");
    *out = NULL;
    harp_model *m = NULL;
    if (harp_dir_exists(path)) {
        HARP_TRY(harp_load_hf(path, &m));
    } else if (is_llama2c_path(path)) {
        HARP_TRY(harp_load_llama2c(path, &m));
    } else if (!harp_file_exists(path)) {
        return harp_err(HARP_ERR_IO, "%s: %s", path, harp_path_problem(path));
    } else {
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: not a model (expected a Hugging Face folder or a llama2.c .bin)", path);
    }
    if (params->load_tokenizer) {
        harp_status st = model_open_tokenizer(m, path, params);
        if (st) {
            harp_model_free(m);
            return st;
        }
        snprintf(m->info.tokenizer_kind, sizeof m->info.tokenizer_kind, "%s",
                 harp_tokenizer_kind_name(harp_tokenizer_kind(m->tok)));
    }
    *out = m;
    return HARP_OK;
}

void harp_model_free(harp_model *m) {
    if (!m) return;
    harp_model_weights_free_all(m);
    harp_model_slots_free(m);
    pthread_mutex_destroy(&m->backends_mu);
    for (int l = 0; l < m->cfg.n_layers && m->layers; l++) {
        harp_layer *L = &m->layers[l];
        for (int g = 0; g < HARP_LG_COUNT; g++) harp_lgroup_free(&L->cfg.g[g]);
        free(L->attn_norm);
        free(L->ffn_norm);
    }
    free(m->layers);
    harp_lgroup_free(&m->head_g);
    free(m->tok_emb);
    free(m->final_norm);
    free(m->rope_inv_freq);
    if (m->tok) harp_tokenizer_free(m->tok);
    free(m);
}

harp_status harp_model_get_info(const harp_model *m, harp_model_info *out) {
    if (!m || !out) return harp_err(HARP_ERR_INVALID_ARG, "harp_model_get_info: NULL argument");
    *out = m->info;
    return HARP_OK;
}

const harp_tokenizer *harp_model_tokenizer(const harp_model *m) {
    return m ? m->tok : NULL;
}
