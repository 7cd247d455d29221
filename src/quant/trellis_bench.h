/* Benchmark building blocks of the QTIP trellis, for `harp bench gemv` (rows qtip2/3/4) and
 * `harp bench quant`. Module API of src/quant, meant to be reached through bench/bench.h. */
#ifndef HARP_QUANT_TRELLIS_BENCH_H
#define HARP_QUANT_TRELLIS_BENCH_H

#include <stddef.h>

#include "trellis.h"

typedef struct harp_trellis_gemv_bench {
    int32_t m, n;
    int K;
    harp_tcode code;
    int threads;            /* harp_get_threads(): the trellis GEMV and OpenBLAS both use this many */
    const char *isa;        /* trellis kernel: "avx512", "avx2" or "portable"                        */
    size_t code_bytes;      /* one copy of the code plane                                           */
    int copies_trellis, copies_sgemv; /* distinct copies cycled (streaming regime), 1 = cache-resident */
    double ms_trellis, ms_sgemv; /* time per call: best of 5 windows of the mean                      */
    double speedup;         /* ms_sgemv / ms_trellis                                                */
    double gbps_trellis, gbps_sgemv; /* stored bytes per second                                     */
} harp_trellis_gemv_bench;

/* y = W̃ x with an m × n QTIP matrix (random code words — every stream is valid — and, for HYB, a
 * seeded table) against cblas_sgemv on an fp32 m × n matrix, in one run. stream_bytes > 0 cycles
 * enough distinct copies of each to exceed it (use ≥ 4 × LLC for the streaming regime); 0 keeps one
 * copy (cache-resident when it fits). Each kind runs for 5 windows of ≥ min_time_s. */
harp_status harp_trellis_bench_gemv(int32_t m, int32_t n, int K, harp_tcode code, size_t stream_bytes,
                                    double min_time_s, harp_trellis_gemv_bench *out);

typedef struct harp_trellis_encode_bench {
    int32_t m, n;
    int K;
    harp_tcode code;
    int threads;
    const char *isa;         /* Viterbi kernel */
    double table_seconds;    /* HYB table build (once per run in a pipeline), 0 otherwise          */
    double seconds;          /* harp_trellis_quantize_linear wall time: BlockLDLQ + two-pass Viterbi */
    double cpu_seconds;      /* the same in CPU seconds of all threads                             */
    int64_t tiles;
    double ms_per_tile_core; /* cpu_seconds / tiles                                                */
    double proxy_loss;       /* on the random problem (sanity)                                    */
} harp_trellis_encode_bench;

/* Quantizes one random m × n matrix (Gaussian W, correlated SPD H) at K bits with the paper's
 * parameters and times it. */
harp_status harp_trellis_bench_encode(int32_t m, int32_t n, int K, harp_tcode code, harp_trellis_encode_bench *out);

#endif
