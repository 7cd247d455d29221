/* Internals of src/model: the loaders' helpers, a model's weights on a backend, the context. */
#ifndef HARP_MODEL_INTERNAL_H
#define HARP_MODEL_INTERNAL_H
#include "model/backend.h"
#include "model/model.h"

/* Allocates the model shell with zeroed layers for cfg (takes a copy). */
harp_status harp_model_alloc(const harp_model_config *cfg, harp_model **out);
/* Computes rope_inv_freq from cfg (theta, scaling) the way transformers does (float32). */
harp_status harp_model_init_rope(harp_model *m);
/* Fills the n_params / shape parts of m->info from cfg and the layers. */
void harp_model_fill_info(harp_model *m, const char *source_format, const char *dtype);

harp_status harp_load_hf(const char *dir, harp_model **out);
harp_status harp_load_llama2c(const char *path, harp_model **out);

/* A model's weights on one backend: backend pointers (the model's own arrays on a host backend)
 * and one handle per linear group. Built once per (model, backend), freed with the model. */
typedef struct harp_mweights {
    struct harp_mweights *next;
    harp_backend *b;                  /* holds a reference */
    int owned;                        /* the float arrays below are backend allocations */
    float *final_norm, *inv_freq;     /* the token embeddings stay in host memory: forward.c gathers rows */
    float **attn_norm, **ffn_norm;    /* (n_layers) */
    void **groups;                    /* (n_layers · HARP_LG_COUNT) */
    void *head;
    uint64_t serial;                  /* unique per load: a backend's graphs of these weights say so */
} harp_mweights;

/* m's weights on b, loading them the first time (thread-safe). */
harp_status harp_model_weights(harp_model *m, harp_backend *b, const harp_mweights **out);
/* Backend memory w holds (its groups as loaded; 0 on a host backend). */
size_t harp_mweights_held(const harp_model *m, const harp_mweights *w);
/* Frees every backend copy (harp_model_free and harp_model_unload). */
void harp_model_weights_free_all(harp_model *m);

struct harp_ctx {
    harp_model *m;
    harp_backend *b;                  /* holds a reference */
    const harp_mweights *w;
    harp_dims d;
    int pos;                          /* tokens in the cache (one sequence) */
    harp_kv_cache kv;
    harp_ws *ws;
    float *emb_rows;                  /* (max_rows, dim) host staging of a step's embedding rows (non-host backends) */
    int emb_pending;                  /* an upload from emb_rows may still be in flight (host_alloc memory) */
    float *x, *xb, *q, *k, *v, *att, *g, *u;   /* activations on the backend      */
    float *qkv1;                      /* one row's q | k | v unsplit (backends with linear_ex) */
    float *logits;                    /* (max_rows, vocab) on non-host backends   */
    int windows_rows;                 /* rows of the last harp_ctx_eval_windows   */
    harp_span *spans;                 /* plan scratch */
    int span_cap;
    harp_act_hook hook;
    void *hook_user;
};

#endif
