/* TEMPORARY stand-ins until the tokenizer module (branch tok) is merged; removed on merge. */
#include "core/core.h"
#include "model/model_internal.h"

harp_status harp_tokenizer_open(const char *path, int vocab_hint, harp_tokenizer **out) {
    (void)vocab_hint;
    *out = NULL;
    return harp_err(HARP_ERR_UNSUPPORTED, "%s: tokenizers are not built in yet", path);
}
harp_status harp_tokenizer_open_for_model(const char *model_path, int vocab_hint, harp_tokenizer **out) {
    return harp_tokenizer_open(model_path, vocab_hint, out);
}
void harp_tokenizer_free(harp_tokenizer *t) { (void)t; }
harp_tok_kind harp_tokenizer_kind(const harp_tokenizer *t) { (void)t; return HARP_TOK_SPM; }
const char *harp_tokenizer_kind_name(harp_tok_kind k) { (void)k; return "none"; }
int32_t harp_tokenizer_bos(const harp_tokenizer *t) { (void)t; return 1; }
int32_t harp_tokenizer_eos(const harp_tokenizer *t) { (void)t; return 2; }
harp_status harp_tokenize(const harp_tokenizer *t, const char *text, size_t len, int add_bos, int32_t **ids,
                          size_t *n_ids) {
    (void)t; (void)text; (void)len; (void)add_bos; *ids = NULL; *n_ids = 0;
    return harp_err(HARP_ERR_UNSUPPORTED, "tokenizer: not built in yet");
}
harp_status harp_detokenize(const harp_tokenizer *t, const int32_t *ids, size_t n_ids, char **text, size_t *len) {
    (void)t; (void)ids; (void)n_ids; *text = NULL; *len = 0;
    return harp_err(HARP_ERR_UNSUPPORTED, "tokenizer: not built in yet");
}
