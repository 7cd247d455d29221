/* harp report: results read from JSON files, and the inline-SVG plot writer. Presentation only,
 * so it lives in the CLI. */
#ifndef HARP_REPORT_H
#define HARP_REPORT_H

#include <stdio.h>

#define RP_MAX_TASKS 8

/* A perplexity measurement (from `harp ppl --json`, or a quantize row). bpw < 0: unknown. */
typedef struct rp_ppl {
    char source[256], model[256], method[64], dataset[128];
    double bpw, ppl, kld;   /* kld < 0: none */
    int ctx;
} rp_ppl;

typedef struct rp_zs {
    char source[256], model[256];
    int n_tasks;
    char task[RP_MAX_TASKS][32];
    double acc[RP_MAX_TASKS], acc_se[RP_MAX_TASKS], accn[RP_MAX_TASKS], accn_se[RP_MAX_TASKS];
    int n[RP_MAX_TASKS];
} rp_zs;

typedef struct rp_layer {
    char name[96];
    double proxy_loss;
} rp_layer;

typedef struct rp_quant {
    char source[256], model[256], method[64];
    int bits;               /* 0: unknown */
    double bpw, ppl, kld;   /* < 0: unknown */
    int n_layers;
    rp_layer *layers;
} rp_quant;

typedef struct rp_data {
    rp_ppl *ppl;
    int n_ppl;
    rp_zs *zs;
    int n_zs;
    rp_quant *quant;
    int n_quant;
} rp_data;

/* Reads one JSON results file and appends what it holds. Returns 0, or -1 with a one-line message
 * in err naming the file. */
int rp_read_file(const char *path, rp_data *d, char *err, size_t errn);
/* The same on a file's contents already in memory (buf[len] must be 0; lines are split in place):
 * the entry point of fuzz/fuzz_report.c. */
int rp_read_buf(char *buf, size_t len, const char *path, rp_data *d, char *err, size_t errn);
void rp_data_free(rp_data *d);

/* ---- plots ---------------------------------------------------------------------------------- */

typedef struct rp_series {
    const char *name;
    int n;
    const double *x, *y;
    int lines;              /* connect points (sorted by x by the caller) */
} rp_series;

typedef struct rp_plot {
    const char *title, *xlabel, *ylabel;
    int logy;
    int width, height;
    const rp_series *series;
    int n_series;
    /* optional horizontal reference lines (e.g. the FP model's perplexity) */
    int n_hlines;
    const double *hline_y;
    const char *const *hline_label;
    /* optional category labels for integer x positions (per-layer plots) */
    const char *const *xcats;
    int n_xcats;
} rp_plot;

/* Writes one self-contained <svg> element. Returns the number of data marks drawn. */
int rp_svg_plot(FILE *f, const rp_plot *p);
void rp_html_escape(FILE *f, const char *s);

#endif
