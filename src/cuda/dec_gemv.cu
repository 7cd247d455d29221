// Decode GEMV for 1–8 activation rows on the packed layouts of decode_layout.h (E8P2, RVQ3, RVQ4,
// INT2/3/4/8 group-128, F16), plus the fp16 tile dequantizer and the cuBLAS prefill product.
//
// One CTA per 16-row tile; its warps split the 128-column super-tiles (k-split) and reduce their
// partial sums through shared memory in a fixed order, so results are deterministic (no atomics).
// Each lane streams its 16–128 byte chunk per super-tile (one coalesced run per warp), decodes its
// 8 units with the helpers of decode_layout.h straight into mma.m16n8k16 A fragments (fp16, exact
// values) and multiplies with x as the B fragment: batch column n = activation row, so 1–8 rows
// cost the same decode. Accumulation is fp32 in the tensor cores.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include "core/core.h"
#include "cuda/dec_ldp.h"
#include "cuda/decode.h"
}
#include "cuda/cublas_dl.h"
#include "cuda/dec_gemv.cuh"
#include "cuda/pdl.cuh"

extern "C" void dec_device_free(void *p) { cudaFree(p); }

namespace {

__device__ uint32_t g_e8p_tab[DL_E8P_TABLE];
__device__ uint4 g_e81b[256];

__device__ __forceinline__ uint32_t hsub2u(uint32_t v, __half2 s) {
    __half2 h = *reinterpret_cast<__half2 *>(&v);
    h = __hsub2(h, s);
    return *reinterpret_cast<uint32_t *>(&h);
}

// Lane chunk bytes per plane and the depth of the weight prefetch ring, as compile-time constants.
template <int QT> struct Fmt {
    static constexpr int L0 = QT == HARP_QTYPE_F16 ? DL_F16_LANE : QT == HARP_QTYPE_INT2 || QT == HARP_QTYPE_INT3 ? DL_INT2_LANE
                            : QT == HARP_QTYPE_INT4 ? DL_INT4_LANE : QT == HARP_QTYPE_INT8 ? DL_INT8_LANE : DL_E8P_LANE;
    static constexpr int L1 = QT == HARP_QTYPE_RVQ4 ? DL_E8P_LANE : QT == HARP_QTYPE_RVQ3 ? DL_E81B_LANE : QT == HARP_QTYPE_INT3 ? DL_INT3HI_LANE : 0;
    static constexpr int W0 = L0 / 4, W1 = L1 > 0 ? L1 / 4 : 1;
    static constexpr bool META = QT == HARP_QTYPE_INT2 || QT == HARP_QTYPE_INT3 || QT == HARP_QTYPE_INT4 || QT == HARP_QTYPE_INT8;
    // super-tiles of weights in flight per warp (the ring): 2; occupancy supplies the rest of the
    // memory parallelism (measured: a deeper ring costs registers, hence warps, and was not faster)
    static constexpr int D = 2;
};

template <int QT> struct Chunk {
    uint32_t w0[Fmt<QT>::W0];
    uint32_t w1[Fmt<QT>::W1];
    float2 sc;        // INT: scales of rows g, g+8
    uint32_t z;       // INT: zeros of rows g, g+8 (bytes 0, 1)
};

template <int QT>
__device__ __forceinline__ void load_w(const GemvArgs &a, int rt, int st, int lane, Chunk<QT> &c) {
    const size_t tile = (size_t)rt * a.nst + st;
#pragma unroll
    for (int i = 0; i < Fmt<QT>::L0 / 16; i++) {
        const uint4 v = __ldcs(reinterpret_cast<const uint4 *>(a.p0 + ((tile * (Fmt<QT>::L0 / 16) + i) * DL_LANES + lane) * 16));
        c.w0[4 * i] = v.x, c.w0[4 * i + 1] = v.y, c.w0[4 * i + 2] = v.z, c.w0[4 * i + 3] = v.w;
    }
    if (Fmt<QT>::L1 == 16) {
        const uint4 v = __ldcs(reinterpret_cast<const uint4 *>(a.p1 + (tile * DL_LANES + lane) * 16));
        c.w1[0] = v.x, c.w1[1] = v.y, c.w1[2] = v.z, c.w1[3] = v.w;
    } else if (Fmt<QT>::L1 == 8) {
        const uint2 v = __ldcs(reinterpret_cast<const uint2 *>(a.p1 + (tile * DL_LANES + lane) * 8));
        c.w1[0] = v.x, c.w1[1] = v.y;
    }
    if (Fmt<QT>::META) {
        const dl_meta_tile *mt = a.meta + tile;
        const int g = lane >> 2;
        c.sc = __ldcs(reinterpret_cast<const float2 *>(&mt->sc[g][0]));
        c.z = __ldcs(reinterpret_cast<const unsigned short *>(&mt->z[g][0]));
    }
}

__device__ __forceinline__ void load_x(const __half *xrow, int st, int lane, uint4 x[4]) {
    const uint4 *xs = reinterpret_cast<const uint4 *>(xrow + (size_t)st * DL_TILE_COLS + 8 * (lane & 3));
#pragma unroll
    for (int j = 0; j < 4; j++) x[j] = __ldg(xs + 4 * j);   // columns 8·(t + 4j)
}

// 8 E8P units of one lane → 16 mma (2 per unit pair and value half) into acc.
__device__ __forceinline__ void e8p_mma(const uint32_t *w, const uint4 *x, const uint32_t *tab, float acc_a[4], float acc_b[4]) {
    const __half2 bias = __float2half2_rn(DL_E8P_BIAS);
#pragma unroll
    for (int wd = 0; wd < 2; wd++) {
        uint32_t o[16];
        dl_e8p_word(w[2 * wd], w[2 * wd + 1], tab, o);
#pragma unroll
        for (int i = 0; i < 16; i++) o[i] = hsub2u(o[i], bias);
        // slots: 0 = (j = 2wd, row g), 1 = (2wd, g+8), 2 = (2wd+1, g), 3 = (2wd+1, g+8); o[4·slot + pair]
        float *acc = wd ? acc_b : acc_a;   // two accumulator chains: the words' mma do not wait on each other
#pragma unroll
        for (int jj = 0; jj < 2; jj++) {
            const uint4 xv = x[2 * wd + jj];
            const int sg = 2 * jj, sh = 2 * jj + 1;
            mma16816(acc, o[4 * sg + 0], o[4 * sh + 0], o[4 * sg + 1], o[4 * sh + 1], xv.x, xv.y);
            mma16816(acc, o[4 * sg + 2], o[4 * sh + 2], o[4 * sg + 3], o[4 * sh + 3], xv.z, xv.w);
        }
    }
}

template <int QT>
__device__ __forceinline__ uint32_t int_pair(const Chunk<QT> &c, int k, int p) {
    if (QT == HARP_QTYPE_INT2) return dl_int2_pair(c.w0, k, p);
    if (QT == HARP_QTYPE_INT3) return dl_int3_pair(c.w0, c.w1, k, p);
    if (QT == HARP_QTYPE_INT4) return dl_int4_pair(c.w0, k, p);
    return dl_int8_pair(c.w0, k, p);
}

template <int QT>
__device__ __forceinline__ void tile_mma(const Chunk<QT> &c, const __half *xrow, int st, int lane, const uint32_t *s_tab,
                                         const uint4 *s_e81b, float acc0[4], float acc1[4], float acc2[4]) {
    uint4 x[4];   // x is L1-resident; loaded here, its latency hides behind the first word's decode
    load_x(xrow, st, lane, x);
    if (QT == HARP_QTYPE_E8P2 || QT == HARP_QTYPE_RVQ3 || QT == HARP_QTYPE_RVQ4) {
        e8p_mma(c.w0, x, s_tab, acc0, acc2);
        if (QT == HARP_QTYPE_RVQ4) e8p_mma(c.w1, x, s_tab, acc1, acc1);
        if (QT == HARP_QTYPE_RVQ3) {
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const uint32_t codes = j < 2 ? c.w1[0] : c.w1[1];
                const uint4 vg = s_e81b[(codes >> (16 * (j & 1))) & 255u];     // unit 2j   (row g)
                const uint4 vh = s_e81b[(codes >> (16 * (j & 1) + 8)) & 255u]; // unit 2j+1 (row g+8)
                mma16816(acc1, vg.x, vh.x, vg.y, vh.y, x[j].x, x[j].y);
                mma16816(acc1, vg.z, vh.z, vg.w, vh.w, x[j].z, x[j].w);
            }
        }
    } else if (QT == HARP_QTYPE_F16) {
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const uint32_t *ug = c.w0 + 4 * (2 * j), *uh = c.w0 + 4 * (2 * j + 1);
            mma16816(acc0, ug[0], uh[0], ug[1], uh[1], x[j].x, x[j].y);
            mma16816(acc0, ug[2], uh[2], ug[3], uh[3], x[j].z, x[j].w);
        }
    } else {
        const __half2 z0 = __float2half2_rn(1024.0f + (float)(c.z & 255u)), z1 = __float2half2_rn(1024.0f + (float)(c.z >> 8));
        float ta[4] = {0, 0, 0, 0}, tb[4] = {0, 0, 0, 0};   // two chains (even / odd unit pairs)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int kg = 2 * j, kh = 2 * j + 1;
            float *tmp = (j & 1) ? tb : ta;
            mma16816(tmp, hsub2u(int_pair<QT>(c, kg, 0), z0), hsub2u(int_pair<QT>(c, kh, 0), z1),
                     hsub2u(int_pair<QT>(c, kg, 1), z0), hsub2u(int_pair<QT>(c, kh, 1), z1), x[j].x, x[j].y);
            mma16816(tmp, hsub2u(int_pair<QT>(c, kg, 2), z0), hsub2u(int_pair<QT>(c, kh, 2), z1),
                     hsub2u(int_pair<QT>(c, kg, 3), z0), hsub2u(int_pair<QT>(c, kh, 3), z1), x[j].z, x[j].w);
        }
        acc0[0] = fmaf(c.sc.x, ta[0] + tb[0], acc0[0]);
        acc0[1] = fmaf(c.sc.x, ta[1] + tb[1], acc0[1]);
        acc0[2] = fmaf(c.sc.y, ta[2] + tb[2], acc0[2]);
        acc0[3] = fmaf(c.sc.y, ta[3] + tb[3], acc0[3]);
    }
}

// Occupancy hides the decode chains: 32 warps per SM for the quantized formats (64 registers), 16
// for F16 and INT8 (their 128- and 64-byte chunks need the registers; they are bandwidth-bound).
template <int QT, int WARPS>
__global__ void __launch_bounds__(WARPS * 32, (QT == HARP_QTYPE_F16 || QT == HARP_QTYPE_INT8 ? 16 : 32) / WARPS) gemv_kernel(GemvArgs a) {
    __shared__ uint32_t s_tab[(QT == HARP_QTYPE_E8P2 || QT == HARP_QTYPE_RVQ3 || QT == HARP_QTYPE_RVQ4) ? DL_E8P_TABLE : 1];
    __shared__ uint4 s_e81b[QT == HARP_QTYPE_RVQ3 ? 256 : 1];
    __shared__ float s_red[WARPS][16][9];
    constexpr int D = Fmt<QT>::D;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2;
    const int rt = blockIdx.x;
    // this warp's super-tiles: st = warp + k·WARPS, k < K; the first D are requested before anything else
    const int K = warp < a.nst ? (a.nst - warp + WARPS - 1) / WARPS : 0;
    Chunk<QT> w[D];
#pragma unroll
    for (int d = 0; d < D; d++)
        if (d < K) load_w<QT>(a, rt, warp + d * WARPS, lane, w[d]);
    const __half *xrow = a.x + (size_t)min(g, a.B - 1) * a.ldx;
    if (QT == HARP_QTYPE_E8P2 || QT == HARP_QTYPE_RVQ3 || QT == HARP_QTYPE_RVQ4)
        for (int i = threadIdx.x; i < DL_E8P_TABLE; i += blockDim.x) s_tab[i] = g_e8p_tab[i];
    if (QT == HARP_QTYPE_RVQ3)
        for (int i = threadIdx.x; i < 256; i += blockDim.x) s_e81b[i] = g_e81b[i];
    __syncthreads();
    // weights and tables are never written during a token: only now wait for the kernel that makes x
    pdl_wait();
    pdl_trigger();
    float acc0[4] = {0, 0, 0, 0}, acc1[4] = {0, 0, 0, 0}, acc2[4] = {0, 0, 0, 0};
    for (int kb = 0; kb < K; kb += D) {
#pragma unroll
        for (int d = 0; d < D; d++) {
            const int k = kb + d;
            if (k >= K) break;
            tile_mma<QT>(w[d], xrow, warp + k * WARPS, lane, s_tab, s_e81b, acc0, acc1, acc2);
            if (k + D < K) load_w<QT>(a, rt, warp + (k + D) * WARPS, lane, w[d]);
        }
    }
    float r[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        acc0[i] += acc2[i];
        r[i] = acc0[i];
        if (QT == HARP_QTYPE_E8P2) r[i] = a.s0 * acc0[i];
        if (QT == HARP_QTYPE_RVQ3 || QT == HARP_QTYPE_RVQ4) r[i] = a.s0 * acc0[i] + a.s1 * acc1[i];
    }
    tile_reduce<WARPS>(a, s_red, rt, r);
}

// fp16 rows [r0, r1) of W̃ (the values the GEMV multiplies with), dense [r1−r0][ld]; one warp per tile.
template <int QT>
__global__ void dequant_kernel(GemvArgs a, int32_t rt0, int32_t r0, int32_t r1, __half *out, int ld) {
    __shared__ uint32_t s_tab[DL_E8P_TABLE];
    __shared__ uint4 s_e81b[256];
    for (int i = threadIdx.x; i < DL_E8P_TABLE; i += blockDim.x) s_tab[i] = g_e8p_tab[i];
    for (int i = threadIdx.x; i < 256; i += blockDim.x) s_e81b[i] = g_e81b[i];
    __syncthreads();
    const int lane = threadIdx.x & 31, g = lane >> 2;
    const int rt = rt0 + blockIdx.y, st = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (st >= a.nst) return;
    Chunk<QT> c;
    load_w<QT>(a, rt, st, lane, c);
    uint32_t pr[8][4];                          // pr[k][p] = fp16 pair p of unit k
    if (QT == HARP_QTYPE_E8P2 || QT == HARP_QTYPE_RVQ3 || QT == HARP_QTYPE_RVQ4) {
        uint32_t o[16], o1[16];
#pragma unroll
        for (int wd = 0; wd < 2; wd++) {
            dl_e8p_word(c.w0[2 * wd], c.w0[2 * wd + 1], s_tab, o);
            if (QT == HARP_QTYPE_RVQ4) dl_e8p_word(c.w1[2 * wd], c.w1[2 * wd + 1], s_tab, o1);
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int p = 0; p < 4; p++) {
                    const int k = 4 * wd + i;
                    float2 v = __half22float2(*reinterpret_cast<__half2 *>(&o[4 * i + p]));
                    v.x = a.s0 * (v.x - DL_E8P_BIAS), v.y = a.s0 * (v.y - DL_E8P_BIAS);
                    if (QT == HARP_QTYPE_RVQ4) {
                        const float2 u = __half22float2(*reinterpret_cast<__half2 *>(&o1[4 * i + p]));
                        v.x += a.s1 * (u.x - DL_E8P_BIAS);
                        v.y += a.s1 * (u.y - DL_E8P_BIAS);
                    }
                    if (QT == HARP_QTYPE_RVQ3) {
                        const uint32_t code = (c.w1[k >> 2] >> (8 * (k & 3))) & 255u;
                        const uint4 e = s_e81b[code];
                        const uint32_t ep = p == 0 ? e.x : p == 1 ? e.y : p == 2 ? e.z : e.w;
                        const float2 u = __half22float2(*reinterpret_cast<const __half2 *>(&ep));
                        v.x += a.s1 * u.x, v.y += a.s1 * u.y;
                    }
                    const __half2 hv = __floats2half2_rn(v.x, v.y);
                    pr[k][p] = *reinterpret_cast<const uint32_t *>(&hv);
                }
        }
    } else if (QT == HARP_QTYPE_F16) {
#pragma unroll
        for (int k = 0; k < 8; k++)
#pragma unroll
            for (int p = 0; p < 4; p++) pr[k][p] = c.w0[4 * k + p];
    } else {
        const dl_meta_tile *mt = a.meta + (size_t)rt * a.nst + st;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            const int h = k & 1;
            const float sc = mt->sc[g][h], z = 1024.0f + mt->z[g][h];
#pragma unroll
            for (int p = 0; p < 4; p++) {
                uint32_t q = int_pair<QT>(c, k, p);
                const float2 v = __half22float2(*reinterpret_cast<__half2 *>(&q));
                const __half2 hv = __floats2half2_rn(sc * (v.x - z), sc * (v.y - z));
                pr[k][p] = *reinterpret_cast<const uint32_t *>(&hv);
            }
        }
    }
#pragma unroll
    for (int k = 0; k < 8; k++) {
        const int32_t r = dl_unit_row(rt, lane, k), col = dl_unit_col(st, lane, k);
        if (r < r0 || r >= r1) continue;
        uint4 v = make_uint4(pr[k][0], pr[k][1], pr[k][2], pr[k][3]);
        *reinterpret_cast<uint4 *>(out + (size_t)(r - r0) * ld + col) = v;
    }
}

__device__ __forceinline__ uint32_t mix32(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return (uint32_t)x;
}

// kind 0: any bits; 1: fp16 in ±[1/16, 1/8); 2: meta tiles (bits in `arg`).
__global__ void fill_kernel(uint32_t *p, size_t words, uint64_t seed, int kind, int arg) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < words; i += (size_t)gridDim.x * blockDim.x) {
        uint32_t r = mix32(seed * 0x9E3779B97F4A7C15ull + i);
        if (kind == 1) r = (r & 0x83FF83FFu) | 0x2C002C00u;
        if (kind == 2) {
            const size_t w = i % (sizeof(dl_meta_tile) / 4);
            if (w < 16) {
                const float f = 0.002f + 0.01f * (float)(r >> 8) * (1.0f / 16777216.0f);
                r = __float_as_uint(f);
            } else {
                r &= 0x01010101u * ((1u << arg) - 1u);
            }
        }
        p[i] = r;
    }
}

harp_status cuda_fail(const char *what, cudaError_t e) {
    return harp_err(HARP_ERR_NO_DEVICE, "cuda decode: %s: %s", what, cudaGetErrorString(e));
}

harp_status launched(const char *what) {
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? HARP_OK : cuda_fail(what, e);
}

harp_status ensure_tables() {
    static int done = 0;
    if (done) return HARP_OK;
    cudaError_t e = cudaMemcpyToSymbol(g_e8p_tab, dec_e8p_table(), sizeof(uint32_t) * DL_E8P_TABLE);
    if (e == cudaSuccess) e = cudaMemcpyToSymbol(g_e81b, dec_e81b_table_f16(), 256 * 16);
    if (e != cudaSuccess) return cuda_fail("codebook tables", e);
    done = 1;
    return HARP_OK;
}

int sm_count() {
    static int n = 0;
    if (!n) {
        int dev = 0, v = 0;
        if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || v < 1) {
            cudaGetLastError();
            v = 132;
        }
        n = v;
    }
    return n;
}

template <int WARPS> void launch_gemv(int qt, const GemvArgs &a, int grid, cudaStream_t s) {
    switch (qt) {
    case HARP_QTYPE_F16: pdl_launch(gemv_kernel<HARP_QTYPE_F16, WARPS>, grid, WARPS * 32, 0, s, a); break;
    case HARP_QTYPE_INT2: pdl_launch(gemv_kernel<HARP_QTYPE_INT2, WARPS>, grid, WARPS * 32, 0, s, a); break;
    case HARP_QTYPE_INT3: pdl_launch(gemv_kernel<HARP_QTYPE_INT3, WARPS>, grid, WARPS * 32, 0, s, a); break;
    case HARP_QTYPE_INT4: pdl_launch(gemv_kernel<HARP_QTYPE_INT4, WARPS>, grid, WARPS * 32, 0, s, a); break;
    case HARP_QTYPE_INT8: pdl_launch(gemv_kernel<HARP_QTYPE_INT8, WARPS>, grid, WARPS * 32, 0, s, a); break;
    case HARP_QTYPE_E8P2: pdl_launch(gemv_kernel<HARP_QTYPE_E8P2, WARPS>, grid, WARPS * 32, 0, s, a); break;
    case HARP_QTYPE_RVQ3: pdl_launch(gemv_kernel<HARP_QTYPE_RVQ3, WARPS>, grid, WARPS * 32, 0, s, a); break;
    default: pdl_launch(gemv_kernel<HARP_QTYPE_RVQ4, WARPS>, grid, WARPS * 32, 0, s, a); break;
    }
}

}  // namespace

extern "C" int dec_cuda_available(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n > 0;
}

extern "C" harp_status dec_weights_upload(const dec_weights *host, dec_weights *dev) {
    HARP_TRY(ensure_tables());
    *dev = *host;
    dev->plane[0] = dev->plane[1] = NULL;
    dev->meta = NULL;
    dev->on_device = 1;
    dev->tab = NULL;
    void **dst[4] = {&dev->plane[0], &dev->plane[1], (void **)&dev->meta, (void **)&dev->tab};
    const void *src[4] = {host->plane[0], host->plane[1], host->meta, host->tab};
    const size_t bytes[4] = {host->plane_bytes[0], host->plane_bytes[1], host->meta_bytes, host->tab_bytes};
    for (int i = 0; i < 4; i++) {
        if (!bytes[i]) continue;
        cudaError_t e = cudaMalloc(dst[i], bytes[i]);
        if (e == cudaSuccess) e = cudaMemcpy(*dst[i], src[i], bytes[i], cudaMemcpyHostToDevice);
        if (e != cudaSuccess) {
            dec_weights_free(dev);
            return e == cudaErrorMemoryAllocation ? harp_err(HARP_ERR_OOM, "cuda decode: no device memory for %zu bytes", bytes[i])
                                                  : cuda_fail("weight upload", e);
        }
    }
    return HARP_OK;
}

extern "C" harp_status dec_weights_random(int qtype, int32_t m, int32_t n, float scale0, float scale1, uint64_t seed,
                                          dec_weights *dev) {
    HARP_TRY(ensure_tables());
    HARP_TRY(dec_layout_shape(qtype, m, n, dev));
    dev->scale0 = scale0;
    dev->scale1 = scale1;
    dev->on_device = 1;
    void **dst[4] = {&dev->plane[0], &dev->plane[1], (void **)&dev->meta, (void **)&dev->tab};
    const size_t bytes[4] = {dev->plane_bytes[0], dev->plane_bytes[1], dev->meta_bytes, dev->tab_bytes};
    for (int i = 0; i < 4; i++) {
        if (!bytes[i]) continue;
        cudaError_t e = cudaMalloc(dst[i], bytes[i]);
        if (e != cudaSuccess) {
            dec_weights_free(dev);
            return harp_err(HARP_ERR_OOM, "cuda decode: no device memory for %zu bytes", bytes[i]);
        }
        // 3: the HYB table; LDP2's plane 1: its levels (fp16 values, any order: the speed does not depend on it)
        const int kind = i == 2 ? 2 : (qtype == HARP_QTYPE_F16 || i == 3 || (qtype == HARP_QTYPE_LDP2 && i == 1) ? 1 : 0);
        fill_kernel<<<1024, 256>>>((uint32_t *)*dst[i], bytes[i] / 4, seed * 3 + (uint64_t)i, kind, dl_int_bits(qtype));
        HARP_TRY(launched("random fill"));
    }
    return HARP_OK;
}

extern "C" int dec_gemv_warps(const dec_weights *w, int want) {
    if (dl_qtip_bits(w->qtype)) return want == 4 || want == 16 ? want : 8;
    if (w->qtype == HARP_QTYPE_LDP2) return want == 8 || want == 16 ? want : w->nrt <= 512 ? 16 : 8;   // dec_ldp_gemv's rule
    if (want == 4 || want == 8 || want == 16) return want;
    // 16 k-split warps when the row tiles fit one wave of 16-warp CTAs and each warp still gets ≥ 4
    // column super-tiles: the down projection of a quantized 7B (4 096 × 11 008: 256 tiles, which as
    // 8-warp CTAs leave half the warp slots empty) went 8.74 → 8.35 µs, while 4 096 × 4 096 (2
    // super-tiles a warp) went 3.91 → 4.25 µs (E8P2, H100, `harp bench gemv --gpu --variants`); 8 otherwise
    const int per_sm16 = w->qtype == HARP_QTYPE_F16 || w->qtype == HARP_QTYPE_INT8 ? 1 : 2;   // 16-warp CTAs per SM
    return w->nrt <= per_sm16 * sm_count() && w->nst >= 64 ? 16 : 8;
}

// 16 by default: with the one-read table fill, 16 copies beat 8 at all five Llama-2-7B shapes (8 warps,
// 4 096 × 11 008: 13.41 → 12.06 µs) and in the whole token (QTIP2 5.10 → 4.89 ms; H100, tenth session)
static int g_hyb_copies = 16;
extern "C" void dec_set_hyb_copies(int copies) {
    if (copies == 8 || copies == 16 || copies == 32) __atomic_store_n(&g_hyb_copies, copies, __ATOMIC_RELAXED);
}
extern "C" int dec_hyb_copies(void) { return __atomic_load_n(&g_hyb_copies, __ATOMIC_RELAXED); }

extern "C" harp_status dec_gemv(const dec_weights *w, const void *x, int ldx, int B, float *y, int ldy,
                                const dec_gemv_opts *opts, dec_stream stream) {
    if (B < 1 || B > 8) return harp_err(HARP_ERR_INVALID_ARG, "cuda decode gemv: %d rows (1..8 supported)", B);
    if (ldx < dec_npad(w->n) || ldx % 8 || ldy < w->m)
        return harp_err(HARP_ERR_SHAPE, "cuda decode gemv: ldx %d / ldy %d too small for %dx%d", ldx, ldy, (int)w->m, (int)w->n);
    GemvArgs a = args_of(w);
    a.x = (const __half *)x;
    a.ldx = ldx;
    a.B = B;
    a.y = y;
    a.ldy = ldy;
    a.fold = opts ? opts->fold : 0;
    a.accumulate = opts ? opts->accumulate : 0;
    a.epi = opts ? opts->epilogue : 0;
    a.oscale = opts && opts->epilogue ? opts->scale : 1.0f;
    a.post = opts && opts->epilogue ? opts->post : NULL;
    if (a.fold && 2 * a.fold != B)
        return harp_err(HARP_ERR_INVALID_ARG, "cuda decode gemv: fold %d of %d rows (must be half)", a.fold, B);
    const int warps = dec_gemv_warps(w, opts ? opts->warps : 0);
    if (w->qtype == HARP_QTYPE_LDP2) {   // its own kernel (dec_ldp.cu): fp16 activations, none of the epilogue options
        if (a.fold || a.accumulate || a.epi)
            return harp_err(HARP_ERR_INVALID_ARG, "cuda decode gemv: ldp2 takes no fold, accumulate or epilogue");
        dec_ldp_dev d;
        HARP_TRY(dec_ldp_view(w, &d));
        const dec_ldp_act x16 = {NULL, NULL, (const uint16_t *)x};
        dec_ldp_opts o = {0, warps, 0};
        if (ldx != d.L.npad) return harp_err(HARP_ERR_SHAPE, "cuda decode gemv: ldp2 reads rows of %d activations (ldx %d)", d.L.npad, ldx);
        return dec_ldp_gemv(&d, &x16, B, y, ldy, &o, stream);
    }
    if (dl_qtip_bits(w->qtype)) return gemv_qtip(w, a, warps, opts && opts->hyb_copies ? opts->hyb_copies : dec_hyb_copies(), (cudaStream_t)stream);
    HARP_TRY(ensure_tables());
    if (warps == 4) launch_gemv<4>(w->qtype, a, w->nrt, (cudaStream_t)stream);
    else if (warps == 16) launch_gemv<16>(w->qtype, a, w->nrt, (cudaStream_t)stream);
    else launch_gemv<8>(w->qtype, a, w->nrt, (cudaStream_t)stream);
    return launched("gemv");
}

extern "C" harp_status dec_dequant_f16(const dec_weights *w, int32_t r0, int32_t r1, void *out, int ld, dec_stream stream) {
    if (r0 < 0 || r1 > w->m || r0 >= r1 || ld < dec_npad(w->n) || ld % 8)
        return harp_err(HARP_ERR_SHAPE, "cuda decode dequant: rows [%d, %d) of %d, ld %d", (int)r0, (int)r1, (int)w->m, ld);
    if (w->qtype == HARP_QTYPE_LDP2) {
        dec_ldp_dev d;
        HARP_TRY(dec_ldp_view(w, &d));
        return dec_ldp_dequant_f16(&d, r0, r1, out, ld, stream);
    }
    GemvArgs a = args_of(w);
    if (dl_qtip_bits(w->qtype)) return dequant_qtip(w, a, r0, r1, out, ld, (cudaStream_t)stream);
    HARP_TRY(ensure_tables());
    const int rt0 = r0 / DL_TILE_ROWS, rt1 = (r1 + DL_TILE_ROWS - 1) / DL_TILE_ROWS;
    const dim3 grid((w->nst + 3) / 4, rt1 - rt0);
    __half *o = (__half *)out;
    cudaStream_t s = (cudaStream_t)stream;
    switch (w->qtype) {
    case HARP_QTYPE_F16: dequant_kernel<HARP_QTYPE_F16><<<grid, 128, 0, s>>>(a, rt0, r0, r1, o, ld); break;
    case HARP_QTYPE_INT2: dequant_kernel<HARP_QTYPE_INT2><<<grid, 128, 0, s>>>(a, rt0, r0, r1, o, ld); break;
    case HARP_QTYPE_INT3: dequant_kernel<HARP_QTYPE_INT3><<<grid, 128, 0, s>>>(a, rt0, r0, r1, o, ld); break;
    case HARP_QTYPE_INT4: dequant_kernel<HARP_QTYPE_INT4><<<grid, 128, 0, s>>>(a, rt0, r0, r1, o, ld); break;
    case HARP_QTYPE_INT8: dequant_kernel<HARP_QTYPE_INT8><<<grid, 128, 0, s>>>(a, rt0, r0, r1, o, ld); break;
    case HARP_QTYPE_E8P2: dequant_kernel<HARP_QTYPE_E8P2><<<grid, 128, 0, s>>>(a, rt0, r0, r1, o, ld); break;
    case HARP_QTYPE_RVQ3: dequant_kernel<HARP_QTYPE_RVQ3><<<grid, 128, 0, s>>>(a, rt0, r0, r1, o, ld); break;
    default: dequant_kernel<HARP_QTYPE_RVQ4><<<grid, 128, 0, s>>>(a, rt0, r0, r1, o, ld); break;
    }
    return launched("dequant");
}

extern "C" harp_status dec_gemm_f16(void *blas, const void *W, int ldw, int m, int k, const void *X, int ldx, int rows, float *Y,
                                    int ldy, float beta, dec_stream stream) {
    cublasHandle_t h = (cublasHandle_t)blas;
    if (harp_cublas_set_stream(h, (cudaStream_t)stream) != CUBLAS_STATUS_SUCCESS)
        return harp_err(HARP_ERR_NO_DEVICE, "cuda prefill: cublasSetStream failed");
    const float one = 1.0f;
    // row-major Y = X · Wᵀ  ⇔  column-major Yᵀ = W · Xᵀ (W is k-major rows)
    const cublasStatus_t st = harp_cublas_gemm_ex(h, CUBLAS_OP_T, CUBLAS_OP_N, m, rows, k, &one, W, CUDA_R_16F, ldw, X, CUDA_R_16F, ldx,
                                                  &beta, Y, CUDA_R_32F, ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) return harp_err(HARP_ERR_NO_DEVICE, "cuda prefill: cublasGemmEx failed (%d)", (int)st);
    return HARP_OK;
}

extern "C" harp_status dec_prefill_gemm(void *blas, const dec_weights *w, const void *X, int ldx, int rows, float *Y, int ldy,
                                        void *workspace, int tile_rows, dec_stream stream) {
    const int npad = dec_npad(w->n);
    if (tile_rows < DL_TILE_ROWS || tile_rows % DL_TILE_ROWS || ldx < npad || ldy < w->m || rows < 1)
        return harp_err(HARP_ERR_SHAPE, "cuda prefill: tile_rows %d, ldx %d, ldy %d for %dx%d", tile_rows, ldx, ldy, (int)w->m,
                        (int)w->n);
    for (int32_t r0 = 0; r0 < w->m; r0 += tile_rows) {
        const int32_t r1 = r0 + tile_rows < w->m ? r0 + tile_rows : w->m;
        HARP_TRY(dec_dequant_f16(w, r0, r1, workspace, npad, stream));
        HARP_TRY(dec_gemm_f16(blas, workspace, npad, r1 - r0, npad, X, ldx, rows, Y + r0, ldy, 0.0f, stream));
    }
    return HARP_OK;
}
