/* GPU perplexity / KL-divergence evaluation (cuBLAS fp32 forward, many windows per launch).
 * Same protocol as harp_eval_ppl (BOS + the whole text tokenized once, non-overlapping windows of
 * ctx tokens from an empty cache, mean NLL over the ctx-1 predictions of each window), computed on
 * the GPU in strict fp32 (no TF32). Each linear group goes to the GPU backend (as its effective
 * dense weight W_effᵀ, the CPU product on identity rows, so quantized groups work unchanged).
 * Builds without CUDA compile these entry points; they return HARP_ERR_NO_DEVICE. */
#ifndef HARP_CUDA_EVAL_H
#define HARP_CUDA_EVAL_H
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "eval.h"
#include "model.h"
#ifdef __cplusplus
extern "C" {
#endif

/* 1 when this build has CUDA and a device is present, else 0 (reason in harp_last_error()). */
int harp_cuda_available(void);

typedef struct harp_gpu_ppl_params {
    int windows_per_batch; /* windows per forward launch; 0 = auto (by free device memory)           */
} harp_gpu_ppl_params;

harp_gpu_ppl_params harp_gpu_ppl_default_params(void);

/* As harp_eval_ppl_ids / harp_eval_ppl (p: ctx, max_chunks, progress, on_chunk, kld_ref; save_logits
 * and kld_base are CPU-only and rejected). With p->kld_ref set, out->has_kld and the kld_* fields and
 * top1_agree (argmax of ref == argmax of this model, per scored position) are filled, on the device. */
harp_status harp_eval_ppl_ids_gpu(harp_model *m, const int32_t *ids, size_t n_ids, const harp_ppl_params *p,
                                  const harp_gpu_ppl_params *gp, harp_ppl_result *out);
harp_status harp_eval_ppl_gpu(harp_model *m, const char *text, size_t len, const harp_ppl_params *p,
                              const harp_gpu_ppl_params *gp, harp_ppl_result *out);

#ifdef __cplusplus
}
#endif
#endif
