/* harp bench zeroshot: tokens evaluated per second by zero-shot scoring vs by perplexity
 * evaluation, same model, same process, one after the other. Zero-shot requests are short
 * sequences (a context once per item, then each continuation); they are packed into 512-row
 * multi-sequence batches (or, with --no-pack, fed one at a time through the KV cache), while
 * perplexity feeds full 512-token windows, so the ratio shows what the short-sequence pattern
 * still costs. */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "harp/eval.h"
#include "harp/zeroshot.h"

static const char *shared_path(char *buf, size_t n, const char *rel) {
    const char *root = getenv("HARP_SHARED");
    snprintf(buf, n, "%s/%s", root && *root ? root : "../shared", rel);
    return buf;
}

int bench_zeroshot(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"text", required_argument, 0, 'x'},
        {"data-dir", required_argument, 0, 'd'}, {"tasks", required_argument, 0, 't'},
        {"items", required_argument, 0, 'i'}, {"chunks", required_argument, 0, 'c'},
        {"json", no_argument, 0, 'j'}, {"no-pack", no_argument, 0, 'P'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char mb[4096], xb[4096], db[4096];
    const char *model = shared_path(mb, sizeof mb, "models/ref-llama");
    const char *text = shared_path(xb, sizeof xb, "data/ref-corpus/test.txt");
    const char *dir = shared_path(db, sizeof db, "data/zeroshot");
    const char *tasks = "arc_easy,arc_challenge,piqa,hellaswag,winogrande";
    int items = 200, chunks = 8, json = 0, no_pack = 0, c;
    while ((c = cli_getopt(argc, argv, "m:h", opts)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'x': text = optarg; break;
        case 'd': dir = optarg; break;
        case 't': tasks = optarg; break;
        case 'i': items = (int)cli_parse_long("--items", optarg, 1, INT_MAX); break;
        case 'c': chunks = (int)cli_parse_long("--chunks", optarg, 1, INT_MAX); break;
        case 'j': json = 1; break;
        case 'P': no_pack = 1; break;
        case 'h':
            printf("usage: harp bench zeroshot [-m MODEL] [--text FILE] [--data-dir DIR] [--tasks LIST]\n"
                   "                           [--items N] [--chunks N] [--no-pack] [--json]\n"
                   "Tokens/s of zero-shot scoring (first N items of each task) vs harp ppl (N windows\n"
                   "of 512 tokens of FILE), measured in this one run. Defaults: ref-llama, ref-corpus\n"
                   "test.txt, all five tasks, 200 items, 8 windows ($HARP_SHARED or ../shared).\n"
                   "--no-pack scores one request at a time (the unbatched path) for comparison.\n");
            return CLI_EXIT_OK;
        }
    }
    harp_model_params mp = harp_model_default_params();
    harp_model *m = NULL;
    cli_check(harp_model_open(model, &mp, &m));
    char *buf;
    size_t len;
    cli_check(harp_read_file(text, &buf, &len));
    harp_ppl_params pp = harp_ppl_default_params();
    pp.max_chunks = chunks;
    harp_ppl_result pr;
    /* warm-up (page-in of weights, thread pools) outside the timings */
    harp_ppl_params warm = pp;
    warm.max_chunks = 1;
    cli_check(harp_eval_ppl(m, buf, len, &warm, &pr));
    harp_ppl_result_free(&pr);

    /* The build machine is shared and its load drifts, so ppl is timed again right before every
     * task and each task is compared with the ppl run next to it; "all tasks" compares the
     * summed zero-shot tokens/seconds with the summed ppl tokens/seconds. */
    char *list = harp_strdup(tasks);
    int64_t all_fed = 0, all_scored = 0, all_ppl_tok = 0;
    double all_s = 0, all_ppl_s = 0;
    for (char *save = NULL, *tk = strtok_r(list, ",", &save); tk; tk = strtok_r(NULL, ",", &save)) {
        int t = harp_zs_task_from_name(tk);
        if (t < 0) cli_die(CLI_EXIT_USAGE, "--tasks: unknown task '%s'", tk);
        cli_check(harp_eval_ppl(m, buf, len, &pp, &pr));
        int64_t ppl_tok = (int64_t)pr.n_chunks * pr.ctx;
        double ppl_tps = (double)ppl_tok / pr.seconds;
        all_ppl_tok += ppl_tok;
        all_ppl_s += pr.seconds;
        if (!json)
            printf("ppl       %d windows x %d tokens: %.2f s, %.0f tokens/s\n", pr.n_chunks, pr.ctx, pr.seconds, ppl_tps);
        else
            printf("{\"bench\": \"zeroshot\", \"what\": \"ppl\", \"tokens\": %lld, \"seconds\": %.4f, \"tokens_per_second\": %.1f}\n",
                   (long long)ppl_tok, pr.seconds, ppl_tps);
        harp_ppl_result_free(&pr);
        harp_zs_dataset *d;
        cli_check(harp_zs_load((harp_zs_task)t, dir, items, &d));
        harp_zs_result r;
        harp_zs_params zp = harp_zs_default_params();
        zp.no_pack = no_pack;
        cli_check(harp_zs_eval(m, d, &zp, &r));
        harp_zs_dataset_free(d);
        double tps = (double)r.tokens_fed / r.seconds;
        all_fed += r.tokens_fed;
        all_scored += r.tokens_scored;
        all_s += r.seconds;
        if (!json)
            printf("zeroshot  %-13s %4d items: %7lld tokens fed (%lld scored), %.2f s, %.0f tokens/s = %.2f x ppl\n", tk,
                   r.n, (long long)r.tokens_fed, (long long)r.tokens_scored, r.seconds, tps, tps / ppl_tps);
        else
            printf("{\"bench\": \"zeroshot\", \"what\": \"%s\", \"items\": %d, \"tokens\": %lld, \"tokens_scored\": %lld, "
                   "\"seconds\": %.4f, \"tokens_per_second\": %.1f, \"ratio_vs_ppl\": %.4f}\n",
                   tk, r.n, (long long)r.tokens_fed, (long long)r.tokens_scored, r.seconds, tps, tps / ppl_tps);
    }
    free(buf);
    double ppl_tps = all_ppl_s > 0 ? all_ppl_tok / all_ppl_s : 0;
    free(list);
    if (!json && all_s > 0) {
        printf("ppl       all runs: %.0f tokens/s\n", ppl_tps);
        printf("zeroshot  all tasks: %.0f tokens fed/s = %.2f x ppl (target >= 0.80)\n", all_fed / all_s, all_fed / all_s / ppl_tps);
        /* stricter: only the continuation tokens whose log-probabilities are summed (every ppl token is scored) */
        printf("zeroshot  all tasks: %.0f tokens scored/s = %.2f x ppl\n", all_scored / all_s, all_scored / all_s / ppl_tps);
    }
    harp_model_free(m);
    return CLI_EXIT_OK;
}
