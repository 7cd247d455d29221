/* Zero-shot multiple-choice evaluation with lm-evaluation-harness scoring: ARC-Easy, ARC-Challenge,
 * PIQA, HellaSwag, Winogrande. Owned by the zeroshot module (src/eval/zeroshot*.c).
 *
 * Every item is a list of (context, continuation) requests, built exactly as the harness builds
 * them; the score of a choice is the summed log-probability of its continuation tokens given its
 * context. acc = argmax of the sums; acc_norm = argmax of sum / len(choice) where len counts the
 * Unicode code points of the harness's choice string (its `len(str)`); standard errors are the
 * sample standard deviation of the per-item 0/1 scores over sqrt(n) (the harness's mean_stderr). */
#ifndef HARP_ZEROSHOT_H
#define HARP_ZEROSHOT_H
#include <stddef.h>
#include <stdint.h>
#include "common.h"
#include "model.h"
#include "tokenizer.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum harp_zs_task {
    HARP_ZS_ARC_EASY,
    HARP_ZS_ARC_CHALLENGE,
    HARP_ZS_PIQA,
    HARP_ZS_HELLASWAG,
    HARP_ZS_WINOGRANDE,
    HARP_ZS_N_TASKS /* the count */
} harp_zs_task;

#define HARP_ZS_MAX_CHOICES 8

const char *harp_zs_task_name(harp_zs_task t);          /* "arc_easy", ... (harness names) */
int harp_zs_task_from_name(const char *name);           /* -1 when unknown                  */
/* File name(s) of a task inside the data folder: the items file and, for PIQA, the labels file
 * (NULL for the others). */
const char *harp_zs_task_file(harp_zs_task t);
const char *harp_zs_task_labels_file(harp_zs_task t);

/* One item. For every choice i the model scores cont[i] after ctx[i]. Tasks with one shared
 * context (ARC, PIQA, HellaSwag) have shared_ctx = 1 and all ctx[i] equal; Winogrande has one
 * context per option and a shared continuation. choice[i] is the string whose length normalizes
 * acc_norm (the harness's doc_to_choice entry). All strings are NUL-terminated UTF-8. */
typedef struct harp_zs_item {
    int n_choices;
    int gold;
    int shared_ctx;
    char *ctx[HARP_ZS_MAX_CHOICES];
    char *cont[HARP_ZS_MAX_CHOICES];
    char *choice[HARP_ZS_MAX_CHOICES];
} harp_zs_item;

typedef struct harp_zs_dataset {
    harp_zs_task task;
    int n;
    harp_zs_item *items;
} harp_zs_dataset;

/* Reads a task's file(s) from dir. limit > 0 keeps the first limit items (0 = all). Tolerates the
 * schema variants of the shipped files (ARC: nested {"question":{"stem","choices":[...]}} or flat
 * {"question","choices":{"text","label"}}; PIQA labels in a separate .lst; HellaSwag in the
 * llama.cpp 6-line text format, plain or .bz2; Winogrande with option1/option2 and "_"). */
harp_status harp_zs_load(harp_zs_task task, const char *dir, int limit, harp_zs_dataset **out);
void harp_zs_dataset_free(harp_zs_dataset *d);

/* Encodes a (context, continuation) pair the harness's way for Hugging Face causal models:
 * trailing spaces of the context move to the continuation, then whole = encode(ctx + cont),
 * ctx_ids = encode(ctx), cont_ids = whole[len(ctx_ids):]. add_bos prepends BOS to both encodes
 * (the harness's default for Llama is no BOS). Arrays are malloc'd (harp_free). */
harp_status harp_zs_encode_pair(const harp_tokenizer *t, const char *ctx, const char *cont,
                        int add_bos, int32_t **ctx_ids, int *n_ctx, int32_t **cont_ids,
                        int *n_cont);

typedef struct harp_zs_params {
    int add_bos;                 /* 0 (harness default for Llama models) or 1               */
    harp_progress_fn progress;   /* per item; may be NULL                                   */
    void *progress_user;
    /* Called after each item with its log-likelihoods (may be NULL): per-item dumps. */
    void (*on_item)(void *user, int index, const harp_zs_item *it, const double *ll);
    void *on_item_user;
    /* 0 (default): whole items are packed into multi-sequence batches of up to 512 rows
     * (harp_ctx_eval_seqs), a shared context still evaluated once per item; 1: one request at a
     * time through the KV cache (the unbatched path, kept for comparisons). Same results up to
     * float noise. */
    int no_pack;
} harp_zs_params;

harp_zs_params harp_zs_default_params(void);

/* Log-likelihood of each choice of one item (ll[n_choices]) under m (its tokenizer encodes the
 * requests). c is a context of m with room for the
 * longest request; it is reset first. A shared context is evaluated once; each continuation is
 * then evaluated after harp_ctx_truncate back to the context. n_fed (may be NULL) gets the
 * number of tokens pushed through the model. */
harp_status harp_zs_score_item(harp_model *m, harp_ctx *c, const harp_zs_item *it, int add_bos,
                       double *ll, int64_t *n_fed);

/* Picks acc / acc_norm predictions from log-likelihoods (lowest index on ties, as np.argmax). */
int harp_zs_argmax(const double *ll, int n);
int harp_zs_argmax_norm(const harp_zs_item *it, const double *ll);
size_t harp_zs_utf8_len(const char *s);   /* code points, as Python len(str) */

typedef struct harp_zs_result {
    harp_zs_task task;
    int n;
    double acc, acc_stderr, acc_norm, acc_norm_stderr;
    int64_t tokens_fed;          /* tokens evaluated by the model (contexts once + continuations) */
    int64_t tokens_scored;       /* continuation tokens whose log-probabilities were summed      */
    double seconds;
} harp_zs_result;

/* Sample standard error of the mean of n values of which k are 1 and the rest 0. */
double harp_zs_stderr01(int64_t k, int64_t n);

harp_status harp_zs_eval(harp_model *m, const harp_zs_dataset *d, const harp_zs_params *p,
                 harp_zs_result *out);

#ifdef __cplusplus
}
#endif
#endif
