/* libFuzzer target: the rotation blob deserialiser (docs/format/rotation.md). Any input must either be
 * rejected with an error or give a rotation that applies without faults and round-trips. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harp/rotate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int quiet;
    if (!quiet) {
        harp_set_log_level(HARP_LOG_NONE);
        quiet = 1;
    }
    harp_rot *r = NULL;
    if (harp_rot_deserialize(data, size, "fuzz", &r) != HARP_OK) return 0;
    int64_t n = harp_rot_dim(r);
    if (n <= 4096) {
        float *x = calloc((size_t)n * 2, sizeof(float));
        if (x) {
            for (int64_t i = 0; i < 2 * n; i++) x[i] = (float)(i % 7) - 3.0f;
            harp_rot_apply(r, x, 2, n, 0);
            harp_rot_apply(r, x, 2, n, 1);
            free(x);
        }
    }
    uint8_t *b = NULL;
    size_t s = 0;
    if (harp_rot_serialize(r, &b, &s) == HARP_OK) {
        if (s != size || memcmp(b, data, s)) abort();   /* a blob that loads must re-serialise identically */
        free(b);
    }
    harp_rot_destroy(r);
    return 0;
}
