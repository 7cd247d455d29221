/* Row-major E8P12 codes <-> the QuIP# CUDA kernel's 64-bit-word layout (algorithms.md §5.2.3). */
#include <string.h>

#include "quant/e8p.h"

static int32_t round_up(int32_t v, int32_t q) { return (v + q - 1) / q * q; }

size_t e8p_gpu_words(int32_t m, int32_t ncode) {
    return (size_t)round_up(m, 16) * (size_t)round_up(ncode, 8) / 4;
}

static size_t word_index(int32_t r, int32_t k, int32_t nc8) {
    return (((size_t)(r / 16) * (size_t)(nc8 / 8) + (size_t)(k / 8)) * 8 + (size_t)((r % 16) / 2)) * 4 +
           (size_t)((k % 8) / 2);
}

void e8p_pack_gpu(const uint16_t *codes, int32_t m, int32_t ncode, uint64_t *words) {
    const int32_t m16 = round_up(m, 16), nc8 = round_up(ncode, 8);
    memset(words, 0, e8p_gpu_words(m, ncode) * sizeof(uint64_t));
    for (int32_t r = 0; r < m16; r++)
        for (int32_t k = 0; k < nc8; k++) {
            uint16_t c = (r < m && k < ncode) ? codes[(size_t)r * ncode + k] : 0;
            unsigned slot = (unsigned)(r % 2 + 2 * (k % 2));
            uint64_t w = (uint64_t)(c >> 8) << (8 * slot);
            for (unsigned j = 0; j < 8; j++) w |= (uint64_t)((c >> j) & 1u) << (32 + 4 * j + slot);
            words[word_index(r, k, nc8)] |= w;
        }
}

void e8p_unpack_gpu(const uint64_t *words, int32_t m, int32_t ncode, uint16_t *codes) {
    const int32_t nc8 = round_up(ncode, 8);
    for (int32_t r = 0; r < m; r++)
        for (int32_t k = 0; k < ncode; k++) {
            uint64_t w = words[word_index(r, k, nc8)];
            unsigned slot = (unsigned)(r % 2 + 2 * (k % 2));
            unsigned c = (unsigned)((w >> (8 * slot)) & 255u) << 8;
            for (unsigned j = 0; j < 8; j++) c |= (unsigned)((w >> (32 + 4 * j + slot)) & 1u) << j;
            codes[(size_t)r * ncode + k] = (uint16_t)c;
        }
}
