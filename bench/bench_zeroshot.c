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

typedef struct zs_bench {
    const char *model, *text, *dir, *tasks;
    int items, chunks, json, no_pack;
    /* totals over the tasks */
    int64_t all_fed, all_scored, all_ppl_tok;
    double all_s, all_ppl_s;
} zs_bench;

static void zs_usage(void) {
    printf("usage: harp bench zeroshot [-m MODEL] [--text FILE] [--data-dir DIR] [--tasks LIST]\n"
           "                           [--items N] [--chunks N] [--no-pack] [--json]\n"
           "Tokens/s of zero-shot scoring (first N items of each task) vs harp ppl (N windows\n"
           "of 512 tokens of FILE), measured in this one run. Defaults: ref-llama, ref-corpus\n"
           "test.txt, all five tasks, 200 items, 8 windows ($HARP_SHARED or ../shared).\n"
           "--no-pack scores one request at a time (the unbatched path) for comparison.\n");
}

/* Returns 1 after --help. */
static int parse_args(int argc, char **argv, zs_bench *b, char bufs[3][4096]) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"text", required_argument, 0, 'x'},
        {"data-dir", required_argument, 0, 'd'}, {"tasks", required_argument, 0, 't'},
        {"items", required_argument, 0, 'i'}, {"chunks", required_argument, 0, 'c'},
        {"json", no_argument, 0, 'j'}, {"no-pack", no_argument, 0, 'P'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    b->model = bench_shared_path(bufs[0], sizeof bufs[0], "models/ref-llama");
    b->text = bench_shared_path(bufs[1], sizeof bufs[1], "data/ref-corpus/test.txt");
    b->dir = bench_shared_path(bufs[2], sizeof bufs[2], "data/zeroshot");
    b->tasks = "arc_easy,arc_challenge,piqa,hellaswag,winogrande";
    b->items = 200, b->chunks = 8;
    int c;
    while ((c = cli_getopt(argc, argv, "m:h", opts)) != -1) {
        switch (c) {
        case 'm': b->model = optarg; break;
        case 'x': b->text = optarg; break;
        case 'd': b->dir = optarg; break;
        case 't': b->tasks = optarg; break;
        case 'i': b->items = (int)cli_parse_long("--items", optarg, 1, INT_MAX); break;
        case 'c': b->chunks = (int)cli_parse_long("--chunks", optarg, 1, INT_MAX); break;
        case 'j': b->json = 1; break;
        case 'P': b->no_pack = 1; break;
        case 'h': zs_usage(); return 1;
        }
    }
    return 0;
}

/* The build machine is shared and its load drifts, so ppl is timed again right before every task
 * and each task is compared with the ppl run next to it. */
static void bench_task(zs_bench *b, harp_model *m, const char *buf, size_t len, const char *tk) {
    int t = harp_zs_task_from_name(tk);
    if (t < 0) cli_die(CLI_EXIT_USAGE, "--tasks: unknown task '%s'", tk);
    harp_ppl_params pp = harp_ppl_default_params();
    pp.max_chunks = b->chunks;
    harp_ppl_result pr;
    cli_check(harp_eval_ppl(m, buf, len, &pp, &pr));
    int64_t ppl_tok = (int64_t)pr.n_chunks * pr.ctx;
    double ppl_tps = (double)ppl_tok / pr.seconds;
    b->all_ppl_tok += ppl_tok;
    b->all_ppl_s += pr.seconds;
    if (!b->json)
        printf("ppl       %d windows x %d tokens: %.2f s, %.0f tokens/s\n", pr.n_chunks, pr.ctx, pr.seconds, ppl_tps);
    else
        printf("{\"bench\": \"zeroshot\", \"what\": \"ppl\", \"tokens\": %lld, \"seconds\": %.4f, \"tokens_per_second\": %.1f}\n",
               (long long)ppl_tok, pr.seconds, ppl_tps);
    harp_ppl_result_free(&pr);
    harp_zs_dataset *d;
    cli_check(harp_zs_load((harp_zs_task)t, b->dir, b->items, &d));
    harp_zs_result r;
    harp_zs_params zp = harp_zs_default_params();
    zp.no_pack = b->no_pack;
    cli_check(harp_zs_eval(m, d, &zp, &r));
    harp_zs_dataset_free(d);
    double tps = (double)r.tokens_fed / r.seconds;
    b->all_fed += r.tokens_fed;
    b->all_scored += r.tokens_scored;
    b->all_s += r.seconds;
    if (!b->json)
        printf("zeroshot  %-13s %4d items: %7lld tokens fed (%lld scored), %.2f s, %.0f tokens/s = %.2f x ppl\n", tk, r.n,
               (long long)r.tokens_fed, (long long)r.tokens_scored, r.seconds, tps, tps / ppl_tps);
    else
        printf("{\"bench\": \"zeroshot\", \"what\": \"%s\", \"items\": %d, \"tokens\": %lld, \"tokens_scored\": %lld, "
               "\"seconds\": %.4f, \"tokens_per_second\": %.1f, \"ratio_vs_ppl\": %.4f}\n",
               tk, r.n, (long long)r.tokens_fed, (long long)r.tokens_scored, r.seconds, tps, tps / ppl_tps);
}

int bench_zeroshot(int argc, char **argv) {
    zs_bench b = {0};
    char bufs[3][4096];
    if (parse_args(argc, argv, &b, bufs)) return CLI_EXIT_OK;
    harp_model_params mp = harp_model_default_params();
    harp_model *m = NULL;
    cli_check(harp_model_open(b.model, &mp, &m));
    char *buf;
    size_t len;
    cli_check(harp_read_file(b.text, &buf, &len));
    /* warm-up (page-in of weights, thread pools) outside the timings */
    harp_ppl_params warm = harp_ppl_default_params();
    warm.max_chunks = 1;
    harp_ppl_result pr;
    cli_check(harp_eval_ppl(m, buf, len, &warm, &pr));
    harp_ppl_result_free(&pr);
    char *list = strdup(b.tasks);
    if (!list) cli_die(CLI_EXIT_FAIL, "out of memory");
    for (char *save = NULL, *tk = strtok_r(list, ",", &save); tk; tk = strtok_r(NULL, ",", &save)) bench_task(&b, m, buf, len, tk);
    free(list);
    harp_free(buf);
    /* "all tasks" compares the summed zero-shot tokens/seconds with the summed ppl tokens/seconds */
    double ppl_tps = b.all_ppl_s > 0 ? b.all_ppl_tok / b.all_ppl_s : 0;
    if (!b.json && b.all_s > 0) {
        printf("ppl       all runs: %.0f tokens/s\n", ppl_tps);
        printf("zeroshot  all tasks: %.0f tokens fed/s = %.2f x ppl (target >= 0.80)\n", b.all_fed / b.all_s,
               b.all_fed / b.all_s / ppl_tps);
        /* stricter: only the continuation tokens whose log-probabilities are summed (every ppl token is scored) */
        printf("zeroshot  all tasks: %.0f tokens scored/s = %.2f x ppl\n", b.all_scored / b.all_s, b.all_scored / b.all_s / ppl_tps);
    }
    harp_model_free(m);
    return CLI_EXIT_OK;
}
