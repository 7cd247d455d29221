/* Exact E8P12 nearest-codeword encoder (algorithms.md §5.2.2): the fp64 instantiation of the search
 * in e8p_nearest_tpl.h (shared with the HARP fit's fp32 target), then the code bytes built so that
 * quant/e8p.h's decoder returns exactly that point. 2 × 256 × 8 MACs per vector; equal to brute force
 * (tests/test_quant_e8p_enc.c). */
#include <math.h>

#include "core/core.h"
#include "harp/quant.h"
#include "quant/e8p.h"

#define E8P_F32 0
#include "quant/e8p_nearest_tpl.h"

/* The clone of the whole search per target (the scan is inlined into it). */
HARP_TARGET_CLONES
static void search(const double x[8], int *p, int *a, unsigned *t) { e8p_search_f64(x, p, a, t); }

uint16_t harp_e8p_encode(const double x[8], double out[8]) {
    int best_p, best_a;
    unsigned t;
    search(x, &best_p, &best_a, &t);
    const int odd = e8p_tables_f64()->odd[best_a] != 0;
    unsigned e = 0;
    for (int i = 0; i < 8; i++) {
        unsigned bit = ((t >> i) & 1u) ^ (unsigned)(i == 7 && odd);
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
