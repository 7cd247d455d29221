/* Tokenizer handle: vocabulary tables and hash maps, kind detection, the public encode/decode
 * entry points, and finding the tokenizer file that belongs to a model path. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tok/tok_internal.h"

/* ---- tables ------------------------------------------------------------------------------- */

harp_status tok_alloc_vocab(harp_tokenizer *t, int32_t n) {
    if (n <= 0 || n > (1 << 24))
        return harp_err(HARP_ERR_FORMAT, "%s: vocabulary size %d out of range", t->name, (int)n);
    t->n_vocab = n;
    t->piece = harp_xcalloc((size_t)n, sizeof *t->piece, "tokenizer pieces");
    t->piece_len = harp_xcalloc((size_t)n, sizeof *t->piece_len, "tokenizer pieces");
    t->score = harp_xcalloc((size_t)n, sizeof *t->score, "tokenizer scores");
    t->type = harp_xcalloc((size_t)n, sizeof *t->type, "tokenizer types");
    if (!t->piece || !t->piece_len || !t->score || !t->type) return HARP_ERR_OOM;
    for (int32_t i = 0; i < n; i++) t->type[i] = TOK_NORMAL;
    return HARP_OK;
}

harp_status tok_set_piece(harp_tokenizer *t, int32_t id, const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return harp_err(HARP_ERR_OOM, "%s: out of memory for a piece", t->name);
    if (n) memcpy(p, s, n);
    p[n] = 0;
    free(t->piece[id]);
    t->piece[id] = p;
    t->piece_len[id] = (uint32_t)n;
    if ((int)n > t->max_piece_len) t->max_piece_len = (int)n;
    return HARP_OK;
}

static uint32_t str_hash(const char *s, size_t n) {
    uint64_t h = harp_fnv1a64(s, n, 0);
    return (uint32_t)(h ^ (h >> 32));
}

/* Builds the piece -> id map. On duplicate pieces the lowest id wins, as SentencePiece refuses
 * duplicates and HF vocabularies cannot hold them; llama2.c's bsearch would pick either. */
harp_status tok_build_map(harp_tokenizer *t) {
    uint32_t cap = 16;
    while (cap < (uint32_t)t->n_vocab * 2u) cap <<= 1;
    t->map.slot = harp_xmalloc(cap * sizeof(int32_t), "tokenizer map");
    if (!t->map.slot) return HARP_ERR_OOM;
    for (uint32_t i = 0; i < cap; i++) t->map.slot[i] = -1;
    t->map.mask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!t->piece[id]) continue;
        uint32_t h = str_hash(t->piece[id], t->piece_len[id]) & t->map.mask;
        int dup = 0;
        while (t->map.slot[h] >= 0) {
            int32_t o = t->map.slot[h];
            if (t->piece_len[o] == t->piece_len[id] &&
                memcmp(t->piece[o], t->piece[id], t->piece_len[id]) == 0) {
                dup = 1;
                break;
            }
            h = (h + 1) & t->map.mask;
        }
        if (!dup) t->map.slot[h] = id;
    }
    return HARP_OK;
}

int32_t tok_lookup(const harp_tokenizer *t, const char *s, size_t n) {
    uint32_t h = str_hash(s, n) & t->map.mask;
    for (;;) {
        int32_t id = t->map.slot[h];
        if (id < 0) return -1;
        if (t->piece_len[id] == n && memcmp(t->piece[id], s, n) == 0) return id;
        h = (h + 1) & t->map.mask;
    }
}

harp_status tok_pairmap_init(tok_pairmap *m, size_t n) {
    uint32_t cap = 16;
    while (cap < n * 2 + 1) cap <<= 1;
    m->key = harp_xcalloc(cap, sizeof *m->key, "merge map");
    m->rank = harp_xmalloc(cap * sizeof *m->rank, "merge map");
    m->merged = harp_xmalloc(cap * sizeof *m->merged, "merge map");
    m->mask = cap - 1;
    return (m->key && m->rank && m->merged) ? HARP_OK : HARP_ERR_OOM;
}

static uint32_t pair_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (uint32_t)k;
}

/* Returns 0 when the pair was already present (the first, best-ranked entry is kept). */
int tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged) {
    uint64_t k = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    uint32_t h = pair_hash(k) & m->mask;
    while (m->key[h]) {
        if (m->key[h] == k) return 0;
        h = (h + 1) & m->mask;
    }
    m->key[h] = k;
    m->rank[h] = rank;
    m->merged[h] = merged;
    return 1;
}

int tok_pairmap_get(const tok_pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *merged) {
    if (!m->key) return 0;
    uint64_t k = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    uint32_t h = pair_hash(k) & m->mask;
    while (m->key[h]) {
        if (m->key[h] == k) {
            *rank = m->rank[h];
            *merged = m->merged[h];
            return 1;
        }
        h = (h + 1) & m->mask;
    }
    return 0;
}

void tok_find_byte_pieces(harp_tokenizer *t) {
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        char s[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
        t->byte_id[b] = tok_lookup(t, s, 6);
    }
}

/* ---- open / free -------------------------------------------------------------------------- */

void harp_tokenizer_free(harp_tokenizer *t) {
    if (!t) return;
    for (int32_t i = 0; i < t->n_vocab; i++) free(t->piece[i]);
    free(t->piece);
    free(t->piece_len);
    free(t->score);
    free(t->type);
    free(t->user_ids);
    free(t->map.slot);
    free(t->merges.key);
    free(t->merges.rank);
    free(t->merges.merged);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    if (t->re) tok_json_free_regex(t->re);
    free(t->name);
    free(t);
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static harp_tokenizer *tok_new(const char *name) {
    harp_tokenizer *t = harp_xcalloc(1, sizeof *t, "tokenizer");
    if (!t) return NULL;
    t->name = harp_strdup(name);
    if (!t->name) {
        free(t);
        return NULL;
    }
    t->unk_id = t->bos_id = t->eos_id = -1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    return t;
}

static harp_status load_as(harp_tokenizer *t, harp_tok_kind k, const uint8_t *d, size_t n, int vocab_hint) {
    t->kind = k;
    switch (k) {
    case HARP_TOK_SPM: return tok_spm_load(t, d, n);
    case HARP_TOK_LLAMA2C: return tok_llama2c_load(t, d, n, vocab_hint);
    default: return tok_json_load(t, (const char *)d, n);   /* refines the kind to byte-level */
    }
}

harp_status harp_tokenizer_open_mem(const void *data, size_t n, const char *name, int vocab_hint,
                                    harp_tokenizer **out) {
    *out = NULL;
    if (!name) name = "<memory>";
    const uint8_t *d = data;
    if (n == 0) return harp_err(HARP_ERR_FORMAT, "%s: empty file, not a tokenizer", name);
    size_t i = 0;
    while (i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r')) i++;
    /* The file name decides when it is one of the three conventional names; otherwise the
     * content does: JSON starts with '{', a ModelProto with tag 0x0A (field 1, pieces). */
    int guess = -1;
    if (i < n && d[i] == '{') guess = HARP_TOK_HF_BPE;
    else if (ends_with(name, ".json")) guess = HARP_TOK_HF_BPE;
    else if (ends_with(name, ".model")) guess = HARP_TOK_SPM;
    else if (ends_with(name, "tokenizer.bin") || ends_with(name, "tok.bin")) guess = HARP_TOK_LLAMA2C;
    harp_tok_kind order[2] = {HARP_TOK_SPM, HARP_TOK_LLAMA2C};
    int n_try = guess >= 0 ? 1 : 2;
    if (guess >= 0) order[0] = (harp_tok_kind)guess;
    else if (d[0] != 0x0A) order[0] = HARP_TOK_LLAMA2C, order[1] = HARP_TOK_SPM;
    harp_status st = HARP_OK;
    for (int k = 0; k < n_try; k++) {
        harp_tokenizer *t = tok_new(name);
        if (!t) return harp_err(HARP_ERR_OOM, "%s: out of memory", name);
        st = load_as(t, order[k], d, n, vocab_hint);
        if (st == HARP_OK) {
            *out = t;
            return HARP_OK;
        }
        harp_tokenizer_free(t);
    }
    if (n_try > 1)
        return harp_err(HARP_ERR_FORMAT, "%s: not a tokenizer.model, tokenizer.json or tokenizer.bin",
                        name);
    return st;
}

harp_status harp_tokenizer_open(const char *path, int vocab_hint, harp_tokenizer **out) {
    if (!out) return harp_err(HARP_ERR_INVALID_ARG, "harp_tokenizer_open: out is NULL");
    *out = NULL;
    if (!path) return harp_err(HARP_ERR_INVALID_ARG, "harp_tokenizer_open: path is NULL");
    if (harp_dir_exists(path))
        return harp_err(HARP_ERR_IO, "%s: is a directory, not a tokenizer file", path);
    harp_mapped m;
    HARP_TRY(harp_map_file(path, &m));
    harp_status st = harp_tokenizer_open_mem(m.data, m.size, path, vocab_hint, out);
    harp_unmap_file(&m);
    return st;
}

harp_status tok_find_tokbin(const char *dir, char **best) {
    *best = NULL;
    DIR *dp = opendir(dir);
    if (!dp) return harp_err(HARP_ERR_IO, "%s: cannot list the folder", dir);
    char *name = NULL;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 7 || strncmp(e->d_name, "tok", 3) != 0 || strcmp(e->d_name + l - 4, ".bin") != 0)
            continue;
        if (!name || strcmp(e->d_name, name) < 0) {
            free(name);
            name = harp_strdup(e->d_name);
        }
    }
    closedir(dp);
    if (name) {
        *best = harp_path_join(dir, name);
        free(name);
    }
    return HARP_OK;
}

/* Candidate tokenizer files for a model path, best first. */
harp_status harp_tokenizer_open_for_model(const char *model_path, int vocab_hint,
                                          harp_tokenizer **out) {
    if (!out) return harp_err(HARP_ERR_INVALID_ARG, "harp_tokenizer_open_for_model: out is NULL");
    *out = NULL;
    if (!model_path)
        return harp_err(HARP_ERR_INVALID_ARG, "harp_tokenizer_open_for_model: path is NULL");
    if (!harp_dir_exists(model_path) && !harp_file_exists(model_path))
        return harp_err(HARP_ERR_IO, "%s: no such file or folder", model_path);
    if (harp_dir_exists(model_path)) {
        static const char *names[] = {"tokenizer.model", "tokenizer.json", "tokenizer.bin"};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            char *p = harp_path_join(model_path, names[i]);
            if (!p) return HARP_ERR_OOM;
            if (harp_file_exists(p)) {
                harp_status st = harp_tokenizer_open(p, vocab_hint, out);
                free(p);
                return st;
            }
            free(p);
        }
        return harp_err(HARP_ERR_NOT_FOUND,
                        "%s: no tokenizer.model, tokenizer.json or tokenizer.bin in the folder",
                        model_path);
    }
    /* A file: llama2.c checkpoint. Its header's vocab_size (6th int32, negative when the
     * classifier is unshared) tells how many tokenizer.bin entries belong to the model. */
    if (vocab_hint <= 0) {
        FILE *f = fopen(model_path, "rb");
        int32_t hdr[7];
        if (f && fread(hdr, sizeof hdr, 1, f) == 1) {
            int32_t v = hdr[5] < 0 ? -hdr[5] : hdr[5];
            if (v > 0 && v <= (1 << 24)) vocab_hint = v;
        }
        if (f) fclose(f);
    }
    char *p = NULL;
    HARP_TRY(harp_tokenizer_find_beside(model_path, &p));
    if (!p) return harp_err(HARP_ERR_NOT_FOUND, "%s: no tokenizer.bin or tok*.bin beside the model file", model_path);
    harp_status st = harp_tokenizer_open(p, vocab_hint, out);
    free(p);
    return st;
}

harp_status harp_tokenizer_find_beside(const char *model_path, char **path) {
    *path = NULL;
    char *dir = harp_strdup(model_path);
    if (!dir) return HARP_ERR_OOM;
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = 0;
    else if (slash) *slash = 0;
    else strcpy(dir, ".");
    char *p = harp_path_join(dir, "tokenizer.bin");
    harp_status st = p ? HARP_OK : HARP_ERR_OOM;
    if (p && harp_file_exists(p)) *path = p;
    else {
        free(p);
        if (!st && tok_find_tokbin(dir, path)) *path = NULL;   /* an unlistable folder: none found */
    }
    free(dir);
    return st;
}

/* ---- queries ------------------------------------------------------------------------------ */

harp_tok_kind harp_tokenizer_kind(const harp_tokenizer *t) { return t->kind; }

const char *harp_tokenizer_kind_name(harp_tok_kind k) {
    switch (k) {
    case HARP_TOK_SPM: return "sentencepiece";
    case HARP_TOK_HF_BPE: return "hf-bpe";
    case HARP_TOK_HF_BYTELEVEL: return "hf-byte-level-bpe";
    case HARP_TOK_LLAMA2C: return "llama2c";
    }
    return "unknown";
}

int harp_tokenizer_vocab_size(const harp_tokenizer *t) { return t->n_vocab; }
int32_t harp_tokenizer_bos(const harp_tokenizer *t) { return t->bos_id; }
int32_t harp_tokenizer_eos(const harp_tokenizer *t) { return t->eos_id; }

const char *harp_tokenizer_piece(const harp_tokenizer *t, int32_t id) {
    if (!t || id < 0 || id >= t->n_vocab) return NULL;
    return t->piece[id] ? t->piece[id] : "";
}

/* ---- encode / decode ---------------------------------------------------------------------- */

harp_status harp_tokenize(const harp_tokenizer *t, const char *text, size_t len, int add_bos,
                          int32_t **ids, size_t *n_ids) {
    if (!t || !ids || !n_ids || (!text && len))
        return harp_err(HARP_ERR_INVALID_ARG, "harp_tokenize: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    if (len > (size_t)INT32_MAX / 2)
        return harp_err(HARP_ERR_INVALID_ARG, "%s: text of %zu bytes is too long to tokenize",
                        t->name, len);
    tok_ids o = {0};
    harp_status st = HARP_OK;
    if (add_bos) {
        if (t->bos_id < 0)
            return harp_err(HARP_ERR_UNSUPPORTED, "%s: vocabulary has no BOS token", t->name);
        st = tok_ids_push(&o, t->bos_id);
    }
    if (st == HARP_OK && len) {
        switch (t->kind) {
        case HARP_TOK_SPM: st = tok_spm_encode(t, text, len, &o); break;
        case HARP_TOK_LLAMA2C: st = tok_llama2c_encode(t, text, len, &o); break;
        default: st = tok_json_encode(t, text, len, &o); break;
        }
    }
    if (st != HARP_OK) {
        free(o.v);
        return st;
    }
    if (!o.v) {
        o.v = malloc(sizeof(int32_t));
        if (!o.v) return harp_err(HARP_ERR_OOM, "%s: out of memory", t->name);
    }
    *ids = o.v;
    *n_ids = o.n;
    return HARP_OK;
}

/* GPT-2 byte <-> unicode map: printable bytes map to themselves, the rest to U+0100 upward. */
int tok_bytelevel_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    int k = 0;
    for (int b = 0; b < 256; b++) {
        if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) continue;
        if ((uint32_t)(256 + k) == cp) return b;
        k++;
    }
    return -1;
}

static uint32_t utf8_decode(const unsigned char *s, size_t n, size_t *used) {
    int l = tok_utf8_len(s[0]);
    if ((size_t)l > n) l = 1;
    uint32_t cp = s[0];
    if (l == 2) cp = (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
    if (l == 3) cp = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    if (l == 4)
        cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
             (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
    *used = (size_t)l;
    return cp;
}

static int byte_piece_value(const char *p, size_t n) {
    if (n != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = p[i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Appends the text of one id to b with the tokenizer's decoding rules (the leading-space strip of
 * the whole text is the caller's: harp_detokenize and the stream decoder apply it once). */
static harp_status tok_decode_id(const harp_tokenizer *t, int32_t id, tok_buf *b) {
    if (id < 0 || id >= t->n_vocab)
        return harp_err(HARP_ERR_INVALID_ARG, "%s: token id %d out of range [0, %d)", t->name, (int)id,
                        (int)t->n_vocab);
    const char *p = t->piece[id] ? t->piece[id] : "";
    size_t pn = t->piece_len[id];
    harp_status st = HARP_OK;
    if (t->kind == HARP_TOK_HF_BYTELEVEL) {
        if (t->type[id] == TOK_CONTROL) return HARP_OK;
        if (t->type[id] == TOK_USER) return tok_buf_put(b, p, pn);
        for (size_t k = 0; k < pn && st == HARP_OK;) {
            size_t u;
            uint32_t cp = utf8_decode((const unsigned char *)p + k, pn - k, &u);
            int by = tok_bytelevel_byte(cp);
            if (by >= 0) {
                unsigned char c = (unsigned char)by;
                st = tok_buf_put(b, &c, 1);
            } else {
                st = tok_buf_put(b, p + k, u);
            }
            k += u;
        }
        return st;
    }
    if (t->type[id] == TOK_CONTROL) return HARP_OK;
    if (t->kind == HARP_TOK_LLAMA2C && (id == t->bos_id || id == t->eos_id)) return HARP_OK;
    if (t->type[id] == TOK_UNKNOWN)
        return tok_buf_put(b, t->kind == HARP_TOK_SPM ? " \xE2\x81\x87 " : p, t->kind == HARP_TOK_SPM ? 5 : pn);
    int bv = (t->type[id] == TOK_BYTE || t->byte_fallback || t->kind == HARP_TOK_LLAMA2C) ? byte_piece_value(p, pn) : -1;
    if (bv >= 0) {
        unsigned char c = (unsigned char)bv;
        return tok_buf_put(b, &c, 1);
    }
    /* '▁' (E2 96 81) -> ' ' for SentencePiece-style vocabularies. */
    for (size_t k = 0; k < pn && st == HARP_OK;) {
        if (t->kind != HARP_TOK_LLAMA2C && k + 3 <= pn && (unsigned char)p[k] == 0xE2 &&
            (unsigned char)p[k + 1] == 0x96 && (unsigned char)p[k + 2] == 0x81) {
            st = tok_buf_put(b, " ", 1);
            k += 3;
        } else {
            size_t e = k + 1;
            while (e < pn && (unsigned char)p[e] != 0xE2) e++;
            st = tok_buf_put(b, p + k, e - k);
            k = e;
        }
    }
    return st;
}

/* The dummy prefix added at encode time comes back as one leading space of the whole text: drop it.
 * b holds the first bytes of the text. */
static void tok_strip_lead(const harp_tokenizer *t, tok_buf *b) {
    if (t->strip_lead && b->n && b->v[0] == ' ') {
        memmove(b->v, b->v + 1, b->n);
        b->n--;
    }
}

harp_status harp_detokenize(const harp_tokenizer *t, const int32_t *ids, size_t n_ids, char **text,
                            size_t *len) {
    if (!t || !text || (!ids && n_ids))
        return harp_err(HARP_ERR_INVALID_ARG, "harp_detokenize: NULL argument");
    *text = NULL;
    if (len) *len = 0;
    tok_buf b = {0};
    harp_status st = tok_buf_put(&b, "", 0);
    for (size_t i = 0; i < n_ids && st == HARP_OK; i++) st = tok_decode_id(t, ids[i], &b);
    if (st != HARP_OK) {
        free(b.v);
        return st;
    }
    tok_strip_lead(t, &b);
    *text = b.v;
    if (len) *len = b.n;
    return HARP_OK;
}

/* ---- incremental decoding ------------------------------------------------------------------ */

struct harp_detok {
    const harp_tokenizer *t;
    tok_buf b;       /* b.v[0, ready) was handed out by the last call; the rest is held back */
    size_t ready;
    int started;     /* some byte of the text has been decoded (the leading-space rule is done) */
};

harp_status harp_detok_create(const harp_tokenizer *t, harp_detok **out) {
    if (!t || !out) return harp_err(HARP_ERR_INVALID_ARG, "harp_detok_create: NULL argument");
    *out = calloc(1, sizeof **out);
    if (!*out) return harp_err(HARP_ERR_OOM, "%s: out of memory", t->name);
    (*out)->t = t;
    return HARP_OK;
}

void harp_detok_free(harp_detok *d) {
    if (!d) return;
    free(d->b.v);
    free(d);
}

/* Length of the longest prefix of s[0, n) that does not end inside a UTF-8 sequence which later
 * bytes could complete (invalid bytes count as complete: they are passed through as they are). */
static size_t utf8_complete_prefix(const unsigned char *s, size_t n) {
    for (size_t i = n, k = 0; i > 0 && k < 4; i--, k++) {
        unsigned char c = s[i - 1];
        if ((c & 0xC0) == 0x80) continue;
        if (c < 0xC0) return n;
        return i - 1 + (size_t)tok_utf8_len(c) > n ? i - 1 : n;
    }
    return n;
}

static harp_status detok_take(harp_detok *d, int all, const char **text, size_t *len) {
    if (!d->started && d->b.n) {
        d->started = 1;
        tok_strip_lead(d->t, &d->b);
    }
    d->ready = all ? d->b.n : utf8_complete_prefix((const unsigned char *)d->b.v, d->b.n);
    if (text) *text = d->b.v ? d->b.v : "";
    if (len) *len = d->ready;
    return HARP_OK;
}

harp_status harp_detok_push(harp_detok *d, int32_t id, const char **text, size_t *len) {
    if (!d) return harp_err(HARP_ERR_INVALID_ARG, "harp_detok_push: NULL argument");
    if (d->ready) {
        memmove(d->b.v, d->b.v + d->ready, d->b.n - d->ready);
        d->b.n -= d->ready;
        d->ready = 0;
    }
    HARP_TRY(tok_decode_id(d->t, id, &d->b));
    return detok_take(d, 0, text, len);
}

harp_status harp_detok_flush(harp_detok *d, const char **text, size_t *len) {
    if (!d) return harp_err(HARP_ERR_INVALID_ARG, "harp_detok_flush: NULL argument");
    if (d->ready) {
        memmove(d->b.v, d->b.v + d->ready, d->b.n - d->ready);
        d->b.n -= d->ready;
        d->ready = 0;
    }
    return detok_take(d, 1, text, len);
}
