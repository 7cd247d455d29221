/* harp: command-line front end over libharp. Thin: every subcommand parses its flags, calls the
 * library, prints results on stdout (--json for scripts) and progress/errors on stderr. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

/* Subcommands still being built are weak placeholders that say so; a cmd_<name>.c file replaces
 * them at link time. */
#define HARP_WEAK_CMD(name, help)                                                       \
    __attribute__((weak)) int cmd_##name(int argc, char **argv) {                        \
        (void)argc;                                                                       \
        (void)argv;                                                                       \
        fprintf(stderr, "harp %s: not available in this build yet\n", #name);            \
        return CLI_EXIT_USAGE;                                                            \
    }
HARP_COMMAND_LIST(HARP_WEAK_CMD)
#undef HARP_WEAK_CMD

typedef struct {
    const char *name, *help;
    int (*fn)(int, char **);
} command;

#define HARP_CMD_ENTRY(name, help) {#name, help, cmd_##name},
static const command commands[] = {HARP_COMMAND_LIST(HARP_CMD_ENTRY)};
#undef HARP_CMD_ENTRY

static void usage(FILE *f) {
    fprintf(f, "harp %s — rotation-based 2-4 bit quantization of Llama-family models\n\n", harp_version_string());
    fprintf(f, "usage: harp <command> [options]   (harp <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
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
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (!strcmp(argv[1], commands[i].name)) {
            cli_cmd_name = commands[i].name;
            cli_install_log(0);
            return commands[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "harp: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
