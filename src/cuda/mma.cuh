// The tensor-core step D = A·B + D with mma.m16n8k16: fp16 A 16×16 from four fragment registers, fp16
// B 16×8 from two, fp32 accumulators (the decode GEMVs, dec_gemv.cuh; the prefill attention,
// attn_prefill.cu). Fragment layout, lane = 4g + t: A rows g and g + 8, columns 2t, 2t + 1 (+ 8); B
// columns g, rows 2t, 2t + 1 (+ 8); C rows g and g + 8, columns 2t, 2t + 1.
#ifndef HARP_CUDA_MMA_CUH
#define HARP_CUDA_MMA_CUH

#include <stdint.h>

static __device__ __forceinline__ void mma16816(float c[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                                uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

static __device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    mma16816(c, a[0], a[1], a[2], a[3], b0, b1);
}

#endif
