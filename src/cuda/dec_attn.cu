// Decode-time attention on the GPU (decode.h): RoPE + KV store for the new token of each sequence,
// and one query per sequence over its fp16 KV cache (GQA, sliding window), split over chunks of
// keys (flash-decoding) and combined in a fixed order, so results are deterministic.
// Cache layout per sequence b: K and V fp16 [max_ctx][n_kv][hd] at offset b·max_ctx·n_kv·hd, or the
// 4-bit cache of dec_kv4_layout (W/A/KV models: codes dequantized in registers, same split and combine).
#include <cuda_fp16.h>
#include <float.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

extern "C" {
#include "core/core.h"
#include "cuda/decode.h"
}
#include "cuda/attn_combine.cuh"
#include "cuda/pdl.cuh"
#include "cuda/swiglu.cuh"

namespace {

constexpr int kChunk = 64;      // keys per split: 32 heads × ctx/64 CTAs (256 keys left most SMs idle: docs/results/decode-gpu.md)
constexpr int kThreads = 128;
constexpr int kMaxGroup = 8;    // q heads per kv head (Llama-2/3 70B: 8)

harp_status launched(const char *what) {
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "cuda attention: %s: %s", what, cudaGetErrorString(e));
}

// RoPE of pair i of head h of a row (the fused q|k|v output): its two indices and rotated values.
__device__ __forceinline__ void rope_pair(const float *row, int hd, int h, int i, int p, const float *inv_freq, int interleaved,
                                          int *i0, int *i1, float *y0, float *y1) {
    const int half = hd / 2;
    const float ang = (float)p * inv_freq[i], cs = cosf(ang), sn = sinf(ang);
    *i0 = interleaved ? 2 * i : i, *i1 = interleaved ? 2 * i + 1 : i + half;
    const float x0 = row[h * hd + *i0], x1 = row[h * hd + *i1];
    *y0 = x0 * cs - x1 * sn, *y1 = x1 * cs + x0 * sn;
}

__global__ void rope_kv_kernel(dec_attn_shape s, const float *qkv, int ldq, const int32_t *pos, const float *inv_freq,
                               int interleaved, float *qout, __half *kc, __half *vc) {
    pdl_wait();
    pdl_trigger();
    // one pair per thread over gridDim.y CTAs: a single CTA per row spent ~19 µs of serial sincosf
    // per layer (Nsight, H200, Llama-2-7B shape); same operations per pair, so the same bits
    const int b = blockIdx.x, hd = s.head_dim, half = hd / 2, qd = s.n_heads * hd, kvd = s.n_kv * hd;
    const float *row = qkv + (size_t)b * ldq;
    const int p = pos[b];
    const size_t at = (size_t)b * s.max_ctx * kvd + (size_t)p * kvd;
    const int t0 = blockIdx.y * blockDim.x + threadIdx.x, stride = gridDim.y * blockDim.x;
    for (int t = t0; t < (s.n_heads + s.n_kv) * half; t += stride) {
        const int h = t / half;
        int i0, i1;
        float y0, y1;
        rope_pair(row, hd, h, t % half, p, inv_freq, interleaved, &i0, &i1, &y0, &y1);
        if (h < s.n_heads) {
            qout[(size_t)b * qd + h * hd + i0] = y0;
            qout[(size_t)b * qd + h * hd + i1] = y1;
        } else {
            kc[at + (h - s.n_heads) * hd + i0] = __float2half_rn(y0);
            kc[at + (h - s.n_heads) * hd + i1] = __float2half_rn(y1);
        }
    }
    for (int i = t0; i < kvd; i += stride) vc[at + i] = __float2half_rn(row[qd + kvd + i]);
}

// 4-bit store (the CPU KV quantizer, quant/aq.h, asymmetric, group head_dim, fp16 scale): K after RoPE
// and V staged in shared memory, then one warp per (K or V, kv head): range, fp16 scale, zero point,
// codes two per byte (low nibble first). Same operations as aq_ref.c's ref_fit / ref_code.
__device__ __forceinline__ void kv4_group(const float *x, int hd, float clip, int lane, uint8_t *codes, __half *scale, uint8_t *zero) {
    float mn = 0.0f, mx = 0.0f;
    for (int t = lane; t < hd; t += 32) mn = fminf(mn, x[t]), mx = fmaxf(mx, x[t]);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, o)), mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    float lo = __fmul_rn(mn, clip), hi = __fmul_rn(mx, clip);
    if (lo == 0.0f && hi == 0.0f) lo = -1.0f, hi = 1.0f;
    float s = __fdiv_rn(__fsub_rn(hi, lo), 15.0f);
    if (!(s >= FLT_MIN)) s = FLT_MIN;
    __half_raw h = __half_raw(__float2half_rn(s));
    if ((h.x & 0x7FFF) == 0) h.x = 1;                  // smallest subnormal
    if ((h.x & 0x7FFF) >= 0x7C00) h.x = 0x7BFF;        // 65504
    s = __half2float(__half(h));
    const float z = fminf(fmaxf(rintf(__fdiv_rn(-lo, s)), 0.0f), 15.0f);
    for (int i = lane; i < hd / 2; i += 32) {
        const float q0 = fminf(fmaxf(__fadd_rn(rintf(__fdiv_rn(x[2 * i], s)), z), 0.0f), 15.0f);
        const float q1 = fminf(fmaxf(__fadd_rn(rintf(__fdiv_rn(x[2 * i + 1], s)), z), 0.0f), 15.0f);
        codes[i] = (uint8_t)((int)q0 | (int)q1 << 4);
    }
    if (lane == 0) *scale = __half(h), *zero = (uint8_t)z;
}

__global__ void rope_kv4_kernel(dec_attn_shape s, dec_kv4_map m, const float *qkv, int ldq, const int32_t *pos,
                                const float *inv_freq, int interleaved, float kclip, float vclip, float *qout, uint8_t *kc,
                                uint8_t *vc) {
    // CTA y < n_kv: kv head y (K after RoPE and V staged in shared memory, then one warp each
    // quantizes them); CTA y ≥ n_kv: a slice of the q heads' RoPE. One CTA per row did all of it
    // serially (~19 µs of sincosf per layer at the Llama-2-7B shape); same operations, same bits.
    __shared__ float s_kv[2][128];   // head_dim ≤ 128 (check_shape)
    pdl_wait();
    pdl_trigger();
    const int b = blockIdx.x, hd = s.head_dim, half = hd / 2, qd = s.n_heads * hd, kvd = s.n_kv * hd;
    const float *row = qkv + (size_t)b * ldq;
    const int p = pos[b];
    if ((int)blockIdx.y >= s.n_kv) {
        for (int t = ((int)blockIdx.y - s.n_kv) * blockDim.x + threadIdx.x; t < s.n_heads * half; t += (gridDim.y - s.n_kv) * blockDim.x) {
            const int h = t / half;
            int i0, i1;
            float y0, y1;
            rope_pair(row, hd, h, t % half, p, inv_freq, interleaved, &i0, &i1, &y0, &y1);
            float *o = qout + (size_t)b * qd + h * hd;
            o[i0] = y0, o[i1] = y1;
        }
        return;
    }
    const int h = blockIdx.y;
    for (int t = threadIdx.x; t < half; t += blockDim.x) {
        int i0, i1;
        float y0, y1;
        rope_pair(row, hd, s.n_heads + h, t, p, inv_freq, interleaved, &i0, &i1, &y0, &y1);
        s_kv[0][i0] = y0, s_kv[0][i1] = y1;
    }
    for (int i = threadIdx.x; i < hd; i += blockDim.x) s_kv[1][i] = row[qd + kvd + h * hd + i];
    __syncthreads();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (warp > 1) return;
    const size_t r0 = (size_t)p * s.n_kv;   // first (position, head) row of this position
    uint8_t *base = (warp ? vc : kc) + (size_t)b * m.seq_bytes;
    kv4_group(s_kv[warp], hd, warp ? vclip : kclip, lane, base + (r0 + h) * (size_t)half,
              reinterpret_cast<__half *>(base + m.scale_off) + r0 + h, base + m.zero_off + r0 + h);
}

// Where the keys of one (sequence, kv head) live: fp16 rows (dec_attn) or 4-bit rows (dec_attn_kv4).
// dot(): d[g] = (Σ_t q_g[t]·K[j][t]) for the group's q heads; row(): the lane's V columns of key j.
struct F16Rows {
    const __half *k, *v;
    int kvd;
    int pj;                     // the key this CTA stored itself (dec_attn_rope), read from shared memory
    const __half *sk, *sv;
    __device__ __forceinline__ void set_new(int p, const __half *k_p, const __half *v_p) { pj = p, sk = k_p, sv = v_p; }
    __device__ __forceinline__ void seek(const dec_attn_shape &s, int b, int kvh) {
        kvd = s.n_kv * s.head_dim;
        const size_t cb = (size_t)b * s.max_ctx * kvd + (size_t)kvh * s.head_dim;
        k += cb, v += cb;
    }
    template <int V>
    __device__ __forceinline__ void dot(int j, int hd, int grp, const float (*s_q)[32 * V], float *d) const {
        const uint4 *kr = reinterpret_cast<const uint4 *>(k + (size_t)j * kvd), *ks = reinterpret_cast<const uint4 *>(sk);
        for (int t8 = 0; t8 < hd / 8; t8++) {
            const uint4 kv = j == pj ? ks[t8] : __ldg(kr + t8);
            const __half2 *h2 = reinterpret_cast<const __half2 *>(&kv);
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const float2 f = __half22float2(h2[u]);
#pragma unroll
                for (int g = 0; g < kMaxGroup; g++)
                    if (g < grp) d[g] = fmaf(s_q[g][8 * t8 + 2 * u + 1], f.y, fmaf(s_q[g][8 * t8 + 2 * u], f.x, d[g]));
            }
        }
    }
    template <int V> __device__ __forceinline__ void row(int j, int lane, float *vv) const {
        const __half *vr = (j == pj ? sv : v + (size_t)j * kvd) + lane * V;
#pragma unroll
        for (int i = 0; i < V; i++) vv[i] = __half2float(vr[i]);
    }
};

// 4-bit rows: x̂ = s·(q − z) with (q − z) exact in fp32, the scale applied once per key for K. A code
// becomes a float without I2F (a quarter-rate conversion): 2^23 + q is the bit pattern 0x4B000000 | q,
// and (2^23 + q) − (2^23 + z) = q − z exactly (all integers below 2^24), so the bits are those of
// (float)q − z.
__device__ __forceinline__ float kv4_code(uint32_t word, int shift, float zb) {
    return __uint_as_float(((word >> shift) & 15u) | 0x4B000000u) - zb;
}

struct Kv4Rows {
    const uint8_t *k, *v;
    dec_kv4_map m;
    int n_kv, kvh, hd;
    __device__ __forceinline__ void set_new(int, const __half *, const __half *) {}   // RoPE is never fused here
    __device__ __forceinline__ void seek(const dec_attn_shape &s, int b, int h) {
        n_kv = s.n_kv, kvh = h, hd = s.head_dim;
        k += (size_t)b * m.seq_bytes, v += (size_t)b * m.seq_bytes;
    }
    // scale, and 2^23 + zero (kv4_code)
    __device__ __forceinline__ void meta(const uint8_t *base, size_t r, float *s, float *zb) const {
        *s = __half2float(__ldg(reinterpret_cast<const __half *>(base + m.scale_off) + r));
        *zb = 8388608.0f + (float)__ldg(base + m.zero_off + r);
    }
    template <int V>
    __device__ __forceinline__ void dot(int j, int, int grp, const float (*s_q)[32 * V], float *d) const {
        const size_t r = (size_t)j * n_kv + kvh;
        float sk, zk;
        meta(k, r, &sk, &zk);
        const uint4 *kr = reinterpret_cast<const uint4 *>(k + r * (size_t)(16 * V));   // hd/2 = 16·V bytes
#pragma unroll
        for (int t = 0; t < V; t++) {   // 32 codes per 16-byte load
            const uint4 kv = __ldg(kr + t);
            const uint32_t wd[4] = {kv.x, kv.y, kv.z, kv.w};
#pragma unroll
            for (int u = 0; u < 4; u++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int c = 32 * t + 8 * u + 2 * e;
                    const float f0 = kv4_code(wd[u], 8 * e, zk), f1 = kv4_code(wd[u], 8 * e + 4, zk);
#pragma unroll
                    for (int g = 0; g < kMaxGroup; g++)
                        if (g < grp) d[g] = fmaf(s_q[g][c + 1], f1, fmaf(s_q[g][c], f0, d[g]));
                }
        }
#pragma unroll
        for (int g = 0; g < kMaxGroup; g++) d[g] *= sk;
    }
    template <int V> __device__ __forceinline__ void row(int j, int lane, float *vv) const {
        const size_t r = (size_t)j * n_kv + kvh;
        float sv, zv;
        meta(v, r, &sv, &zv);
        const uint8_t *vr = v + r * (size_t)(16 * V);
        // the lane's V codes in one load: columns lane·V … lane·V + V − 1, low nibble first
        const uint32_t w = V == 4 ? (uint32_t)__ldg(reinterpret_cast<const unsigned short *>(vr) + lane) : (uint32_t)__ldg(vr + lane * V / 2);
        const int sh0 = V == 1 ? 4 * (lane & 1) : 0;
#pragma unroll
        for (int i = 0; i < V; i++) vv[i] = sv * kv4_code(w, sh0 + 4 * i, zv);
    }
};

// dec_attn_rope: the q|k|v rows before RoPE, and the fp16 cache the new key and value go to.
struct RopeIn {
    const float *qkv;   // NULL: q is given after RoPE and the cache already holds position pos[b]
    int ldq, interleaved;
    const float *inv_freq;
    __half *kc, *vc;
};

// Partial softmax·V of one (sequence, kv head, chunk of keys): m, l, o[hd] per q head of the group.
// Scores: one thread per key (its K row read with 16-byte loads, all keys in flight at once). Values:
// warp w takes keys w, w + 4, ...; lane owns head-dim columns lane·V .. lane·V + V − 1 (V = hd/32) for
// every q head of the group; the four warps' sums are added in a fixed order.
template <int V, class Rows>
__global__ void __launch_bounds__(kThreads) attn_part_kernel(dec_attn_shape s, const float *q, Rows rows, const int32_t *pos,
                                                            float *ws, int nch, RopeIn rp) {
    pdl_wait();
    pdl_trigger();
    __shared__ float s_q[kMaxGroup][32 * V];   // head_dim = 32·V
    __shared__ float s_p[kMaxGroup][kChunk];
    __shared__ float s_o[kThreads / 32][kMaxGroup][32 * V];
    __shared__ float s_m[kMaxGroup], s_l[kMaxGroup];
    const int chunk = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
    const int hd = s.head_dim, grp = s.n_heads / s.n_kv;
    const int hi = pos[b] + 1, lo = s.window > 0 && hi > s.window ? hi - s.window : 0;
    const int j0 = lo + chunk * kChunk, j1 = min(hi, j0 + kChunk), cnt = max(0, j1 - j0);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = kThreads / 32;
    const float scale = 1.0f / sqrtf((float)hd);
    if (rp.qkv) {   // RoPE here (rope_pair: dec_rope_kv's values); the chunk holding pos[b] also stores k and v
        __shared__ __align__(16) __half s_new[2][32 * V];
        const float *row = rp.qkv + (size_t)b * rp.ldq;
        const int half = hd / 2, p = pos[b], kvd = s.n_kv * hd;
        for (int i = tid; i < grp * half; i += kThreads) {
            int i0, i1;
            float y0, y1;
            rope_pair(row, hd, kvh * grp + i / half, i % half, p, rp.inv_freq, rp.interleaved, &i0, &i1, &y0, &y1);
            s_q[i / half][i0] = y0, s_q[i / half][i1] = y1;
        }
        if (cnt && j0 <= p && p < j1) {
            const size_t at = (size_t)b * s.max_ctx * kvd + (size_t)p * kvd + (size_t)kvh * hd;
            for (int t = tid; t < half; t += kThreads) {
                int i0, i1;
                float y0, y1;
                rope_pair(row, hd, s.n_heads + kvh, t, p, rp.inv_freq, rp.interleaved, &i0, &i1, &y0, &y1);
                const __half h0 = __float2half_rn(y0), h1 = __float2half_rn(y1);
                s_new[0][i0] = h0, s_new[0][i1] = h1;
                rp.kc[at + i0] = h0, rp.kc[at + i1] = h1;
            }
            for (int i = tid; i < hd; i += kThreads) {
                const __half h = __float2half_rn(row[s.n_heads * hd + kvd + kvh * hd + i]);
                s_new[1][i] = h;
                rp.vc[at + i] = h;
            }
            rows.set_new(p, s_new[0], s_new[1]);
        }
    } else {
        for (int i = tid; i < grp * hd; i += kThreads)
            s_q[i / hd][i % hd] = q[(size_t)b * s.n_heads * hd + (size_t)(kvh * grp + i / hd) * hd + i % hd];
    }
    __syncthreads();
    rows.seek(s, b, kvh);
    for (int jj = tid; jj < cnt; jj += kThreads) {
        float d[kMaxGroup];
#pragma unroll
        for (int g = 0; g < kMaxGroup; g++) d[g] = 0.0f;
        rows.template dot<V>(j0 + jj, hd, grp, s_q, d);
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
        float vv[V];
        rows.template row<V>(j0 + jj, lane, vv);
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
    for (int t = threadIdx.x; t < hd; t += blockDim.x)
        out[(size_t)b * s.n_heads * hd + (size_t)h * hd + t] = dec_attn_combine1(w, nch, hd, t);
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
    const int pairs = (s->n_heads + s->n_kv) * (s->head_dim / 2), ny = (pairs + 127) / 128 < 64 ? (pairs + 127) / 128 : 64;
    pdl_launch(rope_kv_kernel, dim3(B, ny), 128, 0, (cudaStream_t)stream, *s, qkv, ldq, pos, inv_freq, interleaved, qout, (__half *)kc,
               (__half *)vc);
    return launched("rope/kv store");
}

extern "C" int dec_attn_chunks(const dec_attn_shape *s) { return chunks_of(s); }

extern "C" size_t dec_attn_workspace_floats(const dec_attn_shape *s, int B) {
    return (size_t)B * (size_t)s->n_heads * (size_t)chunks_of(s) * (size_t)(s->head_dim + 2);
}

namespace {

// Partials (head_dim 32·V) over the rows of a cache, then the combine.
template <class Rows>
harp_status attn_launch(const dec_attn_shape *s, const float *q, Rows rows, int B, const int32_t *pos, float *out, float *workspace,
                        dec_stream stream, RopeIn rp = RopeIn{}) {
    HARP_TRY(check_shape(s, B));
    const int nch = chunks_of(s);
    const dim3 grid(nch, s->n_kv, B);
    cudaStream_t st = (cudaStream_t)stream;
    switch (s->head_dim / 32) {   // head_dim is 32, 64 or 128 (check_shape)
    case 1: pdl_launch(attn_part_kernel<1, Rows>, grid, kThreads, 0, st, *s, q, rows, pos, workspace, nch, rp); break;
    case 2: pdl_launch(attn_part_kernel<2, Rows>, grid, kThreads, 0, st, *s, q, rows, pos, workspace, nch, rp); break;
    default: pdl_launch(attn_part_kernel<4, Rows>, grid, kThreads, 0, st, *s, q, rows, pos, workspace, nch, rp); break;
    }
    HARP_TRY(launched("attention partials"));
    if (!out) return HARP_OK;   // the consumer combines (dec_xin_split_att)
    pdl_launch(attn_combine_kernel, dim3(s->n_heads, B), 128, 0, st, *s, workspace, nch, out);
    return launched("attention combine");
}

}  // namespace

extern "C" harp_status dec_attn(const dec_attn_shape *s, const float *q, const void *kc, const void *vc, int B, const int32_t *pos,
                                float *out, float *workspace, dec_stream stream) {
    return attn_launch(s, q, F16Rows{(const __half *)kc, (const __half *)vc, 0, -1, NULL, NULL}, B, pos, out, workspace, stream);
}

extern "C" harp_status dec_attn_rope(const dec_attn_shape *s, const float *qkv, int ldq, int B, const int32_t *pos,
                                     const float *inv_freq, int interleaved, void *kc, void *vc, float *out, float *workspace,
                                     dec_stream stream) {
    const RopeIn rp = {qkv, ldq, interleaved, inv_freq, (__half *)kc, (__half *)vc};
    return attn_launch(s, NULL, F16Rows{(const __half *)kc, (const __half *)vc, 0, -1, NULL, NULL}, B, pos, out, workspace, stream, rp);
}

extern "C" harp_status dec_rope_kv4(const dec_attn_shape *s, const float *qkv, int ldq, int B, const int32_t *pos,
                                    const float *inv_freq, int interleaved, float kclip, float vclip, float *qout, void *kc, void *vc,
                                    dec_stream stream) {
    HARP_TRY(check_shape(s, B));
    if (!(kclip > 0.0f && kclip <= 1.0f) || !(vclip > 0.0f && vclip <= 1.0f))
        return harp_err(HARP_ERR_INVALID_ARG, "cuda kv4 store: clip ratios %g, %g outside (0, 1]", (double)kclip, (double)vclip);
    const int qy = (s->n_heads * (s->head_dim / 2) + 127) / 128 < 32 ? (s->n_heads * (s->head_dim / 2) + 127) / 128 : 32;
    pdl_launch(rope_kv4_kernel, dim3(B, s->n_kv + qy), 128, 0, (cudaStream_t)stream, *s, dec_kv4_layout(s), qkv, ldq, pos, inv_freq,
               interleaved, kclip, vclip, qout, (uint8_t *)kc, (uint8_t *)vc);
    return launched("rope/kv4 store");
}

extern "C" harp_status dec_attn_kv4(const dec_attn_shape *s, const float *q, const void *kc, const void *vc, int B,
                                    const int32_t *pos, float *out, float *workspace, dec_stream stream) {
    return attn_launch(s, q, Kv4Rows{(const uint8_t *)kc, (const uint8_t *)vc, dec_kv4_layout(s), 0, 0, 0}, B, pos, out, workspace,
                       stream);
}

namespace {
__global__ void swiglu_kernel(const float *ug, int ld, int hidden, float *out, int ldo) {
    pdl_wait();
    pdl_trigger();
    const int b = blockIdx.y;
    const float *u = ug + (size_t)b * ld, *g = u + hidden;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < hidden; i += gridDim.x * blockDim.x) {
        out[(size_t)b * ldo + i] = dec_swiglu1(g[i], u[i]);
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
