/* A hand-built tokenizer.model exercising what the Llama files do not: user-defined pieces
 * (matched first, never merged), remove_extra_whitespaces (the proto default), no byte fallback
 * (unknown characters -> <unk>), an unused piece, and non-BPE model types being refused. */
#include "core/core.h"
#include "harp.h"
#include "test_util.h"
#include "tok_test.h"
#include "tok/tok_internal.h"

typedef struct { unsigned char b[4096]; size_t n; } buf;

static void put(buf *o, const void *p, size_t n) { memcpy(o->b + o->n, p, n); o->n += n; }
static void varint(buf *o, uint64_t v) {
    do {
        unsigned char c = (unsigned char)(v & 0x7F);
        v >>= 7;
        if (v) c |= 0x80;
        put(o, &c, 1);
    } while (v);
}
static void field_bytes(buf *o, int f, const void *p, size_t n) {
    varint(o, (uint64_t)f << 3 | 2);
    varint(o, n);
    put(o, p, n);
}
static void piece(buf *o, const char *s, float score, int type) {
    buf p = {{0}, 0};
    field_bytes(&p, 1, s, strlen(s));
    varint(&p, 2 << 3 | 5);
    put(&p, &score, 4);
    varint(&p, 3 << 3 | 0);
    varint(&p, (uint64_t)type);
    field_bytes(o, 1, p.b, p.n);
}

static buf model(int model_type) {
    buf o = {{0}, 0};
    piece(&o, "<unk>", 0, 2);                /* 0 */
    piece(&o, "<s>", 0, 3);                  /* 1 */
    piece(&o, "</s>", 0, 3);                 /* 2 */
    piece(&o, "\xE2\x96\x81", -1, 1);        /* 3 ▁ */
    piece(&o, "a", -2, 1);                   /* 4 */
    piece(&o, "b", -3, 1);                   /* 5 */
    piece(&o, "\xE2\x96\x81" "a", -0.5f, 1); /* 6 ▁a */
    piece(&o, "ab", -0.7f, 1);               /* 7 */
    piece(&o, "<sep>", 0, 4);                /* 8 user-defined */
    piece(&o, "ba", -0.1f, 5);               /* 9 unused: merged, then split back */
    buf tr = {{0}, 0};
    varint(&tr, 3 << 3 | 0);
    varint(&tr, (uint64_t)model_type);
    field_bytes(&o, 2, tr.b, tr.n);
    buf nm = {{0}, 0};
    field_bytes(&nm, 1, "identity", 8);
    field_bytes(&o, 3, nm.b, nm.n);
    return o;
}

static void expect(harp_tokenizer *t, const char *text, const int32_t *want, size_t nw) {
    size_t n;
    harp_free(tok_expect_ids(t, text, want, nw, &n));
}

int main(void) {
    buf m = model(2);
    harp_tokenizer *t = NULL;
    CHECK_OK(harp_tokenizer_open_mem(m.b, m.n, "mini/tokenizer.model", 0, &t));
    if (t) {
        CHECK(t->remove_extra_ws == 1 && t->add_dummy_prefix == 1 && !t->byte_fallback);
        /* "▁a▁<sep>ab": spaces collapsed and trailing dropped; <sep> frozen */
        static const int32_t a[] = {6, 3, 8, 7};
        expect(t, "  a   <sep>ab  ", a, 4);
        /* ▁ b a: "ba" (unused, best score) merges first and is split back to b a; "▁" alone */
        static const int32_t b[] = {3, 5, 4};
        expect(t, "ba", b, 3);
        /* unknown character -> <unk> */
        static const int32_t c[] = {6, 0, 5};
        expect(t, "axb", c, 3);
        static const int32_t none[1] = {0};
        expect(t, "   ", none, 0);   /* only spaces: nothing once they are removed */
        char *s;
        int32_t ids[] = {1, 6, 3, 8, 7, 2};
        CHECK_OK(harp_detokenize(t, ids, 6, &s, NULL));
        CHECK_MSG(strcmp(s, "a <sep>ab") == 0, "decoded \"%s\"", s);
        harp_free(s);
        harp_tokenizer_free(t);
    }
    buf u = model(1);
    CHECK(harp_tokenizer_open_mem(u.b, u.n, "uni/tokenizer.model", 0, &t) == HARP_ERR_UNSUPPORTED);
    CHECK(strstr(harp_last_error(), "uni/tokenizer.model: SentencePiece model type 1 is not BPE") != NULL);
    return t_done();
}
