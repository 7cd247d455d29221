/* Builds without CUDA: the CUDA backend's public entry points say so (HARP_ERR_NO_DEVICE). */
#ifndef HARP_HAVE_CUDA
#include "core/core.h"
#include "harp/backend.h"
#include "harp/cuda_eval.h"
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
#else
typedef int harp_backend_none_unused;   /* ISO C: a translation unit must not be empty */
#endif
