/* Clip-ratio search (aq.h, algorithms.md §6.3). OURS: the "gradual binary search" of arXiv 2504.13989
 * is described but unpublished, so this is the spec's implementable stand-in — classes in order, each
 * a ternary search with the others frozen, optional warm-started passes — plus one safeguard of ours:
 * a class takes the best point evaluated, never one worse than its starting ratio or no clipping. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aq.h"
#include "core/core.h"

harp_clip_search harp_clip_search_default(int n_classes) {
    harp_clip_search s;
    memset(&s, 0, sizeof s);
    s.n_classes = n_classes;
    s.passes = 1;
    s.iters = 10;
    s.lo = 0.5;
    s.hi = 1.0;
    s.warm = 0.1;
    return s;
}

typedef struct clip_state {
    harp_clip_loss_fn loss;
    void *user;
    double *work;   /* the ratio vector handed to the loss */
    int pass, cls;
    double best_c, best_f;
    int64_t evals;
} clip_state;

/* Evaluates ratio c for the current class and keeps it if better (ties: the larger ratio). */
static harp_status clip_eval(clip_state *S, double c, double *f) {
    S->work[S->cls] = c;
    double v = NAN;
    HARP_TRY(S->loss(S->user, S->pass, S->cls, S->work, &v));
    S->evals++;
    if (isnan(v)) return harp_err(HARP_ERR_NUMERIC, "clip search: loss of class %d at ratio %.6f is NaN", S->cls, c);
    if (v < S->best_f || (v == S->best_f && c > S->best_c)) S->best_f = v, S->best_c = c;
    *f = v;
    return HARP_OK;
}

static harp_status clip_class(const harp_clip_search *s, clip_state *S, double *ratios) {
    const double c0 = ratios[S->cls];
    double a = s->lo, b = s->hi, f = 0, f1 = 0, f2 = 0;
    if (S->pass > 0) a = fmax(s->lo, c0 - s->warm), b = fmin(s->hi, c0 + s->warm);
    S->best_c = c0, S->best_f = INFINITY;
    HARP_TRY(clip_eval(S, c0, &f));
    if (c0 != s->hi) HARP_TRY(clip_eval(S, s->hi, &f));
    for (int it = 0; it < s->iters; it++) {
        const double c1 = a + (b - a) / 3, c2 = b - (b - a) / 3;
        HARP_TRY(clip_eval(S, c1, &f1));
        HARP_TRY(clip_eval(S, c2, &f2));
        if (f1 <= f2) b = c2;
        else a = c1;
    }
    HARP_TRY(clip_eval(S, (a + b) / 2, &f));
    ratios[S->cls] = S->work[S->cls] = S->best_c;
    return HARP_OK;
}

harp_status harp_clip_search_run(const harp_clip_search *s, harp_clip_loss_fn loss, void *user, double *ratios,
                                 double *losses, int64_t *n_evals) {
    if (!s || !loss || !ratios) return harp_err(HARP_ERR_INVALID_ARG, "clip search: NULL argument");
    if (s->n_classes < 1 || s->passes < 1 || s->iters < 0 || !(s->lo > 0 && s->lo < s->hi && s->hi <= 1) ||
        !(s->warm > 0))
        return harp_err(HARP_ERR_INVALID_ARG,
                        "clip search: bad schedule (classes %d, passes %d, iters %d, bracket [%g, %g], warm %g)",
                        s->n_classes, s->passes, s->iters, s->lo, s->hi, s->warm);
    for (int k = 0; k < s->n_classes; k++)
        if (!(ratios[k] > 0 && ratios[k] <= 1))
            return harp_err(HARP_ERR_INVALID_ARG, "clip search: starting ratio %g of class %d outside (0, 1]", ratios[k], k);
    clip_state S = {loss, user, harp_xmalloc((size_t)s->n_classes * sizeof(double), "clip ratios"), 0, 0, 0, 0, 0};
    if (!S.work) return HARP_ERR_OOM;
    memcpy(S.work, ratios, (size_t)s->n_classes * sizeof(double));
    harp_status st = HARP_OK;
    const int64_t total = (int64_t)s->n_classes * s->passes;
    for (S.pass = 0; S.pass < s->passes && st == HARP_OK; S.pass++)
        for (S.cls = 0; S.cls < s->n_classes && st == HARP_OK; S.cls++) {
            st = clip_class(s, &S, ratios);
            if (st == HARP_OK && losses) losses[S.cls] = S.best_f;
            if (st == HARP_OK && s->progress &&
                s->progress(s->progress_user, "clip", (int64_t)S.pass * s->n_classes + S.cls + 1, total))
                st = harp_err(HARP_ERR_CANCELLED, "clip search: cancelled");
        }
    free(S.work);
    if (n_evals) *n_evals = S.evals;
    return st;
}
