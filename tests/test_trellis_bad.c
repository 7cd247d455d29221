/* Bad stored QTIP matrices are rejected by harp_tmat_check with one error line naming the tensor:
 * truncated or overlong code streams, a tile count that does not match the shape, a missing code
 * plane, a missing / non-finite / all-zero HYB table, K or code out of range, a non-finite scale. */
#include <stdlib.h>

#include "core/core.h"
#include "quant/trellis.h"
#include "test_util.h"

#define NAME "model.layers.3.mlp.down_proj"

static void expect(const harp_tmat *w, harp_status st, const char *needle) {
    const harp_status got = harp_tmat_check(w, NAME);
    const char *e = harp_last_error();
    CHECK_MSG(got == st && strstr(e, NAME) && strstr(e, needle) && !strchr(e, '\n'),
              "expected status %d with '%s', got %d: %s", (int)st, needle, (int)got, e);
}

int main(void) {
    uint16_t tlut[2 * HARP_HYB_N];
    for (int i = 0; i < 2 * HARP_HYB_N; i++) tlut[i] = harp_f32_to_f16((float)(i % 17) * 0.1f - 0.8f);
    const int32_t m = 40, n = 24;   /* 3 × 2 tiles after padding */
    const size_t nw = harp_tmat_code_words(m, n, 2);
    CHECK(nw == 6 * 32);
    uint16_t *codes = calloc(nw + 64, sizeof *codes);
    harp_tmat w = {m, n, 2, HARP_TCODE_HYB, 0.5f, codes, nw, tlut};
    CHECK_OK(harp_tmat_check(&w, NAME));
    w.ncodes = nw - 1;
    expect(&w, HARP_ERR_FORMAT, "truncated");
    w.ncodes = nw + 32;
    expect(&w, HARP_ERR_FORMAT, "7 tiles");
    w.ncodes = nw, w.m = 56;   /* the stream of 3 × 2 tiles presented as 4 × 2 */
    expect(&w, HARP_ERR_FORMAT, "needs 8 tiles");
    w.m = m, w.K = 3;          /* the same words read at 3 bits per weight */
    expect(&w, HARP_ERR_FORMAT, "needs 6 tiles");
    w.K = 2, w.codes = NULL;
    expect(&w, HARP_ERR_FORMAT, "code plane is missing");
    w.codes = codes, w.tlut = NULL;
    expect(&w, HARP_ERR_FORMAT, "table (512 × 2 fp16) is missing");
    uint16_t bad[2 * HARP_HYB_N];
    memcpy(bad, tlut, sizeof bad);
    bad[77] = 0x7C00;   /* +inf */
    w.tlut = bad;
    expect(&w, HARP_ERR_FORMAT, "entry 77 is not finite");
    memset(bad, 0, sizeof bad);
    expect(&w, HARP_ERR_FORMAT, "all zero");
    w.tlut = tlut, w.code = HARP_TCODE_1MAD;
    CHECK_OK(harp_tmat_check(&w, NAME));   /* computed codes need no table */
    w.code = (harp_tcode)9;
    expect(&w, HARP_ERR_FORMAT, "unknown trellis code");
    w.code = HARP_TCODE_HYB, w.K = 5;
    expect(&w, HARP_ERR_FORMAT, "K = 5");
    w.K = 2, w.scale = NAN;
    expect(&w, HARP_ERR_FORMAT, "scale is not finite");
    w.scale = 1, w.n = 0;
    expect(&w, HARP_ERR_SHAPE, "shape");
    harp_tcode c;
    CHECK(harp_tcode_parse("hyb", &c) == HARP_OK && c == HARP_TCODE_HYB);
    CHECK(harp_tcode_parse("e8p", &c) == HARP_ERR_INVALID_ARG && strstr(harp_last_error(), "1mad, 3inst, hyb"));
    free(codes);
    printf("%d passed, %d failed\n", t_pass_, t_fail_);
    return t_fail_ ? 1 : 0;
}
