// E8P12 / RVQ decode-GEMV on CUDA for the row-major code planes of e8p2 / rvq3 / rvq4 tensors
// (harp_e8p_view, src/quant/qblocks.h; docs/format/e8p.md).
// One warp per output row: lanes take codes k = lane, lane + 32, ... (coalesced 64-byte loads),
// decode from 2 KiB abs / E81B tables staged in shared memory, and the 32 partial sums are reduced
// with shuffles in a fixed order, so results are deterministic (no atomics). Compiled only with
// -DHARP_CUDA=ON; tests/test_qgemv_cuda.c compares it with the reference GEMV where a GPU is present.
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include "core/core.h"
#include "harp/qkernels.h"
#include "quant/e8p.h"
#include "quant/qblocks.h"
#include "quant/qtype_traits.h"
}

namespace {

// 4·â (coordinate 7 negated when Σ A is odd) and 4·E81B, as int8.
__constant__ int8_t c_abs4[256 * 8];
__constant__ int8_t c_e81b4[256 * 8];
__constant__ uint8_t c_sigma[8] = {0, 4, 1, 5, 2, 6, 3, 7};

constexpr int kWarps = 8;

__device__ __forceinline__ float dot_e8p(const int8_t *abs4, uint16_t c, const float *xv) {
    const unsigned a = c >> 8, b = c & 255u;
    const unsigned p = __popc(b) & 1u, e = b ^ p;
    const int shift = p ? -1 : 1;
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        int h = abs4[8 * a + i];
        if ((e >> c_sigma[i]) & 1u) h = -h;
        s = fmaf((float)(h + shift), xv[i], s);
    }
    return s;
}

__global__ void qgemv_kernel(int fmt, int m, int n, int ncode, float scale0, float scale1,
                             const uint16_t *__restrict__ codes0, const void *__restrict__ codes1,
                             const float *__restrict__ x, float *__restrict__ y) {
    __shared__ int8_t s_abs[256 * 8], s_e81b[256 * 8];
    for (int i = threadIdx.x; i < 256 * 8; i += blockDim.x) {
        s_abs[i] = c_abs4[i];
        s_e81b[i] = c_e81b4[i];
    }
    __syncthreads();
    const int lane = threadIdx.x & 31, row = blockIdx.x * kWarps + (threadIdx.x >> 5);
    if (row >= m) return;
    float acc0 = 0.0f, acc1 = 0.0f;
    for (int k = lane; k < ncode; k += 32) {
        float xv[8];
#pragma unroll
        for (int i = 0; i < 8; i++) xv[i] = 8 * k + i < n ? x[8 * k + i] : 0.0f;
        const size_t idx = (size_t)row * ncode + k;
        acc0 += dot_e8p(s_abs, codes0[idx], xv);
        if (fmt == HARP_QTYPE_RVQ4) {
            acc1 += dot_e8p(s_abs, ((const uint16_t *)codes1)[idx], xv);
        } else if (fmt == HARP_QTYPE_RVQ3) {
            const int8_t *v = s_e81b + 8 * ((const uint8_t *)codes1)[idx];
            float s = 0.0f;
#pragma unroll
            for (int i = 0; i < 8; i++) s = fmaf((float)v[i], xv[i], s);
            acc1 += s;
        }
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        acc0 += __shfl_down_sync(0xffffffffu, acc0, off);
        acc1 += __shfl_down_sync(0xffffffffu, acc1, off);
    }
    if (lane == 0) y[row] = (scale0 * acc0 + scale1 * acc1) * 0.25f;
}

harp_status upload_tables() {
    static int done = 0;
    if (done) return HARP_OK;
    int8_t abs4[256 * 8], e4[256 * 8];
    const uint8_t *a2 = e8p_abs2(), *sum = e8p_abs_sum();
    const float *e = e81b_codebook();
    for (int a = 0; a < 256; a++)
        for (int i = 0; i < 8; i++) {
            int v = 2 * a2[8 * a + i];
            if (i == 7 && (sum[a] & 1)) v = -v;
            abs4[8 * a + i] = (int8_t)v;
            e4[8 * a + i] = (int8_t)(4.0f * e[8 * a + i]);
        }
    if (cudaMemcpyToSymbol(c_abs4, abs4, sizeof abs4) != cudaSuccess ||
        cudaMemcpyToSymbol(c_e81b4, e4, sizeof e4) != cudaSuccess)
        return harp_err(HARP_ERR_NO_DEVICE, "cuda qgemv: cannot upload the codebook tables");
    done = 1;
    return HARP_OK;
}

// w: code planes, x and y on the device; launched on the default stream (asynchronous).
harp_status qgemv_launch(const harp_e8p_view *w, const float *x, float *y) {
    HARP_TRY(upload_tables());
    const int blocks = (w->m + kWarps - 1) / kWarps;
    qgemv_kernel<<<blocks, 32 * kWarps>>>(w->type, w->m, w->n, w->ncode, w->scale0, w->scale1, w->codes0, w->codes1,
                                          x, y);
    cudaError_t st = cudaGetLastError();
    if (st != cudaSuccess)
        return harp_err(HARP_ERR_NO_DEVICE, "cuda qgemv: launch failed: %s", cudaGetErrorString(st));
    return HARP_OK;
}

}  // namespace

extern "C" harp_status harp_qgemv_cuda_host(const harp_qtensor *t, const float *x, float *y) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)
        return harp_err(HARP_ERR_NO_DEVICE, "cuda qgemv: no CUDA device");
    HARP_TRY(harp_qtensor_check(t, "cuda qgemv"));
    const harp_qtype_traits *tr = harp_qtype_traits_of(t->type);
    if (tr->layout != HARP_QLAYOUT_E8P)
        return harp_err(HARP_ERR_INVALID_ARG, "cuda qgemv: type %s is not a lattice type", tr->name);
    harp_e8p_view hv;
    hv.type = (int32_t)t->type;
    hv.m = (int32_t)t->m;
    hv.n = (int32_t)t->n;
    hv.ncode = harp_e8p_ncode(t->n);
    hv.scale0 = t->scale0;
    hv.scale1 = t->scale1;
    const harp_e8p_view *w = &hv;
    const size_t b0 = t->planes[0].nbytes, b1 = t->type == HARP_QTYPE_E8P2 ? 0 : t->planes[1].nbytes;
    void *d0 = NULL, *d1 = NULL, *dx = NULL, *dy = NULL;
    harp_status rc = HARP_OK;
    if (cudaMalloc(&d0, b0) != cudaSuccess || (b1 && cudaMalloc(&d1, b1) != cudaSuccess) ||
        cudaMalloc(&dx, sizeof(float) * w->n) != cudaSuccess ||
        cudaMalloc(&dy, sizeof(float) * w->m) != cudaSuccess) {
        rc = harp_err(HARP_ERR_OOM, "cuda qgemv: device allocation failed");
    } else {
        cudaMemcpy(d0, t->planes[0].data, b0, cudaMemcpyHostToDevice);
        if (b1) cudaMemcpy(d1, t->planes[1].data, b1, cudaMemcpyHostToDevice);
        cudaMemcpy(dx, x, sizeof(float) * w->n, cudaMemcpyHostToDevice);
        harp_e8p_view dw = *w;
        dw.codes0 = (const uint16_t *)d0;
        dw.codes1 = d1;
        rc = qgemv_launch(&dw, (const float *)dx, (float *)dy);
        if (rc == HARP_OK && cudaMemcpy(y, dy, sizeof(float) * w->m, cudaMemcpyDeviceToHost) != cudaSuccess)
            rc = harp_err(HARP_ERR_NO_DEVICE, "cuda qgemv: copy back failed");
    }
    cudaFree(d0);
    cudaFree(d1);
    cudaFree(dx);
    cudaFree(dy);
    return rc;
}
