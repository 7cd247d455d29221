/* harp ppl: perplexity with the GPTQ/QuIP# protocol, optional saved logits and KLD. */
#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "core/core.h"
#include "harp/cuda_eval.h"

static void ppl_usage(FILE *f) {
    fprintf(f,
            "usage: harp ppl -m MODEL -f TEXT [options]\n\n"
            "Perplexity (GPTQ/QuIP# protocol): BOS + the whole file tokenized once, non-overlapping windows\n"
            "of --ctx tokens (remainder dropped), mean NLL over the ctx-1 predictions of each window.\n\n"
            "  -m, --model PATH       Hugging Face folder or llama2.c .bin\n"
            "  -f, --file PATH        UTF-8 text file\n"
            "  -c, --ctx N            window length (default 512)\n"
            "      --max-chunks N     score only the first N windows (default: all)\n"
            "      --save-logits FILE write the scored positions' logits (docs/format/logits.md)\n"
            "      --kld-base FILE    KL divergence against logits saved by --save-logits\n"
            "      --gpu              evaluate on the GPU (cuBLAS fp32; needs a CUDA build and a device)\n"
            "      --kld-ref MODEL    with --gpu: KL(P_ref || P_model) and top-1 agreement against MODEL\n"
            "                         on the same windows, computed on the GPU (no logits file)\n"
            "      --gpu-batch N      with --gpu: windows per launch (default: auto)\n"
            "  -t, --threads N        CPU threads (default: all cores)\n"
            "      --json             one JSON object on stdout\n"
            "  -q, --quiet            no running [i]ppl lines\n"
            "  -h, --help\n");
}

typedef struct chunk_state {
    double t0;
    int quiet;
} chunk_state;

/* llama.cpp-style running perplexity: "[1]36.12,[2]35.40,..." with an ETA after the first window. */
static void on_chunk(void *user, int i, int n, double nll, double running) {
    chunk_state *s = user;
    (void)nll;
    if (s->quiet) return;
    if (i == 0) {
        double dt = harp_time_s() - s->t0;
        fprintf(stderr, "ppl: %.2f s per window, ETA %.1f s for %d windows\n", dt, dt * (n - 1), n);
    }
    fprintf(stderr, "[%d]%.4f,", i + 1, running);
    if ((i + 1) % 16 == 0 || i + 1 == n) fputc('\n', stderr);
    fflush(stderr);
}

int cmd_ppl(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"file", required_argument, 0, 'f'},
        {"ctx", required_argument, 0, 'c'},   {"max-chunks", required_argument, 0, 1},
        {"save-logits", required_argument, 0, 2}, {"kld-base", required_argument, 0, 3},
        {"threads", required_argument, 0, 't'}, {"json", no_argument, 0, 4},
        {"quiet", no_argument, 0, 'q'},       {"help", no_argument, 0, 'h'},
        {"gpu", no_argument, 0, 5},           {"kld-ref", required_argument, 0, 6},
        {"gpu-batch", required_argument, 0, 7},
        {0, 0, 0, 0}};
    const char *model = NULL, *file = NULL;
    harp_ppl_params p = harp_ppl_default_params();
    harp_gpu_ppl_params gp = harp_gpu_ppl_default_params();
    const char *kld_ref = NULL;
    int json = 0, quiet = 0, threads = 0, gpu = 0, o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "m:f:c:t:qh", opts, NULL)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 'f': file = optarg; break;
        case 'c': p.ctx = (int)cli_parse_long("--ctx", optarg, 2, 1 << 24); break;
        case 1: p.max_chunks = (int)cli_parse_long("--max-chunks", optarg, 0, 1 << 30); break;
        case 2: p.save_logits = optarg; break;
        case 3: p.kld_base = optarg; break;
        case 't': threads = (int)cli_parse_long("--threads", optarg, 0, 1024); break;
        case 4: json = 1; break;
        case 'q': quiet = 1; break;
        case 5: gpu = 1; break;
        case 6: kld_ref = optarg; break;
        case 7: gp.windows_per_batch = (int)cli_parse_long("--gpu-batch", optarg, 1, 1 << 20); break;
        case 'h': ppl_usage(stdout); return CLI_EXIT_OK;
        default: ppl_usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    if (!model || !file) {
        ppl_usage(stderr);
        cli_die(CLI_EXIT_USAGE, "-m MODEL and -f TEXT are required");
    }
    if (!gpu && (kld_ref || gp.windows_per_batch))
        cli_die(CLI_EXIT_USAGE, "--kld-ref and --gpu-batch need --gpu (on the CPU use --save-logits / --kld-base)");
    if (gpu && (p.save_logits || p.kld_base))
        cli_die(CLI_EXIT_USAGE, "--save-logits and --kld-base are CPU-only; with --gpu use --kld-ref MODEL");
    if (threads > 0) {
        harp_set_threads(threads);
        openblas_set_num_threads(threads);
    }
    char *text = NULL;
    size_t len = 0;
    cli_check(harp_read_file(file, &text, &len));
    if (len == 0) cli_die(CLI_EXIT_FAIL, "%s: empty text file", file);
    if (!harp_utf8_valid(text, len)) cli_die(CLI_EXIT_FAIL, "%s: not valid UTF-8 text", file);
    harp_model *m = NULL;
    cli_check(harp_model_open(model, NULL, &m));
    harp_model_info info;
    cli_check(harp_model_get_info(m, &info));
    if (p.ctx > info.max_seq_len)
        cli_die(CLI_EXIT_FAIL, "%s: --ctx %d exceeds the model's max_position_embeddings %d", model, p.ctx, info.max_seq_len);
    chunk_state cs = {harp_time_s(), quiet || json};
    p.on_chunk = on_chunk;
    p.on_chunk_user = &cs;
    harp_ppl_result r;
    harp_model *ref = NULL;
    if (kld_ref) {
        harp_model_params mp = harp_model_default_params();
        mp.load_tokenizer = 0;
        cli_check(harp_model_open(kld_ref, &mp, &ref));
        gp.kld_ref = ref;
    }
    harp_status st = gpu ? harp_eval_ppl_gpu(m, text, len, &p, &gp, &r) : harp_eval_ppl(m, text, len, &p, &r);
    free(text);
    if (st) {
        const char *msg = harp_last_error();
        /* Text-level problems found by the library are reported against the text file. */
        if (!strncmp(msg, "ppl: ", 5)) cli_die(CLI_EXIT_FAIL, "%s: %s", file, msg + 5);
        cli_check(st);
    }
    if (json) {
        printf("{\"ppl\": %.6f, \"ppl_stderr\": %.6f, \"nll_mean\": %.8f, \"n_tokens_scored\": %lld, \"n_chunks\": %d, "
               "\"ctx\": %d, \"seconds\": %.3f, \"tokens_per_second\": %.1f",
               r.ppl, r.ppl_stderr, r.nll_mean, (long long)r.n_tokens_scored, r.n_chunks, r.ctx, r.seconds,
               r.tokens_per_second);
        if (gpu) printf(", \"device\": \"gpu\"");
        if (r.has_kld)
            printf(", \"kld_mean\": %.8f, \"kld_stderr\": %.8f, \"top1_agree\": %.6f", r.kld_mean, r.kld_stderr,
                   r.top1_agree);
        printf(", \"chunk_nll\": [");
        for (int i = 0; i < r.n_chunks && i < 8; i++) printf("%s%.8f", i ? ", " : "", r.chunk_nll[i]);
        printf("]}\n");
    } else {
        printf("model: %s (%s), text: %s%s\n", model, info.arch, file, gpu ? " [gpu]" : "");
        printf("ctx %d, %d windows, %lld tokens scored, %.2f s (%.1f tokens/s)\n", r.ctx, r.n_chunks,
               (long long)r.n_tokens_scored, r.seconds, r.tokens_per_second);
        if (r.has_kld)
            printf("KLD = %.6f +/- %.6f, top-1 agreement = %.4f\n", r.kld_mean, r.kld_stderr, r.top1_agree);
        printf("PPL = %.4f +/- %.4f\n", r.ppl, r.ppl_stderr);
    }
    harp_ppl_result_free(&r);
    harp_model_free(ref);
    harp_model_free(m);
    return CLI_EXIT_OK;
}
