/* libFuzzer: llama2.c header parsing and layout-vs-size validation. */
#include "io/llama2c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    harp_set_log_level(HARP_LOG_NONE);
    harp_model_config c;
    harp_l2c_layout l;
    harp_l2c_parse(data, size, "fuzz", &c, &l);
    return 0;
}
