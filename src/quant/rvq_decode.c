/* Residual VQ decoders (algorithms.md §5.3): value = dec(c0) + dec(c1) / r. The division (not a
 * multiply by 1/r) and the order of the two terms are part of the format; the encoder and the
 * dense dequantizer call these so that they agree bit for bit. */
#include "quant/e8p.h"

void rvq4_decode(uint16_t c0, uint16_t c1, float resid_scale, float out[8]) {
    float a[8], b[8];
    e8p_decode(c0, a);
    e8p_decode(c1, b);
    for (int i = 0; i < 8; i++) out[i] = a[i] + b[i] / resid_scale;
}

void rvq3_decode(uint16_t c0, uint8_t c1, float resid_scale, float out[8]) {
    float a[8], b[8];
    e8p_decode(c0, a);
    e81b_decode(c1, b);
    for (int i = 0; i < 8; i++) out[i] = a[i] + b[i] / resid_scale;
}
