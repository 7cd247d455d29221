// Integer prefill GEMM of W/A/KV models (decode.h, "W/A/KV on the GPU"): per-token int8 activation
// quantization, the int8 × int8 → int32 product on the tensor cores through cuBLAS (IMMA; a dp4a
// kernel where cuBLAS refuses a shape), and the epilogue applying the row and column scales. Each
// kernel reproduces its C twin (dec_igemm.c) bit for bit: IEEE division and rint as the twin, no
// contraction (the epilogue's two products are separate roundings, __fmul_rn).
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <float.h>
#include <stdint.h>
#include <stdlib.h>

extern "C" {
#include "core/core.h"
#include "cuda/decode.h"
}
#include "cuda/cublas_dl.h"

namespace {

constexpr int kQuantThreads = 256;

harp_status launched(const char *what) {
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "cuda int8 gemm: %s: %s", what, cudaGetErrorString(e));
}

__device__ __forceinline__ float load_x(const float *x, int c) { return x[c]; }
__device__ __forceinline__ float load_x(const __half *x, int c) { return __half2float(x[c]); }
__device__ __forceinline__ float4 load_x4(const float *x, int c) { return *reinterpret_cast<const float4 *>(x + c); }
__device__ __forceinline__ float4 load_x4(const __half *x, int c) {
    const uint2 u = *reinterpret_cast<const uint2 *>(x + c);
    const float2 a = __half22float2(*reinterpret_cast<const __half2 *>(&u.x)), b = __half22float2(*reinterpret_cast<const __half2 *>(&u.y));
    return make_float4(a.x, a.y, b.x, b.y);
}

// Columns c4 .. c4+3 of a row, zeros at and beyond k; one vector load when the rows allow it (vec:
// X 16-byte (fp32) / 8-byte (fp16) aligned and ldx a multiple of 4, so every row is).
template <class T>
__device__ __forceinline__ void load4(const T *x, int c4, int k, bool vec, float v[4]) {
    if (vec && c4 + 3 < k) {
        const float4 f = load_x4(x, c4);
        v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
        return;
    }
#pragma unroll
    for (int u = 0; u < 4; u++) v[u] = c4 + u < k ? load_x(x, c4 + u) : 0.0f;
}

// The row's scale from each thread's partial range (a CTA of kQuantThreads): block reduction, then
// the quantizer's s = clip·max|x| / qmax (0 → 1, < FLT_MIN → FLT_MIN).
__device__ float row_scale(float mn, float mx, int qmax, float clip) {
    __shared__ float s_mn[kQuantThreads / 32], s_mx[kQuantThreads / 32];
    const int tid = threadIdx.x;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, o)), mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if ((tid & 31) == 0) s_mn[tid >> 5] = mn, s_mx[tid >> 5] = mx;
    __syncthreads();
    mn = 0.0f, mx = 0.0f;
    for (int w = 0; w < kQuantThreads / 32; w++) mn = fminf(mn, s_mn[w]), mx = fmaxf(mx, s_mx[w]);
    const float a = fmaxf(-__fmul_rn(mn, clip), __fmul_rn(mx, clip));
    const float s = a == 0.0f ? 1.0f : __fdiv_rn(a, (float)qmax);
    return s < FLT_MIN ? FLT_MIN : s;
}

// One CTA per row: the row's range (block reduction; the zero padding cannot change it, the range
// always holds 0), then four columns per thread into one char4 store (ldq is a multiple of 16, so every
// char4 is aligned; columns in [k, ldq) get zeros).
template <class T>
__global__ void __launch_bounds__(kQuantThreads) aq_rows_kernel(const T *X, int k, int ldx, bool vec, int qmax, float clip,
                                                                int8_t *Q, int ldq, float *sa) {
    const int r = blockIdx.x, tid = threadIdx.x;
    const T *x = X + (size_t)r * ldx;
    float mn = 0.0f, mx = 0.0f, v[4];
    for (int c4 = 4 * tid; c4 < k; c4 += 4 * kQuantThreads) {
        load4(x, c4, k, vec, v);
#pragma unroll
        for (int u = 0; u < 4; u++) mn = fminf(mn, v[u]), mx = fmaxf(mx, v[u]);
    }
    const float s = row_scale(mn, mx, qmax, clip);
    if (tid == 0) sa[r] = s;
    const float lo = (float)(-qmax - 1), hi = (float)qmax;
    int8_t *q = Q + (size_t)r * ldq;
    for (int c4 = 4 * tid; c4 < ldq; c4 += 4 * kQuantThreads) {
        load4(x, c4, k, vec, v);   // zeros beyond k quantize to 0
        char4 o;
        o.x = (signed char)(int)fminf(fmaxf(rintf(__fdiv_rn(v[0], s)), lo), hi);
        o.y = (signed char)(int)fminf(fmaxf(rintf(__fdiv_rn(v[1], s)), lo), hi);
        o.z = (signed char)(int)fminf(fmaxf(rintf(__fdiv_rn(v[2], s)), lo), hi);
        o.w = (signed char)(int)fminf(fmaxf(rintf(__fdiv_rn(v[3], s)), lo), hi);
        *reinterpret_cast<char4 *>(q + c4) = o;
    }
}

__device__ __forceinline__ void load16(const float *x, float v[4]) {
    const float4 f = *reinterpret_cast<const float4 *>(x);
    v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
}
__device__ __forceinline__ void load16(const __half *x, float v[8]) {
    const uint4 u = *reinterpret_cast<const uint4 *>(x);
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 f = __half22float2(*reinterpret_cast<const __half2 *>(&w[i]));
        v[2 * i] = f.x, v[2 * i + 1] = f.y;
    }
}
__device__ __forceinline__ signed char code_of(float v, float s, float lo, float hi) {
    return (signed char)(int)fminf(fmaxf(rintf(__fdiv_rn(v, s)), lo), hi);
}

// aq_rows_kernel with the row read once: each thread holds NC 16-byte chunks (chunk i of thread t at
// columns (t + i·256)·E) in registers across the range reduction, so the row is not read a second
// time, and its codes go out as one 8- (fp16) or 4-byte (fp32) store per chunk. Rows 16-byte aligned;
// the same operations per element as aq_rows_kernel, so the same codes and scales.
template <class T, int NC>
__global__ void __launch_bounds__(kQuantThreads) aq_rows_reg_kernel(const T *X, int k, int ldx, int qmax, float clip, int8_t *Q,
                                                                    int ldq, float *sa) {
    constexpr int E = 16 / sizeof(T);
    const int r = blockIdx.x, tid = threadIdx.x;
    const T *x = X + (size_t)r * ldx;
    float v[NC][E], mn = 0.0f, mx = 0.0f;
#pragma unroll
    for (int i = 0; i < NC; i++) {
        const int c0 = (tid + i * kQuantThreads) * E;
        if (c0 + E <= k) load16(x + c0, v[i]);
        else
#pragma unroll
            for (int u = 0; u < E; u++) v[i][u] = c0 + u < k ? load_x(x, c0 + u) : 0.0f;
#pragma unroll
        for (int u = 0; u < E; u++) mn = fminf(mn, v[i][u]), mx = fmaxf(mx, v[i][u]);
    }
    const float s = row_scale(mn, mx, qmax, clip);
    if (tid == 0) sa[r] = s;
    const float lo = (float)(-qmax - 1), hi = (float)qmax;
    int8_t *q = Q + (size_t)r * ldq;
#pragma unroll
    for (int i = 0; i < NC; i++) {
        const int c0 = (tid + i * kQuantThreads) * E;
        if (c0 >= ldq) break;   // ldq is a multiple of 16, so a chunk that starts inside fits
        if constexpr (E == 8) {
            char4 o0, o1;
            o0.x = code_of(v[i][0], s, lo, hi), o0.y = code_of(v[i][1], s, lo, hi), o0.z = code_of(v[i][2], s, lo, hi),
            o0.w = code_of(v[i][3], s, lo, hi);
            o1.x = code_of(v[i][4], s, lo, hi), o1.y = code_of(v[i][5], s, lo, hi), o1.z = code_of(v[i][6], s, lo, hi),
            o1.w = code_of(v[i][7], s, lo, hi);
            *reinterpret_cast<int2 *>(q + c0) = make_int2(*reinterpret_cast<const int *>(&o0), *reinterpret_cast<const int *>(&o1));
        } else {
            char4 o;
            o.x = code_of(v[i][0], s, lo, hi), o.y = code_of(v[i][1], s, lo, hi), o.z = code_of(v[i][2], s, lo, hi),
            o.w = code_of(v[i][3], s, lo, hi);
            *reinterpret_cast<char4 *>(q + c0) = o;
        }
    }
}

template <class T>
bool launch_reg(const T *X, int rows, int k, int ldx, int qmax, float clip, int8_t *Q, int ldq, float *sa, cudaStream_t st) {
    constexpr int E = 16 / sizeof(T);
    if ((uintptr_t)X % 16 || (ldx * sizeof(T)) % 16) return false;
    const int nc = (ldq + kQuantThreads * E - 1) / (kQuantThreads * E);
    if (nc == 1) aq_rows_reg_kernel<T, 1><<<rows, kQuantThreads, 0, st>>>(X, k, ldx, qmax, clip, Q, ldq, sa);
    else if (nc == 2) aq_rows_reg_kernel<T, 2><<<rows, kQuantThreads, 0, st>>>(X, k, ldx, qmax, clip, Q, ldq, sa);
    else if (nc <= 4) aq_rows_reg_kernel<T, 4><<<rows, kQuantThreads, 0, st>>>(X, k, ldx, qmax, clip, Q, ldq, sa);
    else if (nc <= 8) aq_rows_reg_kernel<T, 8><<<rows, kQuantThreads, 0, st>>>(X, k, ldx, qmax, clip, Q, ldq, sa);
    else return false;
    return true;
}

// Fallback product where cuBLAS refuses: one thread per C entry, 4 int8 pairs per dp4a (exact).
__global__ void igemm_dp4a_kernel(const int8_t *Q, int ldq, int rows, const int8_t *W, int ldw, int m, int kpad, int32_t *C,
                                  int ldc) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x, r = blockIdx.y;
    if (j >= m || r >= rows) return;
    const int *a = reinterpret_cast<const int *>(Q + (size_t)r * ldq), *w = reinterpret_cast<const int *>(W + (size_t)j * ldw);
    int acc = 0;
    for (int c = 0; c < kpad / 4; c++) acc = __dp4a(a[c], w[c], acc);
    C[(size_t)r * ldc + j] = acc;
}

__device__ __forceinline__ void store4(float *y, const float v[4]) { *reinterpret_cast<float4 *>(y) = make_float4(v[0], v[1], v[2], v[3]); }
__device__ __forceinline__ void store4(__half *y, const float v[4]) {
    const __half2 a = __floats2half2_rn(v[0], v[1]), b = __floats2half2_rn(v[2], v[3]);
    uint2 u;
    u.x = *reinterpret_cast<const uint32_t *>(&a), u.y = *reinterpret_cast<const uint32_t *>(&b);
    *reinterpret_cast<uint2 *>(y) = u;
}
__device__ __forceinline__ void store1(float *y, float v) { *y = v; }
__device__ __forceinline__ void store1(__half *y, float v) { *y = __float2half_rn(v); }

// Four columns per thread: one int4 load of C (ldc is a multiple of 4) and, when vec (sw 16-byte and
// Y 16 / 8-byte aligned, ldy a multiple of 4), one vector load of sw and one vector store of Y.
template <class T>
__global__ void iepi_kernel(const int32_t *C, int ldc, int m, const float *sa, const float *sw, const int32_t *corr, const int32_t *rs,
                            T *Y, int ldy, bool vec) {
    const int r = blockIdx.y, j4 = 4 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (j4 >= m) return;
    const float s = sa[r];
    const int4 c = *reinterpret_cast<const int4 *>(C + (size_t)r * ldc + j4);
    int cv[4] = {c.x, c.y, c.z, c.w};
    if (corr) {   // columns beyond m hold C's padding; their sums are never stored
        const int cr = corr[r];
#pragma unroll
        for (int u = 0; u < 4; u++)
            if (j4 + u < m) cv[u] += cr * rs[j4 + u];
    }
    float v[4];
    T *y = Y + (size_t)r * ldy + j4;
    if (vec && j4 + 3 < m) {
        const float4 w = *reinterpret_cast<const float4 *>(sw + j4);
        const float wv[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int u = 0; u < 4; u++) v[u] = __fmul_rn(__fmul_rn((float)cv[u], s), wv[u]);
        store4(y, v);
        return;
    }
#pragma unroll
    for (int u = 0; u < 4; u++)
        if (j4 + u < m) store1(y + u, __fmul_rn(__fmul_rn((float)cv[u], s), sw[j4 + u]));
}

int g_fallbacks = 0;   // products the dp4a kernel computed because cuBLAS refused (dec_igemm_fallbacks)

harp_status check_args(int rows, int m, int k, int ldq, int ldw, int ldc) {
    const int kpad = dec_ikpad(k);
    if (rows < 1 || m < 1 || k < 1 || ldq < kpad || ldq % 16 || ldw < kpad || ldw % 16 || ldc < m || ldc % 4)
        return harp_err(HARP_ERR_SHAPE, "cuda int8 gemm: rows %d, m %d, k %d, ldq %d, ldw %d, ldc %d (leading dimensions ≥ "
                                        "kpad %d and multiples of 16; ldc ≥ m, multiple of 4)", rows, m, k, ldq, ldw, ldc, kpad);
    return HARP_OK;
}

}  // namespace

extern "C" harp_status dec_aq_rows(const void *X, int x_f16, int rows, int k, int ldx, int qmax, float clip, int8_t *Q, int ldq,
                                   float *sa, dec_stream stream) {
    if ((qmax != 127 && qmax != 7) || !(clip > 0.0f && clip <= 1.0f) || rows < 1 || k < 1 || ldx < k || ldq < k || ldq % 16)
        return harp_err(HARP_ERR_INVALID_ARG, "cuda int8 activations: qmax %d, clip %g, rows %d, k %d, ldx %d, ldq %d", qmax,
                        (double)clip, rows, k, ldx, ldq);
    cudaStream_t st = (cudaStream_t)stream;
    if (x_f16 ? launch_reg((const __half *)X, rows, k, ldx, qmax, clip, Q, ldq, sa, st)
              : launch_reg((const float *)X, rows, k, ldx, qmax, clip, Q, ldq, sa, st))
        return launched("quantize rows");
    const bool vec = ldx % 4 == 0 && (uintptr_t)X % (x_f16 ? 8 : 16) == 0;
    if (x_f16) aq_rows_kernel<__half><<<rows, kQuantThreads, 0, st>>>((const __half *)X, k, ldx, vec, qmax, clip, Q, ldq, sa);
    else aq_rows_kernel<float><<<rows, kQuantThreads, 0, st>>>((const float *)X, k, ldx, vec, qmax, clip, Q, ldq, sa);
    return launched("quantize rows");
}

extern "C" harp_status dec_igemm(void *blas, const int8_t *Q, int ldq, int rows, const int8_t *W, int ldw, int m, int kpad,
                                 int32_t *C, int ldc, dec_stream stream) {
    HARP_TRY(check_args(rows, m, kpad, ldq, ldw, ldc));
    if (kpad % 16) return harp_err(HARP_ERR_SHAPE, "cuda int8 gemm: kpad %d is not a multiple of 16", kpad);
    cublasHandle_t h = (cublasHandle_t)blas;
    if (harp_cublas_set_stream(h, (cudaStream_t)stream) != CUBLAS_STATUS_SUCCESS)
        return harp_err(HARP_ERR_NO_DEVICE, "cuda int8 gemm: cublasSetStream failed");
    const int32_t one = 1, zero = 0;
    // row-major C = Q·Wᵀ ⇔ column-major Cᵀ (m × rows) = Wᵀᵀ·Qᵀ: A = W (op T, lda ldw), B = Q (op N, ldb ldq)
    const cublasStatus_t st = harp_cublas_gemm_ex(h, CUBLAS_OP_T, CUBLAS_OP_N, m, rows, kpad, &one, W, CUDA_R_8I, ldw, Q, CUDA_R_8I,
                                                  ldq, &zero, C, CUDA_R_32I, ldc, CUBLAS_COMPUTE_32I, CUBLAS_GEMM_DEFAULT);
    if (st == CUBLAS_STATUS_SUCCESS) return HARP_OK;
    if (st != CUBLAS_STATUS_NOT_SUPPORTED && st != CUBLAS_STATUS_INVALID_VALUE)
        return harp_err(HARP_ERR_NO_DEVICE, "cuda int8 gemm: cublasGemmEx: %s", harp_cublas_why(st));
    __atomic_fetch_add(&g_fallbacks, 1, __ATOMIC_RELAXED);
    igemm_dp4a_kernel<<<dim3((m + 127) / 128, rows), 128, 0, (cudaStream_t)stream>>>(Q, ldq, rows, W, ldw, m, kpad, C, ldc);
    return launched("dp4a fallback");
}

extern "C" int dec_igemm_fallbacks(void) { return __atomic_load_n(&g_fallbacks, __ATOMIC_RELAXED); }

extern "C" harp_status dec_iepi(const int32_t *C, int ldc, int rows, int m, const float *sa, const float *sw, const int32_t *corr,
                                const int32_t *rs, void *Y, int y_f16, int ldy, dec_stream stream) {
    if (!corr != !rs) return harp_err(HARP_ERR_INVALID_ARG, "cuda int8 epilogue: a correction needs both corr and rs");
    if (rows < 1 || m < 1 || ldc < m || ldc % 4 || ldy < m)
        return harp_err(HARP_ERR_SHAPE, "cuda int8 epilogue: rows %d, m %d, ldc %d, ldy %d", rows, m, ldc, ldy);
    const dim3 grid((m + 4 * 128 - 1) / (4 * 128), rows);
    cudaStream_t st = (cudaStream_t)stream;
    const bool vec = ldy % 4 == 0 && (uintptr_t)sw % 16 == 0 && (uintptr_t)Y % (y_f16 ? 8 : 16) == 0;
    if (y_f16) iepi_kernel<__half><<<grid, 128, 0, st>>>(C, ldc, m, sa, sw, corr, rs, (__half *)Y, ldy, vec);
    else iepi_kernel<float><<<grid, 128, 0, st>>>(C, ldc, m, sa, sw, corr, rs, (float *)Y, ldy, vec);
    return launched("epilogue");
}

extern "C" harp_status dec_iweights_upload(const dec_qplanes *q, const char *what, const float *mul, int8_t **W, float **sw,
                                           int32_t **rs) {
    *W = nullptr, *sw = nullptr;
    if (rs) *rs = nullptr;
    const int kpad = dec_ikpad(q->n);
    int8_t *hw = (int8_t *)malloc((size_t)q->m * (size_t)kpad);
    float *hs = (float *)malloc(sizeof(float) * (size_t)q->m);
    int32_t *hr = rs ? (int32_t *)malloc(sizeof(int32_t) * (size_t)q->m) : nullptr;
    harp_status st = hw && hs && (hr || !rs) ? dec_iweights_from_qplanes(q, what, hw, kpad, hs)
                                             : harp_err(HARP_ERR_OOM, "%s: out of host memory", what);
    for (int32_t j = 0; st == HARP_OK && mul && j < q->m; j++) hs[j] *= mul[j];
    for (int32_t j = 0; st == HARP_OK && rs && j < q->m; j++) {
        int32_t t = 0;
        for (int c = 0; c < kpad; c++) t += hw[(size_t)j * kpad + c];
        hr[j] = t;
    }
    if (st == HARP_OK && (cudaMalloc((void **)W, (size_t)q->m * (size_t)kpad) != cudaSuccess ||
                          cudaMalloc((void **)sw, sizeof(float) * (size_t)q->m) != cudaSuccess ||
                          (rs && cudaMalloc((void **)rs, sizeof(int32_t) * (size_t)q->m) != cudaSuccess) ||
                          cudaMemcpy(*W, hw, (size_t)q->m * (size_t)kpad, cudaMemcpyHostToDevice) != cudaSuccess ||
                          cudaMemcpy(*sw, hs, sizeof(float) * (size_t)q->m, cudaMemcpyHostToDevice) != cudaSuccess ||
                          (rs && cudaMemcpy(*rs, hr, sizeof(int32_t) * (size_t)q->m, cudaMemcpyHostToDevice) != cudaSuccess)))
        st = harp_err(HARP_ERR_NO_DEVICE, "%s: int8 weight upload: %s", what, cudaGetErrorString(cudaGetLastError()));
    if (st != HARP_OK) {
        cudaFree(*W), cudaFree(*sw), *W = nullptr, *sw = nullptr;
        if (rs) cudaFree(*rs), *rs = nullptr;
    }
    free(hw), free(hs), free(hr);
    return st;
}

extern "C" harp_status dec_ilinear(void *blas, const int8_t *W, const float *sw, int m, int k, const void *X, int x_f16, int ldx,
                                   int rows, int qmax, float clip, float *Y, int ldy, int8_t *ws_q, float *ws_sa, int32_t *ws_c,
                                   dec_stream stream) {
    const int kpad = dec_ikpad(k);
    HARP_TRY(dec_aq_rows(X, x_f16, rows, k, ldx, qmax, clip, ws_q, kpad, ws_sa, stream));
    return dec_igemm_scaled(blas, ws_q, kpad, rows, W, kpad, m, kpad, ws_sa, sw, NULL, NULL, Y, ldy, ws_c, stream);
}

extern "C" harp_status dec_igemm_scaled(void *blas, const int8_t *Q, int ldq, int rows, const int8_t *W, int ldw, int m, int kpad,
                                        const float *sa, const float *sw, const int32_t *corr, const int32_t *rs, float *Y, int ldy,
                                        int32_t *ws_c, dec_stream stream) {
    if (dec_igemm_epi_pays(rows, m)) return dec_igemm_epi(Q, ldq, rows, W, ldw, m, kpad, sa, sw, corr, rs, Y, ldy, stream);
    const int ldc = dec_ildc(m);
    HARP_TRY(dec_igemm(blas, Q, ldq, rows, W, ldw, m, kpad, ws_c, ldc, stream));
    return dec_iepi(ws_c, ldc, rows, m, sa, sw, corr, rs, Y, 0, ldy, stream);
}
