/* Shared CLI helpers (see cli.h). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under clang -std=c11 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *cli_cmd_name = "harp";
static int g_quiet;

void cli_die(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "harp %s: error: ", cli_cmd_name);
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

void cli_set_quiet(int quiet) { g_quiet = quiet; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_dur(char *b, size_t n, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(b, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(b, n, "%02ld:%02ld", t / 60, t % 60);
}

int cli_progress(void *user, const char *stage, int64_t done, int64_t total) {
    (void)user;
    static char last_stage[128];
    static double t0, last_print;
    if (g_quiet) return 0;
    double t = now_s();
    if (strncmp(last_stage, stage, sizeof last_stage - 1) != 0 || done == 0) {
        snprintf(last_stage, sizeof last_stage, "%s", stage);
        t0 = t;
        last_print = 0;
    }
    int tty = isatty(2);
    double interval = tty ? 0.2 : 5.0;
    int final = total > 0 && done >= total;
    if (!final && t - last_print < interval && done != 0) return 0;
    last_print = t;
    char el[32], eta[32];
    double elapsed = t - t0;
    fmt_dur(el, sizeof el, elapsed);
    if (done > 0 && total > 0) fmt_dur(eta, sizeof eta, elapsed / (double)done * (double)(total - done));
    else snprintf(eta, sizeof eta, "--:--");
    double pct = total > 0 ? 100.0 * (double)done / (double)total : 0.0;
    fprintf(stderr, "%s%s %lld/%lld %5.1f%% elapsed %s ETA %s%s", tty ? "\r" : "", stage,
            (long long)done, (long long)total, pct, el, eta, (tty && !final) ? "   " : "\n");
    fflush(stderr);
    return 0;
}

static void log_cb(harp_log_level level, const char *msg, void *user) {
    (void)user;
    /* Errors are printed once by cli_check from harp_last_error(); print the rest here. */
    if (level == HARP_LOG_ERROR) return;
    static const char *names[] = {"debug", "info", "warning", "error", ""};
    fprintf(stderr, "harp %s: %s: %s\n", cli_cmd_name, names[level], msg);
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
