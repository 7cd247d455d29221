// Fixed-order block reduction shared by the CUDA kernels: a tree over N doubles in shared memory
// (N = blockDim.x, a power of two). The partition never depends on timing, so a rerun is
// bit-identical on the same GPU. Every thread of the block must call it.
#ifndef HARP_CUDA_BLOCK_SUM_CUH
#define HARP_CUDA_BLOCK_SUM_CUH

template <int N> __device__ __forceinline__ double block_sum_n(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = N / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

#endif
