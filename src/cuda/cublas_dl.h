/* cuBLAS, loaded at first use (dlopen) instead of linked: the dynamic loader maps and relocates
 * libcublasLt at process start, about 210 MB of resident memory in every harp process of a CUDA
 * build, GPU work or not (docs/design.md, "Backends"). harp calls cuBLAS only through these
 * wrappers (CUDA builds only); each has the signature and status of the cuBLAS function it names.
 *
 * The library is libcublas.so.<CUBLAS_VER_MAJOR> of the headers harp was built with (or the path /
 * soname in $HARP_CUBLAS), looked up by soname first (LD_LIBRARY_PATH or the loader's --library-path,
 * the executable's RUNPATH, ld.so.cache) and then in the CUDA toolkit's usual lib folders. When it
 * cannot be loaded or lacks a function, every wrapper returns CUBLAS_STATUS_NOT_INITIALIZED and
 * harp_cublas_why() says why in one line (the library and dlerror()). Loading is thread safe. */
#ifndef HARP_CUDA_CUBLAS_DL_H
#define HARP_CUDA_CUBLAS_DL_H
#ifdef HARP_HAVE_CUDA
#include <cublas_v2.h>

#ifdef __cplusplus
extern "C" {
#endif

cublasStatus_t harp_cublas_create(cublasHandle_t *h);
cublasStatus_t harp_cublas_destroy(cublasHandle_t h);
cublasStatus_t harp_cublas_set_stream(cublasHandle_t h, cudaStream_t s);
cublasStatus_t harp_cublas_set_math_mode(cublasHandle_t h, cublasMath_t mode);
cublasStatus_t harp_cublas_gemm_ex(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                   const void *alpha, const void *A, cudaDataType at, int lda, const void *B,
                                   cudaDataType bt, int ldb, const void *beta, void *C, cudaDataType ct, int ldc,
                                   cublasComputeType_t compute, cublasGemmAlgo_t algo);
cublasStatus_t harp_cublas_sgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                 const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                                 float *C, int ldc);
cublasStatus_t harp_cublas_sgemm_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *const A[], int lda,
                                         const float *const B[], int ldb, const float *beta, float *const C[],
                                         int ldc, int batch);

/* Loads cuBLAS now (once per process): 1 when every function above is available, else 0. */
int harp_cublas_loaded(void);

/* One line for a failed status: why the library could not be loaded, else the status's name. */
const char *harp_cublas_why(cublasStatus_t st);

#ifdef __cplusplus
}
#endif
#endif /* HARP_HAVE_CUDA */
#endif
