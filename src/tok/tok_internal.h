/* Internals of the tokenizer module: the shared vocabulary tables, the hash maps over them, the
 * heap-driven BPE merge engine and the per-format loaders/encoders. Not part of the public API. */
#ifndef HARP_TOK_INTERNAL_H
#define HARP_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "harp/tokenizer.h"

/* SentencePiece piece types (sentencepiece_model.proto numbering). */
enum { TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_USER = 4, TOK_UNUSED = 5, TOK_BYTE = 6 };

/* piece string -> id, open addressing over the tokenizer's piece table. */
typedef struct tok_strmap {
    int32_t *slot;   /* id or -1 */
    uint32_t mask;
} tok_strmap;

/* (left id, right id) -> (rank, merged id) for tokenizer.json merges. */
typedef struct tok_pairmap {
    uint64_t *key;   /* (a << 32 | b) + 1; 0 = empty */
    int32_t *rank;
    int32_t *merged;
    uint32_t mask;
} tok_pairmap;

typedef struct tok_added {
    char *content;
    size_t len;
    int32_t id;
    uint8_t lstrip, rstrip, special;
} tok_added;

/* How a tokenizer.json pre-processes a text segment before BPE. */
enum { TOK_PRE_NONE = 0, TOK_PRE_METASPACE = 1, TOK_PRE_BYTELEVEL = 2 };

struct harp_tokenizer {
    harp_tok_kind kind;
    char *name;          /* file name for messages */
    int32_t n_vocab;
    char **piece;        /* n_vocab strings (NUL-terminated; "" for holes) */
    uint32_t *piece_len;
    float *score;
    uint8_t *type;       /* TOK_* */
    tok_strmap map;      /* every piece -> id */
    int32_t unk_id, bos_id, eos_id;
    int32_t byte_id[256];  /* <0xXX> piece of each byte, -1 when absent */
    int byte_fallback;

    /* SentencePiece normalizer / trainer settings */
    int add_dummy_prefix, remove_extra_ws, escape_ws, ws_suffix;
    int has_user;        /* user-defined pieces present (matched before BPE, frozen) */
    int segmentable;     /* no piece holds a non-'▁' char followed by '▁': words merge independently */
    int max_piece_len;

    /* tokenizer.json */
    tok_pairmap merges;
    tok_added *added;
    int n_added;
    int pre;             /* TOK_PRE_* */
    int prepend;         /* Prepend("▁") normalizer, or Metaspace prepend scheme: 1 always, 2 first */
    int replace_space;   /* Replace(" " -> "▁") normalizer / Metaspace replacement */
    int meta_split;      /* Metaspace split=true: split before each '▁' */
    int bl_prefix_space; /* ByteLevel add_prefix_space */
    int strip_lead;      /* decoder removes one leading space */
    void *re;            /* pcre2_code* for the Split / ByteLevel regex, NULL when none */
    int ignore_merges;
    int fuse_unk;
};

/* ---- tables (tok_core.c) ---- */
harp_status tok_alloc_vocab(harp_tokenizer *t, int32_t n);
harp_status tok_set_piece(harp_tokenizer *t, int32_t id, const char *s, size_t n);
harp_status tok_build_map(harp_tokenizer *t);
int32_t tok_lookup(const harp_tokenizer *t, const char *s, size_t n);
harp_status tok_pairmap_init(tok_pairmap *m, size_t n);
int tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged);
int tok_pairmap_get(const tok_pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *merged);
void tok_find_byte_pieces(harp_tokenizer *t);

/* ---- growable id output ---- */
typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
} tok_ids;
harp_status tok_ids_push(tok_ids *o, int32_t id);

/* ---- growable byte buffer ---- */
typedef struct tok_buf {
    char *v;
    size_t n, cap;
} tok_buf;
harp_status tok_buf_put(tok_buf *b, const void *p, size_t n);

/* ---- BPE merge engine (tok_bpe.c) ---- */
typedef struct tok_sym {
    int32_t start, len;  /* span in the text being encoded */
    int32_t id;          /* current id, -1 when not (yet) a vocabulary piece */
    int32_t prev, next;
    int32_t frozen;
} tok_sym;

typedef struct tok_pair {
    double score;        /* higher merges first; ties go to the leftmost pair */
    int32_t left, right, size, merged;
} tok_pair;

typedef struct tok_work {
    tok_sym *sym;
    size_t n_sym, cap_sym;
    tok_pair *heap;
    size_t n_heap, cap_heap;
    char *scratch;
    size_t cap_scratch;
    const char *text;
} tok_work;

/* Returns 1 and fills score/merged when symbols a and b may merge. */
typedef int (*tok_pair_fn)(const harp_tokenizer *t, tok_work *w, const tok_sym *a, const tok_sym *b,
                           double *score, int32_t *merged);

harp_status tok_work_syms(tok_work *w, size_t n);
harp_status tok_bpe_merge(const harp_tokenizer *t, tok_work *w, tok_pair_fn fn);
void tok_work_free(tok_work *w);
int tok_utf8_len(unsigned char c);  /* 1..4 from a lead byte; 1 for invalid lead bytes */

/* ---- formats ---- */
harp_status tok_spm_load(harp_tokenizer *t, const uint8_t *d, size_t n);
harp_status tok_spm_encode(const harp_tokenizer *t, const char *text, size_t len, tok_ids *out);
harp_status tok_llama2c_load(harp_tokenizer *t, const uint8_t *d, size_t n, int vocab_hint);
harp_status tok_llama2c_encode(const harp_tokenizer *t, const char *text, size_t len, tok_ids *out);
harp_status tok_json_load(harp_tokenizer *t, const char *d, size_t n);
harp_status tok_json_encode(const harp_tokenizer *t, const char *text, size_t len, tok_ids *out);

void tok_json_free_regex(void *re);
/* GPT-2 byte-level map: the byte a code point stands for, -1 when none; and the reverse. */
int tok_bytelevel_byte(uint32_t cp);

/* tok*.bin in dir (lexicographically first), malloc'd path in *best or NULL. */
harp_status tok_find_tokbin(const char *dir, char **best);

/* From-memory entry point (fuzzers, tests): name is used in messages and for the kind guess. */
harp_status harp_tokenizer_open_mem(const void *data, size_t n, const char *name, int vocab_hint,
                                    harp_tokenizer **out);

#endif
