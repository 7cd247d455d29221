// One code of quant/aq.h's little-endian bit stream on the device (harp_aq_code_get's definition):
// code i of a group's bytes c, b bits wide, sign-extended when symmetric. Shared by the quantizer
// (dec_aq.cu) and the decode attention that reads a quantized KV cache in place (cuda_kernels.cu).
#ifndef HARP_CUDA_AQ_CODE_CUH
#define HARP_CUDA_AQ_CODE_CUH

#include <stdint.h>

__device__ __forceinline__ int aq_code_get(const uint8_t *c, int i, int bits, int sym) {
    const int o = i * bits;
    unsigned v = c[o >> 3] >> (o & 7);
    if ((o & 7) + bits > 8) v |= (unsigned)c[(o >> 3) + 1] << (8 - (o & 7));
    v &= (1u << bits) - 1;
    return sym && v >> (bits - 1) ? (int)v - (1 << bits) : (int)v;
}

#endif
