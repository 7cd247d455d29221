/* libFuzzer target: tokenizer.json parsing (vocab, merges, added tokens, pipelines incl. PCRE2 regexes), then encode/decode of a
 * fixed text and of the input's own bytes with whatever loaded. */
#include <stdlib.h>
#include <string.h>

#include "harp.h"
#include "tok/tok_internal.h"
#include "fuzz_tok_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    harp_set_log_level(HARP_LOG_NONE);
    fuzz_tok_load(data, size, "fuzz/tokenizer.json");
    return 0;
}
