/* Inline SVG line/scatter plots for harp report: linear or log y axis, "nice" ticks, a legend,
 * optional horizontal reference lines and categorical x labels. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report.h"

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
#define N_PALETTE (int)(sizeof palette / sizeof palette[0])

void rp_html_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* Step of 1, 2 or 5 times a power of ten giving about `want` intervals over span. */
static double nice_step(double span, int want) {
    double raw = span / want;
    double p = pow(10.0, floor(log10(raw)));
    double m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void fmt_num(char *b, size_t n, double v) {
    double a = fabs(v);
    if (a != 0 && (a >= 1e5 || a < 1e-3)) snprintf(b, n, "%.2g", v);
    else if (a >= 100 || v == floor(v)) snprintf(b, n, "%.0f", v);
    else if (a >= 10) snprintf(b, n, "%.1f", v);
    else snprintf(b, n, "%.3g", v);
}

/* The plot area and its data ranges (y in log10 units for a log axis). */
typedef struct frame {
    double ml, mt, pw, ph;
    double x0, x1, ly0, ly1;
    int logy;
} frame;

static double sx(const frame *g, double x) { return g->ml + (x - g->x0) / (g->x1 - g->x0) * g->pw; }
static double sy(const frame *g, double v) {
    return g->mt + g->ph - (((g->logy ? log10(v) : v) - g->ly0) / (g->ly1 - g->ly0)) * g->ph;
}
static int drawable(const rp_plot *p, double x, double y) { return isfinite(x) && isfinite(y) && !(p->logy && y <= 0); }

/* Data ranges with a margin; returns 0 when nothing can be drawn. */
static int frame_ranges(const rp_plot *p, frame *g) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int s = 0; s < p->n_series; s++)
        for (int i = 0; i < p->series[s].n; i++) {
            double x = p->series[s].x[i], y = p->series[s].y[i];
            if (!drawable(p, x, y)) continue;
            x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
        }
    for (int h = 0; h < p->n_hlines; h++)
        if (drawable(p, 0, p->hline_y[h])) y0 = fmin(y0, p->hline_y[h]), y1 = fmax(y1, p->hline_y[h]);
    if (!(x0 <= x1) || !(y0 <= y1)) return 0;
    if (x1 == x0) x0 -= 0.5, x1 += 0.5;
    double ly0 = p->logy ? log10(y0) : y0, ly1 = p->logy ? log10(y1) : y1;
    if (ly1 == ly0) {
        ly0 -= p->logy ? 0.1 : (fabs(ly0) > 0 ? fabs(ly0) * 0.1 : 1);
        ly1 += p->logy ? 0.1 : (fabs(ly1) > 0 ? fabs(ly1) * 0.1 : 1);
    }
    double padx = (x1 - x0) * 0.05, pady = (ly1 - ly0) * 0.08;
    g->x0 = x0 - padx, g->x1 = x1 + padx, g->ly0 = ly0 - pady, g->ly1 = ly1 + pady;
    return 1;
}

static void y_tick(FILE *f, const frame *g, double v) {
    char b[32];
    double Y = sy(g, v);
    fmt_num(b, sizeof b, v);
    fprintf(f, "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
               "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
            g->ml, Y, g->ml + g->pw, Y, g->ml - 5, Y + 4, b);
}

static void x_axis(FILE *f, const rp_plot *p, const frame *g) {
    if (p->xcats && p->n_xcats > 0) {
        int every = p->n_xcats > 16 ? (p->n_xcats + 15) / 16 : 1;
        for (int i = 0; i < p->n_xcats; i += every) {
            fprintf(f, "<text transform=\"translate(%.1f,%.1f) rotate(-40)\" text-anchor=\"end\" font-size=\"9\">",
                    sx(g, (double)i), g->mt + g->ph + 12);
            rp_html_escape(f, p->xcats[i]);
            fprintf(f, "</text>\n");
        }
        return;
    }
    char b[32];
    double st = nice_step(g->x1 - g->x0, 6);
    for (double v = ceil(g->x0 / st) * st; v <= g->x1 + 1e-9 * st; v += st) {
        double X = sx(g, v);
        fmt_num(b, sizeof b, fabs(v) < 1e-12 * st ? 0 : v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#e5e5e5\"/>"
                   "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%s</text>\n",
                X, g->mt, X, g->mt + g->ph, X, g->mt + g->ph + 15, b);
    }
}

static void y_axis(FILE *f, const frame *g) {
    if (g->logy) {
        for (int e = (int)floor(g->ly0); e <= (int)ceil(g->ly1); e++)
            for (int m = 1; m <= 9; m++) {
                double v = m * pow(10.0, e), lv = log10(v);
                if (lv < g->ly0 || lv > g->ly1) continue;
                if (g->ly1 - g->ly0 > 1.5 && m != 1 && m != 2 && m != 5) continue;
                y_tick(f, g, v);
            }
        return;
    }
    double st = nice_step(g->ly1 - g->ly0, 5);
    for (double v = ceil(g->ly0 / st) * st; v <= g->ly1 + 1e-9 * st; v += st) y_tick(f, g, fabs(v) < 1e-12 * st ? 0 : v);
}

static void ref_lines(FILE *f, const rp_plot *p, const frame *g) {
    for (int h = 0; h < p->n_hlines; h++) {
        if (!drawable(p, 0, p->hline_y[h])) continue;
        double Y = sy(g, p->hline_y[h]);
        fprintf(f, "<path d=\"M%.1f %.1fH%.1f\" stroke=\"#555\" stroke-dasharray=\"5 4\" fill=\"none\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#555\">",
                g->ml, Y, g->ml + g->pw, g->ml + g->pw - 4, Y - 4);
        rp_html_escape(f, p->hline_label[h]);
        fprintf(f, "</text>\n");
    }
}

/* One series: its line, its points (with a tooltip each) and its legend entry. Returns the points. */
static int draw_series(FILE *f, const rp_plot *p, const frame *g, int s) {
    const rp_series *se = &p->series[s];
    const char *col = palette[s % N_PALETTE];
    if (se->lines && se->n > 1) {
        fprintf(f, "<path class=\"series\" d=\"");
        int pen = 0;
        for (int i = 0; i < se->n; i++) {
            if (!drawable(p, se->x[i], se->y[i])) {
                pen = 0;
                continue;
            }
            fprintf(f, "%c%.1f %.1f", pen ? 'L' : 'M', sx(g, se->x[i]), sy(g, se->y[i]));
            pen = 1;
        }
        fprintf(f, "\" stroke=\"%s\" stroke-width=\"2\" fill=\"none\"/>\n", col);
    }
    int marks = 0;
    for (int i = 0; i < se->n; i++) {
        if (!drawable(p, se->x[i], se->y[i])) continue;
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>", sx(g, se->x[i]), sy(g, se->y[i]), col);
        rp_html_escape(f, se->name);
        fprintf(f, ": %g, %g</title></circle>\n", se->x[i], se->y[i]);
        marks++;
    }
    double LY = g->mt + 12 + 18 * s;
    fprintf(f, "<path d=\"M%g %.1fh18\" stroke=\"%s\" stroke-width=\"3\"/><text x=\"%g\" y=\"%.1f\">", g->ml + g->pw + 10,
            LY, col, g->ml + g->pw + 32, LY + 4);
    rp_html_escape(f, se->name);
    fprintf(f, "</text>\n");
    return marks;
}

int rp_svg_plot(FILE *f, const rp_plot *p) {
    int W = p->width > 0 ? p->width : 560, H = p->height > 0 ? p->height : 340;
    frame g = {.ml = 64, .mt = 34, .logy = p->logy};
    /* the legend on the right gets room for its longest name (about 6.5 px a character at 11 px) */
    double mr = 150;
    for (int s = 0; s < p->n_series; s++) mr = fmax(mr, 40 + 6.5 * (double)strlen(p->series[s].name));
    g.pw = W - g.ml - fmin(mr, W / 2.0);
    g.ph = H - g.mt - 64;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n", W, H, W, H);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", W, H);
    fprintf(f, "<text x=\"%g\" y=\"20\" font-size=\"14\" font-weight=\"bold\">", g.ml);
    rp_html_escape(f, p->title);
    fprintf(f, "</text>\n");
    if (!frame_ranges(p, &g)) {
        fprintf(f, "<text x=\"%g\" y=\"%g\" fill=\"#888\">no data</text>\n</svg>\n", g.ml + g.pw / 2 - 20, g.mt + g.ph / 2);
        return 0;
    }
    fprintf(f, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#333\"/>\n", g.ml, g.mt, g.pw, g.ph);
    x_axis(f, p, &g);
    y_axis(f, &g);
    fprintf(f, "<text x=\"%g\" y=\"%d\" text-anchor=\"middle\">", g.ml + g.pw / 2, H - 8);
    rp_html_escape(f, p->xlabel);
    fprintf(f, "</text>\n<text transform=\"translate(14,%g) rotate(-90)\" text-anchor=\"middle\">", g.mt + g.ph / 2);
    rp_html_escape(f, p->ylabel);
    fprintf(f, "%s</text>\n", p->logy ? " (log scale)" : "");
    ref_lines(f, p, &g);
    int marks = 0;
    for (int s = 0; s < p->n_series; s++) marks += draw_series(f, p, &g, s);
    fprintf(f, "</svg>\n");
    return marks;
}
