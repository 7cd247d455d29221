/* GPU twin of the fp64 decoder-block forward and hand-written backward (blockfit.h), for LDP fit (b) on
 * the GPU (module API of src/quant; implementation src/cuda/blockfit_cuda.cu). The same ops in the same
 * order and precision: fp64 throughout, the linears and the online rotations (materialised once as dense
 * fp64 matrices) as cuBLAS DGEMMs, RMSNorm / RoPE / attention / SwiGLU as kernels that sum in a fixed
 * order (a rerun is bit-identical), the quantizer sites by the CPU's fp32 fake quantizer on the device
 * (dec_aq_fake, bit for bit) with the straight-through backward. It differs from the CPU block only by
 * fp64 summation order (tests/test_blockfit_gpu.c: forward, gradients and a whole fit against the CPU).
 *
 * One engine holds one set of sequences: its inputs X and targets Y stay on the device, the weights are
 * uploaded per evaluation (the fit changes them every step), the loss is L = inv_norm·‖block(X) − Y‖²
 * (ldp_block.c's) and its weight gradients come back to the host. Without CUDA (or without a device)
 * create returns HARP_ERR_NO_DEVICE with one line. */
#ifndef HARP_QUANT_BLOCKFIT_GPU_H
#define HARP_QUANT_BLOCKFIT_GPU_H

#include "quant/blockfit.h"

typedef struct harp_blk_gpu harp_blk_gpu;

/* An engine for dims dm (inv_freq copied) with W/A/KV slots wk (NULL: none; rotations materialised,
 * formats and frozen errors copied), inputs X and targets Y (rows × d each, copied; Y may be NULL: no
 * loss, the test entry points only). */
harp_status harp_blk_gpu_create(const harp_blk_dims *dm, const harp_blk_wakv *wk, const double *X, const double *Y, double inv_norm,
                                harp_blk_gpu **out);
void harp_blk_gpu_free(harp_blk_gpu *g);
/* *L for weights w (host); with gw != NULL also dL/dW into gw for every gw->lin[i] (and norm array)
 * that is not NULL (host, overwritten). */
harp_status harp_blk_gpu_loss(harp_blk_gpu *g, const harp_blk_w *w, double *L, harp_blk_w *gw);
/* Tests: y = block(X) (host, rows × d); then dx (may be NULL) and gw from dy (host) on that forward. */
harp_status harp_blk_gpu_forward(harp_blk_gpu *g, const harp_blk_w *w, double *y);
harp_status harp_blk_gpu_backward(harp_blk_gpu *g, const double *dy, double *dx, harp_blk_w *gw);

#endif
