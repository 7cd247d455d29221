/* Shared by the CPU and GPU perplexity drivers: the final statistics of a run, so both report
 * ppl, its standard error and the KLD figures with one set of formulas. */
#ifndef HARP_EVAL_PPL_INTERNAL_H
#define HARP_EVAL_PPL_INTERNAL_H

#include <stdint.h>

#include "harp/eval.h"

/* Fills out's summary fields from the running sums (NLL and KLD sums and sums of squares over the
 * scored tokens, top-1 agreements); has_kld selects the KLD fields. t0 = harp_time_s() at start. */
void harp_ppl_finish(harp_ppl_result *out, double sum, double sum2, int64_t scored, int n_chunks, int ctx,
                     int has_kld, double ksum, double ksum2, int64_t agree, double t0);

#endif
