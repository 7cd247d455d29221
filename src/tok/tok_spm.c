/* SentencePiece tokenizer.model: the ModelProto protobuf is decoded by hand (pieces, scores,
 * types; trainer_spec model_type / byte_fallback / special ids; normalizer_spec flags), and text
 * is encoded the way sentencepiece's BPE model does it: normalize, split into characters (user-
 * defined pieces first, frozen), merge the best-scoring adjacent pair whose concatenation is a
 * normal/user-defined/unused piece (ties: leftmost), then map symbols to ids with byte fallback. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tok/tok_internal.h"

/* ---- protobuf wire format ------------------------------------------------------------------ */

typedef struct pb {
    const uint8_t *p, *end;
    const char *name;
    const char *what;  /* message being read, for errors */
} pb;

static harp_status pb_varint(pb *r, uint64_t *v) {
    uint64_t x = 0;
    for (int s = 0; s < 64; s += 7) {
        if (r->p >= r->end)
            return harp_err(HARP_ERR_FORMAT, "%s: truncated varint in %s", r->name, r->what);
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7F) << s;
        if (!(b & 0x80)) {
            *v = x;
            return HARP_OK;
        }
    }
    return harp_err(HARP_ERR_FORMAT, "%s: varint longer than 10 bytes in %s", r->name, r->what);
}

/* One field of a message: number f, wire type w, a scalar's value v (0 for other wire types) and a
 * length-delimited field's payload span sub. */
typedef struct pb_fld {
    uint32_t f, w;
    uint64_t v;
    pb sub;
} pb_fld;

/* Reads the next field of r into *x. */
static harp_status pb_field(pb *r, pb_fld *x) {
    uint64_t tag = 0;
    x->v = 0;
    HARP_TRY(pb_varint(r, &tag));
    x->f = (uint32_t)(tag >> 3);
    x->w = (uint32_t)(tag & 7);
    if (x->f == 0) return harp_err(HARP_ERR_FORMAT, "%s: field number 0 in %s", r->name, r->what);
    switch (x->w) {
    case 0: return pb_varint(r, &x->v);
    case 1:
        if (r->end - r->p < 8)
            return harp_err(HARP_ERR_FORMAT, "%s: truncated 64-bit field in %s", r->name, r->what);
        r->p += 8;
        return HARP_OK;
    case 5:
        if (r->end - r->p < 4)
            return harp_err(HARP_ERR_FORMAT, "%s: truncated 32-bit field in %s", r->name, r->what);
        {
            uint32_t u = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
                         (uint32_t)r->p[3] << 24;
            x->v = u;
        }
        r->p += 4;
        return HARP_OK;
    case 2: {
        uint64_t n = 0;
        HARP_TRY(pb_varint(r, &n));
        if (n > (uint64_t)(r->end - r->p))
            return harp_err(HARP_ERR_FORMAT,
                            "%s: field %u of %s claims %llu bytes, only %zu left (truncated?)",
                            r->name, x->f, r->what, (unsigned long long)n,
                            (size_t)(r->end - r->p));
        x->sub.p = r->p;
        x->sub.end = r->p + n;
        x->sub.name = r->name;
        r->p += n;
        return HARP_OK;
    }
    default:
        return harp_err(HARP_ERR_FORMAT, "%s: unsupported protobuf wire type %u in %s", r->name,
                        x->w, r->what);
    }
}

static float pb_f32(uint64_t v) {
    uint32_t u = (uint32_t)v;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- loading ------------------------------------------------------------------------------- */

static harp_status count_pieces(pb r, int32_t *n) {
    *n = 0;
    for (pb_fld x; r.p < r.end;) {
        HARP_TRY(pb_field(&r, &x));
        if (x.f == 1) {
            if (x.w != 2) return harp_err(HARP_ERR_FORMAT, "%s: pieces field is not a message", r.name);
            if (++*n > (1 << 24)) return harp_err(HARP_ERR_FORMAT, "%s: too many pieces", r.name);
        }
    }
    return HARP_OK;
}

static harp_status load_piece(harp_tokenizer *t, pb r, int32_t id) {
    r.what = "a piece";
    int have = 0;
    for (pb_fld x; r.p < r.end;) {
        HARP_TRY(pb_field(&r, &x));
        if (x.f == 1 && x.w == 2) {
            HARP_TRY(tok_set_piece(t, id, (const char *)x.sub.p, (size_t)(x.sub.end - x.sub.p)));
            have = 1;
        } else if (x.f == 2 && x.w == 5) {
            t->score[id] = pb_f32(x.v);
            if (t->score[id] != t->score[id])
                return harp_err(HARP_ERR_FORMAT, "%s: piece %d has a NaN score", t->name, (int)id);
        } else if (x.f == 3 && x.w == 0) {
            if (x.v < 1 || x.v > 6)
                return harp_err(HARP_ERR_FORMAT, "%s: piece %d has unknown type %llu", t->name,
                                (int)id, (unsigned long long)x.v);
            t->type[id] = (uint8_t)x.v;
        }
    }
    if (!have) return harp_err(HARP_ERR_FORMAT, "%s: piece %d has no string", t->name, (int)id);
    if (t->piece_len[id] == 0)
        return harp_err(HARP_ERR_FORMAT, "%s: piece %d is empty", t->name, (int)id);
    return HARP_OK;
}

static harp_status load_trainer(harp_tokenizer *t, pb r, int *model_type) {
    r.what = "trainer_spec";
    for (pb_fld x; r.p < r.end;) {
        HARP_TRY(pb_field(&r, &x));
        if (x.w != 0) continue;
        switch (x.f) {
        case 3: *model_type = (int)x.v; break;
        case 24: t->ws_suffix = x.v != 0; break;
        case 35: t->byte_fallback = x.v != 0; break;
        case 40: t->unk_id = (int32_t)x.v; break;
        case 41: t->bos_id = (int32_t)x.v; break;
        case 42: t->eos_id = (int32_t)x.v; break;
        default: break;
        }
    }
    return HARP_OK;
}

static harp_status load_normalizer(harp_tokenizer *t, pb r) {
    r.what = "normalizer_spec";
    for (pb_fld x; r.p < r.end;) {
        HARP_TRY(pb_field(&r, &x));
        if (x.f == 1 && x.w == 2) {
            size_t n = (size_t)(x.sub.end - x.sub.p);
            if (!(n == 8 && memcmp(x.sub.p, "identity", 8) == 0) && n != 0) {
                /* A named rule (nmt_nfkc, ...) only matters through its charsmap, checked below. */
            }
        } else if (x.f == 2 && x.w == 2 && x.sub.end != x.sub.p) {
            return harp_err(HARP_ERR_UNSUPPORTED,
                            "%s: normalizer has a precompiled charsmap (e.g. nmt_nfkc); only the "
                            "identity normalization is supported",
                            t->name);
        } else if (x.f == 3 && x.w == 0) {
            t->add_dummy_prefix = x.v != 0;
        } else if (x.f == 4 && x.w == 0) {
            t->remove_extra_ws = x.v != 0;
        } else if (x.f == 5 && x.w == 0) {
            t->escape_ws = x.v != 0;
        }
    }
    return HARP_OK;
}

typedef struct { uint32_t len; int32_t id; } len_id;
static int by_len_desc(const void *a, const void *b) {
    const len_id *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* t->user_ids: the has_user user-defined pieces, longest first (ties by id). */
static harp_status sort_user_pieces(harp_tokenizer *t, int32_t np) {
    t->user_ids = harp_xmalloc((size_t)t->has_user * sizeof *t->user_ids, "user-defined pieces");
    if (!t->user_ids) return HARP_ERR_OOM;
    len_id *tmp = harp_xmalloc((size_t)t->has_user * sizeof *tmp, "user-defined pieces");
    if (!tmp) return HARP_ERR_OOM;
    int k = 0;
    for (int32_t i = 0; i < np; i++)
        if (t->type[i] == TOK_USER) tmp[k++] = (len_id){t->piece_len[i], i};
    qsort(tmp, (size_t)k, sizeof *tmp, by_len_desc);
    for (int j = 0; j < k; j++) t->user_ids[j] = tmp[j].id;
    free(tmp);
    return HARP_OK;
}

harp_status tok_spm_load(harp_tokenizer *t, const uint8_t *d, size_t n) {
    pb r = {d, d + n, t->name, "ModelProto"};
    int32_t np;
    HARP_TRY(count_pieces(r, &np));
    if (np == 0) return harp_err(HARP_ERR_FORMAT, "%s: no pieces (not a tokenizer.model?)", t->name);
    HARP_TRY(tok_alloc_vocab(t, np));
    /* proto defaults */
    t->add_dummy_prefix = 1;
    t->remove_extra_ws = 1;
    t->escape_ws = 1;
    t->unk_id = 0;
    t->bos_id = 1;
    t->eos_id = 2;
    int model_type = 1, have_trainer = 0;
    int32_t id = 0;
    for (pb_fld x; r.p < r.end;) {
        HARP_TRY(pb_field(&r, &x));
        if (x.f == 1) {
            HARP_TRY(load_piece(t, x.sub, id++));
        } else if (x.f == 2 && x.w == 2) {
            HARP_TRY(load_trainer(t, x.sub, &model_type));
            have_trainer = 1;
        } else if (x.f == 3 && x.w == 2) {
            HARP_TRY(load_normalizer(t, x.sub));
        }
    }
    if (!have_trainer)
        return harp_err(HARP_ERR_FORMAT, "%s: no trainer_spec (not a tokenizer.model?)", t->name);
    if (model_type != 2)
        return harp_err(HARP_ERR_UNSUPPORTED,
                        "%s: SentencePiece model type %d is not BPE (2); only BPE is supported",
                        t->name, model_type);
    if (t->unk_id < 0 || t->unk_id >= np || t->type[t->unk_id] != TOK_UNKNOWN)
        return harp_err(HARP_ERR_FORMAT, "%s: unk id %d is not an unknown-type piece", t->name,
                        (int)t->unk_id);
    if (t->bos_id >= np || t->eos_id >= np)
        return harp_err(HARP_ERR_FORMAT, "%s: bos/eos id out of range", t->name);
    for (int32_t i = 0; i < np; i++) {
        if (t->type[i] == TOK_USER) t->has_user++;
        if (t->type[i] == TOK_UNKNOWN && i != t->unk_id)
            return harp_err(HARP_ERR_FORMAT, "%s: more than one unknown piece", t->name);
    }
    if (t->has_user) HARP_TRY(sort_user_pieces(t, np));
    HARP_TRY(tok_build_map(t));
    for (int32_t i = 0; i < np; i++)
        if (tok_lookup(t, t->piece[i], t->piece_len[i]) != i)
            return harp_err(HARP_ERR_FORMAT, "%s: duplicate piece \"%s\" (id %d)", t->name,
                            t->piece[i], (int)i);
    if (t->byte_fallback) {
        tok_find_byte_pieces(t);
        for (int b = 0; b < 256; b++)
            if (t->byte_id[b] < 0 || t->type[t->byte_id[b]] != TOK_BYTE)
                return harp_err(HARP_ERR_FORMAT, "%s: byte_fallback set but piece <0x%02X> missing",
                                t->name, b);
    }
    /* Words (a '▁' run plus what follows up to the next '▁') merge independently when no piece
     * joins a non-'▁' character to a following '▁'. Both Llama vocabularies satisfy this. */
    t->segmentable = !t->has_user && !t->ws_suffix;
    for (int32_t i = 0; i < np && t->segmentable; i++) {
        const unsigned char *p = (const unsigned char *)t->piece[i];
        uint32_t pn = t->piece_len[i];
        for (uint32_t k = 1; k + 3 <= pn; k++) {
            int ws_here = p[k] == 0xE2 && p[k + 1] == 0x96 && p[k + 2] == 0x81;
            int ws_before = k >= 3 && p[k - 3] == 0xE2 && p[k - 2] == 0x96 && p[k - 1] == 0x81;
            if (ws_here && !ws_before) {
                t->segmentable = 0;
                break;
            }
        }
    }
    t->strip_lead = t->add_dummy_prefix && !t->ws_suffix;
    return HARP_OK;
}

/* ---- normalization ------------------------------------------------------------------------- */

static const char WS[] = "\xE2\x96\x81";

/* Identity normalization plus the spec's whitespace handling. Invalid UTF-8 bytes become U+FFFD
 * one byte at a time, as sentencepiece's normalizer does. */
static harp_status spm_normalize(const harp_tokenizer *t, const char *s, size_t n, tok_buf *o) {
    size_t i = 0;
    if (t->remove_extra_ws)
        while (i < n && s[i] == ' ') i++;
    if (i == n) return tok_buf_put(o, "", 0);
    const char *ws = t->escape_ws ? WS : " ";
    size_t wsn = t->escape_ws ? 3 : 1;
    if (t->add_dummy_prefix && !t->ws_suffix) HARP_TRY(tok_buf_put(o, ws, wsn));
    int last_space = 0;
    while (i < n) {
        if (s[i] == ' ') {
            if (!(t->remove_extra_ws && last_space)) HARP_TRY(tok_buf_put(o, ws, wsn));
            last_space = 1;
            i++;
            continue;
        }
        last_space = 0;
        size_t l = (size_t)tok_utf8_len((unsigned char)s[i]);
        if (i + l > n || !harp_utf8_valid(s + i, l)) {
            HARP_TRY(tok_buf_put(o, "\xEF\xBF\xBD", 3));
            i++;
            continue;
        }
        HARP_TRY(tok_buf_put(o, s + i, l));
        i += l;
    }
    if (t->remove_extra_ws && last_space) o->n -= wsn;   /* trailing run collapsed to one: drop */
    if (t->add_dummy_prefix && t->ws_suffix) HARP_TRY(tok_buf_put(o, ws, wsn));
    return HARP_OK;
}

/* ---- encoding ------------------------------------------------------------------------------ */

static int spm_pair(const harp_tokenizer *t, tok_work *w, const tok_sym *a, const tok_sym *b,
                    double *score, int32_t *merged) {
    int32_t id = tok_lookup(t, w->text + a->start, (size_t)(a->len + b->len));
    if (id < 0) return 0;
    uint8_t ty = t->type[id];
    if (ty != TOK_NORMAL && ty != TOK_USER && ty != TOK_UNUSED) return 0;
    *score = t->score[id];
    *merged = id;
    return 1;
}

/* Longest user-defined piece at s (user_ids is sorted longest first). */
static int user_match(const harp_tokenizer *t, const char *s, size_t n) {
    for (int k = 0; k < t->has_user; k++) {
        int32_t i = t->user_ids[k];
        if (t->piece_len[i] <= n && memcmp(t->piece[i], s, t->piece_len[i]) == 0)
            return (int)t->piece_len[i];
    }
    return 0;
}


static harp_status emit_symbol(const harp_tokenizer *t, const tok_work *w, int32_t start,
                               int32_t len, tok_ids *out) {
    int32_t id = tok_lookup(t, w->text + start, (size_t)len);
    if (id >= 0 && t->type[id] == TOK_UNUSED) {
        /* Unused pieces are split back into what they were merged from (longest usable halves). */
        for (int32_t k = len - 1; k > 0; k--) {
            int32_t l = tok_lookup(t, w->text + start, (size_t)k);
            int32_t r = tok_lookup(t, w->text + start + k, (size_t)(len - k));
            if (l >= 0 && r >= 0) {
                HARP_TRY(emit_symbol(t, w, start, k, out));
                return emit_symbol(t, w, start + k, len - k, out);
            }
        }
    }
    if (id >= 0 && t->type[id] != TOK_UNUSED) return tok_ids_push(out, id);
    if (t->byte_fallback) {
        for (int32_t k = 0; k < len; k++)
            HARP_TRY(tok_ids_push(out, t->byte_id[(unsigned char)w->text[start + k]]));
        return HARP_OK;
    }
    return tok_ids_push(out, t->unk_id);
}

static harp_status encode_span(const harp_tokenizer *t, tok_work *w, size_t a, size_t b,
                               tok_ids *out) {
    size_t n = 0;
    HARP_TRY(tok_work_syms(w, b - a));
    for (size_t i = a; i < b;) {
        int frozen = 0;
        size_t l = 0;
        if (t->has_user) {
            l = (size_t)user_match(t, w->text + i, b - i);
            frozen = l > 0;
        }
        if (!l) l = (size_t)tok_utf8_len((unsigned char)w->text[i]);
        if (i + l > b) l = b - i;
        tok_sym *s = &w->sym[n];
        s->start = (int32_t)i;
        s->len = (int32_t)l;
        s->id = -1;
        s->prev = (int32_t)n - 1;
        s->next = (int32_t)n + 1;
        s->frozen = frozen;
        n++;
        i += l;
    }
    if (n) w->sym[n - 1].next = -1;
    w->n_sym = n;
    HARP_TRY(tok_bpe_merge(t, w, spm_pair));
    for (int32_t i = 0; n && i >= 0; i = w->sym[i].next)
        HARP_TRY(emit_symbol(t, w, w->sym[i].start, w->sym[i].len, out));
    return HARP_OK;
}

static int is_ws_at(const char *s, size_t i, size_t n) {
    return i + 3 <= n && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 &&
           (unsigned char)s[i + 2] == 0x81;
}

harp_status tok_spm_encode(const harp_tokenizer *t, const char *text, size_t len, tok_ids *out) {
    tok_buf norm = {0};
    tok_work w = {0};
    harp_status st = spm_normalize(t, text, len, &norm);
    if (st != HARP_OK || norm.n == 0) {
        free(norm.v);
        return st;
    }
    w.text = norm.v;
    if (!t->segmentable || !t->escape_ws) {
        st = encode_span(t, &w, 0, norm.n, out);
    } else {
        size_t a = 0;
        int prev_ws = 1;
        for (size_t i = 0; i < norm.n && st == HARP_OK;) {
            int ws = is_ws_at(norm.v, i, norm.n);
            if (ws && !prev_ws && i > a) {
                st = encode_span(t, &w, a, i, out);
                a = i;
            }
            prev_ws = ws;
            i += ws ? 3 : 1;
        }
        if (st == HARP_OK && a < norm.n) st = encode_span(t, &w, a, norm.n, out);
    }
    tok_work_free(&w);
    free(norm.v);
    return st;
}
