/* Zero-shot loaders and scoring math without a model: the harness's prompt strings for two items
 * of every task (from the shipped files), the HellaSwag preprocessing, acc_norm lengths, stderr. */
#include "harp/zeroshot.h"
#include "test_util.h"

static const char *dir(void) {
    const char *p = t_shared("data/zeroshot/ARC-Easy-test.jsonl");
    static char d[4096];
    snprintf(d, sizeof d, "%s", p);
    *strrchr(d, '/') = 0;
    return d;
}

static harp_zs_dataset *load(harp_zs_task t, int limit) {
    harp_zs_dataset *ds = NULL;
    CHECK_OK(harp_zs_load(t, dir(), limit, &ds));
    return ds;
}

static void test_arc(void) {
    harp_zs_dataset *e = load(HARP_ZS_ARC_EASY, 2), *c = load(HARP_ZS_ARC_CHALLENGE, 2);
    if (!e || !c) return;
    CHECK(e->n == 2 && c->n == 2);
    /* nested schema */
    CHECK(!strcmp(e->items[0].ctx[0], "Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:"));
    CHECK(e->items[0].n_choices == 4 && e->items[0].gold == 0 && e->items[0].shared_ctx);
    CHECK(!strcmp(e->items[0].cont[0], " Sunlight is the source of energy for nearly all ecosystems."));
    CHECK(!strcmp(e->items[0].choice[3], "The producers in all ecosystems are plants."));
    /* flat schema */
    CHECK(!strcmp(c->items[0].ctx[2], "Question: An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most likely effect of this increase in rotation?\nAnswer:"));
    CHECK(c->items[0].gold == 2);
    CHECK(!strcmp(c->items[0].cont[2], " Planetary days will become shorter."));
    harp_zs_dataset_free(e);
    harp_zs_dataset_free(c);
    harp_zs_dataset *all = load(HARP_ZS_ARC_EASY, 0);
    if (all) CHECK(all->n == 2376);
    harp_zs_dataset_free(all);
    all = load(HARP_ZS_ARC_CHALLENGE, 0);
    if (all) CHECK(all->n == 1172);
    harp_zs_dataset_free(all);
}

static void test_piqa(void) {
    harp_zs_dataset *d = load(HARP_ZS_PIQA, 0);
    if (!d) return;
    CHECK(d->n == 1838);
    CHECK(!strcmp(d->items[1].ctx[0], "Question: dresser\nAnswer:"));
    CHECK(!strcmp(d->items[1].cont[1], " finish, woodgrain with  bobby pin "));
    CHECK(d->items[0].gold == 0 && d->items[1].gold == 1);
    harp_zs_dataset_free(d);
}

static void test_hellaswag(void) {
    harp_zs_dataset *d = load(HARP_ZS_HELLASWAG, 0);
    if (!d) return;
    CHECK(d->n == 10042);
    /* ctx_b "he" capitalized as the harness does */
    CHECK_MSG(!strcmp(d->items[0].ctx[0], "Roof shingle removal: A man is sitting on a roof. He"), "got '%s'", d->items[0].ctx[0]);
    CHECK(d->items[0].gold == 3);
    CHECK(!strcmp(d->items[0].cont[3], " starts pulling up roofing on a roof."));
    CHECK(!strcmp(d->items[1].ctx[0], "Clean and jerk: A lady walks to a barbell. She bends down and grabs the pole. The lady"));
    /* bracketed artifacts removed, as preprocess() does */
    int brackets = 0;
    for (int i = 0; i < d->n; i++) {
        if (strchr(d->items[i].ctx[0], '[')) brackets++;
        for (int j = 0; j < 4; j++)
            if (strstr(d->items[i].cont[j], "  ")) brackets++;
    }
    CHECK(brackets == 0);
    harp_zs_dataset_free(d);
}

static void test_winogrande(void) {
    harp_zs_dataset *d = load(HARP_ZS_WINOGRANDE, 0);
    if (!d) return;
    CHECK(d->n == 1267);
    const harp_zs_item *it = &d->items[0];
    CHECK(!it->shared_ctx && it->n_choices == 2 && it->gold == 1);
    CHECK(!strcmp(it->ctx[0], "Sarah was a much better surgeon than Maria so Sarah"));
    CHECK(!strcmp(it->ctx[1], "Sarah was a much better surgeon than Maria so Maria"));
    CHECK(!strcmp(it->cont[0], " always got the easier cases."));
    CHECK(!strcmp(it->cont[1], " always got the easier cases."));
    CHECK(d->items[1].gold == 0);
    harp_zs_dataset_free(d);
}

static void test_math(void) {
    CHECK(harp_zs_utf8_len("caf\xc3\xa9") == 4);
    double ll[3] = {-3.0, -2.0, -2.0};
    CHECK(harp_zs_argmax(ll, 3) == 1);  /* lowest index on ties, as np.argmax */
    harp_zs_item it;
    memset(&it, 0, sizeof it);
    it.n_choices = 3;
    char a[] = "abcdef", b[] = "ab", c[] = "abcd";
    it.choice[0] = a;
    it.choice[1] = b;
    it.choice[2] = c;
    CHECK(harp_zs_argmax_norm(&it, ll) == 0); /* -0.5, -1, -0.5: np.argmax takes the first tie */
    ll[2] = -1.9;
    CHECK(harp_zs_argmax_norm(&it, ll) == 2);
    /* sample stderr of the mean of 0/1 data: p=0.5, n=4 → sqrt(0.25*4/3/4) */
    CHECK_NEAR(harp_zs_stderr01(2, 4), sqrt(1.0 / 12.0), 1e-12);
    CHECK_NEAR(harp_zs_stderr01(0, 10), 0.0, 0);
    CHECK(harp_zs_task_from_name("hellaswag") == HARP_ZS_HELLASWAG && harp_zs_task_from_name("x") == -1);
}

static void test_errors(void) {
    harp_zs_dataset *d = NULL;
    CHECK(harp_zs_load(HARP_ZS_ARC_EASY, "/nonexistent", 0, &d) == HARP_ERR_IO && !d);
    CHECK(strstr(harp_last_error(), "/nonexistent") != NULL);
    const char *tmp = t_tmp("zs_bad");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p %s && printf '{\"goal\":\"g\",\"sol1\":\"a\"}\\n' > %s/piqa-valid.jsonl && printf '0\\n' > %s/piqa-valid-labels.lst && printf 'x\\n1\\n' | bzip2 > %s/hellaswag_val_full.txt.bz2 && printf 'not json\\n' > %s/winogrande_1.1_dev.jsonl",
             tmp, tmp, tmp, tmp, tmp);
    CHECK(system(cmd) == 0);
    CHECK(harp_zs_load(HARP_ZS_PIQA, tmp, 0, &d) == HARP_ERR_FORMAT && !d);
    CHECK(strstr(harp_last_error(), "sol2") != NULL);
    CHECK(harp_zs_load(HARP_ZS_HELLASWAG, tmp, 0, &d) == HARP_ERR_FORMAT && !d);
    CHECK(strstr(harp_last_error(), "multiple of 6") != NULL);
    CHECK(harp_zs_load(HARP_ZS_WINOGRANDE, tmp, 0, &d) == HARP_ERR_FORMAT && !d);
    CHECK(strstr(harp_last_error(), ":1: not a JSON object") != NULL);
    snprintf(cmd, sizeof cmd, "printf 'garbage' > %s/hellaswag_val_full.txt.bz2", tmp);
    CHECK(system(cmd) == 0);
    CHECK(harp_zs_load(HARP_ZS_HELLASWAG, tmp, 0, &d) == HARP_ERR_FORMAT && !d);
}

int main(void) {
    test_math();
    test_arc();
    test_piqa();
    test_hellaswag();
    test_winogrande();
    test_errors();
    return t_done();
}
