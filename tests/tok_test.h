/* Shared by the tokenizer tests: tokenize a text and compare the ids with the expected ones. */
#ifndef HARP_TESTS_TOK_TEST_H
#define HARP_TESTS_TOK_TEST_H

#include "harp.h"
#include "test_util.h"

/* The ids of text under t (*n of them, release with harp_free), checked against want[0..nw); all
 * ids are printed when they differ. */
static inline int32_t *tok_expect_ids(harp_tokenizer *t, const char *text, const int32_t *want, size_t nw, size_t *n) {
    int32_t *ids = NULL;
    *n = 0;
    CHECK_OK(harp_tokenize(t, text, strlen(text), 0, &ids, n));
    int ok = *n == nw && (!nw || memcmp(ids, want, nw * sizeof *want) == 0);
    CHECK_MSG(ok, "ids differ for \"%s\"", text);
    if (!ok) {
        for (size_t i = 0; i < *n; i++) fprintf(stderr, "%d ", ids[i]);
        fprintf(stderr, "\n");
    }
    return ids;
}

/* a and b give the same ids for text, and both decode them back to text. */
static inline void tok_expect_agree(harp_tokenizer *a, harp_tokenizer *b, const char *text) {
    int32_t *ia = NULL, *ib = NULL;
    size_t na = 0, nb = 0;
    CHECK_OK(harp_tokenize(a, text, strlen(text), 0, &ia, &na));
    CHECK_OK(harp_tokenize(b, text, strlen(text), 0, &ib, &nb));
    CHECK_MSG(na == nb && (!na || memcmp(ia, ib, na * sizeof *ia) == 0), "tokenizers differ on \"%s\"", text);
    char *da = NULL, *db = NULL;
    CHECK_OK(harp_detokenize(a, ia, na, &da, NULL));
    CHECK_OK(harp_detokenize(b, ib, nb, &db, NULL));
    CHECK_MSG(da && db && strcmp(da, text) == 0 && strcmp(db, text) == 0, "round trip \"%s\": \"%s\" / \"%s\"", text,
              da ? da : "?", db ? db : "?");
    harp_free(da);
    harp_free(db);
    harp_free(ia);
    harp_free(ib);
}

#endif
