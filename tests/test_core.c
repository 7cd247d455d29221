/* Core helpers: status names, last error, atomic writes, file mapping, folder locks, RNG determinism,
 * sha256, fp16, UTF-8. */
#include <math.h>
#include <stdint.h>

#include "core/core.h"
#include "harp.h"
#include "test_util.h"

static void test_errors(void) {
    harp_set_log_level(HARP_LOG_NONE);
    harp_status st = harp_err(HARP_ERR_FORMAT, "%s: bad header", "x.bin");
    CHECK(st == HARP_ERR_FORMAT);
    CHECK(strcmp(harp_last_error(), "x.bin: bad header") == 0);
    CHECK(strcmp(harp_status_str(HARP_ERR_IO), "I/O error") == 0);
    harp_mapped m;
    CHECK(harp_map_file("/nonexistent/harp", &m) == HARP_ERR_IO);
    CHECK(strstr(harp_last_error(), "/nonexistent/harp") != NULL);
}

static void test_atomic(void) {
    const char *p = t_tmp("core_atomic.txt");
    CHECK_OK(harp_write_file_atomic(p, "hello", 5));
    char *d = NULL;
    size_t n = 0;
    CHECK_OK(harp_read_file(p, &d, &n));
    CHECK(n == 5 && d && memcmp(d, "hello", 5) == 0);
    free(d);
    harp_atomic_file f;
    CHECK_OK(harp_atomic_open(&f, p));
    harp_atomic_write(&f, "zzz", 3);
    harp_atomic_abort(&f);   /* the committed file must be untouched */
    CHECK_OK(harp_read_file(p, &d, &n));
    CHECK(n == 5 && memcmp(d, "hello", 5) == 0);
    free(d);
}

/* Small files are read, large ones mapped: the same bytes either way; the size limit refuses. */
static void test_map_and_limits(void) {
    const char *small = t_tmp("core_small.bin"), *big = t_tmp("core_big.bin");
    size_t nb = (size_t)3 << 20;
    uint8_t *b = malloc(nb);
    for (size_t i = 0; i < nb; i++) b[i] = (uint8_t)(i * 131 + 7);
    CHECK_OK(harp_write_file_atomic(small, b, 1000));
    CHECK_OK(harp_write_file_atomic(big, b, nb));
    harp_mapped m;
    CHECK_OK(harp_map_file(small, &m));
    CHECK(m.size == 1000 && m.heap_ == 1 && memcmp(m.data, b, 1000) == 0);
    harp_unmap_file(&m);
    CHECK_OK(harp_map_file(big, &m));
    CHECK(m.size == nb && m.heap_ == 0 && memcmp(m.data, b, nb) == 0);
    harp_unmap_file(&m);
    char *d = NULL;
    size_t n = 0;
    CHECK(harp_read_file_max(big, 4096, &d, &n) == HARP_ERR_FORMAT && d == NULL);
    CHECK(strstr(harp_last_error(), "core_big.bin") && strstr(harp_last_error(), "too large"));
    CHECK_OK(harp_read_file_max(small, 4096, &d, &n));
    CHECK(n == 1000);
    free(d);
    free(b);
}

/* The folder lock: a second taker (another open file description, as another process would have)
 * is refused at once naming the holder; release removes the lock file; leftover temporaries of an
 * interrupted writer are removed, other files are kept. */
static void test_dir_lock(void) {
    const char *dir = t_tmp("core_lockdir");
    CHECK_OK(harp_mkdir_p(dir));
    harp_dir_lock a = {-1, NULL}, b = {-1, NULL};
    CHECK_OK(harp_dir_lock_take(&a, dir, "test writer"));
    CHECK(harp_dir_lock_take(&b, dir, "second writer") == HARP_ERR_IO);
    CHECK(strstr(harp_last_error(), "in use by another harp process") && strstr(harp_last_error(), "test writer"));
    char *lockp = harp_path_join(dir, ".harp.lock");
    CHECK(harp_file_exists(lockp));
    harp_dir_lock_release(&a);
    CHECK(!harp_file_exists(lockp));
    CHECK_OK(harp_dir_lock_take(&b, dir, "second writer"));
    char *t1 = harp_path_join(dir, "layer_003.hess.tmp.12345"), *keep = harp_path_join(dir, "notes.tmp.txt");
    CHECK_OK(harp_write_file_atomic(t1, "x", 1));
    CHECK_OK(harp_write_file_atomic(keep, "x", 1));
    CHECK(harp_remove_stale_temps(dir) == 1);
    CHECK(!harp_file_exists(t1) && harp_file_exists(keep));
    harp_dir_lock_release(&b);
    harp_dir_lock_release(&b);   /* idempotent */
    free(lockp);
    free(t1);
    free(keep);
}

static void test_rng(void) {
    harp_rng a, b;
    harp_rng_seed(&a, 42);
    harp_rng_seed(&b, 42);
    int same = 1;
    double s = 0, s2 = 0;
    for (int i = 0; i < 100000; i++) {
        double x = harp_rng_normal(&a), y = harp_rng_normal(&b);
        same &= x == y;
        s += x;
        s2 += x * x;
    }
    CHECK(same);
    CHECK_NEAR(s / 1e5, 0.0, 0.02);
    CHECK_NEAR(s2 / 1e5, 1.0, 0.02);
    CHECK(harp_seed_mix(1, 2) != harp_seed_mix(1, 3));
}

static void test_hash_and_half(void) {
    char hex[65];
    harp_sha256_hex("abc", 3, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    /* every finite fp16 value survives f16 -> f32 -> f16 */
    int ok = 1;
    for (uint32_t h = 0; h < 65536; h++) {
        if (((h >> 10) & 0x1F) == 31) continue;
        ok &= harp_f32_to_f16(harp_f16_to_f32((uint16_t)h)) == h;
    }
    CHECK(ok);
    CHECK(harp_f16_to_f32(0x3C00) == 1.0f);
    {   /* the bulk widening: the same bits as the scalar one for every fp16 value, NaNs included */
        uint16_t *hs = malloc(65536 * sizeof *hs);
        float *fs = malloc(65536 * sizeof *fs);
        int same = hs && fs;
        for (uint32_t h = 0; same && h < 65536; h++) hs[h] = (uint16_t)h;
        if (same) harp_f16_to_f32_n(hs, fs, 65536);
        for (uint32_t h = 0; same && h < 65536; h++) {
            const float f = harp_f16_to_f32((uint16_t)h);
            same &= !memcmp(&f, &fs[h], sizeof f);
        }
        CHECK(same);
        free(hs), free(fs);
    }
    CHECK(harp_bf16_to_f32(0x3F80) == 1.0f);
    CHECK(harp_f32_to_f16(1.0f + 1.0f / 4096) == 0x3C00);   /* ties to even */
    /* harp_f16_exact agrees with the round trip on every finite fp16 value and its fp32 neighbours */
    int agree = 1;
    for (uint32_t h = 0; h < 65536; h++) {
        if (((h >> 10) & 0x1F) == 31) continue;
        const float f = harp_f16_to_f32((uint16_t)h);
        float v[3] = {f, nextafterf(f, INFINITY), nextafterf(f, -INFINITY)};
        for (int k = 0; k < 3; k++) {
            const int rt = isfinite(v[k]) && harp_f16_to_f32(harp_f32_to_f16(v[k])) == v[k];
            agree &= harp_f16_exact(&v[k], 1) == rt;
        }
    }
    CHECK(agree);
    const float some[4] = {0.5f, -0.0f, 65504.0f, 5.9604645e-8f};
    CHECK(harp_f16_exact(some, 4));
    const float bad[3] = {1.0f, INFINITY, 1.0f}, big[2] = {65520.0f, 1.0f};
    CHECK(!harp_f16_exact(bad, 3) && !harp_f16_exact(big, 2) && harp_f16_exact(bad, 1));
}

static void test_utf8(void) {
    CHECK(harp_utf8_valid("h\xc3\xa9llo \xf0\x9f\x98\x80", 11));
    CHECK(!harp_utf8_valid("\xc3", 1));
    CHECK(!harp_utf8_valid("\xc0\xaf", 2));      /* overlong */
    CHECK(!harp_utf8_valid("\xed\xa0\x80", 3));  /* surrogate */
    CHECK(!harp_utf8_valid("\xff", 1));
}

int main(void) {
    test_errors();
    test_atomic();
    test_map_and_limits();
    test_dir_lock();
    test_rng();
    test_hash_and_half();
    test_utf8();
    return t_done();
}
