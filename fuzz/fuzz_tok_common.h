/* Shared by the tokenizer fuzzers: encode/decode a fixed tricky text and the input's own bytes with
 * whatever tokenizer loaded, and look up a few pieces (including out-of-range ids). */
#ifndef HARP_FUZZ_TOK_COMMON_H
#define HARP_FUZZ_TOK_COMMON_H
#include "harp.h"

static inline void fuzz_tok_exercise(harp_tokenizer *t, const uint8_t *data, size_t size) {
    static const char text[] = "Hello  world\n\xE4\xB8\xAD \xF0\x9F\x98\x80 <s> \xFF\x00 x";
    const char *texts[2] = {text, (const char *)data};
    size_t lens[2] = {sizeof text - 1, size < 256 ? size : 256};
    for (int k = 0; k < 2; k++) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (harp_tokenize(t, texts[k], lens[k], k, &ids, &n) == HARP_OK) {
            char *s = NULL;
            if (harp_detokenize(t, ids, n, &s, NULL) == HARP_OK) harp_free(s);
            harp_free(ids);
        }
    }
    for (int32_t id = -1; id < 4; id++) (void)harp_tokenizer_piece(t, id);
}

/* The input as a tokenizer file named `name` (its extension picks the parser); exercised when it loads. */
static inline void fuzz_tok_load(const uint8_t *data, size_t size, const char *name) {
    harp_tokenizer *t = NULL;
    if (harp_tokenizer_open_mem(data, size, name, 0, &t) != HARP_OK) return;
    fuzz_tok_exercise(t, data, size);
    harp_tokenizer_free(t);
}

#endif
