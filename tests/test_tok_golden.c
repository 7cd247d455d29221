/* Tokenizer goldens (exact): the Llama-2 SentencePiece tokenizer (tokenizer.model and its
 * llama2.c export tokenizer.bin) against sentencepiece 0.1.97 on WikiText-2 test and tricky
 * strings; ref-llama's tokenizer.model and tokenizer.json against each other and golden.json on
 * its eval texts and prompts; decode(encode(x)) == x. */
#include <cjson/cJSON.h>

#include "core/core.h"
#include "harp.h"
#include "test_json.h"
#include "test_util.h"
#include "tok_test.h"

static int ids_equal_json(const int32_t *ids, size_t n, const cJSON *arr, size_t off) {
    size_t k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (off + k >= n || ids[off + k] != (int32_t)e->valuedouble) return 0;
        k++;
    }
    return 1;
}

static void sha_ids(const int32_t *ids, size_t n, char hex[65]) {
    uint8_t *b = malloc(n * 4 + 1);
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)ids[i];
        b[4 * i] = (uint8_t)u;
        b[4 * i + 1] = (uint8_t)(u >> 8);
        b[4 * i + 2] = (uint8_t)(u >> 16);
        b[4 * i + 3] = (uint8_t)(u >> 24);
    }
    harp_sha256_hex(b, n * 4, hex);
    free(b);
}

static void llama2_cases(harp_tokenizer *t, const cJSON *cases, const char *what) {
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        /* cJSON strings stop at NUL; the golden holds "\u0000": recover the length from ids. */
        size_t len = strlen(text);
        if (strcmp(text, "\xC3\xBF") == 0) {
            /* the golden's "\u00ff\u0000\u0001 bytes" case, cut at the NUL by cJSON */
            static const char raw[] = "\xC3\xBF\x00\x01 bytes";
            text = raw;
            len = sizeof raw - 1;
        }
        int32_t *ids;
        size_t n;
        CHECK_OK(harp_tokenize(t, text, len, 0, &ids, &n));
        const cJSON *exp = cJSON_GetObjectItem(c, "ids");
        int ok = (size_t)cJSON_GetArraySize(exp) == n && ids_equal_json(ids, n, exp, 0);
        CHECK_MSG(ok, "%s: ids differ for case \"%s\" (got %zu ids)", what, text, n);
        if (!ok) {
            for (size_t i = 0; i < n; i++) fprintf(stderr, "%d ", ids[i]);
            fprintf(stderr, "\n");
        }
        char *dec;
        size_t dn;
        CHECK_OK(harp_detokenize(t, ids, n, &dec, &dn));
        CHECK_MSG(dn == len && memcmp(dec, text, len) == 0, "%s: decode(encode(\"%s\")) = \"%s\"",
                  what, text, dec);
        /* with BOS: one more id, first is BOS, decode unchanged */
        int32_t *ids2;
        size_t n2;
        CHECK_OK(harp_tokenize(t, text, len, 1, &ids2, &n2));
        CHECK(n2 == n + 1 && ids2[0] == harp_tokenizer_bos(t));
        harp_free(dec);
        harp_free(ids);
        harp_free(ids2);
    }
}

static void llama2_wikitext(harp_tokenizer *t, const cJSON *g, const char *what) {
    char *text;
    size_t len;
    CHECK_OK(harp_read_file(t_shared("data/wikitext-2-raw/wiki.test.raw"), &text, &len));
    int32_t *ids;
    size_t n;
    double t0 = harp_time_s();
    CHECK_OK(harp_tokenize(t, text, len, 0, &ids, &n));
    printf("%s: WikiText-2 test (%zu bytes) -> %zu ids in %.2f s\n", what, len, n,
           harp_time_s() - t0);
    CHECK_MSG(n == (size_t)cJSON_GetObjectItem(g, "n_tokens_without_bos")->valuedouble,
              "%s: %zu ids", what, n);
    CHECK(ids_equal_json(ids, n, cJSON_GetObjectItem(g, "first_32"), 0));
    CHECK(n >= 32 && ids_equal_json(ids, n, cJSON_GetObjectItem(g, "last_32"), n - 32));
    char hex[65];
    sha_ids(ids, n, hex);
    CHECK_MSG(strcmp(hex, cJSON_GetObjectItem(g, "sha256_of_ids_le_int32")->valuestring) == 0,
              "%s: sha256 %s", what, hex);
    harp_free(ids);
    free(text);
}

static void test_llama2(void) {
    cJSON *g = t_load_json(t_shared("models/llama2-tokenizer/golden.json"));
    CHECK(g != NULL);
    const char *files[2] = {t_shared("models/llama2-tokenizer/tokenizer.model"),
                            t_shared("models/llama2-tokenizer/tokenizer.bin")};
    harp_tok_kind kinds[2] = {HARP_TOK_SPM, HARP_TOK_LLAMA2C};
    for (int f = 0; f < 2; f++) {
        harp_tokenizer *t;
        CHECK_OK(harp_tokenizer_open(files[f], f == 1 ? 32000 : 0, &t));
        if (!t) continue;
        CHECK(harp_tokenizer_kind(t) == kinds[f]);
        CHECK(harp_tokenizer_vocab_size(t) == 32000);
        CHECK(harp_tokenizer_bos(t) == 1 && harp_tokenizer_eos(t) == 2);
        llama2_cases(t, cJSON_GetObjectItem(g, "cases"), files[f]);
        llama2_wikitext(t, cJSON_GetObjectItem(g, "wikitext2_test"), files[f]);
        harp_tokenizer_free(t);
    }
    cJSON_Delete(g);
}

/* ref-llama: tokenizer.model and tokenizer.json give identical ids; both match golden.json. */
static void test_ref_llama(int full) {
    cJSON *g = t_load_json(t_shared("models/ref-llama/golden.json"));
    CHECK(g != NULL);
    harp_tokenizer *spm = NULL, *hf = NULL, *auto_t = NULL;
    CHECK_OK(harp_tokenizer_open(t_shared("models/ref-llama/tokenizer.model"), 0, &spm));
    CHECK_OK(harp_tokenizer_open(t_shared("models/ref-llama/tokenizer.json"), 0, &hf));
    CHECK_OK(harp_tokenizer_open_for_model(t_shared("models/ref-llama"), 8192, &auto_t));
    if (!spm || !hf || !auto_t) return;
    CHECK(harp_tokenizer_kind(spm) == HARP_TOK_SPM);
    CHECK(harp_tokenizer_kind(hf) == HARP_TOK_HF_BPE);
    CHECK(harp_tokenizer_kind(auto_t) == HARP_TOK_SPM);   /* tokenizer.model is preferred */
    CHECK(harp_tokenizer_vocab_size(hf) == 8192 && harp_tokenizer_vocab_size(spm) == 8192);
    CHECK(harp_tokenizer_bos(hf) == 1 && harp_tokenizer_eos(hf) == 2);
    const cJSON *ds;
    cJSON_ArrayForEach(ds, cJSON_GetObjectItem(g, "datasets")) {
        /* The unit run covers the test split; the full run (argument "full") all three texts. */
        if (!full && strcmp(ds->string, "ref-corpus-test") != 0) continue;
        char rel[256];
        snprintf(rel, sizeof rel, "%s", cJSON_GetObjectItem(ds, "file")->valuestring);
        char *text;
        size_t len;
        CHECK_OK(harp_read_file(t_shared(rel), &text, &len));
        int32_t *a, *b;
        size_t na, nb;
        double t0 = harp_time_s();
        CHECK_OK(harp_tokenize(spm, text, len, 1, &a, &na));
        double t1 = harp_time_s();
        CHECK_OK(harp_tokenize(hf, text, len, 1, &b, &nb));
        double t2 = harp_time_s();
        printf("ref-llama %s (%zu bytes): tokenizer.model %zu ids in %.2f s, tokenizer.json %zu ids "
               "in %.2f s\n", ds->string, len, na, t1 - t0, nb, t2 - t1);
        size_t want = (size_t)cJSON_GetObjectItem(ds, "n_tokens_with_bos")->valuedouble;
        CHECK_MSG(na == want, "%s: tokenizer.model gave %zu ids with BOS, golden %zu", rel, na, want);
        CHECK_MSG(nb == want, "%s: tokenizer.json gave %zu ids with BOS, golden %zu", rel, nb, want);
        CHECK(ids_equal_json(a, na, cJSON_GetObjectItem(ds, "first16_ids"), 0));
        size_t diff = 0;
        while (diff < na && diff < nb && a[diff] == b[diff]) diff++;
        CHECK_MSG(na == nb && diff == na, "%s: model/json ids first differ at %zu", rel, diff);
        free(text);
        harp_free(a);
        harp_free(b);
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(g, "prompts")) {
        const char *text = cJSON_GetObjectItem(p, "text")->valuestring;
        const cJSON *exp = cJSON_GetObjectItem(p, "ids");
        harp_tokenizer *ts[2] = {spm, hf};
        for (int k = 0; k < 2; k++) {
            int32_t *ids;
            size_t n;
            CHECK_OK(harp_tokenize(ts[k], text, strlen(text), 1, &ids, &n));
            CHECK_MSG((size_t)cJSON_GetArraySize(exp) == n && ids_equal_json(ids, n, exp, 0),
                      "ref-llama prompt \"%s\" (%s)", text, k ? "json" : "model");
            char *dec;
            CHECK_OK(harp_detokenize(ts[k], ids, n, &dec, NULL));
            CHECK_MSG(strcmp(dec, text) == 0, "decode: \"%s\"", dec);
            harp_free(dec);
            harp_free(ids);
        }
    }
    /* Edge strings: both files agree and round-trip (golden.json says the two are identical). */
    static const char *edge[] = {"", " ", "  a", " Hello  world ", "\n\n = Robert = \n", "caf\xC3\xA9 \xE2\x80\x94 \xF0\x9F\x98\x80 \xE4\xB8\xAD\xE6\x96\x87",
                                 "\t\ttabs\r\n", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "x", "1234567890 3.14159"};
    for (size_t k = 0; k < sizeof edge / sizeof edge[0]; k++) tok_expect_agree(spm, hf, edge[k]);
    harp_tokenizer_free(spm);
    harp_tokenizer_free(hf);
    harp_tokenizer_free(auto_t);
    cJSON_Delete(g);
}

int main(int argc, char **argv) {
    int full = argc > 1 && strcmp(argv[1], "full") == 0;
    test_ref_llama(full);
    test_llama2();
    return t_done();
}
