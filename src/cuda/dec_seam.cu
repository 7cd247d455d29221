// The seam between two linears at decode (decode.h, dec_linear_seam): prev's output transform, the
// residual add, RMSNorm and next's input transform of one row in one CTA and one launch, where the
// pass engine (dec_xform.cu) takes four launches. Both transforms are Sylvester FWHTs (RHT's n = 2^k
// sides), so no stage matrices are read: 1 024 threads hold E = n / 1 024 elements each and run the
// butterflies on the register digit (log2 E bits) in registers and on the next five bits across
// lanes; the last five bits (the warps') reach lanes through one transpose in shared memory, padded
// so that neither side of the transpose has bank conflicts. Layout A puts element
// (warp w, lane l, register j) at e = w·32E + l·E + j, layout B at e = l·32E + w·E + j; the output
// side ends in B, where the residual, RMSNorm and next's pre vector are applied, and the input side
// goes back to A for the fp16 stores. Why it pays: the four pass launches of a seam cost ~4 µs each
// at decode, mostly launch and dependency latency (docs/results/decode-gpu.md, tenth session).
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "core/core.h"
#include "cuda/decode.h"
}
#include "cuda/pdl.cuh"

namespace {

constexpr int kThreads = 1024, kMinN = 1024, kMaxN = 8192;

struct SeamArgs {
    const float *yt;        // prev's ỹ rows [rows][n]
    float *x;               // residual rows [rows][ldx]: += out side, then RMSNorm's input
    int ldx;
    const float *post, *norm, *pre;   // post: prev's; pre: next's (NULL: ones)
    float eps, out_scale, in_scale;
    int in_fwht;            // 0: next's input side is the identity (only in_scale)
    __half *hi, *lo;        // rows [rows][npad] each
    int npad;
};

template <int E>
__device__ __forceinline__ void load_e(float (&v)[E], const float *p) {
    if constexpr (E % 4 == 0) {
#pragma unroll
        for (int i = 0; i < E; i += 4) {
            const float4 t = *reinterpret_cast<const float4 *>(p + i);
            v[i] = t.x, v[i + 1] = t.y, v[i + 2] = t.z, v[i + 3] = t.w;
        }
    } else if constexpr (E == 2) {
        const float2 t = *reinterpret_cast<const float2 *>(p);
        v[0] = t.x, v[1] = t.y;
    } else {
        v[0] = p[0];
    }
}

template <int E>
__device__ __forceinline__ void store_e(float *p, const float (&v)[E]) {
    if constexpr (E % 4 == 0) {
#pragma unroll
        for (int i = 0; i < E; i += 4) *reinterpret_cast<float4 *>(p + i) = make_float4(v[i], v[i + 1], v[i + 2], v[i + 3]);
    } else if constexpr (E == 2) {
        *reinterpret_cast<float2 *>(p) = make_float2(v[0], v[1]);
    } else {
        p[0] = v[0];
    }
}

template <int E>
__device__ __forceinline__ void load_or_ones(float (&v)[E], const float *p) {
    if (p) load_e<E>(v, p);
    else
#pragma unroll
        for (int j = 0; j < E; j++) v[j] = 1.0f;
}

// Butterflies over the register digit: (a, b) → (a + b, a − b) for each bit of j.
template <int E>
__device__ __forceinline__ void bfly_regs(float (&v)[E]) {
#pragma unroll
    for (int h = 1; h < E; h *= 2)
#pragma unroll
        for (int i = 0; i < E; i++)
            if (!(i & h)) {
                const float a = v[i], b = v[i + h];
                v[i] = a + b, v[i + h] = a - b;
            }
}

// Butterflies over the lane bits: the lower partner keeps a + b, the upper one a − b.
template <int E>
__device__ __forceinline__ void bfly_lanes(float (&v)[E], int lane) {
#pragma unroll
    for (int m = 1; m < 32; m *= 2)
#pragma unroll
        for (int j = 0; j < E; j++) {
            const float o = __shfl_xor_sync(0xffffffffu, v[j], m);
            v[j] = (lane & m) ? o - v[j] : v[j] + o;
        }
}

template <int E>
__global__ void __launch_bounds__(kThreads) seam_kernel(const __grid_constant__ SeamArgs a) {
    constexpr int R = E == 1 ? 0 : E == 2 ? 1 : E == 4 ? 2 : 3, n = kThreads * E;
    extern __shared__ float sbuf[];   // n + n / 32 floats: E floats of padding after every 32·E
    __shared__ float s_part[kThreads / 32];
    const int tid = threadIdx.x, l = tid & 31, w = tid >> 5, row = blockIdx.x;
    const int eA = (w << (R + 5)) | (l << R), eB = (l << (R + 5)) | (w << R);
    const int pA = eA + E * w, pB = eB + E * l;   // padded shared-memory offsets of eA, eB
    float post[E], nw[E], pre[E], v[E], xr[E];
    load_or_ones<E>(post, a.post ? a.post + eB : NULL);   // weights: no kernel of the token writes them
    load_e<E>(nw, a.norm + eB);
    load_or_ones<E>(pre, a.pre ? a.pre + eB : NULL);
    pdl_wait();
    pdl_trigger();
    // output side: ỹ in layout A, all butterflies, then scale · post and the residual add in layout B
    load_e<E>(v, a.yt + (size_t)row * n + eA);
    load_e<E>(xr, a.x + (size_t)row * a.ldx + eB);
    bfly_regs<E>(v);
    bfly_lanes<E>(v, l);
    store_e<E>(sbuf + pA, v);
    __syncthreads();
    load_e<E>(v, sbuf + pB);
    bfly_lanes<E>(v, l);
#pragma unroll
    for (int j = 0; j < E; j++) xr[j] += v[j] * a.out_scale * post[j];
    store_e<E>(a.x + (size_t)row * a.ldx + eB, xr);
    // RMSNorm: the sum of squares in a fixed order (thread, lanes by xor tree, warps in order)
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < E; j++) ss = fmaf(xr[j], xr[j], ss);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if (l == 0) s_part[w] = ss;
    __syncthreads();   // also orders the transpose's reads above before the writes below
    ss = 0.0f;
    for (int i = 0; i < kThreads / 32; i++) ss += s_part[i];
    const float inv = 1.0f / sqrtf(ss / (float)n + a.eps);
#pragma unroll
    for (int j = 0; j < E; j++) v[j] = nw[j] * (xr[j] * inv) * pre[j];
    // input side: butterflies from layout B back to A, then h = fp16(v), lo = fp16(v − h)
    int e = eB;
    if (a.in_fwht) {
        bfly_lanes<E>(v, l);
        bfly_regs<E>(v);
        store_e<E>(sbuf + pB, v);
        __syncthreads();
        load_e<E>(v, sbuf + pA);
        bfly_lanes<E>(v, l);
        e = eA;
    }
    __half *hi = a.hi + (size_t)row * a.npad + e, *lo = a.lo + (size_t)row * a.npad + e;
#pragma unroll
    for (int j = 0; j < E; j++) {
        const float s = v[j] * a.in_scale;
        const __half h = __float2half_rn(s);
        hi[j] = h;
        lo[j] = __float2half_rn(s - __half2float(h));
    }
    for (int i = n + tid; i < a.npad; i += kThreads) {
        a.hi[(size_t)row * a.npad + i] = __float2half_rn(0.0f);
        a.lo[(size_t)row * a.npad + i] = __float2half_rn(0.0f);
    }
}

bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

const dec_xdev *side(const dec_xdev *all, const dec_xdev *one, int rows) { return rows == 1 && one ? one : all; }

// next's input side (pre, FWHT or identity, scale) and the h / lo rows it writes.
void input_side(SeamArgs &a, const dec_linear_dev *next, int rows, const dec_linear_ws *ws) {
    const int n = next->w.n, npad = dec_npad(n);
    a.pre = next->pre;
    const dec_xdev *xi = side(next->xin, next->xin1, rows);
    a.in_fwht = dec_xform_dev_fwht(xi, &a.in_scale) != 0;
    if (!a.in_fwht) dec_xform_dev_identity(xi, &a.in_scale);
    a.hi = (__half *)ws->xh;
    a.lo = a.hi + (size_t)rows * npad;
    a.npad = npad;
}

bool input_ok(const dec_linear_dev *next, int rows, const dec_linear_ws *ws) {
    const int n = next->w.n;
    if (n < kMinN || n > kMaxN || (n & (n - 1)) || rows < 1 || rows > 8 || rows > ws->max_rows || (next->pre && !aligned16(next->pre)))
        return false;
    const dec_xdev *xi = side(next->xin, next->xin1, rows);
    return dec_xform_dev_fwht(xi, NULL) || dec_xform_dev_identity(xi, NULL);
}

harp_status launch(const SeamArgs &a, int n, int rows, dec_stream stream) {
    const size_t smem = sizeof(float) * ((size_t)n + n / 32);
    cudaError_t e;
    switch (n / kThreads) {
    case 1: e = pdl_launch(seam_kernel<1>, rows, kThreads, smem, (cudaStream_t)stream, a); break;
    case 2: e = pdl_launch(seam_kernel<2>, rows, kThreads, smem, (cudaStream_t)stream, a); break;
    case 4: e = pdl_launch(seam_kernel<4>, rows, kThreads, smem, (cudaStream_t)stream, a); break;
    default: e = pdl_launch(seam_kernel<8>, rows, kThreads, smem, (cudaStream_t)stream, a); break;
    }
    return e == cudaSuccess ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "decode seam: launch: %s", cudaGetErrorString(e));
}

}  // namespace

extern "C" int dec_seam_ok(const dec_linear_dev *prev, const dec_linear_dev *next, const float *X, int ldx, int rows,
                           const float *norm_w, const dec_linear_ws *ws) {
    const int n = prev->w.m;
    if (next->w.n != n || !input_ok(next, rows, ws) || !norm_w || ldx < n || ldx % 4 || !aligned16(X) || !aligned16(ws->yt) ||
        !aligned16(norm_w) || (prev->post && !aligned16(prev->post)))
        return 0;
    return dec_xform_dev_fwht(side(prev->xout, prev->xout1, rows), NULL) != 0;
}

extern "C" harp_status dec_linear_seam(const dec_linear_dev *prev, const dec_linear_dev *next, float *X, int ldx, int rows,
                                       const float *norm_w, float eps, const dec_linear_ws *ws, dec_stream stream) {
    if (!dec_seam_ok(prev, next, X, ldx, rows, norm_w, ws))
        return harp_err(HARP_ERR_UNSUPPORTED, "decode seam: %d × %d then %d × %d at %d rows is not a pair of FWHT sides the seam "
                        "kernel runs (dec_seam_ok)", (int)prev->w.m, (int)prev->w.n, (int)next->w.m, (int)next->w.n, rows);
    SeamArgs a = {};
    input_side(a, next, rows, ws);
    a.yt = ws->yt;
    a.x = X;
    a.ldx = ldx;
    a.post = prev->post;
    a.norm = norm_w;
    a.eps = eps;
    dec_xform_dev_fwht(side(prev->xout, prev->xout1, rows), &a.out_scale);
    return launch(a, prev->w.m, rows, stream);
}
