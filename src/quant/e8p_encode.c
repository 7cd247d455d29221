/* Exact E8P12 nearest-codeword encoder (algorithms.md §5.2.2). For each ±¼ coset and each of the 256
 * abs vectors the best sign pattern is the sign of y, repaired for the lattice parity by flipping the
 * cheapest coordinate; the code bytes are then built so that quant/e8p.h's decoder returns exactly
 * that point. 2 × 256 × 8 MACs per vector; equal to brute force (tests/test_quant_e8p.c). */
#include <math.h>

#include "harp/quant.h"
#include "quant/e8p.h"

uint16_t harp_e8p_encode(const double x[8], double out[8]) {
    const uint8_t *A2 = e8p_abs2(), *asum = e8p_abs_sum(), *n2x4 = e8p_abs_norm2x4();
    double best = INFINITY;
    int best_p = 0, best_a = 0;
    unsigned best_t = 0;
    for (int p = 0; p < 2; p++) {
        const double shift = p ? -0.25 : 0.25;
        double ay[8], yy = 0;
        unsigned neg = 0;
        for (int i = 0; i < 8; i++) {
            double y = x[i] - shift;
            neg |= (unsigned)(y < 0) << i;
            ay[i] = fabs(y);
            yy += y * y;
        }
        const int nneg = __builtin_popcount(neg);
        for (int a = 0; a < E8P_NABS; a++) {
            const uint8_t *v = A2 + 8 * a;
            double dot = 0, mn = INFINITY;
            int imn = 0;
            for (int i = 0; i < 8; i++) {
                double t = 0.5 * v[i] * ay[i];
                dot += t;
                if (t < mn) mn = t, imn = i;
            }
            unsigned t = neg;
            if ((nneg + asum[a]) & 1) {
                dot -= 2 * mn;
                t ^= 1u << imn;
            }
            double d = 0.25 * n2x4[a] - 2 * dot + yy;
            if (d < best) best = d, best_p = p, best_a = a, best_t = t;
        }
    }
    unsigned e = 0;
    for (int i = 0; i < 8; i++) {
        unsigned bit = ((best_t >> i) & 1u) ^ (unsigned)(i == 7 && (asum[best_a] & 1));
        e |= bit << e8p_sigma[i];
    }
    unsigned b = e ^ (unsigned)best_p;
    uint16_t code = (uint16_t)(((unsigned)best_a << 8) | b);
    if (out) {
        float f[8];
        e8p_decode(code, f);
        for (int i = 0; i < 8; i++) out[i] = f[i];
    }
    return code;
}
