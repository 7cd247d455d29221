/* Benchmarks run by `harp bench <name>`. Each measures harp against its baseline side by side in
 * one run and prints ratios (text, or one JSON object per line with --json). Targets live here,
 * never in timed tests. Each benchmark is in bench/bench_<name>.c.
 *
 * This header is the benchmarks' one door into the library below its public API: the module APIs
 * they time or build inputs with (core: RNG, aligned buffers, fp16; quant: the E8P codebook, the
 * ldp2 int4-activation GEMV; model: synthetic models of a shape and the backend interface; cuda: the decode engine and, in
 * CUDA builds, cuBLAS through the cublas_dl.h wrappers and the prefill-attention switch) and the BLAS baselines (cblas). Benchmarks include only this, cli.h and
 * include/ headers. */
#ifndef HARP_BENCH_H
#define HARP_BENCH_H

#include <cblas.h>

#include "cli.h"
#include "core/core.h"
#include "cuda/cublas_dl.h"
#include "cuda/dec_ldp.h"
#include "cuda/dec_synth.h"
#include "harp.h"
#include "model/backend.h"
#include "model/model.h"
#include "model/slots.h"
#ifdef HARP_HAVE_CUDA
#include "cuda/cuda_kernels.h"
#endif
#include "quant/e8p.h"
#include "quant/ldp.h"

#define HARP_BENCH_LIST(X)                                                                  \
    X(ppl, "end-to-end perplexity tokens/s and GFLOP/s vs OpenBLAS sgemm, peak RSS")        \
    X(rotate, "Hadamard / RHT / butterfly transforms vs dense sgemm")                      \
    X(gemv, "quantized GEMV (E8P, RVQ) vs fp32 sgemv and fp16 GEMV; --gpu: the CUDA decode kernels")                        \
    X(quant, "seconds per matrix of harp_quantize_linear (RTN, GPTQ, QuIP#)")               \
    X(harp, "HARP fit steps/s and transform cost vs RHT")                                   \
    X(zeroshot, "zero-shot scoring tokens/s vs ppl tokens/s")                               \
    X(decode, "whole-token decode of a synthetic model shape (--gpu: the GPU engine; else the CPU forward pass): tok/s vs the bandwidth bound") \
    X(igemm, "GPU int8 prefill GEMM of W/A/KV models (quantize + int8 tensor cores + epilogue) vs cuBLAS fp16")

/* The GPU decode-kernel rows of `harp bench gemv --gpu` (bench/bench_gemv_gpu.c). */
int bench_gemv_gpu(int argc, char **argv);
/* GPU timing shared by the GPU benchmarks (bench_gemv_gpu.c; CUDA builds only): median µs per enqueued
 * call over `reps` replays of a CUDA graph of `calls` enqueues (or plain stream launches), and the
 * device-to-device copy bandwidth (GB/s, bytes read + written). stream is a cudaStream_t. */
double bench_gpu_time_graph(void *stream, int reps, void (*fn)(void *user, int call, void *stream), void *user, int calls);
double bench_gpu_time_stream(void *stream, int reps, void (*fn)(void *user, int call, void *stream), void *user, int calls);
double bench_gpu_copy_gbps(void *stream);
/* The GPU decode engine's quant types by name (f16, int2..8, e8p2, rvq3/4, qtipK[-1mad|-3inst]): a
 * --qtypes list parsed into `out` (at most max; unknown names exit with a usage error), and back. */
int bench_gpu_qtypes(const char *list, int *out, int max);
const char *bench_gpu_qtype_name(int qt);

#define HARP_DECLARE_BENCH(name, help) int bench_##name(int argc, char **argv);
HARP_BENCH_LIST(HARP_DECLARE_BENCH)
#undef HARP_DECLARE_BENCH

/* Checks of the GPU benchmarks: a CUDA runtime call (CUDA builds) or a harp call, dying with one line. */
#define CUCHK(x)                                                                                      \
    do {                                                                                              \
        cudaError_t e_ = (x);                                                                         \
        if (e_ != cudaSuccess) cli_die(CLI_EXIT_FAIL, "%s: %s", #x, cudaGetErrorString(e_));           \
    } while (0)
#define HCHK(x)                                                                                       \
    do {                                                                                              \
        if ((x) != HARP_OK) cli_die(CLI_EXIT_FAIL, "%s: %s", #x, harp_last_error());                   \
    } while (0)

/* Peak resident set size of this process in bytes (from /proc/self/status VmHWM). */
long long bench_peak_rss_bytes(void);

/* buf = "$HARP_SHARED/<rel>" (default root ../shared): the benchmarks' default models and texts. */
const char *bench_shared_path(char *buf, size_t n, const char *rel);

/* Next entry of a "--shapes MxN,MxN,..." list at *p (advanced past it): 1 with *m, *n set, 0 at the
 * end of the list; a malformed entry or a size outside 1..65536 is a usage error (exit 2). */
int bench_next_shape(const char **p, long *m, long *n);

#endif
