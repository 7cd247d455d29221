/* Shared by the W/A/KV execution tests: a model opened, offline-rotated (src/qmodel/wakv_apply.c),
 * optionally RTN-quantized, with the online R3 / R4 / R_o and the activation / KV quantizers of
 * model/slots.h switched on; and its NLL and KLD to a reference model over windows of a text, through
 * the one forward pass (harp_ctx_eval_windows + harp_ctx_score). */
#ifndef WAKV_EXEC_UTIL_H
#define WAKV_EXEC_UTIL_H
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harp/eval.h"
#include "harp/model.h"
#include "harp/tokenizer.h"
#include "model/model.h"
#include "model/slots.h"
#include "qmodel/wakv.h"
#include "test_util.h"

typedef struct wx_cfg {
    harp_wakv_rkind rot;   /* R1 = R2 kind */
    uint64_t seed;
    int r34;               /* online R3 / R4 / R_o */
    int w_bits;            /* 0 or 16: fp32 weights; else RTN with MSE clip, symmetric per channel */
    int a_bits, kv_bits;   /* 0 or 16: off; asymmetric, per token / per (token, head) */
    float clip;            /* activation and KV clip ratio */
} wx_cfg;

/* Opens path and applies c (NULL: the model as it is). */
static inline harp_model *wx_open(const char *path, const wx_cfg *c) {
    harp_model *m = NULL;
    harp_model_params mp = harp_model_default_params();
    if (harp_model_open(path, &mp, &m)) return NULL;
    if (!c) return m;
    harp_wakv_rot_params rp = harp_wakv_rot_params_default();
    rp.r1 = rp.r2 = c->rot;
    rp.r3 = rp.r4 = rp.ro = c->r34;
    rp.r1_expand = 0;
    rp.seed = c->seed;
    harp_wakv_dims dm = harp_wakv_model_dims(m);
    harp_wakv_rots R;
    harp_status st = harp_wakv_rots_create(&rp, &dm, &R);
    if (!st) {
        st = harp_wakv_model_rotate(m, &R);
        harp_wakv_rots_free(&R);
    }
    if (!st && c->w_bits && c->w_bits < 16) st = harp_wakv_model_wquant_rtn(m, c->w_bits, 0, 1, 1);
    harp_wakv_exec e;
    memset(&e, 0, sizeof e);
    e.r3 = e.r4 = e.ro = c->r34;
    if (c->a_bits && c->a_bits < 16) e.act = (harp_aq_fmt){c->a_bits, 0, 0, c->clip, 0};
    if (c->kv_bits && c->kv_bits < 16) e.kv = (harp_aq_fmt){c->kv_bits, 0, m->cfg.head_dim, c->clip, 1};
    if (!st) st = harp_model_set_exec(m, &e);
    if (st) {
        printf("wx_open %s: %s\n", path, harp_last_error());
        harp_model_free(m);
        return NULL;
    }
    return m;
}

/* Mean NLL of m and mean KLD(ref ‖ m) (ref may be NULL) over n_win windows of len tokens of ids. */
static inline int wx_eval(harp_model *m, harp_model *ref, const int32_t *ids, int n_win, int len, double *nll, double *kld) {
    harp_ctx_params cp = harp_ctx_default_params();
    cp.max_tokens = len;
    cp.max_rows = len;
    harp_ctx *c = NULL, *cr = NULL;
    if (harp_ctx_create_ex(m, &cp, &c) || (ref && harp_ctx_create_ex(ref, &cp, &cr))) {
        printf("wx_eval: %s\n", harp_last_error());
        harp_ctx_free(c);
        return 0;
    }
    int32_t *rows = malloc((size_t)len * sizeof *rows), *agree = malloc((size_t)len * sizeof *agree);
    double *nl = malloc((size_t)len * sizeof *nl), *kl = malloc((size_t)len * sizeof *kl);
    double sn = 0, sk = 0;
    int64_t cnt = 0, ok = 1;
    for (int w = 0; w < n_win && ok; w++) {
        const int32_t *t = ids + (size_t)w * len;
        for (int j = 0; j < len - 1; j++) rows[j] = j;
        ok = !harp_ctx_eval_windows(c, t, 1, len) && (!cr || !harp_ctx_eval_windows(cr, t, 1, len)) &&
             !harp_ctx_score(c, cr, rows, t + 1, len - 1, nl, kl, agree);
        for (int j = 0; ok && j < len - 1; j++, cnt++) sn += nl[j], sk += cr ? kl[j] : 0;
    }
    if (!ok) printf("wx_eval: %s\n", harp_last_error());
    *nll = cnt ? sn / (double)cnt : NAN;
    *kld = cnt ? sk / (double)cnt : NAN;
    free(rows), free(agree), free(nl), free(kl);
    harp_ctx_free(c);
    harp_ctx_free(cr);
    return (int)ok;
}

/* The tokens of a text file (BOS first), at most max_tokens of them. */
static inline int32_t *wx_tokens(const harp_model *m, const char *text_path, size_t max_bytes, size_t *n) {
    char *text = NULL;
    size_t len = 0;
    if (harp_read_file(text_path, &text, &len)) return NULL;
    if (len > max_bytes) len = max_bytes;
    while (len > 0 && ((unsigned char)text[len - 1] & 0xC0) == 0x80) len--;
    int32_t *ids = NULL;
    harp_status st = harp_tokenize(harp_model_tokenizer(m), text, len, 1, &ids, n);
    harp_free(text);
    return st ? NULL : ids;
}

#endif
