/* harp zeroshot: zero-shot accuracy with lm-evaluation-harness scoring. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "harp/zeroshot.h"

static const char *const default_tasks = "arc_easy,arc_challenge,piqa,hellaswag,winogrande";

static void usage(FILE *f) {
    fprintf(f,
            "usage: harp zeroshot -m MODEL [--tasks LIST] [--limit N] [--json] [-o FILE]\n"
            "                     [--data-dir DIR] [--bos] [--quiet]\n\n"
            "Zero-shot multiple-choice accuracy scored as lm-evaluation-harness does (same prompts,\n"
            "log-likelihood of each continuation, acc and acc_norm with standard errors).\n\n"
            "  -m, --model PATH   model folder or file (FP or harp-quantized)\n"
            "  --tasks LIST       comma-separated subset of %s\n"
            "                     (default: all)\n"
            "  --limit N          first N items of each task (default: all)\n"
            "  --json             print one JSON object on stdout instead of the table\n"
            "  -o, --output FILE  also write the JSON object to FILE (atomically)\n"
            "  --data-dir DIR     task files (default: $HARP_SHARED/data/zeroshot when HARP_SHARED is\n"
            "                     set, else the first shared/data/zeroshot found beside the current\n"
            "                     directory or beside a parent folder of the harp executable, i.e.\n"
            "                     ../shared/data/zeroshot of the repository)\n"
            "  --bos              prepend BOS to every request (the harness's add_bos_token=True;\n"
            "                     default off, the harness default for Llama models)\n"
            "  --items FILE       write every item's log-likelihoods as JSON lines to FILE\n"
            "  -q, --quiet        no progress on stderr\n",
            default_tasks);
}

static int try_dir(char *buf, size_t n, const char *base, const char *rel) {
    snprintf(buf, n, "%s%s%s", base, *base ? "/" : "", rel);
    return harp_dir_exists(buf);
}

static const char *default_data_dir(char *buf, size_t n) {
    const char *env = getenv("HARP_SHARED");
    if (env && *env) {
        snprintf(buf, n, "%s/data/zeroshot", env);
        return buf;
    }
    if (try_dir(buf, n, "..", "shared/data/zeroshot")) return buf;
    if (try_dir(buf, n, "", "shared/data/zeroshot")) return buf;
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = 0;
        for (int up = 0; up < 5; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash || slash == exe) break;
            *slash = 0;
            if (try_dir(buf, n, exe, "../shared/data/zeroshot")) return buf;
            if (try_dir(buf, n, exe, "shared/data/zeroshot")) return buf;
        }
    }
    snprintf(buf, n, "../shared/data/zeroshot");
    return buf;
}

typedef struct {
    FILE *f;
    harp_zs_task task;
} item_dump;

static void dump_item(void *user, int index, const harp_zs_item *it, const double *ll) {
    item_dump *d = user;
    fprintf(d->f, "{\"task\": \"%s\", \"index\": %d, \"gold\": %d, \"ll\": [", harp_zs_task_name(d->task), index,
            it->gold);
    for (int i = 0; i < it->n_choices; i++) fprintf(d->f, "%s%.6f", i ? ", " : "", ll[i]);
    fprintf(d->f, "], \"pred\": %d, \"pred_norm\": %d}\n", harp_zs_argmax(ll, it->n_choices), harp_zs_argmax_norm(it, ll));
}

static void write_json(FILE *f, const char *model, const harp_model_info *info, const harp_zs_result *r, int nr,
                       int add_bos) {
    fprintf(f, "{\"kind\": \"zeroshot\", \"model\": ");
    cli_json_str(f, model);
    cli_json_quant(f, info);
    fprintf(f, ", \"add_bos\": %s, \"results\": {", add_bos ? "true" : "false");
    for (int i = 0; i < nr; i++) {
        double tps = r[i].seconds > 0 ? (double)r[i].tokens_fed / r[i].seconds : 0.0;
        fprintf(f,
                "%s\n  \"%s\": {\"acc\": %.6f, \"acc_stderr\": %.6f, \"acc_norm\": %.6f, "
                "\"acc_norm_stderr\": %.6f, \"n\": %d, \"tokens_fed\": %lld, \"tokens_scored\": %lld, "
                "\"seconds\": %.3f, \"tokens_per_second\": %.1f}",
                i ? "," : "", harp_zs_task_name(r[i].task), r[i].acc, r[i].acc_stderr, r[i].acc_norm,
                r[i].acc_norm_stderr, r[i].n, (long long)r[i].tokens_fed,
                (long long)r[i].tokens_scored, r[i].seconds, tps);
    }
    fprintf(f, "\n}}\n");
}

static void print_table(const harp_zs_result *r, int nr) {
    printf("%-14s %6s  %-17s %-17s %10s\n", "task", "n", "acc", "acc_norm", "tok/s");
    for (int i = 0; i < nr; i++) {
        double tps = r[i].seconds > 0 ? (double)r[i].tokens_fed / r[i].seconds : 0.0;
        printf("%-14s %6d  %6.2f%% ± %5.2f  %6.2f%% ± %5.2f  %10.0f\n", harp_zs_task_name(r[i].task), r[i].n,
               100 * r[i].acc, 100 * r[i].acc_stderr, 100 * r[i].acc_norm, 100 * r[i].acc_norm_stderr, tps);
    }
}

/* --tasks list -> task ids; returns the count. */
static int parse_tasks(const char *tasks, int sel[HARP_ZS_N_TASKS]) {
    int ns = 0;
    char *list = strdup(tasks);
    if (!list) cli_die(CLI_EXIT_FAIL, "out of memory");
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int t = harp_zs_task_from_name(tok);
        if (t < 0) cli_die(CLI_EXIT_USAGE, "--tasks: unknown task '%s' (known: %s)", tok, default_tasks);
        for (int i = 0; i < ns; i++)
            if (sel[i] == t) cli_die(CLI_EXIT_USAGE, "--tasks: '%s' given twice", tok);
        sel[ns++] = t;
    }
    free(list);
    if (ns == 0) cli_die(CLI_EXIT_USAGE, "--tasks: empty list");
    return ns;
}

typedef struct zs_opts {
    const char *model, *tasks, *out_path, *data_dir, *items_path;
    int limit, json, add_bos;
} zs_opts;

/* Returns 1 after --help. */
static int parse_args(int argc, char **argv, zs_opts *o) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"tasks", required_argument, 0, 't'},
        {"limit", required_argument, 0, 'l'}, {"json", no_argument, 0, 'j'},
        {"output", required_argument, 0, 'o'}, {"data-dir", required_argument, 0, 'd'},
        {"bos", no_argument, 0, 'b'},          {"quiet", no_argument, 0, 'q'},
        {"items", required_argument, 0, 'I'},  {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    while ((c = cli_getopt(argc, argv, "m:o:qh", opts)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 't': o->tasks = optarg; break;
        case 'l': o->limit = (int)cli_parse_long("--limit", optarg, 1, INT_MAX); break;
        case 'j': o->json = 1; break;
        case 'o': o->out_path = optarg; break;
        case 'd': o->data_dir = optarg; break;
        case 'b': o->add_bos = 1; break;
        case 'I': o->items_path = optarg; break;
        case 'q': cli_set_quiet(1); break;
        case 'h': usage(stdout); return 1;
        }
    }
    cli_require(o->model, "-m MODEL");
    return 0;
}

/* Scores every task (datasets are loaded first, so that a bad file fails before the model work). */
static void run_tasks(const zs_opts *o, const int *sel, int ns, harp_model *m, harp_zs_result *res) {
    harp_zs_dataset *ds[HARP_ZS_N_TASKS] = {0};
    for (int i = 0; i < ns; i++) cli_check(harp_zs_load((harp_zs_task)sel[i], o->data_dir, o->limit, &ds[i]));
    harp_zs_params zp = harp_zs_default_params();
    zp.add_bos = o->add_bos;
    zp.progress = cli_progress;
    item_dump dump = {NULL, HARP_ZS_ARC_EASY};
    if (o->items_path) {
        dump.f = fopen(o->items_path, "w");
        if (!dump.f) cli_die(CLI_EXIT_FAIL, "%s: cannot open for writing", o->items_path);
        zp.on_item = dump_item;
        zp.on_item_user = &dump;
    }
    for (int i = 0; i < ns; i++) {
        dump.task = (harp_zs_task)sel[i];
        cli_progress_begin();
        cli_check(harp_zs_eval(m, ds[i], &zp, &res[i]));
        harp_zs_dataset_free(ds[i]);
    }
    if (dump.f && fclose(dump.f)) cli_die(CLI_EXIT_FAIL, "%s: write failed", o->items_path);
}

int cmd_zeroshot(int argc, char **argv) {
    zs_opts o = {.tasks = default_tasks};
    if (parse_args(argc, argv, &o)) return CLI_EXIT_OK;
    int sel[HARP_ZS_N_TASKS], ns = parse_tasks(o.tasks, sel);
    char dbuf[PATH_MAX + 64];
    if (!o.data_dir) o.data_dir = default_data_dir(dbuf, sizeof dbuf);
    if (!harp_dir_exists(o.data_dir))
        cli_die(CLI_EXIT_FAIL, "%s: data folder not found (use --data-dir or set HARP_SHARED)", o.data_dir);
    harp_model_params mp = harp_model_default_params();
    harp_model *m = NULL;
    cli_check(harp_model_open(o.model, &mp, &m));
    harp_model_info info;
    cli_check(harp_model_get_info(m, &info));
    harp_zs_result res[HARP_ZS_N_TASKS];
    run_tasks(&o, sel, ns, m, res);
    harp_model_free(m);
    if (o.json) write_json(stdout, o.model, &info, res, ns, o.add_bos);
    else print_table(res, ns);
    if (o.out_path) {
        char *buf = NULL;
        size_t len = 0;
        FILE *mf = open_memstream(&buf, &len);
        if (!mf) cli_die(CLI_EXIT_FAIL, "out of memory");
        write_json(mf, o.model, &info, res, ns, o.add_bos);
        fclose(mf);
        cli_write_file(o.out_path, buf, len);
        free(buf);
    }
    return CLI_EXIT_OK;
}
