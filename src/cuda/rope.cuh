// RoPE of one pair at position p: the one expression the library backend's kernels (cuda_kernels.cu)
// and the decode engine's (dec_attn.cu) share, with the roundings written out (no contraction left to
// the compiler), so a pair rotated by either gives the same bits.
#ifndef HARP_CUDA_ROPE_CUH
#define HARP_CUDA_ROPE_CUH

// The pair by the angle's cosine and sine (rope_angle): kernels that rotate many heads at one position
// compute those once.
__device__ __forceinline__ void rope_apply(float x0, float x1, float cs, float sn, float *y0, float *y1) {
    *y0 = __fmaf_rn(x0, cs, -__fmul_rn(x1, sn));
    *y1 = __fmaf_rn(x1, cs, __fmul_rn(x0, sn));
}

__device__ __forceinline__ void rope_angle(float p, float inv_freq, float *cs, float *sn) {
    const float a = p * inv_freq;
    *cs = cosf(a);
    *sn = sinf(a);
}

__device__ __forceinline__ void rope_rotate(float x0, float x1, float p, float inv_freq, float *y0, float *y1) {
    float cs, sn;
    rope_angle(p, inv_freq, &cs, &sn);
    rope_apply(x0, x1, cs, sn, y0, y1);
}

#endif
