/* Codebook quantizers of one 8-vector for the QuIP# path: E8P12 (2 bits), E8P + E81B residual
 * (3 bits) and two-stage E8P (4 bits), §5.3, on quant/e8p.h's tables. Decoded values use the same
 * order of operations as rvq_decode.c (dec(c0) + dec(c1)/r), in fp64. */
#include <math.h>

#include "harp/quant.h"
#include "quant/e8p.h"

double harp_codebook_opt_scale(harp_codebook cb) {
    switch (cb) {
    case HARP_CODEBOOK_E8P12: return 1.03;
    case HARP_CODEBOOK_E8P12_RVQ3B: return 0.98;
    case HARP_CODEBOOK_E8P12_RVQ4B: return 1.03;
    default: return 1.0;
    }
}

double harp_codebook_opt_resid_scale(harp_codebook cb) {
    switch (cb) {
    case HARP_CODEBOOK_E8P12_RVQ3B: return 2.04;
    case HARP_CODEBOOK_E8P12_RVQ4B: return 3.45;
    default: return 1.0;
    }
}

void harp_e81b_decode(uint8_t idx, double out[8]) {
    const float *t = e81b_codebook() + 8 * idx;
    for (int i = 0; i < 8; i++) out[i] = t[i];
}

/* Exhaustive over the 256 entries (ties to the lower index). */
uint8_t harp_e81b_encode(const double x[8], double out[8]) {
    const float *bk = e81b_codebook();
    int best = 0;
    double bd = INFINITY;
    for (int c = 0; c < E81B_NCODES; c++) {
        double d = 0;
        for (int i = 0; i < 8; i++) {
            double t = x[i] - (double)bk[8 * c + i];
            d += t * t;
        }
        if (d < bd) bd = d, best = c;
    }
    if (out) harp_e81b_decode((uint8_t)best, out);
    return (uint8_t)best;
}

void harp_cb_decode8(harp_codebook cb, double r, uint16_t c1, uint16_t c2, double out[8]) {
    float a[8];
    double b[8];
    e8p_decode(c1, a);
    if (cb == HARP_CODEBOOK_E8P12_RVQ4B) {
        float f[8];
        e8p_decode(c2, f);
        for (int i = 0; i < 8; i++) b[i] = f[i];
    } else if (cb == HARP_CODEBOOK_E8P12_RVQ3B) {
        harp_e81b_decode((uint8_t)c2, b);
    } else {
        for (int i = 0; i < 8; i++) out[i] = a[i];
        return;
    }
    for (int i = 0; i < 8; i++) out[i] = (double)a[i] + b[i] / r;
}

uint16_t harp_cb_quantize8(harp_codebook cb, double r, const double x[8], double out[8], uint16_t *code2) {
    double d0[8], res[8], d1[8];
    uint16_t c0 = harp_e8p_encode(x, d0), c1 = 0;
    if (cb == HARP_CODEBOOK_E8P12_RVQ3B || cb == HARP_CODEBOOK_E8P12_RVQ4B) {
        for (int i = 0; i < 8; i++) res[i] = (x[i] - d0[i]) * r;
        c1 = cb == HARP_CODEBOOK_E8P12_RVQ4B ? harp_e8p_encode(res, d1) : harp_e81b_encode(res, d1);
        for (int i = 0; i < 8; i++) d0[i] += d1[i] / r;
    }
    if (out)
        for (int i = 0; i < 8; i++) out[i] = d0[i];
    if (code2) *code2 = c1;
    return c0;
}
