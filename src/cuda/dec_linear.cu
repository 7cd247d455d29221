// One packed linear on the device (decode.h, "one packed linear"): split fp16 activations, the decode
// GEMV (≤ 8 rows) or dequantized tiles + cuBLAS GEMM, both transforms and scales, in the order the
// C twin dec_linear_ref (dec_linear.c) computes them. The CUDA backend and `harp bench decode` call it.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

extern "C" {
#include "core/core.h"
#include "cuda/decode.h"
}

namespace {
harp_status launched(const char *what) {
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "cuda linear: %s: %s", what, cudaGetErrorString(e));
}
}  // namespace

namespace {
__global__ void add_kernel(float *x, const float *y, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) x[i] += y[i];
}
}  // namespace

extern "C" harp_status dec_add(float *x, const float *y, size_t n, dec_stream stream) {
    if (!n) return HARP_OK;
    const size_t blocks = (n + 255) / 256 < 1024 ? (n + 255) / 256 : 1024;
    add_kernel<<<(unsigned)blocks, 256, 0, (cudaStream_t)stream>>>(x, y, n);
    return launched("add");
}

extern "C" harp_status dec_linear_run(const dec_linear_dev *L, const float *X, int ldx, int rows, const float *norm_w,
                                      float eps, float *Y, int ldy, int accumulate, const dec_linear_ws *ws, dec_stream stream) {
    const dec_weights *w = &L->w;
    const int npad = dec_npad(w->n);
    if (rows < 1 || rows > ws->max_rows || (rows > 8 && (!ws->blas || !ws->tile)))
        return harp_err(HARP_ERR_INVALID_ARG, "decode linear: %d rows (workspace for %d)", rows, ws->max_rows);
    __half *hi = (__half *)ws->xh, *lo = hi + (size_t)rows * npad;
    float *yh = ws->yt, *yl = yh + (size_t)rows * w->m;
    const dec_xdev *xin = rows == 1 && L->xin1 ? L->xin1 : L->xin, *xout = rows == 1 && L->xout1 ? L->xout1 : L->xout;
    HARP_TRY(dec_xin_split(xin, X, ldx, rows, norm_w, eps, L->pre, hi, lo, npad, npad, ws->scr, stream));
    if (2 * rows <= 8) {
        HARP_TRY(dec_gemv(w, hi, npad, 2 * rows, yh, w->m, NULL, stream));
    } else if (rows <= 8) {
        HARP_TRY(dec_gemv(w, hi, npad, rows, yh, w->m, NULL, stream));
        HARP_TRY(dec_gemv(w, lo, npad, rows, yl, w->m, NULL, stream));
    } else {
        HARP_TRY(dec_prefill_gemm(ws->blas, w, hi, npad, 2 * rows, yh, w->m, ws->tile, ws->tile_rows, stream));
    }
    HARP_TRY(dec_add(yh, yl, (size_t)rows * w->m, stream));
    return dec_xout(xout, yh, w->m, rows, L->post, accumulate, Y, ldy, ws->scr, stream);
}
