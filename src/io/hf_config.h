/* Model hyper-parameters, filled from a Hugging Face config.json or a llama2.c header. */
#ifndef HARP_IO_HF_CONFIG_H
#define HARP_IO_HF_CONFIG_H
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "harp/model.h"

/* Largest sizes a config may declare (both loaders): far above any released Llama-family model,
 * low enough that size products stay well inside 64 bits. */
#define HARP_CFG_MAX_DIM (1 << 20)
#define HARP_CFG_MAX_HIDDEN (1 << 22)
#define HARP_CFG_MAX_LAYERS 4096
#define HARP_CFG_MAX_HEADS 4096
#define HARP_CFG_MAX_HEAD_DIM 4096
#define HARP_CFG_MAX_VOCAB (1 << 24)
#define HARP_CFG_MAX_SEQ (1 << 24)

typedef enum harp_rope_scaling {
    HARP_ROPE_SCALING_NONE = 0,
    HARP_ROPE_SCALING_LINEAR = 1,  /* inv_freq / factor                                        */
    HARP_ROPE_SCALING_LLAMA3 = 2   /* Llama 3.1 band-wise scaling with smooth interpolation    */
} harp_rope_scaling;

typedef struct harp_model_config {
    char arch[48];
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, vocab_size, max_seq_len;
    float norm_eps;
    double rope_theta;
    harp_rope_layout rope_layout;
    harp_rope_scaling rope_scaling;
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_orig_max_pos;
    int tied;
    int qkv_bias;   /* q/k/v projections carry biases (Qwen2, Llama attention_bias) */
    int o_bias;     /* o_proj bias (Llama attention_bias only)                        */
    int mlp_bias;   /* gate/up/down biases (Llama mlp_bias)                           */
    int sliding_window;  /* 0 = none; else a query attends to keys with q - k < window */
    int bos_id, eos_id;
} harp_model_config;

/* Parses config.json text (len bytes, need not be NUL-terminated) and validates it: the
 * architecture must be Llama/Mistral/Qwen2, every size positive and consistent. name is used in
 * messages. */
harp_status harp_hf_config_parse(const char *json, size_t len, const char *name, harp_model_config *cfg);

/* Checks the sizes of a filled config (shared by both loaders). */
harp_status harp_config_validate(const harp_model_config *cfg, const char *name);

#endif
