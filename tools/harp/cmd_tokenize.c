/* harp tokenize: encode text with a model's tokenizer (or a bare tokenizer file) and print the
 * ids, their count, or JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: harp tokenize (-m MODEL | --tokenizer FILE) (-p TEXT | -f FILE) [options]\n"
            "\n"
            "Encodes UTF-8 text to token ids; prints them space-separated on one line.\n"
            "\n"
            "  -m, --model PATH      model folder (tokenizer.model, else tokenizer.json) or llama2.c\n"
            "                        checkpoint (tokenizer.bin or tok*.bin beside it)\n"
            "  -t, --tokenizer FILE  a bare tokenizer.model, tokenizer.json or tokenizer.bin\n"
            "  -p, --prompt TEXT     text to encode\n"
            "  -f, --file FILE       encode the whole file as one string\n"
            "      --bos             prepend the BOS id (default: off, the text's own ids only)\n"
            "      --vocab N         vocabulary size for a llama2.c tokenizer.bin (default: from the\n"
            "                        model header, else every entry of the file)\n"
            "      --count           print only the number of ids\n"
            "      --json            print {\"n_tokens\":N,\"ids\":[...]} ({\"n_tokens\":N} with --count)\n"
            "      --pieces          print the piece string of each id instead of the id\n"
            "  -h, --help            this help\n");
}

int cmd_tokenize(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},  {"tokenizer", required_argument, NULL, 't'},
        {"prompt", required_argument, NULL, 'p'}, {"file", required_argument, NULL, 'f'},
        {"bos", no_argument, NULL, 'B'},          {"vocab", required_argument, NULL, 'V'},
        {"count", no_argument, NULL, 'c'},        {"json", no_argument, NULL, 'j'},
        {"pieces", no_argument, NULL, 'P'},       {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *model = NULL, *tokfile = NULL, *prompt = NULL, *file = NULL;
    int bos = 0, count = 0, json = 0, pieces = 0, vocab = 0, c;
    while ((c = cli_getopt(argc, argv, "m:t:p:f:h", opts)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 't': tokfile = optarg; break;
        case 'p': prompt = optarg; break;
        case 'f': file = optarg; break;
        case 'B': bos = 1; break;
        case 'V': vocab = (int)cli_parse_long("--vocab", optarg, 1, 1 << 24); break;
        case 'c': count = 1; break;
        case 'j': json = 1; break;
        case 'P': pieces = 1; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        }
    }
    if (!!model + !!tokfile != 1) cli_die(CLI_EXIT_USAGE, "give exactly one of -m MODEL or --tokenizer FILE");
    if (!!prompt + !!file != 1) cli_die(CLI_EXIT_USAGE, "give exactly one of -p TEXT or -f FILE");
    if (pieces && (count || json)) cli_die(CLI_EXIT_USAGE, "--pieces cannot be combined with --count/--json");

    harp_tokenizer *t = NULL;
    cli_check(model ? harp_tokenizer_open_for_model(model, vocab, &t)
                    : harp_tokenizer_open(tokfile, vocab, &t));
    char *text = NULL;
    size_t len;
    if (file) cli_check(harp_read_file(file, &text, &len));
    else len = strlen(prompt);
    int32_t *ids;
    size_t n;
    cli_check(harp_tokenize(t, file ? text : prompt, len, bos, &ids, &n));
    if (json) {
        printf("{\"n_tokens\":%zu", n);
        if (!count) {
            printf(",\"ids\":[");
            for (size_t i = 0; i < n; i++) printf(i ? ",%d" : "%d", (int)ids[i]);
            printf("]");
        }
        printf("}\n");
    } else if (count) {
        printf("%zu\n", n);
    } else if (pieces) {
        for (size_t i = 0; i < n; i++) printf(i ? " %s" : "%s", harp_tokenizer_piece(t, ids[i]));
        printf("\n");
    } else {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
        printf("\n");
    }
    harp_free(ids);
    harp_free(text);
    harp_tokenizer_free(t);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
