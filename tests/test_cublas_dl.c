/* cuBLAS loaded at first use (src/cuda/cublas_dl.h); needs a CUDA build, not a device. One load per
 * process, so each case is its own ctest:
 *   (no argument)  libcublas is not mapped at start (linking it again costs every harp process
 *                  ~210 MB of RSS), the default search loads it and resolves every function, and
 *                  it is mapped afterwards;
 *   --missing      $HARP_CUBLAS names no file: every wrapper returns CUBLAS_STATUS_NOT_INITIALIZED
 *                  and harp_cublas_why() names the library and dlerror()'s reason;
 *   --lacks        $HARP_CUBLAS names a library without the functions (libcudart): the same, naming
 *                  the missing function. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "test_util.h"

#ifdef HARP_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "cuda/cublas_dl.h"

/* 1 when /proc/self/maps lists a file whose name contains `name`. */
static int mapped(const char *name) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, name) != NULL;
    fclose(f);
    return found;
}

static void check_unavailable(const char *lib, const char *reason) {
    CHECK(!harp_cublas_loaded());
    cublasHandle_t h = (cublasHandle_t)&h;
    const cublasStatus_t st = harp_cublas_create(&h);
    CHECK(st == CUBLAS_STATUS_NOT_INITIALIZED);
    CHECK(h == (cublasHandle_t)&h);   /* untouched */
    CHECK(harp_cublas_set_stream(h, NULL) == CUBLAS_STATUS_NOT_INITIALIZED);
    CHECK(harp_cublas_sgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, NULL, NULL, 1, NULL, 1, NULL, NULL, 1) ==
          CUBLAS_STATUS_NOT_INITIALIZED);
    CHECK(harp_cublas_destroy(h) == CUBLAS_STATUS_NOT_INITIALIZED);
    const char *why = harp_cublas_why(st);
    printf("status %d: %s\n", (int)st, why);
    CHECK_MSG(strstr(why, lib) != NULL, "the reason does not name %s: %s", lib, why);
    CHECK_MSG(strstr(why, reason) != NULL, "the reason does not say '%s': %s", reason, why);
    CHECK_MSG(!strchr(why, '\n'), "the reason is more than one line: %s", why);
    CHECK(mapped("libcublas") == 0);
}
#endif

int main(int argc, char **argv) {
#ifndef HARP_HAVE_CUDA
    (void)argc, (void)argv;
    printf("SKIP: built without -DHARP_CUDA=ON\n");
    return 77;
#else
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "--missing")) {
        setenv("HARP_CUBLAS", "/nonexistent/libcublas.so.99", 1);
        check_unavailable("/nonexistent/libcublas.so.99", "cannot open shared object file");
    } else if (!strcmp(mode, "--lacks")) {
        /* the soname harp links (libcudart.so.N): a bare libcudart.so may be absent from a runtime image */
        char name[64];
        snprintf(name, sizeof name, "libcudart.so.%d", CUDART_VERSION / 1000);
        setenv("HARP_CUBLAS", name, 1);
        check_unavailable(name, "lacks cublasCreate_v2");
    } else {
        unsetenv("HARP_CUBLAS");
        CHECK_MSG(mapped("libcublas") == 0, "libcublas is mapped before first use (is it linked again?)");
        CHECK_MSG(harp_cublas_loaded(), "cuBLAS did not load: %s", harp_cublas_why(CUBLAS_STATUS_NOT_INITIALIZED));
        CHECK(mapped("libcublas") == 1);
        CHECK(!strcmp(harp_cublas_why(CUBLAS_STATUS_INVALID_VALUE), "CUBLAS_STATUS_INVALID_VALUE"));
        /* Without a device cuBLAS itself refuses the handle; either way no crash and one clear line. */
        cublasHandle_t h = NULL;
        const cublasStatus_t st = harp_cublas_create(&h);
        printf("cublasCreate through the loaded library: %s\n", harp_cublas_why(st));
        if (st == CUBLAS_STATUS_SUCCESS) CHECK(harp_cublas_destroy(h) == CUBLAS_STATUS_SUCCESS);
    }
    return t_done();
#endif
}
