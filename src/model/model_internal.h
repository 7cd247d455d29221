/* Internal model layout shared by the loaders, the forward pass and (later) quantized formats. */
#ifndef HARP_MODEL_INTERNAL_H
#define HARP_MODEL_INTERNAL_H
#include "harp/model.h"
#include "harp/tokenizer.h"
#include "io/hf_config.h"
#include "model/linear.h"

typedef struct harp_layer {
    float *attn_norm;                 /* (dim)                                  */
    float *ffn_norm;                  /* (dim)                                  */
    harp_linear q, k, v, o;           /* (n_heads·hd, dim) (n_kv·hd, dim) ×2 (dim, n_heads·hd) */
    harp_linear gate, up, down;       /* (hidden, dim) (hidden, dim) (dim, hidden) */
} harp_layer;

struct harp_model {
    harp_model_config cfg;
    harp_model_info info;
    float *tok_emb;                   /* (vocab, dim)                           */
    float *final_norm;                /* (dim)                                  */
    harp_linear head;                 /* (vocab, dim); w == tok_emb when tied   */
    harp_layer *layers;               /* (n_layers)                             */
    float *rope_inv_freq;             /* (head_dim/2), scaling applied          */
    harp_tokenizer *tok;
    char quant_desc[160];             /* "" unless a harp quantized folder (qmodel) */
};

/* Allocates the model shell with zeroed layers for cfg (takes a copy). */
harp_status harp_model_alloc(const harp_model_config *cfg, harp_model **out);
/* Computes rope_inv_freq from cfg (theta, scaling) the way transformers does (float32). */
harp_status harp_model_init_rope(harp_model *m);
/* Fills the n_params / shape parts of m->info from cfg and the layers. */
void harp_model_fill_info(harp_model *m, const char *source_format, const char *dtype);

harp_status harp_load_hf(const char *dir, harp_model **out);
harp_status harp_load_llama2c(const char *path, harp_model **out);

/* float buffer of n floats, or NULL after logging an OOM naming what. */
float *harp_model_falloc(size_t n, const char *what);

#endif
