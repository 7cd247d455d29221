/* libFuzzer target: a model folder through the public API -- config.json (with or without a
 * quantization_config) and model.safetensors written from the input (split at its first NUL),
 * harp_model_open, and, when the folder loads, two tokens through the forward pass so that codes,
 * scales and rotation blobs that disagree with the config are exercised, not just parsed. */
#include "fuzz_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *cfg, *st;
    size_t ncfg, nst;
    fuzz_split(data, size, &cfg, &ncfg, &st, &nst);
    fuzz_put("config.json", cfg, ncfg);
    fuzz_put("model.safetensors", st ? st : (const uint8_t *)"", nst);
    harp_model_params mp = harp_model_default_params();
    mp.load_tokenizer = 0;
    harp_model *m = NULL;
    if (harp_model_open(fuzz_dir(), &mp, &m) != HARP_OK) return 0;
    harp_model_info mi;
    harp_ctx *c = NULL;
    if (harp_model_get_info(m, &mi) == HARP_OK && mi.n_params < (1 << 22) && harp_ctx_create(m, 4, &c) == HARP_OK) {
        int32_t tok[2] = {0, mi.vocab_size - 1};
        float *logits = malloc(sizeof(float) * (size_t)mi.vocab_size);
        if (logits) harp_ctx_eval(c, tok, 2, logits, 0);
        free(logits);
        harp_ctx_free(c);
    }
    harp_model_free(m);
    return 0;
}
