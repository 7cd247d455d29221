/* Shared helpers of the harp command-line tool: failing with one clear line, parsing numeric
 * flags with range checks, progress with ETA on stderr. Only the CLI exits; the library never does. */
#ifndef HARP_CLI_H
#define HARP_CLI_H

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

/* Numeric flag parsing: whole string must parse and lie in [lo, hi], else usage error naming flag. */
long cli_parse_long(const char *flag, const char *val, long lo, long hi);
double cli_parse_double(const char *flag, const char *val, double lo, double hi);
uint64_t cli_parse_u64(const char *flag, const char *val);

/* Progress callback (harp_progress_fn): "\r<stage> done/total pct elapsed ETA" on stderr,
 * throttled; silent when the CLI runs with --quiet. user may be NULL. */
int cli_progress(void *user, const char *stage, int64_t done, int64_t total);
/* Writes s[0..n) as a JSON string literal (quotes, escapes) to f. */
void cli_json_string(FILE *f, const char *s, size_t n);
void cli_set_quiet(int quiet);

/* Name of the running subcommand, for messages ("ppl"). */
extern const char *cli_cmd_name;

/* Installs the log callback that prints library warnings/errors on stderr (verbosity from
 * -v/--verbose handled by main). */
void cli_install_log(int verbose);

#endif
