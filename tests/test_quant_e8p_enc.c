/* E8P12 exact encoder vs brute force over all 65 536 codewords, encode∘decode identity, and the
 * Monte-Carlo relative MSE of E8P12 / RVQ3B / RVQ4B on N(0,1) at the reference scales (§5.1, §9.4).
 * Brute-force vector count: argv[1] (tests/quant.cmake registers 10^4 as a unit test and 10^5 as
 * test_quant_e8p_enc_full, label "slow"); under ASan, or with HARP_TEST_QUICK=1, at most 2 000.
 * The MSE estimates use 10^5 vectors (tolerances: ±0.0005 E8P12, ±0.0003 RVQ3B, ±0.0001 RVQ4B); in
 * the quick mode 4·10^4 vectors with the ±3 % tolerance of algorithms.md §9.4 item 18. */
#include <float.h>
#include <stdint.h>

#include "core/core.h"
#include "harp/quant.h"
#include "quant/e8p.h"
#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define QUICK_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QUICK_BUILD 1
#endif
#endif
#ifndef QUICK_BUILD
#define QUICK_BUILD 0
#endif

static int quick(void) {
    const char *e = getenv("HARP_TEST_QUICK");
    return QUICK_BUILD || (e && *e && *e != '0');
}

/* Structure-of-arrays copy of the codebook for a vectorisable float distance pass. */
static float *g_soa;   /* [8][65536] */
static float *g_norm;  /* [65536] */
static double *g_dbl;  /* [65536][8] exact */

static void build_soa(void) {
    const float *bk = e8p_codebook();
    g_soa = malloc(sizeof(float) * 8 * E8P_NCODES);
    g_norm = malloc(sizeof(float) * E8P_NCODES);
    g_dbl = malloc(sizeof(double) * 8 * E8P_NCODES);
    for (int c = 0; c < E8P_NCODES; c++) {
        double s = 0;
        for (int i = 0; i < 8; i++) {
            g_soa[i * E8P_NCODES + c] = bk[8 * c + i];
            g_dbl[8 * c + i] = bk[8 * c + i];
            s += (double)bk[8 * c + i] * bk[8 * c + i];
        }
        g_norm[c] = (float)s;   /* exact: multiples of 1/16 below 17 */
    }
}

static double dist_exact(const double x[8], int c) {
    double d = 0;
    for (int i = 0; i < 8; i++) {
        double t = x[i] - g_dbl[8 * c + i];
        d += t * t;
    }
    return d;
}

/* Exact brute-force argmin (ties to the lower code): a float pass keeps every code whose float
 * distance came within `margin` of the running minimum (a superset of the codes within margin of the
 * final minimum); those are then compared with exact fp64 distances. */
static int brute_force(const double x[8]) {
    enum { CH = 1024, MAXC = 8192 };
    float xf[8], d[CH];
    for (int i = 0; i < 8; i++) xf[i] = (float)x[i];
    const float margin = 1e-3f;
    float run = FLT_MAX;
    int cand[MAXC], nc = 0, overflow = 0;
    for (int c0 = 0; c0 < E8P_NCODES; c0 += CH) {
        for (int j = 0; j < CH; j++) d[j] = g_norm[c0 + j];
        for (int i = 0; i < 8; i++) {
            const float *col = g_soa + i * E8P_NCODES + c0;
            const float xi2 = 2 * xf[i];
            for (int j = 0; j < CH; j++) d[j] -= xi2 * col[j];
        }
        for (int j = 0; j < CH; j++) {
            if (d[j] < run) run = d[j];
            if (d[j] <= run + margin) {
                if (nc < MAXC) cand[nc++] = c0 + j;
                else overflow = 1;
            }
        }
    }
    int best = -1;
    double bd = INFINITY;
    if (overflow) {
        for (int c = 0; c < E8P_NCODES; c++) {
            double dd = dist_exact(x, c);
            if (dd < bd) bd = dd, best = c;
        }
        return best;
    }
    for (int k = 0; k < nc; k++) {
        if (!(cand[k] >= 0)) continue;
        double dd = dist_exact(x, cand[k]);
        if (dd < bd || (dd == bd && cand[k] < best)) bd = dd, best = cand[k];
    }
    return best;
}

static void test_roundtrip(void) {
    int bad = 0;
    for (int c = 0; c < E8P_NCODES; c++) {
        float f[8];
        double x[8], out[8];
        e8p_decode((uint16_t)c, f);
        for (int i = 0; i < 8; i++) x[i] = f[i];
        uint16_t e = harp_e8p_encode(x, out);
        if (e != c) bad++;
        for (int i = 0; i < 8; i++)
            if (out[i] != x[i]) bad++;
    }
    CHECK_MSG(bad == 0, "encode(decode(c)) != c for %d codes", bad);
}

static void test_bruteforce(int N) {
    if (quick() && N > 2000) N = 2000;
    int mism = 0, worse = 0;
    double t0 = harp_time_s();
#pragma omp parallel for schedule(static) reduction(+ : mism, worse)
    for (int v = 0; v < N; v++) {
        harp_rng rng;
        harp_rng_seed(&rng, harp_seed_mix(1234, (uint64_t)v));
        double x[8];
        for (int i = 0; i < 8; i++) x[i] = harp_rng_normal(&rng) * (v % 3 == 0 ? 1.0 : v % 3 == 1 ? 0.5 : 2.0);
        int bf = brute_force(x);
        uint16_t e = harp_e8p_encode(x, NULL);
        if (e != bf) {
            mism++;
            if (dist_exact(x, e) > dist_exact(x, bf)) worse++;
        }
    }
    printf("encoder vs brute force: %d vectors, %d code mismatches (%d strictly worse), %.2f s\n", N, mism, worse,
           harp_time_s() - t0);
    CHECK_MSG(mism == 0, "%d of %d vectors differ from brute force (%d strictly worse)", mism, N, worse);
}

static double rel_mse(harp_codebook cb, double s, double r, int N) {
    double se = 0;
    harp_rng rng;
    harp_rng_seed(&rng, 99);
    for (int v = 0; v < N; v++) {
        double x[8], xs[8], q[8];
        for (int i = 0; i < 8; i++) x[i] = harp_rng_normal(&rng), xs[i] = x[i] * s;
        harp_cb_quantize8(cb, r, xs, q, NULL);
        for (int i = 0; i < 8; i++) {
            double d = q[i] / s - x[i];
            se += d * d;
        }
    }
    return se / (8.0 * N);
}

static void test_mse(void) {
    const int N = quick() ? 40000 : 100000;
    const double rel = quick() ? 0.03 : 0;
    double e2 = rel_mse(HARP_CODEBOOK_E8P12, 1.03, 0, N);
    double e3 = rel_mse(HARP_CODEBOOK_E8P12_RVQ3B, 0.98, 2.04, N);
    double e4 = rel_mse(HARP_CODEBOOK_E8P12_RVQ4B, 1.03, 3.45, N);
    double e2b = rel_mse(HARP_CODEBOOK_E8P12, 0.9, 0, N);
    printf("relative MSE on N(0,1), %d vectors: E8P12@1.03 %.5f  E8P12@0.9 %.5f  RVQ3B@(0.98,2.04) %.5f  "
           "RVQ4B@(1.03,3.45) %.5f\n", N, e2, e2b, e3, e4);
    CHECK_NEAR(e2, 0.0917, rel ? rel * 0.0917 : 0.0005);
    CHECK_NEAR(e2b, 0.0991, rel ? rel * 0.0991 : 0.0005);
    CHECK_NEAR(e3, 0.0297, rel ? rel * 0.0297 : 0.0003);
    CHECK_NEAR(e4, 0.0096, rel ? rel * 0.0096 : 0.0001);
    CHECK_NEAR(harp_codebook_opt_scale(HARP_CODEBOOK_E8P12), 1.03, 0);
    CHECK_NEAR(harp_codebook_opt_resid_scale(HARP_CODEBOOK_E8P12_RVQ3B), 2.04, 0);
    CHECK_NEAR(harp_codebook_opt_resid_scale(HARP_CODEBOOK_E8P12_RVQ4B), 3.45, 0);
}

static void test_e81b(void) {
    double o[8];
    harp_e81b_decode(E81B_ORIGIN, o);
    double s = 0;
    for (int i = 0; i < 8; i++) s += fabs(o[i]);
    CHECK(s == 0);
    int bad = 0;
    for (int c = 0; c < 256; c++) {
        double x[8], y[8];
        harp_e81b_decode((uint8_t)c, x);
        if (harp_e81b_encode(x, y) != c) bad++;
    }
    CHECK_MSG(bad == 0, "E81B encode(decode(c)) != c for %d entries", bad);
}

int main(int argc, char **argv) {
    int N = argc > 1 ? atoi(argv[1]) : 10000;
    build_soa();
    test_roundtrip();
    test_e81b();
    test_mse();
    test_bruteforce(N);
    free(g_soa), free(g_norm), free(g_dbl);
    return t_done();
}
