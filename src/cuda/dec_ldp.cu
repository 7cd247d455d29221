// ldp2 decode GEMV (dec_ldp.h): 1–8 activation rows, int4 (W2A4) or fp16 (W2A16) activations.
//
// As dec_gemv.cu: one CTA per 16-row tile, its warps split the 128-column super-tiles (k-split) and
// add their partial sums through shared memory in a fixed order (deterministic, no atomics); each
// lane streams one 16-byte chunk per super-tile (a warp: one coalesced 512-byte run) with a ring of
// 3–4 chunks in flight, all requested before the PDL wait. Decode: per column pair of rows g and
// g+8, one LOP3 (+ one shift) picks the four codes as bytes, one IMAD makes them PRMT selectors and
// two PRMTs read the fp16 pairs of the rows' levels out of their 8-byte pools (low bytes, high bytes)
// — ~1.5 instructions per weight; the shifts as IMAD.HI (FMA pipe) unless ALU, so that the ALU pipe
// carries only LOP3 and PRMT — straight into mma.m16n8k16 A fragments; x is the B fragment (batch
// column = activation row), so 1–8 rows cost one decode. int4 activations (nibbles) become exact fp16
// integers with PRMT + LOP3 + HFMA2 per pair; the per-row scale multiplies the final fp32 sum.
// Staged activations (by default int4 at batch 1; dec_ldp_opts.xs): after the PDL wait the CTA writes
// its B activation rows once into shared memory as fp16 (int4 expanded there, once per CTA instead of
// once per warp and super-tile), and every super-tile's B fragments are 16-byte shared loads.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "core/core.h"
#include "cuda/decode.h"
#include "cuda/dec_ldp.h"
}
#include "cuda/dec_gemv.cuh"
#include "cuda/pdl.cuh"

namespace {

// Warps per CTA (k-split) and super-tiles in flight per warp. A 4096-row matrix has only 256 tiles, so
// 8-warp CTAs leave ~16 warps per SM: 16-warp CTAs (64 registers, depth 3, no spills) double the
// loads in flight there; taller matrices fill the SMs with 8-warp CTAs (80 registers, depth 4).
template <int WARPS> struct Cfg {
    static constexpr int kDepth = WARPS == 16 ? 3 : 4, kMinBlocks = WARPS == 16 ? 2 : 3;
};

// Most bytes of staged activations per CTA (B · npad fp16): 4 rows of 4 096 or 2 of 11 008, with
// room for 2 (16 warps) or 3 (8 warps) CTAs per SM.
constexpr int kXsBytes = 48 * 1024;

struct Args {
    const uint4 *codes, *levels;
    int32_t m, nst, ng, g, npad, B, ldy;
    int32_t gsh;    // ≥ 0: group of super-tile st = st >> gsh (groups of 128·2^gsh, or one group); −1: divide
    uint32_t k30;   // 2^30, at run time: w·k30 >> 32 = w >> 2 stays an IMAD.HI
    const uint8_t *xq;
    const float *xs;
    const __half *x16;
    float *y;
};

struct Slot {
    uint4 c, l;   // codes of the lane, level pools of rows g and g+8
};

__device__ __forceinline__ void load_slot(const Args &a, int rt, int st, int lane, Slot &s) {
    s.c = __ldcs(a.codes + ((size_t)rt * a.nst + st) * 32 + lane);
    const int G = min(a.gsh >= 0 ? st >> a.gsh : (int)((long long)st * DEC_LDP_COLS / a.g), a.ng - 1);
    s.l = __ldg(a.levels + ((size_t)rt * a.ng + G) * 8 + (lane >> 2));
}

// B fragments of super-tile st: columns 8(t + 4j) … +7 of activation row b, j = 0…3.
template <bool A4, bool XS>
__device__ __forceinline__ void load_x(const Args &a, const uint4 *s_x, int b, int st, int t, uint4 x[4]) {
    if (XS) {
        const uint4 *xr = s_x + (size_t)b * (a.npad / 8) + st * 16 + t;
#pragma unroll
        for (int j = 0; j < 4; j++) x[j] = xr[4 * j];
    } else if (A4) {
        const uint32_t *xr = reinterpret_cast<const uint32_t *>(a.xq + (size_t)b * (a.npad / 2)) + st * 16 + t;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const uint32_t w = __ldg(xr + 4 * j);
            x[j] = make_uint4(dec_ldp_a4_pair(w, 0), dec_ldp_a4_pair(w, 1), dec_ldp_a4_pair(w, 2), dec_ldp_a4_pair(w, 3));
        }
    } else {
        const uint4 *xr = reinterpret_cast<const uint4 *>(a.x16 + (size_t)b * a.npad + (size_t)st * DEC_LDP_COLS) + t;
#pragma unroll
        for (int j = 0; j < 4; j++) x[j] = __ldg(xr + 4 * j);
    }
}

template <bool ALU>
__device__ __forceinline__ void tile_mma(const Slot &s, const uint4 x[4], uint32_t k30, float acc0[4], float acc1[4]) {
    const uint32_t w[4] = {s.c.x, s.c.y, s.c.z, s.c.w}, pool[4] = {s.l.x, s.l.y, s.l.z, s.l.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
        uint32_t ag[4], ah[4], ws = w[j];   // fp16 pairs (columns 2i, 2i+1) of rows g and g+8
#pragma unroll
        for (int i = 0; i < 4; i++) {
            if (i) ws = ALU ? w[j] >> (2 * i) : dec_ldp_umulhi(ws, k30);
            dec_ldp_pair(ws, pool, ALU, &ag[i], &ah[i]);
        }
        float *acc = (j & 1) ? acc1 : acc0;   // two chains: the words' mma do not wait on each other
        mma16816(acc, ag[0], ah[0], ag[1], ah[1], x[j].x, x[j].y);
        mma16816(acc, ag[2], ah[2], ag[3], ah[3], x[j].z, x[j].w);
    }
}

// The B activation rows as fp16 in shared memory, in the global fp16 layout (row b: npad/8 uint4).
template <bool A4> __device__ __forceinline__ void stage_x(const Args &a, uint4 *s_x) {
    const int w = a.npad / 8;
    for (int b = 0; b < a.B; b++)
        for (int j = threadIdx.x; j < w; j += blockDim.x) {
            if (A4) {
                const uint32_t v = __ldg(reinterpret_cast<const uint32_t *>(a.xq + (size_t)b * (a.npad / 2)) + j);
                s_x[b * w + j] = make_uint4(dec_ldp_a4_pair(v, 0), dec_ldp_a4_pair(v, 1), dec_ldp_a4_pair(v, 2), dec_ldp_a4_pair(v, 3));
            } else
                s_x[b * w + j] = __ldg(reinterpret_cast<const uint4 *>(a.x16 + (size_t)b * a.npad) + j);
        }
    __syncthreads();
}

template <bool A4, bool ALU, int kWarps, bool XS>
__global__ void __launch_bounds__(kWarps * 32, Cfg<kWarps>::kMinBlocks) ldp_kernel(Args a) {
    constexpr int kDepth = Cfg<kWarps>::kDepth;
    __shared__ float s_red[kWarps][16][9];
    extern __shared__ uint4 s_x[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3, rt = blockIdx.x;
    const int K = warp < a.nst ? (a.nst - warp + kWarps - 1) / kWarps : 0;   // super-tiles warp + k·kWarps
    Slot ring[kDepth];
#pragma unroll
    for (int d = 0; d < kDepth; d++)
        if (d < K) load_slot(a, rt, warp + d * kWarps, lane, ring[d]);
    // weights are never written during a token: only now wait for the kernel that makes x
    pdl_wait();
    pdl_trigger();
    if (XS) stage_x<A4>(a, s_x);
    const int b = min(g, a.B - 1);
    float acc0[4] = {0, 0, 0, 0}, acc1[4] = {0, 0, 0, 0};
    for (int kb = 0; kb < K; kb += kDepth) {
#pragma unroll
        for (int d = 0; d < kDepth; d++) {
            const int k = kb + d;
            if (k >= K) break;
            uint4 x[4];
            load_x<A4, XS>(a, s_x, b, warp + k * kWarps, t, x);
            tile_mma<ALU>(ring[d], x, a.k30, acc0, acc1);
            if (k + kDepth < K) load_slot(a, rt, warp + (k + kDepth) * kWarps, lane, ring[d]);
        }
    }
    s_red[warp][g][2 * t] = acc0[0] + acc1[0];
    s_red[warp][g][2 * t + 1] = acc0[1] + acc1[1];
    s_red[warp][g + 8][2 * t] = acc0[2] + acc1[2];
    s_red[warp][g + 8][2 * t + 1] = acc0[3] + acc1[3];
    __syncthreads();
    for (int i = threadIdx.x; i < 16 * a.B; i += blockDim.x) {
        const int row = i & 15, bb = i >> 4, grow = DEC_LDP_ROWS * rt + row;
        float s = 0.0f;
#pragma unroll
        for (int w = 0; w < kWarps; w++) s += s_red[w][row][bb];
        if (grow < a.m) a.y[(size_t)bb * a.ldy + grow] = A4 ? a.xs[bb] * s : s;
    }
}

}  // namespace

namespace {
// One fp16 weight per thread, read from the packed layout as dec_ldp_code_at / dec_ldp_level_at do.
__global__ void ldp_dequant_kernel(const uint8_t *codes, const uint8_t *levels, int nst, int ng, int g, int n, int npad, int32_t r0,
                                   __half *out, int ld) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t r = r0 + blockIdx.y;
    if (c >= npad) return;
    if (c >= n) {   // padding columns: 0 (their group may lie past the row's last)
        out[(size_t)blockIdx.y * ld + c] = __float2half(0.0f);
        return;
    }
    const int rr = (int)(r % DEC_LDP_ROWS), cc = c % DEC_LDP_COLS, u = cc / 8, e = cc % 8;
    const int lane = 4 * (rr % 8) + u % 4, word = u / 4, hi = rr / 8;
    const size_t b = (((size_t)(r / DEC_LDP_ROWS) * nst + (size_t)(c / DEC_LDP_COLS)) * 32 + (size_t)lane) * 16 + 4 * (size_t)word +
                     (size_t)(2 * hi + (e & 1));
    const int k = (codes[b] >> (2 * (e >> 1))) & 3;
    const uint8_t *p = levels + (((size_t)(r / DEC_LDP_ROWS) * ng + (size_t)(c / g)) * 8 + (size_t)(rr % 8)) * 16 + 8 * (size_t)hi;
    out[(size_t)blockIdx.y * ld + c] = __ushort_as_half((unsigned short)(p[k] | p[4 + k] << 8));
}
}  // namespace

extern "C" harp_status dec_ldp_dequant_f16(const dec_ldp_dev *w, int32_t r0, int32_t r1, void *out, int ld, dec_stream stream) {
    const dec_ldp_layout &L = w->L;
    if (r0 < 0 || r1 > L.m || r0 >= r1 || ld < L.npad)
        return harp_err(HARP_ERR_SHAPE, "ldp2 dequant: rows [%d, %d) of %d, ld %d", (int)r0, (int)r1, (int)L.m, ld);
    const dim3 grid((unsigned)((L.npad + 255) / 256), (unsigned)(r1 - r0));
    ldp_dequant_kernel<<<grid, 256, 0, (cudaStream_t)stream>>>(w->codes, w->levels, L.nst, L.ng, L.g, L.n, L.npad, r0, (__half *)out, ld);
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "ldp2 dequant: launch: %s", cudaGetErrorString(e));
}

extern "C" harp_status dec_ldp_view(const dec_weights *w, dec_ldp_dev *d) {
    HARP_TRY(dec_ldp_layout_of(w->m, w->n, w->group, "ldp2 weights", &d->L));
    d->codes = (uint8_t *)w->plane[0], d->levels = (uint8_t *)w->plane[1];
    return HARP_OK;
}

extern "C" harp_status dec_ldp_upload(const dec_ldp_layout *L, const uint8_t *codes, const uint8_t *levels, dec_ldp_dev *d) {
    d->L = *L;
    d->codes = d->levels = nullptr;
    const size_t cb = dec_ldp_code_bytes(L), lb = dec_ldp_level_bytes(L);
    if (cudaMalloc(&d->codes, cb) != cudaSuccess || cudaMalloc(&d->levels, lb) != cudaSuccess ||
        cudaMemcpy(d->codes, codes, cb, cudaMemcpyHostToDevice) != cudaSuccess ||
        cudaMemcpy(d->levels, levels, lb, cudaMemcpyHostToDevice) != cudaSuccess) {
        const cudaError_t e = cudaGetLastError();
        dec_ldp_dev_free(d);
        return harp_err(HARP_ERR_OOM, "ldp2 GEMV: uploading %zu + %zu bytes: %s", cb, lb, cudaGetErrorString(e));
    }
    return HARP_OK;
}

extern "C" void dec_ldp_dev_free(dec_ldp_dev *d) {
    cudaFree(d->codes), cudaFree(d->levels);
    d->codes = d->levels = nullptr;
}

extern "C" harp_status dec_ldp_gemv(const dec_ldp_dev *w, const dec_ldp_act *x, int B, float *y, int ldy, const dec_ldp_opts *o,
                                    dec_stream stream) {
    const dec_ldp_layout &L = w->L;
    if (B < 1 || B > 8 || ldy < L.m || !y || !w->codes || (x->xq ? !x->xs : !x->x16) || (o && o->warps && o->warps != 8 && o->warps != 16))
        return harp_err(HARP_ERR_INVALID_ARG, "ldp2 GEMV: batch %d (1..8), ldy %d (m %d), warps %d (8, 16), or a missing buffer", B, ldy,
                        L.m, o ? o->warps : 0);
    Args a;
    a.codes = reinterpret_cast<const uint4 *>(w->codes);
    a.levels = reinterpret_cast<const uint4 *>(w->levels);
    a.m = L.m, a.nst = L.nst, a.ng = L.ng, a.g = L.g, a.npad = L.npad, a.B = B, a.ldy = ldy, a.k30 = 1u << 30;
    a.xq = x->xq, a.xs = x->xs, a.x16 = reinterpret_cast<const __half *>(x->x16), a.y = y;
    a.gsh = -1;
    if (L.ng == 1) a.gsh = 0;
    else if ((L.g / DEC_LDP_COLS & (L.g / DEC_LDP_COLS - 1)) == 0)
        for (a.gsh = 0; DEC_LDP_COLS << a.gsh != L.g;) a.gsh++;
    cudaStream_t s = (cudaStream_t)stream;
    const int warps = o && o->warps ? o->warps : L.nrt <= 512 ? 16 : 8;
    const size_t xsb = (size_t)B * L.npad * 2;
    // measured (docs/results/rcp.md): the shared copy pays for int4 at batch 1 (the expansion done once
    // per CTA instead of per warp and super-tile) and costs at batch 4 and for fp16 activations
    const int xmode = o ? o->xs : 0;
    const int xs = (xmode > 0 || (xmode == 0 && x->xq && B == 1)) && xsb <= (size_t)kXsBytes;
    using K = void (*)(Args);
    static const K ks[16] = {ldp_kernel<false, false, 8, false>,  ldp_kernel<false, true, 8, false>,  ldp_kernel<true, false, 8, false>,
                             ldp_kernel<true, true, 8, false>,    ldp_kernel<false, false, 16, false>, ldp_kernel<false, true, 16, false>,
                             ldp_kernel<true, false, 16, false>,  ldp_kernel<true, true, 16, false>,  ldp_kernel<false, false, 8, true>,
                             ldp_kernel<false, true, 8, true>,    ldp_kernel<true, false, 8, true>,    ldp_kernel<true, true, 8, true>,
                             ldp_kernel<false, false, 16, true>,  ldp_kernel<false, true, 16, true>,   ldp_kernel<true, false, 16, true>,
                             ldp_kernel<true, true, 16, true>};
    const int ki = xs * 8 + (warps == 16) * 4 + (x->xq != nullptr) * 2 + !(o && o->fma);
    // the staged kernels take up to kXsBytes of dynamic shared memory beside their static reduction
    // buffer (9 KiB at 16 warps): above the 48 KiB a launch gets without opting in (B = 2 at n = 11 008
    // failed with "invalid argument", run 1 of the tenth session); raised once, thread-safe
    static const cudaError_t raised = [&] {
        cudaError_t r = cudaSuccess;
        for (int i = 8; i < 16 && r == cudaSuccess; i++)
            r = cudaFuncSetAttribute(ks[i], cudaFuncAttributeMaxDynamicSharedMemorySize, kXsBytes);
        return r;
    }();
    if (raised != cudaSuccess) return harp_err(HARP_ERR_NO_DEVICE, "ldp2 GEMV: shared memory limit: %s", cudaGetErrorString(raised));
    const cudaError_t e = pdl_launch(ks[ki], dim3(L.nrt), dim3(warps * 32), xs ? xsb : 0, s, a);
    return e == cudaSuccess ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "ldp2 GEMV: launch: %s", cudaGetErrorString(e));
}
