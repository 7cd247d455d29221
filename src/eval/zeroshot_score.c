/* Zero-shot scoring: log-likelihood of each continuation given its context, computed the way
 * lm-evaluation-harness computes it for Hugging Face causal models, with a KV-cache reuse scheme
 * that evaluates a shared context once per question. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "harp/zeroshot.h"
#include "zeroshot_internal.h"

static int is_py_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The harness (HFLM._encode_pair): trailing whitespace of the context moves to the front of the
 * continuation; then whole = tok(context + continuation), context_enc = tok(context),
 * continuation_enc = whole[len(context_enc):]. The continuation's tokens are therefore the ones
 * SentencePiece produces in the joined string, not a separate encoding of the continuation. */
harp_status harp_zs_encode_pair(const harp_tokenizer *t, const char *ctx, const char *cont,
                        int add_bos, int32_t **ctx_ids, int *n_ctx, int32_t **cont_ids,
                        int *n_cont) {
    if (!t || !ctx || !cont || !ctx_ids || !n_ctx || !cont_ids || !n_cont)
        return harp_err(HARP_ERR_INVALID_ARG, "harp_zs_encode_pair: NULL argument");
    size_t lc = strlen(ctx), lk = strlen(cont);
    size_t keep = lc;
    while (keep > 0 && is_py_space(ctx[keep - 1])) keep--;
    char *whole = harp_xmalloc(lc + lk + 1, "zeroshot request");
    if (!whole) return HARP_ERR_OOM;
    memcpy(whole, ctx, lc);
    memcpy(whole + lc, cont, lk);
    whole[lc + lk] = 0;
    int32_t *w = NULL, *c = NULL;
    size_t nw = 0, nc = 0;
    harp_status st = harp_tokenize(t, whole, lc + lk, add_bos, &w, &nw);
    if (st == HARP_OK) st = harp_tokenize(t, whole, keep, add_bos, &c, &nc);
    free(whole);
    if (st != HARP_OK) {
        harp_free(w);
        harp_free(c);
        return st;
    }
    size_t ncont = nw > nc ? nw - nc : 0;
    int32_t *k = harp_xmalloc((ncont ? ncont : 1) * sizeof *k, "zeroshot continuation");
    if (!k) {
        harp_free(w);
        harp_free(c);
        return HARP_ERR_OOM;
    }
    if (ncont) memcpy(k, w + nc, ncont * sizeof *k);
    harp_free(w);
    *ctx_ids = c;
    *n_ctx = (int)nc;
    *cont_ids = k;
    *n_cont = (int)ncont;
    return HARP_OK;
}

static double log_prob(const float *logits, int vocab, int32_t tok) {
    float mx = logits[0];
    for (int i = 1; i < vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double s = 0.0;
    for (int i = 0; i < vocab; i++) s += exp((double)logits[i] - (double)mx);
    return (double)logits[tok] - (double)mx - log(s);
}

/* Scratch kept across items: what the KV cache holds and the last context's final logits. */
typedef struct zs_state {
    int vocab, cap;
    int32_t *cached;     /* tokens in the cache (cap)          */
    int n_cached;
    float *ctx_logits;   /* logits after the last context      */
    int ctx_logits_len;  /* its context length; -1 = invalid   */
    float *cont_logits;  /* cont_rows * vocab                  */
    int cont_rows;
} zs_state;

static harp_status state_init(zs_state *s, int vocab, int cap) {
    memset(s, 0, sizeof *s);
    s->vocab = vocab;
    s->cap = cap;
    s->ctx_logits_len = -1;
    s->cached = harp_xmalloc((size_t)cap * sizeof *s->cached, "zeroshot cache ids");
    s->ctx_logits = harp_xmalloc((size_t)vocab * sizeof(float), "zeroshot logits");
    if (!s->cached || !s->ctx_logits) return HARP_ERR_OOM;
    return HARP_OK;
}

static void state_free(zs_state *s) {
    free(s->cached);
    free(s->ctx_logits);
    free(s->cont_logits);
}

static harp_status ensure_cont_logits(zs_state *s, int rows) {
    if (rows <= s->cont_rows) return HARP_OK;
    int want = rows < 64 ? 64 : rows;
    float *nl = realloc(s->cont_logits, (size_t)want * (size_t)s->vocab * sizeof(float));
    if (!nl) return harp_err(HARP_ERR_OOM, "zeroshot: out of memory for %d rows of logits", want);
    s->cont_logits = nl;
    s->cont_rows = want;
    return HARP_OK;
}

/* Scores one request. ctx/cont token arrays as from harp_zs_encode_pair. */
static harp_status score_request(harp_ctx *c, zs_state *s, int32_t *ctx, int n_ctx, const int32_t *cont,
                         int n_cont, double *ll, int64_t *fed) {
    *ll = 0.0;
    if (n_cont == 0) return HARP_OK;
    /* left-truncate the context as the harness does when the request exceeds the window */
    if (n_ctx + n_cont - 1 > s->cap) {
        int drop = n_ctx + n_cont - 1 - s->cap;
        if (drop >= n_ctx) return harp_err(HARP_ERR_INVALID_ARG, "zeroshot: continuation of %d tokens exceeds the %d-token window", n_cont, s->cap);
        ctx += drop;
        n_ctx -= drop;
        s->ctx_logits_len = -1;
    }
    int lcp = 0;
    int lim = n_ctx < s->n_cached ? n_ctx : s->n_cached;
    while (lcp < lim && s->cached[lcp] == ctx[lcp]) lcp++;
    if (lcp == n_ctx && s->ctx_logits_len == n_ctx) {
        harp_ctx_truncate(c, n_ctx);
    } else {
        int keep = lcp < n_ctx - 1 ? lcp : n_ctx - 1;
        harp_ctx_truncate(c, keep);
        HARP_TRY(harp_ctx_eval(c, ctx + keep, n_ctx - keep, s->ctx_logits, 0));
        *fed += n_ctx - keep;
        memcpy(s->cached + keep, ctx + keep, (size_t)(n_ctx - keep) * sizeof *ctx);
        s->ctx_logits_len = n_ctx;
    }
    s->n_cached = n_ctx;
    double sum = log_prob(s->ctx_logits, s->vocab, cont[0]);
    if (n_cont > 1) {
        HARP_TRY(ensure_cont_logits(s, n_cont - 1));
        HARP_TRY(harp_ctx_eval(c, cont, n_cont - 1, s->cont_logits, 1));
        *fed += n_cont - 1;
        memcpy(s->cached + n_ctx, cont, (size_t)(n_cont - 1) * sizeof *cont);
        s->n_cached = n_ctx + n_cont - 1;
        for (int j = 1; j < n_cont; j++)
            sum += log_prob(s->cont_logits + (size_t)(j - 1) * (size_t)s->vocab, s->vocab, cont[j]);
    }
    *ll = sum;
    return HARP_OK;
}

harp_status zs_encode_request(const harp_tokenizer *t, const char *ctx, const char *cont, int add_bos,
                              int32_t **ctx_ids, int *n_ctx, int32_t **cont_ids, int *n_cont) {
    int32_t *ci = NULL, *ki = NULL;
    int nci = 0, nki = 0;
    HARP_TRY(harp_zs_encode_pair(t, ctx, cont, add_bos, &ci, &nci, &ki, &nki));
    if (nci == 0) {
        /* the harness scores an empty context after the end-of-text token */
        harp_free(ci);
        ci = harp_xmalloc(sizeof *ci, "zeroshot context");
        if (!ci) {
            harp_free(ki);
            return HARP_ERR_OOM;
        }
        int32_t e = harp_tokenizer_eos(t);
        ci[0] = e >= 0 ? e : 0;
        nci = 1;
    }
    *ctx_ids = ci;
    *n_ctx = nci;
    *cont_ids = ki;
    *n_cont = nki;
    return HARP_OK;
}

static harp_status score_item_state(harp_ctx *c, zs_state *s, const harp_tokenizer *t,
                            const harp_zs_item *it, int add_bos, double *ll, int64_t *fed,
                            int64_t *scored) {
    for (int i = 0; i < it->n_choices; i++) {
        int32_t *ci = NULL, *ki = NULL;
        int nci = 0, nki = 0;
        HARP_TRY(zs_encode_request(t, it->ctx[i], it->cont[i], add_bos, &ci, &nci, &ki, &nki));
        harp_status st = score_request(c, s, ci, nci, ki, nki, &ll[i], fed);
        if (scored) *scored += nki;
        harp_free(ci);
        harp_free(ki);
        if (st != HARP_OK) return st;
    }
    return HARP_OK;
}

harp_status harp_zs_score_item(harp_model *m, harp_ctx *c, const harp_zs_item *it, int add_bos,
                       double *ll, int64_t *n_fed) {
    if (!m || !c || !it || !ll) return harp_err(HARP_ERR_INVALID_ARG, "harp_zs_score_item: NULL argument");
    const harp_tokenizer *t = harp_model_tokenizer(m);
    if (!t) return harp_err(HARP_ERR_INVALID_ARG, "zeroshot: the model has no tokenizer");
    harp_model_info info;
    HARP_TRY(harp_model_get_info(m, &info));
    /* Requests longer than the model's window are left-truncated to it (as the harness does);
     * a context c created smaller makes harp_ctx_eval report the overflow. */
    zs_state s;
    harp_status st = state_init(&s, info.vocab_size, info.max_seq_len > 0 ? info.max_seq_len : 2048);
    harp_ctx_truncate(c, 0);
    int64_t fed = 0;
    if (st == HARP_OK) st = score_item_state(c, &s, t, it, add_bos, ll, &fed, NULL);
    state_free(&s);
    if (n_fed) *n_fed = fed;
    return st;
}

/* Per-item bookkeeping of harp_zs_eval, called in item order by both scoring paths. */
typedef struct eval_acc {
    const harp_zs_params *p;
    const harp_zs_dataset *d;
    const char *stage;
    int64_t k_acc, k_norm;
} eval_acc;

static harp_status finish_item(void *user, int i, const harp_zs_item *it, const double *ll) {
    eval_acc *a = user;
    for (int j = 0; j < it->n_choices; j++)
        if (!isfinite(ll[j]))
            return harp_err(HARP_ERR_NUMERIC, "zeroshot %s item %d: log-likelihood of choice %d is not finite", a->stage,
                            i, j);
    if (a->p->on_item) a->p->on_item(a->p->on_item_user, i, it, ll);
    a->k_acc += harp_zs_argmax(ll, it->n_choices) == it->gold;
    a->k_norm += harp_zs_argmax_norm(it, ll) == it->gold;
    if (a->p->progress && a->p->progress(a->p->progress_user, a->stage, i + 1, a->d->n))
        return harp_err(HARP_ERR_CANCELLED, "zeroshot %s: cancelled", a->stage);
    return HARP_OK;
}

harp_status harp_zs_eval(harp_model *m, const harp_zs_dataset *d, const harp_zs_params *p,
                 harp_zs_result *out) {
    if (!m || !d || !out) return harp_err(HARP_ERR_INVALID_ARG, "harp_zs_eval: NULL argument");
    harp_zs_params dp = harp_zs_default_params();
    if (!p) p = &dp;
    memset(out, 0, sizeof *out);
    const harp_tokenizer *t = harp_model_tokenizer(m);
    if (!t) return harp_err(HARP_ERR_INVALID_ARG, "zeroshot: the model has no tokenizer");
    harp_model_info info;
    HARP_TRY(harp_model_get_info(m, &info));
    int cap = info.max_seq_len > 0 ? info.max_seq_len : 2048;
    harp_ctx *c = NULL;
    HARP_TRY(harp_ctx_create(m, cap, &c));
    zs_state s;
    zs_pack *pk = NULL;
    harp_status st = state_init(&s, info.vocab_size, cap);
    if (st == HARP_OK && !p->no_pack) st = zs_pack_create(c, info.vocab_size, &pk);
    eval_acc acc = {p, d, harp_zs_task_name(d->task), 0, 0};
    int64_t fed = 0, scored = 0;
    double t0 = harp_time_s();
    for (int i = 0; st == HARP_OK && i < d->n; i++) {
        const harp_zs_item *it = &d->items[i];
        int added = 0;
        if (pk) st = zs_pack_add(pk, t, it, i, p->add_bos, &added, finish_item, &acc);
        if (st != HARP_OK || added) continue;
        /* too long for one batch (or packing off): the one-request-at-a-time path, in order */
        if (pk) st = zs_pack_flush(pk, finish_item, &acc);
        double ll[HARP_ZS_MAX_CHOICES];
        if (pk) {
            /* a packed batch used the cache as scratch: nothing in it can be reused */
            s.n_cached = 0;
            s.ctx_logits_len = -1;
        }
        if (st == HARP_OK) st = score_item_state(c, &s, t, it, p->add_bos, ll, &fed, &scored);
        if (st == HARP_OK) st = finish_item(&acc, i, it, ll);
    }
    if (pk) {
        if (st == HARP_OK) st = zs_pack_flush(pk, finish_item, &acc);
        int64_t pf, ps;
        zs_pack_counts(pk, &pf, &ps);
        fed += pf;
        scored += ps;
    }
    zs_pack_free(pk);
    state_free(&s);
    harp_ctx_free(c);
    if (st != HARP_OK) return st;
    out->task = d->task;
    out->n = d->n;
    out->acc = (double)acc.k_acc / d->n;
    out->acc_norm = (double)acc.k_norm / d->n;
    out->acc_stderr = harp_zs_stderr01(acc.k_acc, d->n);
    out->acc_norm_stderr = harp_zs_stderr01(acc.k_norm, d->n);
    out->tokens_fed = fed;
    out->tokens_scored = scored;
    out->seconds = harp_time_s() - t0;
    return HARP_OK;
}
