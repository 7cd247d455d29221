// Programmatic dependent launch (Hopper, docs/gpu.md "Launch overlap"): a decode kernel launched with
// pdl_launch may start while the kernel before it in the stream is still running. It must call
// pdl_wait() before it reads anything an earlier kernel writes and before its first global write;
// what comes before the wait may only read data no kernel of the token writes (weights, tables).
// pdl_wait() then pdl_trigger() lets the next kernel start its own prologue during this one, one
// level deep. Without the launch attribute (the legacy default stream, dec_set_pdl(0), or an
// architecture before sm_90) both are no-ops and launches serialize as usual.
#ifndef HARP_CUDA_PDL_CUH
#define HARP_CUDA_PDL_CUH

#include <cuda_runtime.h>
#include <utility>

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

extern "C" int dec_pdl(void);

template <typename... KArgs, typename... Args>
cudaError_t pdl_launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args &&...args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at;
    cfg.numAttrs = stream && dec_pdl() ? 1 : 0;   // the legacy default stream keeps plain ordering
    return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}

#endif
