/* The fit engine's tiled fp32 transpose against its scalar twin at awkward sizes (exact: bit-identical). */
#include <stdlib.h>
#include <string.h>

#include "harpfit/hf_internal.h"
#include "test_util.h"

int main(void) {
    const int64_t sz[][2] = {{1, 1}, {1, 9}, {9, 1}, {7, 9}, {8, 8}, {16, 24}, {17, 33}, {64, 172}, {43, 1536}, {1024, 512}};
    harp_rng g;
    harp_rng_seed(&g, 3);
    for (size_t k = 0; k < sizeof sz / sizeof sz[0]; k++) {
        int64_t r = sz[k][0], c = sz[k][1];
        float *a = malloc(sizeof(float) * (size_t)(r * c)), *b = malloc(sizeof(float) * (size_t)(r * c)),
              *d = malloc(sizeof(float) * (size_t)(r * c));
        for (int64_t i = 0; i < r * c; i++) a[i] = (float)harp_rng_normal(&g);
        memset(b, 0xff, sizeof(float) * (size_t)(r * c));
        hf_transpose_f32(a, b, r, c);
        hf_transpose_ref_f32(a, d, r, c);
        CHECK_MSG(memcmp(b, d, sizeof(float) * (size_t)(r * c)) == 0, "transpose %lld×%lld differs from the scalar twin",
                  (long long)r, (long long)c);
        int ok = 1;
        for (int64_t i = 0; i < r && ok; i++)
            for (int64_t j = 0; j < c && ok; j++) ok = d[j * r + i] == a[i * c + j];
        CHECK_MSG(ok, "scalar transpose %lld×%lld wrong", (long long)r, (long long)c);
        free(a), free(b), free(d);
    }
    return t_done();
}
