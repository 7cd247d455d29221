// Decode-time attention on the GPU (decode.h): RoPE + KV store for the new token of each sequence,
// and one query per sequence over its fp16 KV cache (GQA, sliding window), split over chunks of
// keys (flash-decoding) and combined in a fixed order, so results are deterministic.
// Cache layout per sequence b: K and V fp16 [max_ctx][n_kv][hd] at offset b·max_ctx·n_kv·hd.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

extern "C" {
#include "core/core.h"
#include "cuda/decode.h"
}
#include "cuda/pdl.cuh"

namespace {

constexpr int kChunk = 64;      // keys per split: 32 heads × ctx/64 CTAs (256 keys left most SMs idle: docs/results/decode-gpu.md)
constexpr int kThreads = 128;
constexpr int kMaxGroup = 8;    // q heads per kv head (Llama-2/3 70B: 8)

harp_status launched(const char *what) {
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "cuda attention: %s: %s", what, cudaGetErrorString(e));
}

__global__ void rope_kv_kernel(dec_attn_shape s, const float *qkv, int ldq, const int32_t *pos, const float *inv_freq,
                               int interleaved, float *qout, __half *kc, __half *vc) {
    pdl_wait();
    pdl_trigger();
    const int b = blockIdx.x, hd = s.head_dim, half = hd / 2, qd = s.n_heads * hd, kvd = s.n_kv * hd;
    const float *row = qkv + (size_t)b * ldq;
    const int p = pos[b];
    const size_t at = (size_t)b * s.max_ctx * kvd + (size_t)p * kvd;
    for (int t = threadIdx.x; t < (s.n_heads + s.n_kv) * half; t += blockDim.x) {
        const int h = t / half, i = t % half;
        const float ang = (float)p * inv_freq[i], cs = cosf(ang), sn = sinf(ang);
        const int i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
        const float x0 = row[h * hd + i0], x1 = row[h * hd + i1];
        const float y0 = x0 * cs - x1 * sn, y1 = x1 * cs + x0 * sn;
        if (h < s.n_heads) {
            qout[(size_t)b * qd + h * hd + i0] = y0;
            qout[(size_t)b * qd + h * hd + i1] = y1;
        } else {
            kc[at + (h - s.n_heads) * hd + i0] = __float2half_rn(y0);
            kc[at + (h - s.n_heads) * hd + i1] = __float2half_rn(y1);
        }
    }
    for (int i = threadIdx.x; i < kvd; i += blockDim.x) vc[at + i] = __float2half_rn(row[qd + kvd + i]);
}

// Partial softmax·V of one (sequence, kv head, chunk of keys): m, l, o[hd] per q head of the group.
// Scores: one thread per key (its K row read with 16-byte loads, all keys in flight at once). Values:
// warp w takes keys w, w + 4, ...; lane owns head-dim columns lane·V .. lane·V + V − 1 (V = hd/32) for
// every q head of the group; the four warps' sums are added in a fixed order.
template <int V>
__global__ void __launch_bounds__(kThreads) attn_part_kernel(dec_attn_shape s, const float *q, const __half *kc,
                                                            const __half *vc, const int32_t *pos, float *ws, int nch) {
    pdl_wait();
    pdl_trigger();
    __shared__ float s_q[kMaxGroup][32 * V];   // head_dim = 32·V
    __shared__ float s_p[kMaxGroup][kChunk];
    __shared__ float s_o[kThreads / 32][kMaxGroup][32 * V];
    __shared__ float s_m[kMaxGroup], s_l[kMaxGroup];
    const int chunk = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
    const int hd = s.head_dim, grp = s.n_heads / s.n_kv, kvd = s.n_kv * hd;
    const int hi = pos[b] + 1, lo = s.window > 0 && hi > s.window ? hi - s.window : 0;
    const int j0 = lo + chunk * kChunk, j1 = min(hi, j0 + kChunk), cnt = max(0, j1 - j0);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = kThreads / 32;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int i = tid; i < grp * hd; i += kThreads)
        s_q[i / hd][i % hd] = q[(size_t)b * s.n_heads * hd + (size_t)(kvh * grp + i / hd) * hd + i % hd];
    __syncthreads();
    const size_t cb = (size_t)b * s.max_ctx * kvd + (size_t)kvh * hd;
    for (int jj = tid; jj < cnt; jj += kThreads) {
        const uint4 *k = reinterpret_cast<const uint4 *>(kc + cb + (size_t)(j0 + jj) * kvd);
        float d[kMaxGroup];
#pragma unroll
        for (int g = 0; g < kMaxGroup; g++) d[g] = 0.0f;
        for (int t8 = 0; t8 < hd / 8; t8++) {
            const uint4 kv = __ldg(k + t8);
            const __half2 *h2 = reinterpret_cast<const __half2 *>(&kv);
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const float2 f = __half22float2(h2[u]);
#pragma unroll
                for (int g = 0; g < kMaxGroup; g++)
                    if (g < grp) d[g] = fmaf(s_q[g][8 * t8 + 2 * u + 1], f.y, fmaf(s_q[g][8 * t8 + 2 * u], f.x, d[g]));
            }
        }
#pragma unroll
        for (int g = 0; g < kMaxGroup; g++)
            if (g < grp) s_p[g][jj] = d[g] * scale;
    }
    __syncthreads();
    for (int g = warp; g < grp; g += nw) {
        float m = -INFINITY;
        for (int jj = lane; jj < cnt; jj += 32) m = fmaxf(m, s_p[g][jj]);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
        float l = 0.0f;
        for (int jj = lane; jj < cnt; jj += 32) {
            const float e = expf(s_p[g][jj] - m);
            s_p[g][jj] = e;
            l += e;
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) l += __shfl_xor_sync(0xffffffffu, l, o);
        if (lane == 0) s_m[g] = m, s_l[g] = l;
    }
    __syncthreads();
    float acc[kMaxGroup][V];
#pragma unroll
    for (int g = 0; g < kMaxGroup; g++)
#pragma unroll
        for (int v = 0; v < V; v++) acc[g][v] = 0.0f;
#pragma unroll 4
    for (int jj = warp; jj < cnt; jj += nw) {
        const __half *vr = vc + cb + (size_t)(j0 + jj) * kvd + lane * V;
        float vv[V];
#pragma unroll
        for (int v = 0; v < V; v++) vv[v] = __half2float(vr[v]);
#pragma unroll
        for (int g = 0; g < kMaxGroup; g++) {
            if (g >= grp) break;
            const float p = s_p[g][jj];
#pragma unroll
            for (int v = 0; v < V; v++) acc[g][v] = fmaf(p, vv[v], acc[g][v]);
        }
    }
#pragma unroll
    for (int g = 0; g < kMaxGroup; g++) {
        if (g >= grp) break;
#pragma unroll
        for (int v = 0; v < V; v++) s_o[warp][g][lane * V + v] = acc[g][v];
    }
    __syncthreads();
    for (int i = tid; i < grp * hd; i += kThreads) {
        const int g = i / hd, t = i % hd;
        float o = 0.0f;
        for (int w = 0; w < nw; w++) o += s_o[w][g][t];
        float *wp = ws + (((size_t)b * s.n_heads + kvh * grp + g) * nch + chunk) * (hd + 2);
        wp[2 + t] = o;
        if (t == 0) wp[0] = cnt ? s_m[g] : -INFINITY, wp[1] = cnt ? s_l[g] : 0.0f;
    }
}

__global__ void attn_combine_kernel(dec_attn_shape s, const float *ws, int nch, float *out) {
    pdl_wait();
    pdl_trigger();
    const int h = blockIdx.x, b = blockIdx.y, hd = s.head_dim;
    const float *w = ws + ((size_t)b * s.n_heads + h) * nch * (hd + 2);
    float M = -INFINITY;
    for (int c = 0; c < nch; c++) M = fmaxf(M, w[(size_t)c * (hd + 2)]);
    for (int t = threadIdx.x; t < hd; t += blockDim.x) {
        float L = 0.0f, o = 0.0f;
        for (int c = 0; c < nch; c++) {
            const float *wc = w + (size_t)c * (hd + 2);
            if (wc[1] == 0.0f) continue;
            const float f = expf(wc[0] - M);
            L = fmaf(wc[1], f, L);
            o = fmaf(wc[2 + t], f, o);
        }
        out[(size_t)b * s.n_heads * hd + (size_t)h * hd + t] = o / L;
    }
}

int chunks_of(const dec_attn_shape *s) {
    const int span = s->window > 0 && s->window < s->max_ctx ? s->window : s->max_ctx;
    return (span + kChunk - 1) / kChunk;
}

harp_status check_shape(const dec_attn_shape *s, int B) {
    if (B < 1 || s->n_kv < 1 || s->n_heads % s->n_kv || s->n_heads / s->n_kv > kMaxGroup || 
        (s->head_dim != 32 && s->head_dim != 64 && s->head_dim != 128) || s->max_ctx < 1)
        return harp_err(HARP_ERR_UNSUPPORTED, "cuda attention: %d heads / %d kv heads, head dim %d, ctx %d, batch %d", s->n_heads,
                        s->n_kv, s->head_dim, s->max_ctx, B);
    return HARP_OK;
}

}  // namespace

extern "C" harp_status dec_rope_kv(const dec_attn_shape *s, const float *qkv, int ldq, int B, const int32_t *pos,
                                   const float *inv_freq, int interleaved, float *qout, void *kc, void *vc, dec_stream stream) {
    HARP_TRY(check_shape(s, B));
    pdl_launch(rope_kv_kernel, B, 256, 0, (cudaStream_t)stream, *s, qkv, ldq, pos, inv_freq, interleaved, qout, (__half *)kc, (__half *)vc);
    return launched("rope/kv store");
}

extern "C" size_t dec_attn_workspace_floats(const dec_attn_shape *s, int B) {
    return (size_t)B * (size_t)s->n_heads * (size_t)chunks_of(s) * (size_t)(s->head_dim + 2);
}

extern "C" harp_status dec_attn(const dec_attn_shape *s, const float *q, const void *kc, const void *vc, int B, const int32_t *pos,
                                float *out, float *workspace, dec_stream stream) {
    HARP_TRY(check_shape(s, B));
    const int nch = chunks_of(s);
    const dim3 grid(nch, s->n_kv, B);
    const __half *k = (const __half *)kc, *v = (const __half *)vc;
    cudaStream_t st = (cudaStream_t)stream;
    switch (s->head_dim / 32) {   // head_dim is 32, 64 or 128 (check_shape)
    case 1: pdl_launch(attn_part_kernel<1>, grid, kThreads, 0, st, *s, q, k, v, pos, workspace, nch); break;
    case 2: pdl_launch(attn_part_kernel<2>, grid, kThreads, 0, st, *s, q, k, v, pos, workspace, nch); break;
    case 4: pdl_launch(attn_part_kernel<4>, grid, kThreads, 0, st, *s, q, k, v, pos, workspace, nch); break;
    default: pdl_launch(attn_part_kernel<4>, grid, kThreads, 0, st, *s, q, k, v, pos, workspace, nch); break;
    }
    HARP_TRY(launched("attention partials"));
    pdl_launch(attn_combine_kernel, dim3(s->n_heads, B), 128, 0, (cudaStream_t)stream, *s, workspace, nch, out);
    return launched("attention combine");
}

namespace {
__global__ void swiglu_kernel(const float *ug, int ld, int hidden, float *out, int ldo) {
    pdl_wait();
    pdl_trigger();
    const int b = blockIdx.y;
    const float *u = ug + (size_t)b * ld, *g = u + hidden;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < hidden; i += gridDim.x * blockDim.x) {
        const float x = g[i];
        out[(size_t)b * ldo + i] = x / (1.0f + expf(-x)) * u[i];
    }
}
}  // namespace

extern "C" harp_status dec_swiglu(const float *ug, int ld, int B, int hidden, float *out, int ldo, dec_stream stream) {
    if (B < 1 || hidden < 1 || ld < 2 * hidden || ldo < hidden)
        return harp_err(HARP_ERR_INVALID_ARG, "cuda swiglu: B %d, hidden %d, ld %d, ldo %d", B, hidden, ld, ldo);
    const int blocks = (hidden + 255) / 256 < 64 ? (hidden + 255) / 256 : 64;
    pdl_launch(swiglu_kernel, dim3(blocks, B), 256, 0, (cudaStream_t)stream, ug, ld, hidden, out, ldo);
    return launched("swiglu");
}
