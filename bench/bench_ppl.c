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

int bench_ppl(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"file", required_argument, 0, 'f'},
                                         {"ctx", required_argument, 0, 'c'},   {"windows", required_argument, 0, 'w'},
                                         {"threads", required_argument, 0, 't'}, {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *root = getenv("HARP_SHARED");
    if (!root || !*root) root = "../shared";
    char dm[1024], df[1024];
    snprintf(dm, sizeof dm, "%s/models/ref-llama", root);
    snprintf(df, sizeof df, "%s/data/ref-corpus/test.txt", root);
    const char *model = dm, *file = df;
    int ctx = 512, windows = 4, threads = 0, json = 0, o;
    while ((o = cli_getopt(argc, argv, "m:f:c:w:t:jh", opts)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 'f': file = optarg; break;
        case 'c': ctx = (int)cli_parse_long("--ctx", optarg, 2, 1 << 20); break;
        case 'w': windows = (int)cli_parse_long("--windows", optarg, 1, 100000); break;
        case 't': threads = (int)cli_parse_long("--threads", optarg, 0, 1024); break;
        case 'j': json = 1; break;
        case 'h': bench_usage(stdout); return CLI_EXIT_OK;
        }
    }
    if (threads > 0) {
        harp_set_threads(threads);
        openblas_set_num_threads(threads);
    }
    harp_model *m = NULL;
    cli_check(harp_model_open(model, NULL, &m));
    harp_model_info in;
    cli_check(harp_model_get_info(m, &in));
    if (ctx > in.max_seq_len) cli_die(CLI_EXIT_USAGE, "%s: --ctx %d exceeds max_position_embeddings %d", model, ctx, in.max_seq_len);
    char *text = NULL;
    size_t len = 0;
    cli_check(harp_read_file(file, &text, &len));
    /* Only as much text as the windows need (about 2 bytes per token is plenty). */
    size_t want_bytes = (size_t)ctx * windows * 8;
    if (len > want_bytes) len = want_bytes;
    while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80) len--;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    cli_check(harp_tokenize(harp_model_tokenizer(m), text, len, 1, &ids, &n_ids));
    free(text);
    if (n_ids < (size_t)ctx * windows) cli_die(CLI_EXIT_FAIL, "%s: too short for %d windows of %d", file, windows, ctx);

    int V = in.vocab_size, d = in.dim, hid = in.hidden_dim, L = in.n_layers, hd = in.head_dim;
    int qd = in.n_heads * hd, kvd = in.n_kv_heads * hd;
    /* Linear shapes (out, in) of one layer, then the head. */
    int shp[8][2] = {{qd, d}, {kvd, d}, {kvd, d}, {d, qd}, {hid, d}, {hid, d}, {d, hid}, {V, d}};
    double lin_flops = 0;
    for (int i = 0; i < 7; i++) lin_flops += 2.0 * ctx * shp[i][0] * shp[i][1] * L;
    lin_flops += 2.0 * ctx * V * d;
    /* Causal attention: QKᵀ and PV over the lower triangle, per head and layer. */
    double att_flops = 2.0 * 2.0 * hd * ((double)ctx * (ctx + 1) / 2) * in.n_heads * L;
    double flops = lin_flops + att_flops;

    harp_ctx *c = NULL;
    cli_check(harp_ctx_create(m, ctx, &c));
    float *lg = harp_aligned_alloc((size_t)ctx * V * 4, "logits");
    if (!lg) cli_die(CLI_EXIT_FAIL, "out of memory");
    cli_check(harp_ctx_eval(c, ids, ctx, lg, 1)); /* warm-up */
    double t0 = harp_time_s();
    for (int w = 0; w < windows; w++) {
        harp_ctx_truncate(c, 0);
        cli_check(harp_ctx_eval(c, ids + (size_t)w * ctx, ctx, lg, 1));
    }
    double t_fwd = (harp_time_s() - t0) / windows;
    long long rss = bench_peak_rss_bytes();   /* before the sgemm reference allocates its own buffers */

    /* sgemm on the same linear shapes (X: ctx × in, W: out × in). */
    size_t maxo = 0, maxi = 0;
    for (int i = 0; i < 8; i++) {
        if ((size_t)shp[i][0] > maxo) maxo = (size_t)shp[i][0];
        if ((size_t)shp[i][1] > maxi) maxi = (size_t)shp[i][1];
    }
    float *X = harp_aligned_alloc((size_t)ctx * maxi * 4, "x"), *W = harp_aligned_alloc(maxo * maxi * 4, "w");
    float *Y = harp_aligned_alloc((size_t)ctx * maxo * 4, "y");
    if (!X || !W || !Y) cli_die(CLI_EXIT_FAIL, "out of memory");
    for (size_t i = 0; i < (size_t)ctx * maxi; i++) X[i] = (float)((i * 37) % 101) * 0.01f - 0.5f;
    for (size_t i = 0; i < maxo * maxi; i++) W[i] = (float)((i * 53) % 97) * 0.01f - 0.48f;
    double t1 = harp_time_s();
    for (int w = 0; w < windows; w++)
        for (int l = 0; l <= L; l++)
            for (int i = (l == L ? 7 : 0); i < (l == L ? 8 : 7); i++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ctx, shp[i][0], shp[i][1], 1.0f, X, shp[i][1], W,
                            shp[i][1], 0.0f, Y, shp[i][0]);
    double t_gemm = (harp_time_s() - t1) / windows;

    double gf_fwd = flops / t_fwd / 1e9, gf_gemm = lin_flops / t_gemm / 1e9;
    double w32 = (double)in.n_params * 4;
    double act = (double)ctx * (2.0 * d + qd + 2.0 * kvd + qd + 2.0 * hid + ctx + V) * 4 + 2.0 * L * ctx * kvd * 4;
    double budget = 2 * w32 + act;
    if (json) {
        printf("{\"bench\": \"ppl\", \"model\": \"%s\", \"ctx\": %d, \"windows\": %d, \"threads\": %d, \"seconds_per_window\": %.4f, "
               "\"tokens_per_second\": %.1f, \"forward_gflops\": %.2f, \"sgemm_gflops_same_shapes\": %.2f, \"ratio\": %.3f, "
               "\"peak_rss_bytes\": %lld, \"rss_budget_bytes\": %.0f, \"fp32_weight_bytes\": %.0f, \"window_activation_bytes\": %.0f}\n",
               model, ctx, windows, harp_get_threads(), t_fwd, ctx / t_fwd, gf_fwd, gf_gemm, gf_fwd / gf_gemm, rss, budget, w32,
               act);
    } else {
        printf("harp bench ppl: %s, ctx %d, %d windows, %d threads\n", model, ctx, windows, harp_get_threads());
        printf("  forward:   %.3f s/window, %.1f tokens/s, %.2f GFLOP/s (%.2f GFLOP/window: linears %.2f + causal attention %.2f)\n",
               t_fwd, ctx / t_fwd, gf_fwd, flops / 1e9, lin_flops / 1e9, att_flops / 1e9);
        printf("  sgemm:     %.2f GFLOP/s on the same linear shapes (%.3f s/window)\n", gf_gemm, t_gemm);
        printf("  ratio:     %.1f%% of sgemm (target >= 60%%)\n", 100 * gf_fwd / gf_gemm);
        printf("  peak RSS:  %.1f MB; budget 2 x fp32 weights (%.1f MB) + one window's activations (%.1f MB) = %.1f MB: %s\n",
               rss / 1e6, w32 / 1e6, act / 1e6, budget / 1e6, rss <= budget ? "within" : "OVER");
    }
    harp_free_aligned(X), harp_free_aligned(W), harp_free_aligned(Y), harp_free_aligned(lg);
    harp_ctx_free(c);
    harp_free(ids);
    harp_model_free(m);
    return CLI_EXIT_OK;
}
