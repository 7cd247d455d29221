/* Safetensors writer: collects named tensors (dtype, shape, bytes) and writes one
 * model.safetensors atomically — 8-byte little-endian header length, the JSON header with
 * data_offsets relative to the end of the header (padded with spaces to 8 bytes), then the data by
 * decreasing element size (insertion order within a size, so every tensor is aligned to its element
 * size). The header keeps insertion order, so output is deterministic. */
#ifndef HARP_IO_ST_WRITER_H
#define HARP_IO_ST_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "io/safetensors.h"

typedef struct st_writer st_writer;

st_writer *st_writer_new(void);
void st_writer_free(st_writer *w);
/* Copies data (numel(shape) * harp_st_dtype_size(dt) bytes). ndim <= 4. */
harp_status st_writer_add(st_writer *w, const char *name, harp_st_dtype dt, const int64_t *shape, int ndim, const void *data);
/* Optional string metadata ("__metadata__"). */
harp_status st_writer_meta(st_writer *w, const char *key, const char *value);
harp_status st_writer_save(st_writer *w, const char *path);

#endif
