/* Internals of the quantized-model module: a named tensor list shared by the pipeline (in-memory
 * results), the folder writer and the loader (views into a mapped safetensors file), so that the
 * runtime is always built from the same bytes, whether fresh or re-read (round-trip bit-identity). */
#ifndef HARP_QMODEL_INTERNAL_H
#define HARP_QMODEL_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

#include "harp/qmodel.h"
#include "io/safetensors.h"
#include "model/model_internal.h"

typedef struct qt_tensor {
    char name[128];
    harp_st_dtype dtype;
    int ndim;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
    void *owned;           /* malloc'd copy (pipeline) or NULL (view into a mapped file) */
} qt_tensor;

typedef struct qt_list {
    qt_tensor *t;
    int n, cap;
    const char *origin;    /* file path or "in-memory" for messages */
} qt_list;

void qt_list_free(qt_list *l);
/* Copies data. */
harp_status qt_add(qt_list *l, const char *name, harp_st_dtype dt, const int64_t *shape, int ndim, const void *data);
const qt_tensor *qt_find(const qt_list *l, const char *name);
/* Views of every tensor of f (no copy; f must outlive l). */
harp_status qt_from_st(const harp_st_file *f, qt_list *l);
/* Deep copy of the tensors of src into dst (appended), skipping names starting with skip_prefix. */
harp_status qt_copy_all(const qt_list *src, qt_list *dst, const char *skip_prefix);
/* Adds every tensor to a safetensors writer (st_writer.h). */
struct st_writer;
harp_status qt_to_writer(const qt_list *l, struct st_writer *w);
int64_t qt_bytes_with_prefix(const qt_list *l, const char *prefix);

/* The stored parameters of a quantized folder (quantization_config). */
typedef struct qm_config {
    int version;
    harp_qmethod method;
    int bits;
    harp_codebook codebook;
    harp_qrot rotation;
    int group_size;
    uint64_t seed;
} qm_config;

/* Group ids and names: qkv, o, up (up|gate), down. */
enum { QM_QKV = 0, QM_O = 1, QM_UPGATE = 2, QM_DOWN = 3, QM_NGROUPS = 4 };
extern const char *const qm_group_tensor_name[QM_NGROUPS];  /* "self_attn.qkv_proj", ... */
/* Slices of group g for config c: count, row counts. Returns the slice count. */
int qm_group_slices(const harp_model_config *c, int g, int32_t len[3], int64_t *n_in);
const char *qm_codebook_name(harp_codebook cb);
harp_status qm_codebook_parse(const char *s, harp_codebook *cb);
const char *qm_method_name(harp_qmethod m);

/* Builds the quantized harp_linears of every layer of m from tensors (validated; errors name
 * l->origin and the tensor) and replaces the model's linears. On failure m is unchanged. */
harp_status qm_install_linears(harp_model *m, const qm_config *qc, const qt_list *l);
/* Parses quantization_config from config.json text; *is_harp = 0 when absent or another method. */
harp_status qm_config_parse(const char *json, size_t len, const char *name, int *is_harp, qm_config *qc);
void qm_config_desc(const qm_config *qc, char *buf, size_t size);
/* Fills m's quant_desc and the quant_* fields of its info from the folder's parameters and tensors. */
void qm_describe(harp_model *m, const qm_config *qc, const qt_list *l);

#endif
