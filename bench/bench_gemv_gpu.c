/* harp bench gemv --gpu: the GPU decode kernels (src/cuda/decode.h) at Llama-2-7B linear shapes, with
 * cold weights (as many device copies as needed for a working set well beyond the 60 MB L2, used in
 * turn), timed with CUDA events around CUDA-graph replays (and around plain stream launches), against
 * the device-to-device copy bandwidth measured in the same run. Rows:
 *   gemv     the decode GEMV alone, per qtype × batch (× kernel variant with --variants); ldp2_a4 /
 *            ldp2: RCP's non-uniform 2-bit type with int4 / fp16 activations (src/cuda/dec_ldp.h);
 *   linear   one whole linear at decode: input transform (signs + RHT or HARP butterfly, fp16 out),
 *            GEMV, output transform (inverse + signs/scales, residual add);
 *   prefill  --prefill-rows tokens through dequantized fp16 tiles + cuBLAS, against cuBLAS on a dense
 *            fp16 weight of the same shape;
 *   pfold    one whole packed linear (RHT / HARP both sides) on --prefill-rows rows: transforms on the
 *            rows against folded into the weights (dec_fold_weights), and which the cost rule picks;
 *   attn     decode attention over an fp16 KV cache (RoPE + KV store + attention), then the same over the
 *            4-bit KV cache of W/A/KV models (dec_rope_kv4 + dec_attn_kv4) with its ratio vs_kv16;
 *   pattn    prefill attention of independent windows through the CUDA backend's attention op (what
 *            `ppl --gpu` runs) over an fp16 cache: one launch on the tensor cores, one launch in fp32
 *            FFMA (hc_attn_prefill modes 2, 1) and cuBLAS + softmax (mode 0);
 *   copy     cudaMemcpy device-to-device (bytes read + written).
 * --profile runs each selected GEMV once (after a warm-up) for Nsight Compute and prints nothing. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"

#ifndef HARP_HAVE_CUDA
int bench_gemv_gpu(int argc, char **argv) {
    (void)argc, (void)argv;
    cli_die(CLI_EXIT_FAIL, "harp bench gemv --gpu: harp was built without CUDA (-DHARP_CUDA=ON)");
}
#else
#include <cuda_runtime_api.h>


typedef struct gctx {
    int json, reps, variants;
    double cold_mb, copy_gbps;
    cudaStream_t s;
} gctx;

static const struct {
    const char *name;
    int qt;
} k_types[] = {{"f16", HARP_QTYPE_F16}, {"int2", HARP_QTYPE_INT2}, {"int3", HARP_QTYPE_INT3}, {"int4", HARP_QTYPE_INT4}, {"int8", HARP_QTYPE_INT8},
               {"e8p2", HARP_QTYPE_E8P2}, {"rvq3", HARP_QTYPE_RVQ3}, {"rvq4", HARP_QTYPE_RVQ4},
               /* QTIP (not in the default list): qtipK = HYB, -1mad / -3inst the computed codes */
               {"qtip2", DL_QTIP2_HYB}, {"qtip2-1mad", DL_QTIP2_1MAD}, {"qtip2-3inst", DL_QTIP2_3INST},
               {"qtip3", DL_QTIP3_HYB}, {"qtip3-1mad", DL_QTIP3_1MAD}, {"qtip3-3inst", DL_QTIP3_3INST},
               {"qtip4", DL_QTIP4_HYB}, {"qtip4-1mad", DL_QTIP4_1MAD}, {"qtip4-3inst", DL_QTIP4_3INST},
               /* RCP's non-uniform 2-bit as a decode-engine type (bench decode; bench gemv's ldp2 kinds run dec_ldp.cu alone) */
               {"ldp2", HARP_QTYPE_LDP2}};

const char *bench_gpu_qtype_name(int qt) {
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
        if (k_types[i].qt == qt) return k_types[i].name;
    return "?";
}

int bench_gpu_qtypes(const char *list, int *out, int max) {
    char buf[512];
    if (strlen(list) >= sizeof buf) cli_die(CLI_EXIT_USAGE, "--qtypes: list too long (%zu characters)", strlen(list));
    snprintf(buf, sizeof buf, "%s", list);
    int n = 0;
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        int found = -1;
        for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
            if (!strcmp(t, k_types[i].name)) found = k_types[i].qt;
        if (found < 0) cli_die(CLI_EXIT_USAGE, "--qtypes: unknown quant type '%s'", t);
        if (n == max) cli_die(CLI_EXIT_USAGE, "--qtypes: more than %d entries", max);
        out[n++] = found;
    }
    return n;
}

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- timing ----------------------------------------------------------------------------------- */

typedef void (*enqueue_fn)(void *user, int call, cudaStream_t s);

/* What one timed run launches: a graph replay (exec) or `calls` enqueues straight on the stream. */
typedef struct timed_work {
    enqueue_fn fn;
    void *user;
    int calls;
    cudaGraphExec_t exec;
} timed_work;

static void run_work(const gctx *g, const timed_work *w) {
    if (w->exec) CUCHK(cudaGraphLaunch(w->exec, g->s));
    else
        for (int i = 0; i < w->calls; i++) w->fn(w->user, i, g->s);
}

/* Median microseconds per call over `reps` (≤ 256) event-timed runs of w. */
static double median_us(const gctx *g, const timed_work *w, int reps) {
    cudaEvent_t a, b;
    CUCHK(cudaEventCreate(&a));
    CUCHK(cudaEventCreate(&b));
    double t[256];
    for (int r = 0; r < reps; r++) {
        CUCHK(cudaEventRecord(a, g->s));
        run_work(g, w);
        CUCHK(cudaEventRecord(b, g->s));
        CUCHK(cudaEventSynchronize(b));
        float ms = 0;
        CUCHK(cudaEventElapsedTime(&ms, a, b));
        t[r] = 1000.0 * ms / w->calls;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_d);
    cudaEventDestroy(a), cudaEventDestroy(b);
    return t[reps / 2];
}

/* Median microseconds per call over `reps` replays of a graph holding `calls` enqueues. */
static double time_graph(const gctx *g, enqueue_fn fn, void *user, int calls) {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CUCHK(cudaStreamBeginCapture(g->s, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < calls; i++) fn(user, i, g->s);
    CUCHK(cudaStreamEndCapture(g->s, &graph));
    CUCHK(cudaGraphInstantiate(&exec, graph, 0));
    const timed_work w = {fn, user, calls, exec};
    for (int i = 0; i < 3; i++) run_work(g, &w);
    const double us = median_us(g, &w, g->reps < 256 ? g->reps : 256);
    CUCHK(cudaGetLastError());
    cudaGraphExecDestroy(exec), cudaGraphDestroy(graph);
    return us;
}

/* Same work launched on the stream without a graph. */
static double time_stream(const gctx *g, enqueue_fn fn, void *user, int calls) {
    const timed_work w = {fn, user, calls, NULL};
    run_work(g, &w);
    return median_us(g, &w, g->reps < 64 ? g->reps : 64);
}

typedef struct copy_job {
    void *dst;
    const void *src;
    size_t bytes;
} copy_job;
static void copy_enqueue(void *user, int call, cudaStream_t s) {
    const copy_job *c = user;
    (void)call;
    CUCHK(cudaMemcpyAsync(c->dst, c->src, c->bytes, cudaMemcpyDeviceToDevice, s));
}

/* Device copy bandwidth in GB/s (read + write): median of 20 timed 1 GiB copies after 2 warm-ups. */
static double measure_copy(const gctx *g) {
    copy_job c = {NULL, NULL, (size_t)1 << 30};
    void *a;
    CUCHK(cudaMalloc(&a, c.bytes));
    CUCHK(cudaMalloc(&c.dst, c.bytes));
    CUCHK(cudaMemset(a, 1, c.bytes));
    c.src = a;
    const timed_work w = {copy_enqueue, &c, 1, NULL};
    run_work(g, &w), run_work(g, &w);
    const double us = median_us(g, &w, 20);
    cudaFree(a), cudaFree(c.dst);
    return 2.0 * (double)c.bytes / (us * 1e-6) / 1e9;
}

/* Shared with bench_decode.c (bench.h): the same timing and copy measurement. */
typedef struct tramp {
    void (*fn)(void *user, int call, void *stream);
    void *user;
} tramp;
static void tramp_call(void *u, int call, cudaStream_t s) {
    const tramp *t = u;
    t->fn(t->user, call, (void *)s);
}
static gctx ctx_on(void *stream, int reps) {
    gctx g;
    memset(&g, 0, sizeof g);
    g.s = (cudaStream_t)stream, g.reps = reps;
    return g;
}
double bench_gpu_time_graph(void *stream, int reps, void (*fn)(void *user, int call, void *stream), void *user, int calls) {
    const gctx g = ctx_on(stream, reps);
    tramp t = {fn, user};
    return time_graph(&g, tramp_call, &t, calls);
}
double bench_gpu_time_stream(void *stream, int reps, void (*fn)(void *user, int call, void *stream), void *user, int calls) {
    const gctx g = ctx_on(stream, reps);
    tramp t = {fn, user};
    return time_stream(&g, tramp_call, &t, calls);
}
double bench_gpu_copy_gbps(void *stream) {
    const gctx g = ctx_on(stream, 0);
    return measure_copy(&g);
}

/* ---- gemv / linear rows ----------------------------------------------------------------------------- */

typedef struct lin {
    int nc, B, m, n, npad, warps, hyb;   /* hyb: dec_gemv_opts.hyb_copies */
    dec_weights *w;
    dec_xdev **xin, **xout;   /* per copy (linear rows) */
    float *pre, *post, *norm, *scr;
    void *x;                  /* fp16 [8][npad] */
    float *xf, *y, *res;
} lin;

static void enq_gemv(void *u, int i, cudaStream_t s) {
    lin *L = u;
    const dec_gemv_opts o = {.warps = L->warps, .hyb_copies = L->hyb};
    if (dec_gemv(&L->w[i % L->nc], L->x, L->npad, L->B, L->y, L->m, &o, (dec_stream)s) != HARP_OK)
        cli_die(CLI_EXIT_FAIL, "gemv: %s", harp_last_error());
}

static void enq_linear(void *u, int i, cudaStream_t s) {
    lin *L = u;
    const int c = i % L->nc;
    const dec_gemv_opts o = {.warps = L->warps};
    if (dec_xin(L->xin[c], L->xf, L->n, L->B, L->norm, 1e-5f, L->pre, L->x, L->npad, L->npad, L->scr, (dec_stream)s) != HARP_OK ||
        dec_gemv(&L->w[c], L->x, L->npad, L->B, L->y, L->m, &o, (dec_stream)s) != HARP_OK ||
        dec_xout(L->xout[c], L->y, L->m, L->B, L->post, 1, L->res, L->m, L->scr, (dec_stream)s) != HARP_OK)
        cli_die(CLI_EXIT_FAIL, "linear: %s", harp_last_error());
}

static void emit_row(const gctx *g, const char *kind, int m, int n, const char *qname, const char *rot, int B, int warps, double us,
                     double us_stream, double wbytes, double bytes, int copies) {
    const double gbps = wbytes / (us * 1e-6) / 1e9, tgbps = bytes / (us * 1e-6) / 1e9;
    if (g->json)
        printf("{\"bench\": \"gemv\", \"kind\": \"%s\", \"device\": \"gpu\", \"shape\": \"%dx%d\", \"m\": %d, \"n\": %d, \"qtype\": \"%s\", "
               "\"rotation\": \"%s\", \"batch\": %d, \"warps\": %d, \"us\": %.3f, \"us_stream\": %.3f, \"weight_bytes\": %.0f, "
               "\"bytes\": %.0f, \"gbps\": %.1f, \"total_gbps\": %.1f, \"copy_gbps\": %.1f, \"pct_of_copy\": %.1f, \"copies\": %d}\n",
               kind, m, n, m, n, qname, rot, B, warps, us, us_stream, wbytes, bytes, gbps, tgbps, g->copy_gbps,
               100.0 * tgbps / g->copy_gbps, copies);
    else
        printf("%-7s %6dx%-6d %-5s %-5s B=%d w%d %9.2f us (stream %8.2f) %8.1f GB/s weights %8.1f GB/s total %5.1f%% of copy  [%d copies]\n",
               kind, m, n, qname, rot, B, warps, us, us_stream, gbps, tgbps, 100.0 * tgbps / g->copy_gbps, copies);
    fflush(stdout);
}
static void emit(const gctx *g, const char *kind, int m, int n, int qt, const char *rot, int B, int warps, double us, double us_stream,
                 double wbytes, double bytes, int copies) {
    emit_row(g, kind, m, n, bench_gpu_qtype_name(qt), rot, B, warps, us, us_stream, wbytes, bytes, copies);
}

static size_t xform_block_bytes(const dec_xform *xf) {
    size_t b = 0;
    for (int s = 0; s < xf->nstages; s++)
        if (!xf->st[s].shared) b += (size_t)xf->n * (size_t)((xf->st[s].b + 7) / 8 * 8) * 2;
    return b;
}

/* A linear's input (n) and output (m) transforms for --rotations entry rot: synthetic HARP butterflies or
 * the RHT's Hadamard; 1 for harp. */
static int rotation_xforms(const char *rot, int m, int n, dec_xform *xi, dec_xform *xo) {
    const int harp = !strcmp(rot, "harp");
    if (!harp && strcmp(rot, "rht")) cli_die(CLI_EXIT_USAGE, "--rotations: expected rht or harp, got '%s'", rot);
    if (harp) {
        HCHK(dec_synth_butterfly(n, 11, 0, xi));
        HCHK(dec_synth_butterfly(m, 12, 1, xo));
    } else {
        HCHK(dec_xform_hadamard(n, 0, xi));
        HCHK(dec_xform_hadamard(m, 1, xo));
    }
    return harp;
}

static void run_shape(gctx *g, int m, int n, int qt, const int *batches, int nb, int do_gemv, const char *rots, int profile) {
    dec_weights w0;
    HCHK(dec_layout_shape(qt, m, n, &w0));
    const double wbytes = (double)dec_weights_bytes(&w0);
    int nc = (int)ceil(g->cold_mb * 1048576.0 / wbytes);
    if (nc < 2) nc = 2;
    if (profile) nc = 1;   /* one cold launch per kernel; Nsight Compute flushes the caches itself */
    lin L;
    memset(&L, 0, sizeof L);
    L.nc = nc, L.m = m, L.n = n, L.npad = dec_npad(n);
    L.w = calloc((size_t)nc, sizeof *L.w);
    for (int c = 0; c < nc; c++) HCHK(dec_weights_random(qt, m, n, 0.02f, 0.005f, 1000 + (uint64_t)c, &L.w[c]));
    CUCHK(cudaMalloc(&L.x, (size_t)8 * L.npad * 2));
    CUCHK(cudaMalloc((void **)&L.y, sizeof(float) * 8 * (size_t)m));
    {   /* random fp16 activations with zero padding */
        uint16_t *h = calloc((size_t)8 * L.npad, 2);
        harp_rng r;
        harp_rng_seed(&r, 3);
        for (int b = 0; b < 8; b++)
            for (int c = 0; c < n; c++) h[(size_t)b * L.npad + c] = harp_f32_to_f16((float)harp_rng_normal(&r));
        CUCHK(cudaMemcpy(L.x, h, (size_t)8 * L.npad * 2, cudaMemcpyHostToDevice));
        free(h);
    }
    const int calls = nc < 16 ? 16 / nc * nc + (16 % nc ? nc : 0) : nc;
    if (profile) {
        L.B = 1, L.warps = 0;
        enq_gemv(&L, 0, g->s);
        CUCHK(cudaStreamSynchronize(g->s));
    } else if (do_gemv) {
        static const int wvs[] = {0, 4, 8, 16};   /* 0: dec_gemv's default; --variants: each other count */
        /* QTIP HYB with --variants: also the table's other shared-memory copy counts (default 16; qtype
         * named -t8 / -t32) */
        static const int hyb[] = {0, 8, 32};
        const int nh = g->variants && dl_qtip_bits(qt) && dl_qtip_code(qt) == DL_TCODE_HYB ? 3 : 1;
        const int dflt = dec_gemv_warps(&L.w[0], 0);
        for (int bi = 0; bi < nb; bi++)
            for (int h = 0; h < nh; h++)
                for (int vi = 0; vi < (g->variants ? 4 : 1); vi++) {
                    L.B = batches[bi], L.warps = wvs[vi], L.hyb = hyb[h];
                    const int used = dec_gemv_warps(&L.w[0], wvs[vi]);
                    if (vi && (used != wvs[vi] || used == dflt)) continue;   /* the default row once */
                    const double us = time_graph(g, enq_gemv, &L, calls), uss = time_stream(g, enq_gemv, &L, calls);
                    char qn[32];
                    snprintf(qn, sizeof qn, h ? "%s-t%d" : "%s", bench_gpu_qtype_name(qt), hyb[h]);
                    emit_row(g, "gemv", m, n, qn, "none", L.B, used, us, uss, wbytes, wbytes, nc);
                }
    }
    if (!profile && rots && *rots) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", rots);
        for (char *rot = strtok(buf, ","); rot; rot = strtok(NULL, ",")) {
            if (qt == HARP_QTYPE_F16) continue;   /* fp16 models have no rotation */
            dec_xform xi, xo;
            const int harp = rotation_xforms(rot, m, n, &xi, &xo);
            const int ncx = harp ? nc : 1;   /* butterfly blocks are per linear: cold like the weights */
            float *sg = dec_synth_signs(m > n ? m : n, 5);
            CUCHK(cudaMalloc((void **)&L.pre, sizeof(float) * (size_t)(m > n ? m : n)));
            CUCHK(cudaMemcpy(L.pre, sg, sizeof(float) * (size_t)(m > n ? m : n), cudaMemcpyHostToDevice));
            L.post = L.pre;
            free(sg);
            CUCHK(cudaMalloc((void **)&L.xf, sizeof(float) * 8 * (size_t)n));
            CUCHK(cudaMalloc((void **)&L.res, sizeof(float) * 8 * (size_t)m));
            CUCHK(cudaMemset(L.res, 0, sizeof(float) * 8 * (size_t)m));
            CUCHK(cudaMalloc((void **)&L.scr, sizeof(float) * 2 * 8 * (size_t)(m > n ? m : n)));
            {
                float *h = malloc(sizeof(float) * 8 * (size_t)n);
                harp_rng r;
                harp_rng_seed(&r, 4);
                for (size_t i = 0; i < 8 * (size_t)n; i++) h[i] = (float)harp_rng_normal(&r);
                CUCHK(cudaMemcpy(L.xf, h, sizeof(float) * 8 * (size_t)n, cudaMemcpyHostToDevice));
                free(h);
            }
            const double xb = (double)(xform_block_bytes(&xi) + xform_block_bytes(&xo));
            L.xin = calloc((size_t)nc, sizeof *L.xin);
            L.xout = calloc((size_t)nc, sizeof *L.xout);
            for (int bi = 0; bi < nb; bi++) {
                L.B = batches[bi], L.warps = 0;
                for (int c = 0; c < nc; c++) {   /* planned for this batch size, as a decode engine would */
                    if (c < ncx) {
                        HCHK(dec_xform_upload(&xi, L.B, &L.xin[c]));
                        HCHK(dec_xform_upload(&xo, L.B, &L.xout[c]));
                    } else {
                        L.xin[c] = L.xin[0], L.xout[c] = L.xout[0];
                    }
                }
                const double us = time_graph(g, enq_linear, &L, calls), uss = time_stream(g, enq_linear, &L, calls);
                emit(g, "linear", m, n, qt, rot, L.B, dec_gemv_warps(&L.w[0], 0), us, uss, wbytes, wbytes + xb, nc);
                for (int c = 0; c < ncx; c++) dec_xform_dev_free(L.xin[c]), dec_xform_dev_free(L.xout[c]);
            }
            free(L.xin), free(L.xout);
            cudaFree(L.pre), cudaFree(L.scr), cudaFree(L.xf), cudaFree(L.res);
            L.pre = L.post = L.scr = L.xf = L.res = NULL;
            dec_xform_free(&xi), dec_xform_free(&xo);
        }
    }
    for (int c = 0; c < nc; c++) dec_weights_free(&L.w[c]);
    free(L.w);
    cudaFree(L.x), cudaFree(L.y);
}

/* ---- ldp2 (src/cuda/dec_ldp.h): its own layout and kernel, outside the decode engine's types ---------- */

/* run_ldp's kinds: bit 0 int4 activations, bit 1 -fma, bits 2–3 where x is read (0 default, 1 -unstaged,
 * 2 -staged: dec_ldp_opts.xs = 0, −1, 1). */
enum { kLdpKinds = 12 };
static void ldp_name(int kind, char *buf, size_t len) {
    static const char *const xs[3] = {"", "-unstaged", "-staged"};
    snprintf(buf, len, "%s%s%s", kind & 1 ? "ldp2_a4" : "ldp2", kind & 2 ? "-fma" : "", xs[kind >> 2]);
}

typedef struct ldpb {
    int nc, B, m;
    dec_ldp_opts o;
    dec_ldp_dev *w;
    dec_ldp_act x;   /* device activations */
    float *y;
} ldpb;

static void enq_ldp(void *u, int i, cudaStream_t s) {
    ldpb *L = u;
    if (dec_ldp_gemv(&L->w[i % L->nc], &L->x, L->B, L->y, L->m, &L->o, (dec_stream)s) != HARP_OK)
        cli_die(CLI_EXIT_FAIL, "ldp2 gemv: %s", harp_last_error());
}

/* gemv rows of ldp2, group 128, one per kind (ldp_name: int4 or fp16 activations, -fma, where x is
 * read). Random codes and
 * ordered levels (dec_ldp_random_planes, as the CPU bench), cold copies like the other types;
 * bytes = codes + levels + the activations (and their scales) the kernel reads. */
static void run_ldp(gctx *g, int m, int n, int kind, const int *batches, int nb, int profile) {
    const int a4 = kind & 1;
    dec_ldp_layout Ly;
    HCHK(dec_ldp_layout_of(m, n, 128, "bench", &Ly));
    const size_t cb = dec_ldp_code_bytes(&Ly), lb = dec_ldp_level_bytes(&Ly);
    const double wbytes = (double)(cb + lb);
    uint8_t *qw = malloc((size_t)m * (((size_t)n + 3) / 4)), *codes = malloc(cb), *levels = malloc(lb);
    uint16_t *lv = malloc(sizeof(uint16_t) * 4 * (size_t)m * Ly.ng);
    if (!qw || !codes || !levels || !lv) cli_die(CLI_EXIT_FAIL, "ldp2 %dx%d: out of memory", m, n);
    harp_rng r;
    harp_rng_seed(&r, 1515);
    dec_ldp_random_planes(&r, m, n, Ly.ng, qw, lv);
    dec_ldp_pack(&Ly, qw, lv, codes, levels);
    ldpb L;
    memset(&L, 0, sizeof L);
    L.m = m, L.o.fma = kind >> 1 & 1, L.o.xs = kind >> 2 == 1 ? -1 : kind >> 2 == 2 ? 1 : 0;
    L.nc = profile ? 1 : (int)ceil(g->cold_mb * 1048576.0 / wbytes);
    if (!profile && L.nc < 2) L.nc = 2;
    L.w = calloc((size_t)L.nc, sizeof *L.w);
    for (int c = 0; c < L.nc; c++) HCHK(dec_ldp_upload(&Ly, codes, levels, &L.w[c]));
    /* activations: 8 rows (int4 nibbles with their scales, or fp16) */
    const size_t xb = a4 ? (size_t)8 * Ly.npad / 2 : (size_t)8 * Ly.npad * 2;
    uint8_t *xh = calloc(xb, 1);
    float sc[8];
    for (int b = 0; b < 8; b++) {
        sc[b] = 0.1f;
        for (int c = 0; c < n; c++) {
            if (a4) xh[(size_t)b * Ly.npad / 2 + c / 2] |= (uint8_t)((harp_rng_u64(&r) & 15u) << (4 * (c & 1)));
            else {
                const uint16_t h = harp_f32_to_f16((float)harp_rng_normal(&r));
                memcpy(xh + 2 * ((size_t)b * Ly.npad + c), &h, 2);
            }
        }
    }
    void *dx;
    float *ds;
    CUCHK(cudaMalloc(&dx, xb));
    CUCHK(cudaMalloc((void **)&ds, sizeof sc));
    CUCHK(cudaMalloc((void **)&L.y, sizeof(float) * 8 * (size_t)m));
    CUCHK(cudaMemcpy(dx, xh, xb, cudaMemcpyHostToDevice));
    CUCHK(cudaMemcpy(ds, sc, sizeof sc, cudaMemcpyHostToDevice));
    L.x.xq = a4 ? dx : NULL, L.x.x16 = a4 ? NULL : dx, L.x.xs = ds;
    char name[48];
    ldp_name(kind, name, sizeof name);
    const int calls = L.nc < 16 ? 16 / L.nc * L.nc + (16 % L.nc ? L.nc : 0) : L.nc;
    if (profile) {
        L.B = 1;
        enq_ldp(&L, 0, g->s);
        CUCHK(cudaStreamSynchronize(g->s));
    }
    const int auto_warps = Ly.nrt <= 512 ? 16 : 8;   /* dec_ldp_gemv's default */
    for (int bi = 0; bi < nb && !profile; bi++)
        for (int wv = 0; wv < (g->variants ? 2 : 1); wv++) {   /* --variants: the other k-split too */
            L.B = batches[bi], L.o.warps = wv ? 24 - auto_warps : auto_warps;
            const double xbytes = a4 ? L.B * (Ly.npad / 2.0 + 4.0) : L.B * Ly.npad * 2.0;
            const double us = time_graph(g, enq_ldp, &L, calls), uss = time_stream(g, enq_ldp, &L, calls);
            emit_row(g, "gemv", m, n, name, "none", L.B, L.o.warps, us, uss, wbytes, wbytes + xbytes, L.nc);
        }
    for (int c = 0; c < L.nc; c++) dec_ldp_dev_free(&L.w[c]);
    free(L.w), free(qw), free(codes), free(levels), free(lv), free(xh);
    cudaFree(dx), cudaFree(ds), cudaFree(L.y);
}

/* --qtypes: the decode engine's types into qts, ldp2[_a4][-fma][-unstaged|-staged] into ldp (run_ldp's kinds). */
static int split_qtypes(const char *list, int *qts, int max, int *ldp, int *nl) {
    char buf[512];
    if (strlen(list) >= sizeof buf) cli_die(CLI_EXIT_USAGE, "--qtypes: list too long (%zu characters)", strlen(list));
    snprintf(buf, sizeof buf, "%s", list);
    int n = 0;
    *nl = 0;
    char *save = NULL;   /* strtok_r: bench_gpu_qtypes runs strtok on each name */
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k = 0;
        char nm[48];
        for (; k < kLdpKinds; k++) {
            ldp_name(k, nm, sizeof nm);
            if (!strcmp(t, nm)) break;
        }
        if (k < kLdpKinds) {
            if (*nl == kLdpKinds) cli_die(CLI_EXIT_USAGE, "--qtypes: more than %d ldp2 entries", kLdpKinds);
            ldp[(*nl)++] = k;
        } else {
            if (n == max) cli_die(CLI_EXIT_USAGE, "--qtypes: more than %d entries", max);
            char one[64];
            snprintf(one, sizeof one, "%s", t);
            n += bench_gpu_qtypes(one, qts + n, 1);
        }
    }
    return n;
}

/* ---- prefill ------------------------------------------------------------------------------------------ */

static double time_events(const gctx *g, void (*fn)(void *), void *u) {
    cudaEvent_t a, b;
    CUCHK(cudaEventCreate(&a));
    CUCHK(cudaEventCreate(&b));
    fn(u);
    double t[32];
    const int reps = g->reps < 32 ? g->reps : 32;
    for (int r = 0; r < reps; r++) {
        CUCHK(cudaEventRecord(a, g->s));
        fn(u);
        CUCHK(cudaEventRecord(b, g->s));
        CUCHK(cudaEventSynchronize(b));
        float ms;
        CUCHK(cudaEventElapsedTime(&ms, a, b));
        t[r] = ms * 1000.0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_d);
    cudaEventDestroy(a), cudaEventDestroy(b);
    return t[reps / 2];
}

typedef struct pf {
    cublasHandle_t h;
    dec_weights *w;
    void *X, *ws, *W16;
    float *Y;
    int rows, m, n, npad;
    cudaStream_t s;
} pf;

static void pf_quant(void *u) {
    pf *p = u;
    if (dec_prefill_gemm(p->h, p->w, p->X, p->npad, p->rows, p->Y, p->m, p->ws, 1024, (dec_stream)p->s) != HARP_OK)
        cli_die(CLI_EXIT_FAIL, "prefill: %s", harp_last_error());
}

static void pf_f16(void *u) {
    pf *p = u;
    const float one = 1.0f, zero = 0.0f;
    const cublasStatus_t st = harp_cublas_gemm_ex(p->h, CUBLAS_OP_T, CUBLAS_OP_N, p->m, p->rows, p->npad, &one, p->W16, CUDA_R_16F,
                                                  p->npad, p->X, CUDA_R_16F, p->npad, &zero, p->Y, CUDA_R_32F, p->m,
                                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) cli_die(CLI_EXIT_FAIL, "cublasGemmEx: %s", harp_cublas_why(st));
}

static void run_prefill(gctx *g, int m, int n, const int *qts, int nq, int rows) {
    pf p;
    memset(&p, 0, sizeof p);
    p.rows = rows, p.m = m, p.n = n, p.npad = dec_npad(n), p.s = g->s;
    const cublasStatus_t st = harp_cublas_create(&p.h);
    if (st != CUBLAS_STATUS_SUCCESS) cli_die(CLI_EXIT_FAIL, "cublasCreate: %s", harp_cublas_why(st));
    harp_cublas_set_stream(p.h, g->s);
    CUCHK(cudaMalloc(&p.X, (size_t)rows * p.npad * 2));
    CUCHK(cudaMalloc(&p.ws, (size_t)1024 * p.npad * 2));
    CUCHK(cudaMalloc(&p.W16, (size_t)m * p.npad * 2));
    CUCHK(cudaMalloc((void **)&p.Y, sizeof(float) * (size_t)rows * m));
    dec_weights wf;
    HCHK(dec_weights_random(HARP_QTYPE_F16, m, n, 0, 0, 77, &wf));
    HCHK(dec_dequant_f16(&wf, 0, m, p.W16, p.npad, (dec_stream)g->s));   /* dense row-major fp16 copy */
    HCHK(dec_dequant_f16(&wf, 0, rows < m ? rows : m, p.X, p.npad, (dec_stream)g->s));
    dec_weights_free(&wf);
    const double flops = 2.0 * rows * (double)m * n;
    const double t16 = time_events(g, pf_f16, &p);
    for (int qi = 0; qi < nq; qi++) {
        dec_weights w;
        HCHK(dec_weights_random(qts[qi], m, n, 0.02f, 0.005f, 5, &w));
        p.w = &w;
        const double t = time_events(g, pf_quant, &p);
        if (g->json)
            printf("{\"bench\": \"gemv\", \"kind\": \"prefill\", \"device\": \"gpu\", \"shape\": \"%dx%d\", \"m\": %d, \"n\": %d, "
                   "\"qtype\": \"%s\", \"rows\": %d, \"us\": %.1f, \"tok_s\": %.0f, \"tflops\": %.1f, \"f16_cublas_us\": %.1f, "
                   "\"f16_cublas_tflops\": %.1f, \"vs_f16\": %.3f}\n",
                   m, n, m, n, bench_gpu_qtype_name(qts[qi]), rows, t, rows / (t * 1e-6), flops / (t * 1e-6) / 1e12, t16,
                   flops / (t16 * 1e-6) / 1e12, t16 / t);
        else
            printf("prefill %6dx%-6d %-5s rows=%d %9.1f us  %6.1f TFLOP/s  (fp16 cuBLAS %9.1f us, %6.1f TFLOP/s)  %.2fx of fp16\n", m, n,
                   bench_gpu_qtype_name(qts[qi]), rows, t, flops / (t * 1e-6) / 1e12, t16, flops / (t16 * 1e-6) / 1e12, t16 / t);
        fflush(stdout);
        dec_weights_free(&w);
    }
    cudaFree(p.X), cudaFree(p.ws), cudaFree(p.W16), cudaFree(p.Y);
    harp_cublas_destroy(p.h);
}

/* ---- pfold: one packed linear at prefill, transforms on the activations vs folded into the weights ---------- */

typedef struct pl {
    dec_linear_dev L;
    dec_linear_ws ws;
    const float *X;
    float *Y;
    int rows, m, n;
    cudaStream_t s;
} pl;

static void pl_run(void *u) {
    pl *p = u;
    if (dec_linear_run(&p->L, p->X, p->n, p->rows, NULL, 0.0f, p->Y, p->m, 0, &p->ws, (dec_stream)p->s) != HARP_OK)
        cli_die(CLI_EXIT_FAIL, "pfold: %s", harp_last_error());
}

/* dec_linear_run on `rows` rows with RHT / HARP transforms on both sides: HARP_CUDA_FOLD off (the
 * transforms on every row) against the weight fold forced on (dec_fold_weights every call, as the CUDA
 * backend runs a call), and which one dec_fold_pays picks — the cost rule R·(m + n) > 2·m·n checked
 * at real shapes. */
static void run_pfold(gctx *g, int m, int n, const int *qts, int nq, int rows, const char *rots) {
    const int npad = dec_npad(n), wide = m > n ? m : n;
    pl p;
    memset(&p, 0, sizeof p);
    p.rows = rows, p.m = m, p.n = n, p.s = g->s;
    cublasHandle_t h;
    const cublasStatus_t cst = harp_cublas_create(&h);
    if (cst != CUBLAS_STATUS_SUCCESS) cli_die(CLI_EXIT_FAIL, "cublasCreate: %s", harp_cublas_why(cst));
    float *X, *sg = dec_synth_signs(wide, 5), *dsg;
    CUCHK(cudaMalloc((void **)&X, sizeof(float) * (size_t)rows * n));
    CUCHK(cudaMalloc((void **)&p.Y, sizeof(float) * (size_t)rows * m));
    CUCHK(cudaMalloc((void **)&dsg, sizeof(float) * (size_t)wide));
    CUCHK(cudaMemcpy(dsg, sg, sizeof(float) * (size_t)wide, cudaMemcpyHostToDevice));
    free(sg);
    {
        float *hx = malloc(sizeof(float) * (size_t)rows * n);
        harp_rng r;
        harp_rng_seed(&r, 6);
        for (size_t i = 0; i < (size_t)rows * n; i++) hx[i] = (float)harp_rng_normal(&r);
        CUCHK(cudaMemcpy(X, hx, sizeof(float) * (size_t)rows * n, cudaMemcpyHostToDevice));
        free(hx);
    }
    p.X = X;
    dec_linear_ws *ws = &p.ws;
    ws->max_rows = rows, ws->tile_rows = 1024, ws->blas = h, ws->fold_elems = (size_t)m * npad;
    CUCHK(cudaMalloc(&ws->xh, (size_t)2 * rows * npad * 2));
    CUCHK(cudaMalloc((void **)&ws->yt, sizeof(float) * 2 * (size_t)rows * m));
    CUCHK(cudaMalloc((void **)&ws->scr, sizeof(float) * 2 * (size_t)rows * wide));
    CUCHK(cudaMalloc(&ws->tile, (size_t)1024 * npad * 2));
    CUCHK(cudaMalloc((void **)&ws->fold, sizeof(float) * ws->fold_elems));
    CUCHK(cudaMalloc(&ws->fold_w, 6 * ws->fold_elems));
    const int mode0 = dec_prefill_fold();
    char buf[64];
    for (int qi = 0; qi < nq; qi++) {
        if (qts[qi] == HARP_QTYPE_F16) continue;   /* fp16 models have no rotation */
        dec_weights w;
        HCHK(dec_weights_random(qts[qi], m, n, 0.02f, 0.005f, 5, &w));
        p.L.w = w;
        snprintf(buf, sizeof buf, "%s", rots);
        for (char *rot = strtok(buf, ","); rot; rot = strtok(NULL, ",")) {
            dec_xform xi, xo, xt;
            rotation_xforms(rot, m, n, &xi, &xo);
            HCHK(dec_xform_transpose(&xi, &xt));
            dec_xdev *dxi, *dxo, *dxt;
            HCHK(dec_xform_upload(&xi, rows, &dxi));
            HCHK(dec_xform_upload(&xo, rows, &dxo));
            HCHK(dec_xform_upload(&xt, rows, &dxt));
            p.L.xin = dxi, p.L.xout = dxo, p.L.xin_t = dxt, p.L.pre = dsg, p.L.post = dsg;
            dec_set_prefill_fold(0);
            const double t0 = time_events(g, pl_run, &p);
            dec_set_prefill_fold(2);
            const double t1 = time_events(g, pl_run, &p);
            dec_set_prefill_fold(1);
            const int pays = dec_fold_pays(&p.L, rows);
            dec_set_prefill_fold(mode0);
            if (g->json)
                printf("{\"bench\": \"gemv\", \"kind\": \"pfold\", \"device\": \"gpu\", \"shape\": \"%dx%d\", \"m\": %d, \"n\": %d, "
                       "\"qtype\": \"%s\", \"rotation\": \"%s\", \"rows\": %d, \"us_activations\": %.1f, \"us_folded\": %.1f, "
                       "\"fold_speedup\": %.3f, \"fold_default\": %d}\n",
                       m, n, m, n, bench_gpu_qtype_name(qts[qi]), rot, rows, t0, t1, t0 / t1, pays);
            else
                printf("pfold   %6dx%-6d %-5s %-4s rows=%d  transforms on the rows %9.1f us, folded %9.1f us  (%.2fx; default: %s)\n", m,
                       n, bench_gpu_qtype_name(qts[qi]), rot, rows, t0, t1, t0 / t1, pays ? "fold" : "rows");
            fflush(stdout);
            dec_xform_dev_free(dxi), dec_xform_dev_free(dxo), dec_xform_dev_free(dxt);
            dec_xform_free(&xi), dec_xform_free(&xo), dec_xform_free(&xt);
        }
        dec_weights_free(&w);
    }
    cudaFree(X), cudaFree(p.Y), cudaFree(dsg), cudaFree(ws->xh), cudaFree(ws->yt), cudaFree(ws->scr), cudaFree(ws->tile),
        cudaFree(ws->fold), cudaFree(ws->fold_w);
    harp_cublas_destroy(h);
}

/* ---- attention ------------------------------------------------------------------------------------------ */

typedef struct at {
    dec_attn_shape s;
    int B, ldq;
    float *qkv, *q, *out, *ws, *inv;
    void *kc, *vc;
    int32_t *pos;
    int kv_bits;   /* 16 or 4 */
} at;

static void enq_attn(void *u, int i, cudaStream_t s) {
    (void)i;
    at *a = u;
    harp_status st;
    if (a->kv_bits == 4) {
        st = dec_rope_kv4(&a->s, a->qkv, a->ldq, a->B, a->pos, a->inv, 0, 1.0f, 1.0f, a->q, a->kc, a->vc, (dec_stream)s);
        if (st == HARP_OK) st = dec_attn_kv4(&a->s, a->q, a->kc, a->vc, a->B, a->pos, a->out, a->ws, (dec_stream)s);
    } else {
        st = dec_rope_kv(&a->s, a->qkv, a->ldq, a->B, a->pos, a->inv, 0, a->q, a->kc, a->vc, (dec_stream)s);
        if (st == HARP_OK) st = dec_attn(&a->s, a->q, a->kc, a->vc, a->B, a->pos, a->out, a->ws, (dec_stream)s);
    }
    if (st != HARP_OK)
        cli_die(CLI_EXIT_FAIL, "attention: %s", harp_last_error());
}

/* Returns µs per call; kv16_us > 0 (a 4-bit row): the fp16 row's, for vs_kv16. */
static double run_attn(gctx *g, int nh, int nkv, int ctx, int B, int kv_bits, double kv16_us) {
    at a;
    memset(&a, 0, sizeof a);
    a.s = (dec_attn_shape){nh, nkv, 128, ctx, 0, NULL};
    a.B = B, a.kv_bits = kv_bits;
    const int hd = 128, qd = nh * hd, kvd = nkv * hd;
    a.ldq = qd + 2 * kvd;
    const size_t cache = (size_t)B * ctx * kvd;
    /* random fp16 contents: as 4-bit rows, any code byte and zero point is valid and the scales
     * (even offsets) are the fp16 values ±[1/16, 1/8) */
    const size_t cbytes = kv_bits == 4 ? (size_t)B * dec_kv4_layout(&a.s).seq_bytes : cache * 2;
    CUCHK(cudaMalloc(&a.kc, cbytes));
    CUCHK(cudaMalloc(&a.vc, cbytes));
    dec_weights tmp;
    HCHK(dec_weights_random(HARP_QTYPE_F16, 16, 128, 0, 0, 9, &tmp));
    for (size_t off = 0; off < cbytes; off += tmp.plane_bytes[0]) {
        const size_t nbytes = cbytes - off < tmp.plane_bytes[0] ? cbytes - off : tmp.plane_bytes[0];
        CUCHK(cudaMemcpy((char *)a.kc + off, tmp.plane[0], nbytes, cudaMemcpyDeviceToDevice));
        CUCHK(cudaMemcpy((char *)a.vc + off, tmp.plane[0], nbytes, cudaMemcpyDeviceToDevice));
    }
    dec_weights_free(&tmp);
    CUCHK(cudaMalloc((void **)&a.qkv, sizeof(float) * (size_t)B * a.ldq));
    CUCHK(cudaMemset(a.qkv, 0, sizeof(float) * (size_t)B * a.ldq));
    CUCHK(cudaMalloc((void **)&a.q, sizeof(float) * (size_t)B * qd));
    CUCHK(cudaMalloc((void **)&a.out, sizeof(float) * (size_t)B * qd));
    CUCHK(cudaMalloc((void **)&a.ws, sizeof(float) * dec_attn_workspace_floats(&a.s, B)));
    CUCHK(cudaMalloc((void **)&a.inv, sizeof(float) * 64));
    CUCHK(cudaMemset(a.inv, 0, sizeof(float) * 64));
    CUCHK(cudaMalloc((void **)&a.pos, sizeof(int32_t) * (size_t)B));
    int32_t pos[8];
    for (int b = 0; b < B; b++) pos[b] = ctx - 1;
    CUCHK(cudaMemcpy(a.pos, pos, sizeof(int32_t) * (size_t)B, cudaMemcpyHostToDevice));
    const double us = time_graph(g, enq_attn, &a, 8), vs = kv16_us > 0 ? kv16_us / us : 1.0;
    const double bytes = kv_bits == 4 ? 2.0 * (double)B * ctx * nkv * (hd / 2 + 3) : 2.0 * (double)cache * 2;
    if (g->json)
        printf("{\"bench\": \"gemv\", \"kind\": \"attn\", \"device\": \"gpu\", \"heads\": %d, \"kv_heads\": %d, \"head_dim\": 128, "
               "\"ctx\": %d, \"batch\": %d, \"kv_bits\": %d, \"us\": %.2f, \"kv_bytes\": %.0f, \"gbps\": %.1f, \"copy_gbps\": %.1f, "
               "\"pct_of_copy\": %.1f, \"vs_kv16\": %.3f}\n",
               nh, nkv, ctx, B, kv_bits, us, bytes, bytes / (us * 1e-6) / 1e9, g->copy_gbps, 100.0 * bytes / (us * 1e-6) / 1e9 / g->copy_gbps,
               vs);
    else
        printf("attn    heads %d/%d ctx %5d B=%d KV%-2d %9.2f us  %8.1f GB/s of KV  %5.1f%% of copy  %5.2fx kv16 speed\n", nh, nkv,
               ctx, B, kv_bits, us, bytes / (us * 1e-6) / 1e9, 100.0 * bytes / (us * 1e-6) / 1e9 / g->copy_gbps, vs);
    fflush(stdout);
    cudaFree(a.kc), cudaFree(a.vc), cudaFree(a.qkv), cudaFree(a.q), cudaFree(a.out), cudaFree(a.ws), cudaFree(a.inv), cudaFree(a.pos);
    return us;
}

/* ---- prefill attention: the backend's op over windows, one launch vs cuBLAS + softmax ------------------- */

typedef struct pa {
    harp_backend *b;
    harp_ws *ws;
    harp_kv_cache kv;
    const harp_plan *p;
    float *q, *out;
} pa;

/* Median µs of the op, launch to completion (host clock around the call and the backend's sync: the
 * backend runs on its own stream; these calls take 0.1–100 ms, so the µs of the host side hardly count). */
static double pa_time(const gctx *g, pa *a) {
    HCHK(a->b->vt->attention(a->b, a->ws, a->q, &a->kv, 0, a->p, a->out));
    HCHK(a->b->vt->sync(a->b));
    double t[32];
    const int reps = g->reps < 32 ? g->reps : 32;
    for (int r = 0; r < reps; r++) {
        const double t0 = harp_time_s();
        HCHK(a->b->vt->attention(a->b, a->ws, a->q, &a->kv, 0, a->p, a->out));
        HCHK(a->b->vt->sync(a->b));
        t[r] = (harp_time_s() - t0) * 1e6;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_d);
    return t[reps / 2];
}

/* windows of ctx rows (enough for --prefill-rows, at least one), heads nh / nkv, head_dim hd */
static void run_pattn(gctx *g, harp_backend *b, int nh, int nkv, int hd, int ctx, int rows, int f32) {
    const int W = rows / ctx > 0 ? rows / ctx : 1, R = W * ctx, qd = nh * hd, kvd = nkv * hd;
    harp_span *sp = malloc(sizeof *sp * (size_t)W);
    if (!sp) cli_die(CLI_EXIT_FAIL, "pattn: out of memory");
    for (int w = 0; w < W; w++) sp[w] = (harp_span){w * ctx, ctx, 0, -1, w * ctx};
    const harp_plan plan = {sp, W, R, 0, 1};
    harp_dims d = {qd, 3 * qd, nh, nkv, hd, 8, 1, 0, R, ctx};
    const size_t es = f32 ? 4 : 2;   /* cache element bytes */
    pa a = {b, NULL, {f32 ? HARP_QTYPE_F32 : HARP_QTYPE_F16, 1, R, kvd, (size_t)kvd * es, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL}, &plan, NULL, NULL};
    harp_rng rng;
    harp_rng_seed(&rng, 11);
    const size_t nkvv = (size_t)R * kvd, nq = (size_t)R * qd;
    void *hk = malloc(es * nkvv);
    float *hq = malloc(4 * nq);
    if (!hk || !hq) cli_die(CLI_EXIT_FAIL, "pattn: out of memory");
    for (size_t i = 0; i < nkvv; i++) {
        const float x = (float)harp_rng_normal(&rng);
        if (f32) ((float *)hk)[i] = x;
        else ((uint16_t *)hk)[i] = harp_f32_to_f16(x);
    }
    for (size_t i = 0; i < nq; i++) hq[i] = (float)harp_rng_normal(&rng);
    CUCHK(cudaMalloc(&a.kv.k, es * nkvv));
    CUCHK(cudaMalloc(&a.kv.v, es * nkvv));
    CUCHK(cudaMalloc((void **)&a.q, 4 * nq));
    CUCHK(cudaMalloc((void **)&a.out, 4 * nq));
    CUCHK(cudaMemcpy(a.kv.k, hk, es * nkvv, cudaMemcpyHostToDevice));
    CUCHK(cudaMemcpy(a.kv.v, hk, es * nkvv, cudaMemcpyHostToDevice));
    CUCHK(cudaMemcpy(a.q, hq, 4 * nq, cudaMemcpyHostToDevice));
    double us[3];   /* hc_attn_prefill modes 2 (tensor cores), 1 (FFMA), 0 (cuBLAS + softmax: the workspace decides at creation) */
    for (int mode = 2; mode >= 0; mode--) {
        hc_set_attn_prefill(mode);
        HCHK(b->vt->ws_create(b, &d, &a.ws));
        HCHK(b->vt->plan_begin(b, a.ws, &plan));
        us[2 - mode] = pa_time(g, &a);
        b->vt->ws_free(b, a.ws);
    }
    hc_set_attn_prefill(2);
    /* causal: query i sees i + 1 keys; 2 FLOP per multiply-add, scores and weighted values */
    const double flops = 4.0 * W * nh * hd * ((double)ctx * (ctx + 1) / 2);
    if (g->json)
        printf("{\"bench\": \"gemv\", \"kind\": \"pattn\", \"device\": \"gpu\", \"kv\": \"%s\", \"heads\": %d, \"kv_heads\": %d, "
               "\"head_dim\": %d, \"ctx\": %d, \"windows\": %d, \"us_tc\": %.1f, \"us_flash\": %.1f, \"us_cublas\": %.1f, \"speedup\": %.3f, "
               "\"speedup_flash\": %.3f, \"tflops_tc\": %.2f, \"tflops_flash\": %.2f, \"tflops_cublas\": %.2f}\n",
               f32 ? "f32" : "f16", nh, nkv, hd, ctx, W, us[0], us[1], us[2], us[2] / us[0], us[2] / us[1], flops / (us[0] * 1e-6) / 1e12,
               flops / (us[1] * 1e-6) / 1e12, flops / (us[2] * 1e-6) / 1e12);
    else
        printf("pattn   %s heads %d/%d hd %d ctx %5d x%-3d tensor cores %9.1f us (%5.1f TFLOP/s)  FFMA %9.1f us  cuBLAS + softmax %9.1f us  "
               "(%.2fx, %.2fx)\n", f32 ? "f32" : "f16", nh, nkv, hd, ctx, W, us[0], flops / (us[0] * 1e-6) / 1e12, us[1], us[2], us[2] / us[0], us[2] / us[1]);
    fflush(stdout);
    cudaFree(a.kv.k), cudaFree(a.kv.v), cudaFree(a.q), cudaFree(a.out);
    free(hk), free(hq), free(sp);
}

static void run_pattns(gctx *g, int rows) {
    harp_backend *b = NULL;
    HCHK(harp_backend_cuda_create(0, &b));
    static const int shp[][3] = {{8, 4, 64}, {32, 32, 128}, {32, 8, 128}};   /* ref-llama, Llama-2-7B, Llama-3-8B */
    static const int ctxs[] = {512, 2048, 4096};
    for (size_t si = 0; si < sizeof shp / sizeof shp[0]; si++)
        for (size_t ci = 0; ci < sizeof ctxs / sizeof ctxs[0]; ci++)
            for (int f32 = 0; f32 < 2; f32++) run_pattn(g, b, shp[si][0], shp[si][1], shp[si][2], ctxs[ci], rows, f32);
    harp_backend_free(b);
}

/* ---- driver ------------------------------------------------------------------------------------------------- */

static void usage_gpu(FILE *f) {
    fprintf(f, "usage: harp bench gemv --gpu [--json] [--shapes MxN,...] [--qtypes LIST] [--batch LIST] [--rotations rht,harp]\n"
               "                         [--modes gemv,linear,prefill,pfold,attn,pattn] [--prefill-rows N] [--reps N] [--cold-mb MB]\n"
               "                         [--variants] [--profile]\n"
               "  qtypes: f16 int2 int3 int4 int8 e8p2 rvq3 rvq4 (default: these) qtip2 qtip3 qtip4 (HYB),\n"
               "          qtipK-1mad, qtipK-3inst, ldp2_a4 ldp2 (gemv rows only, group 128;\n"
               "          -fma: the decode's shifts as IMAD.HI; -unstaged / -staged: activations read from global\n"
               "          memory / from the CTA's copy in shared memory); batch 1..8 (default 1,4)\n");
}

static int parse_list(const char *s, int *out, int max, int lo, int hi, const char *flag) {
    int k = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        if (k == max) cli_die(CLI_EXIT_USAGE, "%s: too many entries", flag);
        out[k++] = (int)cli_parse_long(flag, t, lo, hi);
    }
    return k;
}

int bench_gemv_gpu(int argc, char **argv) {
    static const struct option opts[] = {{"gpu", no_argument, 0, 'g'},       {"json", no_argument, 0, 'j'},
                                         {"shapes", required_argument, 0, 's'}, {"qtypes", required_argument, 0, 'q'},
                                         {"batch", required_argument, 0, 'b'},  {"rotations", required_argument, 0, 'r'},
                                         {"modes", required_argument, 0, 'M'},  {"prefill-rows", required_argument, 0, 'P'},
                                         {"reps", required_argument, 0, 'R'},   {"cold-mb", required_argument, 0, 'C'},
                                         {"variants", no_argument, 0, 'V'},     {"profile", no_argument, 0, 'p'},
                                         {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    gctx g;
    memset(&g, 0, sizeof g);
    g.reps = 30;
    g.cold_mb = 256;
    const char *shapes = "4096x4096,11008x4096,4096x11008,12288x4096,22016x4096", *qlist = "f16,int2,int3,int4,int8,e8p2,rvq3,rvq4";
    const char *rots = "rht,harp", *modes = "gemv,linear,prefill,pfold,attn";
    int batches[8] = {1, 4}, nb = 2, prows = 2048, profile = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'g': break;
        case 'j': g.json = 1; break;
        case 's': shapes = optarg; break;
        case 'q': qlist = optarg; break;
        case 'b': nb = parse_list(optarg, batches, 8, 1, 8, "--batch"); break;
        case 'r': rots = optarg; break;
        case 'M': modes = optarg; break;
        case 'P': prows = (int)cli_parse_long("--prefill-rows", optarg, 1, 65536); break;
        case 'R': g.reps = (int)cli_parse_long("--reps", optarg, 3, 256); break;
        case 'C': g.cold_mb = cli_parse_double("--cold-mb", optarg, 1, 65536); break;
        case 'V': g.variants = 1; break;
        case 'p': profile = 1; break;
        case 'h': usage_gpu(stdout); return 0;
        default: usage_gpu(stderr); return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) cli_die(CLI_EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
    {
        char rb[64];
        snprintf(rb, sizeof rb, "%s", rots);
        for (char *r = strtok(rb, ","); r; r = strtok(NULL, ","))
            if (strcmp(r, "rht") && strcmp(r, "harp")) cli_die(CLI_EXIT_USAGE, "--rotations: expected rht or harp, got '%s'", r);
    }
    int qts[32], ldp[kLdpKinds], nl;
    const int nq = split_qtypes(qlist, qts, 32, ldp, &nl);
    if (!dec_cuda_available()) cli_die(CLI_EXIT_FAIL, "harp bench gemv --gpu: no CUDA device");
    CUCHK(cudaStreamCreateWithFlags(&g.s, cudaStreamNonBlocking));
    const int do_gemv = strstr(modes, "gemv") != NULL, do_lin = strstr(modes, "linear") != NULL;
    const int do_pf = strstr(modes, "prefill") != NULL, do_fold = strstr(modes, "pfold") != NULL, do_pa = strstr(modes, "pattn") != NULL;
    int do_at = 0;   /* "attn" alone, not the one inside "pattn" */
    for (const char *t = strstr(modes, "attn"); t && !do_at; t = strstr(t + 1, "attn")) do_at = t == modes || t[-1] == ',';
    if (!profile) {
        g.copy_gbps = measure_copy(&g);
        struct cudaDeviceProp prop;
        CUCHK(cudaGetDeviceProperties(&prop, 0));
        if (g.json)
            printf("{\"bench\": \"gemv\", \"kind\": \"copy\", \"device\": \"gpu\", \"name\": \"%s\", \"sms\": %d, \"l2_bytes\": %d, "
                   "\"copy_gbps\": %.1f}\n",
                   prop.name, prop.multiProcessorCount, prop.l2CacheSize, g.copy_gbps);
        else
            printf("device %s, %d SMs, L2 %d MB; device-to-device copy %.1f GB/s (read + write)\n", prop.name, prop.multiProcessorCount,
                   prop.l2CacheSize >> 20, g.copy_gbps);
    }
    const char *p = shapes;
    long m, n;
    while (bench_next_shape(&p, &m, &n)) {
        if (do_gemv || do_lin || profile)
            for (int qi = 0; qi < nq; qi++)
                run_shape(&g, (int)m, (int)n, qts[qi], batches, nb, do_gemv, do_lin ? rots : NULL, profile);
        if (do_gemv || profile)
            for (int li = 0; li < nl; li++) run_ldp(&g, (int)m, (int)n, ldp[li], batches, nb, profile);
        if (do_pf && !profile) run_prefill(&g, (int)m, (int)n, qts, nq, prows);
        if (do_fold && !profile) run_pfold(&g, (int)m, (int)n, qts, nq, prows, rots);
    }
    if (do_at && !profile) {
        static const int ctxs[] = {512, 4096};
        for (int ci = 0; ci < 2; ci++)
            for (int bi = 0; bi < nb; bi++) {
                for (int gi = 0; gi < 2; gi++) {   /* MHA 32/32 and GQA 32/8: fp16 cache, then 4-bit */
                    const double t16 = run_attn(&g, 32, gi ? 8 : 32, ctxs[ci], batches[bi], 16, 0);
                    run_attn(&g, 32, gi ? 8 : 32, ctxs[ci], batches[bi], 4, t16);
                }
            }
    }
    if (do_pa && !profile) run_pattns(&g, prows);
    cudaStreamDestroy(g.s);
    return 0;
}
#endif
