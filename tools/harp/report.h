/* harp report: results read from the JSON that harp writes, and the inline-SVG plot writer.
 * Presentation only, so it lives in the CLI. */
#ifndef HARP_REPORT_H
#define HARP_REPORT_H

#include <stddef.h>
#include <stdio.h>

#define RP_MAX_TASKS 8

/* Whose result: the model folder (or file) it was measured on and how that model was quantized. */
typedef struct rp_id {
    char source[256];   /* results file (base name) */
    char label[256];    /* base name of the model folder or file: "q2-harp", "stories260K.bin" */
    char family[48];    /* method without bits, the plots' series: "FP", "quip+harp", "rtn" */
    char method[64];    /* family and bits: "FP", "quip+harp 2-bit", "rtn 4-bit" */
    int bits;           /* 0: full precision or unknown */
    double bpw;         /* stored bits per weight of the quantized linears; < 0: unknown (FP) */
} rp_id;

/* A perplexity measurement: `harp ppl --json`, or `harp quantize --ppl --json`. */
typedef struct rp_ppl {
    rp_id id;
    char text[256];     /* base name of the text file; "" when unknown */
    int ctx;
    double ppl, kld;    /* kld < 0: none */
    int from_quantize;
} rp_ppl;

typedef struct rp_zs {
    rp_id id;
    int n_tasks;
    char task[RP_MAX_TASKS][32];
    double acc[RP_MAX_TASKS], acc_se[RP_MAX_TASKS], accn[RP_MAX_TASKS], accn_se[RP_MAX_TASKS];
    int n[RP_MAX_TASKS];
} rp_zs;

typedef struct rp_layer {
    char name[96];
    double proxy_loss;
} rp_layer;

/* One quantized model (`harp quantize --json`; also the older {"methods": [...]} schema). */
typedef struct rp_quant {
    rp_id id;
    char model[256];             /* base name of the model it was made from; "" when unknown */
    double bpw_codes, bpw_paper; /* < 0: unknown */
    double seconds;              /* < 0: unknown */
    int n_layers;
    rp_layer *layers;
} rp_quant;

/* One line of `harp bench ... --json`. */
typedef struct rp_bench {
    char source[256], bench[32], what[96], detail[512];
} rp_bench;

typedef struct rp_data {
    rp_ppl *ppl;
    int n_ppl;
    rp_zs *zs;
    int n_zs;
    rp_quant *quant;
    int n_quant;
    rp_bench *bench;
    int n_bench;
} rp_data;

/* Reads one JSON results file (one object, a list, or one object per line) and appends what it
 * holds. Returns the number of results added; 0 when nothing in it is a result harp report knows
 * (why in err); -1 when the file cannot be read or parsed (err names it). *skipped counts objects
 * that were passed over in a file that held other results. */
int rp_read_file(const char *path, rp_data *d, int *skipped, char *err, size_t errn);
/* The same on a file's contents already in memory (buf[len] must be 0; lines are split in place):
 * the entry point of fuzz/fuzz_report.c. */
int rp_read_buf(char *buf, size_t len, const char *path, rp_data *d, int *skipped, char *err, size_t errn);
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
