// Kernels of the CUDA backend (cuda/cuda_kernels.h). Compiled with --fmad=false so that a*b - c*d
// is not contracted into an FMA the CPU code does not do.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

extern "C" {
#include "core/core.h"
#include "cuda/cuda_kernels.h"
#include "harp/model.h"
}
#include "cuda/block_sum.cuh"
#include "cuda/pdl.cuh"
#include "cuda/aq_code.cuh"
#include "cuda/rope.cuh"

namespace {

constexpr int kThreads = 256;
constexpr int kRopeThreads = 64;   // a head's pairs: 64 at head_dim 128
constexpr int kRopeRowsFrom = 64;  // from this many rows hc_rope_store runs a block per row (rope_store_rows_kernel)

// KV-cache elements: fp32, or fp16 (rounded to nearest on store, exact on load).
__device__ __forceinline__ float kv_ld(const float *p) { return *p; }
__device__ __forceinline__ float kv_ld(const __half *p) { return __half2float(*p); }
__device__ __forceinline__ void kv_st(float *p, float v) { *p = v; }
__device__ __forceinline__ void kv_st(__half *p, float v) { *p = __float2half_rn(v); }

__device__ double block_sum(double v, double *sh) { return block_sum_n<kThreads>(v, sh); }

__device__ float block_max(float v, float *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] = fmaxf(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

// Max with the lowest index among ties (the CPU's strict '>' scan keeps the first maximum).
__device__ void block_argmax(float v, int idx, float *shv, int *shi, float *out_v, int *out_i) {
    shv[threadIdx.x] = v;
    shi[threadIdx.x] = idx;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) {
            float a = shv[threadIdx.x], b = shv[threadIdx.x + s];
            int ia = shi[threadIdx.x], ib = shi[threadIdx.x + s];
            if (b > a || (b == a && ib < ia)) {
                shv[threadIdx.x] = b;
                shi[threadIdx.x] = ib;
            }
        }
        __syncthreads();
    }
    *out_v = shv[0];
    *out_i = shi[0];
    __syncthreads();
}

__global__ void rmsnorm_kernel(const float *x, const int32_t *idx, const float *w, int n, float eps, float *y) {
    __shared__ double sh[kThreads];
    const float *xr = x + (size_t)(idx ? idx[blockIdx.x] : (int32_t)blockIdx.x) * n;
    float *yr = y + (size_t)blockIdx.x * n;
    double ss = 0;
    for (int i = threadIdx.x; i < n; i += kThreads) ss += (double)xr[i] * xr[i];
    ss = block_sum(ss, sh);
    const float var = (float)(ss / n);
    const float s = 1.0f / sqrtf(var + eps);
    for (int i = threadIdx.x; i < n; i += kThreads) yr[i] = w[i] * (xr[i] * s);
}

__global__ void bias_kernel(float *y, const float *b, int n, size_t total) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        y[i] += b[i % n];
}

__global__ void add_kernel(float *x, const float *y, size_t total) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        x[i] += y[i];
}

// RoPE of one head (hd values) at position pos, in place; the block's threads share the pairs.
__device__ void rope_head(float *v, float pos, int hd, const float *inv_freq, int layout) {
    const int half = hd / 2;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        const int i0 = layout == HARP_ROPE_HALF ? i : 2 * i, i1 = layout == HARP_ROPE_HALF ? i + half : 2 * i + 1;
        rope_rotate(v[i0], v[i1], pos, inv_freq[i], &v[i0], &v[i1]);
    }
}

// One block per (row, head): row r (stride ld) at position pos[r]. A block per head, not per row:
// at decode there is one row, and one block walking every head took ~20 µs.
__global__ void rope_kernel(float *x, int ld, const int32_t *pos_of, int hd, const float *inv_freq, int layout) {
    rope_head(x + (size_t)blockIdx.x * ld + (size_t)blockIdx.y * hd, (float)pos_of[blockIdx.x], hd, inv_freq, layout);
}

// rope_kernel on q and k, then k and v into the cache row krow[r] (what rope, rope and
// kv_store_kernel compute) in one launch: block (r, h) takes q head h < n_heads, or kv head
// h − n_heads, which it rotates and stores with its v head.
template <typename T>
__global__ void rope_store_kernel(float *q, float *k, const float *v, const int32_t *pos_of, const int32_t *krow, int n_heads,
                                  int n_kv, int hd, const float *inv_freq, int layout, T *kc, T *vc) {
    pdl_wait();   // launched with pdl_launch: everything it reads comes from the kernels before it
    pdl_trigger();
    const size_t r = blockIdx.x, h = blockIdx.y, qd = (size_t)n_heads * hd, kvd = (size_t)n_kv * hd;
    const float pos = (float)pos_of[r];
    if (h < (size_t)n_heads) {
        rope_head(q + r * qd + h * hd, pos, hd, inv_freq, layout);
        return;
    }
    const size_t off = (h - n_heads) * hd, dst = (size_t)krow[r] * kvd + off;
    float *kr = k + r * kvd + off;
    rope_head(kr, pos, hd, inv_freq, layout);
    __syncthreads();   // the rotated k head, whichever thread wrote it
    for (int i = threadIdx.x; i < hd; i += blockDim.x) {
        kv_st(kc + dst + i, kr[i]);
        kv_st(vc + dst + i, v[r * kvd + off + i]);
    }
}

// rope_store_kernel for many rows: a block per row (blocks stride over rows) rotates every q and k head
// of it with the row's cosines and sines computed once in shared memory (the same expressions as
// rope_rotate: same bits) and stores k and v. Per (row, head) blocks of 64 threads took 120 µs for
// 4 096 rows of ref-llama's 16 heads (H100), each recomputing the angles.
constexpr int kRopeRowThreads = 256, kRopeMaxHalf = 128;
template <typename T>
__global__ void rope_store_rows_kernel(float *q, float *k, const float *v, const int32_t *pos_of, const int32_t *krow, int rows,
                                       int n_heads, int n_kv, int hd, const float *inv_freq, int layout, T *kc, T *vc) {
    pdl_wait();
    pdl_trigger();
    __shared__ float s_cs[kRopeMaxHalf], s_sn[kRopeMaxHalf];
    const int half = hd / 2, pairs = (n_heads + n_kv) * half;
    const size_t qd = (size_t)n_heads * hd, kvd = (size_t)n_kv * hd;
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const float pos = (float)pos_of[r];
        for (int i = threadIdx.x; i < half; i += blockDim.x) rope_angle(pos, inv_freq[i], &s_cs[i], &s_sn[i]);
        __syncthreads();
        const size_t dst = (size_t)krow[r] * kvd;
        for (int e = threadIdx.x; e < pairs; e += blockDim.x) {
            const int h = e / half, i = e - h * half;
            const int i0 = layout == HARP_ROPE_HALF ? i : 2 * i, i1 = layout == HARP_ROPE_HALF ? i + half : 2 * i + 1;
            float *x = h < n_heads ? q + r * qd + (size_t)h * hd : k + r * kvd + (size_t)(h - n_heads) * hd;
            float y0, y1;
            rope_apply(x[i0], x[i1], s_cs[i], s_sn[i], &y0, &y1);
            x[i0] = y0, x[i1] = y1;
            if (h >= n_heads) {   // the kv head's pair into the cache with its v pair
                const size_t o = (size_t)(h - n_heads) * hd;
                kv_st(kc + dst + o + i0, y0);
                kv_st(kc + dst + o + i1, y1);
                kv_st(vc + dst + o + i0, v[r * kvd + o + i0]);
                kv_st(vc + dst + o + i1, v[r * kvd + o + i1]);
            }
        }
        __syncthreads();   // the angles of the next row overwrite these
    }
}

__global__ void swiglu_kernel(float *g, const float *u, size_t total) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const float x = g[i];
        g[i] = x / (1.0f + expf(-x)) * u[i];
    }
}

// Masked softmax over score rows: one block per (block z, query i); keys lo..hi-1 are visible.
__global__ void softmax_kernel(float *S, int n_q, int T, int p0, size_t zstride, int window) {
    __shared__ double shd[kThreads];
    __shared__ float shf[kThreads];
    const size_t z = blockIdx.x / n_q;
    const int i = (int)(blockIdx.x % n_q), p = p0 + i;
    float *s = S + z * zstride + (size_t)i * T;
    const int hi = p + 1, lo = window > 0 && p + 1 > window ? p + 1 - window : 0;
    float mx = -INFINITY;
    for (int j = lo + threadIdx.x; j < hi; j += kThreads) mx = fmaxf(mx, s[j]);
    mx = block_max(mx, shf);
    double sum = 0;
    for (int j = lo + threadIdx.x; j < hi; j += kThreads) {
        const float e = expf(s[j] - mx);
        s[j] = e;
        sum += e;
    }
    sum = block_sum(sum, shd);
    const float inv = (float)(1.0 / sum);
    for (int j = threadIdx.x; j < T; j += kThreads) s[j] = j >= lo && j < hi ? s[j] * inv : 0.0f;
}

// Log-sum-exp of one logits row and its argmax (lowest index among ties), over the whole block.
__device__ double row_lse(const float *l, int vocab, double *shd, float *shf, int *shi, int *am) {
    float v = -INFINITY, mx;
    int idx = 0x7fffffff;
    for (int j = threadIdx.x; j < vocab; j += kThreads)
        if (l[j] > v) {
            v = l[j];
            idx = j;
        }
    block_argmax(v, idx, shf, shi, &mx, am);
    double s = 0;
    for (int j = threadIdx.x; j < vocab; j += kThreads) s += exp((double)l[j] - mx);
    s = block_sum(s, shd);
    return log(s) + mx;
}

// One block per scored row.
__global__ void score_kernel(const float *logits, const float *ref, const int32_t *rows, const int32_t *targets,
                             int vocab, double *nll, double *kld, int *agree) {
    __shared__ double shd[kThreads];
    __shared__ float shf[kThreads];
    __shared__ int shi[kThreads];
    const size_t r = (size_t)rows[blockIdx.x];
    const float *l = logits + r * vocab;
    int am, amr;
    const double lse = row_lse(l, vocab, shd, shf, shi, &am);
    if (threadIdx.x == 0) nll[blockIdx.x] = lse - l[targets[blockIdx.x]];
    if (!ref) return;
    const float *lr = ref + r * vocab;
    const double lse_r = row_lse(lr, vocab, shd, shf, shi, &amr);
    double kl = 0;
    for (int j = threadIdx.x; j < vocab; j += kThreads) {
        const double lpb = (double)lr[j] - lse_r, lpt = (double)l[j] - lse;
        const double pb = exp(lpb);
        if (pb > 0) kl += pb * (lpb - lpt);
    }
    kl = block_sum(kl, shd);
    if (threadIdx.x == 0) {
        kld[blockIdx.x] = kl;
        agree[blockIdx.x] = am == amr;
    }
}

unsigned grid_for(size_t total) {
    size_t g = (total + kThreads - 1) / kThreads;
    return (unsigned)(g > 65535 * 8 ? 65535 * 8 : g < 1 ? 1 : g);
}

struct SplitArgs {
    float *dst[HC_SPLIT_MAX];
    int col[HC_SPLIT_MAX + 1];
};

// Rows of y (ld wide) into the slices: columns [col[s], col[s + 1]) to dst[s]. Blocks stride over rows,
// threads over V-float pieces of a row (V = 4 where every slice edge, ld and pointer allow float4): one
// thread per float and a CTA per 256 of them moved 32 MB in 137 µs (ref-llama prefill, H100).
template <int V> __global__ void split_kernel(const float *y, int ld, SplitArgs a, int n, int rows) {
    pdl_wait();   // launched with pdl_launch: everything it reads comes from the kernels before it
    pdl_trigger();
    const int cols = a.col[n];
    for (int r = blockIdx.x; r < rows; r += gridDim.x)
        for (int i = threadIdx.x * V; i < cols; i += blockDim.x * V) {
            int s = 0;
            while (i >= a.col[s + 1]) s++;
            const float *src = y + (size_t)r * ld + i;
            float *dst = a.dst[s] + (size_t)r * (a.col[s + 1] - a.col[s]) + (i - a.col[s]);
            if (V == 4) *reinterpret_cast<float4 *>(dst) = *reinterpret_cast<const float4 *>(src);
            else *dst = *src;
        }
}

template <typename T>
__global__ void kv_store_kernel(const float *k, const float *v, int kvd, const int32_t *krow, T *kc, T *vc) {
    const size_t r = blockIdx.x, dst = (size_t)krow[r] * kvd;
    for (int i = threadIdx.x; i < kvd; i += blockDim.x) {
        kv_st(kc + dst + i, k[r * kvd + i]);
        kv_st(vc + dst + i, v[r * kvd + i]);
    }
}

// n rows of an fp16 cache layer (K and V) as fp32, for the SGEMM attention of prefill plans.
__global__ void kv_widen_kernel(const __half *kc, const __half *vc, size_t n, float *k, float *v) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        k[i] = __half2float(kc[i]);
        v[i] = __half2float(vc[i]);
    }
}

// Decode attention: 4 warps per (head, row, chunk of `ch` keys). Scores: warp w takes keys
// w, w + 4, ... of the chunk, lanes across the head dimension. Values: warp w again takes every 4th
// key, lane i dimensions i, i + 32, ... in registers; the four warps' sums meet in shared memory.
// Many small chunks rather than long loops: at decode the kernel is latency-bound.
constexpr int kAttThreads = 128, kAttWarps = kAttThreads / 32, kAttMaxHd = 256, kAttMaxChunks = 64;

// Keys per chunk for a cache of max_T rows: 32, or more so that there are at most kAttMaxChunks.
int att_chunk(int max_T) {
    const int per = (max_T + kAttMaxChunks - 1) / kAttMaxChunks;
    return per <= 32 ? 32 : (per + 31) / 32 * 32;
}

__device__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Block-wide max (op 0) or sum (op 1) of the threads' values.
__device__ float att_reduce(float v, int op, float *sh) {
    v = op ? warp_sum(v) : warp_max(v);
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
    __syncthreads();
    float r = sh[0];
    for (int w = 1; w < kAttWarps; w++) r = op ? r + sh[w] : fmaxf(r, sh[w]);
    __syncthreads();
    return r;
}

__device__ void att_window(int p, int window, int *lo, int *hi) {
    *hi = p + 1;
    *lo = window > 0 && p + 1 > window ? p + 1 - window : 0;
}

// What decode attention reads of one layer's K or V: element (cache row, column) of dense rows ...
template <typename T>
struct DenseKV {
    const T *p;
    int kvd;
    __device__ __forceinline__ float at(size_t row, int col) const { return kv_ld(p + row * kvd + col); }
};

// ... or of quant/aq.h planes (a W/A/KV model's cache), decoded as dec_aq_dequantize writes them
// (s·(q − z) in fp32): the scores and context are those of a dequantized copy, without making one.
struct AqKV {
    hc_kv_aq a;
    __device__ __forceinline__ float at(size_t row, int col) const {
        const int G = col / a.group;
        const size_t gi = row * a.groups + G;
        const int qv = aq_code_get(a.codes + row * a.row_bytes + (size_t)G * a.group_bytes, col - G * a.group, a.bits, a.sym);
        return __half2float(__ushort_as_half(a.scale16[gi])) * (float)(qv - (a.zero ? a.zero[gi] : 0));
    }
};

template <typename Src>
__global__ void attn_part_kernel(const float *q, Src kc, Src vc, const int32_t *pos, const int32_t *base,
                                 int grp, int hd, int window, int ch, float *part, unsigned *count, float *out) {
    pdl_wait();   // launched with pdl_launch: everything it reads comes from the kernels before it
    pdl_trigger();
    __shared__ float qs[kAttMaxHd], red[kAttWarps], acc_sh[kAttWarps][kAttMaxHd];
    extern __shared__ float sc[];   // ch scores
    const int h = blockIdx.x, r = blockIdx.y, c = blockIdx.z, nh = gridDim.x, nc = gridDim.z;
    int lo, hi;
    att_window(pos[r], window, &lo, &hi);
    const int t0 = c * ch, t1 = min(t0 + ch, hi), a = max(t0, lo);
    float *pp = part + (((size_t)r * nh + h) * nc + c) * (size_t)(hd + 2);
    if (a >= t1) return;   // the combine skips chunks outside [lo, hi)
    const float *qr = q + ((size_t)r * nh + h) * hd;
    for (int i = threadIdx.x; i < hd; i += kAttThreads) qs[i] = qr[i];
    __syncthreads();
    const int off = (h / grp) * hd;
    const size_t row0 = (size_t)base[r];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const float scale = 1.0f / sqrtf((float)hd);
#pragma unroll 4
    for (int t = a + warp; t < t1; t += kAttWarps) {
        float d = 0.0f;
        for (int i = lane; i < hd; i += 32) d += qs[i] * kc.at(row0 + t, off + i);
        d = warp_sum(d);
        if (!lane) sc[t - t0] = scale * d;
    }
    __syncthreads();
    float m = -INFINITY, l = 0.0f;
    for (int j = a - t0 + (int)threadIdx.x; j < t1 - t0; j += kAttThreads) m = fmaxf(m, sc[j]);
    m = att_reduce(m, 0, red);
    for (int j = a - t0 + (int)threadIdx.x; j < t1 - t0; j += kAttThreads) {
        const float e = expf(sc[j] - m);
        sc[j] = e;
        l += e;
    }
    l = att_reduce(l, 1, red);   // its barrier also publishes sc
    float acc[kAttMaxHd / 32];
#pragma unroll
    for (int k = 0; k < kAttMaxHd / 32; k++) acc[k] = 0.0f;
#pragma unroll 4
    for (int t = a + warp; t < t1; t += kAttWarps) {
        const float p = sc[t - t0];
#pragma unroll
        for (int k = 0; k < kAttMaxHd / 32; k++)
            if (lane + 32 * k < hd) acc[k] += p * vc.at(row0 + t, off + lane + 32 * k);
    }
#pragma unroll
    for (int k = 0; k < kAttMaxHd / 32; k++)
        if (lane + 32 * k < hd) acc_sh[warp][lane + 32 * k] = acc[k];
    __syncthreads();
    for (int i = threadIdx.x; i < hd; i += kAttThreads) {
        float v = acc_sh[0][i];
        for (int w = 1; w < kAttWarps; w++) v += acc_sh[w][i];
        pp[2 + i] = v;
    }
    if (!threadIdx.x) pp[0] = m, pp[1] = l;
    // The last chunk of (row, head) to finish combines them all (one launch fewer per layer): its
    // partials fenced before the count, the others' read from L2. The count goes back to 0 for the
    // next launch (a graph replays this one); the combine's order is fixed, whichever CTA runs it.
    __shared__ unsigned is_last;
    __threadfence();
    __syncthreads();
    const int c0 = lo / ch, c1 = (hi - 1) / ch;
    if (!threadIdx.x) {
        unsigned *cnt = count + (size_t)r * nh + h;
        is_last = atomicAdd(cnt, 1u) == (unsigned)(c1 - c0);
        if (is_last) *cnt = 0;
    }
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    const float *hp = part + ((size_t)r * nh + h) * nc * (size_t)(hd + 2);
    float M = -INFINITY;
    for (int cc = c0; cc <= c1; cc++) M = fmaxf(M, __ldcg(hp + (size_t)cc * (hd + 2)));
    float L = 0.0f;
    for (int cc = c0; cc <= c1; cc++) L += expf(__ldcg(hp + (size_t)cc * (hd + 2)) - M) * __ldcg(hp + (size_t)cc * (hd + 2) + 1);
    const float inv = 1.0f / L;
    for (int i = threadIdx.x; i < hd; i += blockDim.x) {
        float o = 0.0f;
        for (int cc = c0; cc <= c1; cc++) o += expf(__ldcg(hp + (size_t)cc * (hd + 2)) - M) * __ldcg(hp + (size_t)cc * (hd + 2) + 2 + i);
        out[((size_t)r * nh + h) * hd + i] = o * inv;
    }
}


}  // namespace

extern "C" harp_status hc_launched(const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return harp_err(e == cudaErrorMemoryAllocation ? HARP_ERR_OOM : HARP_ERR_NO_DEVICE, "cuda %s: %s", what,
                        cudaGetErrorString(e));
    return HARP_OK;
}

extern "C" harp_status hc_rmsnorm(const float *x, const int32_t *idx, const float *w, int rows, int n, float eps,
                                  float *y, hc_stream st) {
    if (rows < 1) return HARP_OK;
    rmsnorm_kernel<<<rows, kThreads, 0, st>>>(x, idx, w, n, eps, y);
    return hc_launched("rmsnorm");
}

extern "C" harp_status hc_bias(float *y, const float *b, int n, size_t total, hc_stream st) {
    if (!total) return HARP_OK;
    bias_kernel<<<grid_for(total), kThreads, 0, st>>>(y, b, n, total);
    return hc_launched("bias");
}

extern "C" harp_status hc_add(float *x, const float *y, size_t n, hc_stream st) {
    if (!n) return HARP_OK;
    add_kernel<<<grid_for(n), kThreads, 0, st>>>(x, y, n);
    return hc_launched("residual");
}

extern "C" harp_status hc_rope(float *x, int ld, const int32_t *pos, int rows, int n_heads, int head_dim,
                               const float *inv_freq, int layout, hc_stream st) {
    if (rows < 1) return HARP_OK;
    rope_kernel<<<dim3((unsigned)rows, (unsigned)n_heads), kRopeThreads, 0, st>>>(x, ld, pos, head_dim, inv_freq, layout);
    return hc_launched("rope");
}

extern "C" harp_status hc_swiglu(float *g, const float *u, size_t n, hc_stream st) {
    if (!n) return HARP_OK;
    swiglu_kernel<<<grid_for(n), kThreads, 0, st>>>(g, u, n);
    return hc_launched("swiglu");
}

extern "C" harp_status hc_softmax(float *S, int nz, int n_q, int T, int p0, size_t zstride, int window, hc_stream st) {
    if (nz < 1 || n_q < 1) return HARP_OK;
    softmax_kernel<<<(unsigned)((size_t)nz * n_q), kThreads, 0, st>>>(S, n_q, T, p0, zstride, window);
    return hc_launched("softmax");
}

extern "C" harp_status hc_score(const float *logits, const float *ref, const int32_t *rows, const int32_t *targets,
                                int n, int vocab, double *nll, double *kld, int *agree, hc_stream st) {
    if (n < 1) return HARP_OK;
    score_kernel<<<(unsigned)n, kThreads, 0, st>>>(logits, ref, rows, targets, vocab, nll, kld, agree);
    return hc_launched("score");
}

extern "C" harp_status hc_kv_store(const float *k, const float *v, int rows, int kvd, const int32_t *krow, void *kc, void *vc,
                                   int f16, hc_stream st) {
    if (rows < 1) return HARP_OK;
    if (f16) kv_store_kernel<<<rows, kThreads, 0, st>>>(k, v, kvd, krow, (__half *)kc, (__half *)vc);
    else kv_store_kernel<<<rows, kThreads, 0, st>>>(k, v, kvd, krow, (float *)kc, (float *)vc);
    return hc_launched("kv store");
}

extern "C" size_t hc_attn_part_floats(int rows, int n_heads, int head_dim, int max_T) {
    const int ch = att_chunk(max_T);
    return (size_t)rows * n_heads * ((max_T + ch - 1) / ch) * (size_t)(head_dim + 2);
}

// The launch of attn_part_kernel over either kind of cache.
template <typename Src>
harp_status attn_decode(const float *q, Src kc, Src vc, const int32_t *pos, const int32_t *base, int rows, int n_heads,
                        int n_kv_heads, int head_dim, int window, int max_T, float *part, unsigned *count, float *out, hc_stream st) {
    if (rows < 1) return HARP_OK;
    if (head_dim > kAttMaxHd || n_kv_heads < 1 || n_heads % n_kv_heads || max_T < 1)
        return harp_err(HARP_ERR_UNSUPPORTED, "cuda decode attention: head_dim %d (at most %d), %d / %d heads", head_dim, kAttMaxHd,
                        n_heads, n_kv_heads);
    const int ch = att_chunk(max_T), nc = (max_T + ch - 1) / ch;
    const dim3 grid((unsigned)n_heads, (unsigned)rows, (unsigned)nc), block(kAttThreads);
    const size_t smem = (size_t)ch * sizeof(float);
    pdl_launch(attn_part_kernel<Src>, grid, block, smem, st, q, kc, vc, pos, base, n_heads / n_kv_heads, head_dim, window, ch, part,
               count, out);
    return hc_launched("decode attention");
}

extern "C" harp_status hc_attn_decode(const float *q, const void *kc, const void *vc, int f16, const int32_t *pos,
                                      const int32_t *base, int rows, int n_heads, int n_kv_heads, int head_dim, int kvd, int window,
                                      int max_T, float *part, unsigned *count, float *out, hc_stream st) {
    if (f16)
        return attn_decode(q, DenseKV<__half>{(const __half *)kc, kvd}, DenseKV<__half>{(const __half *)vc, kvd}, pos, base, rows,
                           n_heads, n_kv_heads, head_dim, window, max_T, part, count, out, st);
    return attn_decode(q, DenseKV<float>{(const float *)kc, kvd}, DenseKV<float>{(const float *)vc, kvd}, pos, base, rows, n_heads,
                       n_kv_heads, head_dim, window, max_T, part, count, out, st);
}

extern "C" harp_status hc_attn_decode_aq(const float *q, const hc_kv_aq *kc, const hc_kv_aq *vc, const int32_t *pos,
                                         const int32_t *base, int rows, int n_heads, int n_kv_heads, int head_dim, int window,
                                         int max_T, float *part, unsigned *count, float *out, hc_stream st) {
    const hc_kv_aq *both[2] = {kc, vc};
    for (const hc_kv_aq *a : both)
        if (a->bits < 2 || a->bits > 8 || a->group < 1 || a->groups < 1 || !a->codes || !a->scale16 || (!a->sym && !a->zero))
            return harp_err(HARP_ERR_INVALID_ARG, "cuda decode attention: quantized cache planes (%d bits, group %d) incomplete",
                            a->bits, a->group);
    return attn_decode(q, AqKV{*kc}, AqKV{*vc}, pos, base, rows, n_heads, n_kv_heads, head_dim, window, max_T, part, count, out, st);
}

extern "C" harp_status hc_split(const float *y, int ld, int rows, int n, const int *widths, float *const *dst, hc_stream st) {
    if (rows < 1) return HARP_OK;
    if (n < 1 || n > HC_SPLIT_MAX) return harp_err(HARP_ERR_INTERNAL, "cuda split: %d slices (1..%d)", n, HC_SPLIT_MAX);
    SplitArgs a = {};
    bool v4 = ld % 4 == 0 && ((uintptr_t)y & 15) == 0;
    for (int s = 0; s < n; s++) {
        a.dst[s] = dst[s], a.col[s + 1] = a.col[s] + widths[s];
        v4 = v4 && widths[s] % 4 == 0 && ((uintptr_t)dst[s] & 15) == 0;
    }
    const unsigned grid = (unsigned)(rows < 4096 ? rows : 4096);
    if (v4) pdl_launch(split_kernel<4>, dim3(grid), dim3(kThreads), 0, st, y, ld, a, n, rows);
    else pdl_launch(split_kernel<1>, dim3(grid), dim3(kThreads), 0, st, y, ld, a, n, rows);
    return hc_launched("slice split");
}

extern "C" harp_status hc_rope_store(float *q, float *k, const float *v, const int32_t *pos, const int32_t *krow, int rows, int n_heads,
                                     int n_kv, int head_dim, const float *inv_freq, int layout, void *kc, void *vc, int f16,
                                     hc_stream st) {
    if (rows < 1) return HARP_OK;
    if (rows >= kRopeRowsFrom && head_dim / 2 <= kRopeMaxHalf) {   // prefill: a block per row
        const unsigned g = (unsigned)(rows < 4096 ? rows : 4096);
        if (f16)
            pdl_launch(rope_store_rows_kernel<__half>, dim3(g), dim3(kRopeRowThreads), 0, st, q, k, v, pos, krow, rows, n_heads, n_kv,
                       head_dim, inv_freq, layout, (__half *)kc, (__half *)vc);
        else
            pdl_launch(rope_store_rows_kernel<float>, dim3(g), dim3(kRopeRowThreads), 0, st, q, k, v, pos, krow, rows, n_heads, n_kv,
                       head_dim, inv_freq, layout, (float *)kc, (float *)vc);
        return hc_launched("rope and kv store");
    }
    const dim3 grid((unsigned)rows, (unsigned)(n_heads + n_kv)), block(kRopeThreads);
    if (f16)
        pdl_launch(rope_store_kernel<__half>, grid, block, 0, st, q, k, v, pos, krow, n_heads, n_kv, head_dim, inv_freq, layout,
                   (__half *)kc, (__half *)vc);
    else
        pdl_launch(rope_store_kernel<float>, grid, block, 0, st, q, k, v, pos, krow, n_heads, n_kv, head_dim, inv_freq, layout,
                   (float *)kc, (float *)vc);
    return hc_launched("rope and kv store");
}

extern "C" harp_status hc_kv_widen(const void *kc, const void *vc, size_t n, float *k, float *v, hc_stream st) {
    if (!n) return HARP_OK;
    const size_t want = (n + kThreads - 1) / kThreads;
    kv_widen_kernel<<<(unsigned)(want < 4096 ? want : 4096), kThreads, 0, st>>>((const __half *)kc, (const __half *)vc, n, k, v);
    return hc_launched("kv widen");
}
