// RoPE of one pair at position p: the one expression the library backend's kernels (cuda_kernels.cu)
// and the decode engine's (dec_attn.cu) share, with the roundings written out (no contraction left to
// the compiler), so a pair rotated by either gives the same bits.
#ifndef HARP_CUDA_ROPE_CUH
#define HARP_CUDA_ROPE_CUH

__device__ __forceinline__ void rope_rotate(float x0, float x1, float p, float inv_freq, float *y0, float *y1) {
    const float a = p * inv_freq, cs = cosf(a), sn = sinf(a);
    *y0 = __fmaf_rn(x0, cs, -__fmul_rn(x1, sn));
    *y1 = __fmaf_rn(x1, cs, __fmul_rn(x0, sn));
}

#endif
