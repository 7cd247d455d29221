/* harp bench igemm --gpu: the integer prefill GEMM of W/A/KV models (decode.h, "W/A/KV on the GPU")
 * against the cuBLAS fp16 GEMM of dec_prefill_gemm's dense path, side by side in one run, at the
 * Llama-2-7B linear shapes. Both take the same fp16 activations X [batch][k] and write fp32 Y [batch][m]:
 *   fp16   cublasGemmEx fp16 × fp16 → fp32 (CUBLAS_COMPUTE_32F), the weight a dense fp16 [m][k];
 *   int8   dec_ilinear, the library's path: dec_aq_rows (per-token int8 codes + scales, A8 or A4), then
 *          where dec_igemm_epi_pays dec_igemm_epi (wgmma int8 GEMM with the scales applied in its
 *          epilogue → fp32), else dec_igemm (cuBLAS int8 × int8 → int32) → dec_iepi; the weight int8
 *          [m][kpad].
 * Warm (the same buffers every call), each time the median over --reps event-timed runs of --calls
 * back-to-back calls on one stream; the parts are also timed alone: quant_ms, the cuBLAS pieces gemm_ms
 * and epilogue_ms (cublas_ms = quant + gemm + epilogue, the three-kernel path), fused_ms (dec_igemm_epi
 * alone; -1 where the device has none; launched with programmatic dependent launch as the library does,
 * so one call's set-up overlaps the tail of the one before: fused_persist_nopdl_ms without).
 * speedup = fp16_ms / int8_ms; fused_speedup = fp16_ms / fused_ms (the two GEMMs alone, each from its
 * own input type to fp32); tops = 2·batch·m·k / int8 time. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"

#ifndef HARP_HAVE_CUDA
int bench_igemm(int argc, char **argv) {
    (void)argc, (void)argv;
    cli_die(CLI_EXIT_FAIL, "harp bench igemm: harp was built without CUDA (-DHARP_CUDA=ON)");
}
#else
#include <cuda_runtime_api.h>

typedef struct ig {
    cublasHandle_t h;
    int m, k, kpad, ldc, rows, qmax;
    void *X, *W16;     /* fp16 [rows][kpad], fp16 [m][kpad] */
    int8_t *W8, *Q;    /* int8 [m][kpad], int8 [rows][kpad] */
    float *sw, *sa, *Y;
    int32_t *C;
} ig;

static void call_f16(void *u, int call, void *s) {
    const ig *p = u;
    (void)call, (void)s;
    const float one = 1.0f, zero = 0.0f;
    const cublasStatus_t st = harp_cublas_gemm_ex(p->h, CUBLAS_OP_T, CUBLAS_OP_N, p->m, p->rows, p->kpad, &one, p->W16, CUDA_R_16F,
                                                  p->kpad, p->X, CUDA_R_16F, p->kpad, &zero, p->Y, CUDA_R_32F, p->m,
                                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) cli_die(CLI_EXIT_FAIL, "fp16 cublasGemmEx: %s", harp_cublas_why(st));
}
static void call_quant(void *u, int call, void *s) {
    const ig *p = u;
    (void)call;
    HCHK(dec_aq_rows(p->X, 1, p->rows, p->k, p->kpad, p->qmax, 1.0f, p->Q, p->kpad, p->sa, (dec_stream)s));
}
static void call_gemm(void *u, int call, void *s) {
    const ig *p = u;
    (void)call;
    HCHK(dec_igemm(p->h, p->Q, p->kpad, p->rows, p->W8, p->kpad, p->m, p->kpad, p->C, p->ldc, (dec_stream)s));
}
static void call_epi(void *u, int call, void *s) {
    const ig *p = u;
    (void)call;
    HCHK(dec_iepi(p->C, p->ldc, p->rows, p->m, p->sa, p->sw, NULL, NULL, p->Y, 0, p->m, (dec_stream)s));
}
static void call_cublas(void *u, int call, void *s) {
    call_quant(u, call, s), call_gemm(u, call, s), call_epi(u, call, s);
}
static void call_fused(void *u, int call, void *s) {
    const ig *p = u;
    (void)call;
    HCHK(dec_igemm_epi(p->Q, p->kpad, p->rows, p->W8, p->kpad, p->m, p->kpad, p->sa, p->sw, NULL, NULL, p->Y, p->m, (dec_stream)s));
}
static void call_int8(void *u, int call, void *s) {
    const ig *p = u;
    (void)call;
    HCHK(dec_ilinear(p->h, p->W8, p->sw, p->m, p->k, p->X, 1, p->kpad, p->rows, p->qmax, 1.0f, p->Y, p->m, p->Q, p->sa, p->C,
                     (dec_stream)s));
}

static void *dput(const void *h, size_t bytes) {
    void *d = NULL;
    CUCHK(cudaMalloc(&d, bytes));
    CUCHK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}

/* Random fp16 N(0, 1) [rows][kpad] with zeros in [k, kpad). */
static void *rand_f16(harp_rng *r, int rows, int k, int kpad) {
    uint16_t *h = calloc((size_t)rows * kpad, 2);
    if (!h) cli_die(CLI_EXIT_FAIL, "out of memory");
    for (int i = 0; i < rows; i++)
        for (int c = 0; c < k; c++) h[(size_t)i * kpad + c] = harp_f32_to_f16((float)harp_rng_normal(r));
    void *d = dput(h, 2 * (size_t)rows * kpad);
    free(h);
    return d;
}

typedef struct iopts {
    int json, reps, calls;
    int ncfg, cfg[32][3];   /* the fused kernel's (cluster cx, cy, output channels a tile): --cluster × --tile */
    cudaStream_t s;
    cublasHandle_t h;
} iopts;

static void shape_rows(const iopts *o, int m, int k, const int *batches, int nb, const int *abits, int na) {
    harp_rng r;
    harp_rng_seed(&r, (uint64_t)m * 131 + (uint64_t)k);
    int maxb = 1;
    for (int i = 0; i < nb; i++) maxb = batches[i] > maxb ? batches[i] : maxb;
    ig p = {.h = o->h, .m = m, .k = k, .kpad = dec_ikpad(k), .ldc = dec_ildc(m)};
    p.W16 = rand_f16(&r, m, k, p.kpad);
    p.X = rand_f16(&r, maxb, k, p.kpad);
    {
        int8_t *w = calloc((size_t)m * p.kpad, 1);
        float *sw = malloc(sizeof(float) * (size_t)m);
        if (!w || !sw) cli_die(CLI_EXIT_FAIL, "out of memory");
        for (size_t i = 0; i < (size_t)m * p.kpad; i++)
            if ((int)(i % (size_t)p.kpad) < k) w[i] = (int8_t)(harp_rng_u64(&r) % 255 - 127);
        for (int i = 0; i < m; i++) sw[i] = (float)(0.001 + 0.001 * harp_rng_uniform(&r));
        p.W8 = dput(w, (size_t)m * p.kpad), p.sw = dput(sw, sizeof(float) * (size_t)m);
        free(w), free(sw);
    }
    CUCHK(cudaMalloc((void **)&p.Q, (size_t)maxb * p.kpad));
    CUCHK(cudaMalloc((void **)&p.sa, sizeof(float) * (size_t)maxb));
    CUCHK(cudaMalloc((void **)&p.C, sizeof(int32_t) * (size_t)maxb * p.ldc));
    CUCHK(cudaMalloc((void **)&p.Y, sizeof(float) * (size_t)maxb * m));
    for (int bi = 0; bi < nb; bi++)
        for (int ai = 0; ai < na; ai++) {
            p.rows = batches[bi], p.qmax = abits[ai] == 8 ? 127 : 7;
            /* what does not depend on the fused kernel's configuration, once */
            const double t16 = bench_gpu_time_stream(o->s, o->reps, call_f16, &p, o->calls);
            const double tq = bench_gpu_time_stream(o->s, o->reps, call_quant, &p, o->calls);
            const double tg = bench_gpu_time_stream(o->s, o->reps, call_gemm, &p, o->calls);
            const double te = bench_gpu_time_stream(o->s, o->reps, call_epi, &p, o->calls);
            const double tc = bench_gpu_time_stream(o->s, o->reps, call_cublas, &p, o->calls);
            for (int ci = 0; ci < o->ncfg; ci++) {   /* a row per tile width and cluster shape */
                const int cx = o->cfg[ci][0], cy = o->cfg[ci][1], tile = o->cfg[ci][2];
                const char cluster[4] = {(char)('0' + cx), 'x', (char)('0' + cy), 0};
                dec_set_igemm_tile(tile);
                dec_set_igemm_cluster(cx, cy);
                const int resident = dec_igemm_resident_clusters(cx, cy);
                const double t8 = bench_gpu_time_stream(o->s, o->reps, call_int8, &p, o->calls);   /* the library's path as set */
                /* the fused kernel with each tile order (decode.h, dec_set_igemm_raster), side by side */
                double tf = -1e3, tfc = -1e3, tfp = -1e3, tfn = -1e3;
                if (dec_igemm_epi_available()) {
                    dec_set_igemm_raster(1);
                    dec_set_igemm_persistent(0, 0);
                    tf = bench_gpu_time_stream(o->s, o->reps, call_fused, &p, o->calls);
                    dec_set_igemm_persistent(1, 0);
                    tfp = bench_gpu_time_stream(o->s, o->reps, call_fused, &p, o->calls);
                    const int pdl = dec_pdl();   /* the same without programmatic dependent launch: what it overlaps */
                    dec_set_pdl(0);
                    tfn = bench_gpu_time_stream(o->s, o->reps, call_fused, &p, o->calls);
                    dec_set_pdl(pdl);
                    dec_set_igemm_persistent(0, 0);
                    dec_set_igemm_raster(0);
                    tfc = bench_gpu_time_stream(o->s, o->reps, call_fused, &p, o->calls);
                    dec_set_igemm_raster(-1);
                    dec_set_igemm_persistent(-1, 0);
                }
                const double ops = 2.0 * p.rows * (double)m * k, sp = t16 / t8;
                const int fused = dec_igemm_epi_pays(p.rows, m);
                if (o->json)
                    printf("{\"bench\": \"igemm\", \"kind\": \"igemm\", \"device\": \"gpu\", \"m\": %d, \"n\": %d, \"batch\": %d, "
                           "\"a_bits\": %d, \"path\": \"%s\", \"cluster\": \"%s\", \"tile_n\": %d, \"fp16_ms\": %.5f, \"int8_ms\": %.5f, \"speedup\": %.3f, \"tops\": %.1f, "
                           "\"fp16_tflops\": %.1f, \"quant_ms\": %.5f, \"gemm_ms\": %.5f, \"epilogue_ms\": %.5f, \"gemm_tops\": %.1f, "
                           "\"gemm_speedup\": %.3f, \"cublas_ms\": %.5f, \"fused_ms\": %.5f, \"fused_tops\": %.1f, \"fused_speedup\": %.3f, "
                           "\"fused_cols_ms\": %.5f, \"fused_cols_speedup\": %.3f, \"fused_persist_ms\": %.5f, \"fused_persist_speedup\": %.3f, "
                           "\"fused_persist_nopdl_ms\": %.5f, \"resident_clusters\": %d, \"cublas_fallbacks\": %d}\n",
                           m, k, p.rows, abits[ai], fused ? "fused" : "cublas", cluster, tile, t16 * 1e-3, t8 * 1e-3, sp, ops / (t8 * 1e-6) / 1e12,
                           ops / (t16 * 1e-6) / 1e12, tq * 1e-3, tg * 1e-3, te * 1e-3, ops / (tg * 1e-6) / 1e12, t16 / tg, tc * 1e-3,
                           tf * 1e-3, tf > 0 ? ops / (tf * 1e-6) / 1e12 : -1.0, tf > 0 ? t16 / tf : -1.0, tfc * 1e-3, tfc > 0 ? t16 / tfc : -1.0,
                           tfp * 1e-3, tfp > 0 ? t16 / tfp : -1.0, tfn * 1e-3, resident, dec_igemm_fallbacks());
                else
                    printf("igemm %5dx%-5d batch %3d A%d  cluster %s tile %d  fp16 %8.4f ms (%6.1f TFLOP/s)  int8 (%s) %8.4f ms (%6.1f TOP/s), speedup %.2fx; "
                           "quant %.4f, cuBLAS gemm %.4f (%6.1f TOP/s) + epilogue %.4f, fused gemm+epilogue %.4f ms (%6.1f TOP/s, %.2fx fp16; "
                           "channel tiles first %.4f ms, %.2fx; persistent %.4f ms, %.2fx, %.4f ms without PDL)%s\n",
                           m, k, p.rows, abits[ai], cluster, tile, t16 * 1e-3, ops / (t16 * 1e-6) / 1e12, fused ? "fused" : "cublas", t8 * 1e-3,
                           ops / (t8 * 1e-6) / 1e12, sp, tq * 1e-3, tg * 1e-3, ops / (tg * 1e-6) / 1e12, te * 1e-3, tf * 1e-3,
                           tf > 0 ? ops / (tf * 1e-6) / 1e12 : -1.0, tf > 0 ? t16 / tf : -1.0, tfc * 1e-3, tfc > 0 ? t16 / tfc : -1.0,
                           tfp * 1e-3, tfp > 0 ? t16 / tfp : -1.0, tfn * 1e-3, dec_igemm_fallbacks() ? "  (cuBLAS refused int8: dp4a fallback)" : "");
                fflush(stdout);
            }
            dec_set_igemm_cluster(0, 0);
            dec_set_igemm_tile(0);
        }
    void *bufs[] = {p.W16, p.X, p.W8, p.sw, p.Q, p.sa, p.C, p.Y};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cudaFree(bufs[i]);
}

static int parse_list(const char *flag, const char *list, int *out, int max, long lo, long hi) {
    char buf[128];
    if (strlen(list) >= sizeof buf) cli_die(CLI_EXIT_USAGE, "%s: list too long", flag);
    snprintf(buf, sizeof buf, "%s", list);
    int n = 0;
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        if (n == max) cli_die(CLI_EXIT_USAGE, "%s: more than %d entries", flag, max);
        out[n++] = (int)cli_parse_long(flag, t, lo, hi);
    }
    if (!n) cli_die(CLI_EXIT_USAGE, "%s: an empty list", flag);
    return n;
}

static const char k_usage[] =
    "usage: harp bench igemm --gpu [--json] [--shapes MxK,...] [--batch LIST] [--a-bits 8,4] [--reps N] [--calls N] [--cluster CxR]\n"
    "                        [--tile 128,256]\n"
    "  default shapes: the Llama-2-7B linears 4096x4096 (q, k, v, o), 12288x4096 (fused q|k|v), 11008x4096\n"
    "  (gate, up), 22016x4096 (fused up|gate), 4096x11008 (down); batch 1,16,512; A8 (W8A8 / W4A8) and\n"
    "  A4 (W4A4: 4-bit codes held in int8, same GEMM); M = output channels, K = input width;\n"
    "  --cluster LIST: the fused kernel's CTA clusters, CxR = C output-channel tiles × R row tiles sharing\n"
    "  operand tiles by multicast (1x1, 2x1, 1x2, 2x2, 1x4, 2x4; default 1x1); every row once per shape\n"
    "  --tile LIST: the fused kernel's output channels per 128-row tile (128, 256; default 128), every row\n"
    "  once per width and cluster shape (tile_n)\n"
    "  the fused kernel is timed with one cluster per super-tile in both tile orders: row tiles first\n"
    "  (fused_ms) and output-channel tiles first (fused_cols_ms), and persistent (as many clusters as fit at\n"
    "  once, resident_clusters, looping over super-tiles, row tiles first: fused_persist_ms, the library's default)\n";

int bench_igemm(int argc, char **argv) {
    iopts o = {.reps = 30, .calls = 20};
    const char *clist = getenv("HARP_IGEMM_CLUSTER") ? getenv("HARP_IGEMM_CLUSTER") : "1x1";
    const char *tlist = getenv("HARP_IGEMM_TILE") ? getenv("HARP_IGEMM_TILE") : "128";
    const char *shapes = "4096x4096,12288x4096,11008x4096,22016x4096,4096x11008", *blist = "1,16,512", *alist = "8,4";
    int gpu = 0;
    for (int i = 1; i < argc; i++) {   /* flags, then flags with a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--gpu")) gpu = 1;
        else if (!strcmp(a, "--json")) o.json = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) return fputs(k_usage, stdout), 0;
        else if (!v) cli_die(CLI_EXIT_USAGE, "%s: unknown flag or missing value (harp bench igemm --help)", a);
        else if (i++, !strcmp(a, "--shapes")) shapes = v;
        else if (!strcmp(a, "--batch")) blist = v;
        else if (!strcmp(a, "--a-bits")) alist = v;
        else if (!strcmp(a, "--reps")) o.reps = (int)cli_parse_long("--reps", v, 3, 256);
        else if (!strcmp(a, "--calls")) o.calls = (int)cli_parse_long("--calls", v, 1, 1000);
        else if (!strcmp(a, "--cluster")) clist = v;
        else if (!strcmp(a, "--tile")) tlist = v;
        else cli_die(CLI_EXIT_USAGE, "unexpected argument '%s' (harp bench igemm --help)", a);
    }
    if (!gpu) cli_die(CLI_EXIT_USAGE, "harp bench igemm: GPU rows only (pass --gpu)");
    int cls[16][2], ncl = 0;   /* the cluster shapes, checked before a device is needed */
    for (const char *c = clist;; c += 4) {
        const int cy = c[0] && c[1] == 'x' && c[2] ? c[2] - '0' : 0;
        if (ncl == 16 || !cy || (c[3] && c[3] != ',') || !dec_igemm_cluster_ok(c[0] - '0', cy))
            cli_die(CLI_EXIT_USAGE, "--cluster: a list of 1x1, 2x1, 1x2, 2x2, 1x4, 2x4, not '%s'", clist);
        cls[ncl][0] = c[0] - '0', cls[ncl++][1] = cy;
        if (!c[3]) break;
    }
    int batches[8], abits[2], tiles[2];
    const int nt = parse_list("--tile", tlist, tiles, 2, 128, 256);
    for (int i = 0; i < nt; i++)
        if (tiles[i] != 128 && tiles[i] != 256) cli_die(CLI_EXIT_USAGE, "--tile: 128 or 256, not %d", tiles[i]);
    const int nb = parse_list("--batch", blist, batches, 8, 1, 8192), na = parse_list("--a-bits", alist, abits, 2, 4, 8);
    for (int i = 0; i < na; i++)
        if (abits[i] != 4 && abits[i] != 8) cli_die(CLI_EXIT_USAGE, "--a-bits: 8 or 4, not %d", abits[i]);
    if (!dec_cuda_available()) cli_die(CLI_EXIT_FAIL, "harp bench igemm --gpu: no CUDA device");
    CUCHK(cudaStreamCreateWithFlags(&o.s, cudaStreamNonBlocking));
    const cublasStatus_t st = harp_cublas_create(&o.h);
    if (st != CUBLAS_STATUS_SUCCESS) cli_die(CLI_EXIT_FAIL, "cublasCreate: %s", harp_cublas_why(st));
    harp_cublas_set_stream(o.h, o.s);
    for (int ti = 0; ti < nt; ti++)
        for (int i = 0; i < ncl; i++) o.cfg[o.ncfg][0] = cls[i][0], o.cfg[o.ncfg][1] = cls[i][1], o.cfg[o.ncfg++][2] = tiles[ti];
    const char *p = shapes;
    long m, k;
    while (bench_next_shape(&p, &m, &k)) shape_rows(&o, (int)m, (int)k, batches, nb, abits, na);
    harp_cublas_destroy(o.h);
    cudaStreamDestroy(o.s);
    return 0;
}
#endif
