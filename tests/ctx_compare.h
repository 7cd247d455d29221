/* Two contexts of one model on different backends (or engines), compared the way issue 12's
 * acceptance reads: logits relative L2 ‖t − r‖/‖r‖ over an np-token prompt (all rows) and nd decode
 * steps both fed the reference's greedy token, then ng greedy tokens on each alone from fresh caches
 * (first divergence and the reference's top-2 gap there, relative to its top logit). */
#ifndef HARP_TEST_CTX_COMPARE_H
#define HARP_TEST_CTX_COMPARE_H
#include <math.h>
#include <stdlib.h>

#include "harp/model.h"
#include "test_util.h"

typedef struct ctx_cmp {
    double prompt, dec;   /* max relative L2 over the prompt rows / decode steps */
    int same, div;        /* greedy: tokens identical before the first divergence (div = -1: none) */
    float gap;            /* reference's top-2 gap at the divergence, relative */
    double dec_first;     /* the first decode step's relative L2 */
    int dec_at;           /* the decode step of the max */
} ctx_cmp;

static inline double cc_rel_l2(const float *a, const float *b, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), den += (double)b[i] * b[i];
    const double e = sqrt(num / (den > 0 ? den : 1));
    return e == e ? e : INFINITY;
}

static inline int cc_argmax(const float *x, int n, float *second) {
    int a = 0, b = -1;
    for (int i = 1; i < n; i++) {
        if (x[i] > x[a]) b = a, a = i;
        else if (b < 0 || x[i] > x[b]) b = i;
    }
    if (second) *second = b >= 0 ? x[b] : x[a];
    return a;
}

static inline ctx_cmp ctx_compare(harp_ctx *ref, harp_ctx *t, int V, int np, int nd, int ng) {
    ctx_cmp r = {0, 0, 0, -1, 0, 0, 0};
    float *lr = malloc(sizeof(float) * (size_t)np * V), *lt = malloc(sizeof(float) * (size_t)np * V);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)np);
    for (int i = 0; i < np; i++) ids[i] = (int32_t)((i * 7919 + 13) % V);
    CHECK_OK(harp_ctx_eval(ref, ids, np, lr, 1));
    CHECK_OK(harp_ctx_eval(t, ids, np, lt, 1));
    for (int i = 0; i < np; i++) r.prompt = fmax(r.prompt, cc_rel_l2(lt + (size_t)i * V, lr + (size_t)i * V, V));
    int32_t tok = cc_argmax(lr + (size_t)(np - 1) * V, V, NULL);
    for (int s = 0; s < nd; s++) {
        CHECK_OK(harp_ctx_eval(ref, &tok, 1, lr, 0));
        CHECK_OK(harp_ctx_eval(t, &tok, 1, lt, 0));
        const double e = cc_rel_l2(lt, lr, V);
        if (!s) r.dec_first = e;
        if (e > r.dec || e != e) r.dec = e, r.dec_at = s;
        tok = cc_argmax(lr, V, NULL);
    }
    harp_ctx_truncate(ref, 0);
    harp_ctx_truncate(t, 0);
    int32_t tr = ids[0], tt = ids[0];
    for (int s = 0; s < ng; s++) {
        CHECK_OK(harp_ctx_eval(ref, &tr, 1, lr, 0));
        CHECK_OK(harp_ctx_eval(t, &tt, 1, lt, 0));
        float second = 0;
        tr = cc_argmax(lr, V, &second);
        tt = cc_argmax(lt, V, NULL);
        if (tr != tt) {
            r.div = s;
            r.gap = (lr[tr] - second) / fmaxf(fabsf(lr[tr]), 1e-30f);
            break;
        }
        r.same++;
    }
    free(lr), free(lt), free(ids);
    return r;
}
#endif
