/* harp quantize: quantize every decoder linear of a model with saved Hessians into a quantized
 * folder (docs/cli/quantize.md, docs/format/qmodel.md). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "harp/cuda_eval.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: harp quantize -m MODEL --hessians DIR -o OUT_DIR --method rtn|gptq|quip|qtip|ldp [options]\n"
            "       (--method wakv: weights + activations + KV cache, see harp quantize --method wakv -h)\n\n"
            "Quantizes the q,k,v (fused), o, up,gate (fused) and down linears of every decoder layer and\n"
            "writes a quantized model folder (config.json + model.safetensors + tokenizer files).\n"
            "Finished layers are kept in OUT_DIR/.partial: re-running an interrupted command resumes.\n"
            "A finished OUT_DIR is not overwritten without --force.\n\n"
            "  -m, --model PATH        model folder or llama2.c .bin\n"
            "      --hessians DIR      layer_NNN.hess files from `harp calib` on the same model\n"
            "  -o, --out DIR           output folder\n"
            "      --method M          rtn, gptq, quip, qtip (trellis, algorithms.md 5.6) or ldp (RCP's learnable\n"
            "                          non-uniform 2-bit levels, fitted post-training with GPTQ error feedback)\n"
            "      --bits B            2 (default), 3, 4 (quip, qtip) or 2, 3, 4, 8 (rtn, gptq) or 2 (ldp)\n"
            "      --qtip-code C       qtip: trellis code hyb (default), 1mad or 3inst\n"
            "      --qtip-gpu          qtip: run the Viterbi on the CUDA device (needs a CUDA build and a\n"
            "                          device; the same folder as the CPU, byte for byte)\n"
            "      --rotation R        none, rht, kron, random, gsr, harp (default rht for quip and qtip, none otherwise)\n"
            "      --group N           rtn, gptq, ldp: group size (default 128; 0 = per output channel)\n"
            "      --sym               rtn, gptq: symmetric grid (default asymmetric min/max)\n"
            "      --mse-clip          rtn, gptq: MSE-clipped grid per group (QuaRot's --w_clip)\n"
            "      --act-order         gptq: columns by decreasing Hessian diagonal (static groups)\n"
            "      --seed S            signs / random rotations (default 0)\n"
            "  -t, --threads N         CPU threads (results do not depend on it)\n"
            "      --no-resume         ignore OUT_DIR/.partial\n"
            "      --force             overwrite a finished OUT_DIR\n"
            "      --ppl TEXT          after quantizing, perplexity of the in-memory quantized model\n"
            "      --ctx N             with --ppl: window (default 512)\n"
            "      --max-chunks N      with --ppl: windows, N >= 1 (default all)\n"
            "      --save-logits FILE  with --ppl: save the scored logits (as harp ppl --save-logits)\n"
            "      --json              one JSON object on stdout (progress stays on stderr)\n"
            "  -q, --quiet             no progress or timing on stderr\n"
            "      --ldp-fit layer|block  ldp: fit (a) per linear only (default), or then fit (b) per decoder\n"
            "                          block against the FP block (rotation none; docs/format/ldp.md) on\n"
            "      --ldp-calib TEXT    block: calibration text, --ldp-nseq N (32) windows of --ldp-ctx N (128)\n"
            "                          tokens; --ldp-steps N (100) Adam steps per block, --ldp-lr X (0.01);\n"
            "                          --ldp-gpu: the block's forward and backward on the CUDA device (fp64)\n"
            "      --scale-override X  quip, qtip: Wscale divisor (quip: 0.9 at 2 bits, the codebook's otherwise;\n"
            "                          qtip: 0.9 at every width)\n"
            "HARP (only with --rotation harp): --harp-steps N --harp-b B --harp-max-b B --harp-passes N\n"
            "      --harp-lr-u X --harp-lr-v X --harp-hbd-lambda X --harp-hbd-block N --harp-q-every N\n"
            "      --harp-theta-clip X --harp-givens-b2 0|1 --harp-early-stop W,REL --harp-theta int8|fp16\n"
            "      --harp-schedule greedy|hadamard (hadamard: starts at the RHT's Had_n for every width)\n"
            "      --harp-q-final N --harp-q-parts N (qtip: the trellis target's refresh schedule, 2 and 16)\n"
            "      --harp-gpu          run the HARP fit's loss/gradient engine on the CUDA device (needs a\n"
            "                          CUDA build; same loss up to fp32 summation order, docs/gpu.md); with\n"
            "                          --method qtip it means --qtip-gpu (the fit's trellis target and the\n"
            "                          final quantization on the device, the fit's engine on the CPU)\n"
            "Test hook: HARP_TEST_ABORT_AFTER_LAYER=L stops (exit 1) after layer L has been saved.\n");
}

/* ---- options ----------------------------------------------------------------------------------- */

/* HARP fit flags, applied on top of harp_fit_default_params(bits) once --bits is known. kind: 0 an
 * integer field, 1 a double field, 2 parsed by harp_special(). */
typedef struct harp_flag {
    const char *name;
    int kind;
    double lo, hi;
    size_t off;
} harp_flag;

static const harp_flag harp_flags[] = {
    {"harp-steps", 0, 0, 1 << 24, offsetof(harp_fit_params, steps)},
    {"harp-b", 0, 2, 1024, offsetof(harp_fit_params, base_b)},
    {"harp-max-b", 0, 2, 1024, offsetof(harp_fit_params, max_b)},
    {"harp-passes", 0, 1, 64, offsetof(harp_fit_params, passes)},
    {"harp-lr-u", 1, 0, 10, offsetof(harp_fit_params, lr_u)},
    {"harp-lr-v", 1, 0, 10, offsetof(harp_fit_params, lr_v)},
    {"harp-hbd-lambda", 1, 0, 1e6, offsetof(harp_fit_params, hbd_lambda)},
    {"harp-hbd-block", 0, 1, 1 << 16, offsetof(harp_fit_params, hbd_block)},
    {"harp-q-every", 0, 1, 1 << 24, offsetof(harp_fit_params, q_every)},
    {"harp-theta-clip", 1, 0, 1e6, offsetof(harp_fit_params, theta_clip)},
    {"harp-givens-b2", 0, 0, 1, offsetof(harp_fit_params, givens_b2)},
    {"harp-early-stop", 2, 0, 0, 0},
    {"harp-theta", 2, 0, 0, 0},
    {"harp-schedule", 2, 0, 0, 0},
    {"harp-q-final", 0, 1, 1 << 24, offsetof(harp_fit_params, q_every_final)}, /* qtip only */
    {"harp-q-parts", 0, 1, 1 << 16, offsetof(harp_fit_params, q_parts)},       /* qtip only */
};
enum { N_HARP_FLAGS = sizeof harp_flags / sizeof harp_flags[0] };

enum {
    O_HESS = 1, O_METHOD, O_BITS, O_ROT, O_GROUP, O_SEED, O_NORESUME, O_FORCE, O_PPL, O_CTX, O_MAXCH, O_SAVE,
    O_JSON, O_SO, O_HGPU, O_QCODE, O_SYM, O_MSE, O_ACT, O_LFIT, O_LCAL, O_LCTX, O_LNSEQ, O_LSTEPS, O_LLR,
    O_QGPU, O_LGPU, O_HARP0 /* + index into harp_flags */
};

typedef struct qopts {
    const char *model, *hess, *out, *method, *rot, *ppl_text, *save_logits, *qtip_code;
    const char *harp_arg[N_HARP_FLAGS];   /* HARP flag values as given, NULL when absent */
    int bits, group, group_given, json, quiet, resume, force, ctx, ctx_given, max_chunks, harp_gpu, qtip_gpu;
    int sym, mse_clip, act_order;
    double scale_override;
    uint64_t seed;
    const char *ldp_fit, *ldp_calib;        /* --ldp-* (NULL / 0 when absent) */
    int ldp_ctx, ldp_nseq, ldp_steps, ldp_gpu;
    double ldp_lr;
} qopts;

static const struct option *quant_options(void) {
    static struct option o[64];
    static const struct option base[] = {
        {"model", required_argument, 0, 'm'}, {"hessians", required_argument, 0, O_HESS},
        {"out", required_argument, 0, 'o'}, {"method", required_argument, 0, O_METHOD},
        {"bits", required_argument, 0, O_BITS}, {"rotation", required_argument, 0, O_ROT},
        {"group", required_argument, 0, O_GROUP}, {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, 't'}, {"no-resume", no_argument, 0, O_NORESUME},
        {"force", no_argument, 0, O_FORCE}, {"ppl", required_argument, 0, O_PPL},
        {"ctx", required_argument, 0, O_CTX}, {"max-chunks", required_argument, 0, O_MAXCH},
        {"save-logits", required_argument, 0, O_SAVE}, {"json", no_argument, 0, O_JSON},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {"scale-override", required_argument, 0, O_SO}, {"harp-gpu", no_argument, 0, O_HGPU},
        {"qtip-code", required_argument, 0, O_QCODE}, {"sym", no_argument, 0, O_SYM},
        {"mse-clip", no_argument, 0, O_MSE}, {"act-order", no_argument, 0, O_ACT},
        {"ldp-fit", required_argument, 0, O_LFIT}, {"ldp-calib", required_argument, 0, O_LCAL},
        {"ldp-ctx", required_argument, 0, O_LCTX}, {"ldp-nseq", required_argument, 0, O_LNSEQ},
        {"ldp-steps", required_argument, 0, O_LSTEPS}, {"ldp-lr", required_argument, 0, O_LLR},
        {"qtip-gpu", no_argument, 0, O_QGPU}, {"ldp-gpu", no_argument, 0, O_LGPU}};
    size_t nb = sizeof base / sizeof base[0];
    memcpy(o, base, sizeof base);
    for (int i = 0; i < N_HARP_FLAGS; i++) o[nb + (size_t)i] = (struct option){harp_flags[i].name, required_argument, 0, O_HARP0 + i};
    return o;
}

/* Returns 1 after --help. */
static int parse_args(int argc, char **argv, qopts *q) {
    const struct option *opts = quant_options();
    int c;
    while ((c = cli_getopt(argc, argv, "m:o:t:qh", opts)) != -1) {
        switch (c) {
        case 'm': q->model = optarg; break;
        case 'o': q->out = optarg; break;
        case O_HESS: q->hess = optarg; break;
        case O_METHOD: q->method = optarg; break;
        case O_BITS: q->bits = (int)cli_parse_long("--bits", optarg, 2, 8); break;
        case O_ROT: q->rot = optarg; break;
        case O_GROUP: q->group = (int)cli_parse_long("--group", optarg, 0, 1 << 24), q->group_given = 1; break;
        case O_SEED: q->seed = cli_parse_u64("--seed", optarg); break;
        case 't': cli_set_threads(optarg); break;
        case O_NORESUME: q->resume = 0; break;
        case O_FORCE: q->force = 1; break;
        case O_PPL: q->ppl_text = optarg; break;
        case O_CTX: q->ctx = (int)cli_parse_long("--ctx", optarg, 2, 1 << 24), q->ctx_given = 1; break;
        case O_MAXCH: q->max_chunks = (int)cli_parse_long("--max-chunks", optarg, 1, 1 << 30); break;
        case O_SAVE: q->save_logits = optarg; break;
        case O_JSON: q->json = 1; break;
        case 'q': q->quiet = 1; break;
        case O_SO: q->scale_override = cli_parse_double("--scale-override", optarg, 1e-6, 100); break;
        case O_HGPU: q->harp_gpu = 1; break;
        case O_QGPU: q->qtip_gpu = 1; break;
        case O_QCODE: q->qtip_code = optarg; break;
        case O_SYM: q->sym = 1; break;
        case O_MSE: q->mse_clip = 1; break;
        case O_ACT: q->act_order = 1; break;
        case O_LFIT: q->ldp_fit = optarg; break;
        case O_LCAL: q->ldp_calib = optarg; break;
        case O_LCTX: q->ldp_ctx = (int)cli_parse_long("--ldp-ctx", optarg, 2, 1 << 20); break;
        case O_LNSEQ: q->ldp_nseq = (int)cli_parse_long("--ldp-nseq", optarg, 1, 1 << 20); break;
        case O_LSTEPS: q->ldp_steps = (int)cli_parse_long("--ldp-steps", optarg, 1, 1 << 24); break;
        case O_LLR: q->ldp_lr = cli_parse_double("--ldp-lr", optarg, 0, 10); break;
        case O_LGPU: q->ldp_gpu = 1; break;
        case 'h': usage(stdout); return 1;
        default: q->harp_arg[c - O_HARP0] = optarg; break;
        }
    }
    cli_require(q->model, "-m MODEL");
    cli_require(q->hess, "--hessians DIR, the layer_NNN.hess files of harp calib");
    cli_require(q->out, "-o OUT_DIR");
    cli_require(q->method, "--method rtn|gptq|quip|qtip|ldp");
    return 0;
}

static void harp_special(int i, const char *val, harp_fit_params *h) {
    if (!strcmp(harp_flags[i].name, "harp-schedule")) {
        harp_bf_schedule sc;
        if (harp_bf_schedule_parse(val, &sc)) cli_die(CLI_EXIT_USAGE, "--harp-schedule wants greedy or hadamard, not '%s'", val);
        h->schedule = sc;
        return;
    }
    if (!strcmp(harp_flags[i].name, "harp-theta")) {
        if (strcmp(val, "int8") && strcmp(val, "fp16")) cli_die(CLI_EXIT_USAGE, "--harp-theta wants int8 or fp16, not '%s'", val);
        h->theta_int8 = !strcmp(val, "int8");
        return;
    }
    const char *comma = strchr(val, ',');
    if (!comma) cli_die(CLI_EXIT_USAGE, "--harp-early-stop wants W,REL (e.g. 50,0.01)");
    char w[32];
    snprintf(w, sizeof w, "%.*s", (int)(comma - val < 31 ? comma - val : 31), val);
    h->early_stop_window = (int)cli_parse_long("--harp-early-stop", w, 0, 1 << 24);
    h->early_stop_rel = cli_parse_double("--harp-early-stop", comma + 1, 0, 1);
}

static void apply_harp_flags(const qopts *q, harp_fit_params *h) {
    for (int i = 0; i < N_HARP_FLAGS; i++) {
        const char *v = q->harp_arg[i];
        if (!v) continue;
        char flag[40];
        snprintf(flag, sizeof flag, "--%s", harp_flags[i].name);
        char *field = (char *)h + harp_flags[i].off;
        if (harp_flags[i].kind == 0) *(int *)field = (int)cli_parse_long(flag, v, (long)harp_flags[i].lo, (long)harp_flags[i].hi);
        else if (harp_flags[i].kind == 1) *(double *)field = cli_parse_double(flag, v, harp_flags[i].lo, harp_flags[i].hi);
        else harp_special(i, v, h);
    }
}

/* Flags that do not apply to the chosen method / rotation are refused rather than ignored. */
static void check_applicable(const qopts *q, harp_qmethod qm, harp_qrot rot) {
    if (rot != HARP_QROT_HARP) {
        for (int i = 0; i < N_HARP_FLAGS; i++)
            if (q->harp_arg[i]) cli_die(CLI_EXIT_USAGE, "--%s applies only to --rotation harp", harp_flags[i].name);
        cli_only_with(q->harp_gpu, "--harp-gpu", "--rotation harp");
    }
    const int lattice = qm == HARP_QMETHOD_QUIP || qm == HARP_QMETHOD_QTIP;
    cli_only_with(lattice && q->group_given, "--group", "--method rtn, gptq and ldp (QuIP# and QTIP have no groups)");
    cli_only_with(!lattice && q->scale_override > 0, "--scale-override", "--method quip or qtip");
    cli_only_with(qm != HARP_QMETHOD_QTIP && q->qtip_code, "--qtip-code", "--method qtip");
    cli_only_with(qm != HARP_QMETHOD_QTIP && q->qtip_gpu, "--qtip-gpu", "--method qtip");
    const int scalar = qm == HARP_QMETHOD_RTN || qm == HARP_QMETHOD_GPTQ;
    cli_only_with(!scalar && q->sym, "--sym", "--method rtn or gptq");
    cli_only_with(!scalar && q->mse_clip, "--mse-clip", "--method rtn or gptq");
    cli_only_with(qm != HARP_QMETHOD_GPTQ && q->act_order, "--act-order", "--method gptq");
    for (int i = 0; i < N_HARP_FLAGS; i++)
        if (qm != HARP_QMETHOD_QTIP && q->harp_arg[i] && !strncmp(harp_flags[i].name, "harp-q-", 7) &&
            strcmp(harp_flags[i].name, "harp-q-every"))
            cli_die(CLI_EXIT_USAGE, "--%s applies only to --method qtip --rotation harp", harp_flags[i].name);
    if (!q->ppl_text) {
        cli_only_with(q->ctx_given, "--ctx", "--ppl TEXT");
        cli_only_with(q->max_chunks > 0, "--max-chunks", "--ppl TEXT");
        cli_only_with(q->save_logits != NULL, "--save-logits", "--ppl TEXT");
    }
}

/* --ldp-fit block and its settings (the text is read here and kept for the run). */
static void ldp_block_params(const qopts *q, harp_qmethod qm, harp_qmodel_params *p) {
    const int block = q->ldp_fit && !strcmp(q->ldp_fit, "block");
    if (q->ldp_fit && !block && strcmp(q->ldp_fit, "layer")) cli_die(CLI_EXIT_USAGE, "--ldp-fit wants layer or block, not '%s'", q->ldp_fit);
    cli_only_with(q->ldp_fit && qm != HARP_QMETHOD_LDP, "--ldp-fit", "--method ldp");
    cli_only_with(!block && (q->ldp_calib || q->ldp_ctx || q->ldp_nseq || q->ldp_steps || q->ldp_lr > 0 || q->ldp_gpu),
                  "--ldp-calib, --ldp-ctx, --ldp-nseq, --ldp-steps, --ldp-lr, --ldp-gpu", "--ldp-fit block");
    if (!block) return;
    cli_require(q->ldp_calib, "--ldp-calib TEXT (with --ldp-fit block)");
    char *text = NULL;
    size_t len = 0;
    cli_read_text(q->ldp_calib, &text, &len); /* kept until exit: the run's parameters point at it */
    p->ldp_fit_block = 1, p->ldp_text = text, p->ldp_text_len = len;
    if (q->ldp_ctx) p->ldp_ctx = q->ldp_ctx;
    if (q->ldp_nseq) p->ldp_nseq = q->ldp_nseq;
    if (q->ldp_steps) p->ldp_steps = q->ldp_steps;
    if (q->ldp_lr > 0) p->ldp_lr = q->ldp_lr;
    p->ldp_gpu = q->ldp_gpu;
}

static harp_qmodel_params build_params(const qopts *q) {
    harp_qmethod qm;
    if (!strcmp(q->method, "rtn")) qm = HARP_QMETHOD_RTN;
    else if (!strcmp(q->method, "gptq")) qm = HARP_QMETHOD_GPTQ;
    else if (!strcmp(q->method, "quip")) qm = HARP_QMETHOD_QUIP;
    else if (!strcmp(q->method, "qtip")) qm = HARP_QMETHOD_QTIP;
    else if (!strcmp(q->method, "ldp")) qm = HARP_QMETHOD_LDP;
    else cli_die(CLI_EXIT_USAGE, "--method wants rtn, gptq, quip, qtip or ldp, not '%s'", q->method);
    if (qm == HARP_QMETHOD_LDP && q->bits != 2) cli_die(CLI_EXIT_USAGE, "--bits for ldp must be 2");
    if ((qm == HARP_QMETHOD_QUIP || qm == HARP_QMETHOD_QTIP) && q->bits > 4)
        cli_die(CLI_EXIT_USAGE, "--bits for %s must be 2, 3 or 4", q->method);
    if (qm != HARP_QMETHOD_QUIP && qm != HARP_QMETHOD_QTIP && qm != HARP_QMETHOD_LDP && q->bits != 2 && q->bits != 3 &&
        q->bits != 4 && q->bits != 8)
        cli_die(CLI_EXIT_USAGE, "--bits for %s must be 2, 3, 4 or 8", q->method);
    harp_qmodel_params p = harp_qmodel_default_params(qm, q->bits);
    if (q->rot && harp_qrot_parse(q->rot, &p.rotation)) cli_die(CLI_EXIT_USAGE, "--rotation: %s", harp_last_error());
    check_applicable(q, qm, p.rotation);
    if (q->qtip_code && harp_tcode_parse(q->qtip_code, &p.qtip_code)) cli_die(CLI_EXIT_USAGE, "--qtip-code: %s", harp_last_error());
    p.harp.qtip_code = p.qtip_code;
    p.group_size = q->group;
    p.symmetric = q->sym, p.mse_clip = q->mse_clip, p.act_order = q->act_order;
    p.seed = q->seed;
    ldp_block_params(q, qm, &p);
    p.resume = q->resume;
    p.keep_model = q->ppl_text != NULL;
    apply_harp_flags(q, &p.harp);
    if (q->scale_override > 0) p.harp.scale_override = p.scale_override = q->scale_override;
    if (q->ldp_gpu && !harp_cuda_available()) cli_die(CLI_EXIT_FAIL, "--ldp-gpu: %s", harp_last_error());
    if (q->harp_gpu || q->qtip_gpu) {
        if (!harp_cuda_available()) cli_die(CLI_EXIT_FAIL, "%s: %s", q->qtip_gpu ? "--qtip-gpu" : "--harp-gpu", harp_last_error());
        /* qtip: the device runs the Viterbi (the fit's target and the final quantization); the fit's
         * loss/gradient engine has no trellis target on the device and stays on the CPU */
        if (qm == HARP_QMETHOD_QTIP) p.qtip_gpu = 1;
        else p.harp.gpu = 1;
    }
    const char *abort_env = getenv("HARP_TEST_ABORT_AFTER_LAYER");
    if (abort_env && *abort_env) p.abort_after_layer = (int)cli_parse_long("HARP_TEST_ABORT_AFTER_LAYER", abort_env, 0, 1 << 20);
    cli_set_quiet(q->quiet);
    p.progress = cli_progress;
    return p;
}

/* A finished folder (config.json or model.safetensors, no .partial) is only replaced with --force;
 * an unfinished one (.partial present) is resumed as always. */
static void check_out_dir(const qopts *q) {
    if (q->force || !harp_dir_exists(q->out)) return;
    char cfg[4096], st[4096], part[4096];
    snprintf(cfg, sizeof cfg, "%s/config.json", q->out);
    snprintf(st, sizeof st, "%s/model.safetensors", q->out);
    snprintf(part, sizeof part, "%s/.partial", q->out);
    if ((harp_file_exists(cfg) || harp_file_exists(st)) && !harp_dir_exists(part))
        cli_die(CLI_EXIT_FAIL, "%s: already holds a finished model; use --force to overwrite it, or another -o", q->out);
}

/* ---- output ------------------------------------------------------------------------------------ */

/* Bits per weight over all quantized linears, split as docs/cli/quantize.md explains. */
typedef struct bpw_split {
    double codes, xf, xf_paper, stored, paper;
} bpw_split;

static bpw_split bpw_of(const harp_qmodel_row *r, int n) {
    double code = 0, xf = 0, xfp = 0, w = 0;
    for (int i = 0; i < n; i++)
        code += (double)r[i].code_bits, xf += (double)r[i].xf_bits, xfp += (double)r[i].xf_bits_paper,
            w += (double)r[i].m * (double)r[i].n;
    bpw_split b = {code / w, xf / w, xfp / w, (code + xf) / w, (code + xfp) / w};
    return b;
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

static void print_json(const qopts *q, const harp_qmodel_params *p, const harp_qmodel_report *rep, const harp_ppl_result *pr) {
    bpw_split b = bpw_of(rep->rows, rep->n_rows);
    printf("{\"kind\": \"quantize\", ");
    cli_json_model_out(stdout, q->model, q->out);
    printf(", \"method\": \"%s\", \"bits\": %d, \"rotation\": \"%s\", \"group_size\": %d, \"seed\": %llu, "
           "\"layers_resumed\": %d, \"n_weights\": %lld, \"stored_bits\": %lld, \"bpw\": %.6f, \"bpw_codes\": %.6f, "
           "\"bpw_xf\": %.6f, \"bpw_xf_paper\": %.6f, \"bpw_paper\": %.6f, \"bpw_incl_harp\": %.6f, \"seconds\": %.3f, "
           "\"bpw_excludes\": \"embeddings, lm_head, norms\", \"linears\": [",
           q->method, p->bits, harp_qrot_name(p->rotation), p->group_size, (unsigned long long)p->seed, rep->layers_resumed,
           (long long)rep->n_weights, (long long)rep->stored_bits, b.stored, b.codes, b.xf, b.xf_paper, b.paper, rep->bpw_harp,
           rep->seconds);
    for (int i = 0; i < rep->n_rows; i++) {
        const harp_qmodel_row *r = &rep->rows[i];
        double w = (double)r->m * (double)r->n;
        printf("%s{\"name\": \"%s\", \"m\": %lld, \"n\": %lld, \"proxy_loss\": %.8g, \"seconds\": %.4f, \"bpw\": %.6f, "
               "\"bpw_codes\": %.6f, \"bpw_xf\": %.6f, \"code_bits\": %lld, \"xf_bits\": %lld, \"xf_bits_paper\": %lld, "
               "\"resumed\": %d",
               i ? ", " : "", r->name, (long long)r->m, (long long)r->n, r->proxy_loss, r->seconds, (double)r->stored_bits / w,
               (double)r->code_bits / w, (double)r->xf_bits / w, (long long)r->code_bits, (long long)r->xf_bits,
               (long long)r->xf_bits_paper, r->resumed);
        if (p->ldp_fit_block)
            printf(", \"ldp_block_loss0\": %.8g, \"ldp_block_loss\": %.8g, \"ldp_block_seconds\": %.3f", r->ldp_block_loss0,
                   r->ldp_block_loss, r->ldp_block_seconds);
        if (p->rotation == HARP_QROT_HARP)
            printf(", \"harp_bits\": %lld, \"harp_loss0\": %.8g, \"harp_loss_final\": %.8g", (long long)r->harp_bits,
                   r->harp_loss0, r->harp_loss_final);
        printf("}");
    }
    printf("]");
    if (pr) {
        printf(", \"text\": ");
        cli_json_str(stdout, q->ppl_text);
        printf(", \"ppl\": %.17g, \"nll_mean\": %.17g, \"n_tokens_scored\": %lld, \"ctx\": %d", pr->ppl, pr->nll_mean,
               (long long)pr->n_tokens_scored, pr->ctx);
    }
    timing_summary(rep, stdout, 1);
    printf("}\n");
}

static void print_text(const qopts *q, const harp_qmodel_params *p, const harp_qmodel_report *rep, const harp_ppl_result *pr) {
    int is_harp = p->rotation == HARP_QROT_HARP;
    printf("%-20s %10s %12s %9s %9s %9s %9s%s\n", "linear", "shape", "proxy_loss", "seconds", "codes", "xf", "bpw",
           is_harp ? "   harp_loss0  harp_final" : "");
    for (int i = 0; i < rep->n_rows; i++) {
        const harp_qmodel_row *r = &rep->rows[i];
        char shape[32];
        double w = (double)r->m * (double)r->n;
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)r->m, (long long)r->n);
        printf("%-20s %10s %12.6f %9.3f %9.4f %9.4f %9.4f", r->name, shape, r->proxy_loss, r->seconds,
               (double)r->code_bits / w, (double)r->xf_bits / w, (double)r->stored_bits / w);
        if (is_harp) printf(" %12.6f %11.6f", r->harp_loss0, r->harp_loss_final);
        if (p->ldp_fit_block) printf("  block loss %.6f -> %.6f", r->ldp_block_loss0, r->ldp_block_loss);
        printf("%s\n", r->resumed ? "  (resumed)" : "");
    }
    bpw_split b = bpw_of(rep->rows, rep->n_rows);
    printf("bits per weight over the %lld weights of the quantized linears (embeddings, lm_head, norms excluded):\n"
           "  codes + scales                        %8.4f\n"
           "  transforms as stored                  %8.4f  (signs int8 + rotation blobs)\n"
           "  rotation state as the paper counts it %8.4f  (HARP theta int8 + fp16 group scales; signs, Hadamards: 0)\n"
           "  total stored                          %8.4f\n"
           "  codes + scales + paper rotation state %8.4f  (the figure the QuIP#/HARP papers report)\n",
           (long long)rep->n_weights, b.codes, b.xf, b.xf_paper, b.stored, b.paper);
    if (b.xf > 0.25)
        printf("  note: transform state is fixed per matrix while the codes grow with its size, so at these small\n"
               "  widths it costs %.2f bpw (docs/cli/quantize.md, \"Bits per weight\")\n", b.xf);
    printf("%d linears in %.1f s, %d layers resumed -> %s\n", rep->n_rows, rep->seconds, rep->layers_resumed, q->out);
    if (pr) printf("PPL (in-memory quantized model, ctx %d, %d windows) = %.17g\n", pr->ctx, pr->n_chunks, pr->ppl);
}

/* ---- command ----------------------------------------------------------------------------------- */

int cmd_quantize(int argc, char **argv) {
    const char *method = quantize_method_arg(argc, argv);
    if (method && !strcmp(method, "wakv")) return cmd_quantize_wakv(argc, argv);
    quantize_wakv_refuse_flags(argc, argv, method);
    qopts q = {.bits = 2, .group = 128, .resume = 1, .ctx = 512};
    if (parse_args(argc, argv, &q)) return CLI_EXIT_OK;
    harp_qmodel_params p = build_params(&q);
    check_out_dir(&q);
    char *text = NULL;
    size_t len = 0;
    if (q.ppl_text) cli_read_text(q.ppl_text, &text, &len);
    harp_model *m = NULL;
    cli_check(harp_model_open(q.model, NULL, &m));
    harp_qmodel_report rep;
    cli_check(harp_quantize_model(m, q.model, q.hess, q.out, &p, &rep));
    harp_ppl_result pr;
    if (q.ppl_text) quantize_ppl(m, text, len, q.ctx, q.max_chunks, q.save_logits, &pr);
    harp_free(text);
    if (q.json) print_json(&q, &p, &rep, q.ppl_text ? &pr : NULL);
    else print_text(&q, &p, &rep, q.ppl_text ? &pr : NULL);
    fflush(stdout);
    if (!q.quiet) timing_summary(&rep, stderr, 0);
    if (q.ppl_text) harp_ppl_result_free(&pr);
    harp_qmodel_report_free(&rep);
    harp_model_free(m);
    return CLI_EXIT_OK;
}
