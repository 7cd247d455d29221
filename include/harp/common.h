/* Core types shared by every module: status codes, logging, progress, threads. */
#ifndef HARP_COMMON_H
#define HARP_COMMON_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

#define HARP_VERSION_MAJOR 0
#define HARP_VERSION_MINOR 1
#define HARP_VERSION_PATCH 0

/* ---------------------------------------------------------------------------------------------
 * Status codes. Values only grow; a removed code stays reserved. */
typedef enum harp_status {
    HARP_OK = 0,
    HARP_ERR_INVALID_ARG = 1,  /* bad parameter from the caller (flag out of range, NULL, ...)   */
    HARP_ERR_IO = 2,           /* cannot open/read/write/rename a path                           */
    HARP_ERR_FORMAT = 3,       /* corrupt or truncated file, bad header, bad JSON                */
    HARP_ERR_UNSUPPORTED = 4,  /* valid but unsupported: dtype, architecture, feature             */
    HARP_ERR_SHAPE = 5,        /* tensor shape does not match what the config implies             */
    HARP_ERR_NOT_FOUND = 6,    /* missing tensor, key or file                                     */
    HARP_ERR_NUMERIC = 7,      /* NaN/Inf in input, non-SPD matrix that damping could not repair  */
    HARP_ERR_OOM = 8,          /* allocation failed                                               */
    HARP_ERR_MISMATCH = 9,     /* inputs from different models/runs combined                      */
    HARP_ERR_CANCELLED = 10,   /* progress callback asked to stop                                 */
    HARP_ERR_NO_DEVICE = 11,   /* GPU backend requested but not available                         */
    HARP_ERR_INTERNAL = 12     /* invariant broken: a bug in harp                                 */
} harp_status;

/* Short English name of a status ("format error", ...). Never NULL. */
const char *harp_status_str(harp_status s);

/* ---------------------------------------------------------------------------------------------
 * Logging. The library reports through one process-wide callback. Without one, messages at
 * WARN and above go to stderr (never stdout). The most recent ERROR message of the calling thread
 * is kept and returned by harp_last_error(): CLIs print that single line on failure. */
typedef enum harp_log_level {
    HARP_LOG_DEBUG = 0,
    HARP_LOG_INFO = 1,
    HARP_LOG_WARN = 2,
    HARP_LOG_ERROR = 3,
    HARP_LOG_NONE = 4
} harp_log_level;

typedef void (*harp_log_fn)(harp_log_level level, const char *msg, void *user);

void harp_set_log(harp_log_fn fn, void *user);
void harp_set_log_level(harp_log_level min_level);
const char *harp_last_error(void);   /* "" when none */
void harp_clear_error(void);

/* ---------------------------------------------------------------------------------------------
 * Progress. Long operations call this with (stage, done, total); returning non-zero cancels the
 * operation (it then returns HARP_ERR_CANCELLED). The CLI turns these into an ETA line on stderr. */
typedef int (*harp_progress_fn)(void *user, const char *stage, int64_t done, int64_t total);

/* Threads used by CPU kernels and by OpenBLAS (0 = all available cores; OpenBLAS keeps its own
 * setting then). */
void harp_set_threads(int n);
int harp_get_threads(void);

const char *harp_version_string(void);

/* Frees memory that the library handed to the caller (token arrays, strings, results). */
void harp_free(void *p);

/* ---------------------------------------------------------------------------------------------
 * Small services the library uses itself and applications need too (the CLI, benchmarks). */

/* Reads a whole file into a malloc'd, NUL-terminated buffer (free with harp_free). */
harp_status harp_read_file(const char *path, char **data, size_t *size);
/* Writes data to path atomically: a temporary beside it, fsync, rename; a crash never leaves a
 * half-written file at path. */
harp_status harp_write_file_atomic(const char *path, const void *data, size_t n);
int harp_file_exists(const char *path);   /* 1 for a regular file */
int harp_dir_exists(const char *path);
harp_status harp_mkdir_p(const char *path);   /* mkdir -p */
double harp_time_s(void);                    /* monotonic seconds */
/* 1 if [p, p+n) is valid UTF-8 (no overlongs, no surrogates). */
int harp_utf8_valid(const char *p, size_t n);

#ifdef __cplusplus
}
#endif
#endif
