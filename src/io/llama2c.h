/* llama2.c legacy checkpoint (.bin, version 0): 7 little-endian int32 (dim, hidden_dim, n_layers,
 * n_heads, n_kv_heads, vocab_size, seq_len), then fp32 tensors in this order: token embedding,
 * attention RMS weights, wq, wk, wv, wo, FFN RMS weights, w1 (gate), w2 (down), w3 (up), final RMS
 * weight, the unused freq_cis_real/imag tables (seq_len × head_size/2 each), and — only when
 * vocab_size is negative in the header — a separate classifier (vocab × dim). */
#ifndef HARP_IO_LLAMA2C_H
#define HARP_IO_LLAMA2C_H
#include <stddef.h>
#include <stdint.h>

#include "io/hf_config.h"

typedef struct harp_l2c_layout {
    uint64_t emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq, wcls; /* float offsets */
    uint64_t total_floats;   /* after the header */
} harp_l2c_layout;

#define HARP_L2C_HEADER_BYTES 28

/* Parses the header and checks that size (the whole file's byte count) matches the layout exactly.
 * Fills cfg (interleaved RoPE, theta 1e4, eps 1e-5, bos 1, eos 2) and the tensor offsets. */
harp_status harp_l2c_parse(const uint8_t *buf, size_t size, const char *name, harp_model_config *cfg,
                           harp_l2c_layout *lay);

#endif
