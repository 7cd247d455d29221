/* Hadamard matrices of the orders LLM widths need (algorithms.md §3.2–§3.3): Sylvester, Paley I and
 * Paley II over GF(q) (prime powers with degree ≤ 3), Williamson arrays from the spec's first rows,
 * and Kronecker doubling. Every matrix is built from its definition; nothing is tabulated except the
 * Williamson first rows, which are the mathematical data the spec gives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rot_internal.h"

#define HADK_MAX 2048   /* far above any LLM width (largest needed: 172); bounds work on hostile input */

static int is_pow2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

/* q = p^k with p prime; 0 if q is not a prime power. */
static int prime_power(int64_t q, int *p, int *k) {
    if (q < 2) return 0;
    int64_t f = 2;
    while (f * f <= q && q % f) f++;
    if (q % f) f = q;
    int e = 0;
    int64_t v = q;
    while (v % f == 0) v /= f, e++;
    if (v != 1) return 0;
    *p = (int)f;
    *k = e;
    return 1;
}

/* GF(p^k) for k ≤ 3: elements e = c0 + c1·p + c2·p², multiplication modulo the monic irreducible
 * polynomial x^k + m(x) with the smallest encoding of m (the spec's fixed choices follow from this:
 * GF(9) x²+1, GF(25) x²+2, GF(27) x³+2x+1, GF(49) x²+1, GF(343) x³+2). */
typedef struct gf {
    int p, k, q;
    int m[3];   /* low coefficients of the modulus */
} gf;

static void gf_digits(const gf *f, int e, int *c) {
    for (int i = 0; i < f->k; i++) c[i] = e % f->p, e /= f->p;
}

static int gf_enc(const gf *f, const int *c) {
    int e = 0;
    for (int i = f->k - 1; i >= 0; i--) e = e * f->p + c[i];
    return e;
}

static int gf_mul(const gf *f, int a, int b) {
    int ca[3], cb[3], prod[5] = {0, 0, 0, 0, 0};
    gf_digits(f, a, ca);
    gf_digits(f, b, cb);
    for (int i = 0; i < f->k; i++)
        for (int j = 0; j < f->k; j++) prod[i + j] = (prod[i + j] + ca[i] * cb[j]) % f->p;
    /* reduce x^d for d ≥ k using x^k = −m(x) */
    for (int d = 2 * f->k - 2; d >= f->k; d--) {
        int c = prod[d];
        if (!c) continue;
        prod[d] = 0;
        for (int i = 0; i < f->k; i++) prod[d - f->k + i] = (prod[d - f->k + i] + (f->p - c) * f->m[i]) % f->p;
    }
    return gf_enc(f, prod);
}

static int gf_sub(const gf *f, int a, int b) {
    int ca[3], cb[3], c[3];
    gf_digits(f, a, ca);
    gf_digits(f, b, cb);
    for (int i = 0; i < f->k; i++) c[i] = (ca[i] - cb[i] + f->p) % f->p;
    return gf_enc(f, c);
}

/* Degree ≤ 3: irreducible iff the polynomial has no root in GF(p). */
static int gf_init(gf *f, int p, int k) {
    if (k < 1 || k > 3) return 0;
    f->p = p, f->k = k, f->q = 1;
    for (int i = 0; i < k; i++) f->q *= p;
    if (k == 1) {
        f->m[0] = 0;
        return 1;
    }
    for (int enc = 0; enc < f->q; enc++) {
        int c[3];
        gf_digits(f, enc, c);
        int root = 0;
        for (int x = 0; x < p && !root; x++) {
            long v = 1;   /* x^k */
            for (int i = 0; i < k; i++) v = v * x % p;
            long xp = 1;
            for (int i = 0; i < k; i++) v += c[i] * xp, xp = xp * x % p;
            root = v % p == 0;
        }
        if (!root) {
            for (int i = 0; i < k; i++) f->m[i] = c[i];
            return 1;
        }
    }
    return 0;
}

/* Quadratic character table chi[e] ∈ {0, +1, −1}. */
static int8_t *gf_chi(const gf *f) {
    int8_t *chi = harp_xmalloc((size_t)f->q, "GF quadratic character");
    if (!chi) return NULL;
    for (int e = 0; e < f->q; e++) chi[e] = -1;
    chi[0] = 0;
    for (int e = 1; e < f->q; e++) chi[gf_mul(f, e, e)] = 1;
    return chi;
}

static int paley_field(int64_t q, gf *f) {
    int p, k;
    if (q > HADK_MAX || !prime_power(q, &p, &k)) return 0;
    return gf_init(f, p, k);
}

/* Paley I, QuIP# form: H = I + [[0, −1ᵀ], [1, Q]], q ≡ 3 mod 4, order q + 1. */
static harp_status paley1(int q, int8_t *H) {
    gf f;
    if (!paley_field(q, &f)) return HARP_ERR_UNSUPPORTED;
    int8_t *chi = gf_chi(&f);
    if (!chi) return HARP_ERR_OOM;
    int K = q + 1;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) {
            int v;
            if (i == 0) v = j == 0 ? 1 : -1;
            else if (j == 0) v = 1;
            else v = chi[gf_sub(&f, i - 1, j - 1)] + (i == j);
            H[(size_t)i * K + j] = (int8_t)v;
        }
    free(chi);
    return HARP_OK;
}

/* Paley II, QuIP# form: C = [[0, 1ᵀ], [1, Q]], H = [[C+I, C−I], [C−I, −C−I]], q ≡ 1 mod 4. */
static harp_status paley2(int q, int8_t *H) {
    gf f;
    if (!paley_field(q, &f)) return HARP_ERR_UNSUPPORTED;
    int8_t *chi = gf_chi(&f);
    if (!chi) return HARP_ERR_OOM;
    int c = q + 1, K = 2 * c;
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) {
            int C = (i == 0 && j == 0) ? 0 : (i == 0 || j == 0) ? 1 : chi[gf_sub(&f, i - 1, j - 1)];
            int d = i == j;
            H[(size_t)i * K + j] = (int8_t)(C + d);
            H[(size_t)i * K + j + c] = (int8_t)(C - d);
            H[(size_t)(i + c) * K + j] = (int8_t)(C - d);
            H[(size_t)(i + c) * K + j + c] = (int8_t)(-C - d);
        }
    free(chi);
    return HARP_OK;
}

/* Williamson first rows of A, B, C, D (algorithms.md §3.2 table). */
static const struct {
    int K;
    const char *a, *b, *c, *d;
} williamson[] = {
    {52, "+-+--++++--+-", "+---++++++---", "++-+--++--+-+", "+----+--+----"},
    {116, "++--+--+-+++-++++-+++-+--+--+", "++++-++-+---++++++---+-++-+++", "+-+---++--+-++++++-+--++---+-",
     "+++---++--+-+----+-+--++---++"},
    {124, "+--+++-+--+----++----+--+-+++--", "+--+++-+--+----++----+--+-+++--", "+-----+++-+-+--++--+-+-+++-----",
     "++++++---+-+-++--++-+-+---+++++"},
    {156, "+++--+-+-----+--++----++--+-----+-+--++", "++++---+--++----+-+--+-+----++--+---+++",
     "+++--++-+---+-+--+----+--+-+---+-++--++", "+---++-+-+-----+++-++-+++-----+-+-++---"},
    {172, "+---++--++++-+-+++-++--++-+++-+-++++--++---", "++-++++++----+-+--++-++-++--+-+----++++++-+",
     "+++-+-++--+-+-++++-+----+-++++-+-+--++-+-++", "++---++++-+--+--++--------++--+--+-++++---+"},
};

static int williamson_index(int K) {
    for (size_t i = 0; i < sizeof williamson / sizeof williamson[0]; i++)
        if (williamson[i].K == K) return (int)i;
    return -1;
}

/* [[A,B,C,D],[−B,A,−D,C],[−C,D,A,−B],[−D,−C,B,A]], circulant X[i][j] = x[(j − i) mod t]. */
static void williamson_build(int w, int8_t *H) {
    int K = williamson[w].K, t = K / 4;
    const char *rows[4] = {williamson[w].a, williamson[w].b, williamson[w].c, williamson[w].d};
    static const int blk[4][4] = {{0, 1, 2, 3}, {1, 0, 3, 2}, {2, 3, 0, 1}, {3, 2, 1, 0}};
    static const int sgn[4][4] = {{1, 1, 1, 1}, {-1, 1, -1, 1}, {-1, 1, 1, -1}, {-1, -1, 1, 1}};
    for (int bi = 0; bi < 4; bi++)
        for (int bj = 0; bj < 4; bj++) {
            const char *x = rows[blk[bi][bj]];
            for (int i = 0; i < t; i++)
                for (int j = 0; j < t; j++) {
                    int v = x[((j - i) % t + t) % t] == '+' ? 1 : -1;
                    H[(size_t)(bi * t + i) * K + bj * t + j] = (int8_t)(sgn[bi][bj] * v);
                }
        }
}

enum { C_NONE, C_SYLV, C_PALEY1, C_PALEY2, C_WILL, C_DOUBLE };

/* Which construction builds order K (QuIP#'s choice first for its orders). */
static int construction_of(int K) {
    if (K < 1 || K > HADK_MAX) return C_NONE;
    if (is_pow2(K)) return C_SYLV;
    if (K % 4) return C_NONE;
    switch (K) {
    case 12: case 20: case 60: case 108: case 140: return C_PALEY1;
    case 28: case 36: return C_PALEY2;
    case 52: case 116: case 124: case 156: case 172: return C_WILL;
    default: break;
    }
    gf f;
    if ((K - 1) % 4 == 3 && paley_field(K - 1, &f)) return C_PALEY1;
    if ((K / 2 - 1) % 4 == 1 && paley_field(K / 2 - 1, &f)) return C_PALEY2;
    if (williamson_index(K) >= 0) return C_WILL;
    if (construction_of(K / 2) != C_NONE) return C_DOUBLE;
    return C_NONE;
}

int hadk_constructible(int K) { return construction_of(K) != C_NONE; }

harp_status harp_hadamard_matrix(int K, int8_t *H, const char **construction) {
    static _Thread_local char desc[48];
    if (!H) return harp_err(HARP_ERR_INVALID_ARG, "hadamard: NULL output matrix");
    int c = construction_of(K);
    switch (c) {
    case C_SYLV:
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++) H[(size_t)i * K + j] = (int8_t)(__builtin_popcount((unsigned)(i & j)) & 1 ? -1 : 1);
        snprintf(desc, sizeof desc, "sylvester");
        break;
    case C_PALEY1:
        HARP_TRY(paley1(K - 1, H));
        snprintf(desc, sizeof desc, "paley1 q=%d", K - 1);
        break;
    case C_PALEY2:
        HARP_TRY(paley2(K / 2 - 1, H));
        snprintf(desc, sizeof desc, "paley2 q=%d", K / 2 - 1);
        break;
    case C_WILL:
        williamson_build(williamson_index(K), H);
        snprintf(desc, sizeof desc, "williamson t=%d", K / 4);
        break;
    case C_DOUBLE: {
        int h = K / 2;
        HARP_TRY(harp_hadamard_matrix(h, H, NULL));
        /* spread the h×h block in place from the last row backwards, then fill [[h,h],[h,−h]] */
        for (int i = h - 1; i >= 0; i--)
            for (int j = h - 1; j >= 0; j--) H[(size_t)i * K + j] = H[(size_t)i * h + j];
        for (int i = 0; i < h; i++)
            for (int j = 0; j < h; j++) {
                int8_t v = H[(size_t)i * K + j];
                H[(size_t)i * K + j + h] = v;
                H[(size_t)(i + h) * K + j] = v;
                H[(size_t)(i + h) * K + j + h] = (int8_t)-v;
            }
        snprintf(desc, sizeof desc, "double(%d)", h);
        break;
    }
    default:
        return harp_err(HARP_ERR_UNSUPPORTED, "hadamard: no construction for order K=%d", K);
    }
    if (construction) *construction = desc;
    return HARP_OK;
}

harp_status harp_hadamard_choose_k(int64_t n, int *K) {
    if (n < 1) return harp_err(HARP_ERR_INVALID_ARG, "hadamard: dimension %lld must be positive", (long long)n);
    int64_t r = n;
    while (r % 2 == 0) r /= 2;
    if (r == 1) {
        *K = 1;
        return HARP_OK;
    }
    for (int64_t k = 4 * r; k <= HADK_MAX && n % k == 0; k *= 2)
        if (hadk_constructible((int)k)) {
            *K = (int)k;
            return HARP_OK;
        }
    return harp_err(HARP_ERR_UNSUPPORTED,
                    "hadamard: no Hadamard matrix for n=%lld (odd part %lld; needs n divisible by 4·%lld and a "
                    "construction for K = 4·%lld·2^j)",
                    (long long)n, (long long)r, (long long)r, (long long)r);
}

int harp_sequency(const double *v, int64_t n, int64_t stride) {
    int changes = 0, prev = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = v[i * stride];
        int s = x > 0 ? 1 : x < 0 ? -1 : 0;
        if (!s) continue;
        if (prev && s != prev) changes++;
        prev = s;
    }
    return changes;
}
