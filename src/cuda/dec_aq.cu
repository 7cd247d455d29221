// The activation / KV quantizer of quant/aq.h on the device (decode.h, "W/A/KV on the GPU"): any
// format the CPU takes (2–8 bits, symmetric or asymmetric, per row or per group, clip, fp32 or fp16
// scales), the same planes, bit for bit — what a backend's AQUANT op, typed KV store and the
// dequantization of cache rows for attention need. One warp per (row, group): range by shuffles,
// parameters with the reference's operations (aq_ref.c: ref_fit / ref_code, IEEE division, rint),
// codes packed eight at a time (eight b-bit codes are exactly b bytes of the little-endian stream).
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <float.h>
#include <stdint.h>

extern "C" {
#include "core/core.h"
#include "cuda/decode.h"
#include "quant/aq.h"
}
#include "cuda/aq_code.cuh"

namespace {

constexpr int kWarps = 8;

enum Mode { kEncode = 0, kDecode = 1, kFake = 2 };

struct Fmt {
    int bits, sym, scale_f16, g, ng, gb;   // gb: code bytes per group
    float clip;
};

harp_status launched(const char *what) {
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "cuda quantizer: %s: %s", what, cudaGetErrorString(e));
}

struct Params {
    float s;
    int z, maxq;
    uint16_t h;
};

// aq_ref.c ref_fit on the group's min(min x, 0), max(max x, 0).
__device__ Params fit(const Fmt &f, float xmin, float xmax) {
    Params p;
    xmin = __fmul_rn(xmin, f.clip), xmax = __fmul_rn(xmax, f.clip);
    float s;
    if (f.sym) {
        p.maxq = (1 << (f.bits - 1)) - 1;
        const float a = fmaxf(-xmin, xmax);
        s = a == 0.0f ? 1.0f : __fdiv_rn(a, (float)p.maxq);
    } else {
        p.maxq = (1 << f.bits) - 1;
        if (xmin == 0.0f && xmax == 0.0f) xmin = -1.0f, xmax = 1.0f;
        s = __fdiv_rn(__fsub_rn(xmax, xmin), (float)p.maxq);
    }
    if (!(s >= FLT_MIN)) s = FLT_MIN;
    p.h = 0;
    if (f.scale_f16) {
        __half_raw h = __half_raw(__float2half_rn(s));
        if ((h.x & 0x7FFF) == 0) h.x = 1;              // smallest subnormal
        if ((h.x & 0x7FFF) >= 0x7C00) h.x = 0x7BFF;    // 65504
        p.h = h.x;
        s = __half2float(__half(h));
    }
    p.s = s, p.z = 0;
    if (!f.sym) p.z = (int)fminf(fmaxf(rintf(__fdiv_rn(-xmin, s)), 0.0f), (float)p.maxq);
    return p;
}

// Stored code of x (offset by z when asymmetric; two's complement bits when symmetric).
__device__ __forceinline__ int code_of(const Fmt &f, const Params &p, float x) {
    const float lo = f.sym ? (float)(-p.maxq - 1) : 0.0f;
    return (int)fminf(fmaxf(__fadd_rn(rintf(__fdiv_rn(x, p.s)), (float)p.z), lo), (float)p.maxq);
}

// dst (encode only, may be NULL): the plane row each input row goes to (a KV cache's rows, read on the
// device so that a decode step's store is the same launch at every step).
template <int M>
__global__ void __launch_bounds__(32 * kWarps) aq_kernel(Fmt f, const float *X, int ldx, float *Y, int ldy, int rows, uint8_t *codes,
                                                         float *scale, uint16_t *scale16, uint8_t *zero, const int32_t *dst) {
    const int task = blockIdx.x * kWarps + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (task >= rows * f.ng) return;
    const int r = task / f.ng, G = task % f.ng;
    const size_t pt = dst ? (size_t)dst[r] * f.ng + G : (size_t)task;   // the task's group in the planes
    uint8_t *c = codes ? codes + pt * f.gb : nullptr;
    Params p;
    if (M == kDecode) {
        p.s = f.scale_f16 ? __half2float(__ushort_as_half(scale16[pt])) : scale[pt];
        p.z = f.sym ? 0 : zero[pt];
        float *y = Y + (size_t)r * ldy + (size_t)G * f.g;
        for (int i = lane; i < f.g; i += 32) y[i] = p.s * (float)(aq_code_get(c, i, f.bits, f.sym) - p.z);
        return;
    }
    const float *x = X + (size_t)r * ldx + (size_t)G * f.g;
    float mn = 0.0f, mx = 0.0f;
    for (int i = lane; i < f.g; i += 32) mn = fminf(mn, x[i]), mx = fmaxf(mx, x[i]);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, o)), mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    p = fit(f, mn, mx);
    if (M == kFake) {   // in place: each lane reads and writes only its own elements
        float *y = Y + (size_t)r * ldy + (size_t)G * f.g;
        for (int i = lane; i < f.g; i += 32) y[i] = p.s * (float)(code_of(f, p, x[i]) - p.z);
        return;
    }
    const unsigned mask = (1u << f.bits) - 1;
    for (int u = lane; u < (f.g + 7) / 8; u += 32) {   // eight codes = f.bits bytes
        uint64_t acc = 0;
        for (int e = 0; e < 8; e++) {
            const int i = 8 * u + e;
            if (i < f.g) acc |= (uint64_t)((unsigned)code_of(f, p, x[i]) & mask) << (e * f.bits);
        }
        for (int bt = 0; bt < f.bits && f.bits * u + bt < f.gb; bt++) c[f.bits * u + bt] = (uint8_t)(acc >> (8 * bt));
    }
    if (lane == 0) {
        if (f.scale_f16) scale16[pt] = p.h;
        else scale[pt] = p.s;
        if (!f.sym) zero[pt] = (uint8_t)p.z;
    }
}

// dec_aq_int8: one warp per row of a whole-row format; the codes of aq_kernel<kEncode>, offset into int8.
__global__ void __launch_bounds__(32 * kWarps) aq_int8_kernel(Fmt f, const float *X, int ldx, int rows, int8_t *Q, int ldq, float *sa,
                                                              int32_t *corr) {
    const int r = blockIdx.x * kWarps + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (r >= rows) return;
    const float *x = X + (size_t)r * ldx;
    float mn = 0.0f, mx = 0.0f;
    for (int i = lane; i < f.g; i += 32) mn = fminf(mn, x[i]), mx = fmaxf(mx, x[i]);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, o)), mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    const Params p = fit(f, mn, mx);
    const int off = DEC_AQ_INT8_OFFSET(f.bits, f.sym, p.z);
    int8_t *q = Q + (size_t)r * ldq;
    for (int i = lane; i < ldq; i += 32) q[i] = (int8_t)(i < f.g ? code_of(f, p, x[i]) - off : 0);
    if (lane == 0) {
        sa[r] = p.s;
        if (corr) corr[r] = off - p.z;
    }
}

harp_status run(const harp_aq_fmt *hf, const float *X, int ldx, float *Y, int ldy, int rows, int n, const harp_aq_planes *pl,
                const int32_t *dst, int mode, dec_stream stream) {
    HARP_TRY(harp_aq_check(hf, n, "cuda quantizer"));
    if (rows < 0 || (mode != kDecode && ldx < n) || (mode != kEncode && ldy < n))
        return harp_err(HARP_ERR_INVALID_ARG, "cuda quantizer: rows %d, n %d, ldx %d, ldy %d", rows, n, ldx, ldy);
    if (mode != kFake && (!pl || !pl->codes || (hf->scale_f16 ? !pl->scale16 : !pl->scale) || (!hf->sym && !pl->zero)))
        return harp_err(HARP_ERR_INVALID_ARG, "cuda quantizer: missing planes for this format");
    if (!rows) return HARP_OK;
    Fmt f;
    f.bits = hf->bits, f.sym = hf->sym, f.scale_f16 = hf->scale_f16, f.clip = hf->clip;
    f.g = (int)(hf->group > 0 ? hf->group : n), f.ng = n / f.g, f.gb = (int)harp_aq_group_bytes(hf, n);
    const int tasks = rows * f.ng, blocks = (tasks + kWarps - 1) / kWarps;
    cudaStream_t st = (cudaStream_t)stream;
    uint8_t *c = pl ? pl->codes : nullptr, *z = pl ? pl->zero : nullptr;
    float *s = pl ? pl->scale : nullptr;
    uint16_t *s16 = pl ? pl->scale16 : nullptr;
    if (mode == kEncode) aq_kernel<kEncode><<<blocks, 32 * kWarps, 0, st>>>(f, X, ldx, nullptr, 0, rows, c, s, s16, z, dst);
    else if (mode == kDecode) aq_kernel<kDecode><<<blocks, 32 * kWarps, 0, st>>>(f, nullptr, 0, Y, ldy, rows, c, s, s16, z, nullptr);
    else aq_kernel<kFake><<<blocks, 32 * kWarps, 0, st>>>(f, X, ldx, Y, ldy, rows, nullptr, nullptr, nullptr, nullptr, nullptr);
    return launched(mode == kEncode ? "quantize" : mode == kDecode ? "dequantize" : "fake quantize");
}

}  // namespace

extern "C" harp_status dec_aq_quantize(const harp_aq_fmt *f, const float *X, int rows, int n, int ldx, const harp_aq_planes *out,
                                       dec_stream stream) {
    return run(f, X, ldx ? ldx : n, nullptr, 0, rows, n, out, nullptr, kEncode, stream);
}

extern "C" harp_status dec_aq_quantize_to(const harp_aq_fmt *f, const float *X, int rows, int n, int ldx, const harp_aq_planes *base,
                                          const int32_t *dst, dec_stream stream) {
    return run(f, X, ldx ? ldx : n, nullptr, 0, rows, n, base, dst, kEncode, stream);
}

extern "C" harp_status dec_aq_dequantize(const harp_aq_fmt *f, const harp_aq_planes *in, int rows, int n, float *Y, int ldy,
                                         dec_stream stream) {
    return run(f, nullptr, 0, Y, ldy ? ldy : n, rows, n, in, nullptr, kDecode, stream);
}

extern "C" harp_status dec_aq_fake(const harp_aq_fmt *f, float *X, int rows, int n, int ldx, dec_stream stream) {
    return run(f, X, ldx ? ldx : n, X, ldx ? ldx : n, rows, n, nullptr, nullptr, kFake, stream);
}

extern "C" harp_status dec_aq_int8(const harp_aq_fmt *f, const float *X, int rows, int k, int ldx, int8_t *Q, int ldq, float *sa,
                                   int32_t *corr, dec_stream stream) {
    HARP_TRY(harp_aq_check(f, k, "cuda int8 activation codes"));
    if ((f->group && f->group != k) || f->scale_f16 || rows < 0 || ldx < k || ldq < k || (!corr && !f->sym && f->bits == 8))
        return harp_err(HARP_ERR_INVALID_ARG, "cuda int8 activation codes: group %lld of %d, fp16 scales %d, ldx %d, ldq %d, corr %s "
                        "(whole rows, fp32 scales; 8-bit asymmetric needs corr)", (long long)f->group, k, f->scale_f16, ldx, ldq,
                        corr ? "given" : "NULL");
    if (!rows) return HARP_OK;
    Fmt g;
    g.bits = f->bits, g.sym = f->sym, g.scale_f16 = 0, g.clip = f->clip, g.g = k, g.ng = 1, g.gb = (int)harp_aq_group_bytes(f, k);
    aq_int8_kernel<<<(rows + kWarps - 1) / kWarps, 32 * kWarps, 0, (cudaStream_t)stream>>>(g, X, ldx, rows, Q, ldq, sa, corr);
    return launched("int8 codes");
}
