/* Shared by the CPU and GPU perplexity drivers: the final statistics of a run, so both report
 * ppl, its standard error and the KLD figures with one set of formulas. */
#ifndef HARP_EVAL_PPL_INTERNAL_H
#define HARP_EVAL_PPL_INTERNAL_H

#include <stdint.h>

#include "harp/eval.h"
#include "harp/model.h"

/* Runs an ids-level perplexity driver over a text: checks it (non-empty, UTF-8, tokenizer present),
 * tokenizes with BOS, calls run(m, ids, n, user, out), then sets out's wall seconds and tokens/s
 * from the start. fn names the public entry point in the NULL-argument error. */
typedef harp_status (*harp_ppl_ids_fn)(harp_model *m, const int32_t *ids, size_t n, void *user, harp_ppl_result *out);
harp_status harp_ppl_over_text(harp_model *m, const char *text, size_t len, const char *fn, harp_ppl_ids_fn run,
                               void *user, harp_ppl_result *out);

/* Fills out's summary fields from the running sums (NLL and KLD sums and sums of squares over the
 * scored tokens, top-1 agreements); has_kld selects the KLD fields. t0 = harp_time_s() at start. */
void harp_ppl_finish(harp_ppl_result *out, double sum, double sum2, int64_t scored, int n_chunks, int ctx,
                     int has_kld, double ksum, double ksum2, int64_t agree, double t0);

#endif
