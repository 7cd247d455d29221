/* Logging, last-error bookkeeping and status names. */
#include <stdio.h>
#include <string.h>

#include "core.h"

static harp_log_fn g_log_fn;
static void *g_log_user;
static harp_log_level g_min_level = HARP_LOG_WARN;
static _Thread_local char t_last_error[1024];

void harp_set_log(harp_log_fn fn, void *user) {
    g_log_fn = fn;
    g_log_user = user;
}

void harp_set_log_level(harp_log_level min_level) { g_min_level = min_level; }

const char *harp_last_error(void) { return t_last_error; }

void harp_clear_error(void) { t_last_error[0] = '\0'; }

void harp_logv(harp_log_level level, const char *fmt, va_list ap) {
    if (level < g_min_level) return;
    char buf[2048];
    vsnprintf(buf, sizeof buf, fmt, ap);
    if (g_log_fn) {
        g_log_fn(level, buf, g_log_user);
    } else if (level >= HARP_LOG_WARN) {
        static const char *names[] = {"debug", "info", "warning", "error", ""};
        fprintf(stderr, "harp: %s: %s\n", names[level], buf);
    }
}

void harp_log(harp_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    harp_logv(level, fmt, ap);
    va_end(ap);
}

harp_status harp_err(harp_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_last_error, sizeof t_last_error, fmt, ap);
    va_end(ap);
    harp_log(HARP_LOG_ERROR, "%s", t_last_error);
    return st;
}

const char *harp_status_str(harp_status s) {
    switch (s) {
    case HARP_OK: return "ok";
    case HARP_ERR_INVALID_ARG: return "invalid argument";
    case HARP_ERR_IO: return "I/O error";
    case HARP_ERR_FORMAT: return "format error";
    case HARP_ERR_UNSUPPORTED: return "unsupported";
    case HARP_ERR_SHAPE: return "shape mismatch";
    case HARP_ERR_NOT_FOUND: return "not found";
    case HARP_ERR_NUMERIC: return "numerical error";
    case HARP_ERR_OOM: return "out of memory";
    case HARP_ERR_MISMATCH: return "inputs do not match";
    case HARP_ERR_CANCELLED: return "cancelled";
    case HARP_ERR_NO_DEVICE: return "no GPU device";
    case HARP_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *harp_version_string(void) {
#define HARP_STR2(x) #x
#define HARP_STR(x) HARP_STR2(x)
    return HARP_STR(HARP_VERSION_MAJOR) "." HARP_STR(HARP_VERSION_MINOR) "." HARP_STR(HARP_VERSION_PATCH);
}
