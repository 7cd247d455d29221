/* cuBLAS loaded at first use (cublas_dl.h): dlopen + dlsym once per process (pthread_once). */
#define _POSIX_C_SOURCE 200809L
#ifdef HARP_HAVE_CUDA
#include "cuda/cublas_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SONAME_(v) "libcublas.so." #v
#define SONAME(v) SONAME_(v)
#define CUBLAS_SONAME SONAME(CUBLAS_VER_MAJOR)

/* The functions harp calls. cublas_v2.h maps some names to their _v2 symbols (cublasCreate is
 * cublasCreate_v2); SYM expands that macro before it stringizes, so dlsym asks for the exported name
 * and the pointer types come from the very declarations harp compiles against. */
#define CUBLAS_FUNCS(X)                                                                                    \
    X(create, cublasCreate) X(destroy, cublasDestroy) X(set_stream, cublasSetStream)                       \
    X(set_math_mode, cublasSetMathMode) X(gemm_ex, cublasGemmEx) X(sgemm, cublasSgemm)                     \
    X(sgemm_batched, cublasSgemmBatched)
#define SYM_(f) #f
#define SYM(f) SYM_(f)

static struct {
#define FIELD(field, fn) __typeof__(fn) *field;
    CUBLAS_FUNCS(FIELD)
#undef FIELD
} fns;
_Static_assert(sizeof(void *) == sizeof fns.create, "dlsym results must fit a function pointer");

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int ok;
static char why[512];

/* Where the runner scripts (scripts/gpu_pack.sh) and the toolkit put the library, after the soname. */
static const char *const k_dirs[] = {"/usr/local/cuda/lib64", "/usr/local/cuda/lib", "/usr/local/cuda/targets/x86_64-linux/lib"};

static void *open_lib(const char **name) {
    const char *env = getenv("HARP_CUBLAS");
    *name = env && *env ? env : CUBLAS_SONAME;
    void *lib = dlopen(*name, RTLD_NOW | RTLD_LOCAL);
    if (lib) return lib;
    const char *e = dlerror();
    snprintf(why, sizeof why, "cannot load cuBLAS %s (%s): %s", *name,
             env && *env ? "named by $HARP_CUBLAS" : "searched by soname, then in /usr/local/cuda",
             e ? e : "dlopen failed");
    for (size_t i = 0; !(env && *env) && i < sizeof k_dirs / sizeof k_dirs[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", k_dirs[i], CUBLAS_SONAME);
        if ((lib = dlopen(path, RTLD_NOW | RTLD_LOCAL))) return lib;
    }
    return NULL;
}

static void load(void) {
    const char *name;
    void *lib = open_lib(&name);
    if (!lib) return;
#define RESOLVE(field, fn)                                                               \
    {                                                                                    \
        void *s = dlsym(lib, SYM(fn));                                                   \
        if (!s) {                                                                        \
            const char *e = dlerror();                                                   \
            snprintf(why, sizeof why, "cuBLAS unusable: %s lacks %s: %s", name, SYM(fn), \
                     e ? e : "symbol not found");                                        \
            dlclose(lib);                                                                \
            return;                                                                      \
        }                                                                                \
        memcpy(&fns.field, &s, sizeof s);                                                \
    }
    CUBLAS_FUNCS(RESOLVE)
#undef RESOLVE
    why[0] = '\0';
    ok = 1;
}

int harp_cublas_loaded(void) {
    pthread_once(&once, load);
    return ok;
}

const char *harp_cublas_why(cublasStatus_t st) {
    if (!harp_cublas_loaded()) return why;
    switch (st) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "unknown cuBLAS status";
}

#define CALL(field, ...) (harp_cublas_loaded() ? fns.field(__VA_ARGS__) : CUBLAS_STATUS_NOT_INITIALIZED)

cublasStatus_t harp_cublas_create(cublasHandle_t *h) {
    return CALL(create, h);
}

cublasStatus_t harp_cublas_destroy(cublasHandle_t h) {
    return CALL(destroy, h);
}

cublasStatus_t harp_cublas_set_stream(cublasHandle_t h, cudaStream_t s) {
    return CALL(set_stream, h, s);
}

cublasStatus_t harp_cublas_set_math_mode(cublasHandle_t h, cublasMath_t mode) {
    return CALL(set_math_mode, h, mode);
}

cublasStatus_t harp_cublas_gemm_ex(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                   const void *alpha, const void *A, cudaDataType at, int lda, const void *B,
                                   cudaDataType bt, int ldb, const void *beta, void *C, cudaDataType ct, int ldc,
                                   cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    return CALL(gemm_ex, h, ta, tb, m, n, k, alpha, A, at, lda, B, bt, ldb, beta, C, ct, ldc, compute, algo);
}

cublasStatus_t harp_cublas_sgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                 const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                                 float *C, int ldc) {
    return CALL(sgemm, h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

cublasStatus_t harp_cublas_sgemm_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *const A[], int lda,
                                         const float *const B[], int ldb, const float *beta, float *const C[],
                                         int ldc, int batch) {
    return CALL(sgemm_batched, h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, batch);
}
#else
typedef int harp_cublas_dl_unused;   /* ISO C: a translation unit must not be empty */
#endif
