/* harp info: architecture, shapes, dtypes, parameter count and tokenizer of a model. */
#include <stdio.h>

#include "cli.h"
#include "commands.h"

static void info_usage(FILE *f) {
    fprintf(f, "usage: harp info -m MODEL [--json]\n\n"
               "  -m, --model PATH  Hugging Face folder, harp quantized folder or llama2.c .bin\n"
               "      --json        one JSON object on stdout\n"
               "  -h, --help\n");
}

int cmd_info(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"json", no_argument, 0, 1},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *model = NULL;
    int json = 0, o;
    while ((o = cli_getopt(argc, argv, "m:h", opts)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 1: json = 1; break;
        case 'h': info_usage(stdout); return CLI_EXIT_OK;
        }
    }
    cli_require(model, "-m MODEL");
    harp_model *m = NULL;
    cli_check(harp_model_open(model, NULL, &m));
    harp_model_info i;
    cli_check(harp_model_get_info(m, &i));
    const char *rope = i.rope_layout == HARP_ROPE_HALF ? "rotate-half" : "interleaved";
    if (json) {
        printf("{\"arch\": \"%s\", \"source_format\": \"%s\", \"weight_dtype\": \"%s\", \"dim\": %d, \"hidden_dim\": %d, "
               "\"n_layers\": %d, \"n_heads\": %d, \"n_kv_heads\": %d, \"head_dim\": %d, \"vocab_size\": %d, "
               "\"max_seq_len\": %d, \"norm_eps\": %g, \"rope_theta\": %g, \"rope_layout\": \"%s\", "
               "\"tied_embeddings\": %s, \"qkv_bias\": %s, \"bos_id\": %d, \"eos_id\": %d, \"n_params\": %lld, "
               "\"tokenizer\": \"%s\", \"quantization\": \"%s\"",
               i.arch, i.source_format, i.weight_dtype, i.dim, i.hidden_dim, i.n_layers, i.n_heads, i.n_kv_heads,
               i.head_dim, i.vocab_size, i.max_seq_len, i.norm_eps, i.rope_theta, rope,
               i.tied_embeddings ? "true" : "false", i.qkv_bias ? "true" : "false", i.bos_id, i.eos_id,
               (long long)i.n_params, i.tokenizer_kind, harp_model_quant_desc(m));
        cli_json_quant(stdout, &i);
        printf("}\n");
    } else {
        int qd = i.n_heads * i.head_dim, kvd = i.n_kv_heads * i.head_dim;
        printf("model:        %s\n", model);
        if (i.quant_method[0]) {
            printf("architecture: %s (%s)\n", i.arch, i.source_format);
            printf("weights:      %s %d-bit, rotation %s: %.4f bits per weight stored (decoder linears; embeddings, "
                   "head and norms %s)\n",
                   i.quant_algo, i.quant_bits, i.quant_rotation, i.quant_bpw, i.weight_dtype);
        } else {
            printf("architecture: %s (%s, weights %s)\n", i.arch, i.source_format, i.weight_dtype);
        }
        printf("parameters:   %lld (%.2f M)\n", (long long)i.n_params, (double)i.n_params / 1e6);
        printf("layers:       %d, hidden %d, intermediate %d\n", i.n_layers, i.dim, i.hidden_dim);
        printf("attention:    %d query heads, %d kv heads, head_dim %d%s\n", i.n_heads, i.n_kv_heads, i.head_dim,
               i.qkv_bias ? ", q/k/v biases" : "");
        printf("shapes:       q %dx%d, k/v %dx%d, o %dx%d, gate/up %dx%d, down %dx%d\n", qd, i.dim, kvd, i.dim, i.dim,
               qd, i.hidden_dim, i.dim, i.dim, i.hidden_dim);
        printf("embedding:    %d x %d, head %s\n", i.vocab_size, i.dim, i.tied_embeddings ? "tied" : "separate");
        printf("rope:         theta %g, %s layout; rms_norm_eps %g; max positions %d\n", i.rope_theta, rope, i.norm_eps,
               i.max_seq_len);
        printf("tokens:       bos %d, eos %d; tokenizer %s\n", i.bos_id, i.eos_id, i.tokenizer_kind);
        if (harp_model_quant_desc(m)[0]) printf("quantization: %s\n", harp_model_quant_desc(m));
    }
    harp_model_free(m);
    return CLI_EXIT_OK;
}
