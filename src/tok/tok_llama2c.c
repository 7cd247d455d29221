/* llama2.c tokenizer.bin: int32 max_token_length, then per token float score, int32 length and
 * the bytes (pieces use ' ' where SentencePiece has '▁'; byte pieces stay "<0xXX>"). Encoding
 * follows llama2.c's encode(): a " " dummy-prefix token for non-empty text, one symbol per UTF-8
 * character (at most 4 bytes) looked up in the whole vocabulary, else its bytes as ids byte+3,
 * then repeatedly merge the adjacent pair whose concatenated piece scores highest (leftmost on
 * ties). The merge order is the same as llama2.c's rescans; only the queue is faster. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tok/tok_internal.h"

static int32_t rd_i32(const uint8_t *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

harp_status tok_llama2c_load(harp_tokenizer *t, const uint8_t *d, size_t n, int vocab_hint) {
    if (n < 4) return harp_err(HARP_ERR_FORMAT, "%s: %zu bytes, too short for a tokenizer.bin", t->name, n);
    int32_t maxlen = rd_i32(d);
    if (maxlen <= 0 || maxlen > 65536)
        return harp_err(HARP_ERR_FORMAT, "%s: max_token_length %d out of range (not a tokenizer.bin?)",
                        t->name, (int)maxlen);
    /* Count the records (the file does not store the vocabulary size). */
    size_t off = 4;
    int32_t count = 0;
    while (off < n && (vocab_hint <= 0 || count < vocab_hint)) {
        if (n - off < 8)
            return harp_err(HARP_ERR_FORMAT, "%s: token %d truncated at byte %zu", t->name, (int)count, off);
        float sc;
        memcpy(&sc, d + off, 4);
        int32_t len = rd_i32(d + off + 4);
        if (sc != sc)
            return harp_err(HARP_ERR_FORMAT, "%s: token %d has a NaN score", t->name, (int)count);
        if (len < 0 || len > maxlen)
            return harp_err(HARP_ERR_FORMAT, "%s: token %d has length %d outside [0, %d]", t->name,
                            (int)count, (int)len, (int)maxlen);
        if ((size_t)len > n - off - 8)
            return harp_err(HARP_ERR_FORMAT, "%s: token %d (length %d) runs past the end of the file",
                            t->name, (int)count, (int)len);
        off += 8 + (size_t)len;
        count++;
    }
    if (vocab_hint > 0 && count < vocab_hint)
        return harp_err(HARP_ERR_FORMAT, "%s: holds %d tokens, the model needs %d", t->name,
                        (int)count, vocab_hint);
    if (count < 3) return harp_err(HARP_ERR_FORMAT, "%s: only %d tokens", t->name, (int)count);
    HARP_TRY(tok_alloc_vocab(t, count));
    off = 4;
    for (int32_t i = 0; i < count; i++) {
        memcpy(&t->score[i], d + off, 4);
        int32_t len = rd_i32(d + off + 4);
        HARP_TRY(tok_set_piece(t, i, (const char *)d + off + 8, (size_t)len));
        off += 8 + (size_t)len;
    }
    /* llama2.c hard-codes these. */
    t->unk_id = 0;
    t->bos_id = 1;
    t->eos_id = 2;
    t->strip_lead = 1;
    t->byte_fallback = count >= 259;
    HARP_TRY(tok_build_map(t));
    return HARP_OK;
}

static int l2c_pair(const harp_tokenizer *t, tok_work *w, const tok_sym *a, const tok_sym *b,
                    double *score, int32_t *merged) {
    size_t la = t->piece_len[a->id], lb = t->piece_len[b->id];
    if (la + lb > (size_t)t->max_piece_len) return 0;
    memcpy(w->scratch, t->piece[a->id], la);
    memcpy(w->scratch + la, t->piece[b->id], lb);
    int32_t id = tok_lookup(t, w->scratch, la + lb);
    if (id < 0) return 0;
    *score = t->score[id];
    *merged = id;
    return 1;
}

harp_status tok_llama2c_encode(const harp_tokenizer *t, const char *text, size_t len, tok_ids *out) {
    tok_work w = {0};
    harp_status st = tok_work_syms(&w, len + 1);
    w.scratch = malloc((size_t)t->max_piece_len + 1);
    if (st != HARP_OK || !w.scratch) {
        tok_work_free(&w);
        return st != HARP_OK ? st : harp_err(HARP_ERR_OOM, "%s: out of memory", t->name);
    }
    size_t n = 0;
    int32_t sp = tok_lookup(t, " ", 1);
    if (sp >= 0) w.sym[n++] = (tok_sym){0, 1, sp, -1, 1, 0};
    for (size_t i = 0; i < len;) {
        size_t l = 1;
        while (i + l < len && l < 4 && ((unsigned char)text[i + l] & 0xC0) == 0x80) l++;
        int32_t id = tok_lookup(t, text + i, l);
        if (id >= 0) {
            w.sym[n++] = (tok_sym){(int32_t)i, (int32_t)l, id, 0, 0, 0};
        } else {
            for (size_t k = 0; k < l; k++) {
                int32_t bid = (unsigned char)text[i + k] + 3;
                if (bid >= t->n_vocab) bid = t->unk_id;
                w.sym[n++] = (tok_sym){(int32_t)(i + k), 1, bid, 0, 0, 0};
            }
        }
        i += l;
    }
    /* Spans are only used for the stale-entry check; give each symbol a distinct one. */
    for (size_t i = 0; i < n; i++) {
        w.sym[i].start = (int32_t)i;
        w.sym[i].len = 1;
        w.sym[i].prev = (int32_t)i - 1;
        w.sym[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    w.n_sym = n;
    st = tok_bpe_merge(t, &w, l2c_pair);
    for (int32_t i = 0; st == HARP_OK && n && i >= 0; i = w.sym[i].next)
        st = tok_ids_push(out, w.sym[i].id);
    tok_work_free(&w);
    return st;
}
