/* Builds without CUDA: the CUDA backend's public entry points say so (HARP_ERR_NO_DEVICE). */
#ifndef HARP_HAVE_CUDA
#include "core/core.h"
#include "harp/backend.h"
#include "harp/cuda_eval.h"
#include "quant/blockfit_gpu.h"
#include "quant/trellis_gpu.h"

#define NO_CUDA "harp was built without CUDA (configure with -DHARP_CUDA=ON)"

harp_status harp_backend_cuda_create(int device, harp_backend **out) {
    (void)device;
    if (out) *out = NULL;
    return harp_err(HARP_ERR_NO_DEVICE, "cuda backend: " NO_CUDA);
}

int harp_cuda_available(void) {
    harp_err(HARP_ERR_NO_DEVICE, NO_CUDA);
    return 0;
}

/* The CUDA Viterbi (src/cuda/trellis_viterbi.cu). */
int harp_tvit_gpu_available(void) {
    harp_err(HARP_ERR_NO_DEVICE, "CUDA Viterbi: " NO_CUDA);
    return 0;
}

harp_status harp_tvit_gpu_create(const harp_tcb *cb, int64_t max_seq, const char *what, harp_tvit_gpu **out) {
    (void)cb, (void)max_seq;
    if (out) *out = NULL;
    return harp_err(HARP_ERR_NO_DEVICE, "%s: CUDA Viterbi: " NO_CUDA, what);
}

harp_status harp_tvit_gpu_run(harp_tvit_gpu *g, int64_t count, const float *x, uint32_t *states, float *cost) {
    (void)g, (void)count, (void)x, (void)states, (void)cost;
    return harp_err(HARP_ERR_NO_DEVICE, "CUDA Viterbi: " NO_CUDA);
}

int64_t harp_tvit_gpu_batch(const harp_tvit_gpu *g) {
    (void)g;
    return 0;
}

void harp_tvit_gpu_destroy(harp_tvit_gpu *g) { (void)g; }

/* The fp64 decoder block on the device (src/cuda/blockfit_cuda.cu: LDP fit (b) with --ldp-gpu). */
harp_status harp_blk_gpu_create(const harp_blk_dims *dm, const harp_blk_wakv *wk, const double *X, const double *Y, double inv_norm,
                                harp_blk_gpu **out) {
    (void)dm, (void)wk, (void)X, (void)Y, (void)inv_norm;
    if (out) *out = NULL;
    return harp_err(HARP_ERR_NO_DEVICE, "ldp block fit on the GPU: " NO_CUDA);
}

void harp_blk_gpu_free(harp_blk_gpu *g) { (void)g; }

harp_status harp_blk_gpu_loss(harp_blk_gpu *g, const harp_blk_w *w, double *L, harp_blk_w *gw) {
    (void)g, (void)w, (void)L, (void)gw;
    return harp_err(HARP_ERR_NO_DEVICE, "blockfit gpu: " NO_CUDA);
}

harp_status harp_blk_gpu_forward(harp_blk_gpu *g, const harp_blk_w *w, double *y) {
    (void)g, (void)w, (void)y;
    return harp_err(HARP_ERR_NO_DEVICE, "blockfit gpu: " NO_CUDA);
}

harp_status harp_blk_gpu_backward(harp_blk_gpu *g, const double *dy, double *dx, harp_blk_w *gw) {
    (void)g, (void)dy, (void)dx, (void)gw;
    return harp_err(HARP_ERR_NO_DEVICE, "blockfit gpu: " NO_CUDA);
}
#else
typedef int harp_backend_none_unused;   /* ISO C: a translation unit must not be empty */
#endif
