// What the decode GEMV kernels share (dec_gemv.cu, dec_gemv_qtip.cu): their arguments, taken from
// a packed dec_weights, and the tensor-core step (mma.cuh). Include after decode.h.
#ifndef HARP_CUDA_DEC_GEMV_CUH
#define HARP_CUDA_DEC_GEMV_CUH

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

#include "cuda/mma.cuh"

struct GemvArgs {
    const uint8_t *p0, *p1;
    const dl_meta_tile *meta;
    const uint32_t *tab;      // QTIP HYB: the table's 512 fp16 pairs
    int32_t m, nst;
    float s0, s1;
    const __half *x;
    int ldx, B;
    float *y;
    int ldy, fold, accumulate;   // dec_gemv_opts: hi + lo rows summed / added to y in the epilogue
    int epi;                     // dec_gemv_opts.epilogue: (s·oscale)·post[row] before the store
    float oscale;
    const float *post;
};

static inline GemvArgs args_of(const dec_weights *w) {
    GemvArgs a;
    memset(&a, 0, sizeof a);
    a.p0 = (const uint8_t *)w->plane[0];
    a.p1 = (const uint8_t *)w->plane[1];
    a.meta = w->meta;
    a.tab = w->tab;
    a.m = w->m;
    a.nst = w->nst;
    a.s0 = w->scale0;
    a.s1 = w->scale1;
    return a;
}

// QTIP (dec_gemv_qtip.cu): the bodies of dec_gemv and dec_dequant_f16 for the DL_QTIP types, on
// the arguments dec_gemv.cu checked and filled (warps per CTA: 4 or 8).
harp_status gemv_qtip(const dec_weights *w, const GemvArgs &a, int warps, int copies, cudaStream_t s);
harp_status dequant_qtip(const dec_weights *w, const GemvArgs &a, int32_t r0, int32_t r1, void *out, int ld, cudaStream_t s);

// The k-split reduction of a 16-row tile: warp `warp` holds its partial sums r (the mma C fragment:
// rows g, g+8 × batch columns 2t, 2t+1); they are added over the warps in a fixed order (so a
// rerun is bit-identical) and rows < m of y written. Every thread of the CTA calls it.
template <int WARPS>
__device__ __forceinline__ void tile_reduce(const GemvArgs &a, float (*s_red)[16][9], int rt, const float r[4]) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    s_red[warp][g][2 * t] = r[0];
    s_red[warp][g][2 * t + 1] = r[1];
    s_red[warp][g + 8][2 * t] = r[2];
    s_red[warp][g + 8][2 * t + 1] = r[3];
    __syncthreads();
    // the sums keep the order of the unfused path (each row over the warps, then hi + lo, then += y)
    for (int i = threadIdx.x; i < 16 * (a.fold ? a.fold : a.B); i += blockDim.x) {
        const int row = i & 15, b = i >> 4, grow = 16 * rt + row;
        float s = 0.0f;
#pragma unroll
        for (int w = 0; w < WARPS; w++) s += s_red[w][row][b];
        if (a.fold) {
            float l = 0.0f;
#pragma unroll
            for (int w = 0; w < WARPS; w++) l += s_red[w][row][b + a.fold];
            s += l;
        }
        if (grow >= a.m) continue;
        if (a.epi) s = s * a.oscale * (a.post ? a.post[grow] : 1.0f);   // dec_xout's order: (v·scale)·post
        float *y = a.y + (size_t)b * a.ldy + grow;
        *y = a.accumulate ? *y + s : s;
    }
}

#endif
