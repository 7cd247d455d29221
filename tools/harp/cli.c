/* Shared CLI helpers (see cli.h). */
#define _POSIX_C_SOURCE 200809L /* isatty under clang -std=c11 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *cli_cmd_name = "harp";
static int g_quiet;

void cli_die(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cli_progress_break();
    fprintf(stderr, "%s: error: ", cli_cmd_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

void cli_check(harp_status st) {
    if (st == HARP_OK) return;
    const char *msg = harp_last_error();
    if (msg && *msg) cli_die(CLI_EXIT_FAIL, "%s", msg);
    cli_die(CLI_EXIT_FAIL, "%s", harp_status_str(st));
}

/* ---- options --------------------------------------------------------------------------------- */

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts) {
    char spec[64];
    /* ':' first (after a leading '-' or '+') makes getopt report a missing value as ':' */
    if (shortopts[0] == '-' || shortopts[0] == '+') snprintf(spec, sizeof spec, "%c:%s", shortopts[0], shortopts + 1);
    else snprintf(spec, sizeof spec, ":%s", shortopts);
    opterr = 0;
    int c = getopt_long(argc, argv, spec, longopts, NULL);
    const char *opt = optind > 1 && optind - 1 < argc ? argv[optind - 1] : "?";
    if (c == '?') {
        if (optopt) cli_die(CLI_EXIT_USAGE, "unknown option '-%c' (see %s --help)", optopt, cli_cmd_name);
        cli_die(CLI_EXIT_USAGE, "unknown option '%s' (see %s --help)", opt, cli_cmd_name);
    }
    if (c == ':') {
        if (opt[0] == '-' && opt[1] == '-') cli_die(CLI_EXIT_USAGE, "%s needs a value", opt);
        cli_die(CLI_EXIT_USAGE, "-%c needs a value", optopt);
    }
    if (c == -1 && optind < argc) cli_die(CLI_EXIT_USAGE, "unexpected argument '%s' (see %s --help)", argv[optind], cli_cmd_name);
    return c;
}

void cli_require(const void *value, const char *what) {
    if (!value) cli_die(CLI_EXIT_USAGE, "missing %s; see %s --help", what, cli_cmd_name);
}

void cli_only_with(int given, const char *flag, const char *scope) {
    if (given) cli_die(CLI_EXIT_USAGE, "%s applies only to %s", flag, scope);
}

void cli_set_threads(const char *val) { harp_set_threads((int)cli_parse_long("--threads", val, 0, 4096)); }

const cli_sub *cli_find_sub(const cli_sub *t, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(name, t[i].name)) return &t[i];
    return NULL;
}

void cli_list_subs(FILE *f, const cli_sub *t, size_t n) {
    for (size_t i = 0; i < n; i++) fprintf(f, "  %-10s %s\n", t[i].name, t[i].help);
}

long cli_parse_long(const char *flag, const char *val, long lo, long hi) {
    if (!val) cli_die(CLI_EXIT_USAGE, "%s needs a value", flag);
    char *end = NULL;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end != '\0')
        cli_die(CLI_EXIT_USAGE, "%s: '%s' is not an integer", flag, val);
    if (v < lo || v > hi) cli_die(CLI_EXIT_USAGE, "%s: %ld is out of range [%ld, %ld]", flag, v, lo, hi);
    return v;
}

harp_qtype cli_parse_kv(const char *flag, const char *val) {
    if (val && !strcmp(val, "f32")) return HARP_QTYPE_F32;
    if (val && !strcmp(val, "f16")) return HARP_QTYPE_F16;
    cli_die(CLI_EXIT_USAGE, "%s: '%s' is not f32 or f16", flag, val ? val : "");
}

double cli_parse_double(const char *flag, const char *val, double lo, double hi) {
    if (!val) cli_die(CLI_EXIT_USAGE, "%s needs a value", flag);
    char *end = NULL;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end != '\0' || !isfinite(v))
        cli_die(CLI_EXIT_USAGE, "%s: '%s' is not a number", flag, val);
    if (v < lo || v > hi) cli_die(CLI_EXIT_USAGE, "%s: %g is out of range [%g, %g]", flag, v, lo, hi);
    return v;
}

uint64_t cli_parse_u64(const char *flag, const char *val) {
    if (!val) cli_die(CLI_EXIT_USAGE, "%s needs a value", flag);
    char *end = NULL;
    errno = 0;
    if (val[0] == '-') cli_die(CLI_EXIT_USAGE, "%s: '%s' must not be negative", flag, val);
    unsigned long long v = strtoull(val, &end, 0);
    if (errno || end == val || *end != '\0') cli_die(CLI_EXIT_USAGE, "%s: '%s' is not an integer", flag, val);
    return (uint64_t)v;
}

/* ---- progress -------------------------------------------------------------------------------- */

void cli_set_quiet(int quiet) { g_quiet = quiet; }
int cli_quiet(void) { return g_quiet; }

static void fmt_dur(char *b, size_t n, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(b, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(b, n, "%02ld:%02ld", t / 60, t % 60);
}

static struct {
    int started, open;            /* a run is under way; an in-place line lacks its newline */
    double t0, last_print, t_begin;
    int64_t done0, last_done, total;
} g_prog;

/* Seconds between progress lines: 0.2 on a terminal (in place), else HARP_PROGRESS_SECONDS (default 5). */
static double progress_interval(int tty) {
    if (tty) return 0.2;
    const char *e = getenv("HARP_PROGRESS_SECONDS");
    char *end;
    double v = e && *e ? strtod(e, &end) : 5.0;
    return e && *e && *end == '\0' && v >= 0 ? v : 5.0;
}

void cli_progress_begin(void) { g_prog.t_begin = harp_time_s(); }

void cli_progress_break(void) {
    if (g_prog.open) fputc('\n', stderr);
    g_prog.open = 0;
}

void cli_progress_line(const char *stage, int64_t done, int64_t total, const char *extra) {
    if (g_quiet) return;
    double t = harp_time_s();
    int restart = !g_prog.started || done < g_prog.last_done || total != g_prog.total;
    if (restart) {
        cli_progress_break();
        g_prog.started = 1;
        g_prog.t0 = g_prog.t_begin > 0 ? g_prog.t_begin : t;
        g_prog.done0 = g_prog.t_begin > 0 ? 0 : done;
        g_prog.t_begin = 0;
        g_prog.total = total;
    }
    g_prog.last_done = done;
    int tty = isatty(2), final = total > 0 && done >= total;
    if (!restart && !final && t - g_prog.last_print < progress_interval(tty)) return;
    g_prog.last_print = t;
    char el[32], eta[32];
    double elapsed = t - g_prog.t0;
    fmt_dur(el, sizeof el, elapsed);
    if (done > g_prog.done0 && total > 0)
        fmt_dur(eta, sizeof eta, elapsed / (double)(done - g_prog.done0) * (double)(total - done));
    else snprintf(eta, sizeof eta, "--:--");
    double pct = total > 0 ? 100.0 * (double)done / (double)total : 0.0;
    fprintf(stderr, "%s%s %lld/%lld %5.1f%% elapsed %s ETA %s%s%s%s", tty ? "\r" : "", stage, (long long)done,
            (long long)total, pct, el, eta, extra && *extra ? "  " : "", extra ? extra : "", tty ? "\033[K" : "");
    g_prog.open = tty && !final;
    if (!g_prog.open) fputc('\n', stderr);
    fflush(stderr);
}

int cli_progress(void *user, const char *stage, int64_t done, int64_t total) {
    (void)user;
    cli_progress_line(stage, done, total, NULL);
    return 0;
}

/* ---- log and output -------------------------------------------------------------------------- */

static void log_cb(harp_log_level level, const char *msg, void *user) {
    (void)user;
    /* Errors are printed once by cli_check from harp_last_error(); print the rest here. */
    if (level == HARP_LOG_ERROR) return;
    static const char *names[] = {"debug", "info", "warning", "error", ""};
    cli_progress_break();
    fprintf(stderr, "%s: %s: %s\n", cli_cmd_name, names[level], msg);
}

void cli_install_log(int verbose) {
    harp_set_log(log_cb, NULL);
    harp_set_log_level(verbose >= 2 ? HARP_LOG_DEBUG : verbose == 1 ? HARP_LOG_INFO : HARP_LOG_WARN);
}

void cli_json_string(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

void cli_json_str(FILE *f, const char *s) {
    if (s) cli_json_string(f, s, strlen(s));
    else fputs("null", f);
}

void cli_json_model_out(FILE *f, const char *model, const char *out) {
    fputs("\"model\": ", f);
    cli_json_str(f, model);
    fputs(", \"out\": ", f);
    cli_json_str(f, out);
}

void cli_json_quant(FILE *f, const harp_model_info *i) {
    if (!i->quant_method[0]) return;
    fprintf(f, ", \"method\": \"%s\", \"rotation\": \"%s\", \"bits\": %d, \"bpw\": %.6f", i->quant_algo,
            i->quant_rotation, i->quant_bits, i->quant_bpw);
}

void cli_read_text(const char *path, char **text, size_t *len) {
    cli_check(harp_read_file(path, text, len));
    if (*len == 0) cli_die(CLI_EXIT_FAIL, "%s: empty text file", path);
    if (!harp_utf8_valid(*text, *len)) cli_die(CLI_EXIT_FAIL, "%s: not valid UTF-8 text", path);
}

void cli_write_file(const char *path, const char *data, size_t n) { cli_check(harp_write_file_atomic(path, data, n)); }
