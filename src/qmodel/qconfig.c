/* Names, defaults and the quantization_config block of a quantized folder. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "qmodel/qmodel_internal.h"

const char *const qm_group_tensor_name[QM_NGROUPS] = {"self_attn.qkv_proj", "self_attn.o_proj", "mlp.up_gate_proj",
                                                       "mlp.down_proj"};

int qm_group_slices(const harp_model_config *c, int g, int32_t len[3], int64_t *n_in) {
    int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    switch (g) {
    case QM_QKV: len[0] = qd, len[1] = kvd, len[2] = kvd, *n_in = c->dim; return 3;
    case QM_O: len[0] = c->dim, *n_in = qd; return 1;
    case QM_UPGATE: len[0] = c->hidden_dim, len[1] = c->hidden_dim, *n_in = c->dim; return 2;
    default: len[0] = c->dim, *n_in = c->hidden_dim; return 1;
    }
}

const char *qm_codebook_name(harp_codebook cb) {
    switch (cb) {
    case HARP_CODEBOOK_SCALAR: return "scalar";
    case HARP_CODEBOOK_E8P12: return "e8p12";
    case HARP_CODEBOOK_E8P12_RVQ3B: return "e8p12_rvq3b";
    case HARP_CODEBOOK_E8P12_RVQ4B: return "e8p12_rvq4b";
    }
    return "?";
}

harp_status qm_codebook_parse(const char *s, harp_codebook *cb) {
    static const harp_codebook all[] = {HARP_CODEBOOK_SCALAR, HARP_CODEBOOK_E8P12, HARP_CODEBOOK_E8P12_RVQ3B,
                                        HARP_CODEBOOK_E8P12_RVQ4B};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(s, qm_codebook_name(all[i]))) {
            *cb = all[i];
            return HARP_OK;
        }
    return HARP_ERR_UNSUPPORTED;
}

const char *qm_method_name(harp_qmethod m) {
    return m == HARP_QMETHOD_RTN ? "rtn" : m == HARP_QMETHOD_GPTQ ? "gptq" : "quip";
}

static const char *const qrot_names[] = {"none", "rht", "kron", "random", "gsr", "harp"};

const char *harp_qrot_name(harp_qrot r) {
    return (unsigned)r < sizeof qrot_names / sizeof qrot_names[0] ? qrot_names[r] : "?";
}

harp_status harp_qrot_parse(const char *name, harp_qrot *out) {
    for (int i = 0; i < (int)(sizeof qrot_names / sizeof qrot_names[0]); i++)
        if (name && !strcmp(name, qrot_names[i])) {
            *out = (harp_qrot)i;
            return HARP_OK;
        }
    return harp_err(HARP_ERR_INVALID_ARG, "unknown rotation '%s' (none, rht, kron, random, gsr, harp)", name ? name : "(null)");
}

harp_qmodel_params harp_qmodel_default_params(harp_qmethod method, int bits) {
    harp_qmodel_params p;
    memset(&p, 0, sizeof p);
    p.method = method;
    p.bits = bits;
    p.group_size = 128;
    p.rotation = method == HARP_QMETHOD_QUIP ? HARP_QROT_RHT : HARP_QROT_NONE;
    p.seed = 0;
    p.harp = harp_fit_default_params(bits >= 2 && bits <= 4 ? bits : 2);
    p.resume = 1;
    p.abort_after_layer = -1;
    return p;
}

uint64_t harp_qmodel_layer_seed(uint64_t seed, int layer, int group) {
    return harp_seed_mix(harp_seed_mix(seed, 0x5149u + (uint64_t)layer), (uint64_t)group);
}

void harp_qmodel_report_free(harp_qmodel_report *r) {
    if (!r) return;
    harp_free(r->rows);
    r->rows = NULL;
    r->n_rows = 0;
}

void qm_config_desc(const qm_config *qc, char *buf, size_t size) {
    if (qc->method == HARP_QMETHOD_QUIP)
        snprintf(buf, size, "harp v%d: quip %d-bit %s, rotation %s, seed %llu", qc->version, qc->bits,
                 qm_codebook_name(qc->codebook), harp_qrot_name(qc->rotation), (unsigned long long)qc->seed);
    else
        snprintf(buf, size, "harp v%d: %s %d-bit scalar, group %d, rotation %s, seed %llu", qc->version,
                 qm_method_name(qc->method), qc->bits, qc->group_size, harp_qrot_name(qc->rotation),
                 (unsigned long long)qc->seed);
}

const char *harp_model_quant_desc(const harp_model *m) { return m ? m->quant_desc : ""; }

void qm_describe(harp_model *m, const qm_config *qc, const qt_list *l) {
    qm_config_desc(qc, m->quant_desc, sizeof m->quant_desc);
    harp_model_info *in = &m->info;
    snprintf(in->quant_method, sizeof in->quant_method, "harp");
    snprintf(in->quant_algo, sizeof in->quant_algo, "%s", qm_method_name(qc->method));
    snprintf(in->quant_rotation, sizeof in->quant_rotation, "%s", harp_qrot_name(qc->rotation));
    in->quant_bits = qc->bits;
    int64_t bytes = 0, weights = 0;
    for (int layer = 0; layer < m->cfg.n_layers; layer++)
        for (int g = 0; g < QM_NGROUPS; g++) {
            char P[128];
            int32_t len[3];
            int64_t n, rows = 0;
            int ns = qm_group_slices(&m->cfg, g, len, &n);
            for (int i = 0; i < ns; i++) rows += len[i];
            snprintf(P, sizeof P, "model.layers.%d.%s.", layer, qm_group_tensor_name[g]);
            bytes += qt_bytes_with_prefix(l, P);
            weights += rows * n;
        }
    in->quant_bpw = weights ? 8.0 * (double)bytes / (double)weights : 0.0;
}

static harp_status qc_str(const cJSON *o, const char *key, const char *name, const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) return harp_err(HARP_ERR_FORMAT, "%s: quantization_config.%s missing or not a string", name, key);
    *out = v->valuestring;
    return HARP_OK;
}

static harp_status qc_int(const cJSON *o, const char *key, const char *name, double lo, double hi, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi || v->valuedouble != (double)(int64_t)v->valuedouble)
        return harp_err(HARP_ERR_FORMAT, "%s: quantization_config.%s missing or not an integer in [%g, %g]", name, key, lo, hi);
    *out = v->valuedouble;
    return HARP_OK;
}

harp_status qm_config_parse(const char *json, size_t len, const char *name, int *is_harp, qm_config *qc) {
    *is_harp = 0;
    memset(qc, 0, sizeof *qc);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return harp_err(HARP_ERR_FORMAT, "%s: not valid JSON", name);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    const cJSON *qm = q ? cJSON_GetObjectItemCaseSensitive(q, "quant_method") : NULL;
    harp_status st = HARP_OK;
    if (!cJSON_IsString(qm) || strcmp(qm->valuestring, "harp")) goto done;
    *is_harp = 1;
    double v = 0;
    const char *s = NULL;
    if ((st = qc_int(q, "version", name, 0, 1e9, &v))) goto done;
    qc->version = (int)v;
    if (qc->version != HARP_QMODEL_VERSION) {
        st = harp_err(HARP_ERR_UNSUPPORTED, "%s: quantization_config.version %d is not supported (this build reads %d)", name,
                      qc->version, HARP_QMODEL_VERSION);
        goto done;
    }
    if ((st = qc_str(q, "method", name, &s))) goto done;
    if (!strcmp(s, "rtn")) qc->method = HARP_QMETHOD_RTN;
    else if (!strcmp(s, "gptq")) qc->method = HARP_QMETHOD_GPTQ;
    else if (!strcmp(s, "quip")) qc->method = HARP_QMETHOD_QUIP;
    else {
        st = harp_err(HARP_ERR_UNSUPPORTED, "%s: quantization_config.method '%s' unknown (rtn, gptq, quip)", name, s);
        goto done;
    }
    if ((st = qc_int(q, "bits", name, 2, 8, &v))) goto done;
    qc->bits = (int)v;
    if ((st = qc_str(q, "codebook", name, &s))) goto done;
    if (qm_codebook_parse(s, &qc->codebook)) {
        st = harp_err(HARP_ERR_UNSUPPORTED, "%s: quantization_config.codebook '%s' unknown", name, s);
        goto done;
    }
    harp_codebook want = qc->method != HARP_QMETHOD_QUIP ? HARP_CODEBOOK_SCALAR
                         : qc->bits == 2                ? HARP_CODEBOOK_E8P12
                         : qc->bits == 3                ? HARP_CODEBOOK_E8P12_RVQ3B
                         : qc->bits == 4                ? HARP_CODEBOOK_E8P12_RVQ4B
                                                        : (harp_codebook)-1;
    if (qc->codebook != want || (qc->method != HARP_QMETHOD_QUIP && qc->bits != 2 && qc->bits != 3 && qc->bits != 4 && qc->bits != 8)) {
        st = harp_err(HARP_ERR_FORMAT, "%s: quantization_config: codebook %s does not fit method %s at %d bits", name, s,
                      qm_method_name(qc->method), qc->bits);
        goto done;
    }
    if ((st = qc_str(q, "rotation", name, &s))) goto done;
    if (harp_qrot_parse(s, &qc->rotation)) {
        st = harp_err(HARP_ERR_UNSUPPORTED, "%s: quantization_config.rotation '%s' unknown", name, s);
        goto done;
    }
    if ((st = qc_int(q, "group_size", name, 0, 1 << 30, &v))) goto done;
    qc->group_size = (int)v;
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(q, "seed");
    if (cJSON_IsString(seed)) qc->seed = strtoull(seed->valuestring, NULL, 10);
done:
    cJSON_Delete(root);
    return st;
}
