// Prefill's weight fold (decode.h, dec_fold_weights): a linear's transforms applied to its dequantized
// weights instead of its activation rows. At R rows a call transforms R·(n + m) activation elements;
// the fold transforms 2·m·n weight elements once per call, whatever R. On ref-llama's perplexity
// (4 096-row chunks, widths 512–3 072) the activation transforms were 64 % of the packed forward
// (docs/results/decode-gpu.md, eighteenth session); folded, the rows go through dec_rows_split (RMSNorm,
// SwiGLU or attention combine, the h / lo split; one warp a row) and the GEMMs.
//
// W_eff = diag(post)·T_out·W̃·T_in·diag(pre) in four launches over the weights: W̃ᵀ (dequantized fp16
// tiles transposed to fp32), its rows (W̃'s columns) through the output plan with post, a transpose,
// its rows through the input plan's transpose with pre after it (dec_xout_split: fp16 h and lo rows),
// laid out [h | h | lo] per row so that one GEMM over [x_h | x_lo] rows (K = 2·npad) and one over x_h
// (K = npad) sum all three products straight into the output rows: no output pass, the residual add
// is the GEMMs' beta.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "core/core.h"
#include "cuda/decode.h"
}
#include "cuda/attn_combine.cuh"
#include "cuda/swiglu.cuh"

namespace {

constexpr int kT = 32;   // transpose tile

template <typename T> __device__ __forceinline__ float to_f32(T v);
template <> __device__ __forceinline__ float to_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f32<__half>(__half v) { return __half2float(v); }

// out[c][r] = in[r][c] for r < rows, c < cols (fp32 out; a 32×32 tile through shared memory, the +1
// column keeps the column reads free of bank conflicts).
template <typename T> __global__ void transpose_kernel(const T *in, int ldi, int rows, int cols, float *out, int ldo) {
    __shared__ float t[kT][kT + 1];
    const int c0 = blockIdx.x * kT, r0 = blockIdx.y * kT;
    for (int i = threadIdx.y; i < kT; i += blockDim.y) {
        const int r = r0 + i, c = c0 + threadIdx.x;
        if (r < rows && c < cols) t[i][threadIdx.x] = to_f32(in[(size_t)r * ldi + c]);
    }
    __syncthreads();
    for (int i = threadIdx.y; i < kT; i += blockDim.y) {
        const int c = c0 + i, r = r0 + threadIdx.x;
        if (r < rows && c < cols) out[(size_t)c * ldo + r] = t[threadIdx.x][i];
    }
}

template <typename T> harp_status transpose(const T *in, int ldi, int rows, int cols, float *out, int ldo, cudaStream_t s) {
    const dim3 grid((cols + kT - 1) / kT, (rows + kT - 1) / kT), block(kT, 8);
    transpose_kernel<T><<<grid, block, 0, s>>>(in, ldi, rows, cols, out, ldo);
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "cuda fold: transpose: %s", cudaGetErrorString(e));
}

int g_fold = 1;

// dec_rows_split's arguments: the input (rows of x, SwiGLU of up|gate rows, or attention partials),
// the RMSNorm weight, the fp16 h / lo outputs.
struct RowsArgs {
    const float *x;
    int ldx, rows, n, glu, att_nch, att_hd, att_heads;
    const float *norm;
    float eps;
    __half *h, *lo;
    int ldo, npad;
};

// Element i of row r as the transform pass's load_in reads it (same expressions: same bits).
__device__ __forceinline__ float row_in(const RowsArgs &a, int r, int i) {
    if (a.att_nch) {
        const int hh = i / a.att_hd;
        return dec_attn_combine1(a.x + ((size_t)r * a.att_heads + hh) * a.att_nch * (a.att_hd + 2), a.att_nch, a.att_hd, i - hh * a.att_hd);
    }
    const float *x = a.x + (size_t)r * a.ldx;
    return a.glu ? dec_swiglu1(x[i + a.n], x[i]) : x[i];
}

// V consecutive input elements from i (V = 4: float4 loads of the row and, for SwiGLU, of its gate half).
template <int V> __device__ __forceinline__ void row_in_v(const RowsArgs &a, int r, int i, float *v) {
    if (V == 1) {
        v[0] = row_in(a, r, i);
        return;
    }
    const float *x = a.x + (size_t)r * a.ldx;
    const float4 u = *reinterpret_cast<const float4 *>(x + i);
    const float uu[4] = {u.x, u.y, u.z, u.w};
    if (a.glu) {
        const float4 gq = *reinterpret_cast<const float4 *>(x + i + a.n);
        const float gg[4] = {gq.x, gq.y, gq.z, gq.w};
#pragma unroll
        for (int k = 0; k < V; k++) v[k] = dec_swiglu1(gg[k], uu[k]);
    } else {
#pragma unroll
        for (int k = 0; k < V; k++) v[k] = uu[k];
    }
}

// One warp a row: the sum of squares by shuffles, no block barrier (the stage engine's identity pass
// spends ~7 µs a CTA on its barriers and staging, 20–80 µs a 4 096-row call at ref-llama's widths).
// V = 4: each lane takes four consecutive elements a step (float4 loads, 8-byte h / lo stores) where
// n, ldx, ldo and the pointers allow it and the input is not the attention combine; the values are the
// same expressions element by element, only the RMSNorm's sum of squares is added in another order.
constexpr int kRowsWarps = 4;
template <int V> __global__ void __launch_bounds__(32 * kRowsWarps) rows_split_kernel(const RowsArgs a) {
    const int lane = threadIdx.x & 31, r = blockIdx.x * kRowsWarps + (threadIdx.x >> 5);
    if (r >= a.rows) return;
    float inv = 1.0f;
    if (a.norm) {
        float ss = 0.0f;
        for (int i = lane * V; i < a.n; i += 32 * V) {
            float v[V];
            row_in_v<V>(a, r, i, v);
#pragma unroll
            for (int k = 0; k < V; k++) ss = fmaf(v[k], v[k], ss);
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        inv = 1.0f / sqrtf(ss / (float)a.n + a.eps);
    }
    __half *h = a.h + (size_t)r * a.ldo, *lo = a.lo + (size_t)r * a.ldo;
    for (int i = lane * V; i < a.npad; i += 32 * V) {
        float v[V];
        if (i < a.n) {   // V = 4 needs n % 4 = 0: a piece is all inside or all padding
            row_in_v<V>(a, r, i, v);
#pragma unroll
            for (int k = 0; k < V; k++)
                if (a.norm) v[k] = a.norm[i + k] * (v[k] * inv);
        } else {
#pragma unroll
            for (int k = 0; k < V; k++) v[k] = 0.0f;
        }
        __half vh[V], vl[V];
#pragma unroll
        for (int k = 0; k < V; k++) {
            vh[k] = __float2half_rn(v[k]);
            vl[k] = __float2half_rn(v[k] - __half2float(vh[k]));
        }
        if (V == 4) {
            *reinterpret_cast<uint2 *>(h + i) = *reinterpret_cast<const uint2 *>(vh);
            *reinterpret_cast<uint2 *>(lo + i) = *reinterpret_cast<const uint2 *>(vl);
        } else {
            h[i] = vh[0];
            lo[i] = vl[0];
        }
    }
}

}  // namespace

extern "C" void dec_set_prefill_fold(int mode) { __atomic_store_n(&g_fold, mode < 0 ? 0 : mode > 2 ? 2 : mode, __ATOMIC_RELAXED); }
extern "C" int dec_prefill_fold(void) { return __atomic_load_n(&g_fold, __ATOMIC_RELAXED); }

extern "C" int dec_fold_pays(const dec_linear_dev *L, int rows) {
    const int mode = dec_prefill_fold();
    if (!mode || rows <= 8 || !L->xin_t) return 0;
    const double m = L->w.m, n = L->w.n;
    return mode == 2 || (double)rows * (m + n) > 2.0 * m * n;
}

extern "C" harp_status dec_fold_weights(const dec_linear_dev *L, const dec_linear_ws *ws, dec_stream stream) {
    const dec_weights *w = &L->w;
    const int m = w->m, n = w->n, npad = dec_npad(n);
    if (!L->xin_t || !ws->fold || !ws->fold_w || (size_t)m * npad > ws->fold_elems || !ws->tile || ws->tile_rows < 16 ||
        ws->max_rows < 1)
        return harp_err(HARP_ERR_INVALID_ARG, "cuda fold: %dx%d with a fold workspace of %zu elements", m, n, ws->fold_elems);
    cudaStream_t s = (cudaStream_t)stream;
    float *F1 = ws->fold, *F2 = (float *)ws->fold_w;   // F2 is dead before the h / lo rows overwrite it
    __half *Wt = (__half *)ws->fold_w;
    const int ldw = 3 * npad;
    for (int r0 = 0; r0 < m; r0 += ws->tile_rows) {   // W̃ᵀ [n][m]
        const int r1 = r0 + ws->tile_rows < m ? r0 + ws->tile_rows : m;
        HARP_TRY(dec_dequant_f16(w, r0, r1, ws->tile, npad, stream));
        HARP_TRY(transpose((const __half *)ws->tile, npad, r1 - r0, n, F1 + r0, m, s));
    }
    // the transform plans take at most max_rows rows a call, the scratch as much
    const int ch = ws->max_rows;
    for (int c0 = 0; c0 < n; c0 += ch)   // (post ⊙ T_out W̃)ᵀ
        HARP_TRY(dec_xout(L->xout, F1 + (size_t)c0 * m, m, n - c0 < ch ? n - c0 : ch, L->post, 0, F2 + (size_t)c0 * m, m, ws->scr, stream));
    HARP_TRY(transpose(F2, m, n, m, F1, n, s));
    for (int r0 = 0; r0 < m; r0 += ch)   // rows · T_in · diag(pre), as fp16 h and lo
        HARP_TRY(dec_xout_split(L->xin_t, F1 + (size_t)r0 * n, n, m - r0 < ch ? m - r0 : ch, L->pre, Wt + (size_t)r0 * ldw,
                                Wt + (size_t)r0 * ldw + 2 * npad, ldw, npad, ws->scr, stream));
    const cudaError_t e = cudaMemcpy2DAsync(Wt + npad, (size_t)ldw * 2, Wt, (size_t)ldw * 2, (size_t)npad * 2, m, cudaMemcpyDeviceToDevice, s);
    return e == cudaSuccess ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "cuda fold: copy: %s", cudaGetErrorString(e));
}

extern "C" harp_status dec_rows_split(const float *x, int ldx, int rows, int n, const float *norm_w, float eps, int glu,
                                      const dec_attn_shape *att, void *out, void *out_lo, int ldo, int32_t npad, dec_stream stream) {
    if (rows < 1 || n < 1 || npad < n || ldo < npad || (glu && (norm_w || ldx < 2 * n)) || (!glu && !att && ldx < n) ||
        (att && att->n_heads * att->head_dim != n))
        return harp_err(HARP_ERR_INVALID_ARG, "cuda rows split: rows %d, n %d, npad %d, ldo %d, ldx %d", rows, n, (int)npad, ldo, ldx);
    RowsArgs a = {};
    a.x = x, a.ldx = ldx, a.rows = rows, a.n = n, a.glu = glu ? 1 : 0;
    if (att) a.att_nch = dec_attn_chunks(att), a.att_hd = att->head_dim, a.att_heads = att->n_heads;
    a.norm = norm_w, a.eps = eps, a.h = (__half *)out, a.lo = (__half *)out_lo, a.ldo = ldo, a.npad = npad;
    const bool v4 = !att && n % 4 == 0 && ldx % 4 == 0 && ldo % 4 == 0 && npad % 4 == 0 && ((uintptr_t)x & 15) == 0 &&
                    ((uintptr_t)out & 7) == 0 && ((uintptr_t)out_lo & 7) == 0;
    const unsigned grid = (unsigned)((rows + kRowsWarps - 1) / kRowsWarps);
    if (v4) rows_split_kernel<4><<<grid, 32 * kRowsWarps, 0, (cudaStream_t)stream>>>(a);
    else rows_split_kernel<1><<<grid, 32 * kRowsWarps, 0, (cudaStream_t)stream>>>(a);
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "cuda rows split: %s", cudaGetErrorString(e));
}
