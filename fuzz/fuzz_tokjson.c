/* libFuzzer target: tokenizer.json parsing (vocab, merges, added tokens, pipelines incl. PCRE2 regexes), then encode/decode of a
 * fixed text and of the input's own bytes with whatever loaded. */
#include <stdlib.h>
#include <string.h>

#include "harp.h"
#include "tok/tok_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(harp_tokenizer *t, const uint8_t *data, size_t size) {
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    harp_set_log_level(HARP_LOG_NONE);
    harp_tokenizer *t = NULL;
    if (harp_tokenizer_open_mem(data, size, "fuzz/tokenizer.json", 0, &t) == HARP_OK) {
        exercise(t, data, size);
        harp_tokenizer_free(t);
    }
    return 0;
}
