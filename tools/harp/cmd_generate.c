/* harp generate: text continuation (greedy at --temp 0, else temperature + nucleus sampling),
 * streamed to stdout as it is generated, with prompt and decode speed at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static void gen_usage(FILE *f) {
    fprintf(f,
            "usage: harp generate -m MODEL -p TEXT [options]\n\n"
            "  -m, --model PATH   Hugging Face folder, harp quantized folder or llama2.c .bin\n"
            "  -p, --prompt TEXT  prompt (BOS is prepended)\n"
            "  -n, --n-new N      tokens to generate (default 64; stops early at EOS)\n"
            "      --temp T       temperature (default 0 = greedy argmax)\n"
            "      --top-p P      nucleus sampling mass (default 1 = off)\n"
            "      --seed S       sampling seed (default 0)\n"
            "  -t, --threads N    CPU threads\n"
            "      --gpu          run on the first CUDA device (quantized weights stay packed there)\n"
            "      --kv TYPE      KV-cache elements: f32 or f16 (default: the backend's, f32 on the CPU,\n"
            "                     f16 with --gpu; a W/A/KV model's own KV quantizers take precedence)\n"
            "      --json         {\"prompt\", \"prompt_ids\", \"generated_ids\", \"text\", ..., \"prompt_tok_s\",\n"
            "                     \"decode_tok_s\", \"mem_weights_bytes\", ...} on stdout instead of the streamed text\n"
            "  -q, --quiet        no speed line on stderr\n"
            "  -h, --help\n");
}

/* The continuation is decoded incrementally after the prompt's ids (so that its first space and
 * split UTF-8 characters come out as in the whole text), printed as it comes unless --json, and
 * kept for --json's "text". Timing: the first token arrives after the prompt pass, every later one
 * after one decode step. */
typedef struct gen_state {
    harp_detok *dt;
    int print;
    char *text;
    size_t len, cap;
    int n;
    double t0, t_first, t_last;
} gen_state;

static void gen_emit(gen_state *g, const char *s, size_t n) {
    if (g->print) {
        fwrite(s, 1, n, stdout);
        fflush(stdout);
    }
    if (g->len + n + 1 > g->cap) {
        g->cap = 2 * (g->len + n + 1);
        g->text = realloc(g->text, g->cap);
        if (!g->text) cli_die(CLI_EXIT_FAIL, "out of memory");
    }
    memcpy(g->text + g->len, s, n);
    g->len += n;
    g->text[g->len] = 0;
}

static int on_token(void *user, int32_t id) {
    gen_state *g = user;
    g->t_last = harp_time_s();
    if (g->n++ == 0) g->t_first = g->t_last;
    const char *s;
    size_t n;
    cli_check(harp_detok_push(g->dt, id, &s, &n));
    gen_emit(g, s, n);
    return 0;
}

static void json_ids(const int32_t *ids, size_t n) {
    putchar('[');
    for (size_t i = 0; i < n; i++) printf("%s%d", i ? ", " : "", (int)ids[i]);
    putchar(']');
}

typedef struct gen_speed {
    double prompt_tok_s, decode_tok_s;   /* 0: not measured (no token came, or only one) */
} gen_speed;

static gen_speed gen_speeds(const gen_state *g, size_t n_prompt) {
    gen_speed s = {0, 0};
    if (g->n > 0 && g->t_first > g->t0) s.prompt_tok_s = (double)n_prompt / (g->t_first - g->t0);
    if (g->n > 1 && g->t_last > g->t_first) s.decode_tok_s = (double)(g->n - 1) / (g->t_last - g->t_first);
    return s;
}

static void gen_json(const char *prompt, const int32_t *ids, size_t n_ids, const int32_t *out, int n_out,
                     const gen_state *g, const harp_sampler_params *sp, gen_speed s, const harp_ctx_memory *mem) {
    printf("{\"prompt\": ");
    cli_json_str(stdout, prompt);
    printf(", \"prompt_ids\": ");
    json_ids(ids, n_ids);
    printf(", \"generated_ids\": ");
    json_ids(out, (size_t)n_out);
    printf(", \"text\": ");
    cli_json_string(stdout, g->text ? g->text : "", g->len);
    printf(", \"temperature\": %g, \"top_p\": %g, \"seed\": %llu, \"prompt_tok_s\": %.2f, \"decode_tok_s\": %.2f, "
           "\"mem_weights_bytes\": %zu, \"mem_kv_bytes\": %zu, \"mem_workspace_bytes\": %zu}\n",
           sp->temperature, sp->top_p, (unsigned long long)sp->seed, s.prompt_tok_s, s.decode_tok_s, mem->weights, mem->kv_cache,
           mem->workspace);
}

int cmd_generate(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"prompt", required_argument, 0, 'p'},
        {"n-new", required_argument, 0, 'n'}, {"temp", required_argument, 0, 1},
        {"top-p", required_argument, 0, 2},   {"seed", required_argument, 0, 3},
        {"threads", required_argument, 0, 't'}, {"json", no_argument, 0, 4},
        {"quiet", no_argument, 0, 'q'},       {"gpu", no_argument, 0, 5},
        {"kv", required_argument, 0, 6},      {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model = NULL, *prompt = NULL;
    int n_new = 64, json = 0, gpu = 0, o;
    harp_sampler_params sp = harp_sampler_default_params();
    harp_ctx_params cp = harp_ctx_default_params();
    while ((o = cli_getopt(argc, argv, "m:p:n:t:qh", opts)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 'p': prompt = optarg; break;
        case 'n': n_new = (int)cli_parse_long("-n", optarg, 0, 1 << 24); break;
        case 1: sp.temperature = (float)cli_parse_double("--temp", optarg, 0, 100); break;
        case 2: sp.top_p = (float)cli_parse_double("--top-p", optarg, 1e-6, 1); break;
        case 3: sp.seed = cli_parse_u64("--seed", optarg); break;
        case 't': cli_set_threads(optarg); break;
        case 4: json = 1; break;
        case 5: gpu = 1; break;
        case 6: cp.kv_qtype = cli_parse_kv("--kv", optarg); break;
        case 'q': cli_set_quiet(1); break;
        case 'h': gen_usage(stdout); return CLI_EXIT_OK;
        }
    }
    cli_require(model, "-m MODEL");
    cli_require(prompt, "-p TEXT, the prompt");
    harp_backend *be = NULL;
    if (gpu) cli_check(harp_backend_cuda_create(0, &be));
    cp.backend = be;
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
    gen_state g = {.print = !json};
    cli_check(harp_detok_create(tok, &g.dt));
    for (size_t i = 0; i < n_ids; i++) cli_check(harp_detok_push(g.dt, ids[i], NULL, NULL));
    if (!json) {
        fputs(prompt, stdout);
        fflush(stdout);
    }
    int n_out = 0;
    cp.max_tokens = (int)n_ids + n_new;
    harp_ctx *ctx = NULL;
    cli_check(harp_ctx_create_ex(m, &cp, &ctx));
    g.t0 = harp_time_s();
    cli_check(harp_generate_ctx(ctx, ids, (int)n_ids, n_new, &sp, out, &n_out, on_token, &g));
    harp_ctx_memory mem;
    cli_check(harp_ctx_memory_get(ctx, &mem));
    harp_ctx_free(ctx);
    const char *rest;
    size_t rn;
    cli_check(harp_detok_flush(g.dt, &rest, &rn));
    gen_emit(&g, rest, rn);
    gen_speed s = gen_speeds(&g, n_ids);
    if (json) gen_json(prompt, ids, n_ids, out, n_out, &g, &sp, s, &mem);
    else putchar('\n');
    fflush(stdout);
    if (!cli_quiet())
        fprintf(stderr, "prompt: %zu tokens, %.1f tokens/s | generated: %d tokens, %.1f tokens/s\n", n_ids, s.prompt_tok_s,
                n_out, s.decode_tok_s);
    if (!cli_quiet() && gpu)
        fprintf(stderr, "GPU memory: weights %.3f GB, KV cache %.3f GB, workspace %.3f GB\n", mem.weights / 1e9,
                mem.kv_cache / 1e9, mem.workspace / 1e9);
    harp_detok_free(g.dt);
    free(g.text);
    free(out);
    harp_free(ids);
    harp_model_free(m);
    harp_backend_free(be);
    return CLI_EXIT_OK;
}
