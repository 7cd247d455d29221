/* Bad tokenizer input: truncated / corrupt tokenizer.model, garbage tokenizer.json, wrong-kind
 * files, unreadable paths, out-of-range ids. Each must fail with a one-line error that names the
 * file, never crash. */
#include "core/core.h"
#include "harp.h"
#include "test_util.h"
#include "tok/tok_internal.h"

static void expect_fail(const void *d, size_t n, const char *name, const char *needle) {
    harp_tokenizer *t = (harp_tokenizer *)1;
    harp_status st = harp_tokenizer_open_mem(d, n, name, 0, &t);
    CHECK_MSG(st != HARP_OK && t == NULL, "%s: opened although corrupt", name);
    const char *e = harp_last_error();
    CHECK_MSG(strstr(e, name) == e, "%s: error does not start with the file name: %s", name, e);
    CHECK_MSG(!needle || strstr(e, needle), "%s: error \"%s\" lacks \"%s\"", name, e, needle);
    CHECK_MSG(!strchr(e, '\n'), "%s: error has several lines", name);
    if (st == HARP_OK) harp_tokenizer_free(t);
}

static void bad_spm(void) {
    char *d;
    size_t n;
    CHECK_OK(harp_read_file(t_shared("models/ref-llama/tokenizer.model"), &d, &n));
    /* truncated at many points: in a piece, in the trainer spec, in the normalizer */
    size_t cuts[] = {1, 2, 5, 100, n / 3, n / 2, n - 200, n - 40, n - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        char name[64];
        snprintf(name, sizeof name, "cut%zu/tokenizer.model", cuts[k]);
        expect_fail(d, cuts[k], name, NULL);
    }
    /* a piece length that runs past the end */
    char *c = malloc(n);
    memcpy(c, d, n);
    c[1] = 0x7F;
    expect_fail(c, n, "len/tokenizer.model", NULL);
    /* piece type out of range: first piece is <unk>: 0A len 0A 05 "<unk>" 15 f32 18 02 */
    memcpy(c, d, n);
    char *ty = memchr(c, 0x18, 32);
    CHECK(ty != NULL);
    if (ty) ty[1] = 9;
    expect_fail(c, n, "type/tokenizer.model", "type");
    /* bad wire type in the first tag */
    memcpy(c, d, n);
    c[0] = 0x0F;
    expect_fail(c, n, "wire/tokenizer.model", NULL);
    free(c);
    /* a JSON file named .model, an empty file, random bytes */
    expect_fail("{\"a\":1}", 7, "json/tokenizer.model", NULL);
    expect_fail("", 0, "empty/tokenizer.model", "empty");
    unsigned char junk[256];
    for (int i = 0; i < 256; i++) junk[i] = (unsigned char)(i * 37 + 11);
    expect_fail(junk, sizeof junk, "junk/tokenizer.model", NULL);
    free(d);
}

static void bad_json(void) {
    static const char *cases[][2] = {
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [", "invalid JSON"},
        {"[1, 2, 3]", "not a JSON object"},
        {"{\"model\": 5}", "no \"model\""},
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "not BPE"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}, \"merges\": []}}", "id"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}", "merge 0"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a\"]}}", "merge 0"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [7]}}", "merge 0"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", "empty"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": {\"type\": \"NFKC\"}}", "NFKC"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}}", "regex"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"added_tokens\": [{\"id\": 1}]}", "content"},
        {"\x01\x02garbage", NULL},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char name[64];
        snprintf(name, sizeof name, "bad%zu/tokenizer.json", k);
        expect_fail(cases[k][0], strlen(cases[k][0]), name, cases[k][1]);
    }
}

static void bad_bin(void) {
    char *d;
    size_t n;
    CHECK_OK(harp_read_file(t_shared("models/stories260K/tok512.bin"), &d, &n));
    expect_fail(d, 3, "short/tokenizer.bin", "too short");
    expect_fail(d, n - 3, "trunc/tokenizer.bin", NULL);
    char *c = malloc(n);
    memcpy(c, d, n);
    c[8] = 0x7F;   /* first token's length byte */
    expect_fail(c, n, "len/tokenizer.bin", "length");
    free(c);
    harp_tokenizer *t = NULL;
    /* asking for more tokens than the file holds */
    CHECK(harp_tokenizer_open_mem(d, n, "hint/tokenizer.bin", 100000, &t) != HARP_OK && !t);
    CHECK(strstr(harp_last_error(), "hint/tokenizer.bin") != NULL);
    CHECK_OK(harp_tokenizer_open_mem(d, n, "ok/tokenizer.bin", 512, &t));
    if (t) {
        CHECK(harp_tokenizer_vocab_size(t) == 512);
        int32_t bad[2] = {5, 512};
        char *s = NULL;
        CHECK(harp_detokenize(t, bad, 2, &s, NULL) != HARP_OK && s == NULL);
        CHECK(strstr(harp_last_error(), "out of range") != NULL);
        CHECK(harp_tokenizer_piece(t, 512) == NULL && harp_tokenizer_piece(t, -1) == NULL);
        harp_tokenizer_free(t);
    }
    free(d);
}

static void bad_paths(void) {
    harp_tokenizer *t = NULL;
    CHECK(harp_tokenizer_open("/nonexistent/tokenizer.model", 0, &t) != HARP_OK && !t);
    CHECK(strstr(harp_last_error(), "/nonexistent/tokenizer.model") != NULL);
    CHECK(harp_tokenizer_open(t_shared("models/ref-llama"), 0, &t) != HARP_OK && !t);
    CHECK(strstr(harp_last_error(), "directory") != NULL);
    CHECK(harp_tokenizer_open_for_model("/nonexistent/model", 0, &t) != HARP_OK && !t);
    CHECK(strstr(harp_last_error(), "/nonexistent/model") != NULL);
    /* wrong kind: a safetensors checkpoint and a config.json */
    CHECK(harp_tokenizer_open(t_shared("models/ref-llama/config.json"), 0, &t) != HARP_OK && !t);
    CHECK(strstr(harp_last_error(), "config.json") != NULL);
    CHECK(harp_tokenizer_open(t_shared("models/stories260K/stories260K.bin"), 0, &t) != HARP_OK && !t);
    CHECK(strstr(harp_last_error(), "stories260K.bin: not a tokenizer") != NULL);
    /* llama2.c checkpoint: tok512.bin beside it, vocab from the header */
    CHECK_OK(harp_tokenizer_open_for_model(t_shared("models/stories260K/stories260K.bin"), 0, &t));
    if (t) {
        CHECK(harp_tokenizer_kind(t) == HARP_TOK_LLAMA2C && harp_tokenizer_vocab_size(t) == 512);
        int32_t *ids;
        size_t n;
        CHECK_OK(harp_tokenize(t, "Once upon a time", 16, 1, &ids, &n));
        static const int32_t want[] = {1, 403, 407, 261, 378};   /* stories260K golden.json */
        CHECK(n == 5 && memcmp(ids, want, sizeof want) == 0);
        harp_free(ids);
        harp_tokenizer_free(t);
    }
}

int main(void) {
    bad_spm();
    bad_json();
    bad_bin();
    bad_paths();
    return t_done();
}
