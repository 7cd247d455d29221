/* harp bench decode --gpu: whole-token decode of a model SHAPE on the GPU decode engine
 * (src/cuda/decode.h; each linear is dec_linear_run, the CUDA backend's packed product with split
 * fp16 activations), with SYNTHETIC weights generated on the device (seeded random codes, scales,
 * signs and HARP butterflies; no file, no checkpoint). One token per step for a batch of B
 * sequences at KV position --pos: per layer RMSNorm fused into the q|k|v input transform, the packed
 * GEMV, the output transform, RoPE + fp16 KV store, split-K attention, o (residual add fused),
 * RMSNorm + up|gate, SwiGLU, down (residual add fused); final norm + the fp16 head. The whole token
 * is captured in one CUDA graph and replayed (plain stream launches are timed too). FP16 (the same
 * engine with F16 planes and no transforms) runs first, so every packed row has its vs_fp16 ratio
 * from the same run. bytes_per_token counts every weight plane, meta tile, HARP block and the KV
 * bytes read; bound_tok_per_s = measured device copy GB/s ÷ bytes_per_token. --kv-bits 16,4 runs every row
 * with the fp16 KV cache and again with the 4-bit cache of W/A/KV models (dec_rope_kv4 + dec_attn_kv4,
 * clip 1; with --fuse on the store runs inside attention, dec_attn_rope_kv4), printing vs_kv16 = tok/s ÷
 * the same row's fp16-cache tok/s; --attn-variant 0,1 times every row with each attention kernel:
 * dec_set_attn_variant for the fp16 cache, dec_set_attn_kv4_variant for the 4-bit cache (1: the
 * previous kernels; the previous 4-bit one keeps its store a separate launch); --xf-stage 1,0 times every
 * row with the transform passes' weights staged before the PDL wait (1) and read after it (0).
 * --path ctx: the same shapes as synthetic harp_models through the library's forward pass on the CUDA
 * backend (what generate --gpu runs), beside the engine rows. --model DIR: real model folders instead,
 * one decode step per harp_ctx_eval through the backend (CPU, or the CUDA backend with --gpu, where
 * quantized groups stay packed). */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"

/* ---- real model folders through the backend (CPU, or CUDA with --gpu): the engine `generate`
 * and `ppl --gpu` use, one decode step per harp_ctx_eval (logits copied back every step) ---------- */
static void model_rows(const char *dirs, int gpu, int steps, int json, harp_qtype kv) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dirs);
    char *save = NULL;
    for (char *d = strtok_r(buf, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
        harp_model *m = NULL;
        cli_check(harp_model_open(d, NULL, &m));
        harp_model_info in;
        cli_check(harp_model_get_info(m, &in));
        harp_backend *be = NULL;
        if (gpu) cli_check(harp_backend_cuda_create(0, &be));
        harp_ctx_params p = harp_ctx_default_params();
        p.max_tokens = 16 + steps + 1 < in.max_seq_len ? 16 + steps + 1 : in.max_seq_len;
        p.backend = be;
        p.kv_qtype = kv;
        harp_ctx *c = NULL;
        cli_check(harp_ctx_create_ex(m, &p, &c));
        float *logits = malloc(sizeof(float) * (size_t)16 * in.vocab_size);
        if (!logits) cli_die(CLI_EXIT_FAIL, "out of memory");
        int32_t ids[16], tok = 1;
        for (int i = 0; i < 16; i++) ids[i] = (int32_t)((i * 7919 + 13) % in.vocab_size);
        const int np = p.max_tokens - steps - 1 < 16 ? p.max_tokens - steps - 1 : 16;
        const double t0 = harp_time_s();
        cli_check(harp_ctx_eval(c, ids, np > 1 ? np : 1, logits, 0));
        const double t1 = harp_time_s();
        for (int i = 0; i < steps; i++) cli_check(harp_ctx_eval(c, &tok, 1, logits, 0));
        const double t2 = harp_time_s(), tok_s = steps / (t2 - t1);
        const char *qd = in.quant_method[0] ? in.quant_algo : in.weight_dtype;
        harp_ctx_memory mem;
        cli_check(harp_ctx_memory_get(c, &mem));
        if (json)
            printf("{\"bench\": \"decode\", \"kind\": \"decode\", \"device\": \"%s\", \"model\": \"%s\", \"synthetic\": false, "
                   "\"qtype\": \"%s\", \"bits\": %d, \"rotation\": \"%s\", \"bpw\": %.4f, \"batch\": 1, \"steps\": %d, "
                   "\"kv\": \"%s\", \"tok_s\": %.2f, \"tok_per_s\": %.2f, \"ms_per_token\": %.4f, \"prompt_tok_s\": %.2f, "
                   "\"mem_weights_bytes\": %zu, \"mem_kv_bytes\": %zu, \"mem_workspace_bytes\": %zu}\n",
                   gpu ? "gpu" : "cpu", d, qd, in.quant_bits, in.quant_rotation, in.quant_bpw, steps,
                   kv == HARP_KV_DEFAULT ? "default" : harp_qtype_name(kv), tok_s, tok_s, 1e3 / tok_s, np / (t1 - t0),
                   mem.weights, mem.kv_cache, mem.workspace);
        else
            printf("%-4s %-40s %-5s %d-bit %-5s %6.3f bpw  decode %8.2f tok/s (%7.3f ms/token)  prompt %8.1f tok/s  "
                   "memory: weights %.3f GB, KV %.3f GB, workspace %.3f GB\n",
                   gpu ? "gpu" : "cpu", d, qd, in.quant_bits, in.quant_rotation, in.quant_bpw, tok_s, 1e3 / tok_s,
                   np / (t1 - t0), mem.weights / 1e9, mem.kv_cache / 1e9, mem.workspace / 1e9);
        fflush(stdout);
        free(logits);
        harp_ctx_free(c);
        harp_backend_free(be);
        harp_model_free(m);
    }
}

/* --model DIR[,DIR] [--steps N] [--gpu]: rows of real folders (any build; --gpu needs CUDA). */
static int model_mode(int argc, char **argv) {
    const char *dirs = NULL;
    int gpu = 0, json = 0, steps = 64;
    harp_qtype kv = HARP_KV_DEFAULT;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--gpu")) gpu = 1;
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--model") && i + 1 < argc) dirs = argv[++i];
        else if ((!strcmp(argv[i], "-t") || !strcmp(argv[i], "--threads")) && i + 1 < argc) cli_set_threads(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = (int)cli_parse_long("--steps", argv[++i], 1, 100000);
        else if (!strcmp(argv[i], "--kv") && i + 1 < argc) kv = cli_parse_kv("--kv", argv[++i]);
        else cli_die(CLI_EXIT_USAGE, "with --model: unexpected argument '%s' (--gpu, --json, --steps N, -t N, --kv f32|f16)", argv[i]);
    }
    model_rows(dirs, gpu, steps, json, kv);
    return 0;
}

/* ---- synthetic shapes on the CPU (no --gpu): the shape built in host memory with seeded random packed
 * weights (harp_model_synthetic), decoded by the CPU backend's forward pass, one token per harp_ctx_eval
 * after a 16-token prompt. The baseline of vs_fp16 is the f32 row: dense fp32 groups, the form an fp16
 * checkpoint takes on the CPU (the loaders widen it; `f16` rows are F16 planes through the qtensor
 * kernels). --layers N (default 2) builds part of the model; the bound is the row's bytes per token
 * (decoder planes + the tied fp32 head) over the copy bandwidth measured first. ---------------------- */
typedef struct mshape {
    const char *name;
    int dim, hidden, n_heads, n_kv, layers, vocab;
} mshape;

static const mshape k_shapes[] = {
    {"llama2-7b", 4096, 11008, 32, 32, 32, 32000},  {"llama2-13b", 5120, 13824, 40, 40, 40, 32000},
    {"llama2-70b", 8192, 28672, 64, 8, 80, 32000},  {"llama3-8b", 4096, 14336, 32, 8, 32, 128256},
    {"qwen2.5-7b", 3584, 18944, 28, 4, 28, 152064},
};

static const mshape *shape_named(const char *name) {
    for (size_t i = 0; i < sizeof k_shapes / sizeof k_shapes[0]; i++)
        if (!strcmp(name, k_shapes[i].name)) return &k_shapes[i];
    cli_die(CLI_EXIT_USAGE, "--shape: unknown shape '%s'", name);
}

/* Weights of the decoder linears of `layers` layers of shape s (q|k|v, o, up|gate, down). */
static double shape_weights(const mshape *s, int layers) {
    const double kvd = (double)s->n_kv * (s->dim / s->n_heads);
    return (double)layers * (((double)s->dim + 2 * kvd) * s->dim + (double)s->dim * s->dim + 3.0 * s->hidden * s->dim);
}

/* A synthetic model of shape s (harp_model_synthetic): `layers` layers of type qt with transforms rot. */
static harp_synth_params synth_of(const mshape *s, int layers, int max_seq_len, harp_qtype qt, int rot) {
    harp_synth_params p = harp_synth_default_params();
    p.dim = s->dim, p.hidden = s->hidden, p.n_heads = s->n_heads, p.n_kv_heads = s->n_kv, p.vocab = s->vocab;
    p.n_layers = layers, p.max_seq_len = max_seq_len, p.qtype = qt, p.rotation = rot;
    return p;
}

/* Host copy bandwidth, bytes read + written per second (best of 5, 256 MiB, all threads). */
static double cpu_copy_gbps(void) {
    const size_t n = (size_t)32 << 20;   /* doubles */
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), best = 0;
    if (!a || !b) cli_die(CLI_EXIT_FAIL, "out of memory");
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = (double)i, b[i] = 0;
    for (int r = 0; r < 5; r++) {
        const double t0 = harp_time_s();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) b[i] = a[i];
        const double gbps = 2.0 * n * sizeof *a / (harp_time_s() - t0) / 1e9;
        best = gbps > best ? gbps : best;
    }
    free(a), free(b);
    return best;
}

/* Bytes of the decoder weights one token reads, as held: planes of quantized groups, dense_b per weight of fp32 ones. */
static double synth_weight_bytes(harp_model *m, double dense_b) {
    harp_model_info in;
    cli_check(harp_model_get_info(m, &in));
    double bytes = 0;
    for (int l = 0; l < in.n_layers; l++)
        for (int gi = 0; gi < HARP_LG_COUNT; gi++) {
            const harp_lgroup *g = &m->layers[l].cfg.g[gi];
            const harp_qtensor *q = harp_lgroup_qtensor(g);
            if (!q) bytes += dense_b * g->out_total * g->in;
            for (int i = 0; q && i < HARP_QT_MAX_PLANES; i++) bytes += (double)q->planes[i].nbytes;
        }
    return bytes;
}

/* Resident set size of this process now (VmRSS), bytes; 0 when /proc is not there. */
static long long rss_now(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atoll(line + 6);
    if (f) fclose(f);
    return kb * 1024;
}

static void cpu_row(const mshape *s, harp_qtype qt, int rot, int layers, int steps, double copy_gbps, double *base_tok_s, int json) {
    const harp_synth_params p = synth_of(s, layers, 4096, qt, rot);
    harp_model *m = NULL;
    const long long rss0 = rss_now();
    cli_check(harp_model_synthetic(&p, &m));
    harp_ctx *c = NULL;
    cli_check(harp_ctx_create(m, 16 + steps + 1, &c));
    float *logits = malloc(sizeof(float) * (size_t)16 * s->vocab);
    if (!logits) cli_die(CLI_EXIT_FAIL, "out of memory");
    int32_t ids[16], tok = 1;
    for (int i = 0; i < 16; i++) ids[i] = (int32_t)((i * 7919 + 13) % s->vocab);
    cli_check(harp_ctx_eval(c, ids, 16, logits, 0));
    const double t0 = harp_time_s();
    for (int i = 0; i < steps; i++) cli_check(harp_ctx_eval(c, &tok, 1, logits, 0));
    const double sec = (harp_time_s() - t0) / steps, tok_s = 1.0 / sec;
    const double wb = synth_weight_bytes(m, 4.0), head = 4.0 * s->vocab * s->dim, bytes = wb + head;
    const double bound = copy_gbps * 1e9 / bytes, frac = tok_s / bound;
    const double nw = shape_weights(s, layers);
    if (*base_tok_s == 0) *base_tok_s = tok_s;   /* the first row: the baseline */
    const double vs = tok_s / *base_tok_s;
    const char *rn = rot == HARP_SYNTH_ROT_RHT ? "rht" : rot == HARP_SYNTH_ROT_HARP ? "harp" : "none";
    const double peak = (double)(rss_now() - rss0);   /* the model and the context */
    if (json)
        printf("{\"bench\": \"decode\", \"kind\": \"decode\", \"device\": \"cpu\", \"model\": \"%s\", \"shape\": \"%s\", \"synthetic\": true, "
               "\"layers\": %d, \"qtype\": \"%s\", \"rotation\": \"%s\", \"batch\": 1, \"pos\": 16, \"steps\": %d, \"threads\": %d, "
               "\"bpw\": %.4f, \"tok_s\": %.3f, \"tok_per_s\": %.3f, \"ms_per_token\": %.3f, \"weight_bytes\": %.0f, "
               "\"bytes_per_token\": %.0f, \"gbps\": %.2f, \"copy_gbps\": %.2f, \"bound_tok_per_s\": %.3f, \"frac_of_bound\": %.4f, "
               "\"pct_of_roofline\": %.2f, \"vs_fp16\": %.3f, \"peak_mem_bytes\": %.0f}\n",
               s->name, s->name, layers, harp_qtype_name(qt), rn, steps, harp_get_threads(), wb * 8.0 / nw, tok_s, tok_s, sec * 1e3,
               bytes, bytes, bytes / sec / 1e9, copy_gbps, bound, frac, 100 * frac, vs, peak);
    else
        printf("cpu %-10s %-5s %-4s layers %d  %6.3f bpw  %8.3f tok/s  %9.3f ms/token  %6.2f GB/s  %5.1f%% of bound  %5.2fx fp16  "
               "peak +%.2f GB\n",
               s->name, harp_qtype_name(qt), rn, layers, wb * 8.0 / nw, tok_s, sec * 1e3, bytes / sec / 1e9, 100 * frac, vs, peak / 1e9);
    fflush(stdout);
    free(logits);
    harp_ctx_free(c);
    harp_model_free(m);
}

/* harp bench decode [--json] [--shape LIST] [--qtypes LIST] [--rotations LIST] [--layers N] [--steps N] [-t N] */
static int cpu_shape_mode(int argc, char **argv) {
    const char *shapes = "llama2-7b", *qlist = "f32,e8p2,rvq3,rvq4,int4", *rots = "rht,harp";
    int json = 0, layers = 2, steps = 8;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc) shapes = argv[++i];
        else if (!strcmp(argv[i], "--qtypes") && i + 1 < argc) qlist = argv[++i];
        else if (!strcmp(argv[i], "--rotations") && i + 1 < argc) rots = argv[++i];
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = (int)cli_parse_long("--layers", argv[++i], 1, 1000);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = (int)cli_parse_long("--steps", argv[++i], 1, 100000);
        else if ((!strcmp(argv[i], "-t") || !strcmp(argv[i], "--threads")) && i + 1 < argc) cli_set_threads(argv[++i]);
        else cli_die(CLI_EXIT_USAGE, "harp bench decode (CPU): unexpected argument '%s' (--shape, --qtypes, --rotations, --layers, "
                                     "--steps, -t, --json; synthetic GPU rows: --gpu)", argv[i]);
    }
    harp_qtype qts[16];
    int nq = 0, has_f32 = 0;
    {   /* f32 (dense) is the baseline row, the others follow it in the order given */
        char buf[256];
        snprintf(buf, sizeof buf, "%s", qlist);
        for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
            harp_qtype q;
            if (harp_qtype_parse(t, &q) != HARP_OK || nq == 16 || q == HARP_QTYPE_QTIP2 || q == HARP_QTYPE_QTIP3 || q == HARP_QTYPE_QTIP4 ||
                q == HARP_QTYPE_LDP2)
                cli_die(CLI_EXIT_USAGE, "--qtypes: '%s' is not one of f32 f16 e8p2 rvq3 rvq4 int2 int3 int4 int8", t);
            if (q == HARP_QTYPE_F32) has_f32 = 1;
            else qts[nq++] = q;
        }
    }
    const int do_rht = strstr(rots, "rht") != NULL, do_harp = strstr(rots, "harp") != NULL;
    const double copy = cpu_copy_gbps();
    if (json) printf("{\"bench\": \"decode\", \"kind\": \"copy\", \"device\": \"cpu\", \"threads\": %d, \"copy_gbps\": %.2f}\n", harp_get_threads(), copy);
    else printf("host copy %.2f GB/s (read + write, %d threads); synthetic weights, %d layers, %d steps after a 16-token prompt\n", copy,
                harp_get_threads(), layers, steps);
    char sbuf[128];
    snprintf(sbuf, sizeof sbuf, "%s", shapes);
    char *save = NULL;
    for (char *t = strtok_r(sbuf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const mshape *s = shape_named(t);
        const int L = layers < s->layers ? layers : s->layers;
        double base = 0;
        if (has_f32) cpu_row(s, HARP_QTYPE_F32, HARP_SYNTH_ROT_NONE, L, steps, copy, &base, json);
        for (int i = 0; i < nq; i++) {
            if (qts[i] == HARP_QTYPE_F16) {   /* dense rows carry no transforms */
                cpu_row(s, qts[i], HARP_SYNTH_ROT_NONE, L, steps, copy, &base, json);
                continue;
            }
            if (do_rht) cpu_row(s, qts[i], HARP_SYNTH_ROT_RHT, L, steps, copy, &base, json);
            if (do_harp) cpu_row(s, qts[i], HARP_SYNTH_ROT_HARP, L, steps, copy, &base, json);
        }
    }
    return 0;
}

static int has_arg(int argc, char **argv, const char *a) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], a)) return 1;
    return 0;
}

#ifndef HARP_HAVE_CUDA
int bench_decode(int argc, char **argv) {
    if (has_arg(argc, argv, "--model")) return model_mode(argc, argv);
    if (has_arg(argc, argv, "--help") || has_arg(argc, argv, "-h")) {
        printf("usage: harp bench decode [--json] [--shape LIST] [--qtypes LIST] [--rotations rht,harp] [--layers N] [--steps N] [-t N]\n"
               "       harp bench decode --model DIR[,DIR...] [--steps N] [-t N] [--json]\n"
               "       (this build has no CUDA: the --gpu rows need -DHARP_CUDA=ON; see docs/cli/bench-decode.md)\n");
        return 0;
    }
    if (has_arg(argc, argv, "--gpu"))
        cli_die(CLI_EXIT_FAIL, "harp bench decode --gpu: harp was built without CUDA (-DHARP_CUDA=ON)");
    return cpu_shape_mode(argc, argv);
}
#else
#include <cuda_runtime_api.h>


/* One linear group of the synthetic model. */
typedef struct blin {
    dec_linear_dev d;      /* what dec_linear_run takes: the backend's packed linear */
    dec_weights w;
    dec_xdev *xin, *xout;
    int own_x;             /* xin / xout belong to this linear (HARP), else shared (RHT, identity) */
    int m, n, npad;
} blin;

typedef struct bmodel {
    const mshape *s;
    int qt, harp, B, pos, max_ctx, layers;
    int kv_bits;           /* 16: fp16 cache; 4: the 4-bit cache (dec_kv4_layout per sequence) */
    size_t kv_layer_bytes; /* one layer's K (or V) cache, all sequences */
    blin *g;               /* layers × 4 groups: q|k|v, o, up|gate, down */
    blin head;
    dec_xdev *shared_x[10]; /* RHT / identity transforms shared by every layer: per group in, out */
    float *norm, *inv_freq, *signs;
    void *kc, *vc;         /* layers × B × max_ctx × kvd fp16 each */
    int32_t *posv;
    float *x, *qkv, *q, *att, *ug, *act, *yt, *scr, *aws, *logits;
    void *xh;
    dec_linear_ws ws;
    dec_attn_shape as;
    double weight_bytes, xform_bytes, kv_bytes;
    int skip;              /* --breakdown: SKIP_* parts left out of the token (timing only; values meaningless) */
    int fuse;              /* --fuse on: SwiGLU folded into the down projection's input transform, the attention
                            * combine into the o projection's, RoPE + KV store (fp16 cache) into attention */
    int seam;              /* --seam 1: o → up|gate and down → next q|k|v (or head) joined by dec_linear_seam where
                            * dec_seam_ok (RHT sides of width 2^k) */
} bmodel;

enum { SKIP_XFORM = 1, SKIP_ATTN = 2, SKIP_MISC = 4 };
static const struct {
    const char *name;
    int skip;
} k_variants[] = {{"full", 0}, {"no_xform", SKIP_XFORM}, {"no_attn", SKIP_ATTN}, {"gemv_only", SKIP_XFORM | SKIP_ATTN | SKIP_MISC}};

static size_t xform_block_bytes(const dec_xform *xf) {
    size_t b = 0;
    for (int s = 0; s < xf->nstages; s++)
        if (!xf->st[s].shared) b += (size_t)xf->n * (size_t)((xf->st[s].b + 7) / 8 * 8) * 2;
    return b;
}

static void *dalloc(size_t bytes) {
    void *p = NULL;
    CUCHK(cudaMalloc(&p, bytes ? bytes : 4));
    CUCHK(cudaMemset(p, 0, bytes ? bytes : 4));
    return p;
}

/* Transform of one side: identity (fp16), Hadamard (rht) or a fresh random butterfly (harp). */
/* The rows' per-linear rotation (bmodel.harp): the RHT, HARP butterflies, or none (identity sides and no
 * signs: how W/A/KV and RCP models hold their linears, R1 folded into the weights offline). */
enum { ROT_RHT = 0, ROT_HARP = 1, ROT_NONE = 2 };
static const char *rot_name(int qt, int rot) {
    return qt == HARP_QTYPE_F16 || rot == ROT_NONE ? "none" : rot == ROT_HARP ? "harp" : "rht";
}

static void make_x(bmodel *M, int64_t n, int transpose, uint64_t seed, dec_xdev **out) {
    dec_xform xf;
    if (M->qt == HARP_QTYPE_F16 || M->harp == ROT_NONE) dec_xform_identity(n, &xf);
    else if (M->harp == ROT_HARP) HCHK(dec_synth_butterfly(n, seed, transpose, &xf));
    else HCHK(dec_xform_hadamard(n, transpose, &xf));
    M->xform_bytes += (double)xform_block_bytes(&xf);
    HCHK(dec_xform_upload(&xf, M->B, out));
    dec_xform_free(&xf);
}

static void make_lin(bmodel *M, blin *L, int qt, int m, int n, int gi, uint64_t seed) {
    memset(L, 0, sizeof *L);
    L->m = m, L->n = n, L->npad = dec_npad(n);
    HCHK(dec_weights_random(qt, m, n, 0.02f, 0.005f, seed, &L->w));
    M->weight_bytes += (double)dec_weights_bytes(&L->w);
    if (qt != HARP_QTYPE_F16 && M->harp == ROT_HARP) {
        make_x(M, n, 0, seed * 2 + 1, &L->xin);
        make_x(M, m, 1, seed * 2 + 2, &L->xout);
        L->own_x = 1;
    } else {
        if (!M->shared_x[2 * gi]) make_x(M, n, 0, 0, &M->shared_x[2 * gi]), make_x(M, m, 1, 0, &M->shared_x[2 * gi + 1]);
        L->xin = M->shared_x[2 * gi], L->xout = M->shared_x[2 * gi + 1];
    }
    L->d.w = L->w;
    L->d.xin = L->xin, L->d.xout = L->xout;
    if (qt != HARP_QTYPE_F16 && M->harp != ROT_NONE) L->d.pre = M->signs, L->d.post = M->signs;   /* ±1 vectors (length ≥ every width) */
}

static void free_lin(blin *L) {
    dec_weights_free(&L->w);
    if (L->own_x) dec_xform_dev_free(L->xin), dec_xform_dev_free(L->xout);
}

static void model_free(bmodel *M) {
    for (int i = 0; i < 4 * M->layers; i++) free_lin(&M->g[i]);
    free(M->g);
    free_lin(&M->head);
    for (int i = 0; i < 10; i++)
        if (M->shared_x[i]) dec_xform_dev_free(M->shared_x[i]);
    void *p[] = {M->norm, M->inv_freq, M->signs, M->kc, M->vc, M->posv, M->x, M->qkv, M->q, M->att,
                 M->ug, M->act, M->yt, M->scr, M->aws, M->logits, M->xh};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) cudaFree(p[i]);
    memset(M, 0, sizeof *M);
}

static void model_build(bmodel *M, const mshape *s, int qt, int harp, int B, int pos, int layers, int kv_bits) {
    memset(M, 0, sizeof *M);
    M->s = s, M->qt = qt, M->harp = harp, M->B = B, M->pos = pos, M->layers = layers, M->kv_bits = kv_bits;
    M->max_ctx = pos + 1;
    const int hd = s->dim / s->n_heads, qd = s->n_heads * hd, kvd = s->n_kv * hd, mq = qd + 2 * kvd;
    const int widest = mq > 2 * s->hidden ? mq : 2 * s->hidden, wv = widest > s->vocab ? widest : s->vocab;
    M->as = (dec_attn_shape){.n_heads = s->n_heads, .n_kv = s->n_kv, .head_dim = hd, .max_ctx = M->max_ctx, .window = 0};
    {
        float *h = dec_synth_signs(wv, 5);
        M->signs = dalloc(sizeof(float) * (size_t)wv);
        CUCHK(cudaMemcpy(M->signs, h, sizeof(float) * (size_t)wv, cudaMemcpyHostToDevice));
        free(h);
        float *nw = malloc(sizeof(float) * (size_t)s->dim), *fr = malloc(sizeof(float) * (size_t)hd);
        for (int i = 0; i < s->dim; i++) nw[i] = 1.0f;
        for (int i = 0; i < hd / 2; i++) fr[i] = powf(10000.0f, -2.0f * (float)i / (float)hd);
        M->norm = dalloc(sizeof(float) * (size_t)s->dim);
        M->inv_freq = dalloc(sizeof(float) * (size_t)hd);
        CUCHK(cudaMemcpy(M->norm, nw, sizeof(float) * (size_t)s->dim, cudaMemcpyHostToDevice));
        CUCHK(cudaMemcpy(M->inv_freq, fr, sizeof(float) * (size_t)(hd / 2), cudaMemcpyHostToDevice));
        free(nw), free(fr);
    }
    M->g = calloc((size_t)layers * 4, sizeof *M->g);
    for (int l = 0; l < layers; l++) {
        const uint64_t sd = 1000 + 10 * (uint64_t)l;
        make_lin(M, &M->g[4 * l + 0], qt, mq, s->dim, 0, sd + 0);
        make_lin(M, &M->g[4 * l + 1], qt, s->dim, qd, 1, sd + 1);
        make_lin(M, &M->g[4 * l + 2], qt, 2 * s->hidden, s->dim, 2, sd + 2);
        make_lin(M, &M->g[4 * l + 3], qt, s->dim, s->hidden, 3, sd + 3);
    }
    {   /* the head stays fp16 in every row, as in quantized folders */
        const int qt0 = M->qt;
        M->qt = HARP_QTYPE_F16;
        make_lin(M, &M->head, HARP_QTYPE_F16, s->vocab, s->dim, 4, 7);
        M->qt = qt0;
    }
    if (kv_bits == 4) {   /* codes + fp16 scale + u8 zero per (position, kv head) */
        M->kv_layer_bytes = (size_t)B * dec_kv4_layout(&M->as).seq_bytes;
        M->kv_bytes = 2.0 * (double)layers * B * (pos + 1) * s->n_kv * (hd / 2 + 3);
    } else {
        M->kv_layer_bytes = (size_t)B * M->max_ctx * kvd * 2;
        M->kv_bytes = 2.0 * 2.0 * (double)layers * B * (pos + 1) * kvd;
    }
    M->kc = dalloc((size_t)layers * M->kv_layer_bytes), M->vc = dalloc((size_t)layers * M->kv_layer_bytes);
    int32_t pv[8];
    for (int b = 0; b < B; b++) pv[b] = pos;
    M->posv = dalloc(sizeof(int32_t) * (size_t)B);
    CUCHK(cudaMemcpy(M->posv, pv, sizeof(int32_t) * (size_t)B, cudaMemcpyHostToDevice));
    const int maxn = s->hidden > qd ? s->hidden : qd, npmax = dec_npad(maxn > s->dim ? maxn : s->dim);
    M->x = dalloc(sizeof(float) * (size_t)B * s->dim);
    M->qkv = dalloc(sizeof(float) * (size_t)B * mq);
    M->q = dalloc(sizeof(float) * (size_t)B * qd);
    M->att = dalloc(sizeof(float) * (size_t)B * qd);
    M->ug = dalloc(sizeof(float) * (size_t)B * 2 * s->hidden);
    M->act = dalloc(sizeof(float) * (size_t)B * s->hidden);
    M->yt = dalloc(sizeof(float) * 2 * (size_t)B * wv);
    M->scr = dalloc(sizeof(float) * 2 * (size_t)B * wv);
    M->aws = dalloc(sizeof(float) * dec_attn_workspace_floats(&M->as, B));
    M->logits = dalloc(sizeof(float) * (size_t)B * s->vocab);
    M->xh = dalloc(2 * (size_t)B * npmax * 2);
    M->ws = (dec_linear_ws){.max_rows = B, .xh = M->xh, .yt = M->yt, .scr = M->scr};
    {   /* a unit-RMS residual stream */
        float *h = malloc(sizeof(float) * (size_t)B * s->dim);
        harp_rng r;
        harp_rng_seed(&r, 9);
        for (size_t i = 0; i < (size_t)B * s->dim; i++) h[i] = (float)harp_rng_normal(&r);
        CUCHK(cudaMemcpy(M->x, h, sizeof(float) * (size_t)B * s->dim, cudaMemcpyHostToDevice));
        free(h);
    }
}

/* in (B × n, ld ldx) → [norm] → L → out (accumulate: out += …): the backend's packed linear */
static void run_lin(const bmodel *M, const blin *L, const float *in, int ldx, const float *norm, float *out, int accumulate,
                    void *stream) {
    if (M->skip & SKIP_XFORM) {   /* the GEMV alone, on whatever activations the buffer holds */
        dec_gemv_opts o = {.fold = M->B <= 4 ? M->B : 0};
        HCHK(dec_gemv(&L->w, M->xh, L->npad, M->B <= 4 ? 2 * M->B : M->B, M->yt, L->m, &o, stream));
        return;
    }
    HCHK(dec_linear_run(&L->d, in, ldx, M->B, norm, 1e-5f, out, L->m, accumulate, &M->ws, stream));
}

/* Whether prev's output side and next's input side run as one dec_linear_seam launch. */
static int use_seam(const bmodel *M, const blin *prev, const blin *next) {
    return M->seam && !(M->skip & SKIP_XFORM) && dec_seam_ok(&prev->d, &next->d, M->x, M->s->dim, M->B, M->norm, &M->ws);
}

static void enq_token(void *u, int call, void *stream) {
    (void)call;
    bmodel *M = u;
    const mshape *s = M->s;
    const int hd = s->dim / s->n_heads, qd = s->n_heads * hd, kvd = s->n_kv * hd, mq = qd + 2 * kvd;
    const size_t lc = M->kv_layer_bytes;
    int ready = 0;   /* the q|k|v (or head) input is already in the workspace: the last seam wrote it */
    for (int l = 0; l < M->layers; l++) {
        const blin *G = &M->g[4 * l];
        char *kc = (char *)M->kc + (size_t)l * lc, *vc = (char *)M->vc + (size_t)l * lc;
        if (ready) HCHK(dec_linear_run_mode(&G[0].d, DEC_LIN_XH_READY, NULL, 0, M->B, NULL, 0.0f, 0, NULL, M->qkv, mq, 0, &M->ws, stream));
        else run_lin(M, &G[0], M->x, s->dim, M->norm, M->qkv, 0, stream);
        /* with --fuse on the o projection's input transform combines the attention partials */
        const int fold = M->fuse && !(M->skip & (SKIP_ATTN | SKIP_XFORM));
        if (!(M->skip & SKIP_ATTN) && M->kv_bits == 4 && M->fuse && dec_attn_kv4_variant() == 0) {
            HCHK(dec_attn_rope_kv4(&M->as, M->qkv, mq, M->B, M->posv, M->inv_freq, 0, 1.0f, 1.0f, kc, vc, fold ? NULL : M->att, M->aws,
                                   stream));
        } else if (!(M->skip & SKIP_ATTN) && M->kv_bits == 4) {
            HCHK(dec_rope_kv4(&M->as, M->qkv, mq, M->B, M->posv, M->inv_freq, 0, 1.0f, 1.0f, M->q, kc, vc, stream));
            HCHK(dec_attn_kv4(&M->as, M->q, kc, vc, M->B, M->posv, fold ? NULL : M->att, M->aws, stream));
        } else if (!(M->skip & SKIP_ATTN) && M->fuse) {   /* RoPE + KV store inside the attention launch */
            HCHK(dec_attn_rope(&M->as, M->qkv, mq, M->B, M->posv, M->inv_freq, 0, kc, vc, fold ? NULL : M->att, M->aws, stream));
        } else if (!(M->skip & SKIP_ATTN)) {
            HCHK(dec_rope_kv(&M->as, M->qkv, mq, M->B, M->posv, M->inv_freq, 0, M->q, kc, vc, stream));
            HCHK(dec_attn(&M->as, M->q, kc, vc, M->B, M->posv, fold ? NULL : M->att, M->aws, stream));
        }
        const int s1 = use_seam(M, &G[1], &G[2]), m1 = s1 ? DEC_LIN_YT_ONLY : 0;
        if (fold) HCHK(dec_linear_run_mode(&G[1].d, m1, M->aws, 0, M->B, NULL, 0.0f, 0, &M->as, M->x, s->dim, 1, &M->ws, stream));
        else if (s1) HCHK(dec_linear_run_mode(&G[1].d, m1, M->att, qd, M->B, NULL, 0.0f, 0, NULL, M->x, s->dim, 1, &M->ws, stream));
        else run_lin(M, &G[1], M->att, qd, NULL, M->x, 1, stream);
        if (s1) {
            HCHK(dec_linear_seam(&G[1].d, &G[2].d, M->x, s->dim, M->B, M->norm, 1e-5f, &M->ws, stream));
            HCHK(dec_linear_run_mode(&G[2].d, DEC_LIN_XH_READY, NULL, 0, M->B, NULL, 0.0f, 0, NULL, M->ug, 2 * s->hidden, 0, &M->ws, stream));
        } else {
            run_lin(M, &G[2], M->x, s->dim, M->norm, M->ug, 0, stream);
        }
        const blin *next = l + 1 < M->layers ? &M->g[4 * (l + 1)] : &M->head;
        const int s3 = use_seam(M, &G[3], next), m3 = s3 ? DEC_LIN_YT_ONLY : 0;
        if (M->fuse && !(M->skip & SKIP_XFORM)) {
            HCHK(dec_linear_run_mode(&G[3].d, m3, M->ug, 2 * s->hidden, M->B, NULL, 0.0f, 1, NULL, M->x, s->dim, 1, &M->ws, stream));
        } else {
            if (!(M->skip & SKIP_MISC)) HCHK(dec_swiglu(M->ug, 2 * s->hidden, M->B, s->hidden, M->act, s->hidden, stream));
            if (s3) HCHK(dec_linear_run_mode(&G[3].d, m3, M->act, s->hidden, M->B, NULL, 0.0f, 0, NULL, M->x, s->dim, 1, &M->ws, stream));
            else run_lin(M, &G[3], M->act, s->hidden, NULL, M->x, 1, stream);
        }
        if (s3) HCHK(dec_linear_seam(&G[3].d, &next->d, M->x, s->dim, M->B, M->norm, 1e-5f, &M->ws, stream));
        ready = s3;
    }
    if (ready)
        HCHK(dec_linear_run_mode(&M->head.d, DEC_LIN_XH_READY, NULL, 0, M->B, NULL, 0.0f, 0, NULL, M->logits, s->vocab, 0, &M->ws, stream));
    else run_lin(M, &M->head, M->x, s->dim, M->norm, M->logits, 0, stream);
}

typedef struct dopts {
    int json, reps, pos, layers, pdl;   /* pdl: 1 on, 0 off, 2 both (one row each, same weights) */
    int fuse;                           /* fewer / wider launches (bmodel.fuse, dec_set_xform_fast): 1 on, 0 off, 2 both */
    int breakdown;                      /* also time the token without transforms / attention / both */
    int kv[2], nkv;                     /* --kv-bits: 16 (fp16 cache) and / or 4, in this order */
    int av[2], nav;                     /* --attn-variant: dec_set_attn_variant / dec_set_attn_kv4_variant values */
    int xs[2], nxs;                     /* --xf-stage: dec_set_xform_stage values, in the order given */
    int sm[2], nsm;                     /* --seam: bmodel.seam values, in the order given */
    double copy_gbps;
    void *stream;
    int path;                           /* --path: 1 the engine rows, 2 the ctx rows, 3 both */
    int ckv[4], nckv;                   /* --ctx-kv: the ctx rows' caches: 32 (fp32), 16 (fp16), 2..8 (quantized), in order */
    double (*eng_b1)[3];                /* [qtype][rotation]: the engine's batch-1 tok/s (default settings), for vs_engine */
} dopts;

/* One row per fuse / PDL setting and variant (k < 16); tok[k] receives each one's tok/s. kv16_tok_s: the
 * same rows with the fp16 cache (for vs_kv16), or NULL. */
static void row(const dopts *o, const mshape *s, int qt, int harp, int B, int kv_bits, int seam, const double *kv16_tok_s, double *tok,
                double fp16_tok_s[4][9]) {
    const int av = kv_bits == 16 ? dec_attn_variant() : dec_attn_kv4_variant();
    bmodel M;
    size_t free0 = 0, total = 0, free1 = 0;
    CUCHK(cudaMemGetInfo(&free0, &total));
    const int layers = o->layers > 0 && o->layers < s->layers ? o->layers : s->layers;
    model_build(&M, s, qt, harp, B, o->pos, layers, kv_bits);
    CUCHK(cudaDeviceSynchronize());
    CUCHK(cudaMemGetInfo(&free1, &total));
    const int nvar = o->breakdown ? (int)(sizeof k_variants / sizeof k_variants[0]) : 1, npdl = o->pdl == 2 ? 2 : 1;
    const int nfuse = o->fuse == 2 ? 2 : 1;
    for (int k = 0; k < nfuse * npdl * nvar; k++) {   /* fused before split, PDL on before off, then each variant */
        const int kf = k / (npdl * nvar), kp = k % (npdl * nvar) / nvar, vi = k % nvar;
        const int pdl = o->pdl == 2 ? 1 - kp : o->pdl, fuse = o->fuse == 2 ? 1 - kf : o->fuse, key = 2 * pdl + fuse;
        dec_set_pdl(pdl);
        dec_set_xform_fast(fuse);
        M.fuse = fuse;
        M.seam = seam;
        M.skip = k_variants[vi].skip;
        const double us = bench_gpu_time_graph(o->stream, o->reps, enq_token, &M, 1);
        const double us_stream = bench_gpu_time_stream(o->stream, o->reps < 10 ? o->reps : 10, enq_token, &M, 1);
        const double bytes = M.weight_bytes + M.xform_bytes + M.kv_bytes, tok_s = B / (us * 1e-6);
        const double bound = o->copy_gbps * 1e9 / bytes * B, frac = tok_s / bound;
        const double bpw = (M.weight_bytes - 2.0 * s->vocab * s->dim) * 8.0 / shape_weights(s, layers);
        if (qt == HARP_QTYPE_F16 && !vi && kv_bits == 16) fp16_tok_s[key][B] = tok_s;
        if (B == 1 && !k && kv_bits == 16 && seam == o->sm[0] && dec_xform_stage() == 1 && qt < HARP_QTYPE_COUNT)
            o->eng_b1[qt][harp] = tok_s;
        tok[k] = tok_s;
        const double vs_kv = kv16_tok_s && kv16_tok_s[k] > 0 ? tok_s / kv16_tok_s[k] : 1.0;
        const double vs = fp16_tok_s[key][B] > 0 ? tok_s / fp16_tok_s[key][B] : 0;
        const char *rot = rot_name(qt, harp);
        const double peak = (double)(free0 - free1);
        if (o->json)
            printf("{\"bench\": \"decode\", \"kind\": \"decode\", \"device\": \"gpu\", \"path\": \"engine\", \"model\": \"%s\", "
                   "\"shape\": \"%s\", \"synthetic\": true, \"layers\": %d, \"qtype\": \"%s\", \"rotation\": \"%s\", \"batch\": %d, \"pos\": %d, "
                   "\"pdl\": %s, \"fuse\": %s, \"variant\": \"%s\", \"kv_bits\": %d, \"attn_variant\": %d, \"xf_stage\": %d, \"seam\": %d, \"hyb_copies\": %d, \"vs_kv16\": %.3f, \"bpw\": %.4f, \"tok_s\": %.2f, \"tok_per_s\": %.2f, \"ms_per_token\": %.4f, \"ms_per_token_stream\": %.4f, "
                   "\"weight_bytes\": %.0f, \"bytes_per_token\": %.0f, \"gbps\": %.1f, \"copy_gbps\": %.1f, "
                   "\"bound_tok_per_s\": %.2f, \"frac_of_bound\": %.4f, \"pct_of_roofline\": %.2f, \"vs_fp16\": %.3f, "
                   "\"peak_mem_bytes\": %.0f}\n",
                   s->name, s->name, layers, bench_gpu_qtype_name(qt), rot, B, o->pos, pdl ? "true" : "false", fuse ? "true" : "false",
                   k_variants[vi].name, kv_bits, av, dec_xform_stage(), seam, dec_hyb_copies(), vs_kv, bpw, tok_s, tok_s, us * 1e-3, us_stream * 1e-3,
                   M.weight_bytes, bytes, bytes / (us * 1e-6) / 1e9, o->copy_gbps, bound, frac, 100 * frac, vs, peak);
        else
            printf("%-10s %-5s %-4s B=%d KV%-2d %-7s %-5s %-9s %7.3f bpw  %8.2f tok/s  %7.3f ms/token (stream %7.3f)  %6.2f GB/token  bound %8.1f tok/s  "
                   "%5.1f%% of bound  %5.2fx fp16  %5.3fx kv16  attn-v%d  xf-stage %d  seam %d  mem %.2f GB\n",
                   s->name, bench_gpu_qtype_name(qt), rot, B, kv_bits, pdl ? "pdl" : "no-pdl", fuse ? "fused" : "split", k_variants[vi].name, bpw, tok_s,
                   us * 1e-3, us_stream * 1e-3, bytes / 1e9, bound, 100 * frac, vs, vs_kv, av, dec_xform_stage(), seam, peak / 1e9);
        fflush(stdout);
    }
    dec_set_pdl(1);
    dec_set_xform_fast(1);
    model_free(&M);
}

/* --path ctx: the shape as a SYNTHETIC harp_model (src/model/synth.c: the groups in their packed type
 * with the same kind of transforms, fp16-valued embeddings and tied head; the fp16 rows' groups fp32 slices
 * of fp16 values, as loaded checkpoints hold; an fp32, fp16 or quantized KV cache, --ctx-kv) through the
 * library's own forward pass on the CUDA backend -- what `harp generate --gpu` runs: a prompt of --pos
 * tokens, two untimed steps, then --reps timed decode steps of one token, each one harp_ctx_eval
 * (logits copied back). vs_engine: tok/s ÷ the engine row of the same type and rotation at batch 1. */
static void ctx_row(const dopts *o, const mshape *s, int qt, int harp, int kv_bits) {
    const int layers = o->layers > 0 && o->layers < s->layers ? o->layers : s->layers, np = o->pos > 0 ? o->pos : 1;
    /* fp16: dense fp32 groups of fp16 values, what a loaded fp16 checkpoint holds */
    const harp_synth_params p = synth_of(s, layers, np + o->reps + 3, qt == HARP_QTYPE_F16 ? HARP_QTYPE_F32 : (harp_qtype)qt,
                                         qt == HARP_QTYPE_F16 || harp == ROT_NONE ? HARP_SYNTH_ROT_NONE
                                         : harp == ROT_HARP                       ? HARP_SYNTH_ROT_HARP
                                                                                  : HARP_SYNTH_ROT_RHT);
    const char *rot = rot_name(qt, harp);
    harp_model *m = NULL;
    if (qt >= HARP_QTYPE_COUNT || harp_model_synthetic(&p, &m) != HARP_OK) {
        fprintf(stderr, "%s %s %s: no synthetic model of this type for --path ctx; row skipped\n", s->name, bench_gpu_qtype_name(qt), rot);
        return;
    }
    size_t free0 = 0, free1 = 0, total = 0;
    CUCHK(cudaMemGetInfo(&free0, &total));
    if (kv_bits <= 8) {   /* a W/A/KV model's cache: the KV quantizer alone (asymmetric, per head, clip 1, fp16 scales) */
        harp_wakv_exec e;
        memset(&e, 0, sizeof e);
        e.kv = (harp_aq_fmt){kv_bits, 0, s->dim / s->n_heads, 1.0f, 1};
        cli_check(harp_model_set_exec(m, &e));
    }
    harp_backend *be = NULL;
    cli_check(harp_backend_cuda_create(0, &be));
    harp_ctx_params cp = harp_ctx_default_params();
    cp.max_tokens = p.max_seq_len, cp.backend = be, cp.kv_qtype = kv_bits == 16 ? HARP_QTYPE_F16 : HARP_QTYPE_F32;
    harp_ctx *c = NULL;
    cli_check(harp_ctx_create_ex(m, &cp, &c));
    float *logits = malloc(sizeof(float) * (size_t)s->vocab);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)np), tok = 1;
    if (!logits || !ids) cli_die(CLI_EXIT_FAIL, "out of memory");
    for (int i = 0; i < np; i++) ids[i] = (int32_t)((i * 7919 + 13) % s->vocab);
    cli_check(harp_ctx_eval(c, ids, np, logits, 0));   /* also uploads the weights */
    for (int i = 0; i < 2; i++) cli_check(harp_ctx_eval(c, &tok, 1, logits, 0));
    const double t0 = harp_time_s();
    for (int i = 0; i < o->reps; i++) cli_check(harp_ctx_eval(c, &tok, 1, logits, 0));
    const double sec = (harp_time_s() - t0) / o->reps, tok_s = 1.0 / sec;
    CUCHK(cudaMemGetInfo(&free1, &total));
    const int kvd = s->n_kv * (s->dim / s->n_heads);
    /* the CUDA backend holds fp32 groups of fp16 values (the fp16 rows' groups, every row's tied head) as
     * F16 planes unless HARP_CUDA_DENSE_F16=0 */
    const char *df = getenv("HARP_CUDA_DENSE_F16");
    /* the backend's choice; the cache's bytes per element (quantized: codes + an fp16 scale and a zero byte per head) */
    const double dense_b = df && !strcmp(df, "0") ? 4.0 : 2.0, kv_b = kv_bits / 8.0 + (kv_bits <= 8 ? 3.0 / (s->dim / s->n_heads) : 0);
    const double wb = synth_weight_bytes(m, dense_b), head = dense_b * s->vocab * s->dim, kvb = 2.0 * kv_b * layers * (np + 3.0) * kvd;
    const double bytes = wb + head + kvb, bound = o->copy_gbps * 1e9 / bytes, frac = tok_s / bound;
    const double nw = shape_weights(s, layers);
    const double eng = o->eng_b1[qt][harp], vs = eng > 0 ? tok_s / eng : 0, peak = (double)(free0 - free1);
    static double kv16_tok_s[HARP_QTYPE_COUNT][3];   /* this run's fp16-cache row of the type and rotation, for vs_kv16 */
    if (kv_bits == 16) kv16_tok_s[qt][harp] = tok_s;
    const double vs_kv16 = kv16_tok_s[qt][harp] > 0 ? tok_s / kv16_tok_s[qt][harp] : 0;
    harp_ctx_memory mem;   /* what the library says it holds, beside what the device lost (peak) */
    cli_check(harp_ctx_memory_get(c, &mem));
    if (o->json)
        printf("{\"bench\": \"decode\", \"kind\": \"decode\", \"device\": \"gpu\", \"path\": \"ctx\", \"model\": \"%s\", "
               "\"shape\": \"%s\", \"synthetic\": true, \"layers\": %d, \"qtype\": \"%s\", \"rotation\": \"%s\", \"batch\": 1, "
               "\"pos\": %d, \"kv_bits\": %d, \"bpw\": %.4f, \"tok_s\": %.2f, \"tok_per_s\": %.2f, \"ms_per_token\": %.4f, "
               "\"weight_bytes\": %.0f, \"bytes_per_token\": %.0f, \"gbps\": %.1f, \"copy_gbps\": %.1f, \"bound_tok_per_s\": %.2f, "
               "\"frac_of_bound\": %.4f, \"pct_of_roofline\": %.2f, \"vs_engine\": %.3f, \"vs_kv16\": %.3f, \"peak_mem_bytes\": %.0f, "
               "\"mem_weights_bytes\": %zu, \"mem_kv_bytes\": %zu, \"mem_workspace_bytes\": %zu}\n",
               s->name, s->name, layers, bench_gpu_qtype_name(qt), rot, np, kv_bits, wb * 8.0 / nw, tok_s, tok_s, sec * 1e3, wb + head,
               bytes, bytes / sec / 1e9, o->copy_gbps, bound, frac, 100 * frac, vs, vs_kv16, peak, mem.weights, mem.kv_cache,
               mem.workspace);
    else
        printf("%-10s %-5s %-4s B=1 ctx kv%-2d (library forward, CUDA backend)  %8.2f tok/s  %7.3f ms/token  %6.2f GB/token  %5.1f%% of bound  "
               "%5.3fx engine  mem %.2f GB (weights %.3f, KV %.3f, workspace %.3f)\n",
               s->name, bench_gpu_qtype_name(qt), rot, kv_bits, tok_s, sec * 1e3, bytes / 1e9, 100 * frac, vs, peak / 1e9, mem.weights / 1e9,
               mem.kv_cache / 1e9, mem.workspace / 1e9);
    fflush(stdout);
    free(ids);
    free(logits);
    harp_ctx_free(c);
    harp_backend_free(be);
    harp_model_free(m);
}

/* The row at every --xf-stage, --kv-bits (fp16 first when listed, so the 4-bit rows get their ratio)
 * and --attn-variant; vs_kv16 and vs_fp16 compare with the row of the same attention variant and
 * staging (fp16_tok_s[2·stage + variant]). */
static void kv_rows(const dopts *o, const mshape *s, int qt, int harp, int B, double fp16_tok_s[4][4][9]) {
    double kv16[4][16] = {{0}}, tok[16] = {0};
    /* fp16 models have identity sides: no seam applies, one row */
    const int nsm = qt == HARP_QTYPE_F16 ? 1 : o->nsm;
    for (int x = 0; x < o->nxs; x++) {
        dec_set_xform_stage(o->xs[x]);
        for (int m = 0; m < nsm; m++)
            for (int i = 0; i < o->nkv; i++)
                for (int a = 0; a < o->nav; a++) {
                    const int av = o->av[a], v = 2 * o->xs[x] + av;
                    dec_set_attn_variant(av);
                    dec_set_attn_kv4_variant(av);
                    row(o, s, qt, harp, B, o->kv[i], o->sm[m], o->kv[i] == 16 ? NULL : kv16[v], tok, fp16_tok_s[v]);
                    if (o->kv[i] == 16) memcpy(kv16[v], tok, sizeof kv16[v]);
                }
    }
    dec_set_xform_stage(1);
    dec_set_attn_variant(0);
    dec_set_attn_kv4_variant(0);
}

/* A flag's list of one or two of the values a and b, each at most once, in the order given (or, with
 * sorted, in the order a, b); anything else is a usage error naming the flag. */
static int parse_two(const char *opt, const char *arg, int a, int b, int sorted, int v[2]) {
    char buf[32], sa[12], sb[12];
    snprintf(buf, sizeof buf, "%s", arg);
    snprintf(sa, sizeof sa, "%d", a);
    snprintf(sb, sizeof sb, "%d", b);
    int n = 0;
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ","))
        if ((!strcmp(t, sa) || !strcmp(t, sb)) && n < 2 && !(n == 1 && v[0] == atoi(t))) v[n++] = atoi(t);
        else n = 3;
    if (n < 1 || n > 2) cli_die(CLI_EXIT_USAGE, "%s: %s, %s, %s,%s or %s,%s, not '%s'", opt, sa, sb, sa, sb, sb, sa, arg);
    if (sorted && n == 2) v[0] = a, v[1] = b;
    return n;
}

/* --ctx-kv: up to 4 of 32, 16, 8, 4, 3, 2, comma-separated, in the order given. */
static int parse_ctx_kv(const char *arg, int v[4]) {
    int n = 0;
    for (const char *t = arg;; t++) {
        char *end = NULL;
        const long b = strtol(t, &end, 10);
        if (end == t || (*end && *end != ',') || (b != 32 && b != 16 && b != 8 && b != 4 && b != 3 && b != 2) || n == 4)
            cli_die(CLI_EXIT_USAGE, "--ctx-kv: up to four of 32, 16, 8, 4, 3, 2 (comma-separated), not '%s'", arg);
        v[n++] = (int)b;
        if (!*end) return n;
        t = end;
    }
}

/* An A/B switch: "0", "1", "0,1" or "1,0", in the order given. */
static int parse01(const char *opt, const char *arg, int v[2]) { return parse_two(opt, arg, 0, 1, 0, v); }

static void usage(FILE *f) {
    fprintf(f, "usage: harp bench decode --gpu [--json] [--shape NAME[,NAME...]] [--qtypes LIST] [--rotations rht,harp,none]\n"
               "                         [--batch LIST] [--pos N] [--layers N] [--reps N] [--pdl on|off|both] [--fuse on|off|both]\n"
               "                         [--breakdown] [--kv-bits 16,4]   (KV cache: fp16 and / or the 4-bit cache of W/A/KV models)\n"
               "                         [--attn-variant 0,1]   (attention kernels, fp16 and 4-bit cache: 0 default, 1 the previous ones)\n"
               "                         [--xf-stage 1,0]   (transform weights staged before the PDL wait: 1 default, 0 not)\n"
               "                         [--hyb-copies 8|16|32]   (QTIP HYB: copies of the table in shared memory, default 16)\n"
               "                         [--seam 1,0]   (RHT seams o → up|gate, down → q|k|v as one launch each: 1 default, 0 not)\n"
               "                         [--path engine|ctx|engine,ctx]   (ctx: the same shape through the library's forward pass on\n"
               "                          the CUDA backend, what generate --gpu runs; batch 1; default engine)\n"
               "                         [--ctx-kv 32,16,4]   (the ctx rows' KV caches: fp32, fp16, or 8/4/3/2-bit quantized as a W/A/KV\n"
               "                          model's, asymmetric per head; default 16)\n"
               "  shapes: llama2-7b llama2-13b llama2-70b llama3-8b qwen2.5-7b (synthetic weights of that shape)\n"
               "  qtypes: f16 int2 int3 int4 int8 e8p2 rvq3 rvq4 qtip2 qtip3 qtip4 (HYB), qtipK-1mad, qtipK-3inst, ldp2 (RCP's\n"
               "          non-uniform 2-bit, per channel) (default f16,e8p2,rvq3,rvq4,int4); batch 1..8 (default 1,4)\n"
               "  rotations: per-linear RHT, HARP butterflies, or none (identity sides: W/A/KV and RCP models; default rht,harp)\n"
               "       harp bench decode --model DIR[,DIR...] [--gpu] [--steps N] [-t N] [--kv f32|f16] [--json]   (real folders, batch 1)\n"
               "       harp bench decode [--json] [--shape LIST] [--qtypes LIST] [--layers N] [--steps N] [-t N]   (no --gpu: the\n"
               "          synthetic shapes on the CPU, f32 baseline row; docs/cli/bench-decode.md)\n");
}

int bench_decode(int argc, char **argv) {
    if (has_arg(argc, argv, "--model")) return model_mode(argc, argv);
    if (!has_arg(argc, argv, "--gpu") && !has_arg(argc, argv, "--help") && !has_arg(argc, argv, "-h")) return cpu_shape_mode(argc, argv);
    static const struct option opts[] = {{"gpu", no_argument, 0, 'g'},         {"json", no_argument, 0, 'j'},
                                         {"shape", required_argument, 0, 's'},   {"qtypes", required_argument, 0, 'q'},
                                         {"rotations", required_argument, 0, 'r'}, {"batch", required_argument, 0, 'b'},
                                         {"pos", required_argument, 0, 'P'},     {"layers", required_argument, 0, 'L'},
                                         {"reps", required_argument, 0, 'R'},    {"help", no_argument, 0, 'h'},
                                         {"pdl", required_argument, 0, 'D'},     {"breakdown", no_argument, 0, 'K'},
                                         {"fuse", required_argument, 0, 'F'},      {"kv-bits", required_argument, 0, 'V'},
                                         {"attn-variant", required_argument, 0, 'A'}, {"xf-stage", required_argument, 0, 'X'},
                                         {"hyb-copies", required_argument, 0, 'H'}, {"seam", required_argument, 0, 'S'},
                                         {"path", required_argument, 0, 'T'},      {"ctx-kv", required_argument, 0, 'C'},
                                         {0, 0, 0, 0}};
    static double eng_b1[HARP_QTYPE_COUNT][3];
    dopts o = {.path = 1, .eng_b1 = eng_b1, .reps = 20, .pos = 511, .pdl = 1, .fuse = 1, .kv = {16, 0}, .nkv = 1, .av = {0, 0}, .nav = 1, .xs = {1, 0}, .nxs = 1, .sm = {1, 0}, .nsm = 1, .ckv = {16, 0}, .nckv = 1};
    const char *shapes = "llama2-7b", *qlist = "f16,e8p2,rvq3,rvq4,int4", *rots = "rht,harp", *blist = "1,4";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'g': break;   /* the GPU rows (without --gpu: cpu_shape_mode) */
        case 'j': o.json = 1; break;
        case 's': shapes = optarg; break;
        case 'q': qlist = optarg; break;
        case 'r': rots = optarg; break;
        case 'b': blist = optarg; break;
        case 'P': o.pos = (int)cli_parse_long("--pos", optarg, 0, 131071); break;
        case 'L': o.layers = (int)cli_parse_long("--layers", optarg, 1, 1000); break;
        case 'R': o.reps = (int)cli_parse_long("--reps", optarg, 3, 256); break;
        case 'D':
            if (!strcmp(optarg, "on") || !strcmp(optarg, "off") || !strcmp(optarg, "both")) o.pdl = optarg[1] == 'n' ? 1 : optarg[1] == 'f' ? 0 : 2;
            else cli_die(CLI_EXIT_USAGE, "--pdl: expected on, off or both, not '%s'", optarg);
            break;
        case 'F':
            if (!strcmp(optarg, "on") || !strcmp(optarg, "off") || !strcmp(optarg, "both")) o.fuse = optarg[1] == 'n' ? 1 : optarg[1] == 'f' ? 0 : 2;
            else cli_die(CLI_EXIT_USAGE, "--fuse: expected on, off or both, not '%s'", optarg);
            break;
        case 'K': o.breakdown = 1; break;
        case 'V': o.nkv = parse_two("--kv-bits", optarg, 16, 4, 1, o.kv); break;   /* run in the order 16, 4 */
        case 'C': o.nckv = parse_ctx_kv(optarg, o.ckv); break;
        case 'A': o.nav = parse01("--attn-variant", optarg, o.av); break;
        case 'X': o.nxs = parse01("--xf-stage", optarg, o.xs); break;
        case 'S': o.nsm = parse01("--seam", optarg, o.sm); break;
        case 'T':
            if (!strcmp(optarg, "engine") || !strcmp(optarg, "ctx")) o.path = optarg[0] == 'e' ? 1 : 2;
            else if (!strcmp(optarg, "engine,ctx") || !strcmp(optarg, "ctx,engine")) o.path = 3;
            else cli_die(CLI_EXIT_USAGE, "--path: engine, ctx or engine,ctx, not '%s'", optarg);
            break;
        case 'H': {
            const long h = cli_parse_long("--hyb-copies", optarg, 8, 32);
            if (h != 8 && h != 16 && h != 32) cli_die(CLI_EXIT_USAGE, "--hyb-copies: 8, 16 or 32, not '%s'", optarg);
            dec_set_hyb_copies((int)h);
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) cli_die(CLI_EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
    int batches[8], nb = 0;
    {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", blist);
        for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
            if (nb == 8) cli_die(CLI_EXIT_USAGE, "--batch: too many entries");
            batches[nb++] = (int)cli_parse_long("--batch", t, 1, 8);
        }
    }
    int qts[32], nq = 0, has_f16 = 0;
    {   /* f16 is the baseline row of every batch, the others follow it */
        int all[32];
        const int na = bench_gpu_qtypes(qlist, all, 32);
        for (int i = 0; i < na; i++)
            if (all[i] == HARP_QTYPE_F16) has_f16 = 1;
            else qts[nq++] = all[i];
    }
    const int do_rht = strstr(rots, "rht") != NULL, do_harp = strstr(rots, "harp") != NULL, do_none = strstr(rots, "none") != NULL;
    if (!do_rht && !do_harp && !do_none) cli_die(CLI_EXIT_USAGE, "--rotations: rht, harp and / or none, not '%s'", rots);
    if (!dec_cuda_available()) cli_die(CLI_EXIT_FAIL, "harp bench decode --gpu: no CUDA device");
    cudaStream_t st;
    CUCHK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    o.stream = st;
    o.copy_gbps = bench_gpu_copy_gbps(st);
    if (o.json) printf("{\"bench\": \"decode\", \"kind\": \"copy\", \"device\": \"gpu\", \"copy_gbps\": %.1f}\n", o.copy_gbps);
    else printf("device-to-device copy %.1f GB/s (read + write); synthetic weights, KV position %d\n", o.copy_gbps, o.pos);
    char sbuf[128];
    snprintf(sbuf, sizeof sbuf, "%s", shapes);
    char *save = NULL;
    for (char *t = strtok_r(sbuf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const mshape *s = shape_named(t);
        double fp16[4][4][9] = {{{0}}};
        for (int bi = 0; bi < nb && (o.path & 1); bi++) {
            size_t fr = 0, tot = 0;
            CUCHK(cudaMemGetInfo(&fr, &tot));
            const int layers = o.layers > 0 && o.layers < s->layers ? o.layers : s->layers;
            const double f16_bytes = 2.0 * layers * (4.0 * s->dim * s->dim + 3.0 * s->hidden * s->dim);
            if (has_f16 && f16_bytes < 0.9 * (double)fr) kv_rows(&o, s, HARP_QTYPE_F16, 0, batches[bi], fp16);
            else if (has_f16) fprintf(stderr, "%s f16: %.1f GB of weights do not fit in %.1f GB free; row skipped\n", s->name,
                                      f16_bytes / 1e9, (double)fr / 1e9);
            for (int qi = 0; qi < nq; qi++) {
                if (do_rht) kv_rows(&o, s, qts[qi], ROT_RHT, batches[bi], fp16);
                if (do_harp) kv_rows(&o, s, qts[qi], ROT_HARP, batches[bi], fp16);
                if (do_none) kv_rows(&o, s, qts[qi], ROT_NONE, batches[bi], fp16);
            }
        }
        for (int k = 0; k < o.nckv && (o.path & 2); k++) {   /* the library's forward pass on the CUDA backend, batch 1 */
            if (has_f16) ctx_row(&o, s, HARP_QTYPE_F16, 0, o.ckv[k]);
            for (int qi = 0; qi < nq; qi++) {
                if (do_rht) ctx_row(&o, s, qts[qi], ROT_RHT, o.ckv[k]);
                if (do_harp) ctx_row(&o, s, qts[qi], ROT_HARP, o.ckv[k]);
                if (do_none) ctx_row(&o, s, qts[qi], ROT_NONE, o.ckv[k]);
            }
        }
    }
    cudaStreamDestroy(st);
    return 0;
}
#endif
