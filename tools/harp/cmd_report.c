/* harp report: one self-contained HTML page (tables + inline SVG plots drawn here) from the JSON
 * results of harp ppl, harp zeroshot and harp quantize. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "core/core.h"
#include "report.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: harp report RESULTS.json... -o report.html [--title TEXT] [--svg-dir DIR]\n\n"
            "Builds one self-contained HTML page (no scripts, no external files) with tables and\n"
            "inline SVG plots from JSON results:\n"
            "  harp ppl --json       perplexity (and KLD) of a model  -> table, FP reference lines\n"
            "  harp zeroshot --json  per-task acc / acc_norm          -> table and plot\n"
            "  harp quantize --json  per-method rows {method, bits, bpw, ppl, kld,\n"
            "                        per_layer: [{name, proxy_loss}]} -> ppl vs bpw, KLD vs bpw,\n"
            "                        per-layer proxy loss (schema: docs/cli/report.md)\n"
            "A file may hold one object, a list of objects, or one object per line.\n\n"
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

static char *svg_path(const char *dir, const char *id) {
    size_t n = strlen(dir) + strlen(id) + 8;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s.svg", dir, id);
    return p;
}

typedef struct {
    const char *svg_dir;
    int n_plots, n_marks;
} out_state;

static void emit_plot(FILE *f, out_state *os, const char *id, rp_plot *p, series_set *ss, int lines) {
    rp_series *rs = calloc((size_t)(ss->n ? ss->n : 1), sizeof *rs);
    if (!rs) cli_die(CLI_EXIT_FAIL, "out of memory");
    for (int i = 0; i < ss->n; i++) {
        if (lines) series_sort(&ss->s[i]);
        rs[i] = (rp_series){ss->s[i].name, ss->s[i].n, ss->s[i].x, ss->s[i].y, lines};
    }
    p->series = rs;
    p->n_series = ss->n;
    fprintf(f, "<figure id=\"%s\">\n", id);
    os->n_marks += rp_svg_plot(f, p);
    fprintf(f, "</figure>\n");
    os->n_plots++;
    if (os->svg_dir) {
        char *path = NULL, *buf = NULL;
        size_t len = 0;
        if (!(path = svg_path(os->svg_dir, id))) cli_die(CLI_EXIT_FAIL, "out of memory");
        FILE *mf = open_memstream(&buf, &len);
        if (!mf) cli_die(CLI_EXIT_FAIL, "out of memory");
        fprintf(mf, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        rp_svg_plot(mf, p);
        fclose(mf);
        harp_status st = harp_write_file_atomic(path, buf, len);
        free(buf);
        free(path);
        cli_check(st);
    }
    free(rs);
}

/* ---- tables -------------------------------------------------------------------------------- */

static void td_num(FILE *f, double v, const char *fmt) {
    if (v < 0 || !isfinite(v)) fprintf(f, "<td>–</td>");
    else {
        fprintf(f, "<td>");
        fprintf(f, fmt, v);
        fprintf(f, "</td>");
    }
}

static void td_str(FILE *f, const char *s) {
    fprintf(f, "<td>");
    rp_html_escape(f, *s ? s : "–");
    fprintf(f, "</td>");
}

static void ppl_section(FILE *f, const rp_data *d) {
    if (!d->n_ppl && !d->n_quant) return;
    fprintf(f, "<h2>Perplexity and KL divergence</h2>\n<table>\n<tr><th>source</th><th>model</th><th>method</th>"
               "<th>bits</th><th>bpw</th><th>dataset</th><th>ctx</th><th>ppl</th><th>KLD</th></tr>\n");
    for (int i = 0; i < d->n_ppl; i++) {
        const rp_ppl *r = &d->ppl[i];
        fprintf(f, "<tr>");
        td_str(f, r->source);
        td_str(f, r->model);
        td_str(f, r->method[0] ? r->method : "FP");
        fprintf(f, "<td>–</td>");
        td_num(f, r->bpw, "%.3f");
        td_str(f, r->dataset);
        if (r->ctx > 0) fprintf(f, "<td>%d</td>", r->ctx);
        else fprintf(f, "<td>–</td>");
        td_num(f, r->ppl, "%.4f");
        td_num(f, r->kld, "%.5f");
        fprintf(f, "</tr>\n");
    }
    for (int i = 0; i < d->n_quant; i++) {
        const rp_quant *q = &d->quant[i];
        fprintf(f, "<tr>");
        td_str(f, q->source);
        td_str(f, q->model);
        td_str(f, q->method);
        if (q->bits > 0) fprintf(f, "<td>%d</td>", q->bits);
        else fprintf(f, "<td>–</td>");
        td_num(f, q->bpw, "%.3f");
        fprintf(f, "<td>–</td><td>–</td>");
        td_num(f, q->ppl, "%.4f");
        td_num(f, q->kld, "%.5f");
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</table>\n");
}

static void zs_section(FILE *f, const rp_data *d, out_state *os) {
    if (!d->n_zs) return;
    /* union of task names, in first-seen order */
    char tasks[RP_MAX_TASKS * 4][32];
    int nt = 0;
    for (int i = 0; i < d->n_zs; i++)
        for (int k = 0; k < d->zs[i].n_tasks; k++) {
            int seen = 0;
            for (int j = 0; j < nt; j++) seen |= !strcmp(tasks[j], d->zs[i].task[k]);
            if (!seen && nt < RP_MAX_TASKS * 4) snprintf(tasks[nt++], 32, "%s", d->zs[i].task[k]);
        }
    fprintf(f, "<h2>Zero-shot accuracy</h2>\n<p>acc / acc_norm in %%, ± standard error; n items per task.</p>\n"
               "<table>\n<tr><th>source</th><th>model</th>");
    for (int j = 0; j < nt; j++) {
        fprintf(f, "<th>");
        rp_html_escape(f, tasks[j]);
        fprintf(f, "</th>");
    }
    fprintf(f, "</tr>\n");
    for (int i = 0; i < d->n_zs; i++) {
        const rp_zs *z = &d->zs[i];
        fprintf(f, "<tr>");
        td_str(f, z->source);
        td_str(f, z->model);
        for (int j = 0; j < nt; j++) {
            int k = -1;
            for (int q = 0; q < z->n_tasks; q++)
                if (!strcmp(z->task[q], tasks[j])) k = q;
            if (k < 0) {
                fprintf(f, "<td>–</td>");
                continue;
            }
            fprintf(f, "<td>%.2f ± %.2f", 100 * z->acc[k], 100 * (isfinite(z->acc_se[k]) ? z->acc_se[k] : 0));
            if (isfinite(z->accn[k]))
                fprintf(f, "<br>%.2f ± %.2f", 100 * z->accn[k], 100 * (isfinite(z->accn_se[k]) ? z->accn_se[k] : 0));
            if (z->n[k] > 0) fprintf(f, "<br><small>n=%d</small>", z->n[k]);
            fprintf(f, "</td>");
        }
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</table>\n");
    series_set ss = {0};
    for (int i = 0; i < d->n_zs; i++) {
        const rp_zs *z = &d->zs[i];
        char name[300];
        snprintf(name, sizeof name, "%s acc", z->model[0] ? z->model : z->source);
        series_buf *b = series_get(&ss, name);
        for (int j = 0; j < nt; j++)
            for (int q = 0; q < z->n_tasks; q++)
                if (!strcmp(z->task[q], tasks[j])) series_add(b, j, 100 * z->acc[q]);
    }
    const char *cats[RP_MAX_TASKS * 4];
    for (int j = 0; j < nt; j++) cats[j] = tasks[j];
    rp_plot p = {.title = "Zero-shot accuracy per task", .xlabel = "task", .ylabel = "acc (%)",
                 .xcats = cats, .n_xcats = nt};
    emit_plot(f, os, "zeroshot_acc", &p, &ss, 1);
    series_free(&ss);
}

static void quant_plots(FILE *f, const rp_data *d, out_state *os) {
    /* FP references: perplexity runs without method and bpw */
    double href[16];
    char hlab_buf[16][272];
    const char *hlab[16];
    int nh = 0;
    for (int i = 0; i < d->n_ppl && nh < 16; i++) {
        const rp_ppl *r = &d->ppl[i];
        if (r->method[0] || r->bpw >= 0 || !isfinite(r->ppl)) continue;
        href[nh] = r->ppl;
        snprintf(hlab_buf[nh], sizeof hlab_buf[nh], "FP %s", r->model[0] ? r->model : r->source);
        hlab[nh] = hlab_buf[nh];
        nh++;
    }
    series_set ps = {0}, ks = {0};
    for (int i = 0; i < d->n_quant; i++) {
        const rp_quant *q = &d->quant[i];
        if (q->bpw < 0) continue;
        if (q->ppl > 0) series_add(series_get(&ps, q->method), q->bpw, q->ppl);
        if (q->kld >= 0) series_add(series_get(&ks, q->method), q->bpw, q->kld);
    }
    for (int i = 0; i < d->n_ppl; i++) {
        const rp_ppl *r = &d->ppl[i];
        if (r->bpw < 0) continue;
        const char *m = r->method[0] ? r->method : "FP";
        if (r->ppl > 0) series_add(series_get(&ps, m), r->bpw, r->ppl);
        if (r->kld >= 0) series_add(series_get(&ks, m), r->bpw, r->kld);
    }
    if (ps.n || nh) {
        fprintf(f, "<h2>Perplexity vs bits per weight</h2>\n");
        rp_plot p = {.title = "Perplexity vs bits per weight", .xlabel = "bits per weight",
                     .ylabel = "perplexity", .logy = 1, .n_hlines = nh, .hline_y = href, .hline_label = hlab};
        emit_plot(f, os, "ppl_vs_bpw", &p, &ps, 1);
    }
    if (ks.n) {
        fprintf(f, "<h2>KL divergence vs bits per weight</h2>\n");
        rp_plot p = {.title = "KL divergence to the FP model vs bits per weight", .xlabel = "bits per weight",
                     .ylabel = "mean KLD (nats)", .logy = 1};
        emit_plot(f, os, "kld_vs_bpw", &p, &ks, 1);
    }
    series_free(&ps);
    series_free(&ks);
    /* per-layer proxy loss: one series per quantize row, x = layer index */
    series_set ls = {0};
    const rp_quant *first = NULL;
    for (int i = 0; i < d->n_quant; i++) {
        const rp_quant *q = &d->quant[i];
        if (!q->n_layers) continue;
        if (!first || q->n_layers > first->n_layers) first = q;
        char name[128];
        if (q->bits > 0) snprintf(name, sizeof name, "%s %d-bit", q->method, q->bits);
        else if (q->bpw >= 0) snprintf(name, sizeof name, "%s %.2f bpw", q->method, q->bpw);
        else snprintf(name, sizeof name, "%s", q->method);
        series_buf *b = series_get(&ls, name);
        for (int k = 0; k < q->n_layers; k++) series_add(b, k, q->layers[k].proxy_loss);
    }
    if (first) {
        const char **cats = malloc((size_t)first->n_layers * sizeof *cats);
        if (!cats) cli_die(CLI_EXIT_FAIL, "out of memory");
        for (int k = 0; k < first->n_layers; k++) cats[k] = first->layers[k].name;
        fprintf(f, "<h2>Per-layer proxy loss</h2>\n<p>tr((W&#770;−W) H (W&#770;−W)<sup>T</sup>) per linear layer, "
                   "as reported by the quantizer.</p>\n");
        rp_plot p = {.title = "Per-layer proxy loss", .xlabel = "layer", .ylabel = "proxy loss", .logy = 1,
                     .height = 380, .width = 760, .xcats = cats, .n_xcats = first->n_layers};
        emit_plot(f, os, "proxy_loss", &p, &ls, 1);
        free(cats);
    }
    series_free(&ls);
}

static const char *const css =
    "body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}"
    "table{border-collapse:collapse;margin:8px 0 20px}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;font-size:13px}"
    "th{background:#f0f0f0}td:nth-child(-n+2){text-align:left}"
    "figure{display:inline-block;vertical-align:top;margin:8px 16px 24px 0}h2{margin-top:28px;border-bottom:1px solid #ddd}"
    "small{color:#777}code{background:#f4f4f4;padding:1px 4px}";

int cmd_report(int argc, char **argv) {
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"title", required_argument, 0, 't'},
                                         {"svg-dir", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *out = NULL, *title = "harp results", *svg_dir = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 't': title = optarg; break;
        case 's': svg_dir = optarg; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    if (!out) cli_die(CLI_EXIT_USAGE, "-o report.html is required (harp report --help)");
    if (optind >= argc) cli_die(CLI_EXIT_USAGE, "no results files given (harp report --help)");
    rp_data d = {0};
    char err[1024];
    for (int i = optind; i < argc; i++)
        if (rp_read_file(argv[i], &d, err, sizeof err)) cli_die(CLI_EXIT_FAIL, "%s", err);
    if (svg_dir) cli_check(harp_mkdir_p(svg_dir));

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) cli_die(CLI_EXIT_FAIL, "out of memory");
    out_state os = {svg_dir, 0, 0};
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    rp_html_escape(f, title);
    fprintf(f, "</title>\n<style>%s</style></head><body>\n<h1>", css);
    rp_html_escape(f, title);
    fprintf(f, "</h1>\n<p>Generated by harp %s from:", harp_version_string());
    for (int i = optind; i < argc; i++) {
        fprintf(f, " <code>");
        rp_html_escape(f, argv[i]);
        fprintf(f, "</code>");
    }
    fprintf(f, "</p>\n");
    ppl_section(f, &d);
    quant_plots(f, &d, &os);
    zs_section(f, &d, &os);
    fprintf(f, "</body></html>\n");
    fclose(f);
    harp_status st = harp_write_file_atomic(out, buf, len);
    free(buf);
    cli_check(st);
    fprintf(stderr, "harp report: wrote %s (%d ppl, %d zero-shot, %d quantize rows; %d plots, %d points)\n", out,
            d.n_ppl, d.n_zs, d.n_quant, os.n_plots, os.n_marks);
    rp_data_free(&d);
    return CLI_EXIT_OK;
}
