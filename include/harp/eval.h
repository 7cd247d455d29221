/* Perplexity and KL-divergence evaluation (GPTQ/QuIP# protocol). Owned by src/eval/. */
#ifndef HARP_EVAL_H
#define HARP_EVAL_H
#include <stddef.h>
#include <stdint.h>
#include "common.h"
#include "model.h"
#include "qtype.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct harp_ppl_params {
    int ctx;                     /* window length in tokens (default 512)                      */
    int max_chunks;              /* 0 = all windows                                            */
    const char *save_logits;     /* write every scored position's logits here (NULL = no)      */
    const char *kld_base;        /* compare against logits saved by a base model (NULL = no)    */
    /* Reference model run on the same windows beside this one: KL(P_ref || P_this) and top-1
     * agreement without a logits file (NULL = no; not with kld_base). Same vocabulary; it is
     * evaluated on the same device as this model (the CPU, or the GPU in harp_eval_ppl_gpu). */
    harp_model *kld_ref;
    harp_progress_fn progress;   /* per window; may be NULL                                    */
    void *progress_user;
    /* After each window: its mean NLL and the running perplexity over windows 0..i (may be NULL). */
    void (*on_chunk)(void *user, int i, int n_chunks, double chunk_nll, double running_ppl);
    void *on_chunk_user;
    /* KV cache elements of the windows: HARP_QTYPE_F32 (default, on every backend) or HARP_QTYPE_F16
     * (what an fp16 cache costs in perplexity); a W/A/KV model's own KV quantizers take precedence. */
    harp_qtype kv_qtype;
} harp_ppl_params;

harp_ppl_params harp_ppl_default_params(void);

typedef struct harp_ppl_result {
    double ppl, nll_mean, ppl_stderr;
    int64_t n_tokens_scored;
    int n_chunks, ctx;
    double seconds, tokens_per_second;
    double *chunk_nll;           /* n_chunks mean NLLs, malloc'd: harp_free                    */
    int has_kld;
    double kld_mean, kld_stderr, top1_agree;   /* KLD(base || this) in nats per scored position */
} harp_ppl_result;

/* text: the whole file (UTF-8). Tokenized once with BOS prepended, cut into non-overlapping
 * windows of ctx tokens, remainder dropped; mean NLL over the ctx-1 predictions of each window. */
harp_status harp_eval_ppl(harp_model *m, const char *text, size_t len, const harp_ppl_params *p,
                  harp_ppl_result *out);
/* Same on an already tokenized stream (ids must already start with BOS when the protocol wants it). */
harp_status harp_eval_ppl_ids(harp_model *m, const int32_t *ids, size_t n_ids, const harp_ppl_params *p,
                      harp_ppl_result *out);
void harp_ppl_result_free(harp_ppl_result *r);

#ifdef __cplusplus
}
#endif
#endif
