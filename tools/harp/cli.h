/* Shared helpers of the harp command-line tool: option parsing with one error style, failing with
 * one clear line, numeric flags with range checks, progress with elapsed time and ETA on stderr,
 * JSON output. Only the CLI exits; the library never does. */
#ifndef HARP_CLI_H
#define HARP_CLI_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "harp.h"

#if defined(__GNUC__) || defined(__clang__)
#define CLI_NORETURN __attribute__((noreturn))
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_NORETURN
#define CLI_PRINTF(a, b)
#endif

/* Exit codes: 0 ok, 1 runtime failure (bad file, numeric problem), 2 usage error. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

/* Prints "harp <cmd>: error: <msg>" on stderr and exits with code. */
CLI_NORETURN void cli_die(int code, const char *fmt, ...) CLI_PRINTF(2, 3);
/* If st != HARP_OK: prints the library's last error (one line naming file and problem), exits 1. */
void cli_check(harp_status st);

/* getopt_long for every command. An unknown option, a missing value or a stray positional
 * argument is one line "harp <cmd>: error: ..." and exit 2 (never getopt's own message). Returns
 * the option's value, or -1 at the end of the options. */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);
/* Exits 2 with "missing <what>; see harp <cmd> --help" when value is NULL. */
void cli_require(const void *value, const char *what);
/* Exits 2 with "<flag> applies only to <scope>" when the flag was given (given != 0). */
void cli_only_with(int given, const char *flag, const char *scope);

/* --threads N: N in [0, 4096], 0 = all cores; sets the library's and OpenBLAS's thread count. */
void cli_set_threads(const char *val);

/* A subcommand table (harp <command>, harp bench <name>). */
typedef struct cli_sub {
    const char *name, *help;
    int (*fn)(int argc, char **argv);
} cli_sub;
/* The entry named name, or NULL. */
const cli_sub *cli_find_sub(const cli_sub *t, size_t n, const char *name);
/* "  name       help" lines. */
void cli_list_subs(FILE *f, const cli_sub *t, size_t n);

/* Numeric flag parsing: whole string must parse and lie in [lo, hi], else usage error naming flag. */
long cli_parse_long(const char *flag, const char *val, long lo, long hi);
double cli_parse_double(const char *flag, const char *val, double lo, double hi);
uint64_t cli_parse_u64(const char *flag, const char *val);
/* --kv f32|f16: the KV cache's element type (harp_ctx_params.kv_qtype), else a usage error. */
harp_qtype cli_parse_kv(const char *flag, const char *val);

/* Progress of long commands, one rule for all: a line on stderr
 *   "<stage> done/total pct elapsed MM:SS ETA MM:SS [extra]"
 * refreshed in place on a terminal (at most 5 times a second) and printed every 5 s otherwise
 * (every HARP_PROGRESS_SECONDS seconds when that is set, 0 = every update),
 * always once at the end; the ETA is recomputed at every refresh from the rate since the run
 * started. A new run starts when done goes back or total changes. Silent after cli_set_quiet(1)
 * (-q); --json does not change it (it changes stdout only). */
void cli_progress_line(const char *stage, int64_t done, int64_t total, const char *extra);
/* Marks the start of work whose first progress report comes only after its first step (done > 0):
 * that run's elapsed time and rate then count from here. */
void cli_progress_begin(void);
/* The same as a harp_progress_fn for the library's long calls (user is unused). */
int cli_progress(void *user, const char *stage, int64_t done, int64_t total);
/* Ends an unfinished in-place progress line, so that a message printed next starts on its own line. */
void cli_progress_break(void);
void cli_set_quiet(int quiet);
int cli_quiet(void);

/* Reads a UTF-8 text file whole (free with harp_free); an unreadable, empty or non-UTF-8 file is one
 * line naming it and exit 1. */
void cli_read_text(const char *path, char **text, size_t *len);

/* Writes s[0..n) as a JSON string literal (quotes, escapes) to f. */
void cli_json_string(FILE *f, const char *s, size_t n);
/* The same for a NUL-terminated string, NULL as null. */
void cli_json_str(FILE *f, const char *s);
/* `"model": <model>, "out": <out>` (no separators around it): the members every quantize row opens with. */
void cli_json_model_out(FILE *f, const char *model, const char *out);
/* For a harp quantized model: `, "method": .., "rotation": .., "bits": .., "bpw": ..` (the members
 * harp report labels and plots by); nothing for a full-precision model. */
void cli_json_quant(FILE *f, const harp_model_info *info);
/* Writes data to path atomically (harp_write_file_atomic); exits 1 with the library's message on failure. */
void cli_write_file(const char *path, const char *data, size_t n);

/* Who speaks in messages: "harp", "harp ppl", "harp bench gemv". */
extern const char *cli_cmd_name;

/* Installs the log callback that prints library warnings/errors on stderr (verbosity from
 * -v/--verbose handled by main). */
void cli_install_log(int verbose);

#endif
