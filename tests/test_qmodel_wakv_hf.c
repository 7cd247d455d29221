/* Offline rotation on real checkpoints (src/qmodel/wakv.h): Hugging Face folders read with the
 * safetensors reader into harp_wakv_weights, the plain fp64 forward of wakv_test_fwd.h checked against
 * the fixture's transformers logits (ref.json, ≤ 1e-4 as in test_model_fixtures), then the model rotated
 * with every R1 = R2 kind (R3, R4 online) must give the same logits within 5e-6·max|logit| (measured
 * worst: 9.2e-7, ref-llama with random orthogonal R1/R2, whose dense fp32 product rounds most).
 * Folders: tests/data/qwen2-tiny (hidden 64), tests/data/qwen2-h160-tiny (hidden 160: Paley I R1, and
 * FFN 152: Paley II order 76 for R4; made by scripts/make_fixtures.py --only qwen2-h160-tiny) and
 * ../shared/models/ref-llama; each missing one is reported and skipped (exit 77 when all are). */
#include <cjson/cJSON.h>

#include "io/safetensors.h"
#include "test_json.h"
#include "wakv_test_fwd.h"

static double jnum(const cJSON *o, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static float *tensor(const harp_st_file *f, const char *name, int64_t numel, int required) {
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

static int load_hf(const char *dir, harp_wakv_weights *w, wt_arch *ar) {
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *cfg = harp_file_exists(path) ? t_load_json(path) : NULL;
    if (!cfg) return 0;
    memset(w, 0, sizeof *w);
    harp_wakv_dims *d = &w->dims;
    d->d = (int64_t)jnum(cfg, "hidden_size", 0), d->ffn = (int64_t)jnum(cfg, "intermediate_size", 0);
    d->vocab = (int64_t)jnum(cfg, "vocab_size", 0), d->n_layer = (int)jnum(cfg, "num_hidden_layers", 0);
    d->n_head = (int)jnum(cfg, "num_attention_heads", 1), d->n_kv = (int)jnum(cfg, "num_key_value_heads", d->n_head);
    d->head_dim = (int64_t)jnum(cfg, "head_dim", (double)(d->d / d->n_head));
    ar->eps = jnum(cfg, "rms_norm_eps", 1e-5);
    ar->rope_theta = jnum(cfg, "rope_theta", jnum(cJSON_GetObjectItem(cfg, "rope_parameters"), "rope_theta", 10000.0));
    cJSON_Delete(cfg);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    harp_st_file f;
    CHECK_OK(harp_st_open(path, &f));
    const int64_t D = d->d, hd = d->head_dim, qm = d->n_head * hd, kvm = d->n_kv * hd, I = d->ffn;
    w->embed = tensor(&f, "model.embed_tokens.weight", d->vocab * D, 1);
    w->head = tensor(&f, "lm_head.weight", d->vocab * D, 0);
    w->final_norm = tensor(&f, "model.norm.weight", D, 1);
    w->layers = calloc((size_t)d->n_layer, sizeof *w->layers);
    for (int l = 0; l < d->n_layer; l++) {
        harp_wakv_layer *L = &w->layers[l];
        char n[160];
#define T(field, suffix, count, req) \
    (snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix), L->field = tensor(&f, n, count, req))
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

/* ids and logits of ref.json (NULL when the folder has none) */
static double *load_ref(const char *dir, int *ids, int *T, int64_t V) {
    char path[1024];
    snprintf(path, sizeof path, "%s/ref.json", dir);
    cJSON *ref = harp_file_exists(path) ? t_load_json(path) : NULL;
    if (!ref) return NULL;
    *T = 0;
    for (const cJSON *e = cJSON_GetObjectItem(ref, "input_ids")->child; e && *T < 32; e = e->next) ids[(*T)++] = e->valueint;
    double *lg = calloc((size_t)(*T * V), sizeof *lg);
    int pos = 0;
    for (const cJSON *row = cJSON_GetObjectItem(ref, "logits")->child; row && pos < *T; row = row->next, pos++) {
        int64_t j = 0;
        for (const cJSON *v = row->child; v && j < V; v = v->next, j++) lg[pos * V + j] = v->valuedouble;
    }
    cJSON_Delete(ref);
    return lg;
}

static int check_folder(const char *dir, const char *label) {
    harp_wakv_weights w;
    wt_arch ar;
    if (!load_hf(dir, &w, &ar)) {
        printf("SKIP %s: %s/config.json is missing\n", label, dir);
        return 0;
    }
    const int64_t V = w.dims.vocab;
    int ids[32] = {1, 306, 4966, 304, 1074, 278, 6593, 310, 2834, 29889, 13, 29871};
    int T = 12;
    double *ref = load_ref(dir, ids, &T, V);
    if (T > 12 && !ref) T = 12;
    for (int t = 0; t < T; t++) ids[t] %= (int)V;
    double *a = malloc((size_t)(T * V) * sizeof *a), *b = malloc((size_t)(T * V) * sizeof *b);
    wt_forward(&w, &ar, NULL, NULL, ids, T, a);
    double e, mx;
    if (ref) {
        wt_diff(ref, a, T * V, &e, &mx);
        printf("%-18s fp64 loop forward vs transformers: max|diff| %.2e (max|logit| %.3g)\n", label, e, mx);
        CHECK_MSG(e <= 1e-4, "%s: the test's forward differs from transformers by %.3g", label, e);
    }
    const harp_wakv_rkind kinds[] = {HARP_WAKV_ROT_NONE, HARP_WAKV_ROT_RANDOM, HARP_WAKV_ROT_HADAMARD, HARP_WAKV_ROT_GSR};
    for (int k = 0; k < 4; k++) {
        harp_wakv_rot_params p = harp_wakv_rot_params_default();
        p.r1 = p.r2 = kinds[k];
        p.seed = 7;
        harp_wakv_rots R;
        harp_wakv_weights rw;
        CHECK_OK(harp_wakv_rots_create(&p, &w.dims, &R));
        CHECK_OK(harp_wakv_rotate(&w, &R, &rw));
        if (!rw.embed) continue;
        wt_forward(&rw, &ar, R.r3, R.r4, ids, T, b);
        wt_diff(a, b, T * V, &e, &mx);
        printf("%-18s R1 = R2 = %-8s (R1 order %lld, R4 order %lld): max|Δlogit| %.2e = %.2e·max|logit|\n", label,
               harp_wakv_rkind_name(kinds[k]), (long long)(R.r1 ? harp_padrot_n_pad(R.r1) : 0),
               (long long)harp_padrot_n_pad(R.r4), e, e / mx);
        CHECK_MSG(e <= 5e-6 * mx, "%s %s: rotated logits differ by %.3g", label, harp_wakv_rkind_name(kinds[k]), e);
        harp_wakv_weights_free(&rw);
        harp_wakv_rots_free(&R);
    }
    free(a), free(b), free(ref);
    wt_free(&w);
    return 1;
}

int main(void) {
    int ran = 0;
    ran += check_folder(t_data("qwen2-tiny"), "qwen2-tiny");
    ran += check_folder(t_data("qwen2-h160-tiny"), "qwen2-h160-tiny");
    const char *root = getenv("HARP_SHARED");
    char p[1024];
    snprintf(p, sizeof p, "%s/models/ref-llama", root && *root ? root : "../shared");
    ran += check_folder(p, "ref-llama");
    if (!ran) {
        printf("SKIP: no model folder found\n");
        return 77;
    }
    return t_done();
}
