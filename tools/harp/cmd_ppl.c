/* harp ppl: perplexity with the GPTQ/QuIP# protocol, optional saved logits and KLD. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "harp/cuda_eval.h"

static void ppl_usage(FILE *f) {
    fprintf(f,
            "usage: harp ppl -m MODEL -f TEXT [options]\n\n"
            "Perplexity (GPTQ/QuIP# protocol): BOS + the whole file tokenized once, non-overlapping windows\n"
            "of --ctx tokens (remainder dropped), mean NLL over the ctx-1 predictions of each window.\n\n"
            "  -m, --model PATH       Hugging Face folder, harp quantized folder or llama2.c .bin\n"
            "  -f, --file PATH        UTF-8 text file\n"
            "  -c, --ctx N            window length (default 512)\n"
            "      --max-chunks N     score only the first N >= 1 windows (default: all)\n"
            "      --save-logits FILE write the scored positions' logits (docs/format/logits.md)\n"
            "      --kld-base FILE    KL divergence against logits saved by --save-logits\n"
            "      --kld-ref MODEL    KL(P_ref || P_model) and top-1 agreement against MODEL run beside\n"
            "                         this one on the same windows (no logits file; with --gpu on the GPU)\n"
            "      --gpu              evaluate on the GPU (cuBLAS fp32; needs a CUDA build and a device)\n"
            "      --gpu-batch N      with --gpu: windows per launch (default: auto)\n"
            "      --kv TYPE          KV cache elements of the windows: f32 (default) or f16\n"
            "  -t, --threads N        CPU threads (default: all cores)\n"
            "      --json             one JSON object on stdout (progress stays on stderr)\n"
            "  -q, --quiet            no progress on stderr\n"
            "  -h, --help\n");
}

typedef struct ppl_opts {
    const char *model, *file, *kld_ref;
    int json, gpu;
    harp_ppl_params p;
    harp_gpu_ppl_params gp;
} ppl_opts;

/* Returns 1 after --help. */
static int parse_args(int argc, char **argv, ppl_opts *o) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"file", required_argument, 0, 'f'},
        {"ctx", required_argument, 0, 'c'},   {"max-chunks", required_argument, 0, 1},
        {"save-logits", required_argument, 0, 2}, {"kld-base", required_argument, 0, 3},
        {"threads", required_argument, 0, 't'}, {"json", no_argument, 0, 4},
        {"quiet", no_argument, 0, 'q'},       {"help", no_argument, 0, 'h'},
        {"gpu", no_argument, 0, 5},           {"kld-ref", required_argument, 0, 6},
        {"gpu-batch", required_argument, 0, 7}, {"kv", required_argument, 0, 8},
        {0, 0, 0, 0}};
    int c;
    while ((c = cli_getopt(argc, argv, "m:f:c:t:qh", opts)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'f': o->file = optarg; break;
        case 'c': o->p.ctx = (int)cli_parse_long("--ctx", optarg, 2, 1 << 24); break;
        case 1: o->p.max_chunks = (int)cli_parse_long("--max-chunks", optarg, 1, 1 << 30); break;
        case 2: o->p.save_logits = optarg; break;
        case 3: o->p.kld_base = optarg; break;
        case 't': cli_set_threads(optarg); break;
        case 4: o->json = 1; break;
        case 'q': cli_set_quiet(1); break;
        case 5: o->gpu = 1; break;
        case 6: o->kld_ref = optarg; break;
        case 7: o->gp.windows_per_batch = (int)cli_parse_long("--gpu-batch", optarg, 1, 1 << 20); break;
        case 8: o->p.kv_qtype = cli_parse_kv("--kv", optarg); break;
        case 'h': ppl_usage(stdout); return 1;
        }
    }
    cli_require(o->model, "-m MODEL");
    cli_require(o->file, "-f TEXT, the UTF-8 text file to score");
    if (!o->gpu && o->gp.windows_per_batch) cli_die(CLI_EXIT_USAGE, "--gpu-batch needs --gpu");
    if (o->kld_ref && o->p.kld_base) cli_die(CLI_EXIT_USAGE, "--kld-ref and --kld-base: one reference at a time");
    if (o->gpu && (o->p.save_logits || o->p.kld_base))
        cli_die(CLI_EXIT_USAGE, "--save-logits and --kld-base are CPU-only; with --gpu use --kld-ref MODEL");
    return 0;
}

/* Progress: one line per the CLI's rule, with llama.cpp's running "[i]ppl" at the end. */
static void on_chunk(void *user, int i, int n, double nll, double running) {
    (void)user;
    (void)nll;
    char extra[48];
    snprintf(extra, sizeof extra, "[%d]%.4f", i + 1, running);
    cli_progress_line("ppl", i + 1, n, extra);
}

static void print_json(const ppl_opts *o, const harp_model_info *info, const harp_ppl_result *r) {
    printf("{\"kind\": \"ppl\", \"model\": ");
    cli_json_str(stdout, o->model);
    printf(", \"text\": ");
    cli_json_str(stdout, o->file);
    cli_json_quant(stdout, info);
    printf(", \"ppl\": %.6f, \"ppl_stderr\": %.6f, \"nll_mean\": %.8f, \"n_tokens_scored\": %lld, \"n_chunks\": %d, "
           "\"ctx\": %d, \"seconds\": %.3f, \"tokens_per_second\": %.1f",
           r->ppl, r->ppl_stderr, r->nll_mean, (long long)r->n_tokens_scored, r->n_chunks, r->ctx, r->seconds,
           r->tokens_per_second);
    if (o->gpu) printf(", \"device\": \"gpu\"");
    printf(", \"kv\": \"%s\"", harp_qtype_name(o->p.kv_qtype));
    if (r->has_kld) {
        printf(", \"kld_mean\": %.8f, \"kld_stderr\": %.8f, \"top1_agree\": %.6f, \"kld_against\": ", r->kld_mean,
               r->kld_stderr, r->top1_agree);
        cli_json_str(stdout, o->kld_ref ? o->kld_ref : o->p.kld_base);
    }
    printf(", \"chunk_nll\": [");
    for (int i = 0; i < r->n_chunks && i < 8; i++) printf("%s%.8f", i ? ", " : "", r->chunk_nll[i]);
    printf("]}\n");
}

static void print_text(const ppl_opts *o, const harp_model_info *info, const harp_ppl_result *r) {
    printf("model: %s (%s), text: %s%s\n", o->model, info->arch, o->file, o->gpu ? " [gpu]" : "");
    printf("ctx %d, %d windows, %lld tokens scored, %.2f s (%.1f tokens/s)\n", r->ctx, r->n_chunks,
           (long long)r->n_tokens_scored, r->seconds, r->tokens_per_second);
    if (r->has_kld) printf("KLD = %.6f +/- %.6f, top-1 agreement = %.4f\n", r->kld_mean, r->kld_stderr, r->top1_agree);
    printf("PPL = %.4f +/- %.4f\n", r->ppl, r->ppl_stderr);
}

int cmd_ppl(int argc, char **argv) {
    ppl_opts o = {.p = harp_ppl_default_params(), .gp = harp_gpu_ppl_default_params()};
    if (parse_args(argc, argv, &o)) return CLI_EXIT_OK;
    char *text = NULL;
    size_t len = 0;
    cli_read_text(o.file, &text, &len);
    harp_model *m = NULL, *ref = NULL;
    cli_check(harp_model_open(o.model, NULL, &m));
    harp_model_info info;
    cli_check(harp_model_get_info(m, &info));
    if (o.p.ctx > info.max_seq_len)
        cli_die(CLI_EXIT_FAIL, "%s: --ctx %d exceeds the model's max_position_embeddings %d", o.model, o.p.ctx, info.max_seq_len);
    o.p.on_chunk = on_chunk;
    if (o.kld_ref) {
        harp_model_params mp = harp_model_default_params();
        mp.load_tokenizer = 0;
        cli_check(harp_model_open(o.kld_ref, &mp, &ref));
        o.p.kld_ref = ref;
    }
    harp_ppl_result r;
    cli_progress_begin();
    harp_status st = o.gpu ? harp_eval_ppl_gpu(m, text, len, &o.p, &o.gp, &r) : harp_eval_ppl(m, text, len, &o.p, &r);
    harp_free(text);
    if (st) {
        const char *msg = harp_last_error();
        /* Text-level problems found by the library are reported against the text file. */
        if (!strncmp(msg, "ppl: ", 5)) cli_die(CLI_EXIT_FAIL, "%s: %s", o.file, msg + 5);
        if (o.kld_ref && !strncmp(msg, "reference model: ", 17)) cli_die(CLI_EXIT_FAIL, "%s: %s", o.kld_ref, msg + 17);
        cli_check(st);
    }
    if (o.json) print_json(&o, &info, &r);
    else print_text(&o, &info, &r);
    harp_ppl_result_free(&r);
    harp_model_free(ref);
    harp_model_free(m);
    return CLI_EXIT_OK;
}
