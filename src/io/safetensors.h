/* safetensors reader: validated header parse (from memory, so it can be fuzzed) and mmap'd files.
 * Layout: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets},
 * "__metadata__": {...}}, then the data region; offsets are relative to the data region. */
#ifndef HARP_IO_SAFETENSORS_H
#define HARP_IO_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define HARP_ST_MAX_DIMS 8
/* Bounds that keep parsing a hostile header within a few tens of MB: the header's length (the
 * format allows 100 MB; harp's largest folders need < 1 MB, 8 MB holds ~50k tensor entries) and
 * its number of JSON values (~8 per tensor: 16k tensors per file), counted before parsing. */
#define HARP_ST_MAX_HEADER (8 << 20)
#define HARP_ST_MAX_VALUES (1 << 17)

typedef enum harp_st_dtype {
    HARP_ST_F32, HARP_ST_F16, HARP_ST_BF16, HARP_ST_F64, HARP_ST_I64, HARP_ST_I32, HARP_ST_I16,
    HARP_ST_I8, HARP_ST_U8, HARP_ST_BOOL, HARP_ST_U16, HARP_ST_U32, HARP_ST_U64, HARP_ST_F8_E4M3,
    HARP_ST_F8_E5M2
} harp_st_dtype;

typedef struct harp_st_tensor {
    char *name;
    harp_st_dtype dtype;
    int ndim;
    int64_t shape[HARP_ST_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end;   /* byte offsets inside the data region, validated */
} harp_st_tensor;

typedef struct harp_st_file {
    char *path;            /* for messages */
    harp_mapped map;       /* whole file (empty when parsed from memory) */
    const uint8_t *data;   /* start of the data region */
    uint64_t data_size;
    harp_st_tensor *tensors;
    int n_tensors;
} harp_st_file;

const char *harp_st_dtype_name(harp_st_dtype d);
size_t harp_st_dtype_size(harp_st_dtype d);

/* Parses and validates a whole safetensors image held in memory (buf is not copied; the returned
 * tensors point into it). name is used in error messages. */
harp_status harp_st_parse(const uint8_t *buf, size_t size, const char *name, harp_st_file *out);
/* Maps path and parses it. */
harp_status harp_st_open(const char *path, harp_st_file *out);
void harp_st_close(harp_st_file *f);

const harp_st_tensor *harp_st_find(const harp_st_file *f, const char *name);

/* Converts a F32/F16/BF16 tensor to f32 (n = numel floats), rejecting other dtypes
 * (HARP_ERR_UNSUPPORTED) and NaN/Inf values (HARP_ERR_NUMERIC), both naming file and tensor. */
harp_status harp_st_to_f32(const harp_st_file *f, const harp_st_tensor *t, float *dst);

#endif
