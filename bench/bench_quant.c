/* harp bench quant: seconds per matrix of harp_quantize_linear (RTN, GPTQ, QuIP#) on synthetic
 * Gaussian weights with a correlated SPD Hessian, at the ref-llama linear shapes by default.
 * The time includes everything the pipeline pays per matrix (damping, factorisations, LDLQ and the
 * tune sweeps, proxy loss). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "harp/quant.h"

/* H = XᵀX/N from N = 2n samples with two shared factors and heavier every 7th channel. */
static void synth_hessian(harp_rng *rng, int64_t n, double *H) {
    const int64_t N = 2 * n;
    double *X = malloc(sizeof(double) * (size_t)(N * n));
    if (!X) cli_die(CLI_EXIT_FAIL, "out of memory");
    for (int64_t s = 0; s < N; s++) {
        double f1 = harp_rng_normal(rng), f2 = harp_rng_normal(rng);
        for (int64_t i = 0; i < n; i++)
            X[s * n + i] = (i % 7 == 0 ? 4.0 : 1.0) *
                           (harp_rng_normal(rng) + 1.5 * f1 * ((i & 1) ? 1 : -1) + f2 * (double)(i % 5) / 5.0);
    }
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)n, (int)N, 1.0 / (double)N, X, (int)n, X, (int)n,
                0.0, H, (int)n);
    free(X);
}

static void usage(FILE *f) {
    fprintf(f, "usage: harp bench quant [--method quip|gptq|rtn|ldp] [--bits LIST] [--shapes MxN,...] [--threads N]\n"
               "                        [--tune N] [--act-order] [--reps N] [--json]\n"
               "Seconds per matrix of harp_quantize_linear on synthetic data (default shapes: ref-llama\n"
               "qkv 1536x512 is fused q|k|v = 1024x512 here as in the brief, o 512x512, up|gate 3072x512,\n"
               "down 512x1536). Best of --reps runs (default 1).\n");
}

/* CPU seconds of the whole process (all threads): less sensitive than wall time to other load. */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int bench_quant(int argc, char **argv) {
    static const struct option opts[] = {{"method", required_argument, 0, 'm'}, {"bits", required_argument, 0, 'b'},
                                         {"shapes", required_argument, 0, 's'}, {"threads", required_argument, 0, 'T'},
                                         {"tune", required_argument, 0, 't'},   {"act-order", no_argument, 0, 'a'},
                                         {"reps", required_argument, 0, 'r'},   {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *shapes = "1024x512,512x512,3072x512,512x1536", *bits = "2,3,4";
    harp_qmethod method = HARP_QMETHOD_QUIP;
    int threads = 0, json = 0, act = 0, reps = 1;
    long tune = -1;
    int c;
    while ((c = cli_getopt(argc, argv, "h", opts)) != -1) {
        switch (c) {
        case 'm':
            if (!strcmp(optarg, "quip")) method = HARP_QMETHOD_QUIP;
            else if (!strcmp(optarg, "gptq")) method = HARP_QMETHOD_GPTQ;
            else if (!strcmp(optarg, "rtn")) method = HARP_QMETHOD_RTN;
            else if (!strcmp(optarg, "ldp")) method = HARP_QMETHOD_LDP;
            else cli_die(CLI_EXIT_USAGE, "--method: expected quip, gptq, rtn or ldp, got '%s'", optarg);
            break;
        case 'b': bits = optarg; break;
        case 's': shapes = optarg; break;
        case 'T': threads = (int)cli_parse_long("--threads", optarg, 1, 1024); break;
        case 't': tune = cli_parse_long("--tune", optarg, 0, 1000); break;
        case 'a': act = 1; break;
        case 'r': reps = (int)cli_parse_long("--reps", optarg, 1, 100); break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        }
    }
    if (threads) {
        harp_set_threads(threads);
        openblas_set_num_threads(threads);
    }
    const char *mname = harp_qmethod_name(method);
    const char *p = shapes;
    long m, n;
    while (bench_next_shape(&p, &m, &n)) {
        harp_rng rng;
        harp_rng_seed(&rng, 42);
        float *W = malloc(sizeof(float) * (size_t)(m * n));
        double *H = malloc(sizeof(double) * (size_t)(n * n));
        if (!W || !H) cli_die(CLI_EXIT_FAIL, "out of memory");
        for (long i = 0; i < m * n; i++) W[i] = (float)(0.02 * harp_rng_normal(&rng));
        synth_hessian(&rng, n, H);
        const char *bp = bits;
        char *end;
        while (*bp) {
            long nb = strtol(bp, &end, 10);
            if (end == bp) cli_die(CLI_EXIT_USAGE, "--bits: bad entry near '%s'", bp);
            bp = *end == ',' ? end + 1 : end;
            harp_quant_params qp = harp_quant_default_params(method, (int)nb);
            if (tune >= 0) qp.tune_iters = (int)tune;
            qp.act_order = act;
            double best = 1e30, best_cpu = 1e30, loss = NAN;
            for (int r = 0; r < reps; r++) {
                harp_qtensor q;
                double t0 = harp_time_s(), c0 = cpu_s();
                cli_check(harp_quantize_linear(&qp, m, n, W, H, "bench", &q));
                double dt = harp_time_s() - t0, dc = cpu_s() - c0;
                if (dt < best) best = dt;
                if (dc < best_cpu) best_cpu = dc;
                loss = q.proxy_loss;
                harp_qtensor_free(&q);
            }
            if (json)
                printf("{\"bench\":\"quant\",\"method\":\"%s\",\"bits\":%ld,\"m\":%ld,\"n\":%ld,\"threads\":%d,\"seconds\":%.4f,\"cpu_seconds\":%.4f,\"proxy_loss\":%.6g}\n",
                       mname, nb, m, n, threads, best, best_cpu, loss);
            else
                printf("%-5s %ld-bit %5ldx%-5ld threads %d: %8.3f s wall %8.3f s cpu  proxy %.5g\n", mname, nb, m, n,
                       threads, best, best_cpu, loss);
            fflush(stdout);
        }
        free(W), free(H);
    }
    return 0;
}
