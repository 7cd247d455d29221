/* Perplexity protocol parity with ref-llama's golden.json. Usage:
 *   test_model_ppl quick   chunk_nll_first8 of ref-corpus test at ctx 128/256/512/1024 and of
 *                          WikiText-2 at ctx 512 (8 windows each), within 1e-4 absolute; token
 *                          counts and first ids of the stream; saved logits + KLD against itself.
 *   test_model_ppl full    full-file ppl on ref-corpus test and WikiText-2 at ctx 512 within 0.05%. */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "harp.h"
#include "model/model.h"
#include "test_json.h"
#include "test_util.h"

static cJSON *golden;

static int32_t *tokenize_file(harp_model *m, const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)sz + 1);
    size_t got = fread(buf, 1, (size_t)sz, f);
    fclose(f);
    int32_t *ids = NULL;
    CHECK_OK(harp_tokenize(harp_model_tokenizer(m), buf, got, 1, &ids, n));
    free(buf);
    return ids;
}

/* A reference model run beside this one (kld_ref): against a second copy KL = 0 and top-1 = 1 exactly
 * (the same logits); against a changed copy (final norm × 1.25, a temperature change) the KLD that
 * logits saved by that copy give (fp16-coded there: 1 %); a reference with another vocabulary and a
 * reference together with saved logits are refused. */
static void check_kld_ref(harp_model *m, const int32_t *ids, size_t n) {
    harp_model *r = NULL, *st = NULL;
    harp_model_params mp = harp_model_default_params();
    mp.load_tokenizer = 0;
    CHECK_OK(harp_model_open(t_shared("models/ref-llama"), &mp, &r));
    if (!r) return;
    harp_ppl_params p = harp_ppl_default_params();
    p.ctx = 128;
    p.max_chunks = 2;
    p.kld_ref = r;
    harp_ppl_result a, b;
    CHECK_OK(harp_eval_ppl_ids(m, ids, n, &p, &a));
    CHECK_MSG(a.has_kld && a.kld_mean == 0 && a.top1_agree == 1.0, "self KLD through a reference model %.3g, top-1 %.4f", a.kld_mean,
              a.top1_agree);
    harp_ppl_result_free(&a);
    for (int i = 0; i < r->cfg.dim; i++) r->final_norm[i] *= 1.25f;
    CHECK_OK(harp_eval_ppl_ids(m, ids, n, &p, &a));
    harp_ppl_params ps = harp_ppl_default_params();
    ps.ctx = 128, ps.max_chunks = 2, ps.save_logits = t_tmp("kld_ref_logits.bin");
    CHECK_OK(harp_eval_ppl_ids(r, ids, n, &ps, &b));
    harp_ppl_result_free(&b);
    ps.save_logits = NULL, ps.kld_base = t_tmp("kld_ref_logits.bin");
    CHECK_OK(harp_eval_ppl_ids(m, ids, n, &ps, &b));
    printf("KLD against a changed reference: model beside %.6g (top-1 %.4f), saved logits %.6g (top-1 %.4f)\n", a.kld_mean,
           a.top1_agree, b.kld_mean, b.top1_agree);
    CHECK_MSG(a.kld_mean > 1e-4 && fabs(a.kld_mean / b.kld_mean - 1) <= 0.01, "KLD %.6g beside vs %.6g saved", a.kld_mean, b.kld_mean);
    CHECK_MSG(fabs(a.top1_agree - b.top1_agree) <= 0.01, "top-1 %.4f beside vs %.4f saved", a.top1_agree, b.top1_agree);
    CHECK_NEAR(a.ppl, b.ppl, 0);
    harp_ppl_result_free(&a);
    harp_ppl_result_free(&b);
    ps.kld_ref = r;
    CHECK(harp_eval_ppl_ids(m, ids, n, &ps, &a) == HARP_ERR_INVALID_ARG);
    CHECK_OK(harp_model_open(t_shared("models/stories260K/stories260K.bin"), &mp, &st));
    p.kld_ref = st;
    if (st) CHECK(harp_eval_ppl_ids(m, ids, n, &p, &a) == HARP_ERR_MISMATCH);
    harp_model_free(st);
    harp_model_free(r);
}

static void check_dataset(harp_model *m, const char *key, const int *ctxs, int n_ctx, int full) {
    const cJSON *d = cJSON_GetObjectItem(cJSON_GetObjectItem(golden, "datasets"), key);
    char rel[256];
    snprintf(rel, sizeof rel, "%s", cJSON_GetObjectItem(d, "file")->valuestring);
    size_t n = 0;
    int32_t *ids = tokenize_file(m, t_shared(rel), &n);
    if (!ids) return;
    CHECK_NEAR((double)n, cJSON_GetObjectItem(d, "n_tokens_with_bos")->valuedouble, 0);
    int k = 0;
    for (const cJSON *e = cJSON_GetObjectItem(d, "first16_ids")->child; e; e = e->next, k++)
        CHECK(ids[k] == (int32_t)e->valuedouble);
    for (int c = 0; c < n_ctx; c++) {
        char ck[16];
        snprintf(ck, sizeof ck, "ctx%d", ctxs[c]);
        const cJSON *g = cJSON_GetObjectItem(d, ck);
        harp_ppl_params p = harp_ppl_default_params();
        p.ctx = ctxs[c];
        p.max_chunks = full ? 0 : 8;
        harp_ppl_result r;
        CHECK_OK(harp_eval_ppl_ids(m, ids, n, &p, &r));
        if (full) {
            double want = cJSON_GetObjectItem(g, "ppl")->valuedouble;
            double rel_err = fabs(r.ppl - want) / want;
            printf("%s ctx %d: ppl %.6f golden %.6f (rel %.2e), %d windows, %.1f s\n", key, ctxs[c], r.ppl, want, rel_err,
                   r.n_chunks, r.seconds);
            CHECK_MSG(rel_err <= 5e-4, "%s ctx %d: ppl %.6f vs golden %.6f", key, ctxs[c], r.ppl, want);
            CHECK(r.n_chunks == (int)cJSON_GetObjectItem(g, "n_chunks")->valuedouble);
            CHECK(r.n_tokens_scored == (int64_t)cJSON_GetObjectItem(g, "predicted_tokens")->valuedouble);
        } else {
            double maxd = 0;
            int i = 0;
            for (const cJSON *e = cJSON_GetObjectItem(g, "chunk_nll_first8")->child; e; e = e->next, i++) {
                double dd = fabs(r.chunk_nll[i] - e->valuedouble);
                if (dd > maxd) maxd = dd;
            }
            printf("%s ctx %d: first 8 window NLLs max |diff| %.2e\n", key, ctxs[c], maxd);
            CHECK_MSG(i == 8 && maxd <= 1e-4, "%s ctx %d: chunk NLL max |diff| %.3g", key, ctxs[c], maxd);
        }
        harp_ppl_result_free(&r);
    }
    /* Saved logits read back against the same model: KLD ~ 0 (fp16 rounding only), top-1 = 1. */
    if (!full && !strcmp(key, "ref-corpus-test")) {
        harp_ppl_params p = harp_ppl_default_params();
        p.ctx = 128;
        p.max_chunks = 2;
        p.save_logits = t_tmp("ref_logits.bin");
        harp_ppl_result r;
        CHECK_OK(harp_eval_ppl_ids(m, ids, n, &p, &r));
        harp_ppl_result_free(&r);
        p.save_logits = NULL;
        p.kld_base = t_tmp("ref_logits.bin");
        CHECK_OK(harp_eval_ppl_ids(m, ids, n, &p, &r));
        CHECK(r.has_kld && r.top1_agree == 1.0 && fabs(r.kld_mean) < 1e-5);
        printf("self-KLD through the fp16 logits file: %.3g, top-1 agreement %.4f\n", r.kld_mean, r.top1_agree);
        harp_ppl_result_free(&r);
        /* A different stream must be refused. */
        ids[5] ^= 1;
        CHECK(harp_eval_ppl_ids(m, ids, n, &p, &r) == HARP_ERR_MISMATCH);
        ids[5] ^= 1;
        check_kld_ref(m, ids, n);
    }
    harp_free(ids);
}

int main(int argc, char **argv) {
    int full = argc > 1 && !strcmp(argv[1], "full");
    golden = t_load_json(t_shared("models/ref-llama/golden.json"));
    CHECK(golden != NULL);
    if (!golden) return t_done();
    harp_model *m = NULL;
    CHECK_OK(harp_model_open(t_shared("models/ref-llama"), NULL, &m));
    if (!m) return t_done();
    static const int all_ctx[] = {128, 256, 512, 1024}, c512[] = {512};
    if (full) {
        check_dataset(m, "ref-corpus-test", c512, 1, 1);
        check_dataset(m, "wikitext2-test", c512, 1, 1);
    } else {
        check_dataset(m, "ref-corpus-test", all_ctx, 4, 0);
        check_dataset(m, "wikitext2-test", c512, 1, 0);
    }
    harp_model_free(m);
    cJSON_Delete(golden);
    return t_done();
}
