/* Item-level parity with the lm-evaluation-harness reference (tests/data/lmeval_ref_items.json,
 * produced on the GPU machine by scripts/lmeval_reference.py with PyTorch/transformers): the first
 * items of ARC-Easy and PIQA on ref-llama, summed log-likelihood of every choice within 1e-3 and
 * the same acc prediction, through harp_zs_score_item (one request at a time) and harp_zs_eval
 * (items packed into multi-sequence batches). Skips when the reference or the model is missing. */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "core/core.h"
#include "harp/zeroshot.h"
#include "test_util.h"

#define N_ITEMS 40

typedef struct packed_check {
    const cJSON *lls;
    int seen;
    double maxd;
} packed_check;

static void on_item(void *user, int index, const harp_zs_item *it, const double *ll) {
    packed_check *pc = user;
    CHECK(index == pc->seen);   /* items reported in order */
    pc->seen++;
    const cJSON *r = cJSON_GetArrayItem(pc->lls, index);
    double ref[HARP_ZS_MAX_CHOICES];
    for (int j = 0; j < it->n_choices && j < cJSON_GetArraySize(r); j++) {
        ref[j] = cJSON_GetArrayItem(r, j)->valuedouble;
        CHECK_NEAR(ll[j], ref[j], 1e-3);
        if (fabs(ll[j] - ref[j]) > pc->maxd) pc->maxd = fabs(ll[j] - ref[j]);
    }
    CHECK(harp_zs_argmax(ll, it->n_choices) == harp_zs_argmax(ref, it->n_choices));
}

int main(void) {
    const char *cfg = t_shared("models/ref-llama/config.json");
    char mdir[4096], dir[4096];
    snprintf(mdir, sizeof mdir, "%s", cfg);
    *strrchr(mdir, '/') = 0;
    snprintf(dir, sizeof dir, "%s", t_shared("data/zeroshot/piqa-valid.jsonl"));
    *strrchr(dir, '/') = 0;
    char *js;
    size_t jn;
    if (harp_read_file(t_data("lmeval_ref_items.json"), &js, &jn) != HARP_OK) {
        printf("SKIP: %s\n", harp_last_error());
        return 77;
    }
    cJSON *root = cJSON_Parse(js);
    free(js);
    CHECK(root != NULL);
    if (!root) return t_done();
    harp_model *m = NULL;
    harp_model_params mp = harp_model_default_params();
    CHECK_OK(harp_model_open(mdir, &mp, &m));
    harp_ctx *c = NULL;
    if (m) CHECK_OK(harp_ctx_create(m, 1024, &c));
    const harp_zs_task tasks[2] = {HARP_ZS_ARC_EASY, HARP_ZS_PIQA};
    for (int k = 0; c && k < 2; k++) {
        const cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "tasks"), harp_zs_task_name(tasks[k]));
        const cJSON *lls = cJSON_GetObjectItem(t, "ll"), *gold = cJSON_GetObjectItem(t, "gold");
        CHECK(cJSON_GetArraySize(lls) >= N_ITEMS);
        harp_zs_dataset *d = NULL;
        CHECK_OK(harp_zs_load(tasks[k], dir, N_ITEMS, &d));
        double maxd = 0;
        for (int i = 0; d && i < d->n; i++) {
            const harp_zs_item *it = &d->items[i];
            double ll[HARP_ZS_MAX_CHOICES], ref[HARP_ZS_MAX_CHOICES];
            CHECK_OK(harp_zs_score_item(m, c, it, 0, ll, NULL));
            const cJSON *r = cJSON_GetArrayItem(lls, i);
            CHECK(cJSON_GetArraySize(r) == it->n_choices);
            CHECK(cJSON_GetArrayItem(gold, i) && cJSON_GetArrayItem(gold, i)->valueint == it->gold);
            for (int j = 0; j < it->n_choices && j < cJSON_GetArraySize(r); j++) {
                ref[j] = cJSON_GetArrayItem(r, j)->valuedouble;
                CHECK_NEAR(ll[j], ref[j], 1e-3);
                if (fabs(ll[j] - ref[j]) > maxd) maxd = fabs(ll[j] - ref[j]);
            }
            CHECK(harp_zs_argmax(ll, it->n_choices) == harp_zs_argmax(ref, it->n_choices));
        }
        printf("%s: %d items, max |ll - reference| = %.2g\n", harp_zs_task_name(tasks[k]), d ? d->n : 0, maxd);
        /* the packed multi-sequence path of harp_zs_eval against the same reference */
        packed_check pc = {lls, 0, 0};
        harp_zs_params zp = harp_zs_default_params();
        zp.on_item = on_item;
        zp.on_item_user = &pc;
        harp_zs_result res;
        if (d) CHECK_OK(harp_zs_eval(m, d, &zp, &res));
        CHECK(pc.seen == (d ? d->n : -1));
        printf("%s packed: max |ll - reference| = %.2g\n", harp_zs_task_name(tasks[k]), pc.maxd);
        harp_zs_dataset_free(d);
    }
    harp_ctx_free(c);
    harp_model_free(m);
    cJSON_Delete(root);
    return t_done();
}
