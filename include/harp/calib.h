/* Calibration: per-decoder-layer input second moments ("Hessians") of the four linear groups
 * qkv / o / up / down, accumulated in float64 over calibration windows of the FP model, saved one
 * file per layer (docs/format/hessian.md), reused by every quantizer and bit width. */
#ifndef HARP_CALIB_H
#define HARP_CALIB_H
#include <stddef.h>
#include <stdint.h>
#include "common.h"
#include "model.h"
#ifdef __cplusplus
extern "C" {
#endif

enum { HARP_HESS_QKV = 0, HARP_HESS_O = 1, HARP_HESS_UP = 2, HARP_HESS_DOWN = 3, HARP_HESS_COUNT = 4 };

typedef struct harp_calib_params {
    int ctx;              /* tokens per calibration window (default 512)                         */
    int nseq;             /* windows to use (default 256; 0 = every window of the text)           */
    uint64_t seed;        /* which windows: a seeded shuffle of all windows (default 0)           */
    size_t mem_budget_mb; /* accumulators held at once; layers beyond it are done in later passes */
    harp_progress_fn progress;
    void *progress_user;
} harp_calib_params;

harp_calib_params harp_calib_default_params(void);

typedef struct harp_calib_summary {
    int n_layers, layers_done_before;  /* layers found complete on disk (resume) */
    int n_windows, ctx, passes;
    int64_t n_tokens;
    double seconds;
} harp_calib_summary;

/* Tokenizes text once (BOS prepended), cuts it into non-overlapping ctx windows, picks nseq of them
 * and writes out_dir/layer_NNN.hess for every decoder layer. Layers whose file already exists and
 * matches this model and run are kept (resume after an interrupted run). */
harp_status harp_calib_run(harp_model *m, const char *text, size_t len, const char *out_dir,
                           const harp_calib_params *p, harp_calib_summary *summary);

/* One loaded layer file. */
typedef struct harp_hess_layer harp_hess_layer;

/* Loads out_dir/layer_NNN.hess, verifying magic, version, checksum and size; if m is non-NULL the
 * file must belong to that model (shape + weight fingerprint), else HARP_ERR_MISMATCH. */
harp_status harp_hess_layer_load(const char *dir, int layer, const harp_model *m, harp_hess_layer **out);
void harp_hess_layer_free(harp_hess_layer *h);

/* The uncentered second moment H = S / ct (n×n, symmetric, full storage, row-major), the mean
 * μ = Σx / ct (n), and the row count. which = HARP_HESS_*. Pointers live as long as h. */
const double *harp_hess_matrix(const harp_hess_layer *h, int which, int *n);
const double *harp_hess_mean(const harp_hess_layer *h, int which);
int64_t harp_hess_count(const harp_hess_layer *h, int which);
const char *harp_hess_name(int which);   /* "qkv", "o", "up", "down" */

#ifdef __cplusplus
}
#endif
#endif
