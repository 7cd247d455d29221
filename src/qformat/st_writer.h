/* Safetensors writer: collects named tensors (dtype, shape, bytes) and writes one
 * model.safetensors atomically — 8-byte little-endian header length, the JSON header with
 * data_offsets relative to the end of the header (padded with spaces to 8 bytes), then the data in
 * the order added. Tensor names are kept in insertion order, so output is deterministic. */
#ifndef HARP_ST_WRITER_H
#define HARP_ST_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef enum st_dtype { ST_F32, ST_F16, ST_BF16, ST_I8, ST_U8, ST_I16, ST_U16, ST_I32, ST_I64, ST_U64, ST_F64 } st_dtype;

typedef struct st_writer st_writer;

st_writer *st_writer_new(void);
void st_writer_free(st_writer *w);
/* Copies data (numel(shape) * dtype size bytes). ndim <= 4. */
harp_status st_writer_add(st_writer *w, const char *name, st_dtype dt, const int64_t *shape, int ndim, const void *data);
/* Optional string metadata ("__metadata__"). */
harp_status st_writer_meta(st_writer *w, const char *key, const char *value);
harp_status st_writer_save(st_writer *w, const char *path);

size_t st_dtype_size(st_dtype dt);
const char *st_dtype_name(st_dtype dt);

#endif
