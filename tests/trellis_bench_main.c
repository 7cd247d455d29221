/* Command-line driver of the QTIP trellis benchmark functions (src/quant/trellis_bench.c) until
 * `harp bench gemv` / `harp bench quant` carry the qtip rows. Built as build/tests/trellis_bench;
 * not a ctest (timings are not tests).
 *
 *   trellis_bench gemv   M N K CODE [STREAM_MB [MIN_TIME_S]]   decode-GEMV vs OpenBLAS sgemv
 *   trellis_bench encode M N K CODE                           BlockLDLQ + Viterbi of one matrix
 *
 * Threads: OMP_NUM_THREADS (run with OMP_WAIT_POLICY=passive on a shared machine). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/trellis_bench.h"

static int usage(void) {
    fprintf(stderr, "usage: trellis_bench gemv M N K CODE [STREAM_MB [MIN_TIME_S]] | encode M N K CODE\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 6) return usage();
    const int m = atoi(argv[2]), n = atoi(argv[3]), K = atoi(argv[4]);
    harp_tcode code;
    if (m <= 0 || n <= 0 || harp_tcode_parse(argv[5], &code) != HARP_OK) return usage();
    if (strcmp(argv[1], "gemv") == 0) {
        const size_t stream = argc > 6 ? (size_t)atol(argv[6]) << 20 : 0;
        const double min_time = argc > 7 ? atof(argv[7]) : 0.3;
        harp_trellis_gemv_bench b;
        if (harp_trellis_bench_gemv(m, n, K, code, stream, min_time, &b) != HARP_OK) {
            fprintf(stderr, "trellis_bench: %s\n", harp_last_error());
            return 1;
        }
        printf("gemv %dx%d qtip%d-%s isa=%s threads=%d copies=%d/%d: qtip %.3f ms (%.2f GB/s), sgemv %.3f ms "
               "(%.2f GB/s), speedup %.2fx\n",
               m, n, K, argv[5], b.isa, b.threads, b.copies_trellis, b.copies_sgemv, b.ms_trellis, b.gbps_trellis,
               b.ms_sgemv, b.gbps_sgemv, b.speedup);
    } else if (strcmp(argv[1], "encode") == 0) {
        harp_trellis_encode_bench b;
        if (harp_trellis_bench_encode(m, n, K, code, &b) != HARP_OK) {
            fprintf(stderr, "trellis_bench: %s\n", harp_last_error());
            return 1;
        }
        printf("encode %dx%d qtip%d-%s isa=%s threads=%d: %.2f s wall, %.2f s CPU for %lld tiles = %.2f CPU ms per "
               "tile (HYB table %.2f s wall), proxy loss %.4f\n",
               m, n, K, argv[5], b.isa, b.threads, b.seconds, b.cpu_seconds, (long long)b.tiles, b.ms_per_tile_core,
               b.table_seconds, b.proxy_loss);
    } else
        return usage();
    return 0;
}
