/* libFuzzer: config.json parsing and validation. */
#include "io/hf_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    harp_set_log_level(HARP_LOG_NONE);
    harp_model_config c;
    harp_hf_config_parse((const char *)data, size, "fuzz", &c);
    return 0;
}
