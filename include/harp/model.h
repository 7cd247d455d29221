/* Model runtime: load Llama-family checkpoints (Hugging Face folder with config.json and
 * safetensors, llama2.c .bin, and harp's quantized folders), evaluate tokens with a KV cache.
 * Owned by the model module (src/model/, src/io/). */
#ifndef HARP_MODEL_H
#define HARP_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "common.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct harp_model harp_model;
typedef struct harp_tokenizer harp_tokenizer;

typedef enum harp_rope_layout {
    HARP_ROPE_HALF = 0,        /* HF rotate_half: dims i and i + head_dim/2 form a pair */
    HARP_ROPE_INTERLEAVED = 1  /* llama2.c / Meta: dims 2i and 2i+1 form a pair          */
} harp_rope_layout;

typedef struct harp_model_params {
    const char *tokenizer_path;  /* override; NULL = look next to the model */
    int load_tokenizer;          /* 1 (default): fail if no tokenizer is found; 0: skip */
} harp_model_params;

harp_model_params harp_model_default_params(void);

/* path: a Hugging Face folder (config.json + model.safetensors[.index.json]), a llama2.c .bin
 * (tokenizer.bin or tok*.bin looked up beside it), or a harp quantized folder. */
harp_status harp_model_open(const char *path, const harp_model_params *params, harp_model **out);
void harp_model_free(harp_model *m);

typedef struct harp_model_info {
    char arch[48];           /* "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "llama2.c" */
    char source_format[32];  /* "hf-safetensors", "llama2c-bin", "harp-quantized" */
    char weight_dtype[16];   /* dtype as stored: "F32", "F16", "BF16", "mixed" */
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, vocab_size, max_seq_len;
    float norm_eps, rope_theta;
    harp_rope_layout rope_layout;
    int tied_embeddings;
    int qkv_bias;            /* Qwen2-style q/k/v biases present */
    int bos_id, eos_id;
    int64_t n_params;        /* total parameters, embeddings included, tied head counted once */
    char tokenizer_kind[32]; /* "" when no tokenizer is loaded */
    char quant_method[32];   /* "" for full-precision models, "harp" for a harp quantized folder */
    /* Harp quantized folders ("" / 0 otherwise): quantizer, rotation, nominal bits, and the stored
     * bits per weight of the decoder linears (every stored byte: codes, scales, signs, rotation
     * state; embeddings, head and norms are not counted). */
    char quant_algo[16];     /* "rtn", "gptq", "quip" */
    char quant_rotation[16]; /* "none", "rht", "kron", "random", "gsr", "harp" */
    int quant_bits;
    double quant_bpw;
} harp_model_info;

harp_status harp_model_get_info(const harp_model *m, harp_model_info *out);

/* 64-bit fingerprint of the weights as loaded (shapes + every weight value), so files derived from
 * a model (Hessians, saved logits) can be checked against it. */
uint64_t harp_model_fingerprint(const harp_model *m);
const harp_tokenizer *harp_model_tokenizer(const harp_model *m);  /* NULL when none */

/* ---------------------------------------------------------------------------------------------
 * Evaluation context: KV cache + scratch for one sequence of up to max_tokens positions, on the CPU
 * backend (include/harp/backend.h: harp_ctx_create_ex for other backends and batch sizes). */
typedef struct harp_ctx harp_ctx;

harp_status harp_ctx_create(harp_model *m, int max_tokens, harp_ctx **out);
void harp_ctx_free(harp_ctx *c);
int harp_ctx_pos(const harp_ctx *c);        /* tokens held in the cache */
void harp_ctx_truncate(harp_ctx *c, int pos); /* keep the first pos cached tokens (0 = reset) */

/* Feeds n tokens at positions pos..pos+n-1 (in sub-batches of harp_ctx_max_rows rows; one row is
 * the decode path), appending to the cache.
 * logits: NULL, or n*vocab floats (all_logits = 1) or vocab floats for the last token (0). */
harp_status harp_ctx_eval(harp_ctx *c, const int32_t *tokens, int n, float *logits, int all_logits);

/* Multi-sequence batch: several independent sequences evaluated in one pass, so that short
 * sequences (zero-shot requests) share the big matrix products that one long window gets.
 * Sequence s holds seqs[s].n consecutive rows of `tokens` (sequences in order, rows counted from
 * 0). parent = -1 starts it at position 0; parent = p (< s) makes it a continuation of sequence p:
 * its positions follow p's last position and its rows attend to all rows of p (and p's own
 * ancestors) and causally to its own rows -- a tree of prefixes, e.g. a question's context once
 * and each answer as a child. Rows of other sequences are never seen. logits gets, for each of
 * the n_logit_rows batch rows listed in logit_rows (any order, repeats allowed), vocab floats.
 * The total row count must be <= harp_ctx_max_rows(c). The context's cache is used as scratch and
 * left empty (harp_ctx_pos = 0). The activation hook, if set, sees the batch rows. Sequences with
 * a parent need a backend that supports prefix trees (the CPU; CUDA returns HARP_ERR_UNSUPPORTED). */
typedef struct harp_seq {
    int n;
    int parent;
} harp_seq;

int harp_ctx_max_rows(const harp_ctx *c);
harp_status harp_ctx_eval_seqs(harp_ctx *c, const int32_t *tokens, const harp_seq *seqs, int n_seqs,
                               const int32_t *logit_rows, int n_logit_rows, float *logits);

/* Activation hook (calibration): called during harp_ctx_eval with the input rows of the linear
 * layers of each decoder layer, before they are multiplied: which = 0 qkv (attention-norm output),
 * 1 o (attention context), 2 up (post-attention-norm output, shared by gate/up), 3 down
 * (silu(gate)*up); in a W/A/KV model the input as the weights see it (after an online rotation such
 * as R4, before activation quantization). x is rows × n, row-major, in host memory: a context on a backend that does not
 * compute in host memory (CUDA) refuses a hook (HARP_ERR_UNSUPPORTED). fn = NULL removes it. */
typedef void (*harp_act_hook)(void *user, int layer, int which, const float *x, int rows, int n);
harp_status harp_ctx_set_hook(harp_ctx *c, harp_act_hook fn, void *user);

/* ---------------------------------------------------------------------------------------------
 * Sampling. */
typedef struct harp_sampler_params {
    float temperature;  /* 0 = greedy (argmax, lowest id on ties) */
    float top_p;        /* 1 = off */
    uint64_t seed;
} harp_sampler_params;

harp_sampler_params harp_sampler_default_params(void);

/* Generates up to n_new tokens after the prompt (stops early at EOS). out_ids gets the new ids.
 * on_token (may be NULL) is called after each token; returning non-zero stops. */
typedef int (*harp_token_fn)(void *user, int32_t id);
harp_status harp_generate(harp_model *m, const int32_t *prompt, int n_prompt, int n_new,
                  const harp_sampler_params *sp, int32_t *out_ids, int *n_out,
                  harp_token_fn on_token, void *user);

#ifdef __cplusplus
}
#endif
#endif
