/* Calibration internals shared by the runner and the layer-file reader/writer. */
#ifndef HARP_CALIB_INTERNAL_H
#define HARP_CALIB_INTERNAL_H

#include "core/core.h"
#include "harp/calib.h"
#include "harp/model.h"

/* Fixed 128-byte header after magic + version: which model and which run produced the file. */
typedef struct hess_header {
    uint32_t layer, n_layers;
    uint32_t dim, hidden_dim, n_heads, n_kv_heads, head_dim, vocab_size;
    uint64_t model_fp;        /* harp_model_fingerprint */
    uint32_t ctx, n_windows;  /* calibration windows used */
    uint64_t n_tokens;        /* rows accumulated per statistic */
    uint64_t seed;
    char text_sha256[64];     /* hex, not NUL-terminated */
} hess_header;
_Static_assert(sizeof(hess_header) == 128, "Hessian header layout is part of the file format");

/* One statistic's accumulator: S (n×n, lower triangle valid), Σx, rows. */
typedef struct hess_acc {
    int n;
    int64_t ct;
    double *S;
    double *mu_sum;
} hess_acc;

char *hess_layer_path(const char *dir, int layer);
harp_status hess_write_layer(const char *path, const hess_header *hdr, const hess_acc acc[HARP_HESS_COUNT]);
harp_status hess_read_header(const char *path, hess_header *hdr);
/* HARP_OK when hdr's model fields match m, else HARP_ERR_MISMATCH naming path. */
harp_status hess_check_model(const char *path, const hess_header *hdr, const harp_model *m);

#endif
