/* The quantized-folder format (docs/format/qmodel.md), module API of src/qformat: the folder's
 * named tensors, the linear groups and their slices, quantization_config (parsed into a per-layer
 * configuration), and harp_qtensor ↔ folder tensors (generic over the quant-type traits), whose
 * validated groups the model's loader (model/quantized.c) makes the model's weights. Written by
 * src/qmodel (the quantize pipeline and the folder writer). */
#ifndef HARP_QFORMAT_QFORMAT_H
#define HARP_QFORMAT_QFORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "harp/qmodel.h"
#include "harp/qtensor.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "io/st_writer.h"

/* ---- named tensors -----------------------------------------------------------------------------
 * A folder's tensors in order: owned copies (pipeline results) or views into a mapped safetensors
 * file, so that the runtime is built from the same bytes whether fresh or re-read. */
typedef struct qf_tensor {
    char name[128];
    harp_st_dtype dtype;
    int ndim;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
    void *owned;           /* malloc'd copy or NULL (view into a mapped file) */
} qf_tensor;

typedef struct qf_tensors {
    qf_tensor *t;
    int n, cap;
    const char *origin;    /* file path or "in-memory …" for messages */
} qf_tensors;

void qf_tensors_free(qf_tensors *l);
/* Appends a copy of data (numel(shape) · dtype size bytes). */
harp_status qf_tensors_add(qf_tensors *l, const char *name, harp_st_dtype dt, const int64_t *shape, int ndim,
                           const void *data);
const qf_tensor *qf_tensors_find(const qf_tensors *l, const char *name);
/* Views of every tensor of f (no copy; f must outlive l). */
harp_status qf_tensors_from_st(const harp_st_file *f, qf_tensors *l);
/* Deep copy of the tensors of src appended to dst, skipping names starting with skip_prefix. */
harp_status qf_tensors_copy(const qf_tensors *src, qf_tensors *dst, const char *skip_prefix);
/* Adds every tensor (or those starting with prefix, if not NULL) to a safetensors writer. */
harp_status qf_tensors_to_writer(const qf_tensors *l, const char *prefix, st_writer *w);
int64_t qf_tensors_bytes_with_prefix(const qf_tensors *l, const char *prefix);

/* ---- linear groups -------------------------------------------------------------------------------
 * Per decoder layer four groups, slices stacked along the rows in this order: qkv (q, k, v),
 * o, up_gate (up, gate), down. */
enum { QF_QKV = 0, QF_O = 1, QF_UPGATE = 2, QF_DOWN = 3, QF_NGROUPS = 4 };
extern const char *const qf_group_name[QF_NGROUPS];   /* "self_attn.qkv_proj", …              */
extern const char *const qf_group_short[QF_NGROUPS];  /* "qkv", "o", "up_gate", "down"        */
/* Slices of group g for config c: the count, their row counts len[], and the input width. */
int qf_group_slices(const harp_model_config *c, int g, int64_t len[3], int64_t *n_in);
/* "model.layers.<layer>.<group name>": the prefix P of the group's tensors. */
void qf_group_prefix(char *buf, size_t size, int layer, int g);

/* ---- quantization_config -------------------------------------------------------------------------- */

/* Configuration of one decoder layer, filled from quantization_config (uniform in format v1). */
typedef struct qf_layer_config {
    harp_qtype wtype;      /* weight type of the four groups                                     */
    harp_qrot rotation;    /* incoherence transform stored with every group                      */
    int group_size;        /* scalar types: the quantizer's group (0 = per row)                   */
    /* Slots for formats that quantize activations and the KV cache (empty in format v1):       */
    int online_rot;        /* online rotation of the activations before the groups (0 = none)     */
    int head_rot;          /* per-head rotation of q / k (R3) (0 = none)                         */
    harp_qtype act_type;   /* activation quantizer in front of the groups (F32 = none)            */
    harp_qtype kv_type;    /* KV-cache storage type (F32)                                        */
} qf_layer_config;

typedef struct qf_config {
    int version;
    harp_qmethod method;
    int bits;
    harp_qtype wtype;
    harp_qrot rotation;
    int group_size;
    uint64_t seed;
    harp_tcode qtip_code;      /* qtip: quantization_config.qtip_code; every group's tcode plane
                                  must agree (qf_load_groups); 0 for other methods              */
    int n_layers;
    qf_layer_config *layers;   /* (n_layers) */
} qf_config;

/* Parses quantization_config from config.json text for a model of n_layers layers; *is_harp = 0
 * (and nothing allocated) when it is absent or another quant_method. Errors name `name`. */
harp_status qf_config_parse(const char *json, size_t len, const char *name, int n_layers, int *is_harp,
                            qf_config *qc);
/* The configuration a quantize run writes (every layer alike). */
harp_status qf_config_uniform(harp_qmethod method, int bits, harp_qrot rotation, int group_size, uint64_t seed,
                              int n_layers, qf_config *qc);
void qf_config_free(qf_config *qc);
/* "harp v1: quip 2-bit e8p12, rotation rht, seed 5" (the model's quant description). */
void qf_config_desc(const qf_config *qc, char *buf, size_t size);
/* desc ← qf_config_desc; info's quant_* fields (method, rotation, bits, stored bpw of the groups). */
void qf_describe(const harp_model_config *c, const qf_config *qc, const qf_tensors *l, harp_model_info *info,
                 char *desc, size_t desc_size);
/* The quantization_config.codebook string of format v1 for the configured weight type. */
const char *qf_config_codebook(const qf_config *qc);

/* ---- qtensor ↔ folder tensors ------------------------------------------------------------------- */

/* Appends the folder tensors of one group under prefix P, in format-v1 order: the planes of w's type
 * (traits order), slice_scales, then — when w has transforms — su, sv, rot_in, rot_out (serialised
 * blobs). code_bytes / xf_bytes (may be NULL) receive the bytes of planes + slice scales and of
 * signs + rotation blobs. */
harp_status qf_put_qtensor(qf_tensors *l, const char *P, const harp_qtensor *w, int64_t *code_bytes,
                           int64_t *xf_bytes);
/* Builds *w (owned copies) from the tensors under P for the group shape, the layer configuration
 * and the group's slices, validating every tensor (missing, dtype, shape, values, blob
 * checksums and dimensions) with errors naming l->origin and the tensor. */
harp_status qf_get_qtensor(const qf_tensors *l, const char *P, const qf_layer_config *lc, int64_t n,
                           int n_slices, const int64_t *slice_len, harp_qtensor *w);
/* Every group of every layer, validated (nothing returned on failure): (*out)[layer·QF_NGROUPS + g],
 * released with qf_groups_free. */
harp_status qf_load_groups(const harp_model_config *c, const qf_config *qc, const qf_tensors *l, harp_qtensor **out);
void qf_groups_free(harp_qtensor *g, int count);

#endif
