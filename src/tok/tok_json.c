/* Hugging Face tokenizer.json with a BPE model: vocab + merges (as "a b" strings or ["a","b"]
 * pairs; the rank is the list position), added tokens matched in the raw text before the model,
 * and two pipelines: the Llama-2 style (Prepend/Replace normalizer or Metaspace pre-tokenizer,
 * byte fallback) and byte-level BPE (GPT-2 / Llama-3 / Qwen2: a Split regex run with PCRE2 in
 * UTF + UCP mode, then the GPT-2 byte -> unicode map). Merging is the same heap-driven loop as for
 * SentencePiece, ordered by merge rank (lowest first) and then position. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tok/tok_internal.h"

static const char GPT2_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

void tok_json_free_regex(void *re) { pcre2_code_free((pcre2_code *)re); }

/* UTF-8 of the code point that stands for byte b in GPT-2's byte-level alphabet. */
static size_t bytelevel_char(int b, char out[4]) {
    uint32_t cp;
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
        cp = (uint32_t)b;
    } else {
        int k = 0;
        for (int x = 0; x < b; x++)
            if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF)))
                k++;
        cp = 256u + (uint32_t)k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

static int jbool(const cJSON *o, const char *k, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int is_ws_str(const char *s) { return s && strcmp(s, "\xE2\x96\x81") == 0; }

static harp_status compile_regex(harp_tokenizer *t, const char *pat, int literal) {
    int errcode;
    PCRE2_SIZE erroff;
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opts, &errcode, &erroff, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: pre-tokenizer regex does not compile at offset %zu: %s",
                        t->name, (size_t)erroff, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);   /* best effort; the interpreter is the fallback */
    if (t->re) pcre2_code_free((pcre2_code *)t->re);
    t->re = re;
    return HARP_OK;
}

typedef harp_status (*step_loader)(harp_tokenizer *t, const cJSON *step);

/* The common part of a normalizer / pre-tokenizer step: null (or absent) is no step, a "Sequence"
 * loads each step of its `list` array. *ty is the type of any other step, NULL when done. */
static harp_status step_type(harp_tokenizer *t, const cJSON *step, const char *kind, const char *list,
                             step_loader load, const char **ty) {
    *ty = NULL;
    if (!step || cJSON_IsNull(step)) return HARP_OK;
    const char *type = jstr(step, "type");
    if (!type) return harp_err(HARP_ERR_FORMAT, "%s: %s without a type", t->name, kind);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(step, list)) HARP_TRY(load(t, e));
        return HARP_OK;
    }
    *ty = type;
    return HARP_OK;
}

static harp_status load_normalizer(harp_tokenizer *t, const cJSON *n) {
    const char *ty;
    HARP_TRY(step_type(t, n, "normalizer", "normalizers", load_normalizer, &ty));
    if (!ty) return HARP_OK;
    if (strcmp(ty, "Prepend") == 0 && is_ws_str(jstr(n, "prepend"))) {
        t->prepend = 1;
        return HARP_OK;
    }
    if (strcmp(ty, "Replace") == 0) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(n, "pattern");
        const char *from = jstr(p, "String");
        if (from && strcmp(from, " ") == 0 && is_ws_str(jstr(n, "content"))) {
            t->replace_space = 1;
            return HARP_OK;
        }
    }
    if (strcmp(ty, "NFC") == 0) {
        /* Qwen2: NFC recomposition. harp does not carry Unicode tables; text that is already NFC
         * (nearly all text) tokenizes identically. */
        harp_log(HARP_LOG_WARN, "%s: NFC normalizer treated as identity (input assumed NFC)", t->name);
        return HARP_OK;
    }
    return harp_err(HARP_ERR_UNSUPPORTED, "%s: normalizer \"%s\" is not supported", t->name, ty);
}

static harp_status load_pretok(harp_tokenizer *t, const cJSON *p) {
    const char *ty;
    HARP_TRY(step_type(t, p, "pre_tokenizer", "pretokenizers", load_pretok, &ty));
    if (!ty) return HARP_OK;
    if (strcmp(ty, "Metaspace") == 0) {
        if (!is_ws_str(jstr(p, "replacement")))
            return harp_err(HARP_ERR_UNSUPPORTED, "%s: Metaspace replacement is not U+2581", t->name);
        t->pre = TOK_PRE_METASPACE;
        t->replace_space = 1;
        const char *scheme = jstr(p, "prepend_scheme");
        if (scheme)
            t->prepend = strcmp(scheme, "always") == 0 ? 1 : strcmp(scheme, "first") == 0 ? 2 : 0;
        else
            t->prepend = jbool(p, "add_prefix_space", 1);
        t->meta_split = jbool(p, "split", 1);
        return HARP_OK;
    }
    if (strcmp(ty, "Split") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const char *rx = jstr(pat, "Regex"), *lit = jstr(pat, "String");
        const char *beh = jstr(p, "behavior");
        if ((!rx && !lit) || !beh || strcmp(beh, "Isolated") != 0 || jbool(p, "invert", 0))
            return harp_err(HARP_ERR_UNSUPPORTED,
                            "%s: only Split pre-tokenizers with behavior Isolated are supported",
                            t->name);
        t->pre = TOK_PRE_BYTELEVEL;
        return compile_regex(t, rx ? rx : lit, rx == NULL);
    }
    if (strcmp(ty, "ByteLevel") == 0) {
        t->pre = TOK_PRE_BYTELEVEL;
        t->bl_prefix_space = jbool(p, "add_prefix_space", 0);
        if (jbool(p, "use_regex", 1)) HARP_TRY(compile_regex(t, GPT2_REGEX, 0));
        return HARP_OK;
    }
    return harp_err(HARP_ERR_UNSUPPORTED, "%s: pre_tokenizer \"%s\" is not supported", t->name, ty);
}

static void load_decoder(harp_tokenizer *t, const cJSON *d) {
    if (!d || cJSON_IsNull(d)) return;
    const char *ty = jstr(d, "type");
    if (!ty) return;
    if (strcmp(ty, "Sequence") == 0) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(d, "decoders")) load_decoder(t, e);
    } else if (strcmp(ty, "Strip") == 0) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(d, "start");
        const char *c = jstr(d, "content");
        if (c && strcmp(c, " ") == 0 && cJSON_IsNumber(s) && s->valuedouble >= 1) t->strip_lead = 1;
    } else if (strcmp(ty, "Metaspace") == 0) {
        const char *scheme = jstr(d, "prepend_scheme");
        t->strip_lead = scheme ? strcmp(scheme, "never") != 0 : jbool(d, "add_prefix_space", 1);
    }
}

static harp_status vocab_id(const harp_tokenizer *t, const cJSON *v, int32_t *id) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= (1 << 24) ||
        v->valuedouble != (double)(int32_t)v->valuedouble)
        return harp_err(HARP_ERR_FORMAT, "%s: vocabulary id is not an integer in [0, 2^24)", t->name);
    *id = (int32_t)v->valuedouble;
    return HARP_OK;
}

static harp_status load_merges(harp_tokenizer *t, const cJSON *merges) {
    int nm = cJSON_GetArraySize(merges);
    HARP_TRY(tok_pairmap_init(&t->merges, (size_t)nm));
    int32_t rank = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        const char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        if (cJSON_IsString(m)) {
            const char *s = m->valuestring, *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' '))
                return harp_err(HARP_ERR_FORMAT, "%s: merge %d \"%s\" is not \"a b\"", t->name,
                                (int)rank, s);
            a = s;
            la = (size_t)(sp - s);
            b = sp + 1;
            lb = strlen(b);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(m, 0)) && cJSON_IsString(cJSON_GetArrayItem(m, 1))) {
            a = cJSON_GetArrayItem(m, 0)->valuestring;
            b = cJSON_GetArrayItem(m, 1)->valuestring;
            la = strlen(a);
            lb = strlen(b);
        } else {
            return harp_err(HARP_ERR_FORMAT, "%s: merge %d is neither \"a b\" nor [\"a\", \"b\"]",
                            t->name, (int)rank);
        }
        int32_t ia = tok_lookup(t, a, la), ib = tok_lookup(t, b, lb);
        char *cat = malloc(la + lb + 1);
        if (!cat) return harp_err(HARP_ERR_OOM, "%s: out of memory", t->name);
        memcpy(cat, a, la);
        memcpy(cat + la, b, lb);
        int32_t ic = tok_lookup(t, cat, la + lb);
        free(cat);
        if (ia < 0 || ib < 0 || ic < 0)
            return harp_err(HARP_ERR_FORMAT, "%s: merge %d refers to a piece missing from the vocab",
                            t->name, (int)rank);
        tok_pairmap_put(&t->merges, ia, ib, rank, ic);
        rank++;
    }
    return HARP_OK;
}

static int32_t find_id(const harp_tokenizer *t, const char *const *names) {
    for (; *names; names++) {
        int32_t id = tok_lookup(t, *names, strlen(*names));
        if (id >= 0) return id;
    }
    return -1;
}

/* Vocabulary pieces and added tokens (ids checked, dense enough to allocate). */
static harp_status load_vocab(harp_tokenizer *t, const cJSON *vocab, const cJSON *added) {
    int32_t max_id = -1, id = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        HARP_TRY(vocab_id(t, e, &id));
        if (id > max_id) max_id = id;
    }
    cJSON_ArrayForEach(e, added) {
        HARP_TRY(vocab_id(t, cJSON_GetObjectItemCaseSensitive(e, "id"), &id));
        if (!jstr(e, "content"))
            return harp_err(HARP_ERR_FORMAT, "%s: added token %d has no content", t->name, (int)id);
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) return harp_err(HARP_ERR_FORMAT, "%s: empty vocabulary", t->name);
    int n_entries = cJSON_GetArraySize(vocab) + cJSON_GetArraySize(added);
    if (max_id > 2 * n_entries + 256)
        return harp_err(HARP_ERR_FORMAT, "%s: vocabulary ids are sparse (max id %d for %d entries)",
                        t->name, (int)max_id, n_entries);
    HARP_TRY(tok_alloc_vocab(t, max_id + 1));
    cJSON_ArrayForEach(e, vocab) {
        vocab_id(t, e, &id);
        HARP_TRY(tok_set_piece(t, id, e->string, strlen(e->string)));
    }
    int na = cJSON_GetArraySize(added);
    if (na > 0) {
        t->added = harp_xcalloc((size_t)na, sizeof *t->added, "added tokens");
        if (!t->added) return HARP_ERR_OOM;
    }
    cJSON_ArrayForEach(e, added) {
        vocab_id(t, cJSON_GetObjectItemCaseSensitive(e, "id"), &id);
        const char *c = jstr(e, "content");
        if (!*c) continue;
        tok_added *a = &t->added[t->n_added++];
        a->content = harp_strdup(c);
        if (!a->content) return HARP_ERR_OOM;
        a->len = strlen(c);
        a->id = id;
        a->lstrip = (uint8_t)jbool(e, "lstrip", 0);
        a->rstrip = (uint8_t)jbool(e, "rstrip", 0);
        a->special = (uint8_t)jbool(e, "special", 0);
        if (!t->piece[id]) HARP_TRY(tok_set_piece(t, id, c, a->len));
        t->type[id] = a->special ? TOK_CONTROL : TOK_USER;
    }
    return HARP_OK;
}

/* BOS: the first special token of the post-processor's single template, else common names; EOS
 * by name. */
static void find_bos_eos(harp_tokenizer *t, const cJSON *root) {
    const cJSON *single =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "post_processor"), "single");
    const cJSON *e;
    cJSON_ArrayForEach(e, single) {
        const char *sid = jstr(cJSON_GetObjectItemCaseSensitive(e, "SpecialToken"), "id");
        if (sid) {
            t->bos_id = tok_lookup(t, sid, strlen(sid));
            break;
        }
        if (cJSON_GetObjectItemCaseSensitive(e, "Sequence")) break;
    }
    static const char *bos_names[] = {"<s>", "<|begin_of_text|>", NULL};
    static const char *eos_names[] = {"</s>", "<|end_of_text|>", "<|endoftext|>", NULL};
    if (t->bos_id < 0) t->bos_id = find_id(t, bos_names);
    t->eos_id = find_id(t, eos_names);
}

/* Segmentable unless byte-level or some piece holds "▁" (U+2581) after its start that does not
 * follow another "▁". */
static int is_segmentable(const harp_tokenizer *t) {
    if (t->pre == TOK_PRE_BYTELEVEL) return 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        const unsigned char *p = (const unsigned char *)t->piece[i];
        for (uint32_t k = 1; k + 3 <= t->piece_len[i]; k++) {
            int ws_here = p[k] == 0xE2 && p[k + 1] == 0x96 && p[k + 2] == 0x81;
            int ws_before = k >= 3 && p[k - 3] == 0xE2 && p[k - 2] == 0x96 && p[k - 1] == 0x81;
            if (ws_here && !ws_before) return 0;
        }
    }
    return 1;
}

static harp_status load_json(harp_tokenizer *t, const cJSON *root) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model))
        return harp_err(HARP_ERR_FORMAT, "%s: no \"model\" object (not a tokenizer.json?)", t->name);
    const char *mt = jstr(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (mt && strcmp(mt, "BPE") != 0)
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: model type \"%s\" is not BPE", t->name, mt);
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges))
        return harp_err(HARP_ERR_FORMAT, "%s: BPE model needs a \"vocab\" object and a \"merges\" array",
                        t->name);
    const char *cs = jstr(model, "continuing_subword_prefix"), *ew = jstr(model, "end_of_word_suffix");
    if ((cs && *cs) || (ew && *ew))
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: continuing_subword_prefix / end_of_word_suffix",
                        t->name);
    HARP_TRY(load_vocab(t, vocab, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")));
    HARP_TRY(tok_build_map(t));
    HARP_TRY(load_merges(t, merges));
    t->byte_fallback = jbool(model, "byte_fallback", 0);
    t->fuse_unk = jbool(model, "fuse_unk", 0);
    t->ignore_merges = jbool(model, "ignore_merges", 0);
    const char *unk = jstr(model, "unk_token");
    t->unk_id = unk ? tok_lookup(t, unk, strlen(unk)) : -1;
    if (t->unk_id >= 0 && t->type[t->unk_id] == TOK_NORMAL) t->type[t->unk_id] = TOK_UNKNOWN;
    tok_find_byte_pieces(t);
    if (t->byte_fallback)
        for (int b = 0; b < 256; b++)
            if (t->byte_id[b] >= 0) t->type[t->byte_id[b]] = TOK_BYTE;
    HARP_TRY(load_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer")));
    HARP_TRY(load_pretok(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer")));
    load_decoder(t, cJSON_GetObjectItemCaseSensitive(root, "decoder"));
    if (t->pre == TOK_PRE_BYTELEVEL) {
        t->kind = HARP_TOK_HF_BYTELEVEL;
        t->strip_lead = 0;
    }
    find_bos_eos(t, root);
    t->segmentable = is_segmentable(t);
    return HARP_OK;
}

harp_status tok_json_load(harp_tokenizer *t, const char *d, size_t n) {
    cJSON *root = cJSON_ParseWithLength(d, n);
    if (!root) {
        const char *ep = cJSON_GetErrorPtr();
        size_t off = (ep && ep >= d && ep <= d + n) ? (size_t)(ep - d) : 0;
        return harp_err(HARP_ERR_FORMAT, "%s: invalid JSON near byte %zu", t->name, off);
    }
    harp_status st = cJSON_IsObject(root)
                         ? load_json(t, root)
                         : harp_err(HARP_ERR_FORMAT, "%s: top level is not a JSON object", t->name);
    cJSON_Delete(root);
    return st;
}

/* ---- encoding ------------------------------------------------------------------------------ */

static int json_pair(const harp_tokenizer *t, tok_work *w, const tok_sym *a, const tok_sym *b,
                     double *score, int32_t *merged) {
    (void)w;
    int32_t rank;
    if (a->id < 0 || b->id < 0 || !tok_pairmap_get(&t->merges, a->id, b->id, &rank, merged)) return 0;
    *score = -(double)rank;
    return 1;
}

/* BPE over one word (w->text[a, b)). */
static harp_status bpe_word(const harp_tokenizer *t, tok_work *w, size_t a, size_t b, tok_ids *out) {
    if (a >= b) return HARP_OK;
    if (t->ignore_merges) {
        int32_t id = tok_lookup(t, w->text + a, b - a);
        if (id >= 0) return tok_ids_push(out, id);
    }
    HARP_TRY(tok_work_syms(w, (b - a) * 1 + 1));
    size_t n = 0;
    for (size_t i = a; i < b;) {
        size_t l = (size_t)tok_utf8_len((unsigned char)w->text[i]);
        if (i + l > b) l = b - i;
        int32_t id = tok_lookup(t, w->text + i, l);
        int all_bytes = 1;
        if (id < 0 && t->byte_fallback)
            for (size_t k = 0; k < l; k++) all_bytes &= t->byte_id[(unsigned char)w->text[i + k]] >= 0;
        if (id < 0 && t->byte_fallback && all_bytes) {
            for (size_t k = 0; k < l; k++)
                w->sym[n++] = (tok_sym){(int32_t)(i + k), 1, t->byte_id[(unsigned char)w->text[i + k]], 0, 0, 0};
        } else {
            if (id < 0 && t->fuse_unk && n && w->sym[n - 1].id == -1 && t->unk_id >= 0) {
                w->sym[n - 1].len += (int32_t)l;   /* consecutive unknowns fuse into one <unk> */
            } else {
                w->sym[n++] = (tok_sym){(int32_t)i, (int32_t)l, id, 0, 0, 0};
            }
        }
        i += l;
    }
    for (size_t i = 0; i < n; i++) {
        w->sym[i].prev = (int32_t)i - 1;
        w->sym[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    w->n_sym = n;
    HARP_TRY(tok_bpe_merge(t, w, json_pair));
    for (int32_t i = 0; n && i >= 0; i = w->sym[i].next) {
        int32_t id = w->sym[i].id >= 0 ? w->sym[i].id : t->unk_id;
        if (id < 0)
            return harp_err(HARP_ERR_FORMAT, "%s: text has a character outside the vocabulary and "
                            "the model has no unk token", t->name);
        HARP_TRY(tok_ids_push(out, id));
    }
    return HARP_OK;
}

static int ws_at(const char *s, size_t i, size_t n) {
    return i + 3 <= n && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 &&
           (unsigned char)s[i + 2] == 0x81;
}

/* Llama-2 style segment: Prepend/Replace (or Metaspace), then BPE per word. */
static harp_status encode_meta(const harp_tokenizer *t, const char *s, size_t n, int first,
                               tok_ids *out) {
    if (n == 0) return HARP_OK;
    tok_buf b = {0};
    harp_status st = HARP_OK;
    int prepend = t->prepend == 1 || (t->prepend == 2 && first);
    if (prepend) {
        /* Metaspace only prepends when the (space-replaced) text does not start with '▁'. */
        int starts_ws = t->pre == TOK_PRE_METASPACE && (s[0] == ' ' || ws_at(s, 0, n));
        if (!starts_ws) st = tok_buf_put(&b, "\xE2\x96\x81", 3);
    }
    for (size_t i = 0; i < n && st == HARP_OK; i++)
        st = (s[i] == ' ' && t->replace_space) ? tok_buf_put(&b, "\xE2\x96\x81", 3) : tok_buf_put(&b, s + i, 1);
    tok_work w = {0};
    w.text = b.v;
    int split = t->pre == TOK_PRE_METASPACE ? t->meta_split : 0;
    if (st == HARP_OK) {
        size_t a = 0;
        int prev_ws = 1;
        for (size_t i = 0; i < b.n && st == HARP_OK;) {
            int ws = ws_at(b.v, i, b.n);
            if (ws && i > a && (split || (t->segmentable && !prev_ws))) {
                st = bpe_word(t, &w, a, i, out);
                a = i;
            }
            prev_ws = ws;
            i += ws ? 3 : 1;
        }
        if (st == HARP_OK) st = bpe_word(t, &w, a, b.n, out);
    }
    tok_work_free(&w);
    free(b.v);
    return st;
}

static harp_status bl_word(const harp_tokenizer *t, tok_work *w, tok_buf *m, const char *s, size_t n,
                           tok_ids *out) {
    m->n = 0;
    for (size_t i = 0; i < n; i++) {
        char c[4];
        size_t l = bytelevel_char((unsigned char)s[i], c);
        HARP_TRY(tok_buf_put(m, c, l));
    }
    w->text = m->v;
    return bpe_word(t, w, 0, m->n, out);
}

/* Byte-level segment: optional prefix space, regex split (matches and gaps are both words). */
static harp_status encode_bytelevel(const harp_tokenizer *t, const char *s0, size_t n0, tok_ids *out) {
    if (n0 == 0) return HARP_OK;
    tok_buf pre = {0}, m = {0};
    tok_work w = {0};
    const char *s = s0;
    size_t n = n0;
    harp_status st = HARP_OK;
    if (t->bl_prefix_space && s0[0] != ' ') {
        st = tok_buf_put(&pre, " ", 1);
        if (st == HARP_OK) st = tok_buf_put(&pre, s0, n0);
        s = pre.v;
        n = pre.n;
    }
    if (st == HARP_OK && !t->re) {
        st = bl_word(t, &w, &m, s, n, out);
    } else if (st == HARP_OK) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern((pcre2_code *)t->re, NULL);
        if (!md) st = harp_err(HARP_ERR_OOM, "%s: out of memory for regex matching", t->name);
        size_t pos = 0, gap = 0;
        while (st == HARP_OK && pos < n) {
            int rc = pcre2_match((pcre2_code *)t->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                st = harp_err(HARP_ERR_INTERNAL, "%s: regex matching failed (%d)", t->name, rc);
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            if (me == ms) {   /* empty match: step one character */
                pos = ms + (size_t)tok_utf8_len((unsigned char)s[ms]);
                continue;
            }
            if (ms > gap) st = bl_word(t, &w, &m, s + gap, ms - gap, out);
            if (st == HARP_OK) st = bl_word(t, &w, &m, s + ms, me - ms, out);
            pos = gap = me;
        }
        if (st == HARP_OK && gap < n) st = bl_word(t, &w, &m, s + gap, n - gap, out);
        pcre2_match_data_free(md);
    }
    w.text = NULL;
    tok_work_free(&w);
    free(m.v);
    free(pre.v);
    return st;
}

static int is_space_byte(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

harp_status tok_json_encode(const harp_tokenizer *t, const char *text, size_t len, tok_ids *out) {
    if (!harp_utf8_valid(text, len))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: text is not valid UTF-8", t->name);
    uint8_t lead[256] = {0};   /* first bytes of added tokens: skip the scan elsewhere */
    for (int k = 0; k < t->n_added; k++) lead[(unsigned char)t->added[k].content[0]] = 1;
    size_t seg = 0, i = 0;
    int first = 1;
    while (i <= len) {
        int best = -1;
        size_t best_len = 0;
        for (int k = 0; k < t->n_added && i < len && lead[(unsigned char)text[i]]; k++)
            if (t->added[k].len > best_len && t->added[k].len <= len - i &&
                memcmp(text + i, t->added[k].content, t->added[k].len) == 0) {
                best = k;
                best_len = t->added[k].len;
            }
        if (best < 0 && i < len) {
            i++;
            continue;
        }
        size_t end = i;
        if (best >= 0 && t->added[best].lstrip)
            while (end > seg && is_space_byte(text[end - 1])) end--;
        harp_status st = t->kind == HARP_TOK_HF_BYTELEVEL ? encode_bytelevel(t, text + seg, end - seg, out)
                                                          : encode_meta(t, text + seg, end - seg, first, out);
        if (st != HARP_OK) return st;
        if (best < 0) break;
        HARP_TRY(tok_ids_push(out, t->added[best].id));
        i += best_len;
        if (t->added[best].rstrip)
            while (i < len && is_space_byte(text[i])) i++;
        seg = i;
        first = 0;
    }
    return HARP_OK;
}
