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

/* Counts one check; a failure prints "file:line: ", prefix and the printf-style message. */
#define T_CHECK_(ok, prefix, ...)                                       \
    do {                                                                \
        if (ok) t_pass_++;                                              \
        else {                                                          \
            t_fail_++;                                                  \
            fprintf(stderr, "%s:%d: %s", __FILE__, __LINE__, prefix);   \
            fprintf(stderr, __VA_ARGS__);                               \
            fputc('\n', stderr);                                        \
        }                                                               \
    } while (0)

#define CHECK(cond) T_CHECK_(cond, "CHECK failed: ", "%s", #cond)
#define CHECK_MSG(cond, ...) T_CHECK_(cond, "CHECK failed: ", __VA_ARGS__)

/* |a - b| <= tol, printing both values on failure. */
#define CHECK_NEAR(a, b, tol)                                                                               \
    do {                                                                                                    \
        double ta_ = (double)(a), tb_ = (double)(b), tt_ = (double)(tol);                                    \
        T_CHECK_(fabs(ta_ - tb_) <= tt_, "CHECK_NEAR failed: ", "%s = %.9g, %s = %.9g, |diff| = %.3g > %.3g", \
                 #a, ta_, #b, tb_, fabs(ta_ - tb_), tt_);                                                   \
    } while (0)

#define CHECK_OK(expr)                                                                       \
    do {                                                                                     \
        int st_ = (int)(expr);                                                               \
        T_CHECK_(st_ == 0, "", "%s returned %d: %s", #expr, st_, harp_last_error());         \
    } while (0)

/* Relative RMS error of a against ref (sqrt(Σ(a − ref)² / Σ ref²); the absolute RMS when ref is all
 * zeros; infinity when a holds a NaN). */
static inline double t_rel_rms(const float *a, const float *ref, size_t n) {
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i])) return INFINITY;
        const double d = (double)a[i] - ref[i];
        e += d * d, r += (double)ref[i] * ref[i];
    }
    return r > 0 ? sqrt(e / r) : sqrt(e);
}

/* root/rel in a static ring of 32 buffers; root from the environment variable env, dflt when unset
 * or empty. */
static inline const char *t_path_(const char *env, const char *dflt, const char *rel) {
    static char bufs[32][4096];
    static int k;
    const char *root = getenv(env);
    if (!root || !*root) root = dflt;
    char *b = bufs[k++ & 31];
    snprintf(b, sizeof bufs[0], "%s/%s", root, rel);
    return b;
}

/* Path of a file under $HARP_SHARED (default ../shared); exits 77 (skip) if it is missing.
 * Returns a pointer into t_path_'s ring of 32 buffers (shared with t_data and t_tmp). */
static inline const char *t_shared(const char *rel) {
    const char *b = t_path_("HARP_SHARED", "../shared", rel);
    if (access(b, R_OK) != 0) {
        printf("SKIP: shared file %s is missing (set HARP_SHARED to the shared/ folder)\n", b);
        exit(77);
    }
    return b;
}

/* Path of a fixture under tests/data (HARP_TEST_DATA). */
static inline const char *t_data(const char *rel) { return t_path_("HARP_TEST_DATA", "tests/data", rel); }

/* Scratch directory for test outputs (HARP_TMP). */
static inline const char *t_tmp(const char *name) { return t_path_("HARP_TMP", "/tmp", name); }

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

/* main() of a test with a CPU half (no arguments, every build) and a device half (argument "gpu":
 * exit 77 without a CUDA build or a device). cpu and gpu are int (void) functions; gpu needs to exist
 * only in CUDA builds (never called otherwise). */
#ifdef HARP_HAVE_CUDA
#define T_CPU_GPU_MAIN(cpu, gpu)                                        \
    int main(int argc, char **argv) {                                   \
        if (argc < 2 || strcmp(argv[1], "gpu")) return cpu();           \
        T_REQUIRE_CUDA();                                               \
        return gpu();                                                   \
    }
#else
#define T_CPU_GPU_MAIN(cpu, gpu)                                        \
    int main(int argc, char **argv) {                                   \
        if (argc < 2 || strcmp(argv[1], "gpu")) return cpu();           \
        T_REQUIRE_CUDA();                                               \
    }
#endif

#endif
