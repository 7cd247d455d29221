/* placeholder until the tokenizer.json loader lands */
#include "core/core.h"
#include "tok/tok_internal.h"
harp_status tok_json_load(harp_tokenizer *t, const char *d, size_t n) {
    (void)d; (void)n;
    return harp_err(HARP_ERR_UNSUPPORTED, "%s: tokenizer.json not supported yet", t->name);
}
harp_status tok_json_encode(const harp_tokenizer *t, const char *text, size_t len, tok_ids *out) {
    (void)text; (void)len; (void)out;
    return harp_err(HARP_ERR_UNSUPPORTED, "%s: tokenizer.json not supported yet", t->name);
}
void tok_json_free_regex(void *re) { (void)re; }
