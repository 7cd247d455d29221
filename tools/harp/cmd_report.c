/* harp report: one self-contained HTML page (tables + inline SVG plots drawn here) from the JSON
 * that harp ppl, quantize, zeroshot and bench write. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "report.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: harp report RESULTS.json... -o report.html [--title TEXT] [--svg-dir DIR]\n\n"
            "Builds one self-contained HTML page (no scripts, no external files) with tables and\n"
            "inline SVG plots from the JSON that harp writes:\n"
            "  harp ppl --json       perplexity / KLD of a model or quantized folder -> table,\n"
            "                        ppl vs bpw and KLD vs bpw (FP models as reference lines)\n"
            "  harp quantize --json  a quantized folder: bpw, seconds, per-linear proxy loss\n"
            "                        (and its ppl with --ppl)                  -> tables, plots\n"
            "  harp zeroshot --json  per-task acc / acc_norm                   -> table and plot\n"
            "  harp bench NAME --json                                          -> table\n"
            "Rows are labelled by model folder and method. A file may hold one object, a list of\n"
            "objects, or one object per line; a file with nothing known in it is skipped with a\n"
            "warning (docs/cli/report.md).\n\n"
            "  -o, --output FILE  the HTML page (written atomically)\n"
            "  --title TEXT       page title (default \"harp results\")\n"
            "  --svg-dir DIR      also write every plot as DIR/<plot>.svg\n");
}

/* ---- plot assembly ------------------------------------------------------------------------- */

typedef struct {
    char name[300];
    int n, cap;
    double *x, *y;
} series_buf;

typedef struct {
    series_buf *s;
    int n;
} series_set;

static series_buf *series_get(series_set *ss, const char *name) {
    for (int i = 0; i < ss->n; i++)
        if (!strcmp(ss->s[i].name, name)) return &ss->s[i];
    series_buf *ns = realloc(ss->s, (size_t)(ss->n + 1) * sizeof *ns);
    if (!ns) cli_die(CLI_EXIT_FAIL, "out of memory");
    ss->s = ns;
    series_buf *b = &ss->s[ss->n++];
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    return b;
}

static void series_add(series_buf *b, double x, double y) {
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 8;
        b->x = realloc(b->x, (size_t)b->cap * sizeof *b->x);
        b->y = realloc(b->y, (size_t)b->cap * sizeof *b->y);
        if (!b->x || !b->y) cli_die(CLI_EXIT_FAIL, "out of memory");
    }
    b->x[b->n] = x;
    b->y[b->n++] = y;
}

/* The same measurement read twice (quantize --ppl and ppl on the folder, printed to different
 * precision) is one point. */
static void series_add_once(series_buf *b, double x, double y) {
    for (int i = 0; i < b->n; i++)
        if (b->x[i] == x && fabs(b->y[i] - y) <= 1e-6 * fabs(y)) return;
    series_add(b, x, y);
}

static void series_sort(series_buf *b) {
    for (int i = 1; i < b->n; i++)
        for (int j = i; j > 0 && b->x[j] < b->x[j - 1]; j--) {
            double t = b->x[j];
            b->x[j] = b->x[j - 1];
            b->x[j - 1] = t;
            t = b->y[j];
            b->y[j] = b->y[j - 1];
            b->y[j - 1] = t;
        }
}

static void series_free(series_set *ss) {
    for (int i = 0; i < ss->n; i++) {
        free(ss->s[i].x);
        free(ss->s[i].y);
    }
    free(ss->s);
    ss->s = NULL;
    ss->n = 0;
}

typedef struct {
    const char *svg_dir;
    int n_plots, n_marks;
    char summary[512];   /* "ppl_vs_bpw 3 points, ..." for the closing stderr line */
} out_state;

static void write_svg(const out_state *os, const char *id, const rp_plot *p) {
    char *path = NULL, *buf = NULL;
    size_t len = 0;
    size_t n = strlen(os->svg_dir) + strlen(id) + 8;
    if (!(path = malloc(n))) cli_die(CLI_EXIT_FAIL, "out of memory");
    snprintf(path, n, "%s/%s.svg", os->svg_dir, id);
    FILE *mf = open_memstream(&buf, &len);
    if (!mf) cli_die(CLI_EXIT_FAIL, "out of memory");
    fprintf(mf, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    rp_svg_plot(mf, p);
    fclose(mf);
    cli_write_file(path, buf, len);
    free(buf);
    free(path);
}

static void emit_plot(FILE *f, out_state *os, const char *id, rp_plot *p, series_set *ss) {
    rp_series *rs = calloc((size_t)(ss->n ? ss->n : 1), sizeof *rs);
    if (!rs) cli_die(CLI_EXIT_FAIL, "out of memory");
    for (int i = 0; i < ss->n; i++) {
        series_sort(&ss->s[i]);
        rs[i] = (rp_series){ss->s[i].name, ss->s[i].n, ss->s[i].x, ss->s[i].y, 1};
    }
    p->series = rs;
    p->n_series = ss->n;
    fprintf(f, "<figure id=\"%s\">\n", id);
    int marks = rp_svg_plot(f, p);
    fprintf(f, "</figure>\n");
    os->n_marks += marks;
    os->n_plots++;
    size_t k = strlen(os->summary);
    snprintf(os->summary + k, sizeof os->summary - k, "%s%s %d points", k ? ", " : "", id, marks);
    if (os->svg_dir) write_svg(os, id, p);
    free(rs);
}

/* ---- tables -------------------------------------------------------------------------------- */

static void td_num(FILE *f, double v, const char *fmt) {
    if (v < 0 || !isfinite(v)) {
        fprintf(f, "<td>–</td>");
        return;
    }
    fprintf(f, "<td>");
    fprintf(f, fmt, v);
    fprintf(f, "</td>");
}

static void td_str(FILE *f, const char *s) {
    fprintf(f, "<td>");
    rp_html_escape(f, *s ? s : "–");
    fprintf(f, "</td>");
}

/* A result row opens with its model, method and bpw cells and closes with its source cell. */
static void tr_open(FILE *f, const rp_id *id) {
    fprintf(f, "<tr>");
    td_str(f, id->label);
    td_str(f, id->method);
    td_num(f, id->bpw, "%.4f");
}

static void tr_close(FILE *f, const char *source) {
    td_str(f, source);
    fprintf(f, "</tr>\n");
}

static double mean_proxy(const rp_quant *q) {
    double s = 0;
    int n = 0;
    for (int i = 0; i < q->n_layers; i++)
        if (isfinite(q->layers[i].proxy_loss)) s += q->layers[i].proxy_loss, n++;
    return n ? s / n : NAN;
}

static void quant_rows(FILE *f, const rp_data *d) {
    for (int i = 0; i < d->n_quant; i++) {
        const rp_quant *q = &d->quant[i];
        tr_open(f, &q->id);
        td_str(f, q->model);
        td_num(f, q->bpw_codes, "%.4f");
        td_num(f, q->bpw_paper, "%.4f");
        fprintf(f, "<td>%d</td>", q->n_layers);
        td_num(f, mean_proxy(q), "%.5g");
        td_num(f, q->seconds, "%.1f");
        tr_close(f, q->id.source);
    }
}

static void ppl_rows(FILE *f, const rp_data *d) {
    for (int i = 0; i < d->n_ppl; i++) {
        const rp_ppl *r = &d->ppl[i];
        tr_open(f, &r->id);
        td_str(f, r->text);
        if (r->ctx > 0) fprintf(f, "<td>%d</td>", r->ctx);
        else fprintf(f, "<td>–</td>");
        td_num(f, r->ppl, "%.4f");
        td_num(f, r->kld, "%.5f");
        tr_close(f, r->id.source);
    }
}

static void bench_rows(FILE *f, const rp_data *d) {
    for (int i = 0; i < d->n_bench; i++) {
        const rp_bench *b = &d->bench[i];
        fprintf(f, "<tr>");
        td_str(f, b->bench);
        td_str(f, b->what);
        td_str(f, b->detail);
        tr_close(f, b->source);
    }
}

/* A section with one table (head: its heading and header row), left out when it has no rows. */
static void table(FILE *f, const rp_data *d, int n, const char *head, void (*rows)(FILE *, const rp_data *)) {
    if (!n) return;
    fputs(head, f);
    rows(f, d);
    fprintf(f, "</table>\n");
}

static const char k_quant_head[] =
    "<h2>Quantized models</h2>\n<p>bpw: every stored bit of the quantized linears; codes: codes and scales only; "
    "paper: codes + rotation state as the QuIP#/HARP papers count it (docs/cli/quantize.md).</p>\n<table>\n<tr>"
    "<th>model</th><th>method</th><th>bpw</th><th>from</th><th>codes bpw</th><th>paper bpw</th><th>linears</th>"
    "<th>mean proxy loss</th><th>seconds</th><th>source</th></tr>\n";
static const char k_ppl_head[] = "<h2>Perplexity and KL divergence</h2>\n<table>\n<tr><th>model</th><th>method</th>"
                                 "<th>bpw</th><th>text</th><th>ctx</th><th>ppl</th><th>KLD</th><th>source</th></tr>\n";
static const char k_bench_head[] = "<h2>Benchmarks</h2>\n<table class=\"bench\">\n<tr><th>bench</th><th>what</th>"
                                   "<th>measurements</th><th>source</th></tr>\n";

/* ---- zero-shot ------------------------------------------------------------------------------- */

/* Union of the task names, in first-seen order. */
static int zs_tasks(const rp_data *d, char tasks[][32], int max) {
    int nt = 0;
    for (int i = 0; i < d->n_zs; i++)
        for (int k = 0; k < d->zs[i].n_tasks; k++) {
            int seen = 0;
            for (int j = 0; j < nt; j++) seen |= !strcmp(tasks[j], d->zs[i].task[k]);
            if (!seen && nt < max) snprintf(tasks[nt++], 32, "%s", d->zs[i].task[k]);
        }
    return nt;
}

static void zs_cell(FILE *f, const rp_zs *z, const char *task) {
    int k = -1;
    for (int q = 0; q < z->n_tasks; q++)
        if (!strcmp(z->task[q], task)) k = q;
    if (k < 0) {
        fprintf(f, "<td>–</td>");
        return;
    }
    fprintf(f, "<td>%.2f ± %.2f", 100 * z->acc[k], 100 * (isfinite(z->acc_se[k]) ? z->acc_se[k] : 0));
    if (isfinite(z->accn[k]))
        fprintf(f, "<br>%.2f ± %.2f", 100 * z->accn[k], 100 * (isfinite(z->accn_se[k]) ? z->accn_se[k] : 0));
    if (z->n[k] > 0) fprintf(f, "<br><small>n=%d</small>", z->n[k]);
    fprintf(f, "</td>");
}

static void zs_section(FILE *f, const rp_data *d, out_state *os) {
    if (!d->n_zs) return;
    char tasks[RP_MAX_TASKS * 4][32];
    int nt = zs_tasks(d, tasks, RP_MAX_TASKS * 4);
    fprintf(f, "<h2>Zero-shot accuracy</h2>\n<p>acc / acc_norm in %%, ± standard error; n items per task.</p>\n"
               "<table>\n<tr><th>model</th><th>method</th><th>bpw</th>");
    for (int j = 0; j < nt; j++) {
        fprintf(f, "<th>");
        rp_html_escape(f, tasks[j]);
        fprintf(f, "</th>");
    }
    fprintf(f, "<th>source</th></tr>\n");
    series_set ss = {0};
    for (int i = 0; i < d->n_zs; i++) {
        const rp_zs *z = &d->zs[i];
        tr_open(f, &z->id);
        for (int j = 0; j < nt; j++) zs_cell(f, z, tasks[j]);
        tr_close(f, z->id.source);
        char name[400];
        snprintf(name, sizeof name, "%s (%s)", z->id.label, z->id.method);
        series_buf *b = series_get(&ss, name);
        for (int j = 0; j < nt; j++)
            for (int q = 0; q < z->n_tasks; q++)
                if (!strcmp(z->task[q], tasks[j])) series_add(b, j, 100 * z->acc[q]);
    }
    fprintf(f, "</table>\n");
    const char *cats[RP_MAX_TASKS * 4];
    for (int j = 0; j < nt; j++) cats[j] = tasks[j];
    rp_plot p = {.title = "Zero-shot accuracy per task", .xlabel = "task", .ylabel = "acc (%)", .xcats = cats, .n_xcats = nt};
    emit_plot(f, os, "zeroshot_acc", &p, &ss);
    series_free(&ss);
}

/* ---- perplexity / KLD vs bpw --------------------------------------------------------------- */

/* Series name: the method family, and the text when the page holds several texts. */
static void series_name(char *b, size_t n, const char *family, const rp_ppl *r, int many_texts) {
    if (many_texts && r->text[0]) snprintf(b, n, "%.150s, %.120s", family, r->text);
    else snprintf(b, n, "%s", family);
}

static int many_texts(const rp_data *d) {
    for (int i = 1; i < d->n_ppl; i++)
        if (strcmp(d->ppl[i].text, d->ppl[0].text)) return 1;
    return 0;
}

static void ppl_plots(FILE *f, const rp_data *d, out_state *os) {
    enum { MAX_REF = 16 };
    double href[MAX_REF];
    char hlab_buf[MAX_REF][400];
    const char *hlab[MAX_REF];
    int nh = 0, mt = many_texts(d);
    series_set ps = {0}, ks = {0};
    for (int i = 0; i < d->n_ppl; i++) {
        const rp_ppl *r = &d->ppl[i];
        char name[400];
        if (r->id.bpw < 0) {   /* full precision: a reference line */
            if (!isfinite(r->ppl) || nh == MAX_REF) continue;
            series_name(name, sizeof name, r->id.label, r, mt);
            snprintf(hlab_buf[nh], sizeof hlab_buf[nh], "%.60s %.300s", r->id.method, name);
            hlab[nh] = hlab_buf[nh];
            href[nh++] = r->ppl;
            continue;
        }
        series_name(name, sizeof name, r->id.family, r, mt);
        if (r->ppl > 0) series_add_once(series_get(&ps, name), r->id.bpw, r->ppl);
        if (r->kld >= 0) series_add_once(series_get(&ks, name), r->id.bpw, r->kld);
    }
    if (ps.n || nh) {
        fprintf(f, "<h2>Perplexity vs bits per weight</h2>\n");
        rp_plot p = {.title = "Perplexity vs bits per weight", .xlabel = "bits per weight (stored)", .ylabel = "perplexity",
                     .logy = 1, .n_hlines = nh, .hline_y = href, .hline_label = hlab};
        emit_plot(f, os, "ppl_vs_bpw", &p, &ps);
    }
    if (ks.n) {
        fprintf(f, "<h2>KL divergence vs bits per weight</h2>\n");
        rp_plot p = {.title = "KL divergence to the FP model vs bits per weight", .xlabel = "bits per weight (stored)",
                     .ylabel = "mean KLD (nats)", .logy = 1};
        emit_plot(f, os, "kld_vs_bpw", &p, &ks);
    }
    series_free(&ps);
    series_free(&ks);
}

/* Per-linear proxy loss: one series per quantized model, x = linear in file order. */
static void proxy_plot(FILE *f, const rp_data *d, out_state *os) {
    series_set ls = {0};
    const rp_quant *first = NULL;
    for (int i = 0; i < d->n_quant; i++) {
        const rp_quant *q = &d->quant[i];
        if (!q->n_layers) continue;
        if (!first || q->n_layers > first->n_layers) first = q;
        char name[400];
        snprintf(name, sizeof name, "%s (%s)", q->id.label, q->id.method);
        series_buf *b = series_get(&ls, name);
        for (int k = 0; k < q->n_layers; k++) series_add(b, k, q->layers[k].proxy_loss);
    }
    if (first) {
        const char **cats = malloc((size_t)first->n_layers * sizeof *cats);
        if (!cats) cli_die(CLI_EXIT_FAIL, "out of memory");
        for (int k = 0; k < first->n_layers; k++) cats[k] = first->layers[k].name;
        fprintf(f, "<h2>Per-linear proxy loss</h2>\n<p>tr((W&#770;−W) H (W&#770;−W)<sup>T</sup>) / tr(W H W<sup>T</sup>) "
                   "per quantized linear group, as reported by the quantizer.</p>\n");
        rp_plot p = {.title = "Per-linear proxy loss", .xlabel = "linear", .ylabel = "proxy loss", .logy = 1,
                     .height = 380, .width = 760, .xcats = cats, .n_xcats = first->n_layers};
        emit_plot(f, os, "proxy_loss", &p, &ls);
        free(cats);
    }
    series_free(&ls);
}

/* ---- page ---------------------------------------------------------------------------------- */

static const char *const css =
    "body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}"
    "table{border-collapse:collapse;margin:8px 0 20px}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;font-size:13px}"
    "th{background:#f0f0f0}td:nth-child(-n+2){text-align:left}table.bench td{text-align:left}"
    "figure{display:inline-block;vertical-align:top;margin:8px 16px 24px 0}h2{margin-top:28px;border-bottom:1px solid #ddd}"
    "small{color:#777}code{background:#f4f4f4;padding:1px 4px}.warn{color:#a40}";

typedef struct inputs {
    const char **path;
    int n;
    char (*skipped)[600];   /* "file: reason" of each file or object passed over */
    int n_skipped;
} inputs;

static void write_page(FILE *f, const char *title, const inputs *in, const rp_data *d, out_state *os) {
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    rp_html_escape(f, title);
    fprintf(f, "</title>\n<style>%s</style></head><body>\n<h1>", css);
    rp_html_escape(f, title);
    fprintf(f, "</h1>\n<p>Generated by harp %s from:", harp_version_string());
    for (int i = 0; i < in->n; i++) {
        fprintf(f, " <code>");
        rp_html_escape(f, in->path[i]);
        fprintf(f, "</code>");
    }
    fprintf(f, "</p>\n");
    for (int i = 0; i < in->n_skipped; i++) {
        fprintf(f, "<p class=\"warn\">skipped: ");
        rp_html_escape(f, in->skipped[i]);
        fprintf(f, "</p>\n");
    }
    table(f, d, d->n_quant, k_quant_head, quant_rows);
    table(f, d, d->n_ppl, k_ppl_head, ppl_rows);
    ppl_plots(f, d, os);
    proxy_plot(f, d, os);
    zs_section(f, d, os);
    table(f, d, d->n_bench, k_bench_head, bench_rows);
    fprintf(f, "</body></html>\n");
}

/* Reads every input; what it cannot use is a warning (and a line on the page), not an error,
 * unless nothing usable is left: then one error line says why (the reason itself for one input). */
static void read_inputs(inputs *in, rp_data *d) {
    in->skipped = calloc((size_t)in->n, sizeof *in->skipped);
    if (!in->skipped) cli_die(CLI_EXIT_FAIL, "out of memory");
    for (int i = 0; i < in->n; i++) {
        char err[512] = "";
        int skipped = 0, n = rp_read_file(in->path[i], d, &skipped, err, sizeof err);
        if (n < 0) cli_die(CLI_EXIT_FAIL, "%s", err);
        if (n > 0 && !skipped) continue;
        char *line = in->skipped[in->n_skipped++];
        if (n == 0) snprintf(line, sizeof in->skipped[0], "%s: %s", in->path[i], err);
        else snprintf(line, sizeof in->skipped[0], "%s: %d object(s) passed over (%s)", in->path[i], skipped, err);
    }
    if (!d->n_ppl && !d->n_quant && !d->n_zs && !d->n_bench) {
        if (in->n == 1 && in->n_skipped == 1) cli_die(CLI_EXIT_FAIL, "%s (no results to report)", in->skipped[0]);
        cli_die(CLI_EXIT_FAIL, "no ppl, quantize, zeroshot or bench results in %d input file(s)%s%s", in->n,
                in->n_skipped ? "; first: " : "", in->n_skipped ? in->skipped[0] : "");
    }
    for (int i = 0; i < in->n_skipped; i++) {
        cli_progress_break();
        fprintf(stderr, "harp report: warning: skipped %s\n", in->skipped[i]);
    }
}

int cmd_report(int argc, char **argv) {
    static const struct option opts[] = {{"output", required_argument, 0, 'o'}, {"title", required_argument, 0, 't'},
                                         {"svg-dir", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *out = NULL, *title = "harp results", *svg_dir = NULL;
    inputs in = {calloc((size_t)argc, sizeof(char *)), 0, NULL, 0};
    if (!in.path) cli_die(CLI_EXIT_FAIL, "out of memory");
    int c;
    while ((c = cli_getopt(argc, argv, "-o:h", opts)) != -1) {
        switch (c) {
        case 1: in.path[in.n++] = optarg; break;
        case 'o': out = optarg; break;
        case 't': title = optarg; break;
        case 's': svg_dir = optarg; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        }
    }
    cli_require(out, "-o report.html");
    if (!in.n) cli_die(CLI_EXIT_USAGE, "no results files given; see harp report --help");
    rp_data d = {0};
    read_inputs(&in, &d);
    if (svg_dir) cli_check(harp_mkdir_p(svg_dir));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) cli_die(CLI_EXIT_FAIL, "out of memory");
    out_state os = {svg_dir, 0, 0, ""};
    write_page(f, title, &in, &d, &os);
    fclose(f);
    cli_write_file(out, buf, len);
    free(buf);
    fprintf(stderr, "harp report: wrote %s (%d ppl, %d quantize, %d zero-shot, %d bench rows; %d plots: %s)\n", out,
            d.n_ppl, d.n_quant, d.n_zs, d.n_bench, os.n_plots, os.n_plots ? os.summary : "none");
    rp_data_free(&d);
    free(in.skipped);
    free(in.path);
    return CLI_EXIT_OK;
}
