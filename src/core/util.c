/* RNG, hashing, time, UTF-8 validation, half-precision conversion, thread count. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void harp_rng_seed(harp_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t harp_rng_u64(harp_rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double harp_rng_uniform(harp_rng *r) { return (double)(harp_rng_u64(r) >> 11) * 0x1.0p-53; }

double harp_rng_normal(harp_rng *r) {
    double u1 = harp_rng_uniform(r), u2 = harp_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

uint64_t harp_seed_mix(uint64_t seed, uint64_t tag) {
    uint64_t x = seed ^ (tag * 0xd1342543de82ef95ULL);
    return splitmix64(&x);
}

void harp_sha256(const void *data, size_t n, uint8_t out[32]) {
    unsigned int len = 32;
    EVP_Digest(data, n, out, &len, EVP_sha256(), NULL);
}

void harp_sha256_hex(const void *data, size_t n, char out[65]) {
    uint8_t d[32];
    harp_sha256(data, n, d);
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[64] = '\0';
}

uint64_t harp_fnv1a64(const void *data, size_t n, uint64_t h) {
    const uint8_t *p = data;
    if (h == 0) h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

double harp_time_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int harp_utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
        else return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return 0;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += len;
    }
    return 1;
}

float harp_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else {  /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            man &= 0x3FF;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) bits = sign | 0x7F800000u | (man << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* n values through a table of all 65 536 (256 KB, built once from harp_f16_to_f32): one load per
 * value instead of the branches and the subnormal loop; the same bits by construction. The fp16 KV
 * cache widens a sequence's rows on every CPU decode step. */
static float g_f16_table[65536];
static pthread_once_t g_f16_once = PTHREAD_ONCE_INIT;

static void f16_table_build(void) {
    for (uint32_t h = 0; h < 65536; h++) g_f16_table[h] = harp_f16_to_f32((uint16_t)h);
}

void harp_f16_to_f32_n(const uint16_t *src, float *dst, size_t n) {
    pthread_once(&g_f16_once, f16_table_build);
    for (size_t i = 0; i < n; i++) dst[i] = g_f16_table[src[i]];
}

float harp_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t harp_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u) return (uint16_t)(sign | 0x7C00 | (ax > 0x7F800000u ? 0x200 : 0));
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00);  /* rounds to inf */
    if (ax < 0x38800000u) {                                   /* subnormal or zero in fp16 */
        if (ax < 0x33000000u) return (uint16_t)sign;
        uint32_t e = ax >> 23, m = (ax & 0x7FFFFF) | 0x800000;
        uint32_t shift = 126 - e;   /* 14 + (113 - e) */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((ax >> 13) - (112u << 10)), rem = ax & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

/* fp32 bits → whether the value is one of fp16's: normals need the 13 low mantissa bits zero, the
 * subnormals (2^-24 … 2^-15) a multiple of 2^-24, zero either sign. */
static int f16_bits_exact(uint32_t u) {
    const uint32_t ax = u & 0x7FFFFFFFu, e = ax >> 23, m = ax & 0x7FFFFFu;
    if (ax == 0) return 1;
    if (e >= 113 && e <= 142) return (m & 0x1FFFu) == 0;
    if (e >= 103 && e < 113) return (m & ((1u << (126 - e)) - 1)) == 0;
    return 0;
}

int harp_f16_exact(const float *x, size_t n) {
    int bad = 0;
#pragma omp parallel for reduction(| : bad) schedule(static) if (n >= (1u << 20))
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, 4);
        bad |= !f16_bits_exact(u);
    }
    return !bad;
}

static int g_threads;

void harp_set_threads(int n) {
    g_threads = n > 0 ? n : 0;
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#endif
    /* sgemm in the forward pass and the quantizers runs on OpenBLAS's own threads */
    if (n > 0) openblas_set_num_threads(n);
}

int harp_get_threads(void) {
    if (g_threads > 0) return g_threads;
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
