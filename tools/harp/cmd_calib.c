/* harp calib: collect per-layer Hessians (input second moments) from calibration text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static void usage(FILE *f) {
    harp_calib_params d = harp_calib_default_params();
    fprintf(f,
            "usage: harp calib -m MODEL -f CALIB.txt -o HESS_DIR [options]\n\n"
            "Runs the full-precision model over calibration windows and writes one Hessian file per\n"
            "decoder layer (qkv, o, up, down input second moments, float64) into HESS_DIR.\n"
            "An interrupted run resumes: layers already written are kept.\n\n"
            "  -m, --model PATH      model folder or llama2.c .bin\n"
            "  -f, --file PATH       calibration text (UTF-8)\n"
            "  -o, --out DIR         output folder for layer_NNN.hess files\n"
            "      --ctx N           tokens per window (default %d)\n"
            "      --nseq N          windows to use, 0 = all (default %d)\n"
            "      --seed S          which windows (seeded shuffle; default %llu)\n"
            "      --mem-budget MB   accumulator memory per pass (default %zu)\n"
            "  -t, --threads N       CPU threads (default: all cores)\n"
            "      --json            print a JSON summary on stdout (progress stays on stderr)\n"
            "  -q, --quiet           no progress on stderr\n",
            d.ctx, d.nseq, (unsigned long long)d.seed, d.mem_budget_mb);
}

int cmd_calib(int argc, char **argv) {
    harp_calib_params p = harp_calib_default_params();
    const char *model = NULL, *file = NULL, *out = NULL;
    int json = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"file", required_argument, 0, 'f'},
        {"out", required_argument, 0, 'o'},   {"ctx", required_argument, 0, 1},
        {"nseq", required_argument, 0, 2},    {"seed", required_argument, 0, 3},
        {"mem-budget", required_argument, 0, 4}, {"threads", required_argument, 0, 't'},
        {"json", no_argument, 0, 5},          {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    int c;
    while ((c = cli_getopt(argc, argv, "m:f:o:t:qh", opts)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'f': file = optarg; break;
        case 'o': out = optarg; break;
        case 1: p.ctx = (int)cli_parse_long("--ctx", optarg, 2, 1 << 20); break;
        case 2: p.nseq = (int)cli_parse_long("--nseq", optarg, 0, 1 << 30); break;
        case 3: p.seed = cli_parse_u64("--seed", optarg); break;
        case 4: p.mem_budget_mb = (size_t)cli_parse_long("--mem-budget", optarg, 1, 1L << 30); break;
        case 't': cli_set_threads(optarg); break;
        case 5: json = 1; break;
        case 'q': cli_set_quiet(1); break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        }
    }
    cli_require(model, "-m MODEL");
    cli_require(file, "-f CALIB.txt, the calibration text");
    cli_require(out, "-o HESS_DIR");
    char *text = NULL;
    size_t len = 0;
    cli_read_text(file, &text, &len);
    harp_model *m = NULL;
    harp_model_params mp = harp_model_default_params();
    cli_check(harp_model_open(model, &mp, &m));
    p.progress = cli_progress;
    harp_calib_summary s;
    harp_status st = harp_calib_run(m, text, len, out, &p, &s);
    harp_free(text);
    harp_model_free(m);
    cli_check(st);
    if (json) {
        printf("{\"kind\":\"calib\",\"out\":");
        cli_json_string(stdout, out, strlen(out));
        printf(",\"n_layers\":%d,\"layers_resumed\":%d,\"n_windows\":%d,\"ctx\":%d,\"n_tokens\":%lld,\"passes\":%d,"
               "\"seconds\":%.3f}\n",
               s.n_layers, s.layers_done_before, s.n_windows, s.ctx, (long long)s.n_tokens, s.passes, s.seconds);
    } else
        printf("calib: %d layers (%d resumed) from %d windows x %d tokens (%lld tokens) in %.1f s -> %s\n",
               s.n_layers, s.layers_done_before, s.n_windows, s.ctx, (long long)s.n_tokens, s.seconds, out);
    return CLI_EXIT_OK;
}
