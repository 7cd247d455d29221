/* W/A/KV execution slots of a model: construction, checks, installation into the layer configs. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/slots.h"

struct harp_mslots {
    harp_wakv_exec e;            /* clip = NULL; ratios live in aq / kvq */
    harp_rot *r3, *r4, *ro;
    struct harp_aquant *aq;      /* n_layers × HARP_LG_COUNT (act.bits > 0) */
    struct harp_aquant *kvq;     /* n_layers × 2 (kv.bits > 0)              */
    harp_qtype kv_type;
};

static const char *const k_class[HARP_CLIP_COUNT] = {"q|k|v input", "o input", "up|gate input", "down input", "K",
                                                     "V"};

void harp_model_slots_free(harp_model *m) {
    struct harp_mslots *s = m ? m->slots : NULL;
    if (!s) return;
    harp_rot_destroy(s->r3);
    harp_rot_destroy(s->r4);
    harp_rot_destroy(s->ro);
    free(s->aq);
    free(s->kvq);
    free(s);
    m->slots = NULL;
}

void harp_model_slots_install(harp_model *m) {
    const struct harp_mslots *s = m->slots;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        harp_layer_cfg *lc = &m->layers[l].cfg;
        lc->r3 = s ? s->r3 : NULL;
        lc->g[HARP_LG_DOWN].rot_in = s ? s->r4 : NULL;
        lc->g[HARP_LG_O].rot_in = s ? s->ro : NULL;
        for (int g = 0; g < HARP_LG_COUNT; g++)
            lc->g[g].act_q = s && s->aq && !(s->e.act_skip >> g & 1u) ? &s->aq[l * HARP_LG_COUNT + g] : NULL;
        lc->kv_q = s && s->kvq ? &s->kvq[2 * l] : NULL;
        lc->kv_qtype = s && s->kvq ? s->kv_type : HARP_QTYPE_F32;
    }
}

static float clip_of(const harp_wakv_exec *e, int l, int cls, float dflt) {
    return e->clip ? e->clip[l * HARP_CLIP_COUNT + cls] : dflt;
}

/* The quantizers of every layer and class into s, each checked against its row width. */
static harp_status slots_quantizers(const harp_model *m, const harp_wakv_exec *e, struct harp_mslots *s) {
    const harp_model_config *c = &m->cfg;
    int L = c->n_layers, kvd = c->n_kv_heads * c->head_dim;
    if (e->act.bits && !(s->aq = harp_xcalloc((size_t)L * HARP_LG_COUNT, sizeof *s->aq, "activation quantizers")))
        return HARP_ERR_OOM;
    if (e->kv.bits && !(s->kvq = harp_xcalloc((size_t)L * 2, sizeof *s->kvq, "KV quantizers"))) return HARP_ERR_OOM;
    char what[64];
    for (int l = 0; l < L; l++) {
        for (int g = 0; s->aq && g < HARP_LG_COUNT; g++) {
            harp_aq_fmt *f = &s->aq[l * HARP_LG_COUNT + g].fmt;
            *f = e->act;
            f->clip = clip_of(e, l, g, e->act.clip);
            snprintf(what, sizeof what, "layer %d %s quantizer", l, k_class[g]);
            HARP_TRY(harp_aq_check(f, m->layers[l].cfg.g[g].in, what));
        }
        for (int w = 0; s->kvq && w < 2; w++) {
            harp_aq_fmt *f = &s->kvq[2 * l + w].fmt;
            *f = e->kv;
            f->scale_f16 = 1;
            f->clip = clip_of(e, l, HARP_CLIP_K + w, e->kv.clip);
            snprintf(what, sizeof what, "layer %d %s cache quantizer", l, k_class[HARP_CLIP_K + w]);
            HARP_TRY(harp_aq_check(f, kvd, what));
        }
    }
    return HARP_OK;
}

static harp_status slots_build(const harp_model *m, const harp_wakv_exec *e, struct harp_mslots *s) {
    const harp_model_config *c = &m->cfg;
    s->e = *e;
    s->e.clip = NULL;
    if (e->kv.bits && (s->kv_type = harp_qtype_for(HARP_QMETHOD_RTN, e->kv.bits)) == HARP_QTYPE_NONE)
        return harp_err(HARP_ERR_INVALID_ARG, "KV cache: %d bits is not a cache type (2, 3, 4 or 8)", e->kv.bits);
    if (e->r3 && harp_rot_create(HARP_ROT_HADAMARD, c->head_dim, NULL, 0, &s->r3))
        return harp_err(HARP_ERR_INVALID_ARG, "R3 (online Hadamard on q and k per head): no Hadamard matrix of order %d "
                        "(the head_dim)", c->head_dim);
    if (e->r4 && harp_rot_create(HARP_ROT_HADAMARD, c->hidden_dim, NULL, 0, &s->r4))
        return harp_err(HARP_ERR_INVALID_ARG, "R4 (online Hadamard on the down-projection input): no Hadamard matrix of "
                        "order %d (the FFN width)", c->hidden_dim);
    if (e->ro && harp_rot_create(HARP_ROT_HADAMARD, (int64_t)c->n_heads * c->head_dim, NULL, 0, &s->ro))
        return harp_err(HARP_ERR_INVALID_ARG, "R_o (online Hadamard on the o-projection input): no Hadamard matrix of "
                        "order %d (n_heads · head_dim)", c->n_heads * c->head_dim);
    return slots_quantizers(m, e, s);
}

harp_status harp_model_set_exec(harp_model *m, const harp_wakv_exec *e) {
    if (!m) return harp_err(HARP_ERR_INVALID_ARG, "harp_model_set_exec: NULL model");
    struct harp_mslots *s = NULL;
    if (e && (e->r3 || e->r4 || e->ro || e->act.bits || e->kv.bits)) {
        if (!(s = harp_xcalloc(1, sizeof *s, "model slots"))) return HARP_ERR_OOM;
        harp_status st = slots_build(m, e, s);
        if (st) {
            struct harp_mslots *old = m->slots;
            m->slots = s;
            harp_model_slots_free(m);
            m->slots = old;
            return st;
        }
    }
    harp_model_unload(m);
    harp_model_slots_free(m);
    m->slots = s;
    harp_model_slots_install(m);
    return HARP_OK;
}

harp_status harp_model_set_clip(harp_model *m, int layer, int cls, float clip) {
    struct harp_mslots *s = m ? m->slots : NULL;
    struct harp_aquant *q = !s || layer < 0 || layer >= m->cfg.n_layers || cls < 0 || cls >= HARP_CLIP_COUNT ? NULL
                            : cls < HARP_LG_COUNT ? (s->aq && !(s->e.act_skip >> cls & 1u) ? &s->aq[layer * HARP_LG_COUNT + cls]
                                                                                         : NULL)
                                                  : (s->kvq ? &s->kvq[2 * layer + cls - HARP_CLIP_K] : NULL);
    if (!q || !(clip > 0 && clip <= 1))
        return harp_err(HARP_ERR_INVALID_ARG, "clip ratio %g of layer %d class %d: no such quantizer or not in (0, 1]",
                        (double)clip, layer, cls);
    q->fmt.clip = clip;
    return HARP_OK;
}

harp_wakv_exec harp_model_exec(const harp_model *m) {
    harp_wakv_exec e;
    memset(&e, 0, sizeof e);
    if (m && m->slots) e = m->slots->e;
    return e;
}

harp_qtype harp_model_kv_type(const harp_model *m, const struct harp_aquant **q) {
    const struct harp_mslots *s = m->slots;
    *q = s ? s->kvq : NULL;
    return s && s->kvq ? s->kv_type : HARP_QTYPE_F32;
}

harp_status harp_model_slots_check(const harp_model *m, const harp_backend *b) {
    const struct harp_mslots *s = m->slots;
    if (!s) return HARP_OK;
    const char *op = (s->r3 || s->r4 || s->ro) && !harp_backend_supports(b, HARP_OP_ROTATE, HARP_QTYPE_F32) ? "online Hadamard rotations"
                     : s->aq && !harp_backend_supports(b, HARP_OP_AQUANT, HARP_QTYPE_F32)      ? "activation quantization"
                     : s->kvq && (!harp_backend_supports(b, HARP_OP_KV_STORE, s->kv_type) ||
                                  !harp_backend_supports(b, HARP_OP_ATTENTION, s->kv_type))
                         ? "a quantized KV cache"
                         : NULL;
    if (!op) return HARP_OK;
    return harp_err(HARP_ERR_UNSUPPORTED, "backend %s: this W/A/KV model needs %s, which the backend does not implement "
                    "yet; run it on the CPU", b->name, op);
}

/* ---- folder form ------------------------------------------------------------------------------------- */

/* Names of the linear inputs in "activations.skip" (HARP_LG_* order). */
static const char *const k_lg_name[HARP_LG_COUNT] = {"qkv", "o", "up_gate", "down"};

const char *harp_lg_input_name(int g) {
    return g >= 0 && g < HARP_LG_COUNT ? k_lg_name[g] : NULL;
}

static void fmt_to_json(cJSON *o, const char *key, const harp_aq_fmt *f, int kv, unsigned skip) {
    cJSON *a = cJSON_AddObjectToObject(o, key);
    cJSON_AddNumberToObject(a, "bits", f->bits);
    cJSON_AddBoolToObject(a, "symmetric", f->sym);
    cJSON_AddNumberToObject(a, "group_size", (double)f->group);
    if (kv) cJSON_AddStringToObject(a, "scale_dtype", "f16");
    if (!skip) return;
    cJSON *sk = cJSON_AddArrayToObject(a, "skip");
    for (int g = 0; g < HARP_LG_COUNT; g++)
        if (skip >> g & 1u) cJSON_AddItemToArray(sk, cJSON_CreateString(k_lg_name[g]));
}

/* *skip from activations.skip (absent: 0). */
static harp_status skip_from_json(const cJSON *o, unsigned *skip, const char *name) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "activations");
    const cJSON *sk = a ? cJSON_GetObjectItemCaseSensitive(a, "skip") : NULL;
    *skip = 0;
    if (!sk) return HARP_OK;
    for (const cJSON *v = cJSON_IsArray(sk) ? sk->child : NULL; v; v = v->next) {
        int g = 0;
        while (g < HARP_LG_COUNT && !(cJSON_IsString(v) && !strcmp(v->valuestring, k_lg_name[g]))) g++;
        if (g == HARP_LG_COUNT) break;
        *skip |= 1u << g;
    }
    if (!cJSON_IsArray(sk) || cJSON_GetArraySize(sk) != __builtin_popcount(*skip))
        return harp_err(HARP_ERR_FORMAT, "%s: quantization_config.wakv.activations.skip must be an array of distinct names "
                        "among qkv, o, up_gate, down", name);
    return HARP_OK;
}

harp_status harp_model_exec_to_json(const harp_model *m, cJSON *o) {
    const struct harp_mslots *s = m->slots;
    cJSON_AddBoolToObject(o, "r3", s && s->r3);
    cJSON_AddBoolToObject(o, "r4", s && s->r4);
    if (s && s->ro) cJSON_AddBoolToObject(o, "ro", 1);   /* absent = off: folders without it stay as they were */
    if (!s) return HARP_OK;
    if (s->aq) fmt_to_json(o, "activations", &s->e.act, 0, s->e.act_skip);
    if (s->kvq) fmt_to_json(o, "kv_cache", &s->e.kv, 1, 0);
    cJSON *cl = cJSON_AddArrayToObject(o, "clip");
    for (int l = 0; l < m->cfg.n_layers; l++) {
        double r[HARP_CLIP_COUNT];
        for (int k = 0; k < HARP_CLIP_COUNT; k++)
            r[k] = k < HARP_LG_COUNT ? (s->aq ? s->aq[l * HARP_LG_COUNT + k].fmt.clip : 1.0)
                                     : (s->kvq ? s->kvq[2 * l + k - HARP_CLIP_K].fmt.clip : 1.0);
        cJSON_AddItemToArray(cl, cJSON_CreateDoubleArray(r, HARP_CLIP_COUNT));
    }
    return HARP_OK;
}

/* f from o[key] (absent: bits 0 = off). */
static harp_status fmt_from_json(const cJSON *o, const char *key, harp_aq_fmt *f, const char *name) {
    memset(f, 0, sizeof *f);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!a) return HARP_OK;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(a, "bits"), *sy = cJSON_GetObjectItemCaseSensitive(a, "symmetric"),
                *g = cJSON_GetObjectItemCaseSensitive(a, "group_size");
    if (!cJSON_IsNumber(b) || b->valuedouble != (int)b->valuedouble || b->valueint < 2 || b->valueint > 8 ||
        !cJSON_IsBool(sy) || !cJSON_IsNumber(g) || g->valuedouble < 0 || g->valuedouble != (double)(int64_t)g->valuedouble)
        return harp_err(HARP_ERR_FORMAT, "%s: quantization_config.wakv.%s needs integer bits 2..8, a boolean symmetric and "
                        "an integer group_size >= 0", name, key);
    *f = (harp_aq_fmt){b->valueint, cJSON_IsTrue(sy), (int64_t)g->valuedouble, 1.0f, 0};
    return HARP_OK;
}

/* The per-layer clip table (n_layers × HARP_CLIP_COUNT) from w["clip"]. */
static harp_status clips_from_json(const cJSON *w, int n_layers, float *clip, const char *name) {
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(w, "clip");
    if (!cJSON_IsArray(cl) || cJSON_GetArraySize(cl) != n_layers)
        return harp_err(HARP_ERR_FORMAT, "%s: quantization_config.wakv.clip must be an array of %d layers", name, n_layers);
    int l = 0;
    for (const cJSON *row = cl->child; row; row = row->next, l++) {
        int k = 0;
        for (const cJSON *v = cJSON_IsArray(row) ? row->child : NULL; v && k < HARP_CLIP_COUNT; v = v->next, k++) {
            if (!cJSON_IsNumber(v) || !(v->valuedouble > 0 && v->valuedouble <= 1)) break;
            clip[l * HARP_CLIP_COUNT + k] = (float)v->valuedouble;
        }
        if (k != HARP_CLIP_COUNT || cJSON_GetArraySize(row) != HARP_CLIP_COUNT)
            return harp_err(HARP_ERR_FORMAT, "%s: quantization_config.wakv.clip[%d] must hold %d ratios in (0, 1]", name, l,
                            HARP_CLIP_COUNT);
    }
    return HARP_OK;
}

static harp_status exec_from_json(harp_model *m, const cJSON *w, const char *name) {
    harp_wakv_exec e;
    memset(&e, 0, sizeof e);
    const cJSON *r3 = cJSON_GetObjectItemCaseSensitive(w, "r3"), *r4 = cJSON_GetObjectItemCaseSensitive(w, "r4");
    if (!cJSON_IsBool(r3) || !cJSON_IsBool(r4))
        return harp_err(HARP_ERR_FORMAT, "%s: quantization_config.wakv.r3 and .r4 must be booleans", name);
    e.r3 = cJSON_IsTrue(r3), e.r4 = cJSON_IsTrue(r4);
    const cJSON *ro = cJSON_GetObjectItemCaseSensitive(w, "ro");
    if (ro && !cJSON_IsBool(ro)) return harp_err(HARP_ERR_FORMAT, "%s: quantization_config.wakv.ro must be a boolean", name);
    e.ro = cJSON_IsTrue(ro);
    HARP_TRY(fmt_from_json(w, "activations", &e.act, name));
    HARP_TRY(fmt_from_json(w, "kv_cache", &e.kv, name));
    HARP_TRY(skip_from_json(w, &e.act_skip, name));
    float *clip = harp_xmalloc((size_t)m->cfg.n_layers * HARP_CLIP_COUNT * sizeof *clip, "clip ratios");
    if (!clip) return HARP_ERR_OOM;
    /* "clip" comes with the slots; a folder without any (r3, r4 off, nothing quantized) has none */
    int has_clip = cJSON_GetObjectItemCaseSensitive(w, "clip") != NULL;
    harp_status st = has_clip || e.r3 || e.r4 || e.ro || e.act.bits || e.kv.bits ? clips_from_json(w, m->cfg.n_layers, clip, name)
                                                                          : HARP_OK;
    e.clip = has_clip ? clip : NULL;
    if (!st) st = harp_model_set_exec(m, &e);
    size_t n = strlen(m->quant_desc);
    if (!st && n < sizeof m->quant_desc)
        snprintf(m->quant_desc + n, sizeof m->quant_desc - n, "; wakv A%d KV%d%s%s%s", e.act.bits ? e.act.bits : 16,
                 e.kv.bits ? e.kv.bits : 16, e.r3 ? " R3" : "", e.r4 ? " R4" : "", e.ro ? " Ro" : "");
    if (st && st != HARP_ERR_OOM) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", harp_last_error());
        st = harp_err(st, "%s: quantization_config.wakv: %s", name, msg);
    }
    free(clip);
    return st;
}

harp_status harp_model_exec_from_config(harp_model *m, const char *json, size_t len, const char *name) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return harp_err(HARP_ERR_FORMAT, "%s: not valid JSON", name);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    const cJSON *w = q ? cJSON_GetObjectItemCaseSensitive(q, "wakv") : NULL;
    harp_status st = HARP_OK;
    if (w && !cJSON_IsObject(w)) st = harp_err(HARP_ERR_FORMAT, "%s: quantization_config.wakv is not an object", name);
    else if (w) st = exec_from_json(m, w, name);
    cJSON_Delete(root);
    return st;
}
