/* harp quantize --method wakv: weights + activations + KV cache with rotations (docs/cli/quantize.md,
 * include/harp/wakv.h). cmd_quantize hands over here when --method is wakv, and calls
 * quantize_wakv_refuse_flags otherwise so that the W/A/KV flags are refused, not ignored. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "harp/cuda_eval.h"
#include "harp/eval.h"
#include "harp/wakv.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: harp quantize -m MODEL --hessians DIR -o OUT_DIR --method wakv --w-bits B --a-bits B --kv-bits B\n"
            "                     [--w-quant rtn|gptq|ldp] [--rotation none|random|hadamard|gsr] [--gsr-block G]\n"
            "                     [--calib TEXT] [--clip-search] [--seed S] [options]\n\n"
            "Rotates the model offline (RMSNorm folded, R1 residual, R2 per head, R4 on the down input), quantizes\n"
            "its weights (RTN or GPTQ on Hessians of the ROTATED model) and writes a folder whose forward pass runs\n"
            "R3 / R4 online, quantizes activations per token at every decoder linear input (not the head) and keeps\n"
            "K / V low-bit in the KV cache. Quantizing runs on the CPU (--ldp-gpu: fit (b) on the device); the\n"
            "folder runs on the CPU or, with --gpu, on the CUDA backend.\n\n"
            "  --w-bits B            weights: 2, 3, 4 (default) or 8\n"
            "  --a-bits B            activations: 3, 4, 8 or 16 (default: unquantized)\n"
            "  --kv-bits B           KV cache: 2, 3, 4, 8 or 16 (default: fp32)\n"
            "  --w-quant Q           rtn, gptq (default) or ldp (RCP's learned 2-bit levels, --w-bits 2)\n"
            "  --ldp-fit layer|block ldp: fit (a) per linear only (default), or then fit (b) per decoder block\n"
            "                        against the FP block, the block running its rotations and activation / KV\n"
            "                        quantizers (--a-clip / --kv-clip ratios; straight-through gradients)\n"
            "  --ldp-calib TEXT      block: its text (default: --calib), --ldp-nseq N (32) windows of --ldp-ctx\n"
            "                        N (128) tokens; --ldp-steps N (100) Adam steps per block, --ldp-lr X (0.01);\n"
            "                        --ldp-gpu: the block's forward and backward on the CUDA device (fp64)\n"
            "  --w-group N           weight group size (default 0 = per output channel)\n"
            "  --w-sym               symmetric weight grid (default asymmetric min/max)\n"
            "  --w-clip              MSE-clipped weight grid per group (QuaRot's --w_clip: shrink 1 .. 0.21 in\n"
            "                        steps of 0.01, |err|^2.4), fixed before the GPTQ sweep\n"
            "  --act-order           gptq: columns by decreasing Hessian diagonal (static groups)\n"
            "  --a-group G           activations in groups of G channels per token (QuaRot-128G; default 0 =\n"
            "                        one group per token); G must divide every linear input width\n"
            "  --kv-group G          K / V in groups of G channels per (token, head) (default 0 = head_dim, one\n"
            "                        group per head); G must divide head_dim\n"
            "  --a-skip LIST         ablation: these linear inputs stay unquantized (qkv,o,up_gate,down)\n"
            "  --rotation R          R1 = R2: none, random, hadamard (default), gsr\n"
            "  --gsr-block G         gsr block, a power of two (default 128, lowered to divide the width)\n"
            "  --hessians DIR        Hessians of the rotated model: reused when DIR holds them, else computed\n"
            "                        there from --calib (a folder with another model's Hessians is refused)\n"
            "  --calib TEXT          calibration text (Hessians, clip search)\n"
            "  --calib-ctx N         calibration window (default min(512, max positions))\n"
            "  --calib-nseq N        calibration windows for the Hessians (default 128)\n");
    fprintf(f,
            "  --w-calib MODE        gptq's Hessians: files (default: the rotated unquantized model's, --hessians),\n"
            "                        seq (each layer's from the model being quantized: earlier layers quantized,\n"
            "                        activation / KV quantizers on at --a-clip / --kv-clip) or asym (seq, and each\n"
            "                        linear aimed at the unquantized model's output); both on --calib-nseq evenly\n"
            "                        spaced windows of --calib; no --hessians needed\n"
            "  --a-clip X, --kv-clip X   fixed clip ratios in (0, 1] (default 1)\n"
            "  --clip-search         clip ratios by a ternary search on the calibration text (--clip-scope,\n"
            "                        --clip-loss)\n"
            "  --search-iters N      ternary steps per class (default 8)\n"
            "  --search-windows N    calibration windows in the search's loss (default 2)\n"
            "  --clip-scope S        what shares a searched ratio: layer (each layer and class, default),\n"
            "                        class (a class across layers), model (one for activations, one for K/V)\n"
            "  --clip-loss L         the search's loss: nll (the windows' NLL, default) or kld (their KL\n"
            "                        divergence from the model without activation / K/V quantizers)\n"
            "  --seed S              random rotations / Hadamard signs / calibration windows (default 0)\n"
            "  -t, --threads N, --no-resume, --force, --ppl TEXT, --ctx N, --max-chunks N, --json, -q   as for\n"
            "                        the other methods\n");
}

enum {
    W_HESS = 1, W_METHOD, W_WB, W_AB, W_KVB, W_WQ, W_WG, W_ROT, W_GSR, W_CAL, W_CCTX, W_CNSEQ, W_ACLIP, W_KVCLIP, W_CS,
    W_SITER, W_SWIN, W_SCOPE, W_LOSS, W_SEED, W_NORESUME, W_FORCE, W_PPL, W_CTX, W_MAXCH, W_JSON, W_WSYM, W_WCLIP, W_ACT, W_ASKIP, W_AGROUP, W_KVGROUP,
    W_LFIT, W_LCAL, W_LCTX, W_LNSEQ, W_LSTEPS, W_LLR, W_WCAL, W_LGPU
};

static const struct option k_opts[] = {
    {"model", required_argument, 0, 'm'}, {"out", required_argument, 0, 'o'}, {"threads", required_argument, 0, 't'},
    {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {"hessians", required_argument, 0, W_HESS},
    {"method", required_argument, 0, W_METHOD}, {"w-bits", required_argument, 0, W_WB},
    {"a-bits", required_argument, 0, W_AB}, {"kv-bits", required_argument, 0, W_KVB},
    {"w-quant", required_argument, 0, W_WQ}, {"w-group", required_argument, 0, W_WG},
    {"rotation", required_argument, 0, W_ROT}, {"gsr-block", required_argument, 0, W_GSR},
    {"calib", required_argument, 0, W_CAL}, {"calib-ctx", required_argument, 0, W_CCTX},
    {"calib-nseq", required_argument, 0, W_CNSEQ}, {"a-clip", required_argument, 0, W_ACLIP},
    {"kv-clip", required_argument, 0, W_KVCLIP}, {"clip-search", no_argument, 0, W_CS},
    {"search-iters", required_argument, 0, W_SITER}, {"search-windows", required_argument, 0, W_SWIN},
    {"clip-scope", required_argument, 0, W_SCOPE}, {"clip-loss", required_argument, 0, W_LOSS},
    {"seed", required_argument, 0, W_SEED}, {"no-resume", no_argument, 0, W_NORESUME},
    {"force", no_argument, 0, W_FORCE}, {"ppl", required_argument, 0, W_PPL}, {"ctx", required_argument, 0, W_CTX},
    {"max-chunks", required_argument, 0, W_MAXCH}, {"json", no_argument, 0, W_JSON},
    {"w-sym", no_argument, 0, W_WSYM}, {"w-clip", no_argument, 0, W_WCLIP}, {"act-order", no_argument, 0, W_ACT},
    {"a-skip", required_argument, 0, W_ASKIP}, {"a-group", required_argument, 0, W_AGROUP},
    {"kv-group", required_argument, 0, W_KVGROUP},
    {"ldp-fit", required_argument, 0, W_LFIT}, {"ldp-calib", required_argument, 0, W_LCAL},
    {"ldp-ctx", required_argument, 0, W_LCTX}, {"ldp-nseq", required_argument, 0, W_LNSEQ},
    {"ldp-steps", required_argument, 0, W_LSTEPS}, {"ldp-lr", required_argument, 0, W_LLR},
    {"w-calib", required_argument, 0, W_WCAL}, {"ldp-gpu", no_argument, 0, W_LGPU},
    {0, 0, 0, 0}};

typedef struct wopts {
    const char *model, *hess, *out, *calib, *ppl_text, *wq, *ldp_fit, *ldp_calib, *scope, *loss, *wcal;
    int json, quiet, force, ctx, max_chunks, w_bits_given;
} wopts;

/* The value whose name (by the library's name table) is s; -1 when none is. */
static int by_name(const char *s, const char *(*name)(int)) {
    for (int i = 0; name(i); i++)
        if (!strcmp(s, name(i))) return i;
    return -1;
}

static int parse(int argc, char **argv, wopts *o, harp_wakv_params *p) {
    int c;
    while ((c = cli_getopt(argc, argv, "m:o:t:qh", k_opts)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'o': o->out = optarg; break;
        case 't': cli_set_threads(optarg); break;
        case 'q': o->quiet = 1; break;
        case 'h': usage(stdout); return 1;
        case W_HESS: o->hess = optarg; break;
        case W_METHOD: break;
        case W_WB: p->w_bits = (int)cli_parse_long("--w-bits", optarg, 1, 16), o->w_bits_given = 1; break;
        case W_AB: p->a_bits = (int)cli_parse_long("--a-bits", optarg, 1, 16); break;
        case W_KVB: p->kv_bits = (int)cli_parse_long("--kv-bits", optarg, 1, 16); break;
        case W_WQ: o->wq = optarg; break;
        case W_WG: p->w_group = (int)cli_parse_long("--w-group", optarg, 0, 1 << 24); break;
        case W_ROT: p->rotation = optarg; break;
        case W_GSR: p->gsr_block = (int)cli_parse_long("--gsr-block", optarg, 1, 1 << 24); break;
        case W_CAL: o->calib = optarg; break;
        case W_CCTX: p->calib_ctx = (int)cli_parse_long("--calib-ctx", optarg, 2, 1 << 20); break;
        case W_CNSEQ: p->calib_nseq = (int)cli_parse_long("--calib-nseq", optarg, 1, 1 << 20); break;
        case W_AGROUP: p->a_group = (int)cli_parse_long("--a-group", optarg, 0, 1 << 24); break;
        case W_KVGROUP: p->kv_group = (int)cli_parse_long("--kv-group", optarg, 0, 1 << 24); break;
        case W_ACLIP: p->a_clip = (float)cli_parse_double("--a-clip", optarg, 1e-6, 1); break;
        case W_KVCLIP: p->kv_clip = (float)cli_parse_double("--kv-clip", optarg, 1e-6, 1); break;
        case W_CS: p->clip_search = 1; break;
        case W_SITER: p->search_iters = (int)cli_parse_long("--search-iters", optarg, 1, 64); break;
        case W_SWIN: p->search_windows = (int)cli_parse_long("--search-windows", optarg, 1, 1 << 16); break;
        case W_SCOPE: o->scope = optarg; break;
        case W_LOSS: o->loss = optarg; break;
        case W_WCAL: o->wcal = optarg; break;
        case W_SEED: p->seed = cli_parse_u64("--seed", optarg); break;
        case W_NORESUME: p->resume = 0; break;
        case W_FORCE: o->force = 1; break;
        case W_PPL: o->ppl_text = optarg; break;
        case W_CTX: o->ctx = (int)cli_parse_long("--ctx", optarg, 2, 1 << 24); break;
        case W_MAXCH: o->max_chunks = (int)cli_parse_long("--max-chunks", optarg, 1, 1 << 30); break;
        case W_JSON: o->json = 1; break;
        case W_WSYM: p->w_sym = 1; break;
        case W_WCLIP: p->w_clip = 1; break;
        case W_ACT: p->act_order = 1; break;
        case W_LFIT: o->ldp_fit = optarg; break;
        case W_LCAL: o->ldp_calib = optarg; break;
        case W_LCTX: p->ldp_ctx = (int)cli_parse_long("--ldp-ctx", optarg, 2, 1 << 20); break;
        case W_LNSEQ: p->ldp_nseq = (int)cli_parse_long("--ldp-nseq", optarg, 1, 1 << 20); break;
        case W_LSTEPS: p->ldp_steps = (int)cli_parse_long("--ldp-steps", optarg, 0, 1 << 24); break;
        case W_LLR: p->ldp_lr = cli_parse_double("--ldp-lr", optarg, 1e-12, 1e6); break;
        case W_LGPU: p->ldp_gpu = 1; break;
        case W_ASKIP:
            if (harp_wakv_skip_parse(optarg, &p->a_skip)) cli_die(CLI_EXIT_USAGE, "%s", harp_last_error());
            break;
        default: break;
        }
    }
    cli_require(o->model, "-m MODEL");
    if (o->wcal && (p->w_calib = by_name(o->wcal, harp_wcalib_name)) < 0)
        cli_die(CLI_EXIT_USAGE, "--w-calib wants files, seq or asym, not '%s'", o->wcal);
    if (p->w_calib == HARP_WCALIB_FILES)
        cli_require(o->hess, "--hessians DIR (the rotated model's Hessians; computed there from --calib)");
    else cli_require(o->calib, "--calib TEXT (with --w-calib seq / asym the layers run on it)");
    cli_require(o->out, "-o OUT_DIR");
    cli_require(o->w_bits_given ? "" : NULL, "--w-bits B");
    if (o->wq && strcmp(o->wq, "rtn") && strcmp(o->wq, "gptq") && strcmp(o->wq, "ldp"))
        cli_die(CLI_EXIT_USAGE, "--w-quant wants rtn, gptq or ldp, not '%s' (QuIP# codebook weights have no integer "
                "activation path)", o->wq);
    p->w_quant = !o->wq || !strcmp(o->wq, "gptq") ? HARP_QMETHOD_GPTQ
                 : !strcmp(o->wq, "rtn")          ? HARP_QMETHOD_RTN
                                                  : HARP_QMETHOD_LDP;
    const int block = o->ldp_fit && !strcmp(o->ldp_fit, "block");
    if (o->ldp_fit && !block && strcmp(o->ldp_fit, "layer"))
        cli_die(CLI_EXIT_USAGE, "--ldp-fit wants layer or block, not '%s'", o->ldp_fit);
    cli_only_with(o->ldp_fit && p->w_quant != HARP_QMETHOD_LDP, "--ldp-fit", "--w-quant ldp");
    cli_only_with(!block && (o->ldp_calib || p->ldp_ctx || p->ldp_nseq || p->ldp_steps || p->ldp_lr > 0 || p->ldp_gpu),
                  "--ldp-calib, --ldp-ctx, --ldp-nseq, --ldp-steps, --ldp-lr, --ldp-gpu", "--ldp-fit block");
    p->ldp_fit_block = block;
    if (p->ldp_gpu && !harp_cuda_available()) cli_die(CLI_EXIT_FAIL, "--ldp-gpu: %s", harp_last_error());
    if (o->scope && (p->search_scope = by_name(o->scope, harp_clip_scope_name)) < 0)
        cli_die(CLI_EXIT_USAGE, "--clip-scope wants layer, class or model, not '%s'", o->scope);
    cli_only_with(o->scope && !p->clip_search, "--clip-scope", "--clip-search");
    if (o->loss && (p->search_loss = by_name(o->loss, harp_clip_loss_name)) < 0)
        cli_die(CLI_EXIT_USAGE, "--clip-loss wants nll or kld, not '%s'", o->loss);
    cli_only_with(o->loss && !p->clip_search, "--clip-loss", "--clip-search");
    if (block) cli_require(o->ldp_calib || o->calib ? "" : NULL, "--ldp-calib TEXT or --calib TEXT (with --ldp-fit block)");
    if (!o->ppl_text) {
        cli_only_with(o->ctx > 0, "--ctx", "--ppl TEXT");
        cli_only_with(o->max_chunks > 0, "--max-chunks", "--ppl TEXT");
    }
    return 0;
}

static void check_out_dir(const wopts *o) {
    if (o->force || !harp_dir_exists(o->out)) return;
    char cfg[4096], part[4096];
    snprintf(cfg, sizeof cfg, "%s/config.json", o->out);
    snprintf(part, sizeof part, "%s/.partial", o->out);
    if (harp_file_exists(cfg) && !harp_dir_exists(part))
        cli_die(CLI_EXIT_FAIL, "%s: already holds a finished model; use --force to overwrite it, or another -o", o->out);
}

static void print_result(const wopts *o, const harp_wakv_params *p, const harp_qmodel_report *rep, int n_layers,
                         const harp_ppl_result *pr) {
    if (o->json) {
        printf("{\"kind\": \"quantize\", \"method\": \"wakv\", ");
        cli_json_model_out(stdout, o->model, o->out);
        printf(", \"w_quant\": \"%s\", \"w_bits\": %d, \"w_group\": %d, \"a_bits\": %d, \"a_group\": %d, \"kv_bits\": %d, \"kv_group\": %d, \"rotation\": \"%s\", "
               "\"w_sym\": %d, \"w_clip\": %d, \"act_order\": %d, \"a_skip\": %u, \"clip_search\": %d, "
               "\"seed\": %llu, \"n_weights\": %lld, \"bpw\": %.6f, \"seconds\": %.3f",
               harp_qmethod_name(p->w_quant), p->w_bits, p->w_group, p->a_bits, p->a_group, p->kv_bits, p->kv_group, p->rotation,
               p->w_sym, p->w_clip, p->act_order, p->a_skip, p->clip_search, (unsigned long long)p->seed,
               (long long)rep->n_weights, rep->bpw, rep->seconds);
        if (p->ldp_fit_block) {
            double l0 = 0, l1 = 0;
            for (int i = 0; i < rep->n_rows; i++) l0 += rep->rows[i].ldp_block_loss0, l1 += rep->rows[i].ldp_block_loss;
            printf(", \"ldp_fit\": \"block\", \"ldp_block_loss0_mean\": %.8g, \"ldp_block_loss_mean\": %.8g", l0 / rep->n_rows,
                   l1 / rep->n_rows);
            /* per layer (its groups' rows carry the same block figures): [loss0, loss, seconds] */
            const int per = rep->n_rows / (n_layers > 0 ? n_layers : 1);
            printf(", \"ldp_block_layers\": [");
            for (int l = 0; per > 0 && l < n_layers; l++) {
                const harp_qmodel_row *r = &rep->rows[l * per];
                printf("%s[%.8g, %.8g, %.3f]", l ? ", " : "", r->ldp_block_loss0, r->ldp_block_loss, r->ldp_block_seconds);
            }
            printf("]");
        }
        if (pr)
            printf(", \"text\": \"%s\", \"ppl\": %.17g, \"nll_mean\": %.17g, \"n_tokens_scored\": %lld, \"ctx\": %d",
                   o->ppl_text, pr->ppl, pr->nll_mean, (long long)pr->n_tokens_scored, pr->ctx);
        printf("}\n");
        return;
    }
    printf("wakv W%dA%dKV%d%s, weights %s, rotation %s%s: %d linears, %.4f bits per weight (codes + scales), %.1f s -> %s\n",
           p->w_bits, p->a_bits, p->kv_bits, p->a_skip ? " (some inputs unquantized: --a-skip)" : "",
           harp_qmethod_name(p->w_quant), p->rotation, p->clip_search ? ", clip search" : "", rep->n_rows, rep->bpw, rep->seconds, o->out);
    if (pr) printf("PPL (in-memory quantized model, ctx %d, %d windows) = %.17g\n", pr->ctx, pr->n_chunks, pr->ppl);
}

int cmd_quantize_wakv(int argc, char **argv) {
    wopts o = {0};
    harp_wakv_params p = harp_wakv_default_params();
    if (parse(argc, argv, &o, &p)) return CLI_EXIT_OK;
    const char *abort_env = getenv("HARP_TEST_ABORT_AFTER_LAYER"); /* test hook, as cmd_quantize's */
    if (abort_env && *abort_env) p.abort_after_layer = (int)cli_parse_long("HARP_TEST_ABORT_AFTER_LAYER", abort_env, 0, 1 << 20);
    char *calib = NULL, *text = NULL;
    size_t clen = 0, len = 0;
    if (o.calib) cli_read_text(o.calib, &calib, &clen);
    p.calib_text = calib, p.calib_len = clen;
    char *ldp_text = NULL;
    size_t ldp_len = 0;
    if (o.ldp_calib) cli_read_text(o.ldp_calib, &ldp_text, &ldp_len);
    if (p.ldp_fit_block) p.ldp_text = ldp_text ? ldp_text : calib, p.ldp_text_len = ldp_text ? ldp_len : clen;
    if (harp_wakv_check(&p)) cli_die(CLI_EXIT_USAGE, "%s", harp_last_error());
    check_out_dir(&o);
    if (o.ppl_text) cli_read_text(o.ppl_text, &text, &len);
    cli_set_quiet(o.quiet);
    p.progress = cli_progress;
    harp_model *m = NULL;
    cli_check(harp_model_open(o.model, NULL, &m));
    harp_qmodel_report rep;
    cli_check(harp_quantize_wakv(m, o.model, o.hess, o.out, &p, &rep));
    harp_ppl_result pr;
    if (o.ppl_text) quantize_ppl(m, text, len, o.ctx ? o.ctx : 512, o.max_chunks, NULL, &pr);
    harp_model_info mi;
    cli_check(harp_model_get_info(m, &mi));
    print_result(&o, &p, &rep, mi.n_layers, o.ppl_text ? &pr : NULL);
    fflush(stdout);
    if (o.ppl_text) harp_ppl_result_free(&pr);
    harp_qmodel_report_free(&rep);
    harp_model_free(m);
    harp_free(text);
    harp_free(calib);
    harp_free(ldp_text);
    return CLI_EXIT_OK;
}

/* --method is not wakv: the W/A/KV flags cannot apply (a QuIP# / HARP codebook or a plain scalar folder
 * has no integer activation path), so they are refused with one line. */
void quantize_wakv_refuse_flags(int argc, char **argv, const char *method) {
    static const char *const only[] = {"--a-bits", "--kv-bits", "--w-bits", "--w-quant", "--w-group", "--gsr-block",
                                       "--clip-search", "--calib", "--a-clip", "--kv-clip", "--a-skip", "--a-group", "--kv-group",
                                       "--w-sym", "--w-clip"};
    for (int i = 1; i < argc; i++)
        for (size_t k = 0; k < sizeof only / sizeof only[0]; k++) {
            size_t n = strlen(only[k]);
            if (!strncmp(argv[i], only[k], n) && (argv[i][n] == 0 || argv[i][n] == '='))
                cli_die(CLI_EXIT_USAGE, "%s applies only to --method wakv (method %s has no activation / KV-cache "
                        "quantization)", only[k], method ? method : "(none)");
        }
}

void quantize_ppl(harp_model *m, const char *text, size_t len, int ctx, int max_chunks, const char *save_logits,
                  harp_ppl_result *pr) {
    harp_ppl_params pp = harp_ppl_default_params();
    pp.ctx = ctx;
    pp.max_chunks = max_chunks;
    pp.save_logits = save_logits;
    pp.progress = cli_progress;
    cli_progress_begin();
    cli_check(harp_eval_ppl(m, text, len, &pp, pr));
}

/* The value of --method in argv (NULL when absent). */
const char *quantize_method_arg(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--method") && i + 1 < argc) return argv[i + 1];
        if (!strncmp(argv[i], "--method=", 9)) return argv[i] + 9;
    }
    return NULL;
}
