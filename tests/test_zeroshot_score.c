/* Zero-shot scoring on ref-llama, two items per task: the harness's prompt strings, the token
 * boundary between context and continuation (encode the whole, split at len(encode(context))),
 * and each choice's log-likelihood recomputed by hand from one uncached forward pass over
 * context + continuation (log-softmax in double) against harp_zs_score_item's cached scheme. */
#include <stdlib.h>

#include "harp/zeroshot.h"
#include "test_util.h"

static harp_model *model;
static const harp_tokenizer *tok;
static int vocab;

static double hand_ll(const int32_t *ctx, int nc, const int32_t *cont, int nk) {
    int n = nc + nk - 1;
    int32_t *all = malloc((size_t)n * sizeof *all);
    float *lg = malloc((size_t)n * (size_t)vocab * sizeof *lg);
    memcpy(all, ctx, (size_t)nc * sizeof *all);
    memcpy(all + nc, cont, (size_t)(nk - 1) * sizeof *all);
    harp_ctx *c = NULL;
    CHECK_OK(harp_ctx_create(model, n + 1, &c));
    CHECK_OK(harp_ctx_eval(c, all, n, lg, 1));
    double sum = 0;
    for (int j = 0; j < nk; j++) {
        const float *row = lg + (size_t)(nc - 1 + j) * (size_t)vocab;
        double mx = row[0], s = 0;
        for (int v = 1; v < vocab; v++) mx = row[v] > mx ? row[v] : mx;
        for (int v = 0; v < vocab; v++) s += exp(row[v] - mx);
        sum += row[cont[j]] - mx - log(s);
    }
    harp_ctx_free(c);
    free(all);
    free(lg);
    return sum;
}

static void check_task(harp_zs_task task, const char *dir, const char *ctx0, const char *cont0) {
    harp_zs_dataset *d = NULL;
    CHECK_OK(harp_zs_load(task, dir, 2, &d));
    if (!d) return;
    CHECK_MSG(!strcmp(d->items[0].ctx[0], ctx0), "%s ctx: '%s'", harp_zs_task_name(task), d->items[0].ctx[0]);
    CHECK_MSG(!strcmp(d->items[0].cont[0], cont0), "%s cont: '%s'", harp_zs_task_name(task), d->items[0].cont[0]);
    harp_ctx *c = NULL;
    CHECK_OK(harp_ctx_create(model, 1024, &c));
    for (int i = 0; i < d->n; i++) {
        const harp_zs_item *it = &d->items[i];
        double ll[HARP_ZS_MAX_CHOICES], hand[HARP_ZS_MAX_CHOICES];
        int64_t fed = 0;
        CHECK_OK(harp_zs_score_item(model, c, it, 0, ll, &fed));
        int64_t ctx_tokens = 0, total = 0;
        for (int k = 0; k < it->n_choices; k++) {
            int32_t *ci, *ki;
            int nc, nk;
            CHECK_OK(harp_zs_encode_pair(tok, it->ctx[k], it->cont[k], 0, &ci, &nc, &ki, &nk));
            /* boundary: the context's own encoding, then the rest of the joint encoding */
            size_t lc = strlen(it->ctx[k]), lk = strlen(it->cont[k]);
            char *whole = malloc(lc + lk + 1);
            memcpy(whole, it->ctx[k], lc);
            memcpy(whole + lc, it->cont[k], lk + 1);
            int32_t *w, *cc;
            size_t nw, ncc;
            CHECK_OK(harp_tokenize(tok, whole, lc + lk, 0, &w, &nw));
            CHECK_OK(harp_tokenize(tok, it->ctx[k], lc, 0, &cc, &ncc));
            CHECK((size_t)nc == ncc && (size_t)(nc + nk) == nw);
            CHECK(!memcmp(ci, cc, ncc * sizeof *cc) && !memcmp(ki, w + nc, (size_t)nk * sizeof *ki));
            /* no BOS (the harness's default for Llama); the continuation starts a new word */
            CHECK(nc > 0 && ci[0] != harp_tokenizer_bos(tok));
            const char *p0 = harp_tokenizer_piece(tok, ki[0]);
            CHECK_MSG(p0 && !strncmp(p0, "\xe2\x96\x81", 3), "%s item %d choice %d: first continuation piece '%s'",
                      harp_zs_task_name(task), i, k, p0 ? p0 : "(null)");
            char *txt;
            size_t tl;
            CHECK_OK(harp_detokenize(tok, w, nw, &txt, &tl));
            CHECK_MSG(tl == lc + lk && !memcmp(txt, whole, tl), "round trip '%s'", txt);
            hand[k] = hand_ll(ci, nc, ki, nk);
            CHECK_NEAR(ll[k], hand[k], 2e-3);
            CHECK(ll[k] < 0 && ll[k] > -500);
            total += nc + nk - 1;
            if (k == 0 || !it->shared_ctx) ctx_tokens += nc;
            harp_free(txt);
            harp_free(w);
            harp_free(cc);
            harp_free(ci);
            harp_free(ki);
            free(whole);
        }
        CHECK(harp_zs_argmax(ll, it->n_choices) == harp_zs_argmax(hand, it->n_choices));
        /* a shared context is fed once: fewer tokens than scoring each choice from scratch */
        if (it->shared_ctx) CHECK_MSG(fed < total, "fed %lld of %lld", (long long)fed, (long long)total);
        printf("%s item %d: ll =", harp_zs_task_name(task), i);
        for (int k = 0; k < it->n_choices; k++) printf(" %.4f", ll[k]);
        printf("  (gold %d, fed %lld tokens)\n", it->gold, (long long)fed);
    }
    harp_ctx_free(c);
    harp_zs_dataset_free(d);
}

typedef struct ll_log {
    int n;
    double ll[4][HARP_ZS_MAX_CHOICES];
} ll_log;

static void log_item(void *user, int index, const harp_zs_item *it, const double *ll) {
    ll_log *g = user;
    CHECK(index == g->n);   /* reported in item order on both paths */
    if (g->n < 4) memcpy(g->ll[g->n], ll, sizeof(double) * (size_t)it->n_choices);
    g->n++;
}

/* harp_zs_eval packed (items in multi-sequence batches) against one request at a time, on items
 * built by hand: short ones around one too long for a 512-row batch (it takes the fallback path,
 * after the pending batch is flushed), and a choice sharing its first continuation tokens with
 * another (the shared prefix then reaches into the continuations). */
static void check_packed_vs_serial(void) {
    static char longctx[8192];
    size_t n = 0;
    while (n + 40 < sizeof longctx - 32) n += (size_t)snprintf(longctx + n, sizeof longctx - n, "the cat sat on the mat and looked out. ");
    snprintf(longctx + n, sizeof longctx - n, "Question: where?\nAnswer:");
    char *c0 = "Question: What is the colour of the sky on a clear day?\nAnswer:";
    harp_zs_item items[4] = {
        {3, 0, 1, {c0, c0, c0}, {" blue and bright", " blue and dark", " green"}, {"blue and bright", "blue and dark", "green"}},
        {2, 1, 1, {longctx, longctx}, {" outside", " on the mat"}, {"outside", "on the mat"}},
        {2, 0, 0, {"The trophy did not fit in the suitcase because the trophy", "The trophy did not fit in the suitcase because the suitcase"},
         {" was too big.", " was too big."}, {"the trophy", "the suitcase"}},
        {2, 1, 1, {"", ""}, {"Hello there", "Goodbye"}, {"Hello there", "Goodbye"}},
    };
    harp_zs_dataset d = {HARP_ZS_ARC_EASY, 4, items};
    ll_log packed = {0, {{0}}}, serial = {0, {{0}}};
    harp_zs_params p = harp_zs_default_params();
    p.on_item = log_item;
    p.on_item_user = &packed;
    harp_zs_result rp, rs;
    CHECK_OK(harp_zs_eval(model, &d, &p, &rp));
    p.on_item_user = &serial;
    p.no_pack = 1;
    CHECK_OK(harp_zs_eval(model, &d, &p, &rs));
    CHECK(packed.n == 4 && serial.n == 4);
    CHECK(rp.tokens_scored == rs.tokens_scored);
    CHECK(rp.tokens_fed > 512);   /* the long item went through */
    double maxd = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < items[i].n_choices; j++) {
            CHECK_NEAR(packed.ll[i][j], serial.ll[i][j], 1e-4);
            CHECK(isfinite(packed.ll[i][j]) && packed.ll[i][j] < 0);
            if (fabs(packed.ll[i][j] - serial.ll[i][j]) > maxd) maxd = fabs(packed.ll[i][j] - serial.ll[i][j]);
        }
    printf("packed vs one request at a time: max |dll| = %.2g\n", maxd);
}

int main(void) {
    const char *cfg = t_shared("models/ref-llama/config.json");
    char mdir[4096];
    snprintf(mdir, sizeof mdir, "%s", cfg);
    *strrchr(mdir, '/') = 0;
    const char *arc = t_shared("data/zeroshot/ARC-Easy-test.jsonl");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", arc);
    *strrchr(dir, '/') = 0;
    harp_model_params mp = harp_model_default_params();
    CHECK_OK(harp_model_open(mdir, &mp, &model));
    if (!model) return t_done();
    tok = harp_model_tokenizer(model);
    harp_model_info info;
    CHECK_OK(harp_model_get_info(model, &info));
    vocab = info.vocab_size;

    /* trailing whitespace of a context moves into the continuation, as in the harness */
    int32_t *a, *b, *x, *y;
    int na, nb, nx, ny;
    CHECK_OK(harp_zs_encode_pair(tok, "Answer: ", "yes", 0, &a, &na, &b, &nb));
    CHECK_OK(harp_zs_encode_pair(tok, "Answer:", " yes", 0, &x, &nx, &y, &ny));
    CHECK(na == nx && nb == ny && !memcmp(a, x, (size_t)na * 4) && !memcmp(b, y, (size_t)nb * 4));
    harp_free(a), harp_free(b), harp_free(x), harp_free(y);

    check_task(HARP_ZS_ARC_EASY, dir,
               "Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:",
               " Sunlight is the source of energy for nearly all ecosystems.");
    check_task(HARP_ZS_ARC_CHALLENGE, dir,
               "Question: An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most likely effect of this increase in rotation?\nAnswer:",
               " Planetary density will decrease.");
    check_task(HARP_ZS_PIQA, dir, "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:",
               " Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper strips, you will also need to supply it with a water bottle and a food dish.");
    check_task(HARP_ZS_HELLASWAG, dir, "Roof shingle removal: A man is sitting on a roof. He",
               " is using wrap to wrap a pair of skis.");
    check_task(HARP_ZS_WINOGRANDE, dir, "Sarah was a much better surgeon than Maria so Sarah",
               " always got the easier cases.");
    check_packed_vs_serial();
    harp_model_free(model);
    return t_done();
}
