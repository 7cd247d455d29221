/* Module API of src/model for the modules right of it (calib, qmodel, eval) and the tests: the
 * in-memory model (its layout is what the folder writer and the quantize pipeline read), the
 * per-backend weights, and the forward-pass entry points the GPU perplexity driver uses. The
 * loaders' helpers and the context layout stay in model_internal.h. */
#ifndef HARP_MODEL_MODEL_H
#define HARP_MODEL_MODEL_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "harp/backend.h"
#include "harp/model.h"
#include "harp/tokenizer.h"
#include "io/hf_config.h"
#include "model/layer.h"

typedef struct harp_layer {
    float *attn_norm;                 /* (dim)                                  */
    float *ffn_norm;                  /* (dim)                                  */
    harp_layer_cfg cfg;               /* the linear groups (holding the weights) + slots (model/layer.h):
                                         q|k|v (n_heads·hd + 2·n_kv·hd, dim), o (dim, n_heads·hd),
                                         up|gate (2·hidden, dim), down (dim, hidden) */
} harp_layer;

struct harp_mweights;                 /* a model's weights on one backend (model/weights.c) */

struct harp_model {
    harp_model_config cfg;
    harp_model_info info;
    float *tok_emb;                   /* (vocab, dim)                           */
    float *final_norm;                /* (dim)                                  */
    harp_lgroup head_g;               /* the head, a 1-slice group (vocab, dim); its weight is
                                         tok_emb (borrowed) when tied            */
    harp_layer *layers;               /* (n_layers)                             */
    float *rope_inv_freq;             /* (head_dim/2), scaling applied          */
    harp_tokenizer *tok;
    char quant_desc[160];             /* "" unless a harp quantized folder (qmodel) */
    struct harp_mweights *on_backends;  /* weights loaded onto non-host backends, cached */
    struct harp_mslots *slots;        /* W/A/KV execution slots (model/slots.h); NULL = none */
    pthread_mutex_t backends_mu;
};

/* float buffer of n floats, or NULL after logging an OOM naming what. */
float *harp_model_falloc(size_t n, const char *what);

/* Linear `lin` (HARP_LIN_*) of layer l: its group, and its slice there in *slice. */
harp_lgroup *harp_model_lin(harp_model *m, int l, int lin, int *slice);
const harp_lgroup *harp_model_lin_c(const harp_model *m, int l, int lin, int *slice);

struct qf_config;
struct qf_tensors;
/* The quantized groups of a harp folder's tensors (validated by qformat's loader) become the
 * weights of the decoder groups (biases kept; backend copies dropped first), and m's quant
 * description and info follow qc. The model's loader for a harp folder and the quantize
 * pipeline's keep_model. A folder that fails validation changes nothing; running out of memory
 * half-way may leave some groups quantized (the model is then only fit for harp_model_free). */
harp_status harp_model_set_quantized(harp_model *m, const struct qf_config *qc, const struct qf_tensors *l);

/* A model shape with SYNTHETIC weights (src/model/synth.c): seeded random planes of one quant type in
 * every decoder group, with RHT or random-θ HARP butterflies on both sides, random fp32 embeddings
 * (tied head), unit norms; HARP_QTYPE_F32 gives dense fp32 groups. For benchmarks of shapes no
 * checkpoint here has (`harp bench decode` without --gpu): speeds, never quality. */
enum { HARP_SYNTH_ROT_NONE = 0, HARP_SYNTH_ROT_RHT = 1, HARP_SYNTH_ROT_HARP = 2 };
typedef struct harp_synth_params {
    int dim, hidden, n_layers, n_heads, n_kv_heads, vocab, max_seq_len;
    harp_qtype qtype;    /* scalar types get groups of 128 */
    int rotation;        /* HARP_SYNTH_ROT_*; NONE for F32 */
    uint64_t seed;
} harp_synth_params;
harp_synth_params harp_synth_default_params(void);   /* the Llama-2-7B shape, 2 layers, E8P2 with RHT */
harp_status harp_model_synthetic(const harp_synth_params *p, harp_model **out);

/* Drops the copies of m's weights held on backends (they are rebuilt on next use). Call it after
 * changing any weight in place; the CPU backend uses the model's arrays directly and needs nothing. */
void harp_model_unload(harp_model *m);

/* Bytes that loading m onto b would take there (0 when already loaded, or on the CPU). */
size_t harp_model_backend_bytes(harp_model *m, harp_backend *b);
/* Bytes m's weights take on b, loaded or not (0 on the CPU). */
size_t harp_model_weights_bytes(const harp_model *m, harp_backend *b);
/* Backend bytes of a context with these parameters (cache, activations, workspace). */
size_t harp_ctx_bytes(const harp_model *m, const harp_ctx_params *p);
/* Free memory on b (device memory for a GPU). */
harp_status harp_backend_free_memory(harp_backend *b, size_t *bytes);

/* n_windows independent windows of len tokens each (tokens: n_windows·len host ids), positions
 * 0..len-1 each, through the forward pass; the logits of every row stay on the context's backend
 * for harp_ctx_score. n_windows·len ≤ max rows, len ≤ max tokens. Leaves the cache empty. */
harp_status harp_ctx_eval_windows(harp_ctx *c, const int32_t *tokens, int n_windows, int len);
/* Scores rows of the last harp_ctx_eval_windows of c: for j < n, logits row rows[j] against
 * token targets[j] (NLL), and, with ref (a context on the same backend whose last windows were the
 * same tokens), KL(P_ref || P) and top-1 agreement. Host arrays; see harp_backend_i.score. */
harp_status harp_ctx_score(harp_ctx *c, const harp_ctx *ref, const int32_t *rows, const int32_t *targets, int n,
                           double *nll, double *kld, int *agree);

#endif
