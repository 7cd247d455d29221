/* libFuzzer target: Hessian layer files (docs/format/hessian.md) through harp_hess_layer_load.
 * The file ends in an FNV-1a checksum that random bytes never match, so when the input's first
 * byte is odd the target appends the right checksum of the rest: both the checksum gate and the
 * parser behind it get fuzzed. */
#include "fuzz_files.h"
#include "core/core.h"
#include "harp/calib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    uint8_t *buf = malloc(n + 8);
    if (!buf) return 0;
    memcpy(buf, body, n);
    if (data[0] & 1) {
        uint64_t h = harp_fnv1a64(body, n, 0);
        memcpy(buf + n, &h, 8);
        n += 8;
    }
    fuzz_put("layer_000.hess", buf, n);
    free(buf);
    harp_hess_layer *h = NULL;
    if (harp_hess_layer_load(fuzz_dir(), 0, NULL, &h) == HARP_OK) {
        for (int w = 0; w < HARP_HESS_COUNT; w++) {
            int k = 0;
            const double *H = harp_hess_matrix(h, w, &k);
            const double *mu = harp_hess_mean(h, w);
            volatile double s = (H && k > 0 ? H[(size_t)k * (size_t)k - 1] : 0) + (mu && k > 0 ? mu[k - 1] : 0);
            (void)s;
        }
        harp_hess_layer_free(h);
    }
    return 0;
}
