// One packed linear on the device (decode.h, "one packed linear"): split fp16 activations, the decode
// GEMV (≤ 8 rows) or dequantized tiles + cuBLAS GEMM, both transforms and scales, in the order the
// C twin dec_linear_ref (dec_linear.c) computes them. The CUDA backend and `harp bench decode` call it.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

extern "C" {
#include "core/core.h"
#include "cuda/decode.h"
}
#include "cuda/pdl.cuh"

namespace {
harp_status launched(const char *what) {
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "cuda linear: %s: %s", what, cudaGetErrorString(e));
}
}  // namespace

namespace {
__global__ void add_kernel(float *x, const float *y, size_t n) {
    pdl_wait();
    pdl_trigger();
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) x[i] += y[i];
}
}  // namespace

// Launch overlap (pdl.cuh) for every decode kernel; a switch for `harp bench decode --pdl`.
static int g_pdl = 1;
extern "C" int dec_pdl(void) { return __atomic_load_n(&g_pdl, __ATOMIC_RELAXED); }
extern "C" void dec_set_pdl(int on) { __atomic_store_n(&g_pdl, on ? 1 : 0, __ATOMIC_RELAXED); }

extern "C" harp_status dec_add(float *x, const float *y, size_t n, dec_stream stream) {
    if (!n) return HARP_OK;
    const size_t blocks = (n + 255) / 256 < 1024 ? (n + 255) / 256 : 1024;
    pdl_launch(add_kernel, (unsigned)blocks, 256, 0, (cudaStream_t)stream, x, y, n);
    return launched("add");
}

namespace {
// Where a linear's input comes from: rows of X (⊙ RMSNorm), SwiGLU of up|gate rows, or attention partials.
struct LinIn {
    const float *X;
    int ldx;
    const float *norm_w;
    float eps;
    int glu;
    const dec_attn_shape *att;
};

harp_status linear_run(const dec_linear_dev *L, const LinIn &in, int mode, int rows, float *Y, int ldy, int accumulate,
                       const dec_linear_ws *ws, dec_stream stream) {
    const dec_weights *w = &L->w;
    const int npad = dec_npad(w->n);
    if (rows < 1 || rows > ws->max_rows || (rows > 8 && (!ws->blas || !ws->tile || (mode & DEC_LIN_YT_ONLY))))
        return harp_err(HARP_ERR_INVALID_ARG, "decode linear: %d rows (workspace for %d)%s", rows, ws->max_rows,
                        mode & DEC_LIN_YT_ONLY ? ", ỹ-only runs take ≤ 8" : "");
    __half *hi = (__half *)ws->xh, *lo = hi + (size_t)rows * npad;
    float *yh = ws->yt, *yl = yh + (size_t)rows * w->m;
    if (!(mode & DEC_LIN_XH_READY) && ws->fold && L->xin_t && (size_t)w->m * npad <= ws->fold_elems &&
        ((mode & DEC_LIN_FOLD_READY) || dec_fold_pays(L, rows))) {
        // the transforms on the weights (dec_fold_weights: W_eff rows [h | h | lo]); the rows split into
        // [x_h | x_lo] (dec_rows_split); Y (+)= [x_h | x_lo]·[h | h]ᵀ + x_h·loᵀ
        const int ldx2 = 2 * npad, ldw = 3 * npad;
        HARP_TRY(dec_rows_split(in.X, in.ldx, rows, w->n, in.norm_w, in.eps, in.glu, in.att, hi, hi + npad, ldx2, npad, stream));
        if (!(mode & DEC_LIN_FOLD_READY)) HARP_TRY(dec_fold_weights(L, ws, stream));
        const __half *Wt = (const __half *)ws->fold_w;
        HARP_TRY(dec_gemm_f16(ws->blas, Wt, ldw, w->m, 2 * npad, hi, ldx2, rows, Y, ldy, accumulate ? 1.0f : 0.0f, stream));
        return dec_gemm_f16(ws->blas, Wt + 2 * npad, ldw, w->m, npad, hi, ldx2, rows, Y, ldy, 1.0f, stream);
    }
    const dec_xdev *xin = rows == 1 && L->xin1 ? L->xin1 : L->xin, *xout = rows == 1 && L->xout1 ? L->xout1 : L->xout;
    if (!(mode & DEC_LIN_XH_READY)) {   // with it, dec_linear_seam wrote h / lo
        if (in.att) HARP_TRY(dec_xin_split_att(xin, in.att, in.X, rows, L->pre, hi, lo, npad, npad, ws->scr, stream));
        else if (in.glu) HARP_TRY(dec_xin_split_glu(xin, in.X, in.ldx, rows, L->pre, hi, lo, npad, npad, ws->scr, stream));
        else HARP_TRY(dec_xin_split(xin, in.X, in.ldx, rows, in.norm_w, in.eps, L->pre, hi, lo, npad, npad, ws->scr, stream));
    }
    // ỹ = ỹ_hi + ỹ_lo: summed inside the GEMV (one launch fewer per linear at decode); an identity
    // output side (fp16 models) is the GEMV's epilogue too (one more). LDP2's GEMV (dec_ldp.cu) has neither:
    // its h and lo products stay apart (yh, yl) like the prefill product's
    const int apart = rows > 8 || w->qtype == HARP_QTYPE_LDP2;
    if (w->qtype == HARP_QTYPE_LDP2 && rows <= 8) {
        if (2 * rows <= 8) {
            HARP_TRY(dec_gemv(w, hi, npad, 2 * rows, yh, w->m, NULL, stream));
        } else {
            HARP_TRY(dec_gemv(w, hi, npad, rows, yh, w->m, NULL, stream));
            HARP_TRY(dec_gemv(w, lo, npad, rows, yl, w->m, NULL, stream));
        }
        if (mode & DEC_LIN_YT_ONLY) return dec_add(yh, yl, (size_t)rows * w->m, stream);
    } else if (2 * rows <= 8) {
        dec_gemv_opts o = {};
        o.fold = rows;
        if (!(mode & DEC_LIN_YT_ONLY) && dec_xform_fast() && dec_xform_dev_identity(xout, &o.scale)) {
            o.accumulate = accumulate;
            o.epilogue = 1;
            o.post = L->post;
            return dec_gemv(w, hi, npad, 2 * rows, Y, ldy, &o, stream);
        }
        HARP_TRY(dec_gemv(w, hi, npad, 2 * rows, yh, w->m, &o, stream));
    } else if (rows <= 8) {
        dec_gemv_opts o = {};
        o.accumulate = 1;
        HARP_TRY(dec_gemv(w, hi, npad, rows, yh, w->m, NULL, stream));
        HARP_TRY(dec_gemv(w, lo, npad, rows, yh, w->m, &o, stream));
    } else {
        HARP_TRY(dec_prefill_gemm(ws->blas, w, hi, npad, 2 * rows, yh, w->m, ws->tile, ws->tile_rows, stream));
    }
    if (mode & DEC_LIN_YT_ONLY) return HARP_OK;
    // the prefill product holds the h and lo rows apart (yh, yl): summed in the output transform's first pass
    return dec_xout_sum(xout, yh, apart ? yl : NULL, w->m, rows, L->post, accumulate, Y, ldy, ws->scr, stream);
}
}  // namespace

extern "C" harp_status dec_linear_run_mode(const dec_linear_dev *L, int mode, const float *X, int ldx, int rows, const float *norm_w,
                                           float eps, int glu, const dec_attn_shape *att, float *Y, int ldy, int accumulate,
                                           const dec_linear_ws *ws, dec_stream stream) {
    const LinIn in = {X, ldx, norm_w, eps, glu, att};
    return linear_run(L, in, mode, rows, Y, ldy, accumulate, ws, stream);
}

extern "C" harp_status dec_linear_run(const dec_linear_dev *L, const float *X, int ldx, int rows, const float *norm_w,
                                      float eps, float *Y, int ldy, int accumulate, const dec_linear_ws *ws, dec_stream stream) {
    return dec_linear_run_mode(L, 0, X, ldx, rows, norm_w, eps, 0, NULL, Y, ldy, accumulate, ws, stream);
}

extern "C" harp_status dec_linear_run_glu(const dec_linear_dev *L, const float *UG, int ldx, int rows, float *Y, int ldy,
                                          int accumulate, const dec_linear_ws *ws, dec_stream stream) {
    return dec_linear_run_mode(L, 0, UG, ldx, rows, NULL, 0.0f, 1, NULL, Y, ldy, accumulate, ws, stream);
}

extern "C" harp_status dec_linear_run_att(const dec_linear_dev *L, const dec_attn_shape *s, const float *att_ws, int rows, float *Y,
                                          int ldy, int accumulate, const dec_linear_ws *ws, dec_stream stream) {
    return dec_linear_run_mode(L, 0, att_ws, 0, rows, NULL, 0.0f, 0, s, Y, ldy, accumulate, ws, stream);
}
