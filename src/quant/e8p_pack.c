/* Row-major E8P12 codes <-> the QuIP# CUDA kernel's 64-bit-word layout (algorithms.md §5.2.3). */
#include <string.h>

#include "quant/e8p.h"
#include "quant/qblocks.h"

static int32_t round_up(int32_t v, int32_t q) { return (v + q - 1) / q * q; }

size_t e8p_gpu_words(int32_t m, int32_t ncode) {
    return (size_t)round_up(m, HARP_E8P_GPU_TILE_ROWS) * (size_t)round_up(ncode, HARP_E8P_GPU_TILE_CODES) /
           HARP_E8P_GPU_SLOTS;
}

void e8p_pack_gpu(const uint16_t *codes, int32_t m, int32_t ncode, uint64_t *words) {
    const int32_t m16 = round_up(m, HARP_E8P_GPU_TILE_ROWS), nc8 = round_up(ncode, HARP_E8P_GPU_TILE_CODES);
    memset(words, 0, e8p_gpu_words(m, ncode) * sizeof(uint64_t));
    for (int32_t r = 0; r < m16; r++)
        for (int32_t k = 0; k < nc8; k++) {
            uint16_t c = (r < m && k < ncode) ? codes[(size_t)r * ncode + k] : 0;
            unsigned slot = harp_e8p_gpu_slot(r, k);
            uint64_t w = (uint64_t)(c >> 8) << (8 * slot);
            for (unsigned j = 0; j < 8; j++) w |= (uint64_t)((c >> j) & 1u) << (32 + 4 * j + slot);
            words[harp_e8p_gpu_word(r, k, nc8)] |= w;
        }
}

void e8p_unpack_gpu(const uint64_t *words, int32_t m, int32_t ncode, uint16_t *codes) {
    const int32_t nc8 = round_up(ncode, HARP_E8P_GPU_TILE_CODES);
    for (int32_t r = 0; r < m; r++)
        for (int32_t k = 0; k < ncode; k++) {
            uint64_t w = words[harp_e8p_gpu_word(r, k, nc8)];
            unsigned slot = harp_e8p_gpu_slot(r, k);
            unsigned c = (unsigned)((w >> (8 * slot)) & 255u) << 8;
            for (unsigned j = 0; j < 8; j++) c |= (unsigned)((w >> (32 + 4 * j + slot)) & 1u) << j;
            codes[(size_t)r * ncode + k] = (uint16_t)c;
        }
}
