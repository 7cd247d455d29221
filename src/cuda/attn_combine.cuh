// The combine of decode attention's split-K partials for one output element: the one expression the
// separate combine kernel (dec_attn.cu) and the combine-folded input transform of the o projection
// (dec_xform.cu) share, so the two paths give the same bits. w: the (b, head) partials, nch chunks of
// [m, l, o_0 … o_{hd−1}]; t: the element of the head.
#ifndef HARP_CUDA_ATTN_COMBINE_CUH
#define HARP_CUDA_ATTN_COMBINE_CUH

__device__ __forceinline__ float dec_attn_combine1(const float *w, int nch, int hd, int t) {
    float M = -INFINITY;
    for (int c = 0; c < nch; c++) M = fmaxf(M, w[(size_t)c * (hd + 2)]);
    float L = 0.0f, o = 0.0f;
    for (int c = 0; c < nch; c++) {
        const float *wc = w + (size_t)c * (hd + 2);
        if (wc[1] == 0.0f) continue;
        const float f = expf(wc[0] - M);
        L = fmaf(wc[1], f, L);
        o = fmaf(wc[2 + t], f, o);
    }
    return o / L;
}

#endif
