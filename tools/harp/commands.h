/* Subcommands of the harp CLI. Each lives in tools/harp/cmd_<name>.c and receives argv with
 * argv[0] = the subcommand name. Returns the process exit code. */
#ifndef HARP_COMMANDS_H
#define HARP_COMMANDS_H

#include <stddef.h>

#define HARP_COMMAND_LIST(X)                                                          \
    X(info, "print a model's architecture, shapes, dtypes, parameters, tokenizer")    \
    X(tokenize, "encode text to token ids (or count them)")                         \
    X(ppl, "perplexity (GPTQ/QuIP# protocol), KL divergence against saved logits")  \
    X(generate, "generate text from a prompt")                                      \
    X(calib, "collect per-layer Hessians from calibration text")                    \
    X(quantize, "quantize a model (RTN, GPTQ, QuIP#, HARP)")                        \
    X(zeroshot, "zero-shot accuracy: ARC-e/c, PIQA, HellaSwag, Winogrande")         \
    X(report, "HTML report with tables and plots from JSON results")                \
    X(bench, "benchmarks: ppl, rotate, gemv, ...")

#define HARP_DECLARE_CMD(name, help) int cmd_##name(int argc, char **argv);
HARP_COMMAND_LIST(HARP_DECLARE_CMD)
#undef HARP_DECLARE_CMD

/* quantize --method wakv (cmd_quantize_wakv.c) */
int cmd_quantize_wakv(int argc, char **argv);
void quantize_wakv_refuse_flags(int argc, char **argv, const char *method);
const char *quantize_method_arg(int argc, char **argv);
/* --ppl after quantizing: perplexity of the in-memory quantized model m on text (ctx, max_chunks,
 * save_logits as harp ppl's); exits on error. */
struct harp_model;
struct harp_ppl_result;
void quantize_ppl(struct harp_model *m, const char *text, size_t len, int ctx, int max_chunks, const char *save_logits,
                  struct harp_ppl_result *pr);

#endif
