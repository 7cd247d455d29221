// Decode GEMV and fp16 dequantizer for QTIP trellis codes (DL_QTIP<K>_<CODE>, decode_layout.h).
//
// Same schedule as dec_gemv.cu: one CTA per 16-row tile, its warps split the 128-column
// super-tiles and reduce through shared memory in a fixed order (deterministic, no atomics). Per
// super-tile a lane loads its 16 (+8 / +16) bytes: 8 trellis segments of 8K bits, one per 16 × 16
// trellis tile. The windows of its last states continue in the next lane's segments, which one
// warp shuffle per plane word brings in (lane 31 reads lane 0: the tail-biting wrap). Each tile's
// 8 states (V = 1) or 4 states (HYB, V = 2) are decoded in registers by dl_qtip_frag straight into
// the four A-fragment registers of one mma.m16n8k16 (the kernel permutation is that fragment
// order), with x as the B fragment in natural column order: batch column = activation row, so 1–8
// rows cost the same decode. fp32 accumulation in the tensor cores; Wscale applied once at the end.
// HYB: the 512-pair table sits in shared memory as COPIES interleaved copies (row r of copy c at word
// r·COPIES + c, lane l reads copy l mod COPIES), so the 32 random lookups of a warp spread over more
// banks: one copy costs ~3.5 wavefronts per lookup, 8 copies ~2 (16 KB per CTA), 32 copies one (each
// lane its own bank; 64 KB per CTA, dynamic shared memory). dec_gemv_opts.hyb_copies picks 8, 16 or 32.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include "core/core.h"
#include "cuda/decode.h"
}
#include "cuda/dec_gemv.cuh"
#include "cuda/pdl.cuh"

namespace {

constexpr int kHybCopies = 8;   // the dequantizer's copies (prefill tiles)

template <int K> struct QFmt {
    static constexpr int W1 = K == 2 ? 1 : K == 3 ? 2 : 4;   // plane 1 words per lane
    static constexpr int D = 2;                             // super-tiles in flight per warp
};

template <int K> struct QChunk {
    uint32_t w0[4];
    uint32_t w1[QFmt<K>::W1];
};

template <int K>
__device__ __forceinline__ void qload(const GemvArgs &a, int rt, int st, int lane, QChunk<K> &c) {
    const size_t tile = (size_t)rt * a.nst + st;
    const uint4 v = __ldcs(reinterpret_cast<const uint4 *>(a.p0 + (tile * DL_LANES + lane) * 16));
    c.w0[0] = v.x, c.w0[1] = v.y, c.w0[2] = v.z, c.w0[3] = v.w;
    if (K == 3) {
        const uint2 u = __ldcs(reinterpret_cast<const uint2 *>(a.p1 + (tile * DL_LANES + lane) * 8));
        c.w1[0] = u.x, c.w1[1] = u.y;
    } else if (K == 4) {
        const uint4 u = __ldcs(reinterpret_cast<const uint4 *>(a.p1 + (tile * DL_LANES + lane) * 16));
        c.w1[0] = u.x, c.w1[1] = u.y, c.w1[2] = u.z, c.w1[3] = u.w;
    }
}

// The next lane's plane words (lane 31 gets lane 0's).
template <int K> __device__ __forceinline__ void qnext(const QChunk<K> &c, int lane, QChunk<K> &n) {
    const int src = (lane + 1) & 31;
#pragma unroll
    for (int i = 0; i < 4; i++) n.w0[i] = __shfl_sync(0xFFFFFFFFu, c.w0[i], src);
#pragma unroll
    for (int i = 0; i < QFmt<K>::W1; i++) n.w1[i] = K > 2 ? __shfl_sync(0xFFFFFFFFu, c.w1[i], src) : 0u;
}

// One super-tile: 8 trellis tiles → 8 mma into two accumulator chains.
// The HYB table into shared memory as C interleaved copies: each of the 512 rows is read once from
// global memory and written C times with 16-byte stores (reading it once per copy made the fill, which
// every CTA runs before its first multiply, C times the loads).
template <int C = kHybCopies> __device__ __forceinline__ void hyb_table(const uint32_t *tab, uint32_t *s_tab) {
    for (int r = threadIdx.x; r < DL_HYB_ROWS; r += blockDim.x) {
        const uint32_t v = __ldg(tab + r);
        const uint4 q = make_uint4(v, v, v, v);
#pragma unroll
        for (int c = 0; c < C; c += 4) {
            if (C % 4 == 0) *reinterpret_cast<uint4 *>(s_tab + (size_t)r * C + c) = q;
            else   // only the non-HYB kernels' (never called) instantiation, C = 1
                for (int cc = c; cc < C && cc < c + 4; cc++) s_tab[(size_t)r * C + cc] = v;
        }
    }
}

// dl_qtip_frag's HYB lookups with the address math folded for COPIES interleaved copies: pair q's entry
// is row r = (h >> 6) mod 512 of copy lane mod COPIES, at byte 4·(r·COPIES + lane mod COPIES) =
// (h shifted so that bit 6 lands on bit 2 + log2 COPIES, masked) | 4·(lane mod COPIES) — one shift and
// one LOP3 (16 copies: no shift), where the generic index cost a shift, a mask, a BFI and an LEA.
template <int K, int COPIES>
__device__ __forceinline__ void hyb_frag(uint32_t hi, uint32_t lo, const uint32_t *s_tab, uint32_t lane4, uint32_t a[4]) {
    constexpr int LS = (COPIES == 8 ? 5 : COPIES == 16 ? 6 : 7) - 6;   // log2(4·COPIES) − 6
    constexpr uint32_t kMask = (uint32_t)(DL_HYB_ROWS - 1) << (6 + LS);
    const unsigned char *tb = reinterpret_cast<const unsigned char *>(s_tab);
#pragma unroll
    for (int q = 0; q < 4; q++) {
        const uint32_t st = dl_qtip_window(hi, lo, 2 * K * q), h = st * st + st;
        const uint32_t sh = LS >= 0 ? h << LS : h >> -LS;
        const uint32_t v = *reinterpret_cast<const uint32_t *>(tb + ((sh & kMask) | lane4));
        a[q] = v ^ (h & 0x8000u);
    }
}

template <int K, int CODE, int COPIES>
__device__ __forceinline__ void qtile_mma(const QChunk<K> &c, const uint16_t *xrow, int st, int lane, const uint32_t *s_tab,
                                          float acc0[4], float acc1[4]) {
    const int t = lane & 3;
    const uint32_t *xs = reinterpret_cast<const uint32_t *>(xrow + (size_t)st * DL_TILE_COLS + 2 * t);
    QChunk<K> nx;
    qnext<K>(c, lane, nx);
#pragma unroll
    for (int j = 0; j < 8; j++) {
        // B fragment: columns 16j + 2t, +1 and 16j + 8 + 2t, +1 (L1-resident; the decode hides it)
        const uint32_t b0 = __ldg(xs + 8 * j), b1 = __ldg(xs + 8 * j + 4);
        uint32_t hi, lo, fr[4];
        dl_qtip_hilo(c.w0, c.w1, nx.w0, nx.w1, K, j, &hi, &lo);
        if (CODE == DL_TCODE_HYB) hyb_frag<K, COPIES>(hi, lo, s_tab, 4u * (uint32_t)(lane % COPIES), fr);
        else dl_qtip_frag(K, CODE, hi, lo, s_tab, COPIES, fr);
        mma16816((j & 1) ? acc1 : acc0, fr[0], fr[1], fr[2], fr[3], b0, b1);
    }
}

// 32 warps per SM (64 registers), as the other quantized formats. HYB: the table in dynamic shared memory.
template <int K, int CODE, int WARPS, int COPIES>
__global__ void __launch_bounds__(WARPS * 32, 32 / WARPS) qtip_gemv_kernel(GemvArgs a) {
    extern __shared__ __align__(16) uint32_t s_tab[];
    __shared__ float s_red[WARPS][16][9];
    constexpr int D = QFmt<K>::D;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2;
    const int rt = blockIdx.x;
    const int nk = warp < a.nst ? (a.nst - warp + WARPS - 1) / WARPS : 0;   // this warp's super-tiles
    QChunk<K> w[D];
#pragma unroll
    for (int d = 0; d < D; d++)
        if (d < nk) qload<K>(a, rt, warp + d * WARPS, lane, w[d]);
    const uint16_t *xrow = reinterpret_cast<const uint16_t *>(a.x) + (size_t)min(g, a.B - 1) * a.ldx;
    if (CODE == DL_TCODE_HYB) hyb_table<COPIES>(a.tab, s_tab);
    __syncthreads();
    pdl_wait();   // codes and the table are never written during a token (pdl.cuh)
    pdl_trigger();
    float acc0[4] = {0, 0, 0, 0}, acc1[4] = {0, 0, 0, 0};
    for (int kb = 0; kb < nk; kb += D) {
#pragma unroll
        for (int d = 0; d < D; d++) {
            const int k = kb + d;
            if (k >= nk) break;   // warp-uniform: the shuffles see every lane
            qtile_mma<K, CODE, COPIES>(w[d], xrow, warp + k * WARPS, lane, s_tab, acc0, acc1);
            if (k + D < nk) qload<K>(a, rt, warp + (k + D) * WARPS, lane, w[d]);
        }
    }
    float r[4];
#pragma unroll
    for (int i = 0; i < 4; i++) r[i] = a.s0 * (acc0[i] + acc1[i]);
    tile_reduce<WARPS>(a, s_red, rt, r);
}

// fp16 rows [r0, r1) of W̃ = fp16(Wscale · value), dense [r1−r0][ld]; one warp per super-tile.
template <int K, int CODE>
__global__ void qtip_dequant_kernel(GemvArgs a, int32_t rt0, int32_t r0, int32_t r1, uint32_t *out, int ld) {
    __shared__ __align__(16) uint32_t s_tab[CODE == DL_TCODE_HYB ? DL_HYB_ROWS * kHybCopies : 4];
    if (CODE == DL_TCODE_HYB) hyb_table(a.tab, s_tab);
    __syncthreads();
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int rt = rt0 + blockIdx.y, st = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (st >= a.nst) return;   // whole warps leave: the shuffles below see every lane of a warp
    QChunk<K> c, nx;
    qload<K>(a, rt, st, lane, c);
    qnext<K>(c, lane, nx);
#pragma unroll
    for (int j = 0; j < 8; j++) {
        uint32_t hi, lo, fr[4];
        dl_qtip_hilo(c.w0, c.w1, nx.w0, nx.w1, K, j, &hi, &lo);
        dl_qtip_frag(K, CODE, hi, lo, s_tab + (lane % kHybCopies), kHybCopies, fr);
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const int32_t r = DL_TILE_ROWS * rt + g + 8 * (q & 1), col = DL_TILE_COLS * st + 16 * j + 2 * t + 8 * (q >> 1);
            if (r < r0 || r >= r1) continue;
            const float2 v = __half22float2(*reinterpret_cast<const __half2 *>(&fr[q]));
            out[((size_t)(r - r0) * ld + col) / 2] = dl_f16x2(a.s0 * v.x, a.s0 * v.y);
        }
    }
}

template <int K, int CODE, int WARPS, int COPIES> void launch_w(const GemvArgs &a, int grid, cudaStream_t s) {
    const size_t smem = CODE == DL_TCODE_HYB ? (size_t)DL_HYB_ROWS * COPIES * sizeof(uint32_t) : 0;
    if (smem > 48 * 1024) {   // above the default limit: raised once per instantiation (thread-safe static init)
        static const cudaError_t raised =
            cudaFuncSetAttribute(qtip_gemv_kernel<K, CODE, WARPS, COPIES>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        (void)raised;   // a failure shows as the launch's error (qlaunched)
    }
    pdl_launch(qtip_gemv_kernel<K, CODE, WARPS, COPIES>, grid, WARPS * 32, smem, s, a);
}

template <int K, int CODE, int COPIES> void launch_k(const GemvArgs &a, int warps, int grid, cudaStream_t s) {
    if (warps == 4) launch_w<K, CODE, 4, COPIES>(a, grid, s);
    else if (warps == 16) launch_w<K, CODE, 16, COPIES>(a, grid, s);
    else launch_w<K, CODE, 8, COPIES>(a, grid, s);
}

template <int K> void launch_code(int code, const GemvArgs &a, int warps, int copies, int grid, cudaStream_t s) {
    if (code == DL_TCODE_1MAD) launch_k<K, DL_TCODE_1MAD, 1>(a, warps, grid, s);
    else if (code == DL_TCODE_3INST) launch_k<K, DL_TCODE_3INST, 1>(a, warps, grid, s);
    else if (copies == 32) launch_k<K, DL_TCODE_HYB, 32>(a, warps, grid, s);
    else if (copies == 16) launch_k<K, DL_TCODE_HYB, 16>(a, warps, grid, s);
    else launch_k<K, DL_TCODE_HYB, 8>(a, warps, grid, s);
}

template <int K> void dequant_code(int code, const GemvArgs &a, dim3 grid, int rt0, int r0, int r1, uint32_t *o, int ld,
                                   cudaStream_t s) {
    if (code == DL_TCODE_1MAD) qtip_dequant_kernel<K, DL_TCODE_1MAD><<<grid, 128, 0, s>>>(a, rt0, r0, r1, o, ld);
    else if (code == DL_TCODE_3INST) qtip_dequant_kernel<K, DL_TCODE_3INST><<<grid, 128, 0, s>>>(a, rt0, r0, r1, o, ld);
    else qtip_dequant_kernel<K, DL_TCODE_HYB><<<grid, 128, 0, s>>>(a, rt0, r0, r1, o, ld);
}

harp_status qlaunched(const char *what) {
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "cuda decode: qtip %s: %s", what, cudaGetErrorString(e));
}

}  // namespace

harp_status gemv_qtip(const dec_weights *w, const GemvArgs &a, int warps, int copies, cudaStream_t s) {
    const int K = dl_qtip_bits(w->qtype), code = dl_qtip_code(w->qtype);
    if (K == 2) launch_code<2>(code, a, warps, copies, w->nrt, s);
    else if (K == 3) launch_code<3>(code, a, warps, copies, w->nrt, s);
    else launch_code<4>(code, a, warps, copies, w->nrt, s);
    return qlaunched("gemv");
}

harp_status dequant_qtip(const dec_weights *w, const GemvArgs &a, int32_t r0, int32_t r1, void *out, int ld, cudaStream_t s) {
    const int rt0 = r0 / DL_TILE_ROWS, rt1 = (r1 + DL_TILE_ROWS - 1) / DL_TILE_ROWS;
    const dim3 grid((w->nst + 3) / 4, rt1 - rt0);
    const int K = dl_qtip_bits(w->qtype), code = dl_qtip_code(w->qtype);
    uint32_t *o = (uint32_t *)out;
    if (K == 2) dequant_code<2>(code, a, grid, rt0, r0, r1, o, ld, s);
    else if (K == 3) dequant_code<3>(code, a, grid, rt0, r0, r1, o, ld, s);
    else dequant_code<4>(code, a, grid, rt0, r0, r1, o, ld, s);
    return qlaunched("dequant");
}
