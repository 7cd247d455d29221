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

#endif
