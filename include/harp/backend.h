/* Compute backends and contexts created on them.
 *
 * A backend runs the ops of the forward pass (src/model/forward.c) in its own memory: the CPU
 * backend (one shared instance, the reference: same kernels and bits as always) and the CUDA
 * backend (one per device: quantized groups packed as stored and decoded by its kernels, fp16
 * checkpoints as fp16, other fp32 groups through cuBLAS in strict fp32). A model's weights are loaded
 * onto a backend once, the first time a context on that backend is created, and stay there until the
 * model is freed (the token embeddings stay in host memory); contexts (KV cache + scratch) are per
 * sequence batch.
 *
 * Lifetime: a backend created with harp_backend_cuda_create is reference counted: the models whose
 * weights live on it and the contexts created on it keep it alive, so harp_backend_free may be
 * called as soon as the caller no longer needs the handle itself. */
#ifndef HARP_BACKEND_H
#define HARP_BACKEND_H
#include "common.h"
#include "model.h"
#include "qtype.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct harp_backend harp_backend;

/* The shared CPU backend (never NULL; harp_backend_free on it does nothing). */
harp_backend *harp_backend_cpu(void);
/* CUDA backend on device `device` (0 = first). HARP_ERR_NO_DEVICE in builds without CUDA or when
 * the device is absent; HARP_ERR_INVALID_ARG for a device index out of range. */
harp_status harp_backend_cuda_create(int device, harp_backend **out);
void harp_backend_free(harp_backend *b);
const char *harp_backend_name(const harp_backend *b);   /* "cpu", "cuda:0", ... */

/* A context (KV cache + scratch) on a backend.
 *   max_tokens  positions a sequence may reach (KV-cache length of harp_ctx_eval); ≤ the model's
 *               max_position_embeddings. Default 512.
 *   max_rows    rows one forward call may hold (harp_ctx_eval's sub-batch, harp_ctx_max_rows of
 *               harp_ctx_eval_seqs); 0 = min(max_tokens, 512). The KV cache holds
 *               max(max_tokens, max_rows) rows per layer.
 *   backend     NULL = the CPU backend.
 *   kv_qtype    element type of the KV cache of a model without KV quantizers: HARP_KV_DEFAULT
 *               (the default: the backend's choice, F32 on the CPU, F16 on CUDA -- F32 there when
 *               the environment sets HARP_CUDA_KV_F16=0), HARP_QTYPE_F32 or HARP_QTYPE_F16 (both backends: values
 *               rounded to nearest even on store); a W/A/KV model's own KV quantizers decide its
 *               cache type (quantized storage). */
#define HARP_KV_DEFAULT HARP_QTYPE_COUNT
typedef struct harp_ctx_params {
    int max_tokens;
    int max_rows;
    harp_backend *backend;
    harp_qtype kv_qtype;
} harp_ctx_params;

harp_ctx_params harp_ctx_default_params(void);
/* harp_ctx_create(m, n, out) is harp_ctx_create_ex with max_tokens = n and the other defaults. */
harp_status harp_ctx_create_ex(harp_model *m, const harp_ctx_params *p, harp_ctx **out);
harp_backend *harp_ctx_backend(const harp_ctx *c);

/* The backend memory behind a context, in bytes: its model's weights there (shared by every context
 * of that model on that backend; 0 on the CPU backend, where they are the model's own arrays: the
 * packed groups as stored, the head, norms -- never a dense copy of a quantized group, and no copy of
 * the token embeddings, which stay in host memory), this context's K / V cache, and its workspace as
 * it stands now (activations, logits, the backend's scratch as grown by the calls so far). */
typedef struct harp_ctx_memory {
    size_t weights, kv_cache, workspace;
} harp_ctx_memory;
harp_status harp_ctx_memory_get(const harp_ctx *c, harp_ctx_memory *out);
/* harp_generate (harp/model.h) on a context of parameters p (NULL = harp_ctx_default_params(): the
 * CPU backend; p->max_tokens is replaced by n_prompt + n_new): the prompt in one pass, then one token
 * per decode step through the context's KV cache. */
harp_status harp_generate_ex(harp_model *m, const harp_ctx_params *p, const int32_t *prompt, int n_prompt, int n_new,
                             const harp_sampler_params *sp, int32_t *out_ids, int *n_out, harp_token_fn on_token,
                             void *user);
/* The same on an existing context: the prompt goes in at its position (harp_ctx_pos; a second call
 * continues the same sequence), and prompt + n_new must fit what it still holds. The caller keeps the
 * context, e.g. to read harp_ctx_memory_get afterwards. */
harp_status harp_generate_ctx(harp_ctx *c, const int32_t *prompt, int n_prompt, int n_new, const harp_sampler_params *sp,
                              int32_t *out_ids, int *n_out, harp_token_fn on_token, void *user);

#ifdef __cplusplus
}
#endif
#endif
