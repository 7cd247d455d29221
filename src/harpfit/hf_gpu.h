/* GPU twin of the fp32 HARP loss/gradient engine (hf_eval_f32): same loss, same target refresh rule,
 * same dθ convention. The stage transforms, the proxy target, the losses and the per-group dK run on
 * the device (src/cuda/harpfit_cuda.cu); the blocks are uploaded from bf_blocks_f32 each evaluation and
 * dθ is formed on the host with bf_dtheta_from_dk. Without CUDA every call returns HARP_ERR_NO_DEVICE. */
#ifndef HARP_HF_GPU_H
#define HARP_HF_GPU_H

#include "harpfit/hf_internal.h"

typedef struct hf_gpu hf_gpu;

/* 1 when harp was built with CUDA and a device is present; otherwise 0 with the reason recorded as
 * the last error (HARP_ERR_NO_DEVICE). */
int hf_gpu_available(void);
harp_status hf_gpu_create(harp_rot *U, harp_rot *V, const float *W, const double *H, const hf_opts *o, hf_gpu **out);
/* As hf_eval_f32 (dθ ADDED into dU / dV; both NULL = loss only). */
harp_status hf_gpu_eval(hf_gpu *g, int refresh, hf_terms *t, double *dU, double *dV);
/* Tests: W̃ (m×n), the current target (m×n) and the cached scale s of the last evaluation. */
harp_status hf_gpu_debug(hf_gpu *g, float *wt, float *target, double *s);
void hf_gpu_destroy(hf_gpu *g);

#endif
