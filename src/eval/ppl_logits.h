/* Saved-logits file (docs/format/logits.md): header tying the rows to a token stream and ctx,
 * then one row per scored position: f32 log-sum-exp, i32 argmax, vocab × fp16 (logit − max). */
#ifndef HARP_EVAL_PPL_LOGITS_H
#define HARP_EVAL_PPL_LOGITS_H
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define HARP_LOGITS_MAGIC "HARPLGT1"
#define HARP_LOGITS_VERSION 1u
#define HARP_LOGITS_HEADER_BYTES 80u

typedef struct harp_logits_header {
    uint32_t vocab, ctx, n_chunks;
    uint64_t n_tokens;        /* length of the whole tokenized stream (BOS included) */
    uint8_t ids_sha256[32];   /* sha256 of that stream as little-endian int32          */
} harp_logits_header;

static inline size_t harp_logits_row_bytes(uint32_t vocab) {
    return 8 + (size_t)vocab * 2;
}

/* Encodes one row of logits (vocab floats) into dst (harp_logits_row_bytes). */
void harp_logits_encode_row(const float *logits, uint32_t vocab, uint8_t *dst);
void harp_logits_write_header(const harp_logits_header *h, uint8_t out[HARP_LOGITS_HEADER_BYTES]);
/* Parses and validates a header against the file size; name is for messages. */
harp_status harp_logits_read_header(const uint8_t *buf, size_t size, const char *name, harp_logits_header *h);

/* KL(base || this) of one position in nats, base given as an encoded row; sets *base_top. */
double harp_logits_kld_row(const uint8_t *base_row, uint32_t vocab, const float *logits, int *base_top);

#endif
