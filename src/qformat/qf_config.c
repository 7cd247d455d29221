/* quantization_config of a quantized folder (format versions 1 and 2) parsed into a per-layer
 * configuration, the rotation recipes (harp_qrot) with their names and rotation kinds, and the
 * linear groups with their slices. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "qformat/qformat.h"
#include "quant/qtype_traits.h"

const char *const qf_group_name[QF_NGROUPS] = {"self_attn.qkv_proj", "self_attn.o_proj", "mlp.up_gate_proj",
                                                "mlp.down_proj"};
const char *const qf_group_short[QF_NGROUPS] = {"qkv", "o", "up_gate", "down"};

int qf_group_slices(const harp_model_config *c, int g, int64_t len[3], int64_t *n_in) {
    int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    switch (g) {
    case QF_QKV: len[0] = qd, len[1] = kvd, len[2] = kvd, *n_in = c->dim; return 3;
    case QF_O: len[0] = c->dim, *n_in = qd; return 1;
    case QF_UPGATE: len[0] = c->hidden_dim, len[1] = c->hidden_dim, *n_in = c->dim; return 2;
    default: len[0] = c->dim, *n_in = c->hidden_dim; return 1;
    }
}

void qf_group_prefix(char *buf, size_t size, int layer, int g) {
    snprintf(buf, size, "model.layers.%d.%s", layer, qf_group_name[g]);
}

/* ---- rotation recipes ------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int kind; /* harp_rot_kind of both sides, −1 for none */
} k_qrot[] = {
    [HARP_QROT_NONE] = {"none", -1},
    [HARP_QROT_RHT] = {"rht", HARP_ROT_HADAMARD},  /* the signs are stored apart: V = diag(s_in)·Had_n */
    [HARP_QROT_KRON] = {"kron", HARP_ROT_KRON},
    [HARP_QROT_RANDOM] = {"random", HARP_ROT_RANDOM_ORTHOGONAL},
    [HARP_QROT_GSR] = {"gsr", HARP_ROT_GSR},
    [HARP_QROT_HARP] = {"harp", HARP_ROT_BUTTERFLY},
};
#define N_QROT ((int)(sizeof k_qrot / sizeof k_qrot[0]))

const char *harp_qrot_name(harp_qrot r) { return (unsigned)r < (unsigned)N_QROT ? k_qrot[r].name : "?"; }

harp_status harp_qrot_parse(const char *name, harp_qrot *out) {
    for (int i = 0; i < N_QROT; i++)
        if (name && !strcmp(name, k_qrot[i].name)) {
            *out = (harp_qrot)i;
            return HARP_OK;
        }
    return harp_err(HARP_ERR_INVALID_ARG, "unknown rotation '%s' (none, rht, kron, random, gsr, harp)", name ? name : "(null)");
}

int harp_qrot_kind(harp_qrot r) { return (unsigned)r < (unsigned)N_QROT ? k_qrot[r].kind : -1; }

/* ---- configuration ---------------------------------------------------------------------------- */

void qf_config_free(qf_config *qc) {
    if (!qc) return;
    free(qc->layers);
    qc->layers = NULL;
    qc->n_layers = 0;
}

static harp_status fill_layers(qf_config *qc, int n_layers) {
    qc->n_layers = n_layers;
    qc->layers = harp_xcalloc((size_t)(n_layers > 0 ? n_layers : 1), sizeof *qc->layers, "layer configuration");
    if (!qc->layers) return HARP_ERR_OOM;
    for (int l = 0; l < n_layers; l++) {
        qf_layer_config *lc = &qc->layers[l];
        lc->wtype = qc->wtype;
        lc->rotation = qc->rotation;
        lc->group_size = qc->group_size;
        lc->act_type = HARP_QTYPE_F32;
        lc->kv_type = HARP_QTYPE_F32;
    }
    return HARP_OK;
}

harp_status qf_config_uniform(harp_qmethod method, int bits, harp_qrot rotation, int group_size, uint64_t seed,
                              int n_layers, qf_config *qc) {
    memset(qc, 0, sizeof *qc);
    qc->version = HARP_QMODEL_VERSION;
    qc->method = method;
    qc->bits = bits;
    qc->wtype = harp_qtype_for(method, bits);
    qc->rotation = rotation;
    qc->group_size = method == HARP_QMETHOD_QUIP || method == HARP_QMETHOD_QTIP ? 0 : group_size;
    qc->qtip_code = method == HARP_QMETHOD_QTIP ? HARP_TCODE_HYB : (harp_tcode)0;
    qc->seed = seed;
    if (qc->wtype == HARP_QTYPE_NONE)
        return harp_err(HARP_ERR_INVALID_ARG, "quantize: no quant type for %s at %d bits", harp_qmethod_name(method), bits);
    return fill_layers(qc, n_layers);
}

const char *qf_config_codebook(const qf_config *qc) {
    const harp_qtype_traits *tr = harp_qtype_traits_of(qc->wtype);
    return tr && tr->legacy_codebook ? tr->legacy_codebook : "?";
}

void qf_config_desc(const qf_config *qc, char *buf, size_t size) {
    if (qc->method == HARP_QMETHOD_QUIP)
        snprintf(buf, size, "harp v%d: quip %d-bit %s, rotation %s, seed %llu", qc->version, qc->bits,
                 qf_config_codebook(qc), harp_qrot_name(qc->rotation), (unsigned long long)qc->seed);
    else if (qc->method == HARP_QMETHOD_QTIP)
        snprintf(buf, size, "harp v%d: qtip %d-bit trellis %s, rotation %s, seed %llu", qc->version, qc->bits,
                 harp_tcode_name(qc->qtip_code), harp_qrot_name(qc->rotation), (unsigned long long)qc->seed);
    else
        snprintf(buf, size, "harp v%d: %s %d-bit scalar, group %d, rotation %s, seed %llu", qc->version,
                 harp_qmethod_name(qc->method), qc->bits, qc->group_size, harp_qrot_name(qc->rotation),
                 (unsigned long long)qc->seed);
}

/* The model's quant description and the quant_* fields of its info (`harp info`): method, rotation,
 * bits and the stored bits per weight of the groups (every tensor under each group prefix). */
void qf_describe(const harp_model_config *c, const qf_config *qc, const qf_tensors *l, harp_model_info *info,
                 char *desc, size_t desc_size) {
    qf_config_desc(qc, desc, desc_size);
    snprintf(info->quant_method, sizeof info->quant_method, "harp");
    snprintf(info->quant_algo, sizeof info->quant_algo, "%s", harp_qmethod_name(qc->method));
    snprintf(info->quant_rotation, sizeof info->quant_rotation, "%s", harp_qrot_name(qc->rotation));
    info->quant_bits = qc->bits;
    int64_t bytes = 0, weights = 0;
    for (int layer = 0; layer < c->n_layers; layer++)
        for (int g = 0; g < QF_NGROUPS; g++) {
            char P[128];
            int64_t len[3], n, rows = 0;
            int ns = qf_group_slices(c, g, len, &n);
            for (int i = 0; i < ns; i++) rows += len[i];
            qf_group_prefix(P, sizeof P - 1, layer, g);
            strcat(P, ".");
            bytes += qf_tensors_bytes_with_prefix(l, P);
            weights += rows * n;
        }
    info->quant_bpw = weights ? 8.0 * (double)bytes / (double)weights : 0.0;
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

/* method, bits and codebook: the codebook string must be the one of the type method + bits give. */
static harp_status qc_type(const cJSON *q, const char *name, qf_config *qc) {
    double v = 0;
    const char *s = NULL;
    HARP_TRY(qc_str(q, "method", name, &s));
    if (!strcmp(s, "rtn")) qc->method = HARP_QMETHOD_RTN;
    else if (!strcmp(s, "gptq")) qc->method = HARP_QMETHOD_GPTQ;
    else if (!strcmp(s, "quip")) qc->method = HARP_QMETHOD_QUIP;
    else if (!strcmp(s, "ldp")) qc->method = HARP_QMETHOD_LDP;
    else if (!strcmp(s, "qtip")) qc->method = HARP_QMETHOD_QTIP;
    else return harp_err(HARP_ERR_UNSUPPORTED, "%s: quantization_config.method '%s' unknown (rtn, gptq, quip, qtip, ldp)", name, s);
    HARP_TRY(qc_int(q, "bits", name, 2, 8, &v));
    qc->bits = (int)v;
    HARP_TRY(qc_str(q, "codebook", name, &s));
    if (!harp_qtype_legacy_codebook_known(s))
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: quantization_config.codebook '%s' unknown", name, s);
    qc->wtype = harp_qtype_for(qc->method, qc->bits);
    const harp_qtype_traits *tr = harp_qtype_traits_of(qc->wtype);
    if (!tr || !tr->legacy_codebook || strcmp(tr->legacy_codebook, s))
        return harp_err(HARP_ERR_FORMAT, "%s: quantization_config: codebook %s does not fit method %s at %d bits", name, s,
                        harp_qmethod_name(qc->method), qc->bits);
    if (qc->method != HARP_QMETHOD_QTIP) return HARP_OK;
    HARP_TRY(qc_str(q, "qtip_code", name, &s));
    if (harp_tcode_parse(s, &qc->qtip_code))
        return harp_err(HARP_ERR_FORMAT, "%s: quantization_config.qtip_code '%s' unknown (1mad, 3inst, hyb)", name, s);
    return HARP_OK;
}

static harp_status qc_parse_harp(const cJSON *q, const char *name, int n_layers, qf_config *qc) {
    double v = 0;
    const char *s = NULL;
    HARP_TRY(qc_int(q, "version", name, 0, 1e9, &v));
    qc->version = (int)v;
    if (qc->version != HARP_QMODEL_VERSION && qc->version != HARP_QMODEL_VERSION_WAKV &&
        qc->version != HARP_QMODEL_VERSION_WAKV_RO)
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: quantization_config.version %d is not supported (this build reads %d to %d)",
                        name, qc->version, HARP_QMODEL_VERSION, HARP_QMODEL_VERSION_WAKV_RO);
    HARP_TRY(qc_type(q, name, qc));
    HARP_TRY(qc_str(q, "rotation", name, &s));
    if (harp_qrot_parse(s, &qc->rotation))
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: quantization_config.rotation '%s' unknown", name, s);
    HARP_TRY(qc_int(q, "group_size", name, 0, 1 << 30, &v));
    qc->group_size = (int)v;
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(q, "seed");
    if (cJSON_IsString(seed)) qc->seed = strtoull(seed->valuestring, NULL, 10);
    return fill_layers(qc, n_layers);
}

harp_status qf_config_parse(const char *json, size_t len, const char *name, int n_layers, int *is_harp,
                            qf_config *qc) {
    *is_harp = 0;
    memset(qc, 0, sizeof *qc);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return harp_err(HARP_ERR_FORMAT, "%s: not valid JSON", name);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    const cJSON *qm = q ? cJSON_GetObjectItemCaseSensitive(q, "quant_method") : NULL;
    harp_status st = HARP_OK;
    if (cJSON_IsString(qm) && !strcmp(qm->valuestring, "harp")) {
        *is_harp = 1;
        st = qc_parse_harp(q, name, n_layers, qc);
        if (st) qf_config_free(qc);
    }
    cJSON_Delete(root);
    return st;
}
