/* harp: command-line front end over libharp. Thin: every subcommand parses its flags, calls the
 * library, prints results on stdout (--json for scripts) and progress/errors on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

#define HARP_CMD_ENTRY(name, help) {#name, help, cmd_##name},
static const cli_sub commands[] = {HARP_COMMAND_LIST(HARP_CMD_ENTRY)};
#undef HARP_CMD_ENTRY
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f, "harp %s — rotation-based 2-4 bit quantization of Llama-family models\n\n", harp_version_string());
    fprintf(f, "usage: harp <command> [options]   (harp <command> --help for its options)\n\ncommands:\n");
    cli_list_subs(f, commands, N_COMMANDS);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("harp %s\n", harp_version_string());
        return CLI_EXIT_OK;
    }
    const cli_sub *c = cli_find_sub(commands, N_COMMANDS, argv[1]);
    if (!c) cli_die(CLI_EXIT_USAGE, "unknown command '%s' (harp --help lists them)", argv[1]);
    static char name[64];
    snprintf(name, sizeof name, "harp %s", c->name);
    cli_cmd_name = name;
    /* HARP_LOG=info|debug: the library's informational lines (timings, fallbacks) on stderr */
    const char *lv = getenv("HARP_LOG");
    cli_install_log(lv && !strcmp(lv, "debug") ? 2 : lv && !strcmp(lv, "info") ? 1 : 0);
    return c->fn(argc - 1, argv + 1);
}
