/* harp bench harp: HARP fit steps/s per linear shape (a 4096×4096 linear and the ref-llama shapes,
 * synthetic SPD Hessian), and the inference cost of the fitted butterfly transforms vs the RHT
 * ones (harp_rot_apply, forward) at batch 1 and 512, side by side (docs/results/harp-bench.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "harp/cuda_eval.h"
#include "harp/harpfit.h"
#include "harp/rotate.h"

/* Synthetic problem: W ~ N(0,1) with a few heavy columns, H = A Aᵀ/k + 0.01 I with k = n/4 + 8 samples
 * of unequal column scales (an ill-conditioned SPD matrix like a calibration Hessian). */
static void synth(int64_t m, int64_t n, uint64_t seed, float *W, double *H) {
    harp_rng g;
    harp_rng_seed(&g, seed);
    for (int64_t i = 0; i < m * n; i++) W[i] = (float)(harp_rng_normal(&g) * (i % n % 97 == 3 ? 4.0 : 1.0));
    int64_t k = n / 4 + 8;
    double *A = malloc(sizeof(double) * (size_t)(n * k));
    for (int64_t i = 0; i < n * k; i++) A[i] = harp_rng_normal(&g) * (1.0 + (double)((i / k) % 13));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            double a = 0;
            for (int64_t u = 0; u < k; u++) a += A[i * k + u] * A[j * k + u];
            H[i * n + j] = H[j * n + i] = a / (double)k + (i == j ? 0.01 : 0);
        }
    free(A);
}

typedef struct shape {
    const char *name;
    int64_t m, n;
} shape;

/* json: 1 JSON row, 0 text row, -1 nothing (warm-up). */
static void bench_fit_sched(const shape *s, int steps, int gpu, int json, int schedule, double *sec_per_step) {
    float *W = malloc(sizeof(float) * (size_t)(s->m * s->n));
    double *H = malloc(sizeof(double) * (size_t)(s->n * s->n));
    if (!W || !H) cli_die(1, "bench harp: out of memory for %s", s->name);
    synth(s->m, s->n, 1, W, H);
    harp_fit_params p = harp_fit_default_params(2);
    p.steps = steps;
    p.gpu = gpu;
    p.schedule = schedule;
    harp_rot *U, *V;
    harp_fit_report r;
    cli_check(harp_fit(&p, s->m, s->n, W, H, 0, s->name, &U, &V, &r));
    *sec_per_step = r.seconds / (r.steps_run ? r.steps_run : 1);
    if (json < 0) {
        /* warm-up run */
    } else if (json)
        printf("{\"bench\":\"harp\",\"kind\":\"fit\",\"engine\":\"%s\",\"schedule\":\"%s\",\"shape\":\"%s\",\"m\":%lld,\"n\":%lld,\"steps\":%d,\"ms_per_step\":%.3f,"
               "\"steps_per_s\":%.3f,\"engine_ms_per_step\":%.3f,\"loss0\":%.6g,\"loss_final\":%.6g,\"proxy0\":%.6g,\"proxy_final\":%.6g,\"hbd0\":%.6g,"
               "\"hbd_final\":%.6g,\"threads\":%d}\n",
               gpu ? "gpu" : "cpu", harp_bf_schedule_name(schedule), s->name, (long long)s->m, (long long)s->n, r.steps_run,
               1e3 * *sec_per_step, r.steps_per_s, 1e3 * r.engine_seconds / (r.steps_run ? r.steps_run : 1), r.loss0, r.loss_final,
               r.proxy0, r.proxy_final, r.hbd0, r.hbd_final, harp_get_threads());
    else
        printf("fit %s %-8s %-10s %5lld×%-5lld %4d steps  %8.2f ms/step (engine %.2f)  %7.2f steps/s  loss %.5g -> %.5g  proxy %.5g -> %.5g  "
               "hbd %.4g -> %.4g\n",
               gpu ? "gpu" : "cpu", harp_bf_schedule_name(schedule), s->name, (long long)s->m, (long long)s->n, r.steps_run, 1e3 * *sec_per_step,
               1e3 * r.engine_seconds / (r.steps_run ? r.steps_run : 1), r.steps_per_s, r.loss0, r.loss_final, r.proxy0,
               r.proxy_final, r.hbd0, r.hbd_final);
    fflush(stdout);
    harp_rot_destroy(U);
    harp_rot_destroy(V);
    free(W);
    free(H);
}

static void bench_fit(const shape *s, int steps, int gpu, int json, double *sec_per_step) {
    bench_fit_sched(s, steps, gpu, json, HARP_BF_SCHEDULE_GREEDY, sec_per_step);
}

static double time_apply(const harp_rot *r, float *X, int64_t rows, double min_time) {
    int64_t n = harp_rot_dim(r);
    harp_rot_apply(r, X, rows, n, 0);
    double best = 1e30, start = harp_time_s();
    int reps = 0;
    while (reps < 5 || harp_time_s() - start < min_time) {
        double t0 = harp_time_s();
        harp_rot_apply(r, X, rows, n, 0);
        double dt = harp_time_s() - t0;
        best = dt < best ? dt : best;
        reps++;
    }
    return best;
}

static void bench_apply(int64_t n, int64_t rows, double min_time, int json) {
    harp_rot *rht = NULL, *bf = NULL;
    cli_check(harp_rot_create(HARP_ROT_RHT, n, NULL, 1, &rht));
    harp_rot_params rp;
    harp_rot_params_default(&rp);
    rp.theta_init_scale = 0.05;   /* fitted-like θ: cost does not depend on the values */
    cli_check(harp_rot_create(HARP_ROT_BUTTERFLY, n, &rp, 1, &bf));
    float *X = malloc(sizeof(float) * (size_t)(n * rows));
    for (int64_t i = 0; i < n * rows; i++) X[i] = (float)sin(0.37 * (double)i);
    double th = time_apply(rht, X, rows, min_time), tb = time_apply(bf, X, rows, min_time);
    const int *st;
    int T = harp_rot_butterfly_stages(bf, &st);
    char sched[128] = "";
    for (int t = 0; t < T; t++) snprintf(sched + strlen(sched), sizeof sched - strlen(sched), "%s%d", t ? "," : "", st[t]);
    if (json)
        printf("{\"bench\":\"harp\",\"kind\":\"apply\",\"n\":%lld,\"batch\":%lld,\"schedule\":\"%s\",\"rht_us\":%.3f,"
               "\"harp_us\":%.3f,\"harp_over_rht\":%.3f,\"threads\":%d}\n",
               (long long)n, (long long)rows, sched, 1e6 * th, 1e6 * tb, tb / th, harp_get_threads());
    else
        printf("apply n=%-6lld batch %-4lld [%s]  RHT %10.1f us  HARP %10.1f us  HARP/RHT %6.2f\n", (long long)n, (long long)rows,
               sched, 1e6 * th, 1e6 * tb, tb / th);
    fflush(stdout);
    free(X);
    harp_rot_destroy(rht);
    harp_rot_destroy(bf);
}

/* Issue 18: forward transform cost of the hadamard schedule (fixed Had_K stage + learned stages)
 * against the greedy one and RHT, in the same run. */
static void bench_apply_schedules(int64_t n, int64_t rows, double min_time, int json) {
    harp_rot *r[3] = {NULL, NULL, NULL};
    cli_check(harp_rot_create(HARP_ROT_RHT, n, NULL, 1, &r[0]));
    for (int k = 1; k < 3; k++) {
        harp_rot_params rp;
        harp_rot_params_default(&rp);
        rp.schedule = k == 1 ? HARP_BF_SCHEDULE_GREEDY : HARP_BF_SCHEDULE_HADAMARD;
        rp.theta_init_scale = 0.05;   /* fitted-like θ: cost does not depend on the values */
        cli_check(harp_rot_create(HARP_ROT_BUTTERFLY, n, &rp, 1, &r[k]));
    }
    float *X = malloc(sizeof(float) * (size_t)(n * rows));
    for (int64_t i = 0; i < n * rows; i++) X[i] = (float)sin(0.37 * (double)i);
    double t[3];
    for (int k = 0; k < 3; k++) t[k] = time_apply(r[k], X, rows, min_time);
    char sched[2][96];
    for (int k = 1; k < 3; k++) {
        const int *st;
        int T = harp_rot_butterfly_stages(r[k], &st), K = harp_rot_butterfly_fixed_k(r[k]);
        sched[k - 1][0] = 0;
        if (K) snprintf(sched[k - 1], sizeof sched[k - 1], "H%d|", K);
        for (int i = 0; i < T; i++) snprintf(sched[k - 1] + strlen(sched[k - 1]), sizeof sched[k - 1] - strlen(sched[k - 1]), "%s%d", i ? "," : "", st[i]);
    }
    if (json)
        printf("{\"bench\":\"harp\",\"kind\":\"apply_schedules\",\"n\":%lld,\"batch\":%lld,\"greedy\":\"%s\",\"hadamard\":\"%s\",\"rht_us\":%.3f,"
               "\"greedy_us\":%.3f,\"hadamard_us\":%.3f,\"hadamard_over_greedy\":%.3f,\"threads\":%d}\n",
               (long long)n, (long long)rows, sched[0], sched[1], 1e6 * t[0], 1e6 * t[1], 1e6 * t[2], t[2] / t[1], harp_get_threads());
    else
        printf("apply n=%-6lld batch %-4lld RHT %9.1f us  greedy [%s] %9.1f us  hadamard [%s] %9.1f us  hadamard/greedy %5.2f\n",
               (long long)n, (long long)rows, 1e6 * t[0], sched[0], 1e6 * t[1], sched[1], 1e6 * t[2], t[2] / t[1]);
    fflush(stdout);
    free(X);
    for (int k = 0; k < 3; k++) harp_rot_destroy(r[k]);
}

/* --any-width: fit ms/step of both schedules at widths that are not powers of two (the learned side
 * m = 11008 / 14336 with n = 512, and n = 1536 / 1728 with m = 512), then the transform costs. */
static void bench_any_width(int steps, int json, double min_time, int skip_fit) {
    static const shape sh[] = {{"11008x512", 11008, 512}, {"14336x512", 14336, 512}, {"512x1536", 512, 1536}, {"512x1728", 512, 1728}};
    double sps;
    for (size_t i = 0; i < sizeof sh / sizeof sh[0] && !skip_fit; i++)
        for (int sc = 0; sc < 2; sc++) bench_fit_sched(&sh[i], steps, 0, json, sc, &sps);
    static const int64_t ns[] = {172, 1536, 1728, 3072, 4864, 11008, 14336};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        bench_apply_schedules(ns[i], 1, min_time, json);
        bench_apply_schedules(ns[i], 512, min_time, json);
    }
}

static void usage(void) {
    printf("usage: harp bench harp [--steps N] [--big-steps N] [--gpu] [--gpu-steps N] [--skip-cpu] [--skip-fit]\n"
           "                       [--skip-apply] [--min-time S] [--json] [--any-width]\n"
           "  Fit steps/s (paper defaults, 2 bits) on a 4096x4096 linear (--big-steps, default 3) and the ref-llama\n"
           "  shapes (--steps, default 20), plus HARP vs RHT transform cost at batch 1 and 512.\n"
           "  --gpu adds the same fit rows on the CUDA engine (--gpu-steps per shape, default 200; the 4096x4096\n"
           "  row uses --gpu-steps / 4) and its ref-llama projection; --skip-cpu leaves the CPU fit rows out.\n"
           "  --any-width instead: greedy vs hadamard schedule fit ms/step (--steps) at 11008x512, 14336x512,\n"
           "  512x1536, 512x1728 (not with --skip-fit) and their transform cost against RHT at widths that are not\n"
           "  powers of two.\n");
}

int bench_harp(int argc, char **argv) {
    int steps = 20, big_steps = 3, json = 0, skip_fit = 0, skip_apply = 0, gpu = 0, gpu_steps = 200, skip_cpu = 0, any_width = 0;
    double min_time = 0.3;
    static const struct option lo[] = {{"steps", required_argument, 0, 's'},   {"big-steps", required_argument, 0, 'b'},
                                       {"json", no_argument, 0, 'j'},          {"skip-fit", no_argument, 0, 'F'},
                                       {"skip-apply", no_argument, 0, 'A'},    {"min-time", required_argument, 0, 't'},
                                       {"gpu", no_argument, 0, 'g'},           {"gpu-steps", required_argument, 0, 'G'},
                                       {"skip-cpu", no_argument, 0, 'C'},     {"any-width", no_argument, 0, 'W'},
                                       {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    int c;
    while ((c = cli_getopt(argc, argv, "h", lo)) != -1) switch (c) {
        case 's': steps = (int)cli_parse_long("--steps", optarg, 1, 100000); break;
        case 'b': big_steps = (int)cli_parse_long("--big-steps", optarg, 0, 100000); break;
        case 'j': json = 1; break;
        case 'F': skip_fit = 1; break;
        case 'A': skip_apply = 1; break;
        case 't': min_time = cli_parse_double("--min-time", optarg, 0.0, 60.0); break;
        case 'g': gpu = 1; break;
        case 'G': gpu_steps = (int)cli_parse_long("--gpu-steps", optarg, 4, 1000000); break;
        case 'C': skip_cpu = 1; break;
        case 'W': any_width = 1; break;
        case 'h': usage(); return 0;
        }
    if (gpu && !harp_cuda_available()) cli_die(1, "bench harp --gpu: %s", harp_last_error());
    if (any_width) {
        bench_any_width(steps, json, min_time, skip_fit);
        return 0;
    }
    if (!skip_fit) {
        /* ref-llama per layer: qkv, o, up|gate, down; 4 layers at 1200 steps is the paper workload */
        static const shape ref[] = {{"qkv", 1024, 512}, {"o", 512, 512}, {"up|gate", 3072, 512}, {"down", 512, 1536}};
        double sps;
        if (gpu) bench_fit(&ref[1], 3, 1, -1, &sps); /* warm-up (context, module load); not printed */
        for (int e = skip_cpu ? 1 : 0; e <= gpu; e++) {
            double total = 0;
            for (int i = 0; i < 4; i++) {
                bench_fit(&ref[i], e ? gpu_steps : steps, e, json, &sps);
                total += sps;
            }
            double proj = total * 1200 * 4;
            if (json)
                printf("{\"bench\":\"harp\",\"kind\":\"ref-llama-projection\",\"engine\":\"%s\",\"layers\":4,\"steps\":1200,"
                       "\"fit_seconds\":%.1f,\"target_seconds\":1800,\"threads\":%d}\n",
                       e ? "gpu" : "cpu", proj, harp_get_threads());
            else
                printf("ref-llama projection (%s): 4 layers × 1200 steps = %.1f s of fitting (target < 1800 s)\n",
                       e ? "gpu" : "cpu", proj);
            int bs = e ? gpu_steps / 4 : big_steps;
            if (bs > 0) {
                shape big = {"4096x4096", 4096, 4096};
                bench_fit(&big, bs, e, json, &sps);
            }
        }
    }
    if (!skip_apply) {
        static const int64_t ns[] = {4096, 11008, 512, 1536};
        for (int i = 0; i < 4; i++) {
            bench_apply(ns[i], 1, min_time, json);
            bench_apply(ns[i], 512, min_time, json);
        }
    }
    return 0;
}
