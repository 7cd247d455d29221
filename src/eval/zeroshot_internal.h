/* Pieces shared by the zero-shot scorer (zeroshot_score.c) and its batch packer (zeroshot_pack.c). */
#ifndef HARP_ZEROSHOT_INTERNAL_H
#define HARP_ZEROSHOT_INTERNAL_H
#include "harp/zeroshot.h"

/* harp_zs_encode_pair plus the harness's rule for an empty context (scored after end-of-text). */
harp_status zs_encode_request(const harp_tokenizer *t, const char *ctx, const char *cont, int add_bos,
                              int32_t **ctx_ids, int *n_ctx, int32_t **cont_ids, int *n_cont);

/* Packs whole items -- each as a prefix tree: the token prefix its requests share once, then each
 * request's remainder as a child -- into multi-sequence batches of up to harp_ctx_max_rows rows
 * (harp_ctx_eval_seqs), and reports the items in the order they were added. */
typedef struct zs_pack zs_pack;
typedef harp_status (*zs_done_fn)(void *user, int index, const harp_zs_item *it, const double *ll);

harp_status zs_pack_create(harp_ctx *c, int vocab, zs_pack **out);
void zs_pack_free(zs_pack *p);
/* Adds item `index` (flushing first when it does not fit beside the pending ones). *added = 0:
 * the item alone exceeds a batch; nothing was done with it (flush, then score it another way). */
harp_status zs_pack_add(zs_pack *p, const harp_tokenizer *t, const harp_zs_item *it, int index, int add_bos,
                        int *added, zs_done_fn done, void *user);
/* Evaluates the pending items and calls done for each, in order. */
harp_status zs_pack_flush(zs_pack *p, zs_done_fn done, void *user);
void zs_pack_counts(const zs_pack *p, int64_t *fed, int64_t *scored);

#endif
