/* Tokenizers: SentencePiece tokenizer.model, Hugging Face tokenizer.json (BPE: metaspace + byte
 * fallback, and byte-level with the GPT-2 / Llama-3 / Qwen2 pre-tokenizer), llama2.c tokenizer.bin.
 * Owned by the tokenizer module (src/tok/). */
#ifndef HARP_TOKENIZER_H
#define HARP_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>
#include "common.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct harp_tokenizer harp_tokenizer;

typedef enum harp_tok_kind {
    HARP_TOK_SPM = 0,        /* SentencePiece tokenizer.model (protobuf)                */
    HARP_TOK_HF_BPE = 1,     /* tokenizer.json, metaspace + byte fallback (Llama-2 style) */
    HARP_TOK_HF_BYTELEVEL = 2, /* tokenizer.json, byte-level BPE (GPT-2/Llama-3/Qwen2)   */
    HARP_TOK_LLAMA2C = 3     /* llama2.c tokenizer.bin                                  */
} harp_tok_kind;

/* Opens tokenizer.model, tokenizer.json or tokenizer.bin; the kind is detected from the content.
 * vocab_hint: the model's vocab size, needed for llama2.c .bin files (0 when unknown: then the
 * size is inferred from the file). */
harp_status harp_tokenizer_open(const char *path, int vocab_hint, harp_tokenizer **out);

/* Finds and opens the tokenizer that belongs to a model path: for a Hugging Face folder
 * tokenizer.model (preferred), else tokenizer.json, else tokenizer.bin; for a llama2.c checkpoint
 * file, tokenizer.bin beside it, else the first tok*.bin there (e.g. tok512.bin). */
harp_status harp_tokenizer_open_for_model(const char *model_path, int vocab_hint,
                                          harp_tokenizer **out);
/* The tokenizer file of a llama2.c checkpoint file: tokenizer.bin beside it, else the first tok*.bin
 * there by name; *path (malloc'd) is NULL when there is neither. */
harp_status harp_tokenizer_find_beside(const char *model_path, char **path);
void harp_tokenizer_free(harp_tokenizer *t);

harp_tok_kind harp_tokenizer_kind(const harp_tokenizer *t);
const char *harp_tokenizer_kind_name(harp_tok_kind k);  /* "sentencepiece", "hf-bpe",
                                                           "hf-byte-level-bpe", "llama2c" */
int harp_tokenizer_vocab_size(const harp_tokenizer *t);
int32_t harp_tokenizer_bos(const harp_tokenizer *t);   /* -1 when the vocabulary has none */
int32_t harp_tokenizer_eos(const harp_tokenizer *t);

/* Encodes UTF-8 text (len bytes, NULs allowed) to ids. add_bos prepends BOS. *ids is malloc'd
 * (free with harp_free). Empty text gives zero ids (plus BOS when asked). The handle is read-only
 * after open: concurrent calls on one handle are safe. tokenizer.json pipelines refuse invalid
 * UTF-8; SentencePiece maps each invalid byte to U+FFFD as sentencepiece does. */
harp_status harp_tokenize(const harp_tokenizer *t, const char *text, size_t len, int add_bos,
                  int32_t **ids, size_t *n_ids);

/* Decodes ids back to UTF-8 bytes (BOS/EOS and other control tokens produce no text; the leading
 * dummy-prefix space is removed as SentencePiece does). *text is malloc'd and NUL-terminated. */
harp_status harp_detokenize(const harp_tokenizer *t, const int32_t *ids, size_t n_ids, char **text,
                    size_t *len);

/* Incremental decoding, for printing text as it is generated: push ids one at a time and write
 * out what each call returns. The concatenation of every returned span (and the final flush) is
 * byte for byte harp_detokenize of all pushed ids: the same spacing rules (SentencePiece '▁', the
 * one leading space dropped at the start of the text, llama2.c pieces with their own spaces), and
 * a UTF-8 character split over several byte tokens is held back until it is complete. To continue
 * a prompt, push the prompt's ids first and ignore their text. *text points into the decoder
 * (not NUL-terminated) and stays valid until the next call on it. */
typedef struct harp_detok harp_detok;
harp_status harp_detok_create(const harp_tokenizer *t, harp_detok **out);
harp_status harp_detok_push(harp_detok *d, int32_t id, const char **text, size_t *len);
/* Returns the bytes still held back (an incomplete UTF-8 sequence at the end of the text). */
harp_status harp_detok_flush(harp_detok *d, const char **text, size_t *len);
void harp_detok_free(harp_detok *d);

/* The stored piece string of one id (e.g. "▁the", "<0x0A>"), or NULL when out of range. */
const char *harp_tokenizer_piece(const harp_tokenizer *t, int32_t id);

#ifdef __cplusplus
}
#endif
#endif
