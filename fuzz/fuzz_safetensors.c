/* libFuzzer: safetensors header parsing + fp32 conversion of every accepted tensor. */
#include <stdlib.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    harp_set_log_level(HARP_LOG_NONE);
    harp_st_file f;
    if (harp_st_parse(data, size, "fuzz", &f) != HARP_OK) return 0;
    for (int i = 0; i < f.n_tensors; i++) {
        if (f.tensors[i].numel > (1 << 20)) continue;
        float *buf = malloc((size_t)(f.tensors[i].numel + 1) * sizeof(float));
        if (buf) harp_st_to_f32(&f, &f.tensors[i], buf);
        free(buf);
    }
    harp_st_close(&f);
    return 0;
}
