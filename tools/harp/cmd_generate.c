/* harp generate: text continuation (greedy at --temp 0, else temperature + nucleus sampling). */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static void gen_usage(FILE *f) {
    fprintf(f,
            "usage: harp generate -m MODEL -p TEXT [options]\n\n"
            "  -m, --model PATH   Hugging Face folder or llama2.c .bin\n"
            "  -p, --prompt TEXT  prompt (BOS is prepended)\n"
            "  -n, --n-new N      tokens to generate (default 64; stops early at EOS)\n"
            "      --temp T       temperature (default 0 = greedy argmax)\n"
            "      --top-p P      nucleus sampling mass (default 1 = off)\n"
            "      --seed S       sampling seed (default 0)\n"
            "  -t, --threads N    CPU threads\n"
            "      --json         {\"prompt\", \"prompt_ids\", \"generated_ids\", \"text\"} on stdout\n"
            "  -h, --help\n");
}

static int print_token(void *user, int32_t id) {
    const harp_tokenizer *t = user;
    char *s = NULL;
    size_t n = 0;
    /* Decoding one id alone would drop SentencePiece's leading space, so decode the piece. */
    const char *piece = harp_tokenizer_piece(t, id);
    if (piece && !strncmp(piece, "\xe2\x96\x81", 3)) fputc(' ', stdout);
    if (harp_detokenize(t, &id, 1, &s, &n) == HARP_OK) fwrite(s, 1, n, stdout);
    harp_free(s);
    fflush(stdout);
    return 0;
}

static void json_ids(const int32_t *ids, size_t n) {
    putchar('[');
    for (size_t i = 0; i < n; i++) printf("%s%d", i ? ", " : "", (int)ids[i]);
    putchar(']');
}

int cmd_generate(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"prompt", required_argument, 0, 'p'},
        {"n-new", required_argument, 0, 'n'}, {"temp", required_argument, 0, 1},
        {"top-p", required_argument, 0, 2},   {"seed", required_argument, 0, 3},
        {"threads", required_argument, 0, 't'}, {"json", no_argument, 0, 4},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *model = NULL, *prompt = NULL;
    int n_new = 64, json = 0, threads = 0, o;
    harp_sampler_params sp = harp_sampler_default_params();
    optind = 1;
    while ((o = getopt_long(argc, argv, "m:p:n:t:h", opts, NULL)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 'p': prompt = optarg; break;
        case 'n': n_new = (int)cli_parse_long("-n", optarg, 0, 1 << 24); break;
        case 1: sp.temperature = (float)cli_parse_double("--temp", optarg, 0, 100); break;
        case 2: sp.top_p = (float)cli_parse_double("--top-p", optarg, 1e-6, 1); break;
        case 3: sp.seed = cli_parse_u64("--seed", optarg); break;
        case 't': threads = (int)cli_parse_long("--threads", optarg, 0, 1024); break;
        case 4: json = 1; break;
        case 'h': gen_usage(stdout); return CLI_EXIT_OK;
        default: gen_usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    if (!model || !prompt) {
        gen_usage(stderr);
        cli_die(CLI_EXIT_USAGE, "-m MODEL and -p TEXT are required");
    }
    if (threads > 0) {
        harp_set_threads(threads);
        openblas_set_num_threads(threads);
    }
    harp_model *m = NULL;
    cli_check(harp_model_open(model, NULL, &m));
    const harp_tokenizer *tok = harp_model_tokenizer(m);
    harp_model_info info;
    cli_check(harp_model_get_info(m, &info));
    int32_t *ids = NULL;
    size_t n_ids = 0;
    cli_check(harp_tokenize(tok, prompt, strlen(prompt), 1, &ids, &n_ids));
    if ((int64_t)n_ids + n_new > info.max_seq_len)
        cli_die(CLI_EXIT_USAGE, "%s: %zu prompt tokens + -n %d exceed the model's maximum of %d", model, n_ids, n_new,
                info.max_seq_len);
    int32_t *out = malloc(sizeof(int32_t) * (size_t)(n_new > 0 ? n_new : 1));
    if (!out) cli_die(CLI_EXIT_FAIL, "out of memory");
    int n_out = 0;
    if (!json) fputs(prompt, stdout);
    cli_check(harp_generate(m, ids, (int)n_ids, n_new, &sp, out, &n_out, json ? NULL : print_token, (void *)tok));
    if (json) {
        char *text = NULL;
        size_t tl = 0;
        cli_check(harp_detokenize(tok, out, (size_t)n_out, &text, &tl));
        printf("{\"prompt\": ");
        cli_json_string(stdout, prompt, strlen(prompt));
        printf(", \"prompt_ids\": ");
        json_ids(ids, n_ids);
        printf(", \"generated_ids\": ");
        json_ids(out, (size_t)n_out);
        printf(", \"text\": ");
        cli_json_string(stdout, text, tl);
        printf(", \"temperature\": %g, \"top_p\": %g, \"seed\": %llu}\n", sp.temperature, sp.top_p,
               (unsigned long long)sp.seed);
        harp_free(text);
    } else {
        putchar('\n');
    }
    free(out);
    harp_free(ids);
    harp_model_free(m);
    return CLI_EXIT_OK;
}
