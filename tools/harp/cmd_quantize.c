/* harp quantize: quantize every decoder linear of a model with saved Hessians into a quantized
 * folder (docs/cli/quantize.md, docs/format/qmodel.md). */
#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "harp/cuda_eval.h"
#include "commands.h"
#include "core/core.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: harp quantize -m MODEL --hessians DIR -o OUT_DIR --method rtn|gptq|quip [options]\n\n"
            "Quantizes the q,k,v (fused), o, up,gate (fused) and down linears of every decoder layer and\n"
            "writes a quantized model folder (config.json + model.safetensors + tokenizer files).\n"
            "Finished layers are kept in OUT_DIR/.partial: re-running an interrupted command resumes.\n\n"
            "  -m, --model PATH        model folder or llama2.c .bin\n"
            "      --hessians DIR      layer_NNN.hess files from `harp calib` on the same model\n"
            "  -o, --out DIR           output folder\n"
            "      --method M          rtn, gptq or quip\n"
            "      --bits B            2 (default), 3, 4 (quip) or 2, 3, 4, 8 (rtn, gptq)\n"
            "      --rotation R        none, rht, kron, random, gsr, harp (default rht for quip, none otherwise)\n"
            "      --group N           scalar group size (default 128; 0 = per output channel)\n"
            "      --seed S            signs / random rotations (default 0)\n"
            "  -t, --threads N         CPU threads (results do not depend on it)\n"
            "      --no-resume         ignore OUT_DIR/.partial\n"
            "      --ppl TEXT          after quantizing, perplexity of the in-memory quantized model\n"
            "      --ctx N             ppl window (default 512)\n"
            "      --max-chunks N      ppl windows (default all)\n"
            "      --save-logits FILE  with --ppl: save the scored logits (as harp ppl --save-logits)\n"
            "      --json              one JSON object on stdout\n"
            "  -q, --quiet             no progress on stderr\n"
            "HARP (--rotation harp): --harp-steps N --harp-b B --harp-max-b B --harp-passes N\n"
            "      --harp-lr-u X --harp-lr-v X --harp-hbd-lambda X --harp-hbd-block N --harp-q-every N\n"
            "      --harp-theta-clip X --harp-givens-b2 0|1 --harp-early-stop W,REL --harp-theta int8|fp16\n"
            "      --harp-schedule greedy|hadamard (hadamard: starts at the RHT's Had_n for every width)\n"
            "      --scale-override X\n"
            "      --harp-gpu          run the HARP fit's loss/gradient engine on the CUDA device (needs a\n"
            "                          CUDA build; same loss up to fp32 summation order, docs/gpu.md)\n"
            "Test hook: HARP_TEST_ABORT_AFTER_LAYER=L stops (exit 1) after layer L has been saved.\n");
}

/* Per-layer-kind timing like the reference's summary: seconds over all layers for qkv, o, up(|gate)
 * and down, and the split of the work into HARP fitting and quantization (BlockLDLQ); "other" is the
 * rest (sign conjugation, final transforms, packing). Resumed layers count with their stored times. */
static void timing_summary(const harp_qmodel_report *rep, FILE *f, int json) {
    static const char *const kinds[4] = {"qkv", "o", "up_gate", "down"};
    double k[4] = {0, 0, 0, 0}, fit = 0, q = 0, all = 0;
    for (int i = 0; i < rep->n_rows; i++) {
        const harp_qmodel_row *r = &rep->rows[i];
        const char *dot = strrchr(r->name, '.');
        for (int j = 0; j < 4; j++)
            if (dot && !strcmp(dot + 1, kinds[j])) k[j] += r->seconds;
        fit += r->fit_seconds, q += r->quant_seconds, all += r->seconds;
    }
    if (json)
        fprintf(f, ", \"timing\": {\"qkv\": %.3f, \"o\": %.3f, \"up_gate\": %.3f, \"down\": %.3f, \"harp_fit\": %.3f, "
                   "\"quantize_ldlq\": %.3f, \"other\": %.3f, \"linears\": %.3f}",
                k[0], k[1], k[2], k[3], fit, q, all - fit - q, all);
    else
        fprintf(f, "timing over all layers (s): qkv %.2f, o %.2f, up_gate %.2f, down %.2f | HARP fit %.2f, quantize (LDLQ) %.2f, "
                   "other %.2f, total %.2f\n",
                k[0], k[1], k[2], k[3], fit, q, all - fit - q, all);
}

enum {
    O_HESS = 1, O_METHOD, O_BITS, O_ROT, O_GROUP, O_SEED, O_NORESUME, O_PPL, O_CTX, O_MAXCH, O_JSON,
    O_HSTEPS, O_HB, O_HMAXB, O_HPASS, O_HLRU, O_HLRV, O_HHBDL, O_HHBDB, O_HQE, O_HCLIP, O_HGIV, O_HES, O_HTH, O_SO, O_SAVE, O_HGPU, O_HSCHED
};

int cmd_quantize(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"hessians", required_argument, 0, O_HESS},
        {"out", required_argument, 0, 'o'}, {"method", required_argument, 0, O_METHOD},
        {"bits", required_argument, 0, O_BITS}, {"rotation", required_argument, 0, O_ROT},
        {"group", required_argument, 0, O_GROUP}, {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, 't'}, {"no-resume", no_argument, 0, O_NORESUME},
        {"ppl", required_argument, 0, O_PPL}, {"ctx", required_argument, 0, O_CTX},
        {"max-chunks", required_argument, 0, O_MAXCH}, {"save-logits", required_argument, 0, O_SAVE}, {"json", no_argument, 0, O_JSON},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {"harp-steps", required_argument, 0, O_HSTEPS}, {"harp-b", required_argument, 0, O_HB},
        {"harp-max-b", required_argument, 0, O_HMAXB}, {"harp-passes", required_argument, 0, O_HPASS},
        {"harp-lr-u", required_argument, 0, O_HLRU}, {"harp-lr-v", required_argument, 0, O_HLRV},
        {"harp-hbd-lambda", required_argument, 0, O_HHBDL}, {"harp-hbd-block", required_argument, 0, O_HHBDB},
        {"harp-q-every", required_argument, 0, O_HQE}, {"harp-theta-clip", required_argument, 0, O_HCLIP},
        {"harp-givens-b2", required_argument, 0, O_HGIV}, {"harp-early-stop", required_argument, 0, O_HES},
        {"harp-theta", required_argument, 0, O_HTH}, {"scale-override", required_argument, 0, O_SO},
        {"harp-gpu", no_argument, 0, O_HGPU}, {"harp-schedule", required_argument, 0, O_HSCHED}, {0, 0, 0, 0}};
    const char *model = NULL, *hess = NULL, *out = NULL, *method = NULL, *rot = NULL, *ppl_text = NULL, *save_logits = NULL;
    int bits = 2, group = 128, json = 0, quiet = 0, threads = 0, resume = 1, ctx = 512, max_chunks = 0;
    uint64_t seed = 0;
    /* HARP flags are collected first and applied on top of harp_fit_default_params(bits). */
    long h_steps = -1, h_b = -1, h_maxb = -1, h_pass = -1, h_hbdb = -1, h_qe = -1, h_giv = -1, h_esw = -1, h_th = -1;
    double h_lru = -1, h_lrv = -1, h_hbdl = -1, h_clip = -1, h_esr = -1, so = 0;
    int h_gpu = 0, h_sched = -1;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":m:o:t:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case O_HESS: hess = optarg; break;
        case O_METHOD: method = optarg; break;
        case O_BITS: bits = (int)cli_parse_long("--bits", optarg, 2, 8); break;
        case O_ROT: rot = optarg; break;
        case O_GROUP: group = (int)cli_parse_long("--group", optarg, 0, 1 << 24); break;
        case O_SEED: seed = cli_parse_u64("--seed", optarg); break;
        case 't': threads = (int)cli_parse_long("--threads", optarg, 1, 4096); break;
        case O_NORESUME: resume = 0; break;
        case O_PPL: ppl_text = optarg; break;
        case O_CTX: ctx = (int)cli_parse_long("--ctx", optarg, 2, 1 << 24); break;
        case O_MAXCH: max_chunks = (int)cli_parse_long("--max-chunks", optarg, 0, 1 << 30); break;
        case O_SAVE: save_logits = optarg; break;
        case O_JSON: json = 1; break;
        case 'q': quiet = 1; break;
        case O_HSTEPS: h_steps = cli_parse_long("--harp-steps", optarg, 0, 1 << 24); break;
        case O_HB: h_b = cli_parse_long("--harp-b", optarg, 2, 1024); break;
        case O_HMAXB: h_maxb = cli_parse_long("--harp-max-b", optarg, 2, 1024); break;
        case O_HPASS: h_pass = cli_parse_long("--harp-passes", optarg, 1, 64); break;
        case O_HLRU: h_lru = cli_parse_double("--harp-lr-u", optarg, 0, 10); break;
        case O_HLRV: h_lrv = cli_parse_double("--harp-lr-v", optarg, 0, 10); break;
        case O_HHBDL: h_hbdl = cli_parse_double("--harp-hbd-lambda", optarg, 0, 1e6); break;
        case O_HHBDB: h_hbdb = cli_parse_long("--harp-hbd-block", optarg, 1, 1 << 16); break;
        case O_HQE: h_qe = cli_parse_long("--harp-q-every", optarg, 1, 1 << 24); break;
        case O_HCLIP: h_clip = cli_parse_double("--harp-theta-clip", optarg, 0, 1e6); break;
        case O_HGIV: h_giv = cli_parse_long("--harp-givens-b2", optarg, 0, 1); break;
        case O_HES: {
            char *comma = strchr(optarg, ',');
            if (!comma) cli_die(CLI_EXIT_USAGE, "--harp-early-stop wants W,REL (e.g. 50,0.01)");
            *comma = 0;
            h_esw = cli_parse_long("--harp-early-stop", optarg, 0, 1 << 24);
            h_esr = cli_parse_double("--harp-early-stop", comma + 1, 0, 1);
            break;
        }
        case O_HTH:
            if (!strcmp(optarg, "int8")) h_th = 1;
            else if (!strcmp(optarg, "fp16")) h_th = 0;
            else cli_die(CLI_EXIT_USAGE, "--harp-theta wants int8 or fp16, not '%s'", optarg);
            break;
        case O_SO: so = cli_parse_double("--scale-override", optarg, 0, 100); break;
        case O_HGPU: h_gpu = 1; break;
        case O_HSCHED: {
            harp_bf_schedule sc;
            if (harp_bf_schedule_parse(optarg, &sc)) cli_die(CLI_EXIT_USAGE, "--harp-schedule wants greedy or hadamard, not '%s'", optarg);
            h_sched = (int)sc;
            break;
        }
        case 'h': usage(stdout); return CLI_EXIT_OK;
        case ':': cli_die(CLI_EXIT_USAGE, "%s needs a value", argv[optind - 1]);
        default: cli_die(CLI_EXIT_USAGE, "unknown option '%s' (see harp quantize --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) cli_die(CLI_EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
    if (!model || !hess || !out || !method) {
        usage(stderr);
        cli_die(CLI_EXIT_USAGE, "-m MODEL, --hessians DIR, -o OUT_DIR and --method are required");
    }
    harp_qmethod qm;
    if (!strcmp(method, "rtn")) qm = HARP_QMETHOD_RTN;
    else if (!strcmp(method, "gptq")) qm = HARP_QMETHOD_GPTQ;
    else if (!strcmp(method, "quip")) qm = HARP_QMETHOD_QUIP;
    else cli_die(CLI_EXIT_USAGE, "--method wants rtn, gptq or quip, not '%s'", method);
    if (qm == HARP_QMETHOD_QUIP && bits > 4) cli_die(CLI_EXIT_USAGE, "--bits for quip must be 2, 3 or 4");
    if (qm != HARP_QMETHOD_QUIP && bits != 2 && bits != 3 && bits != 4 && bits != 8)
        cli_die(CLI_EXIT_USAGE, "--bits for %s must be 2, 3, 4 or 8", method);
    harp_qmodel_params p = harp_qmodel_default_params(qm, bits);
    if (rot && harp_qrot_parse(rot, &p.rotation)) cli_die(CLI_EXIT_USAGE, "%s", harp_last_error());
    p.group_size = group;
    p.seed = seed;
    p.resume = resume;
    p.keep_model = ppl_text != NULL;
    if (h_steps >= 0) p.harp.steps = (int)h_steps;
    if (h_b >= 0) p.harp.base_b = (int)h_b;
    if (h_maxb >= 0) p.harp.max_b = (int)h_maxb;
    if (h_pass >= 0) p.harp.passes = (int)h_pass;
    if (h_lru >= 0) p.harp.lr_u = h_lru;
    if (h_lrv >= 0) p.harp.lr_v = h_lrv;
    if (h_hbdl >= 0) p.harp.hbd_lambda = h_hbdl;
    if (h_hbdb >= 0) p.harp.hbd_block = (int)h_hbdb;
    if (h_qe >= 0) p.harp.q_every = (int)h_qe;
    if (h_clip >= 0) p.harp.theta_clip = h_clip;
    if (h_giv >= 0) p.harp.givens_b2 = (int)h_giv;
    if (h_esw >= 0) p.harp.early_stop_window = (int)h_esw, p.harp.early_stop_rel = h_esr;
    if (h_th >= 0) p.harp.theta_int8 = (int)h_th;
    if (h_sched >= 0) p.harp.schedule = h_sched;
    if (so > 0) p.harp.scale_override = p.scale_override = so;
    if (h_gpu) {
        if (p.rotation != HARP_QROT_HARP) cli_die(CLI_EXIT_USAGE, "--harp-gpu needs --rotation harp");
        if (!harp_cuda_available()) cli_die(CLI_EXIT_FAIL, "--harp-gpu: %s", harp_last_error());
        p.harp.gpu = 1;
    }
    const char *abort_env = getenv("HARP_TEST_ABORT_AFTER_LAYER");
    if (abort_env && *abort_env) p.abort_after_layer = (int)cli_parse_long("HARP_TEST_ABORT_AFTER_LAYER", abort_env, 0, 1 << 20);
    if (threads > 0) {
        harp_set_threads(threads);
        openblas_set_num_threads(threads);
    }
    cli_set_quiet(quiet || json);
    p.progress = cli_progress;
    char *text = NULL;
    size_t len = 0;
    if (ppl_text) {
        cli_check(harp_read_file(ppl_text, &text, &len));
        if (len == 0 || !harp_utf8_valid(text, len)) cli_die(CLI_EXIT_FAIL, "%s: empty or not valid UTF-8", ppl_text);
    }
    harp_model *m = NULL;
    cli_check(harp_model_open(model, NULL, &m));
    harp_qmodel_report rep;
    cli_check(harp_quantize_model(m, model, hess, out, &p, &rep));
    if (!quiet && !json) fputc('\n', stderr);
    harp_ppl_result pr;
    int have_ppl = 0;
    if (ppl_text) {
        harp_ppl_params pp = harp_ppl_default_params();
        pp.ctx = ctx;
        pp.max_chunks = max_chunks;
        pp.save_logits = save_logits;
        cli_check(harp_eval_ppl(m, text, len, &pp, &pr));
        have_ppl = 1;
    }
    free(text);
    int is_harp = p.rotation == HARP_QROT_HARP;
    if (json) {
        printf("{\"out\": \"%s\", \"method\": \"%s\", \"bits\": %d, \"rotation\": \"%s\", \"group_size\": %d, \"seed\": %llu, "
               "\"layers_resumed\": %d, \"n_weights\": %lld, \"stored_bits\": %lld, \"bpw\": %.6f, \"bpw_incl_harp\": %.6f, "
               "\"seconds\": %.3f, \"bpw_excludes\": \"embeddings, lm_head, norms\", \"linears\": [",
               out, method, bits, harp_qrot_name(p.rotation), p.group_size, (unsigned long long)seed, rep.layers_resumed,
               (long long)rep.n_weights, (long long)rep.stored_bits, rep.bpw, rep.bpw_harp, rep.seconds);
        for (int i = 0; i < rep.n_rows; i++) {
            const harp_qmodel_row *r = &rep.rows[i];
            printf("%s{\"name\": \"%s\", \"m\": %lld, \"n\": %lld, \"proxy_loss\": %.8g, \"seconds\": %.4f, \"bpw\": %.6f, "
                   "\"resumed\": %d",
                   i ? ", " : "", r->name, (long long)r->m, (long long)r->n, r->proxy_loss, r->seconds,
                   (double)r->stored_bits / ((double)r->m * (double)r->n), r->resumed);
            if (is_harp)
                printf(", \"harp_bits\": %lld, \"harp_loss0\": %.8g, \"harp_loss_final\": %.8g", (long long)r->harp_bits,
                       r->harp_loss0, r->harp_loss_final);
            printf("}");
        }
        printf("]");
        if (have_ppl)
            printf(", \"ppl\": %.17g, \"nll_mean\": %.17g, \"n_tokens_scored\": %lld, \"ctx\": %d", pr.ppl, pr.nll_mean,
                   (long long)pr.n_tokens_scored, pr.ctx);
        timing_summary(&rep, stdout, 1);
        printf("}\n");
    } else {
        printf("%-20s %12s %12s %10s %9s%s\n", "linear", "shape", "proxy_loss", "seconds", "bpw",
               is_harp ? "   harp_loss0  harp_final" : "");
        for (int i = 0; i < rep.n_rows; i++) {
            const harp_qmodel_row *r = &rep.rows[i];
            char shape[32];
            snprintf(shape, sizeof shape, "%lldx%lld", (long long)r->m, (long long)r->n);
            printf("%-20s %12s %12.6f %10.3f %9.4f", r->name, shape, r->proxy_loss, r->seconds,
                   (double)r->stored_bits / ((double)r->m * (double)r->n));
            if (is_harp) printf(" %12.6f %11.6f", r->harp_loss0, r->harp_loss_final);
            printf("%s\n", r->resumed ? "  (resumed)" : "");
        }
        printf("total: %lld weights, %.4f bits per weight (codes, scales, signs, rotation state; embeddings, lm_head "
               "and norms excluded)%s, %.1f s, %d layers resumed -> %s\n",
               (long long)rep.n_weights, rep.bpw, "", rep.seconds, rep.layers_resumed, out);
        if (is_harp) printf("bits per weight incl. HARP state as counted in algorithms.md 4.9: %.4f\n", rep.bpw_harp);
        if (have_ppl) printf("PPL (in-memory quantized model, ctx %d, %d windows) = %.17g\n", pr.ctx, pr.n_chunks, pr.ppl);
    }
    if (!quiet) timing_summary(&rep, stderr, 0);
    if (have_ppl) harp_ppl_result_free(&pr);
    harp_qmodel_report_free(&rep);
    harp_model_free(m);
    return CLI_EXIT_OK;
}
