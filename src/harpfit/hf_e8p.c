/* Fast fp32 nearest-E8P-codeword search for the proxy target (algorithms.md §5.2.2), vectorised over
 * the 256 abs vectors (8 per vector op). Same algorithm and tie rule as harp_e8p_encode (first coset,
 * then lowest abs index wins ties); only the arithmetic is fp32, so an exact near-tie may resolve the
 * other way — harmless for a stop-gradient target. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "harpfit/hf_internal.h"

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

static float g_abs[8][256] __attribute__((aligned(32)));   /* A[a][i], coordinate-major */
static float g_n2[256] __attribute__((aligned(32)));
static int32_t g_odd[256] __attribute__((aligned(32)));    /* Σ_i A[a]_i odd */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void build(void) {
    for (int a = 0; a < 256; a++) {
        double w[8], s = 0, n2 = 0;
        /* code (a<<8)|0: coset +¼, all signs positive except coordinate 7 when Σ A[a] is odd */
        harp_cb_decode8(HARP_CODEBOOK_E8P12, 0, (uint16_t)(a << 8), 0, w);
        for (int i = 0; i < 8; i++) {
            double v = fabs(w[i] - 0.25);
            g_abs[i][a] = (float)v;
            s += v, n2 += v * v;
        }
        g_n2[a] = (float)n2;
        g_odd[a] = ((int)llround(s)) & 1;
    }
}

#define self(m, a, b) ((v8f)(((v8i)(a) & (m)) | ((v8i)(b) & ~(m))))

HARP_TARGET_CLONES
static void nearest(const float *x, float *out) {
    float best = INFINITY;
    int bp = 0, ba = 0;
    unsigned bneg = 0;
    float bay[8] = {0};
    for (int p = 0; p < 2; p++) {
        const float shift = p ? -0.25f : 0.25f;
        float ay[8], yy = 0;
        unsigned neg = 0;
        for (int i = 0; i < 8; i++) {
            float y = x[i] - shift;
            neg |= (unsigned)(y < 0) << i;
            ay[i] = fabsf(y);
            yy += y * y;
        }
        const int32_t nodd = __builtin_popcount(neg) & 1;
        v8f bd = {INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY};
        v8i bi = {0};
        for (int a0 = 0; a0 < 256; a0 += 8) {
            v8f t, dot, mn, ai;
            memcpy(&ai, &g_abs[0][a0], 32);
            dot = mn = ai * ay[0];
            for (int i = 1; i < 8; i++) {
                memcpy(&ai, &g_abs[i][a0], 32);
                t = ai * ay[i];
                dot += t;
                mn = self(t < mn, t, mn);
            }
            v8i od;
            memcpy(&od, &g_odd[a0], 32);
            v8f n2;
            memcpy(&n2, &g_n2[a0], 32);
            v8f flip = self(od != nodd, mn, (v8f){0});
            v8f d = n2 - 2 * (dot - 2 * flip);
            v8i idx = (v8i){0, 1, 2, 3, 4, 5, 6, 7} + a0;
            v8i lt = d < bd;
            bd = self(lt, d, bd);
            bi = (idx & lt) | (bi & ~lt);
        }
        float dl[8];
        int32_t il[8];
        memcpy(dl, &bd, 32);
        memcpy(il, &bi, 32);
        float dmin = dl[0];
        int amin = il[0];
        for (int l = 1; l < 8; l++)
            if (dl[l] < dmin || (dl[l] == dmin && il[l] < amin)) dmin = dl[l], amin = il[l];
        dmin += yy;
        if (dmin < best) {
            best = dmin, bp = p, ba = amin, bneg = neg;
            memcpy(bay, ay, sizeof bay);
        }
    }
    unsigned t = bneg;
    if ((int32_t)(__builtin_popcount(bneg) & 1) != g_odd[ba]) {
        int imn = 0;
        float mn = g_abs[0][ba] * bay[0];
        for (int i = 1; i < 8; i++) {
            float v = g_abs[i][ba] * bay[i];
            if (v < mn) mn = v, imn = i;
        }
        t ^= 1u << imn;
    }
    const float shift = bp ? -0.25f : 0.25f;
    for (int i = 0; i < 8; i++) out[i] = ((t >> i) & 1 ? -g_abs[i][ba] : g_abs[i][ba]) + shift;
}

void hf_quantize8_fast(harp_codebook cb, double resid, const double x[8], double q[8]) {
    pthread_once(&g_once, build);
    float xf[8], o[8];
    for (int i = 0; i < 8; i++) xf[i] = (float)x[i];
    nearest(xf, o);
    for (int i = 0; i < 8; i++) q[i] = o[i];
    if (cb == HARP_CODEBOOK_E8P12_RVQ4B) {
        for (int i = 0; i < 8; i++) xf[i] = (float)((x[i] - q[i]) * resid);
        nearest(xf, o);
        for (int i = 0; i < 8; i++) q[i] += o[i] / resid;
    } else if (cb == HARP_CODEBOOK_E8P12_RVQ3B) {
        double res[8], d1[8];
        for (int i = 0; i < 8; i++) res[i] = (x[i] - q[i]) * resid;
        harp_e81b_encode(res, d1);
        for (int i = 0; i < 8; i++) q[i] += d1[i] / resid;
    }
}
