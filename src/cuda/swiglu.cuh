// SwiGLU of one element, silu(gate)·up: the one expression the separate kernel (dec_attn.cu) and the
// SwiGLU-folded input transform (dec_xform.cu) share, so the two paths give the same bits.
#ifndef HARP_CUDA_SWIGLU_CUH
#define HARP_CUDA_SWIGLU_CUH

__device__ __forceinline__ float dec_swiglu1(float gate, float up) { return gate / (1.0f + expf(-gate)) * up; }

#endif
