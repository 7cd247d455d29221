/* E8P12 / E81B codebook facts of algorithms.md §5.2.1, §5.3 and §9.4 (items 16, 18). */
#include <stdint.h>
#include <stdlib.h>

#include "core/core.h"
#include "quant/e8p.h"
#include "test_util.h"

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void test_abs_table(void) {
    const uint8_t *a = e8p_abs2();
    const uint8_t *n2 = e8p_abs_norm2x4();
    int count[7] = {0};   /* by norm^2 = 2, 4, ..., 14 */
    for (int k = 0; k < E8P_NABS_BASE; k++) {
        CHECK(n2[k] % 8 == 0 && n2[k] <= 40);
        count[n2[k] / 8 - 1]++;
    }
    CHECK(count[0] == 1 && count[1] == 8 && count[2] == 28 && count[3] == 64 && count[4] == 126);
    int sorted = 1;
    for (int k = 1; k < E8P_NABS_BASE; k++) sorted &= memcmp(a + 8 * (k - 1), a + 8 * k, 8) < 0;
    CHECK_MSG(sorted, "A[0..226] not lexicographically ascending");
    for (int k = E8P_NABS_BASE; k < E8P_NABS; k++) {
        int halves = 0, threes = 0;
        for (int i = 0; i < 8; i++) {
            halves += a[8 * k + i] == 1;
            threes += a[8 * k + i] == 3;
        }
        CHECK(n2[k] == 48 && halves == 3 && threes == 5);
    }
    static const uint8_t a226[8] = {5, 3, 1, 1, 1, 1, 1, 1};
    CHECK(memcmp(a + 8 * 226, a226, 8) == 0);
    /* 256 distinct abs vectors. */
    int distinct = 1;
    for (int i = 0; i < E8P_NABS; i++)
        for (int j = i + 1; j < E8P_NABS; j++) distinct &= memcmp(a + 8 * i, a + 8 * j, 8) != 0;
    CHECK(distinct);
    const uint32_t *p = e8p_packed();
    CHECK_MSG(p[0] == 0x99999999u, "P[0] = %08x", p[0]);
    CHECK_MSG(p[1] == 0x59999999u, "P[1] = %08x", p[1]);
    CHECK_MSG(p[2] == 0xD9999999u, "P[2] = %08x", p[2]);
    CHECK_MSG(p[3] == 0x7999B999u, "P[3] = %08x", p[3]);
    CHECK_MSG(p[227] == 0x5B99BB9Bu, "P[227] = %08x", p[227]);
}

static void test_decode_all(void) {
    uint64_t *keys = malloc(sizeof(uint64_t) * E8P_NCODES);
    CHECK(keys != NULL);
    if (!keys) return;
    int odd_range = 1, e8 = 1, f_match = 1;
    double sum_n2 = 0, max_n2 = 0;
    const float *book = e8p_codebook();
    const int8_t *book4 = e8p_codebook_x4();
    CHECK(book != NULL && book4 != NULL);
    for (uint32_t c = 0; c < E8P_NCODES; c++) {
        int8_t q[8];
        float f[8];
        e8p_decode_x4((uint16_t)c, q);
        e8p_decode((uint16_t)c, f);
        uint64_t key = 0;
        double n2 = 0;
        int par = __builtin_popcount(c & 0xFFu) & 1;
        int usum = 0, uhalf = 1;
        for (int i = 0; i < 8; i++) {
            odd_range &= (q[i] & 1) != 0 && q[i] >= -15 && q[i] <= 15;
            f_match &= f[i] == 0.25f * q[i] && book[8 * c + i] == f[i] && book4[8 * c + i] == q[i];
            key = (key << 8) | (uint8_t)q[i];
            n2 += (double)f[i] * f[i];
            /* u = 2·(w ∓ 1/4) must be odd (half-integer coordinates) with sum ≡ 0 mod 4 (even). */
            int u2 = q[i] + (par ? 1 : -1);   /* 4·(w ∓ 1/4) */
            uhalf &= (u2 % 4 != 0) && (u2 % 2 == 0);
            usum += u2;
        }
        e8 &= uhalf && (usum % 8 == 0);
        keys[c] = key;
        sum_n2 += n2;
        if (n2 > max_n2) max_n2 = n2;
    }
    CHECK_MSG(odd_range, "4w must be an odd integer in [-15, 15]");
    CHECK_MSG(e8, "w -/+ 1/4 must lie in E8 (half-integer coordinates, even sum)");
    CHECK(f_match);
    CHECK_NEAR(sum_n2 / E8P_NCODES, 9.57, 0.005);
    CHECK_NEAR(max_n2, 16.5, 0);
    qsort(keys, E8P_NCODES, sizeof keys[0], cmp_u64);
    int dup = 0;
    for (int c = 1; c < E8P_NCODES; c++) dup += keys[c] == keys[c - 1];
    CHECK_MSG(dup == 0, "%d duplicate decoded vectors", dup);
    free(keys);
    /* Spot values: code 0 = abs 0, sign byte 0 → all +1/2 + 1/4. */
    float w[8];
    e8p_decode(0, w);
    for (int i = 0; i < 8; i++) CHECK(w[i] == 0.75f);
}

static void test_bruteforce_roundtrip(void) {
    /* The nearest codeword to a codeword is itself (spot-check 200 codes, the search is slow). */
    int ok = 1;
    for (uint32_t c = 0; c < E8P_NCODES; c += 331) {
        float w[8];
        e8p_decode((uint16_t)c, w);
        ok &= e8p_nearest_bruteforce(w) == c;
    }
    CHECK(ok);
}

static void test_e81b(void) {
    const float *b = e81b_codebook();
    for (int i = 0; i < 8; i++) CHECK(b[8 * E81B_ORIGIN + i] == 0.0f);
    CHECK(b[0] == -1.0f && b[1] == -1.0f && b[2] == 0.0f && b[7] == 0.0f);
    int in_e8 = 1, n2ok = 1, distinct = 1;
    for (int k = 0; k < E81B_NCODES; k++) {
        double n2 = 0, s = 0;
        int allint = 1, allhalf = 1;
        for (int i = 0; i < 8; i++) {
            float v = b[8 * k + i];
            n2 += v * v;
            s += v;
            allint &= v == floorf(v);
            allhalf &= (v - floorf(v)) == 0.5f;
        }
        in_e8 &= (allint || allhalf) && fmod(s, 2.0) == 0.0;
        n2ok &= k < 241 ? n2 <= 2.0 : n2 == 4.0;
        for (int j = 0; j < k; j++) distinct &= memcmp(b + 8 * j, b + 8 * k, 32) != 0;
    }
    CHECK(in_e8);
    CHECK(n2ok);
    CHECK(distinct);
    CHECK(b[8 * 241 + 0] == 2.0f && b[8 * 255 + 6] == -2.0f);
    CHECK(e81b_nearest(b + 8 * 77) == 77);
}

static void test_rvq(void) {
    float a[8], r[8], o[8];
    e8p_decode(0x1234, a);
    e8p_decode(0xBEEF, r);
    rvq4_decode(0x1234, 0xBEEF, RVQ4_RESID_SCALE, o);
    for (int i = 0; i < 8; i++) CHECK(o[i] == a[i] + r[i] / RVQ4_RESID_SCALE);
    e81b_decode(200, r);
    rvq3_decode(0x1234, 200, RVQ3_RESID_SCALE, o);
    for (int i = 0; i < 8; i++) CHECK(o[i] == a[i] + r[i] / RVQ3_RESID_SCALE);
}

static void test_gpu_pack(void) {
    /* Awkward shape: both paddings active. */
    const int m = 19, nc = 13;
    uint16_t codes[19 * 13], back[19 * 13];
    harp_rng rng;
    harp_rng_seed(&rng, 7);
    for (int i = 0; i < m * nc; i++) codes[i] = (uint16_t)harp_rng_u64(&rng);
    size_t nw = e8p_gpu_words(m, nc);
    CHECK(nw == 32 * 16 / 4);
    uint64_t *w = calloc(nw, 8);
    e8p_pack_gpu(codes, m, nc, w);
    e8p_unpack_gpu(w, m, nc, back);
    CHECK(memcmp(codes, back, sizeof codes) == 0);
    /* §5.2.3 mapping, spelled out for row 3, code column 10: R 0, Kb 1, p 1, q 1, slot 1. */
    size_t widx = ((0 * 2 + 1) * 8 + 1) * 4 + 1;
    uint16_t c = codes[3 * nc + 10];
    CHECK(((w[widx] >> 8) & 255) == (uint64_t)(c >> 8));
    int ok = 1;
    for (int j = 0; j < 8; j++) ok &= ((w[widx] >> (32 + 4 * j + 1)) & 1) == (uint64_t)((c >> j) & 1);
    CHECK(ok);
    free(w);
}

int main(void) {
    test_gpu_pack();
    test_abs_table();
    test_decode_all();
    test_bruteforce_roundtrip();
    test_e81b();
    test_rvq();
    return t_done();
}
