// Decode-time attention on the GPU (decode.h): RoPE + KV store for the new token of each sequence,
// and one query per sequence over its fp16 KV cache (GQA, sliding window), split over chunks of
// keys (flash-decoding) and combined in a fixed order, so results are deterministic.
// Cache layout per sequence b: K and V fp16 [max_ctx][n_kv][hd] at offset b·max_ctx·n_kv·hd (or at
// row shape.seq_row[b]), or the 4-bit cache of dec_kv4_layout (W/A/KV models: codes dequantized in
// registers, same split and combine).
#include <cuda_fp16.h>
#include <float.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/core.h"
#include "cuda/decode.h"
#include "cuda/env_switch.h"
#include "quant/aq.h"
}
#include "cuda/attn_combine.cuh"
#include "cuda/pdl.cuh"
#include "cuda/rope.cuh"
#include "cuda/swiglu.cuh"

namespace {

constexpr int kChunk = 64;      // keys per split: 32 heads × ctx/64 CTAs (256 keys left most SMs idle: docs/results/decode-gpu.md)
constexpr int kThreads = 128;
constexpr int kMaxGroup = 8;    // q heads per kv head (Llama-2/3 70B: 8)

// Cache row of position 0 of sequence b: b·max_ctx, or the caller's table (the library's backend,
// whose sequences share one cache at rows it assigns).
__device__ __forceinline__ size_t seq_row0(const dec_attn_shape &s, int b) {
    return s.seq_row ? (size_t)s.seq_row[b] : (size_t)b * s.max_ctx;
}

harp_status launched(const char *what) {
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "cuda attention: %s: %s", what, cudaGetErrorString(e));
}

// RoPE of pair i of head h of a row (the fused q|k|v output): its two indices and rotated values.
__device__ __forceinline__ void rope_pair(const float *row, int hd, int h, int i, int p, const float *inv_freq, int interleaved,
                                          int *i0, int *i1, float *y0, float *y1) {
    const int half = hd / 2;
    *i0 = interleaved ? 2 * i : i, *i1 = interleaved ? 2 * i + 1 : i + half;
    rope_rotate(row[h * hd + *i0], row[h * hd + *i1], (float)p, inv_freq[i], y0, y1);
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
    const size_t at = seq_row0(s, b) * kvd + (size_t)p * kvd;
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
// mirror (may be NULL): a second copy of the codes, and lane 0 writes the scale and 2^23 + zero
// (kv4_code's form) to ms / mzb, for the attention kernel that scores the new key from shared memory.
__device__ __forceinline__ void kv4_group(const float *x, int hd, float clip, int lane, uint8_t *codes, __half *scale, uint8_t *zero,
                                          uint8_t *mirror = NULL, float *ms = NULL, float *mzb = NULL) {
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
        const uint8_t c = (uint8_t)((int)q0 | (int)q1 << 4);
        codes[i] = c;
        if (mirror) mirror[i] = c;
    }
    if (lane == 0) *scale = __half(h), *zero = (uint8_t)z;
    if (lane == 0 && mirror) *ms = s, *mzb = 8388608.0f + z;
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

// Where the keys of one (sequence, kv head) live for attn_part_kernel (variant 1 of both caches): fp16
// rows (dec_attn) or 4-bit rows (dec_attn_kv4).
// dot(): d[g] = (Σ_t q_g[t]·K[j][t]) for the group's q heads; row(): the lane's V columns of key j.
struct F16Rows {
    const __half *k, *v;
    int kvd;
    int pj;                     // the key this CTA stored itself (dec_attn_rope), read from shared memory
    const __half *sk, *sv;
    __device__ __forceinline__ void set_new(int p, const __half *k_p, const __half *v_p) { pj = p, sk = k_p, sv = v_p; }
    __device__ __forceinline__ void seek(const dec_attn_shape &s, int b, int kvh) {
        kvd = s.n_kv * s.head_dim;
        const size_t cb = seq_row0(s, b) * kvd + (size_t)kvh * s.head_dim;
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
            const size_t at = seq_row0(s, b) * kvd + (size_t)p * kvd + (size_t)kvh * hd;
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

// ---- 4-bit cache, variant 0 (dec_attn_kv4 and dec_attn_rope_kv4) ----
// attn_part_kernel<V, Kv4Rows> (variant 1) scored with one thread per key (64 of 128 threads, a
// 128-long dependent chain each) and ran every code through eight group-guarded FMAs (kMaxGroup,
// grp known only at run time); its values paid a meta + code load round trip per four keys. Here:
//  - the chunk's codes (16-byte loads, all issued at once) and meta are staged in shared memory;
//  - scores: four lanes per key, each lane two keys (slot and slot + 32) and hd/32 words of each, summed
//    over the four lanes by two shuffles in a fixed order; the group size G is a template bound (1, 2,
//    4, 8) with zero q rows above grp, so no FMA is guarded;
//  - a code becomes a float with one PRMT (its nibble's byte under 2^23's exponent, kv4_code's trick);
//  - values: p·s (the row's V scale) is folded into the probability once per key, each warp takes 16
//    consecutive keys (p and zero points of four keys in one shared load).
// The fused form (RoPE + the 4-bit store of the new key, Kv4New.qkv != NULL) computes the row exactly
// as rope_kv4_kernel does (rope_pair, kv4_group) and scores it from shared memory.
struct Kv4New {
    const float *qkv;   // NULL: q is given after RoPE and the cache already holds position pos[b]
    int ldq, interleaved;
    const float *inv_freq;
    float kclip, vclip;
};

struct Kv4Cache {
    uint8_t *k, *v;   // written only by the fused form (row pos[b])
    dec_kv4_map m;
    // planes (dec_attn_kv4_planes): a backend's cache rows, sequence b from cache row s.seq_row[b], the
    // scales and zero points in arrays of their own with the codes' (row, kv head) index; NULL: the
    // per-sequence blocks of dec_kv4_layout
    __half *ks = nullptr, *vs = nullptr;
    uint8_t *kz = nullptr, *vz = nullptr;
};

// 8 codes of one word (code 2e: low nibble of byte e, 2e + 1: high) as floats c − z (zb = 2^23 + z).
__device__ __forceinline__ void kv4_word(uint32_t w, float zb, float *x) {
    const uint32_t lo = w & 0x0F0F0F0Fu, hi = (w >> 4) & 0x0F0F0F0Fu;
#pragma unroll
    for (int e = 0; e < 4; e++) {
        x[2 * e] = __uint_as_float(__byte_perm(lo, 0x4B000000u, 0x7540u + e)) - zb;
        x[2 * e + 1] = __uint_as_float(__byte_perm(hi, 0x4B000000u, 0x7540u + e)) - zb;
    }
}

// Staged K rows are kv4_kstride(V) bytes apart, 4 (mod 8) words, so the 8 keys × 4 lanes of one score load
// (words i, i + 4, … of 8 rows) fall in 32 distinct banks.
__host__ __device__ constexpr int kv4_kstride(int V) { return V == 1 ? 16 : 16 * V + 16; }

// What attn_kv4_kernel and attn_f16_kernel share: a chunk past pos[b], the group's q rows, the quad sum
// of the scores, the chunk softmax, the value update of one key and the store of the partials.

// A chunk past pos[b] (max_ctx > pos[b] + 1): the empty partial (m = −∞, l = 0, o = 0).
__device__ __forceinline__ void attn_empty_partial(const dec_attn_shape &s, float *ws, int nch, int b, int kvh, int chunk, int grp,
                                                   int hd) {
    for (int i = threadIdx.x; i < grp * hd; i += kThreads) {
        float *wp = ws + (((size_t)b * s.n_heads + kvh * grp + i / hd) * nch + chunk) * (hd + 2);
        wp[2 + i % hd] = 0.0f;
        if (i % hd == 0) wp[0] = -INFINITY, wp[1] = 0.0f;
    }
}

// s_q: the group's q heads, RoPE applied to the q|k|v row (row != NULL: rope_pair, dec_rope_kv's values)
// or copied from q; zero rows grp … G − 1, so no multiply-add needs a guard.
template <int G, int HD>
__device__ __forceinline__ void attn_stage_q(const dec_attn_shape &s, const float *q, const float *row, const float *inv_freq,
                                             int interleaved, int b, int kvh, int grp, int p, float (*s_q)[HD]) {
    constexpr int half = HD / 2;
    const int tid = threadIdx.x;
    if (row) {
        for (int i = tid; i < grp * half; i += kThreads) {
            int i0, i1;
            float y0, y1;
            rope_pair(row, HD, kvh * grp + i / half, i % half, p, inv_freq, interleaved, &i0, &i1, &y0, &y1);
            s_q[i / half][i0] = y0, s_q[i / half][i1] = y1;
        }
    } else {
        for (int i = tid; i < grp * HD; i += kThreads)
            s_q[i / HD][i % HD] = q[(size_t)b * s.n_heads * HD + (size_t)(kvh * grp + i / HD) * HD + i % HD];
    }
    for (int i = grp * HD + tid; i < G * HD; i += kThreads) s_q[i / HD][i % HD] = 0.0f;
}

// The lane quad's partial dot products of keys slot and slot + 32, summed by two xor shuffles in a fixed
// order; lane 0 of the quad writes the scores (·sa / ·sc: the keys' K scales, 1 for fp16; then ·scale).
template <int G>
__device__ __forceinline__ void attn_quad_scores(float *da, float *dc, int qi, int slot, float sa, float sc, float scale,
                                                 float (*s_p)[kChunk]) {
#pragma unroll
    for (int g = 0; g < G; g++) {
#pragma unroll
        for (int o = 1; o < 4; o <<= 1) da[g] += __shfl_xor_sync(0xffffffffu, da[g], o), dc[g] += __shfl_xor_sync(0xffffffffu, dc[g], o);
        if (qi == 0) s_p[g][slot] = da[g] * sa * scale, s_p[g][slot + 32] = dc[g] * sc * scale;
    }
}

// Softmax of each q head's chunk of scores (m and l kept for the combine); s_p gets e·w[key] (w: the keys'
// V scales, or NULL for 1), and 0 past cnt and in rows grp … G − 1.
template <int G>
__device__ __forceinline__ void attn_softmax(int grp, int cnt, const float *w, float (*s_p)[kChunk], float *s_m, float *s_l) {
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nwarp = kThreads / 32;
    for (int g = warp; g < grp; g += nwarp) {
        const float a = s_p[g][lane], a2 = s_p[g][lane + 32];
        float m = fmaxf(lane < cnt ? a : -INFINITY, lane + 32 < cnt ? a2 : -INFINITY);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
        const float e = lane < cnt ? expf(a - m) : 0.0f, e2 = lane + 32 < cnt ? expf(a2 - m) : 0.0f;
        float l = e + e2;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) l += __shfl_xor_sync(0xffffffffu, l, o);
        s_p[g][lane] = w ? e * w[lane] : e, s_p[g][lane + 32] = w ? e2 * w[lane + 32] : e2;
        if (lane == 0) s_m[g] = m, s_l[g] = l;
    }
    for (int i = grp * kChunk + tid; i < G * kChunk; i += kThreads) s_p[i / kChunk][i % kChunk] = 0.0f;
}

// acc[g] += the weight of key u of the four in p4[g] · x (the lane's V columns of that key).
template <int G, int V>
__device__ __forceinline__ void attn_accum(float (*acc)[V], const float4 *p4, int u, const float *x) {
#pragma unroll
    for (int g = 0; g < G; g++) {
        const float pg = u == 0 ? p4[g].x : u == 1 ? p4[g].y : u == 2 ? p4[g].z : p4[g].w;
#pragma unroll
        for (int v = 0; v < V; v++) acc[g][v] = fmaf(pg, x[v], acc[g][v]);
    }
}

// The four warps' sums added in a fixed order and stored with m and l as the chunk's partial
// (attn_combine.cuh reads them).
template <int G, int V>
__device__ __forceinline__ void attn_store_partials(const dec_attn_shape &s, float (*acc)[V], float (*s_o)[G][32 * V], const float *s_m,
                                                    const float *s_l, float *ws, int nch, int b, int kvh, int chunk, int grp) {
    constexpr int hd = 32 * V;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nwarp = kThreads / 32;
#pragma unroll
    for (int g = 0; g < G; g++)
#pragma unroll
        for (int v = 0; v < V; v++) s_o[warp][g][lane * V + v] = acc[g][v];
    __syncthreads();
    for (int i = tid; i < grp * hd; i += kThreads) {
        const int g = i / hd, t = i % hd;
        float o = 0.0f;
        for (int w = 0; w < nwarp; w++) o += s_o[w][g][t];
        float *wp = ws + (((size_t)b * s.n_heads + kvh * grp + g) * nch + chunk) * (hd + 2);
        wp[2 + t] = o;
        if (t == 0) wp[0] = s_m[g], wp[1] = s_l[g];
    }
}

template <int V, int G>
__global__ void __launch_bounds__(kThreads) attn_kv4_kernel(dec_attn_shape s, const float *q, Kv4Cache c, const int32_t *pos,
                                                           float *ws, int nch, Kv4New nw) {
    static_assert(kThreads == 2 * kChunk && kChunk == 64, "two keys per lane quad, one meta row per thread");
    constexpr int hd = 32 * V, half = 16 * V, kPer = (kChunk * V + kThreads - 1) / kThreads;
    __shared__ __align__(16) float s_q[G][hd];
    __shared__ __align__(16) uint8_t s_k[kChunk][kv4_kstride(V)];
    __shared__ __align__(16) uint8_t s_v[kChunk][half];
    __shared__ float s_ks[kChunk], s_kz[kChunk], s_vs[kChunk];
    __shared__ __align__(16) float s_vz[kChunk];
    __shared__ __align__(16) float s_p[G][kChunk];
    __shared__ float s_o[kThreads / 32][G][hd];
    __shared__ float s_m[G], s_l[G];
    __shared__ float s_new[2][hd];
    pdl_wait();
    pdl_trigger();
    const int chunk = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z, grp = s.n_heads / s.n_kv;
    const int p = pos[b], hi = p + 1, lo = s.window > 0 && hi > s.window ? hi - s.window : 0;
    const int j0 = lo + chunk * kChunk, j1 = min(hi, j0 + kChunk), cnt = max(0, j1 - j0);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    if (!cnt) {   // without staging or scoring
        attn_empty_partial(s, ws, nch, b, kvh, chunk, grp, hd);
        return;
    }
    const bool store = nw.qkv && j0 <= p && p < j1;
    const int pj = store ? p - j0 : -1;   // the slot this CTA quantizes itself
    // sequence b's codes, scales and zero points, each indexed by r = key · n_kv + kv head from here
    const size_t prow = c.ks ? seq_row0(s, b) * s.n_kv : 0;
    uint8_t *kb = c.ks ? c.k + prow * half : c.k + (size_t)b * c.m.seq_bytes, *vb = c.ks ? c.v + prow * half : c.v + (size_t)b * c.m.seq_bytes;
    __half *ksc = c.ks ? c.ks + prow : reinterpret_cast<__half *>(kb + c.m.scale_off);
    __half *vsc = c.ks ? c.vs + prow : reinterpret_cast<__half *>(vb + c.m.scale_off);
    uint8_t *kzp = c.ks ? c.kz + prow : kb + c.m.zero_off, *vzp = c.ks ? c.vz + prow : vb + c.m.zero_off;
    uint4 kr[kPer], vr[kPer];
#pragma unroll
    for (int u = 0; u < kPer; u++) {
        const int i = tid + u * kThreads, jj = i / V;
        if (i < kChunk * V && jj < cnt && jj != pj) {
            const size_t r = (size_t)(j0 + jj) * s.n_kv + kvh;
            kr[u] = __ldg(reinterpret_cast<const uint4 *>(kb + r * half) + i % V);
            vr[u] = __ldg(reinterpret_cast<const uint4 *>(vb + r * half) + i % V);
        }
    }
    float msc = 0.0f, mzb = 0.0f;   // slot tid % 64's scale and 2^23 + zero, K (tid < 64) or V; 0 past cnt
    {
        const int jj = tid % kChunk;
        if (jj < cnt && jj != pj) {
            const size_t r = (size_t)(j0 + jj) * s.n_kv + kvh;
            msc = __half2float(__ldg((tid < kChunk ? ksc : vsc) + r));
            mzb = 8388608.0f + (float)__ldg((tid < kChunk ? kzp : vzp) + r);
        }
    }
    attn_stage_q<G, hd>(s, q, nw.qkv ? nw.qkv + (size_t)b * nw.ldq : NULL, nw.inv_freq, nw.interleaved, b, kvh, grp, p, s_q);
    if (store) {   // RoPE of the new key, as rope_kv4_kernel
        const float *row = nw.qkv + (size_t)b * nw.ldq;
        {
            const int kvd = s.n_kv * hd;
            for (int t = tid; t < half; t += kThreads) {
                int i0, i1;
                float y0, y1;
                rope_pair(row, hd, s.n_heads + kvh, t, p, nw.inv_freq, nw.interleaved, &i0, &i1, &y0, &y1);
                s_new[0][i0] = y0, s_new[0][i1] = y1;
            }
            for (int i = tid; i < hd; i += kThreads) s_new[1][i] = row[s.n_heads * hd + kvd + kvh * hd + i];
        }
    }
#pragma unroll
    for (int u = 0; u < kPer; u++) {
        const int i = tid + u * kThreads, jj = i / V;
        if (i < kChunk * V && jj < cnt && jj != pj) {
            reinterpret_cast<uint4 *>(s_k[jj])[i % V] = kr[u];
            reinterpret_cast<uint4 *>(s_v[jj])[i % V] = vr[u];
        }
    }
    if (tid < kChunk) s_ks[tid] = msc, s_kz[tid] = mzb;
    else s_vs[tid - kChunk] = msc, s_vz[tid - kChunk] = mzb;
    __syncthreads();
    if (store) {   // CTA-uniform: warp 0 quantizes K, warp 1 V, into the cache and the staged slot
        if (warp < 2) {
            const size_t r = (size_t)p * s.n_kv + kvh;
            kv4_group(s_new[warp], hd, warp ? nw.vclip : nw.kclip, lane, (warp ? vb : kb) + r * half, (warp ? vsc : ksc) + r,
                      (warp ? vzp : kzp) + r, warp ? s_v[pj] : s_k[pj],
                      warp ? &s_vs[pj] : &s_ks[pj], warp ? &s_vz[pj] : &s_kz[pj]);
        }
        __syncthreads();
    }
    {   // scores: lane quad `slot` (tid / 4), lane i of it: words i, i + 4, … of keys slot and slot + 32
        const int qi = tid & 3, slot = tid >> 2;
        const uint32_t *ka = reinterpret_cast<const uint32_t *>(s_k[slot]), *kc = reinterpret_cast<const uint32_t *>(s_k[slot + 32]);
        const float za = s_kz[slot], zc = s_kz[slot + 32];
        float da[G], dc[G];
#pragma unroll
        for (int g = 0; g < G; g++) da[g] = 0.0f, dc[g] = 0.0f;
#pragma unroll
        for (int k = 0; k < V; k++) {
            const int wi = qi + 4 * k;
            float xa[8], xc[8];
            kv4_word(ka[wi], za, xa);
            kv4_word(kc[wi], zc, xc);
#pragma unroll
            for (int g = 0; g < G; g++) {
                const float4 q0 = reinterpret_cast<const float4 *>(s_q[g])[2 * wi], q1 = reinterpret_cast<const float4 *>(s_q[g])[2 * wi + 1];
                const float qq[8] = {q0.x, q0.y, q0.z, q0.w, q1.x, q1.y, q1.z, q1.w};
#pragma unroll
                for (int e = 0; e < 8; e++) da[g] = fmaf(qq[e], xa[e], da[g]), dc[g] = fmaf(qq[e], xc[e], dc[g]);
            }
        }
        attn_quad_scores<G>(da, dc, qi, slot, s_ks[slot], s_ks[slot + 32], 1.0f / sqrtf((float)hd), s_p);
    }
    __syncthreads();
    attn_softmax<G>(grp, cnt, s_vs, s_p, s_m, s_l);   // the weights carry the keys' V scales
    __syncthreads();
    // values: warp w keys 16w … 16w + 15; lane owns columns lane·V … lane·V + V − 1
    float acc[G][V];
#pragma unroll
    for (int g = 0; g < G; g++)
#pragma unroll
        for (int v = 0; v < V; v++) acc[g][v] = 0.0f;
#pragma unroll
    for (int k4 = 0; k4 < 4; k4++) {
        const int j4 = 4 * warp + k4;   // four keys 4·j4 …
        const float4 z4 = reinterpret_cast<const float4 *>(s_vz)[j4];
        const float zz[4] = {z4.x, z4.y, z4.z, z4.w};
        float4 p4[G];
#pragma unroll
        for (int g = 0; g < G; g++) p4[g] = reinterpret_cast<const float4 *>(s_p[g])[j4];
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const uint8_t *vr8 = s_v[4 * j4 + u];
            float x[V];
            if (V == 1) {
                x[0] = kv4_code(vr8[lane >> 1], 4 * (lane & 1), zz[u]);
            } else {
                const uint32_t w = V == 4 ? (uint32_t)reinterpret_cast<const unsigned short *>(vr8)[lane] : (uint32_t)vr8[lane];
                float x8[8];
                kv4_word(w, zz[u], x8);
#pragma unroll
                for (int v = 0; v < V; v++) x[v] = x8[v];
            }
            attn_accum<G, V>(acc, p4, u, x);
        }
    }
    attn_store_partials<G, V>(s, acc, s_o, s_m, s_l, ws, nch, b, kvh, chunk, grp);
}

// ---- fp16 cache, variant 0 (dec_attn and dec_attn_rope) ----
// attn_part_kernel<V, F16Rows> (variant 1) ran every K element through kMaxGroup = 8 group-guarded
// FMA pairs (grp known only at run time: 7 of 8 wasted for MHA), scored with 64 of 128 threads (one per
// key, a head_dim-long dependent chain) and paid a fresh V load round trip every few keys. Here, as in
// attn_kv4_kernel:
//  - every K and V byte of the chunk is loaded straight into registers at the start, in the layout the
//    thread consumes it in, so the chunk costs one memory round trip (overlapped with the q / RoPE work);
//  - scores: four lanes per key, each lane two keys (slot and slot + 32) and the 16-byte pieces qi,
//    qi + 4, … of each (a quad reads 64 contiguous bytes per load), summed over the quad by two xor
//    shuffles in a fixed order; the group size G is a template bound (1, 2, 4, 8) with zero q rows
//    above grp, so no FMA is guarded;
//  - values: warp w takes keys 16w … 16w + 15, lane the V columns lane·V … lane·V + V − 1 of each (one
//    load of 2·V bytes per key, a warp reads the whole row), probabilities of four keys in one shared load.
// The fused form (RopeIn.qkv != NULL) stores the new key and value exactly as the previous kernel
// (rope_pair, __float2half_rn: dec_rope_kv's bits) and takes that slot from shared memory, so it
// scores the same halves as dec_rope_kv + dec_attn.
template <int V> struct HalfVec;   // V halves, one load
template <> struct HalfVec<1> { typedef unsigned short T; };
template <> struct HalfVec<2> { typedef unsigned int T; };
template <> struct HalfVec<4> { typedef uint2 T; };

template <int N, class T> __device__ __forceinline__ void halves_to_float(const T &w, float *x) {
    const __half *h = reinterpret_cast<const __half *>(&w);
#pragma unroll
    for (int i = 0; i < N; i++) x[i] = __half2float(h[i]);
}

template <int V, int G>
__global__ void __launch_bounds__(kThreads) attn_f16_kernel(dec_attn_shape s, const float *q, const __half *kc, const __half *vc,
                                                           const int32_t *pos, float *ws, int nch, RopeIn rp) {
    static_assert(kThreads == 2 * kChunk && kChunk == 64, "two keys per lane quad, 16 keys per warp");
    constexpr int hd = 32 * V, half = 16 * V;
    typedef typename HalfVec<V>::T VecT;
    __shared__ __align__(16) float s_q[G][hd];
    __shared__ __align__(16) float s_p[G][kChunk];
    __shared__ float s_o[kThreads / 32][G][hd];
    __shared__ float s_m[G], s_l[G];
    __shared__ __align__(16) __half s_new[2][hd];
    pdl_wait();
    pdl_trigger();
    const int chunk = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z, grp = s.n_heads / s.n_kv, kvd = s.n_kv * hd;
    const int p = pos[b], hi = p + 1, lo = s.window > 0 && hi > s.window ? hi - s.window : 0;
    const int j0 = lo + chunk * kChunk, j1 = min(hi, j0 + kChunk), cnt = max(0, j1 - j0);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    if (!cnt) {   // without loading or scoring
        attn_empty_partial(s, ws, nch, b, kvh, chunk, grp, hd);
        return;
    }
    const bool store = rp.qkv && j0 <= p && p < j1;
    const int pj = store ? p - j0 : -1;   // the slot this CTA stores itself
    const size_t cb = seq_row0(s, b) * kvd + (size_t)kvh * hd;
    const __half *kb = kc + cb + (size_t)j0 * kvd, *vb = vc + cb + (size_t)j0 * kvd;
    const int qi = tid & 3, slot = tid >> 2;
    uint4 ka[V], kz[V];   // keys slot and slot + 32: pieces qi + 4k; zero past cnt
    VecT vr[16];          // keys 16·warp + u: the lane's V columns; zero past cnt
#pragma unroll
    for (int k = 0; k < V; k++) {
        ka[k] = make_uint4(0, 0, 0, 0), kz[k] = make_uint4(0, 0, 0, 0);
        if (slot < cnt && slot != pj) ka[k] = __ldg(reinterpret_cast<const uint4 *>(kb + (size_t)slot * kvd) + qi + 4 * k);
        if (slot + 32 < cnt && slot + 32 != pj) kz[k] = __ldg(reinterpret_cast<const uint4 *>(kb + (size_t)(slot + 32) * kvd) + qi + 4 * k);
    }
#pragma unroll
    for (int u = 0; u < 16; u++) {
        const int jj = 16 * warp + u;
        vr[u] = VecT{};
        if (jj < cnt && jj != pj) vr[u] = __ldg(reinterpret_cast<const VecT *>(vb + (size_t)jj * kvd) + lane);
    }
    attn_stage_q<G, hd>(s, q, rp.qkv ? rp.qkv + (size_t)b * rp.ldq : NULL, rp.inv_freq, rp.interleaved, b, kvh, grp, p, s_q);
    if (store) {   // RoPE of the new key and the fp16 store, as dec_rope_kv
        const float *row = rp.qkv + (size_t)b * rp.ldq;
        {
            const size_t at = seq_row0(s, b) * kvd + (size_t)p * kvd + (size_t)kvh * hd;
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
        }
    }
    __syncthreads();
    if (store) {   // CTA-uniform: the new key's registers from shared memory
#pragma unroll
        for (int k = 0; k < V; k++) {
            if (slot == pj) ka[k] = reinterpret_cast<const uint4 *>(s_new[0])[qi + 4 * k];
            if (slot + 32 == pj) kz[k] = reinterpret_cast<const uint4 *>(s_new[0])[qi + 4 * k];
        }
#pragma unroll
        for (int u = 0; u < 16; u++)
            if (16 * warp + u == pj) vr[u] = reinterpret_cast<const VecT *>(s_new[1])[lane];
    }
    {   // scores: lane quad `slot`, lane qi of it: 16-byte pieces qi, qi + 4, … of keys slot and slot + 32
        float da[G], dc[G];
#pragma unroll
        for (int g = 0; g < G; g++) da[g] = 0.0f, dc[g] = 0.0f;
#pragma unroll
        for (int k = 0; k < V; k++) {
            const int wi = qi + 4 * k;
            float xa[8], xc[8];
            halves_to_float<8>(ka[k], xa);
            halves_to_float<8>(kz[k], xc);
#pragma unroll
            for (int g = 0; g < G; g++) {
                const float4 q0 = reinterpret_cast<const float4 *>(s_q[g])[2 * wi], q1 = reinterpret_cast<const float4 *>(s_q[g])[2 * wi + 1];
                const float qq[8] = {q0.x, q0.y, q0.z, q0.w, q1.x, q1.y, q1.z, q1.w};
#pragma unroll
                for (int e = 0; e < 8; e++) da[g] = fmaf(qq[e], xa[e], da[g]), dc[g] = fmaf(qq[e], xc[e], dc[g]);
            }
        }
        attn_quad_scores<G>(da, dc, qi, slot, 1.0f, 1.0f, 1.0f / sqrtf((float)hd), s_p);
    }
    __syncthreads();
    attn_softmax<G>(grp, cnt, NULL, s_p, s_m, s_l);
    __syncthreads();
    float acc[G][V];
#pragma unroll
    for (int g = 0; g < G; g++)
#pragma unroll
        for (int v = 0; v < V; v++) acc[g][v] = 0.0f;
#pragma unroll
    for (int k4 = 0; k4 < 4; k4++) {
        const int j4 = 4 * warp + k4;   // keys 4·j4 … 4·j4 + 3
        float4 p4[G];
#pragma unroll
        for (int g = 0; g < G; g++) p4[g] = reinterpret_cast<const float4 *>(s_p[g])[j4];
#pragma unroll
        for (int u = 0; u < 4; u++) {
            float x[V];
            halves_to_float<V>(vr[4 * k4 + u], x);
            attn_accum<G, V>(acc, p4, u, x);
        }
    }
    attn_store_partials<G, V>(s, acc, s_o, s_m, s_l, ws, nch, b, kvh, chunk, grp);
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

// The 4-bit cache addresses sequences through dec_kv4_layout's seq_bytes only.
harp_status check_kv4(const dec_attn_shape *s) {
    return s->seq_row ? harp_err(HARP_ERR_UNSUPPORTED, "cuda 4-bit KV cache: per-sequence cache rows (seq_row) are not supported")
                      : HARP_OK;
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

namespace {

int g_attn_variant;   // dec_set_attn_variant

template <int V, int G>
void f16_launch(const dec_attn_shape *s, dim3 grid, int nch, cudaStream_t st, const float *q, const void *kc, const void *vc,
                const int32_t *pos, float *ws, RopeIn rp) {
    pdl_launch(attn_f16_kernel<V, G>, grid, kThreads, 0, st, *s, q, (const __half *)kc, (const __half *)vc, pos, ws, nch, rp);
}

template <int V>
void f16_launch_g(const dec_attn_shape *s, dim3 grid, int nch, cudaStream_t st, const float *q, const void *kc, const void *vc,
                  const int32_t *pos, float *ws, RopeIn rp) {
    const int grp = s->n_heads / s->n_kv;   // ≤ kMaxGroup (check_shape)
    if (grp == 1) f16_launch<V, 1>(s, grid, nch, st, q, kc, vc, pos, ws, rp);
    else if (grp == 2) f16_launch<V, 2>(s, grid, nch, st, q, kc, vc, pos, ws, rp);
    else if (grp <= 4) f16_launch<V, 4>(s, grid, nch, st, q, kc, vc, pos, ws, rp);
    else f16_launch<V, 8>(s, grid, nch, st, q, kc, vc, pos, ws, rp);
}

harp_status f16_attn(const dec_attn_shape *s, const float *q, const void *kc, const void *vc, int B, const int32_t *pos, float *out,
                     float *workspace, dec_stream stream, RopeIn rp) {
    if (__atomic_load_n(&g_attn_variant, __ATOMIC_RELAXED) == 1)
        return attn_launch(s, q, F16Rows{(const __half *)kc, (const __half *)vc, 0, -1, NULL, NULL}, B, pos, out, workspace, stream, rp);
    HARP_TRY(check_shape(s, B));
    const int nch = chunks_of(s);
    const dim3 grid(nch, s->n_kv, B);
    cudaStream_t st = (cudaStream_t)stream;
    switch (s->head_dim / 32) {   // head_dim is 32, 64 or 128 (check_shape)
    case 1: f16_launch_g<1>(s, grid, nch, st, q, kc, vc, pos, workspace, rp); break;
    case 2: f16_launch_g<2>(s, grid, nch, st, q, kc, vc, pos, workspace, rp); break;
    default: f16_launch_g<4>(s, grid, nch, st, q, kc, vc, pos, workspace, rp); break;
    }
    HARP_TRY(launched("attention partials"));
    if (!out) return HARP_OK;   // the consumer combines (dec_xin_split_att)
    pdl_launch(attn_combine_kernel, dim3(s->n_heads, B), 128, 0, st, *s, workspace, nch, out);
    return launched("attention combine");
}

}  // namespace

extern "C" void dec_set_attn_variant(int v) { __atomic_store_n(&g_attn_variant, v == 1 ? 1 : 0, __ATOMIC_RELAXED); }
extern "C" int dec_attn_variant(void) { return __atomic_load_n(&g_attn_variant, __ATOMIC_RELAXED); }

extern "C" harp_status dec_attn(const dec_attn_shape *s, const float *q, const void *kc, const void *vc, int B, const int32_t *pos,
                                float *out, float *workspace, dec_stream stream) {
    return f16_attn(s, q, kc, vc, B, pos, out, workspace, stream, RopeIn{});
}

extern "C" harp_status dec_attn_rope(const dec_attn_shape *s, const float *qkv, int ldq, int B, const int32_t *pos,
                                     const float *inv_freq, int interleaved, void *kc, void *vc, float *out, float *workspace,
                                     dec_stream stream) {
    const RopeIn rp = {qkv, ldq, interleaved, inv_freq, (__half *)kc, (__half *)vc};
    return f16_attn(s, NULL, kc, vc, B, pos, out, workspace, stream, rp);
}

extern "C" harp_status dec_rope_kv4(const dec_attn_shape *s, const float *qkv, int ldq, int B, const int32_t *pos,
                                    const float *inv_freq, int interleaved, float kclip, float vclip, float *qout, void *kc, void *vc,
                                    dec_stream stream) {
    HARP_TRY(check_shape(s, B));
    HARP_TRY(check_kv4(s));
    if (!(kclip > 0.0f && kclip <= 1.0f) || !(vclip > 0.0f && vclip <= 1.0f))
        return harp_err(HARP_ERR_INVALID_ARG, "cuda kv4 store: clip ratios %g, %g outside (0, 1]", (double)kclip, (double)vclip);
    const int qy = (s->n_heads * (s->head_dim / 2) + 127) / 128 < 32 ? (s->n_heads * (s->head_dim / 2) + 127) / 128 : 32;
    pdl_launch(rope_kv4_kernel, dim3(B, s->n_kv + qy), 128, 0, (cudaStream_t)stream, *s, dec_kv4_layout(s), qkv, ldq, pos, inv_freq,
               interleaved, kclip, vclip, qout, (uint8_t *)kc, (uint8_t *)vc);
    return launched("rope/kv4 store");
}

namespace {

int g_kv4_variant;   // dec_set_attn_kv4_variant

template <int V, int G>
void kv4_launch(const dec_attn_shape *s, dim3 grid, int nch, cudaStream_t st, const float *q, Kv4Cache c, const int32_t *pos,
                float *ws, Kv4New nw) {
    pdl_launch(attn_kv4_kernel<V, G>, grid, kThreads, 0, st, *s, q, c, pos, ws, nch, nw);
}

template <int V>
void kv4_launch_g(const dec_attn_shape *s, dim3 grid, int nch, cudaStream_t st, const float *q, Kv4Cache c, const int32_t *pos,
                  float *ws, Kv4New nw) {
    const int grp = s->n_heads / s->n_kv;   // ≤ kMaxGroup (check_shape)
    if (grp == 1) kv4_launch<V, 1>(s, grid, nch, st, q, c, pos, ws, nw);
    else if (grp == 2) kv4_launch<V, 2>(s, grid, nch, st, q, c, pos, ws, nw);
    else if (grp <= 4) kv4_launch<V, 4>(s, grid, nch, st, q, c, pos, ws, nw);
    else kv4_launch<V, 8>(s, grid, nch, st, q, c, pos, ws, nw);
}

harp_status kv4_attn(const dec_attn_shape *s, const float *q, Kv4Cache c, int B, const int32_t *pos, float *out, float *workspace,
                     dec_stream stream, Kv4New nw) {
    HARP_TRY(check_shape(s, B));
    if (!c.ks) HARP_TRY(check_kv4(s));
    const int nch = chunks_of(s);
    const dim3 grid(nch, s->n_kv, B);
    cudaStream_t st = (cudaStream_t)stream;
    switch (s->head_dim / 32) {   // head_dim is 32, 64 or 128 (check_shape)
    case 1: kv4_launch_g<1>(s, grid, nch, st, q, c, pos, workspace, nw); break;
    case 2: kv4_launch_g<2>(s, grid, nch, st, q, c, pos, workspace, nw); break;
    default: kv4_launch_g<4>(s, grid, nch, st, q, c, pos, workspace, nw); break;
    }
    HARP_TRY(launched("4-bit attention partials"));
    if (!out) return HARP_OK;   // the consumer combines (dec_xin_split_att)
    pdl_launch(attn_combine_kernel, dim3(s->n_heads, B), 128, 0, st, *s, workspace, nch, out);
    return launched("attention combine");
}

}  // namespace

extern "C" void dec_set_attn_kv4_variant(int v) { __atomic_store_n(&g_kv4_variant, v == 1 ? 1 : 0, __ATOMIC_RELAXED); }
extern "C" int dec_attn_kv4_variant(void) { return __atomic_load_n(&g_kv4_variant, __ATOMIC_RELAXED); }

extern "C" harp_status dec_attn_kv4(const dec_attn_shape *s, const float *q, const void *kc, const void *vc, int B,
                                    const int32_t *pos, float *out, float *workspace, dec_stream stream) {
    HARP_TRY(check_kv4(s));
    if (dec_attn_kv4_variant() == 1)
        return attn_launch(s, q, Kv4Rows{(const uint8_t *)kc, (const uint8_t *)vc, dec_kv4_layout(s), 0, 0, 0}, B, pos, out, workspace,
                           stream);
    return kv4_attn(s, q, Kv4Cache{(uint8_t *)kc, (uint8_t *)vc, dec_kv4_layout(s)}, B, pos, out, workspace, stream, Kv4New{});
}

extern "C" harp_status dec_attn_kv4_planes(const dec_attn_shape *s, const float *q, const harp_aq_planes *k, const harp_aq_planes *v,
                                           int B, const int32_t *pos, float *out, float *workspace, dec_stream stream) {
    if (!s->seq_row || !k || !v || !k->codes || !k->scale16 || !k->zero || !v->codes || !v->scale16 || !v->zero)
        return harp_err(HARP_ERR_INVALID_ARG, "cuda 4-bit attention over planes: sequence rows, codes, scales and zero points needed");
    const Kv4Cache c = {k->codes, v->codes, dec_kv4_layout(s), (__half *)k->scale16, (__half *)v->scale16, k->zero, v->zero};
    return kv4_attn(s, q, c, B, pos, out, workspace, stream, Kv4New{});
}

static int g_kv4_planes = -1;   // -1: HARP_CUDA_KV4_ENGINE not read yet
extern "C" int dec_attn_kv4_planes_on(void) {
    static const char *const kOff[] = {"0"};   // on unless HARP_CUDA_KV4_ENGINE=0 (A/B against the generic kernel)
    return harp_env_choice(&g_kv4_planes, "HARP_CUDA_KV4_ENGINE", kOff, 1, 1);
}
extern "C" void dec_set_attn_kv4_planes(int on) { __atomic_store_n(&g_kv4_planes, on ? 1 : 0, __ATOMIC_RELAXED); }

extern "C" harp_status dec_attn_rope_kv4(const dec_attn_shape *s, const float *qkv, int ldq, int B, const int32_t *pos,
                                         const float *inv_freq, int interleaved, float kclip, float vclip, void *kc, void *vc, float *out,
                                         float *workspace, dec_stream stream) {
    if (!qkv) return harp_err(HARP_ERR_INVALID_ARG, "cuda kv4 attention + store: no q|k|v rows");
    if (!(kclip > 0.0f && kclip <= 1.0f) || !(vclip > 0.0f && vclip <= 1.0f))
        return harp_err(HARP_ERR_INVALID_ARG, "cuda kv4 store: clip ratios %g, %g outside (0, 1]", (double)kclip, (double)vclip);
    return kv4_attn(s, NULL, Kv4Cache{(uint8_t *)kc, (uint8_t *)vc, dec_kv4_layout(s)}, B, pos, out, workspace, stream,
                    Kv4New{qkv, ldq, interleaved, inv_freq, kclip, vclip});
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
