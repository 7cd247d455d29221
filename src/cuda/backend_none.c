/* Builds without CUDA: the CUDA backend's public entry points say so (HARP_ERR_NO_DEVICE). */
#ifndef HARP_HAVE_CUDA
#include "core/core.h"
#include "harp/backend.h"
#include "harp/cuda_eval.h"

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
#else
typedef int harp_backend_none_unused;   /* ISO C: a translation unit must not be empty */
#endif
