/* harp bench <name>: dispatch to the benchmarks in bench/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "commands.h"

/* A benchmark whose bench/bench_<name>.c has not landed yet is a weak placeholder. */
#define HARP_WEAK_BENCH(name, help)                                                 \
    __attribute__((weak)) int bench_##name(int argc, char **argv) {                 \
        (void)argc;                                                                 \
        (void)argv;                                                                 \
        fprintf(stderr, "harp bench %s: not available in this build yet\n", #name); \
        return CLI_EXIT_USAGE;                                                      \
    }
HARP_BENCH_LIST(HARP_WEAK_BENCH)
#undef HARP_WEAK_BENCH

typedef struct {
    const char *name, *help;
    int (*fn)(int, char **);
} bench_entry;

#define HARP_BENCH_ENTRY(name, help) {#name, help, bench_##name},
static const bench_entry benches[] = {HARP_BENCH_LIST(HARP_BENCH_ENTRY)};
#undef HARP_BENCH_ENTRY

long long bench_peak_rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

int bench_next_shape(const char **p, long *m, long *n) {
    if (!**p) return 0;
    char *end;
    *m = strtol(*p, &end, 10);
    if (end == *p || (*end != 'x' && *end != 'X')) cli_die(CLI_EXIT_USAGE, "--shapes: bad entry near '%s'", *p);
    *p = end + 1;
    *n = strtol(*p, &end, 10);
    if (end == *p || *m < 1 || *n < 1 || *m > 65536 || *n > 65536)
        cli_die(CLI_EXIT_USAGE, "--shapes: bad entry near '%s'", *p);
    *p = *end == ',' ? end + 1 : end;
    return 1;
}

int cmd_bench(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: harp bench <name> [options]\n\nbenchmarks:\n");
        for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
            fprintf(f, "  %-10s %s\n", benches[i].name, benches[i].help);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
        if (!strcmp(argv[1], benches[i].name)) {
            static char name[64];
            snprintf(name, sizeof name, "bench %s", benches[i].name);
            cli_cmd_name = name; /* messages read "harp bench gemv: error: ..." */
            return benches[i].fn(argc - 1, argv + 1);
        }
    cli_die(CLI_EXIT_USAGE, "unknown benchmark '%s' (harp bench --help lists them)", argv[1]);
}
