/* Shared by the quantized-folder tests (test_qmodel.c, test_qmodel_qtip.c): Hessians of a model on a
 * fixed synthetic text, and the logits of a fixed token sequence on the prompt (matmul) and decode
 * (gemv) paths. */
#ifndef HARP_QMODEL_TEST_UTIL_H
#define HARP_QMODEL_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "harp.h"
#include "test_util.h"

#define QM_NTOK 12

static inline void qm_make_text(char *buf, size_t size) {
    static const char *const words[] = {"the", "cat", "sat", "on", "a", "mat", "and", "then", "it", "ran", "to",
                                        "see", "big", "red", "dog", "who", "was", "very", "happy", "today"};
    harp_rng r;
    harp_rng_seed(&r, 42);
    size_t o = 0;
    while (o + 16 < size) o += (size_t)snprintf(buf + o, size - o, "%s ", words[harp_rng_u64(&r) % 20]);
}

/* Hessians of model into dir (emptied first: a folder from an older run of another model is refused). */
static inline int qm_calibrate(const char *model, const harp_model_params *mp, const char *dir, int ctx) {
    for (int l = 0; l < 16; l++) {
        char name[32];
        snprintf(name, sizeof name, "layer_%03d.hess", l);
        char *p = harp_path_join(dir, name);
        if (p) unlink(p);
        free(p);
    }
    harp_model *m = NULL;
    CHECK_OK(harp_model_open(model, mp, &m));
    if (!m) return -1;
    static char text[20000];
    qm_make_text(text, sizeof text);
    harp_calib_params cp = harp_calib_default_params();
    cp.ctx = ctx;
    cp.nseq = 0;
    harp_calib_summary s;
    harp_status st = harp_calib_run(m, text, strlen(text), dir, &cp, &s);
    CHECK_OK(st);
    harp_model_free(m);
    return st ? -1 : 0;
}

/* logits of QM_NTOK tokens: batched (all rows) and one token at a time (gemv path) */
static inline void qm_eval_logits(harp_model *m, float *batched, float *single) {
    harp_model_info in;
    harp_model_get_info(m, &in);
    int32_t tok[QM_NTOK];
    for (int i = 0; i < QM_NTOK; i++) tok[i] = (int32_t)((i * 37 + 5) % in.vocab_size);
    harp_ctx *c = NULL;
    CHECK_OK(harp_ctx_create(m, 64, &c));
    CHECK_OK(harp_ctx_eval(c, tok, QM_NTOK, batched, 1));
    harp_ctx_truncate(c, 0);
    for (int i = 0; i < QM_NTOK; i++) CHECK_OK(harp_ctx_eval(c, tok + i, 1, single + (size_t)i * in.vocab_size, 0));
    harp_ctx_free(c);
}

#endif
