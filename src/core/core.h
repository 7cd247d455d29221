/* Internal helpers shared by every module: error reporting macros, file mapping, atomic writes,
 * deterministic RNG, hashing, timing. Not part of the public API. */
#ifndef HARP_CORE_H
#define HARP_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "harp/common.h"

/* ---- logging / errors ------------------------------------------------------------------------ */

#if defined(__GNUC__) || defined(__clang__)
#define HARP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define HARP_PRINTF(a, b)
#endif

void harp_log(harp_log_level level, const char *fmt, ...) HARP_PRINTF(2, 3);
void harp_logv(harp_log_level level, const char *fmt, va_list ap);

/* Records msg as the thread's last error, logs it at ERROR level and returns st, so that error
 * paths read `return harp_err(HARP_ERR_FORMAT, "%s: header length %llu past end of file", ...)`.
 * Messages name the file (or object) first, then the problem, in one line. */
harp_status harp_err(harp_status st, const char *fmt, ...) HARP_PRINTF(2, 3);

#define HARP_TRY(expr)                       \
    do {                                     \
        harp_status harp_try_st_ = (expr);   \
        if (harp_try_st_ != HARP_OK) return harp_try_st_; \
    } while (0)

#define HARP_UNUSED(x) ((void)(x))

/* ---- memory ---------------------------------------------------------------------------------- */

/* malloc/calloc that log an OOM error naming what was being allocated. Return NULL on failure. */
void *harp_xmalloc(size_t n, const char *what);
void *harp_xcalloc(size_t count, size_t size, const char *what);
/* 64-byte aligned allocation (free with harp_free_aligned). */
void *harp_aligned_alloc(size_t n, const char *what);
void harp_free_aligned(void *p);
/* Frees every pointer of a list, in order (NULL entries are fine): HARP_FREE_ALL(a, s->b, s). */
void harp_free_list(void *const *p, size_t n);
void harp_free_aligned_list(void *const *p, size_t n);
#define HARP_FREE_ALL(...) \
    harp_free_list((void *const[]){__VA_ARGS__}, sizeof((void *const[]){__VA_ARGS__}) / sizeof(void *))
#define HARP_FREE_ALIGNED_ALL(...) \
    harp_free_aligned_list((void *const[]){__VA_ARGS__}, sizeof((void *const[]){__VA_ARGS__}) / sizeof(void *))
char *harp_strdup(const char *s);

/* ---- files ----------------------------------------------------------------------------------- */

typedef struct harp_mapped {
    const uint8_t *data;
    size_t size;
    void *priv_;   /* mapping bookkeeping */
    int heap_;     /* 1: data is a malloc'd copy (small files), 0: an mmap */
} harp_mapped;

/* Maps a whole file read-only (empty files map to data = NULL, size = 0). Files under 1 MB are
 * read into memory instead: cheaper than mmap + page faults + munmap (whose TLB shootdowns
 * dominate loading small folders), and invisible to callers except through heap_. */
harp_status harp_map_file(const char *path, harp_mapped *out);
void harp_unmap_file(harp_mapped *m);

/* harp_read_file, harp_file_exists, harp_dir_exists, harp_mkdir_p, harp_write_file_atomic: public
 * (include/harp/common.h). */

/* The same for files that are small by nature (JSON configs): one larger than max bytes is refused
 * (HARP_ERR_FORMAT, naming the file) without being read into memory. */
harp_status harp_read_file_max(const char *path, size_t max, char **data, size_t *size);
/* Why path is not usable, for messages: "no such file or directory", "Too many levels of
 * symbolic links", "Permission denied", "is a directory", ... */
const char *harp_path_problem(const char *path);

/* Joins dir and name with a '/' into a malloc'd string. */
char *harp_path_join(const char *dir, const char *name);

/* Atomic output: writes go to "<path>.tmp.<pid>", commit fsyncs and renames over path (then syncs
 * the folder), abort removes the temporary. A crash never leaves a half-written file at path. */
typedef struct harp_atomic_file {
    void *fp;      /* FILE* */
    char *path;
    char *tmp;
    int failed;
} harp_atomic_file;

harp_status harp_atomic_open(harp_atomic_file *f, const char *path);
harp_status harp_atomic_write(harp_atomic_file *f, const void *data, size_t n);
harp_status harp_atomic_commit(harp_atomic_file *f);
void harp_atomic_abort(harp_atomic_file *f);

/* Advisory lock on an output folder, so that two harp processes never write one folder at once:
 * flock on DIR/.harp.lock (holding "pid what" for the message), taken without waiting. The second
 * taker gets HARP_ERR_IO at once with one line naming the folder and the holder. Release removes
 * the lock file; a process killed while holding it leaves the file behind, unlocked, and the next
 * run takes it over. */
typedef struct harp_dir_lock {
    int fd;        /* -1 when not held */
    char *path;
} harp_dir_lock;

harp_status harp_dir_lock_take(harp_dir_lock *lk, const char *dir, const char *what);
void harp_dir_lock_release(harp_dir_lock *lk);
/* Removes the NAME.tmp.PID files an interrupted writer left in dir; call with dir's lock held (no
 * live harp process is writing them then). Returns how many were removed. */
int harp_remove_stale_temps(const char *dir);

/* ---- deterministic RNG (xoshiro256**, seeded by splitmix64) ----------------------------------- */

typedef struct harp_rng {
    uint64_t s[4];
} harp_rng;

void harp_rng_seed(harp_rng *r, uint64_t seed);
uint64_t harp_rng_u64(harp_rng *r);
double harp_rng_uniform(harp_rng *r);          /* [0, 1) with 53 random bits */
double harp_rng_normal(harp_rng *r);           /* N(0, 1), Box–Muller (no cached second value) */
/* Derives an independent stream seed from a base seed and a tag (layer index, matrix id, ...). */
uint64_t harp_seed_mix(uint64_t seed, uint64_t tag);

/* ---- hashing --------------------------------------------------------------------------------- */

void harp_sha256(const void *data, size_t n, uint8_t out[32]);
void harp_sha256_hex(const void *data, size_t n, char out[65]);
uint64_t harp_fnv1a64(const void *data, size_t n, uint64_t h);   /* h = 0 to start */

/* ---- misc (harp_time_s and harp_utf8_valid are public: include/harp/common.h) ------------------ */

/* fp16 / bf16 → fp32 conversions (exact). */
float harp_f16_to_f32(uint16_t h);
float harp_bf16_to_f32(uint16_t h);
uint16_t harp_f32_to_f16(float f);   /* round to nearest even */
void harp_f16_to_f32_n(const uint16_t *src, float *dst, size_t n);   /* harp_f16_to_f32 of each, bit for bit */
/* 1 when every x[i] is finite and exactly an fp16 value (a checkpoint stored in fp16 and read into
 * fp32), so storing it as fp16 loses nothing; 0 otherwise. */
int harp_f16_exact(const float *x, size_t n);

/* Σ w[j]·x[j] in fp32 with four accumulators (columns j ≡ 0..3 mod 4, added as (s0 + s1) + (s2 + s3)):
 * the one summation order of every fp32 GEMV (the model's fp32 groups, the f32 quant type), so a
 * row's result does not depend on how rows are spread over threads. */
static inline float harp_dot4_f32(const float *w, const float *x, int64_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        s0 += w[j] * x[j];
        s1 += w[j + 1] * x[j + 1];
        s2 += w[j + 2] * x[j + 2];
        s3 += w[j + 3] * x[j + 3];
    }
    for (; j < n; j++) s0 += w[j] * x[j];
    return (s0 + s1) + (s2 + s3);
}

/* Kernels built twice by GCC (an AVX2 clone chosen at load time, and a default one); both clones do
 * the same IEEE operations (no FMA: fp-contract is off), so results do not depend on the CPU. Helpers
 * called from a cloned kernel are HARP_ALWAYS_INLINE so that each clone compiles its own copy. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define HARP_TARGET_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define HARP_TARGET_CLONES
#endif
#if defined(__GNUC__)
#define HARP_ALWAYS_INLINE __attribute__((always_inline))
#else
#define HARP_ALWAYS_INLINE
#endif

/* Lane shuffle of two 8 × 32-bit GNU vectors (indices 0–7: a, 8–15: b), for GCC and clang (the
 * libFuzzer build), which spell the builtin differently. */
typedef int32_t harp_v8i32 __attribute__((vector_size(32)));
#if defined(__clang__)
#define HARP_SHUF8(a, b, i0, i1, i2, i3, i4, i5, i6, i7) __builtin_shufflevector(a, b, i0, i1, i2, i3, i4, i5, i6, i7)
#else
#define HARP_SHUF8(a, b, i0, i1, i2, i3, i4, i5, i6, i7) \
    __builtin_shuffle(a, b, (harp_v8i32){i0, i1, i2, i3, i4, i5, i6, i7})
#endif

#endif
