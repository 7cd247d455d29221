/* Incremental detokenization (harp_detok_*): for every tokenizer kind, the spans handed out one id
 * at a time concatenate to exactly harp_detokenize of all ids (spacing, the dropped leading space,
 * byte tokens), and a span never ends inside a UTF-8 character when the text is valid UTF-8. */
#include "core/core.h"
#include "harp.h"
#include "test_util.h"

static const char *const texts[] = {
    "Once upon a time, there was a little girl named Lily.",
    "  two leading spaces, and\nnewlines\n\n  indented",
    "na\xC3\xAFve caf\xC3\xA9 \xE2\x80\x94 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x98\x80 emoji",
    "tabs\tand <s> specials </s> 123 4567",
    " x",
    "",
};

/* Streams ids through a decoder; returns the concatenated text (malloc'd) and counts spans that
 * are not valid UTF-8 in *bad_spans. */
static char *stream(const harp_tokenizer *t, const int32_t *ids, size_t n, size_t *len, int *bad_spans) {
    harp_detok *d = NULL;
    CHECK_OK(harp_detok_create(t, &d));
    char *out = malloc(16 * n + 16);
    size_t k = 0;
    *bad_spans = 0;
    for (size_t i = 0; i <= n; i++) {
        const char *s = NULL;
        size_t sn = 0;
        if (i < n) CHECK_OK(harp_detok_push(d, ids[i], &s, &sn));
        else CHECK_OK(harp_detok_flush(d, &s, &sn));
        if (!harp_utf8_valid(s, sn)) (*bad_spans)++;
        memcpy(out + k, s, sn);
        k += sn;
    }
    harp_detok_free(d);
    *len = k;
    return out;
}

static void check_ids(const harp_tokenizer *t, const int32_t *ids, size_t n, int want_valid_spans, const char *what) {
    char *whole = NULL;
    size_t wn = 0, sn = 0;
    CHECK_OK(harp_detokenize(t, ids, n, &whole, &wn));
    int bad = 0;
    char *s = stream(t, ids, n, &sn, &bad);
    CHECK_MSG(whole && sn == wn && memcmp(s, whole, wn) == 0, "%s: streamed text \"%.*s\" != detokenized \"%s\"", what,
              (int)sn, s, whole ? whole : "");
    if (want_valid_spans) CHECK_MSG(bad == 0, "%s: %d streamed spans end inside a UTF-8 character", what, bad);
    free(s);
    harp_free(whole);
}

static void check_tokenizer(const char *path, int vocab_hint) {
    harp_tokenizer *t = NULL;
    CHECK_OK(harp_tokenizer_open(path, vocab_hint, &t));
    if (!t) return;
    printf("%s (%s)\n", path, harp_tokenizer_kind_name(harp_tokenizer_kind(t)));
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK_OK(harp_tokenize(t, texts[i], strlen(texts[i]), harp_tokenizer_bos(t) >= 0, &ids, &n));
        char what[256];
        snprintf(what, sizeof what, "%s: text %zu", path, i);
        check_ids(t, ids, n, 1, what);
        harp_free(ids);
    }
    /* arbitrary id sequences: byte tokens that split or break UTF-8, control ids, repeats */
    harp_rng rng;
    harp_rng_seed(&rng, 17);
    int V = harp_tokenizer_vocab_size(t);
    for (int r = 0; r < 50; r++) {
        int32_t ids[40];
        size_t n = 1 + harp_rng_u64(&rng) % 40;
        for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(harp_rng_u64(&rng) % (uint64_t)(r % 2 && V > 300 ? 300 : V));
        char what[256];
        snprintf(what, sizeof what, "%s: random ids %d", path, r);
        check_ids(t, ids, n, 0, what);
    }
    harp_detok *d = NULL;
    const char *s;
    size_t sn;
    CHECK_OK(harp_detok_create(t, &d));
    harp_set_log_level(HARP_LOG_NONE);
    CHECK(harp_detok_push(d, V, &s, &sn) == HARP_ERR_INVALID_ARG);
    harp_set_log_level(HARP_LOG_WARN);
    harp_detok_free(d);
    harp_tokenizer_free(t);
}

static int shared_exists(const char *rel, char *buf, size_t n) {
    const char *root = getenv("HARP_SHARED");
    snprintf(buf, n, "%s/%s", root && *root ? root : "../shared", rel);
    if (access(buf, R_OK) == 0) return 1;
    printf("skip %s (missing)\n", buf);
    return 0;
}

int main(void) {
    check_tokenizer(t_data("tok/bytelevel.json"), 0);
    check_tokenizer(t_data("qwen2-tiny/tokenizer.json"), 0);
    static const char *const shared[] = {"models/stories260K/tok512.bin", "models/llama2-tokenizer/tokenizer.model",
                                         "models/llama2-tokenizer/tokenizer.bin", "models/ref-llama/tokenizer.json",
                                         "models/ref-llama/tokenizer.model"};
    static const int hint[] = {512, 0, 32000, 0, 0};
    char p[4096];
    for (size_t i = 0; i < sizeof shared / sizeof shared[0]; i++)
        if (shared_exists(shared[i], p, sizeof p)) check_tokenizer(p, hint[i]);
    return t_done();
}
