/* harp bench <name>: dispatch to the benchmarks in bench/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "commands.h"

#define HARP_BENCH_ENTRY(name, help) {#name, help, bench_##name},
static const cli_sub benches[] = {HARP_BENCH_LIST(HARP_BENCH_ENTRY)};
#undef HARP_BENCH_ENTRY
#define N_BENCHES (sizeof benches / sizeof benches[0])

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

const char *bench_shared_path(char *buf, size_t n, const char *rel) {
    const char *root = getenv("HARP_SHARED");
    snprintf(buf, n, "%s/%s", root && *root ? root : "../shared", rel);
    return buf;
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
        cli_list_subs(f, benches, N_BENCHES);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    const cli_sub *b = cli_find_sub(benches, N_BENCHES, argv[1]);
    if (!b) cli_die(CLI_EXIT_USAGE, "unknown benchmark '%s' (harp bench --help lists them)", argv[1]);
    static char name[64];
    snprintf(name, sizeof name, "harp bench %s", b->name);
    cli_cmd_name = name; /* messages read "harp bench gemv: error: ..." */
    return b->fn(argc - 1, argv + 1);
}
