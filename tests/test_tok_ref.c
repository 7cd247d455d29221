/* The fast encode path (heap-ordered merges, text split into words that merge independently)
 * against the plain one (llama2.c-style rescans over the whole text, no word split): identical
 * ids on random slices of WikiText-2 and on random byte strings, for every tokenizer kind. */
#include "core/core.h"
#include "harp.h"
#include "test_util.h"
#include "tok/tok_internal.h"

static void compare(harp_tokenizer *t, const char *text, size_t len, const char *what) {
    int32_t *a, *b;
    size_t na, nb;
    int seg = t->segmentable;
    harp_status sa = harp_tokenize(t, text, len, 0, &a, &na);
    t->ref_merge = 1;
    t->segmentable = 0;
    harp_status sb = harp_tokenize(t, text, len, 0, &b, &nb);
    t->ref_merge = 0;
    t->segmentable = seg;
    CHECK(sa == sb);
    if (sa == HARP_OK && sb == HARP_OK) {
        CHECK_MSG(na == nb && memcmp(a, b, na * sizeof *a) == 0, "%s: fast/ref differ (%zu vs %zu ids)",
                  what, na, nb);
        harp_free(a);
        harp_free(b);
    }
}

int main(void) {
    const char *files[] = {"models/llama2-tokenizer/tokenizer.model", "models/llama2-tokenizer/tokenizer.bin",
                           "models/ref-llama/tokenizer.model", "models/ref-llama/tokenizer.json",
                           "models/stories260K/tok512.bin"};
    char *wiki;
    size_t wn;
    CHECK_OK(harp_read_file(t_shared("data/wikitext-2-raw/wiki.test.raw"), &wiki, &wn));
    harp_rng r;
    harp_rng_seed(&r, 1234);
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        harp_tokenizer *t = NULL;
        CHECK_OK(harp_tokenizer_open(t_shared(files[f]), 0, &t));
        if (!t) continue;
        for (int k = 0; k < 12; k++) {
            /* random slices (cut at character boundaries), 1..600 bytes */
            size_t len = 1 + harp_rng_u64(&r) % 600, off = harp_rng_u64(&r) % (wn - len);
            while (off > 0 && ((unsigned char)wiki[off] & 0xC0) == 0x80) off--;
            while (off + len < wn && ((unsigned char)wiki[off + len] & 0xC0) == 0x80) len++;
            compare(t, wiki + off, len, files[f]);
        }
        for (int k = 0; k < 12; k++) {
            /* spaces, letters and multi-byte characters mixed; arbitrary bytes where allowed */
            static const char *alpha[] = {" ", "  ", "a", "e", "th", "\xC3\xA9", "\xE4\xB8\xAD", "\n", "1",
                                          "\xF0\x9F\x98\x80", "ing", "\xE2\x96\x81"};
            char buf[512];
            size_t n = 0;
            while (n < 400) {
                const char *s = alpha[harp_rng_u64(&r) % 12];
                memcpy(buf + n, s, strlen(s));
                n += strlen(s);
            }
            compare(t, buf, n, files[f]);
        }
        harp_tokenizer_free(t);
    }
    free(wiki);
    return t_done();
}
