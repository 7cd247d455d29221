/* harp bench ppl: end-to-end forward throughput of the perplexity path next to OpenBLAS sgemm on
 * the same shapes, measured in the same run, plus peak RSS against 2x fp32 weights + one window's
 * activations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static void bench_usage(FILE *f) {
    fprintf(f, "usage: harp bench ppl [-m MODEL] [-f TEXT] [--ctx N] [--windows N] [--threads N] [--json]\n"
               "defaults: ref-llama and ref-corpus test.txt under $HARP_SHARED (or ../shared), ctx 512, 4 windows\n");
}

typedef struct ppl_bench {
    const char *model, *file;
    int ctx, windows, json;
    harp_model_info in;
    int shp[8][2];              /* linear shapes (out, in) of one layer, then the head */
    double lin_flops, att_flops;
    double t_fwd, t_gemm;       /* seconds per window */
    long long rss;
} ppl_bench;

/* Returns 1 after --help. */
static int parse_args(int argc, char **argv, ppl_bench *b, char *dm, char *df, size_t n) {
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"file", required_argument, 0, 'f'},
                                         {"ctx", required_argument, 0, 'c'},   {"windows", required_argument, 0, 'w'},
                                         {"threads", required_argument, 0, 't'}, {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    b->model = bench_shared_path(dm, n, "models/ref-llama");
    b->file = bench_shared_path(df, n, "data/ref-corpus/test.txt");
    b->ctx = 512, b->windows = 4;
    int o;
    while ((o = cli_getopt(argc, argv, "m:f:c:w:t:jh", opts)) != -1) {
        switch (o) {
        case 'm': b->model = optarg; break;
        case 'f': b->file = optarg; break;
        case 'c': b->ctx = (int)cli_parse_long("--ctx", optarg, 2, 1 << 20); break;
        case 'w': b->windows = (int)cli_parse_long("--windows", optarg, 1, 100000); break;
        case 't': cli_set_threads(optarg); break;
        case 'j': b->json = 1; break;
        case 'h': bench_usage(stdout); return 1;
        }
    }
    return 0;
}

/* The first ctx * windows tokens of the file (BOS first). */
static int32_t *bench_tokens(const ppl_bench *b, harp_model *m) {
    char *text = NULL;
    size_t len = 0;
    cli_check(harp_read_file(b->file, &text, &len));
    /* Only as much text as the windows need (about 2 bytes per token is plenty). */
    size_t want_bytes = (size_t)b->ctx * b->windows * 8;
    if (len > want_bytes) len = want_bytes;
    while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80) len--;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    cli_check(harp_tokenize(harp_model_tokenizer(m), text, len, 1, &ids, &n_ids));
    harp_free(text);
    if (n_ids < (size_t)b->ctx * b->windows)
        cli_die(CLI_EXIT_FAIL, "%s: too short for %d windows of %d", b->file, b->windows, b->ctx);
    return ids;
}

static void count_flops(ppl_bench *b) {
    const harp_model_info *in = &b->in;
    int V = in->vocab_size, d = in->dim, hid = in->hidden_dim, L = in->n_layers, hd = in->head_dim, ctx = b->ctx;
    int qd = in->n_heads * hd, kvd = in->n_kv_heads * hd;
    int shp[8][2] = {{qd, d}, {kvd, d}, {kvd, d}, {d, qd}, {hid, d}, {hid, d}, {d, hid}, {V, d}};
    memcpy(b->shp, shp, sizeof shp);
    b->lin_flops = 2.0 * ctx * V * d;
    for (int i = 0; i < 7; i++) b->lin_flops += 2.0 * ctx * shp[i][0] * shp[i][1] * L;
    /* Causal attention: QKᵀ and PV over the lower triangle, per head and layer. */
    b->att_flops = 2.0 * 2.0 * hd * ((double)ctx * (ctx + 1) / 2) * in->n_heads * L;
}

static void time_forward(ppl_bench *b, harp_model *m, const int32_t *ids) {
    harp_ctx *c = NULL;
    cli_check(harp_ctx_create(m, b->ctx, &c));
    float *lg = harp_aligned_alloc((size_t)b->ctx * b->in.vocab_size * 4, "logits");
    if (!lg) cli_die(CLI_EXIT_FAIL, "out of memory");
    cli_check(harp_ctx_eval(c, ids, b->ctx, lg, 1)); /* warm-up */
    double t0 = harp_time_s();
    for (int w = 0; w < b->windows; w++) {
        harp_ctx_truncate(c, 0);
        cli_check(harp_ctx_eval(c, ids + (size_t)w * b->ctx, b->ctx, lg, 1));
    }
    b->t_fwd = (harp_time_s() - t0) / b->windows;
    b->rss = bench_peak_rss_bytes();   /* before the sgemm reference allocates its own buffers */
    harp_free_aligned(lg);
    harp_ctx_free(c);
}

/* sgemm on the same linear shapes (X: ctx × in, W: out × in). */
static void time_sgemm(ppl_bench *b) {
    size_t maxo = 0, maxi = 0, ctx = (size_t)b->ctx;
    int L = b->in.n_layers;
    for (int i = 0; i < 8; i++) {
        if ((size_t)b->shp[i][0] > maxo) maxo = (size_t)b->shp[i][0];
        if ((size_t)b->shp[i][1] > maxi) maxi = (size_t)b->shp[i][1];
    }
    float *X = harp_aligned_alloc(ctx * maxi * 4, "x"), *W = harp_aligned_alloc(maxo * maxi * 4, "w");
    float *Y = harp_aligned_alloc(ctx * maxo * 4, "y");
    if (!X || !W || !Y) cli_die(CLI_EXIT_FAIL, "out of memory");
    for (size_t i = 0; i < ctx * maxi; i++) X[i] = (float)((i * 37) % 101) * 0.01f - 0.5f;
    for (size_t i = 0; i < maxo * maxi; i++) W[i] = (float)((i * 53) % 97) * 0.01f - 0.48f;
    double t1 = harp_time_s();
    for (int w = 0; w < b->windows; w++)
        for (int l = 0; l <= L; l++)
            for (int i = (l == L ? 7 : 0); i < (l == L ? 8 : 7); i++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b->ctx, b->shp[i][0], b->shp[i][1], 1.0f, X,
                            b->shp[i][1], W, b->shp[i][1], 0.0f, Y, b->shp[i][0]);
    b->t_gemm = (harp_time_s() - t1) / b->windows;
    harp_free_aligned(X), harp_free_aligned(W), harp_free_aligned(Y);
}

static void print_result(const ppl_bench *b) {
    const harp_model_info *in = &b->in;
    int ctx = b->ctx, d = in->dim, hid = in->hidden_dim, L = in->n_layers, hd = in->head_dim;
    int qd = in->n_heads * hd, kvd = in->n_kv_heads * hd;
    double flops = b->lin_flops + b->att_flops, gf_fwd = flops / b->t_fwd / 1e9, gf_gemm = b->lin_flops / b->t_gemm / 1e9;
    double w32 = (double)in->n_params * 4;
    double act = (double)ctx * (2.0 * d + qd + 2.0 * kvd + qd + 2.0 * hid + ctx + in->vocab_size) * 4 + 2.0 * L * ctx * kvd * 4;
    double budget = 2 * w32 + act;
    if (b->json) {
        printf("{\"bench\": \"ppl\", \"model\": \"%s\", \"ctx\": %d, \"windows\": %d, \"threads\": %d, \"seconds_per_window\": %.4f, "
               "\"tokens_per_second\": %.1f, \"forward_gflops\": %.2f, \"sgemm_gflops_same_shapes\": %.2f, \"ratio\": %.3f, "
               "\"peak_rss_bytes\": %lld, \"rss_budget_bytes\": %.0f, \"fp32_weight_bytes\": %.0f, \"window_activation_bytes\": %.0f}\n",
               b->model, ctx, b->windows, harp_get_threads(), b->t_fwd, ctx / b->t_fwd, gf_fwd, gf_gemm, gf_fwd / gf_gemm, b->rss,
               budget, w32, act);
        return;
    }
    printf("harp bench ppl: %s, ctx %d, %d windows, %d threads\n", b->model, ctx, b->windows, harp_get_threads());
    printf("  forward:   %.3f s/window, %.1f tokens/s, %.2f GFLOP/s (%.2f GFLOP/window: linears %.2f + causal attention %.2f)\n",
           b->t_fwd, ctx / b->t_fwd, gf_fwd, flops / 1e9, b->lin_flops / 1e9, b->att_flops / 1e9);
    printf("  sgemm:     %.2f GFLOP/s on the same linear shapes (%.3f s/window)\n", gf_gemm, b->t_gemm);
    printf("  ratio:     %.1f%% of sgemm (target >= 60%%)\n", 100 * gf_fwd / gf_gemm);
    printf("  peak RSS:  %.1f MB; budget 2 x fp32 weights (%.1f MB) + one window's activations (%.1f MB) = %.1f MB: %s\n",
           b->rss / 1e6, w32 / 1e6, act / 1e6, budget / 1e6, b->rss <= budget ? "within" : "OVER");
}

int bench_ppl(int argc, char **argv) {
    ppl_bench b = {0};
    char dm[1024], df[1024];
    if (parse_args(argc, argv, &b, dm, df, sizeof dm)) return CLI_EXIT_OK;
    harp_model *m = NULL;
    cli_check(harp_model_open(b.model, NULL, &m));
    cli_check(harp_model_get_info(m, &b.in));
    if (b.ctx > b.in.max_seq_len)
        cli_die(CLI_EXIT_USAGE, "%s: --ctx %d exceeds max_position_embeddings %d", b.model, b.ctx, b.in.max_seq_len);
    int32_t *ids = bench_tokens(&b, m);
    count_flops(&b);
    time_forward(&b, m, ids);
    time_sgemm(&b);
    print_result(&b);
    harp_free(ids);
    harp_model_free(m);
    return CLI_EXIT_OK;
}
