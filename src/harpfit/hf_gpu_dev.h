/* Plain-data boundary between the C side of the GPU HARP engine (src/harpfit/hf_gpu.c) and its CUDA
 * kernels (src/cuda/harpfit_cuda.cu): stage geometry, problem constants and codebook tables, so the
 * .cu file needs no harp_rot internals. Compiled only with HARP_HAVE_CUDA. */
#ifndef HARP_HF_GPU_DEV_H
#define HARP_HF_GPU_DEV_H

#include <stdint.h>

#include "harp/common.h"

typedef struct hfg_stage {
    int b;
    int64_t step, D;
    int64_t koff;   /* offset of this (pass, stage)'s blocks (D·b² floats) in the side's block buffer */
} hfg_stage;

typedef struct hfg_side {
    int64_t d;
    int PT;              /* passes × stages */
    hfg_stage *st;       /* PT entries, (pass, stage) order; dK offsets equal the block offsets */
    int64_t nk;          /* Σ D·b² over PT = block floats = dK doubles */
} hfg_side;

typedef struct hfg_desc {
    int64_t m, n;
    hfg_side U, V;
    double lambda, so, resid;
    int hbd_block, cb, freeze_weights;
    const float *e8p_abs;   /* [8][256] coordinate-major abs grid (coset +¼ base, hf_e8p.c's table) */
    const float *e8p_n2;    /* [256] */
    const int32_t *e8p_odd; /* [256] */
    const float *e81b;      /* [256][8] */
} hfg_desc;

typedef struct hfg_ctx hfg_ctx;

harp_status hfg_create(const hfg_desc *d, const float *W, const double *H, hfg_ctx **out);
void hfg_destroy(hfg_ctx *g);
/* One evaluation: kblk = the U blocks then the V blocks (U.nk + V.nk floats, canonical per-group
 * row-major K); out3 = {loss, proxy, hbd}; dk (U.nk + V.nk doubles, may be NULL = no backward) is
 * overwritten with the per-group Σ g vᵀ of U then V. */
harp_status hfg_eval(hfg_ctx *g, const float *kblk, int refresh, double out3[3], double *dk);
/* Tests: copies of W̃ (m×n), the target (m×n) and s after the last evaluation. */
harp_status hfg_debug(hfg_ctx *g, float *wt, float *target, double *s);
int hfg_device_present(void);

#endif
