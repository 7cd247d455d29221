// Prefill attention in one launch (cuda_kernels.h, hc_attn_prefill): scores, the masked softmax and
// the weighted values of a (sequence, head) block computed tile by tile with a running maximum and
// sum, so the n × T score matrix never exists. It replaces cuBLAS scores + softmax_kernel + cuBLAS
// context, whose score matrix (8 192 rows × heads × keys a perplexity batch) was the larger part of
// that path's time and memory traffic. Causal masking skips whole key tiles: a query tile reads only
// the keys its rows can see. Two kernels:
//
// - tensor cores (mma.m16n8k16, fp32 accumulation; V's transpose by ldmatrix) at fp32-level accuracy:
//   the fp32 operands are split into fp16 h + lo and only the products that matter are taken — over an
//   fp16 cache Qh·K + Ql·K and Ph·V + Pl·V (K and V are fp16 operands as stored), over an fp32 cache
//   split by hc_kv_split_f16 also Qh·Kl and Ph·Vl. Products of fp16 operands are exact in fp32 and
//   h + lo holds 22 of fp32's 24 bits; a query row whose scaled values reach 2^14 is divided by a power
//   of two first (exact) and its scores multiplied back. Values of an fp32 cache beyond fp16's range
//   set the split's flag: this kernel then exits and the FFMA one launched beside it takes the rows.
// - fp32 FFMA throughout (expf), like the cuBLAS path; it differs from that only by summation order.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/core.h"
#include "cuda/cuda_kernels.h"
#include "cuda/env_switch.h"
}
#include "cuda/mma.cuh"

namespace {

constexpr int kBQ = 64;         // query rows a CTA
constexpr int kThreads = 256;   // 16 × 16: thread (ty, tx) owns rows 4·ty .. 4·ty+3
constexpr int kPad = 4;         // row padding of the shared tiles (float4-aligned, spreads banks)

int g_flash = -1;   // -1: not yet read from HARP_CUDA_FLASH; else 0 (cuBLAS + softmax), 1 (FFMA), 2 (tensor cores)

// Q once; K and V twice (the next tile streams in while this one is used); P.
template <int HD, int BK>
struct Smem {
    static constexpr int q = kBQ * (HD + kPad), k = BK * (HD + kPad), v = BK * HD, p = BK * (kBQ + kPad);
    static constexpr size_t bytes = sizeof(float) * (size_t)(q + 2 * (k + v) + p);
};

__device__ __forceinline__ int first_key(int pos, int window) { return window > 0 && pos + 1 > window ? pos + 1 - window : 0; }

// rows × HD floats from src (row stride ld) into dst (row stride HD + kPad); rows past `valid` get zeros
template <int HD, int ROWS>
__device__ __forceinline__ void load_tile(float *dst, int dst_ld, const float *src, size_t ld, int valid) {
    constexpr int per_row = HD / 4;
    for (int f = threadIdx.x; f < ROWS * per_row; f += kThreads) {
        const int r = f / per_row, c4 = f % per_row;
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (r < valid) v = *reinterpret_cast<const float4 *>(src + (size_t)r * ld + 4 * c4);
        *reinterpret_cast<float4 *>(dst + r * dst_ld + 4 * c4) = v;
    }
}

// The same for K / V tiles, asynchronously (cp.async, 16 bytes a copy; rows past `valid` are zero-filled
// by a source size of 0, their address clamped to row 0, which always exists)
template <int HD, int ROWS>
__device__ __forceinline__ void load_tile_async(float *dst, int dst_ld, const float *src, size_t ld, int valid) {
    constexpr int per_row = HD / 4;
    for (int f = threadIdx.x; f < ROWS * per_row; f += kThreads) {
        const int r = f / per_row, c4 = f % per_row;
        const float *g = src + (size_t)(r < valid ? r : 0) * ld + 4 * c4;
        const unsigned s = (unsigned)__cvta_generic_to_shared(dst + r * dst_ld + 4 * c4);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(g), "r"(r < valid ? 16 : 0) : "memory");
    }
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

// grid (query tiles, nz); z's pointers from the tables. Query row i of z sits at position p0 + i and sees
// keys first_key(p0 + i) .. p0 + i of the T its K / V hold.
template <int HD, int BK>
__global__ void __launch_bounds__(kThreads) attn_prefill_kernel(const float *const *Kt, const float *const *Qt, const float *const *Vt,
                                                                float *const *Ot, int n, int T, int p0, int qd, int kvd, int window,
                                                                float scale, const int *only_if) {
    if (only_if && !*only_if) return;   // the tensor-core kernel of the same launch pair took these rows
    using S = Smem<HD, BK>;
    extern __shared__ float4 smem4[];
    float *Qs = reinterpret_cast<float *>(smem4), *Kb = Qs + S::q, *Vb = Kb + 2 * S::k, *Ps = Vb + 2 * S::v;
    constexpr int QLD = HD + kPad, KLD = HD + kPad, PLD = kBQ + kPad, NV = BK / 16, NG = HD / 64;
    const int z = blockIdx.y, tid = threadIdx.x, ty = tid >> 4, tx = tid & 15;
    const int i0 = (gridDim.x - 1 - blockIdx.x) * kBQ;   // the longest tiles first
    const int rows = min(kBQ, n - i0);
    const float *K = Kt[z], *V = Vt[z];
    load_tile<HD, kBQ>(Qs, QLD, Qt[z] + (size_t)i0 * qd, (size_t)qd, rows);

    float o[4][NG][4], m[4], l[4];
#pragma unroll
    for (int u = 0; u < 4; u++) {
        m[u] = -INFINITY, l[u] = 0.f;
#pragma unroll
        for (int g = 0; g < NG; g++)
#pragma unroll
            for (int e = 0; e < 4; e++) o[u][g][e] = 0.f;
    }
    const int pos_lo = p0 + i0, pos_hi = p0 + i0 + rows - 1;   // positions of the tile's first and last row
    const int j_begin = first_key(pos_lo, window), j_end = min(pos_hi + 1, T);
    if (j_begin < j_end) {
        load_tile_async<HD, BK>(Kb, KLD, K + (size_t)j_begin * kvd, (size_t)kvd, min(BK, T - j_begin));
        load_tile_async<HD, BK>(Vb, HD, V + (size_t)j_begin * kvd, (size_t)kvd, min(BK, T - j_begin));
    }
    cp_async_commit();
    for (int j0 = j_begin, buf = 0; j0 < j_end; j0 += BK, buf ^= 1) {
        const float *Ks = Kb + buf * S::k, *Vs = Vb + buf * S::v;
        const int jn = j0 + BK;
        if (jn < j_end) {   // the next tile into the other buffer, read by no one since the last iteration's closing barrier
            load_tile_async<HD, BK>(Kb + (buf ^ 1) * S::k, KLD, K + (size_t)jn * kvd, (size_t)kvd, min(BK, T - jn));
            load_tile_async<HD, BK>(Vb + (buf ^ 1) * S::v, HD, V + (size_t)jn * kvd, (size_t)kvd, min(BK, T - jn));
        }
        cp_async_commit();
        cp_async_wait<1>();   // this tile's group (the newest, possibly empty, may still be in flight)
        __syncthreads();
        float s[4][NV];
#pragma unroll
        for (int u = 0; u < 4; u++)
#pragma unroll
            for (int v = 0; v < NV; v++) s[u][v] = 0.f;
#pragma unroll 4
        for (int d = 0; d < HD; d += 4) {
            float4 qa[4], kb[NV];
#pragma unroll
            for (int u = 0; u < 4; u++) qa[u] = *reinterpret_cast<const float4 *>(Qs + (4 * ty + u) * QLD + d);
#pragma unroll
            for (int v = 0; v < NV; v++) kb[v] = *reinterpret_cast<const float4 *>(Ks + (tx + 16 * v) * KLD + d);
#pragma unroll
            for (int u = 0; u < 4; u++)
#pragma unroll
                for (int v = 0; v < NV; v++)
                    s[u][v] += qa[u].x * kb[v].x + qa[u].y * kb[v].y + qa[u].z * kb[v].z + qa[u].w * kb[v].w;
        }
        // mask, running maximum and sum (the 16 lanes of a row group agree on m: shuffles within a half warp)
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const int pos = p0 + i0 + 4 * ty + u, lo = first_key(pos, window);
            float mt = -INFINITY;
#pragma unroll
            for (int v = 0; v < NV; v++) {
                const int j = j0 + tx + 16 * v;
                s[u][v] = j >= lo && j <= pos && j < T ? s[u][v] * scale : -INFINITY;
                mt = fmaxf(mt, s[u][v]);
            }
#pragma unroll
            for (int off = 8; off > 0; off >>= 1) mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, off));
            const float mn = fmaxf(m[u], mt);
            const float corr = mn == -INFINITY ? 1.f : expf(m[u] - mn);   // m[u] = -inf, mn finite: 0
            const float base = mn == -INFINITY ? 0.f : mn;
            float ps = 0.f;
#pragma unroll
            for (int v = 0; v < NV; v++) {
                s[u][v] = s[u][v] == -INFINITY ? 0.f : expf(s[u][v] - base);
                ps += s[u][v];
            }
            l[u] = l[u] * corr + ps;   // a lane's share of the row's sum; the shares are added at the end
            m[u] = mn;
#pragma unroll
            for (int g = 0; g < NG; g++)
#pragma unroll
                for (int e = 0; e < 4; e++) o[u][g][e] *= corr;
        }
#pragma unroll
        for (int v = 0; v < NV; v++)
            *reinterpret_cast<float4 *>(Ps + (tx + 16 * v) * PLD + 4 * ty) = make_float4(s[0][v], s[1][v], s[2][v], s[3][v]);
        __syncthreads();
        const int cmax = min(BK, j_end - j0);
#pragma unroll 4
        for (int c = 0; c < cmax; c++) {
            const float4 pa = *reinterpret_cast<const float4 *>(Ps + c * PLD + 4 * ty);
            const float pu[4] = {pa.x, pa.y, pa.z, pa.w};
#pragma unroll
            for (int g = 0; g < NG; g++) {
                const float4 vb = *reinterpret_cast<const float4 *>(Vs + c * HD + 64 * g + 4 * tx);
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    o[u][g][0] += pu[u] * vb.x;
                    o[u][g][1] += pu[u] * vb.y;
                    o[u][g][2] += pu[u] * vb.z;
                    o[u][g][3] += pu[u] * vb.w;
                }
            }
        }
        __syncthreads();   // K, V of this buffer and P are read before they are overwritten
    }
    float *O = Ot[z];
#pragma unroll
    for (int u = 0; u < 4; u++) {
        float sum = l[u];
#pragma unroll
        for (int off = 8; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
        const int r = 4 * ty + u;
        if (r >= rows) continue;
        const float inv = 1.f / sum;
#pragma unroll
        for (int g = 0; g < NG; g++)
            *reinterpret_cast<float4 *>(O + (size_t)(i0 + r) * qd + 64 * g + 4 * tx) =
                make_float4(o[u][g][0] * inv, o[u][g][1] * inv, o[u][g][2] * inv, o[u][g][3] * inv);
    }
}

// ---- tensor cores ---------------------------------------------------------------------------------------

constexpr int kTcThreads = 128;   // 4 warps × 16 query rows
// NP products a tile: 2 over an fp16 cache (Qh·K + Ql·K), 3 over an fp32 one split into h + lo
// (Qh·Kh + Ql·Kh + Qh·Kl), each with P likewise; key tiles of 64 (2) or 32 (3) keys.
template <int NP>
__host__ __device__ constexpr int tc_bk() { return NP == 3 ? 32 : 64; }

// K and V tiles (and their lo parts for NP = 3) as fp16 rows (keys × HD halves, padded by 8), twice:
// the next tile streams in (cp.async) while this one is used.
template <int HD, int NP>
struct TcSmem {
    static constexpr int ld = HD + 8, tile = tc_bk<NP>() * ld, tiles = NP == 3 ? 4 : 2;
    static constexpr size_t bytes = sizeof(__half) * (size_t)(2 * tiles * tile);
};

__device__ __forceinline__ uint32_t pack_h2(float a, float b) {
    const __half2 h = __floats2half2_rn(a, b);
    return *reinterpret_cast<const uint32_t *>(&h);
}

// h = fp16(a, b), lo = fp16 of what h missed
__device__ __forceinline__ void split_h2(float a, float b, uint32_t *h, uint32_t *lo) {
    const __half2 hh = __floats2half2_rn(a, b);
    const float2 f = __half22float2(hh);
    *h = *reinterpret_cast<const uint32_t *>(&hh);
    *lo = pack_h2(a - f.x, b - f.y);
}

// keys × HD halves of an fp16 cache (row stride ld halves) into a tile, 16 bytes a copy; keys past
// `valid` zero-filled (source size 0, address clamped to key 0)
template <int HD, int BK>
__device__ __forceinline__ void load_tile_h(__half *dst, const __half *src, size_t ld, int valid) {
    constexpr int per_row = HD / 8;
    for (int f = threadIdx.x; f < BK * per_row; f += kTcThreads) {
        const int r = f / per_row, c8 = f % per_row;
        const __half *g = src + (size_t)(r < valid ? r : 0) * ld + 8 * c8;
        const unsigned s = (unsigned)__cvta_generic_to_shared(dst + r * (HD + 8) + 8 * c8);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(g), "r"(r < valid ? 16 : 0) : "memory");
    }
}

// One tile's K / V (and lo parts) into buffer buf
template <int HD, int NP>
__device__ __forceinline__ void load_kv_tiles(__half *sm, int buf, const __half *K, const __half *Kl, const __half *V, const __half *Vl,
                                              int j0, int kvd, int valid) {
    using S = TcSmem<HD, NP>;
    constexpr int BK = tc_bk<NP>();
    __half *b = sm + buf * S::tiles * S::tile;
    const size_t o = (size_t)j0 * kvd;
    load_tile_h<HD, BK>(b, K + o, (size_t)kvd, valid);
    load_tile_h<HD, BK>(b + S::tile, V + o, (size_t)kvd, valid);
    if (NP == 3) {
        load_tile_h<HD, BK>(b + 2 * S::tile, Kl + o, (size_t)kvd, valid);
        load_tile_h<HD, BK>(b + 3 * S::tile, Vl + o, (size_t)kvd, valid);
    }
}

// The thread's fragment rows are g and g + 8 of its warp's 16 (lane = 4g + t), its columns 2t, 2t + 1
// (+ 8). K, V: fp16 rows (row stride kvd halves); NP = 3: Kl, Vl their lo parts, and nothing is done
// where *skip is set (K or V did not fit fp16: the FFMA kernel of the same pair takes the rows).
template <int HD, int NP>
__global__ void __launch_bounds__(kTcThreads) attn_prefill_tc_kernel(const __half *const *Kt, const __half *const *Klt, const float *const *Qt,
                                                                     const __half *const *Vt, const __half *const *Vlt, float *const *Ot, int n,
                                                                     int T, int p0, int qd, int kvd, int window, float scale,
                                                                     const int *skip) {
    using S = TcSmem<HD, NP>;
    constexpr int BK = tc_bk<NP>(), NKS = HD / 16, NJ = BK / 8, NJD = HD / 8, NKK = BK / 16;
    if (NP == 3 && *skip) return;
    extern __shared__ uint4 tc_smem[];
    __half *sm = reinterpret_cast<__half *>(tc_smem);
    const int z = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int i0 = (gridDim.x - 1 - blockIdx.x) * kBQ, rows = min(kBQ, n - i0);
    const int ra = warp * 16 + g, rb = ra + 8;   // tile rows
    const float *Q = Qt[z];
    const __half *K = Kt[z], *V = Vt[z], *Kl = NP == 3 ? Klt[z] : nullptr, *Vl = NP == 3 ? Vlt[z] : nullptr;
    const int pos_lo = p0 + i0, pos_hi = p0 + i0 + rows - 1;
    const int j_begin = first_key(pos_lo, window), j_end = min(pos_hi + 1, T);
    if (j_begin < j_end) load_kv_tiles<HD, NP>(sm, 0, K, Kl, V, Vl, j_begin, kvd, min(BK, T - j_begin));   // streams in while Q is read
    cp_async_commit();

    // Q · scale as h + lo A fragments; a row's power of two keeps its values below 2^14
    float amax[2] = {0.f, 0.f};
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int r = h ? rb : ra;
        if (r < rows)
#pragma unroll
            for (int ks = 0; ks < NKS; ks++)
#pragma unroll
                for (int c = 0; c < 2; c++) {
                    const float2 v = *reinterpret_cast<const float2 *>(Q + (size_t)(i0 + r) * qd + 16 * ks + 8 * c + 2 * t);
                    amax[h] = fmaxf(amax[h], fmaxf(fabsf(v.x), fabsf(v.y)));
                }
#pragma unroll
        for (int off = 1; off < 4; off <<= 1) amax[h] = fmaxf(amax[h], __shfl_xor_sync(0xffffffffu, amax[h], off));
    }
    float qs[2], back[2];
#pragma unroll
    for (int h = 0; h < 2; h++) {
        int ex = 0;
        frexpf(amax[h] * scale, &ex);   // amax·scale < 2^ex
        const int e = ex > 14 ? ex - 14 : 0;
        qs[h] = ldexpf(scale, -e), back[h] = ldexpf(1.f, e);
    }
    uint32_t qh[NKS][4], ql[NKS][4];
#pragma unroll
    for (int ks = 0; ks < NKS; ks++)
#pragma unroll
        for (int q = 0; q < 4; q++) {   // a0: row g, cols 2t; a1: row g + 8; a2: row g, cols 2t + 8; a3: row g + 8, cols 2t + 8
            const int h = q & 1, r = h ? rb : ra, c = 16 * ks + 8 * (q >> 1) + 2 * t;
            float2 v = make_float2(0.f, 0.f);
            if (r < rows) v = *reinterpret_cast<const float2 *>(Q + (size_t)(i0 + r) * qd + c);
            split_h2(v.x * qs[h], v.y * qs[h], &qh[ks][q], &ql[ks][q]);
        }

    float o[NJD][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
#pragma unroll
    for (int j = 0; j < NJD; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    const int pos[2] = {p0 + i0 + ra, p0 + i0 + rb}, lo_key[2] = {first_key(pos[0], window), first_key(pos[1], window)};
    // ldmatrix .x4 .trans of V: lanes 0-7 / 8-15 address keys 0-7 / 8-15 of a 16-key step at dims 8jd,
    // lanes 16-31 the same at dims 8jd + 8: b0, b1 of two dim tiles
    const int v_key = lane & 15, v_dim = (lane >> 4) * 8;
    for (int j0 = j_begin, buf = 0; j0 < j_end; j0 += BK, buf ^= 1) {
        const __half *Ks = sm + buf * S::tiles * S::tile, *Vs = Ks + S::tile, *Kls = Ks + 2 * S::tile, *Vls = Ks + 3 * S::tile;
        const int jn = j0 + BK;
        if (jn < j_end) load_kv_tiles<HD, NP>(sm, buf ^ 1, K, Kl, V, Vl, jn, kvd, min(BK, T - jn));   // free since the closing barrier
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        float s[NJ][4];
#pragma unroll
        for (int j = 0; j < NJ; j++) {
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
            for (int ks = 0; ks < NKS; ks++) {
                const int off = (8 * j + g) * S::ld + 16 * ks + 2 * t;
                const uint32_t b0 = *reinterpret_cast<const uint32_t *>(Ks + off), b1 = *reinterpret_cast<const uint32_t *>(Ks + off + 8);
                mma16816(s[j], qh[ks], b0, b1);
                mma16816(s[j], ql[ks], b0, b1);
                if (NP == 3) {
                    const uint32_t c0 = *reinterpret_cast<const uint32_t *>(Kls + off), c1 = *reinterpret_cast<const uint32_t *>(Kls + off + 8);
                    mma16816(s[j], qh[ks], c0, c1);
                }
            }
        }
        // mask, running maximum and sum of rows g (h = 0: c0, c1) and g + 8 (h = 1: c2, c3); a row's 4 lanes agree
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float mt = -INFINITY;
#pragma unroll
            for (int j = 0; j < NJ; j++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int key = j0 + 8 * j + 2 * t + e;
                    float &v = s[j][2 * h + e];
                    v = key >= lo_key[h] && key <= pos[h] && key < T ? v * back[h] : -INFINITY;
                    mt = fmaxf(mt, v);
                }
#pragma unroll
            for (int off = 1; off < 4; off <<= 1) mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, off));
            const float mn = fmaxf(m[h], mt);
            const float corr = mn == -INFINITY ? 1.f : expf(m[h] - mn), base = mn == -INFINITY ? 0.f : mn;
            float ps = 0.f;
#pragma unroll
            for (int j = 0; j < NJ; j++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    float &v = s[j][2 * h + e];
                    v = v == -INFINITY ? 0.f : expf(v - base);
                    ps += v;
                }
            l[h] = l[h] * corr + ps;
            m[h] = mn;
#pragma unroll
            for (int jd = 0; jd < NJD; jd++) o[jd][2 * h] *= corr, o[jd][2 * h + 1] *= corr;
        }
        // P (the S fragments of key tiles 2kk, 2kk + 1 are the A fragment of keys 16kk .. 16kk + 15) · V
#pragma unroll
        for (int kk = 0; kk < NKK; kk++) {
            uint32_t ph[4], pl[4];
            split_h2(s[2 * kk][0], s[2 * kk][1], &ph[0], &pl[0]);
            split_h2(s[2 * kk][2], s[2 * kk][3], &ph[1], &pl[1]);
            split_h2(s[2 * kk + 1][0], s[2 * kk + 1][1], &ph[2], &pl[2]);
            split_h2(s[2 * kk + 1][2], s[2 * kk + 1][3], &ph[3], &pl[3]);
#pragma unroll
            for (int jd = 0; jd < NJD; jd += 2) {
                uint32_t b[4];
                const int off = (16 * kk + v_key) * S::ld + 8 * jd + v_dim;
                const unsigned a = (unsigned)__cvta_generic_to_shared(Vs + off);
                asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                             : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3]) : "r"(a));
                mma16816(o[jd], ph, b[0], b[1]);
                mma16816(o[jd], pl, b[0], b[1]);
                mma16816(o[jd + 1], ph, b[2], b[3]);
                mma16816(o[jd + 1], pl, b[2], b[3]);
                if (NP == 3) {
                    const unsigned al = (unsigned)__cvta_generic_to_shared(Vls + off);
                    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                                 : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3]) : "r"(al));
                    mma16816(o[jd], ph, b[0], b[1]);
                    mma16816(o[jd + 1], ph, b[2], b[3]);
                }
            }
        }
        __syncthreads();   // this buffer is read before the next iteration streams into it
    }
    float *O = Ot[z];
#pragma unroll
    for (int h = 0; h < 2; h++) {
        float sum = l[h];
#pragma unroll
        for (int off = 1; off < 4; off <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
        const int r = h ? rb : ra;
        if (r >= rows) continue;
        const float inv = 1.f / sum;
#pragma unroll
        for (int jd = 0; jd < NJD; jd++)
            *reinterpret_cast<float2 *>(O + (size_t)(i0 + r) * qd + 8 * jd + 2 * t) = make_float2(o[jd][2 * h] * inv, o[jd][2 * h + 1] * inv);
    }
}

// The opt-in above 48 KiB of dynamic shared memory, once per kernel and device
template <class F>
harp_status smem_opt_in(F *kernel, size_t smem, unsigned long long *done) {
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return hc_launched("prefill attention (device)");
    const unsigned long long bit = 1ull << (dev & 63);
    if (__atomic_load_n(done, __ATOMIC_ACQUIRE) & bit) return HARP_OK;
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem) != cudaSuccess)
        return hc_launched("prefill attention (shared memory)");
    __atomic_fetch_or(done, bit, __ATOMIC_RELEASE);
    return HARP_OK;
}

template <int HD, int NP>
harp_status launch_tc(const hc_attn_kv *kv, const float *const *Q, float *const *O, int nz, int n, int T, int p0, int qd, int kvd,
                      int window, float scale, cudaStream_t st) {
    static unsigned long long done = 0;
    HARP_TRY(smem_opt_in(attn_prefill_tc_kernel<HD, NP>, TcSmem<HD, NP>::bytes, &done));
    const dim3 grid((unsigned)((n + kBQ - 1) / kBQ), (unsigned)nz);
    attn_prefill_tc_kernel<HD, NP><<<grid, kTcThreads, TcSmem<HD, NP>::bytes, st>>>(
        (const __half *const *)kv->kh, (const __half *const *)kv->kl, Q, (const __half *const *)kv->vh, (const __half *const *)kv->vl, O, n,
        T, p0, qd, kvd, window, scale, kv->overflow);
    return hc_launched("prefill attention (tensor cores)");
}

template <int HD, int BK>
harp_status launch(const float *const *K, const float *const *Q, const float *const *V, float *const *O, int nz, int n, int T, int p0,
                   int qd, int kvd, int window, float scale, const int *only_if, cudaStream_t st) {
    static unsigned long long done = 0;
    const size_t smem = Smem<HD, BK>::bytes;
    HARP_TRY(smem_opt_in(attn_prefill_kernel<HD, BK>, smem, &done));
    const dim3 grid((unsigned)((n + kBQ - 1) / kBQ), (unsigned)nz);
    attn_prefill_kernel<HD, BK><<<grid, kThreads, smem, st>>>(K, Q, V, O, n, T, p0, qd, kvd, window, scale, only_if);
    return hc_launched("prefill attention");
}

}  // namespace

extern "C" int hc_attn_prefill_on(void) {
    static const char *const kModes[] = {"0", "1"};
    return harp_env_choice(&g_flash, "HARP_CUDA_FLASH", kModes, 2, 2);
}

extern "C" void hc_set_attn_prefill(int mode) { __atomic_store_n(&g_flash, mode < 0 ? 0 : mode > 2 ? 2 : mode, __ATOMIC_RELAXED); }

extern "C" harp_status hc_attn_prefill(const hc_attn_kv *kv, const float *const *Q, float *const *O, int nz, int n, int T, int p0,
                                       int head_dim, int qd, int kvd, int window, float scale, hc_stream st) {
    if (nz < 1 || n < 1) return HARP_OK;
    if (T < p0 + n || qd % 4 || kvd % 8)
        return harp_err(HARP_ERR_SHAPE, "cuda prefill attention: %d queries at %d over %d keys, strides %d / %d", n, p0, T, qd, kvd);
    if (head_dim != 64 && head_dim != 128) return HARP_ERR_UNSUPPORTED;   // the caller keeps the cuBLAS path
    cudaStream_t s = (cudaStream_t)st;
    const float *const *K = (const float *const *)kv->k, *const *V = (const float *const *)kv->v;
    if (kv->kh && !kv->kl)   // an fp16 cache: two products
        return head_dim == 64 ? launch_tc<64, 2>(kv, Q, O, nz, n, T, p0, qd, kvd, window, scale, s)
                              : launch_tc<128, 2>(kv, Q, O, nz, n, T, p0, qd, kvd, window, scale, s);
    if (kv->kh) {   // an fp32 cache split into h + lo: three products, FFMA where a value did not fit fp16 (the flag picks one of the two)
        const harp_status r = head_dim == 64 ? launch_tc<64, 3>(kv, Q, O, nz, n, T, p0, qd, kvd, window, scale, s)
                                             : launch_tc<128, 3>(kv, Q, O, nz, n, T, p0, qd, kvd, window, scale, s);
        if (r != HARP_OK) return r;
    }
    const int *only_if = kv->kh ? kv->overflow : nullptr;
    return head_dim == 64 ? launch<64, 64>(K, Q, V, O, nz, n, T, p0, qd, kvd, window, scale, only_if, s)
                          : launch<128, 32>(K, Q, V, O, nz, n, T, p0, qd, kvd, window, scale, only_if, s);
}

// fp32 rows to fp16 h + lo; *overflow = 1 where a value is beyond fp16's range (or not a number)
static __global__ void kv_split_kernel(const float *k, const float *v, size_t n, __half *kh, __half *kl, __half *vh, __half *vl, int *overflow) {
    bool bad = false;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float a = k[i], b = v[i];
        bad |= !(fabsf(a) <= 65504.f) || !(fabsf(b) <= 65504.f);
        const __half ah = __float2half_rn(a), bh = __float2half_rn(b);
        kh[i] = ah, vh[i] = bh;
        kl[i] = __float2half_rn(a - __half2float(ah)), vl[i] = __float2half_rn(b - __half2float(bh));
    }
    if (__syncthreads_or(bad) && threadIdx.x == 0) *overflow = 1;
}

extern "C" harp_status hc_kv_split_f16(const float *k, const float *v, size_t n, void *kh, void *kl, void *vh, void *vl, int *overflow,
                                       hc_stream st) {
    cudaStream_t s = (cudaStream_t)st;
    if (cudaMemsetAsync(overflow, 0, sizeof(int), s) != cudaSuccess) return hc_launched("kv split (flag)");
    if (n == 0) return HARP_OK;
    const size_t blocks = (n + 255) / 256;
    kv_split_kernel<<<(unsigned)(blocks < 4096 ? blocks : 4096), 256, 0, s>>>(k, v, n, (__half *)kh, (__half *)kl, (__half *)vh, (__half *)vl,
                                                                           overflow);
    return hc_launched("kv split");
}
