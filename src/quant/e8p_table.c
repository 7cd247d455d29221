/* E8P12 / E81B tables built from the construction rules of algorithms.md §5.2.1 and §5.3. */
#define _POSIX_C_SOURCE 200809L
#include "quant/e8p.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

const uint8_t e8p_sigma[8] = {0, 4, 1, 5, 2, 6, 3, 7};

/* Positions holding 1/2 in the 29 norm^2-12 abs vectors (the other five hold 3/2), in index
 * order 227..255. This order is part of the format (§5.2.1) and cannot be derived. */
static const uint8_t e8p_extra_half_pos[29][3] = {
    {1, 2, 3}, {0, 2, 3}, {0, 1, 3}, {0, 1, 2}, {3, 6, 7}, {3, 5, 7}, {3, 4, 7}, {3, 5, 6},
    {3, 4, 6}, {3, 4, 5}, {2, 6, 7}, {2, 5, 7}, {2, 4, 7}, {2, 5, 6}, {2, 4, 6}, {2, 4, 5},
    {1, 6, 7}, {1, 5, 7}, {1, 4, 7}, {1, 5, 6}, {1, 4, 6}, {0, 4, 5}, {0, 6, 7}, {0, 5, 7},
    {0, 4, 7}, {0, 5, 6}, {0, 4, 6}, {0, 1, 4}, {2, 3, 7}};

static uint8_t g_abs2[E8P_NABS * 8];
static uint8_t g_norm2x4[E8P_NABS];
static uint8_t g_sum[E8P_NABS];
static uint32_t g_packed[E8P_NABS];
static float g_e81b[E81B_NCODES * 8];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static float *g_book;
static int8_t *g_book_x4;
static pthread_once_t g_book_once = PTHREAD_ONCE_INIT;

static void build_abs(void) {
    int n = 0;
    /* {1/2, 3/2, 5/2}^8 with norm^2 <= 10, lexicographic ascending, coordinate 0 most significant:
     * counting t upwards in base 3 with coordinate 0 as the leading digit gives exactly that order. */
    for (int t = 0; t < 6561; t++) {
        uint8_t v[8];
        int r = t, ss = 0;
        for (int i = 7; i >= 0; i--) {
            v[i] = (uint8_t)(1 + 2 * (r % 3));
            r /= 3;
        }
        for (int i = 0; i < 8; i++) ss += v[i] * v[i];
        if (ss <= 40) memcpy(g_abs2 + 8 * n++, v, 8);
    }
    /* n == E8P_NABS_BASE here (checked by the tests). */
    for (int k = 0; k < 29; k++, n++) {
        uint8_t *v = g_abs2 + 8 * n;
        memset(v, 3, 8);
        for (int j = 0; j < 3; j++) v[e8p_extra_half_pos[k][j]] = 1;
    }
    for (int a = 0; a < E8P_NABS; a++) {
        const uint8_t *v = g_abs2 + 8 * a;
        int ss = 0, s2 = 0;
        for (int i = 0; i < 8; i++) {
            ss += v[i] * v[i];
            s2 += v[i];
        }
        g_norm2x4[a] = (uint8_t)ss;
        g_sum[a] = (uint8_t)(s2 / 2);   /* eight odd numbers: s2 is even */
        uint32_t p = 0;
        for (int i = 0; i < 8; i++) {
            int h = v[i];                       /* 2·â_i */
            if (i == 7 && (g_sum[a] & 1)) h = -h; /* even coordinate sum: â ∈ D8 + ½𝟙 */
            p |= (uint32_t)(h + 8) << (4 * e8p_sigma[i]);
        }
        g_packed[a] = p;
    }
}

static void build_e81b(void) {
    int n = 0;
    /* Integer E8 points of norm^2 <= 2: the origin and (±1, ±1, 0^6); lexicographic ascending. */
    for (int t = 0; t < 6561; t++) {
        int v[8], r = t, ss = 0, s = 0;
        for (int i = 7; i >= 0; i--) {
            v[i] = r % 3 - 1;
            r /= 3;
        }
        for (int i = 0; i < 8; i++) {
            ss += v[i] * v[i];
            s += v[i];
        }
        if (ss > 2 || (s & 1)) continue;
        for (int i = 0; i < 8; i++) g_e81b[8 * n + i] = (float)v[i];
        n++;
    }
    /* (±1/2)^8 with an even number of minus signs; bit (7-i) set = coordinate i is +1/2, so
     * counting upwards is lexicographic ascending. */
    for (int t = 0; t < 256; t++) {
        int neg = 8 - __builtin_popcount((unsigned)t);
        if (neg & 1) continue;
        for (int i = 0; i < 8; i++) g_e81b[8 * n + i] = ((t >> (7 - i)) & 1) ? 0.5f : -0.5f;
        n++;
    }
    for (int i = 0; i < 8; i++, n++) {
        memset(g_e81b + 8 * n, 0, 8 * sizeof(float));
        g_e81b[8 * n + i] = 2.0f;
    }
    for (int i = 0; i < 7; i++, n++) {
        memset(g_e81b + 8 * n, 0, 8 * sizeof(float));
        g_e81b[8 * n + i] = -2.0f;
    }
}

static void build_tables(void) {
    build_abs();
    build_e81b();
}

static void ensure(void) { pthread_once(&g_once, build_tables); }

/* The tables, built on first use. */
const uint8_t *e8p_abs2(void) { ensure(); return g_abs2; }
const uint32_t *e8p_packed(void) { ensure(); return g_packed; }
const uint8_t *e8p_abs_norm2x4(void) { ensure(); return g_norm2x4; }
const uint8_t *e8p_abs_sum(void) { ensure(); return g_sum; }

void e8p_decode_x4(uint16_t code, int8_t out[8]) {
    ensure();
    uint32_t p = g_packed[code >> 8];
    unsigned b = code & 0xFFu;
    unsigned par = (unsigned)__builtin_popcount(b) & 1u;
    unsigned e = b ^ par;
    int shift = par ? -1 : 1;   /* ±1/4, times 4 */
    for (int i = 0; i < 8; i++) {
        int s = e8p_sigma[i];
        int h = (int)((p >> (4 * s)) & 15u) - 8;   /* 2·v_i */
        if ((e >> s) & 1u) h = -h;
        out[i] = (int8_t)(2 * h + shift);
    }
}

void e8p_decode(uint16_t code, float out[8]) {
    int8_t q[8];
    e8p_decode_x4(code, q);
    for (int i = 0; i < 8; i++) out[i] = 0.25f * (float)q[i];
}

static void build_book(void) {
    g_book = (float *)malloc((size_t)E8P_NCODES * 8 * sizeof(float));
    g_book_x4 = (int8_t *)malloc((size_t)E8P_NCODES * 8);
    if (!g_book || !g_book_x4) return;
    for (uint32_t c = 0; c < E8P_NCODES; c++) {
        e8p_decode_x4((uint16_t)c, g_book_x4 + 8 * c);
        for (int i = 0; i < 8; i++) g_book[8 * c + i] = 0.25f * (float)g_book_x4[8 * c + i];
    }
}

static void ensure_book(void) { pthread_once(&g_book_once, build_book); }
const float *e8p_codebook(void) { ensure_book(); return g_book; }
const int8_t *e8p_codebook_x4(void) { ensure_book(); return g_book_x4; }

uint16_t e8p_nearest_bruteforce(const float x[8]) {
    const int8_t *bk = e8p_codebook_x4();
    uint32_t best = 0;
    double bd = INFINITY;
    if (!bk) return 0;
    for (uint32_t c = 0; c < E8P_NCODES; c++) {
        double d = 0;
        for (int i = 0; i < 8; i++) {
            double t = (double)x[i] - 0.25 * bk[8 * c + i];
            d += t * t;
        }
        if (d < bd) {
            bd = d;
            best = c;
        }
    }
    return (uint16_t)best;
}

const float *e81b_codebook(void) { ensure(); return g_e81b; }

void e81b_decode(uint8_t idx, float out[8]) {
    ensure();
    memcpy(out, g_e81b + 8 * idx, 8 * sizeof(float));
}

uint8_t e81b_nearest(const float x[8]) {
    ensure();
    int best = 0;
    double bd = INFINITY;
    for (int c = 0; c < E81B_NCODES; c++) {
        double d = 0;
        for (int i = 0; i < 8; i++) {
            double t = (double)x[i] - g_e81b[8 * c + i];
            d += t * t;
        }
        if (d < bd) {
            bd = d;
            best = c;
        }
    }
    return (uint8_t)best;
}
