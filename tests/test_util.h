/* Minimal test harness: CHECK macros that count and report, shared-data lookup that skips
 * (exit 77) with a clear message when ../shared is missing, and a closing "N passed, N failed". */
#ifndef HARP_TEST_UTIL_H
#define HARP_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int t_pass_, t_fail_;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (cond) t_pass_++;                                                        \
        else {                                                                      \
            t_fail_++;                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

#define CHECK_MSG(cond, ...)                                          \
    do {                                                              \
        if (cond) t_pass_++;                                          \
        else {                                                        \
            t_fail_++;                                                \
            fprintf(stderr, "%s:%d: CHECK failed: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                             \
            fputc('\n', stderr);                                      \
        }                                                             \
    } while (0)

/* |a - b| <= tol, printing both values on failure. */
#define CHECK_NEAR(a, b, tol)                                                             \
    do {                                                                                  \
        double ta_ = (double)(a), tb_ = (double)(b), tt_ = (double)(tol);                  \
        if (fabs(ta_ - tb_) <= tt_) t_pass_++;                                            \
        else {                                                                            \
            t_fail_++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g, %s = %.9g, |diff| = %.3g > %.3g\n", \
                    __FILE__, __LINE__, #a, ta_, #b, tb_, fabs(ta_ - tb_), tt_);         \
        }                                                                                 \
    } while (0)

#define CHECK_OK(expr)                                                                  \
    do {                                                                                \
        int st_ = (int)(expr);                                                          \
        if (st_ == 0) t_pass_++;                                                        \
        else {                                                                          \
            t_fail_++;                                                                  \
            fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #expr, st_, \
                    harp_last_error());                                                 \
        }                                                                               \
    } while (0)

/* Path of a file under $HARP_SHARED (default ../shared); exits 77 (skip) if it is missing.
 * Returns a pointer to a static buffer ring (8 entries). */
static inline const char *t_shared(const char *rel) {
    static char bufs[8][4096];
    static int k;
    const char *root = getenv("HARP_SHARED");
    if (!root || !*root) root = "../shared";
    char *b = bufs[k++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", root, rel);
    if (access(b, R_OK) != 0) {
        printf("SKIP: shared file %s is missing (set HARP_SHARED to the shared/ folder)\n", b);
        exit(77);
    }
    return b;
}

/* Path of a fixture under tests/data (HARP_TEST_DATA). */
static inline const char *t_data(const char *rel) {
    static char bufs[8][4096];
    static int k;
    const char *root = getenv("HARP_TEST_DATA");
    if (!root || !*root) root = "tests/data";
    char *b = bufs[k++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", root, rel);
    return b;
}

/* Scratch directory for test outputs (HARP_TMP). */
static inline const char *t_tmp(const char *name) {
    static char bufs[8][4096];
    static int k;
    const char *root = getenv("HARP_TMP");
    if (!root || !*root) root = "/tmp";
    char *b = bufs[k++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", root, name);
    return b;
}

static inline int t_done(void) {
    printf("%d passed, %d failed\n", t_pass_, t_fail_);
    return t_fail_ ? 1 : 0;
}

/* First statement of a GPU test's main(): exit 77 (skipped) in a build without CUDA or on a machine
 * without a device; the rest of main() sits in #ifdef HARP_HAVE_CUDA. */
#ifndef HARP_HAVE_CUDA
#define T_REQUIRE_CUDA()                                      \
    do {                                                      \
        printf("SKIP: built without -DHARP_CUDA=ON\n");       \
        return 77;                                            \
    } while (0)
#else
#define T_REQUIRE_CUDA()                                      \
    do {                                                      \
        if (!harp_cuda_available()) {                         \
            printf("SKIP: %s\n", harp_last_error());          \
            return 77;                                        \
        }                                                     \
    } while (0)
#endif

#endif
