/* Exact E8P12 nearest-codeword encoder (algorithms.md §5.2.2). For each ±¼ coset and each of the 256
 * abs vectors the best sign pattern is the sign of y, repaired for the lattice parity by flipping the
 * cheapest coordinate; the code bytes are then built so that quant/e8p.h's decoder returns exactly
 * that point. 2 × 256 × 8 MACs per vector, laid out structure-of-arrays so the compiler vectorises
 * the 256-wide loops; equal to brute force (tests/test_quant_e8p_enc.c). */
#include <math.h>
#include <pthread.h>

#include "harp/quant.h"
#include "quant/e8p.h"

static double g_abs[8][E8P_NABS];   /* A[a]_i, coordinate-major */
static double g_n2[E8P_NABS];       /* ‖A[a]‖² */
static double g_odd[E8P_NABS];      /* 1 if Σ A[a] is odd */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void build(void) {
    const uint8_t *A2 = e8p_abs2(), *asum = e8p_abs_sum(), *n2x4 = e8p_abs_norm2x4();
    for (int a = 0; a < E8P_NABS; a++) {
        for (int i = 0; i < 8; i++) g_abs[i][a] = 0.5 * A2[8 * a + i];
        g_n2[a] = 0.25 * n2x4[a];
        g_odd[a] = asum[a] & 1;
    }
}

/* Distances to the 256 parity-repaired abs vectors of one coset. The hot loop of the encoder: an
 * AVX2 clone runs 4 abs vectors per instruction; the build has -ffp-contract=off, so both clones do
 * the same IEEE operations in the same order and return identical bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static void coset_dist(const double ay[8], double nodd, double yy, double *d) {
    for (int a = 0; a < E8P_NABS; a++) {
        double t0 = g_abs[0][a] * ay[0], dot = t0, mn = t0;
        for (int i = 1; i < 8; i++) {
            double t = g_abs[i][a] * ay[i];
            dot += t;
            mn = t < mn ? t : mn;
        }
        /* parity violated iff #neg + Σ A[a] is odd: flip the cheapest coordinate */
        double flip = g_odd[a] != nodd ? 1.0 : 0.0;
        dot -= 2 * mn * flip;
        d[a] = g_n2[a] - 2 * dot + yy;
    }
}

uint16_t harp_e8p_encode(const double x[8], double out[8]) {
    pthread_once(&g_once, build);
    double best = INFINITY;
    int best_p = 0, best_a = 0;
    unsigned best_neg = 0;
    double best_ay[8] = {0};
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
        const double nodd = (double)(__builtin_popcount(neg) & 1);
        double d[E8P_NABS];
        coset_dist(ay, nodd, yy, d);
        for (int a = 0; a < E8P_NABS; a++)
            if (d[a] < best) {
                best = d[a], best_p = p, best_a = a, best_neg = neg;
                for (int i = 0; i < 8; i++) best_ay[i] = ay[i];
            }
    }
    /* rebuild the sign pattern of the winner (first minimal coordinate, as in the search) */
    unsigned t = best_neg;
    if ((double)(__builtin_popcount(best_neg) & 1) != g_odd[best_a]) {
        int imn = 0;
        double mn = g_abs[0][best_a] * best_ay[0];
        for (int i = 1; i < 8; i++) {
            double v = g_abs[i][best_a] * best_ay[i];
            if (v < mn) mn = v, imn = i;
        }
        t ^= 1u << imn;
    }
    unsigned e = 0;
    for (int i = 0; i < 8; i++) {
        unsigned bit = ((t >> i) & 1u) ^ (unsigned)(i == 7 && g_odd[best_a] != 0);
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
