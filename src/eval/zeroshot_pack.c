/* Zero-shot batch packer. One question's requests are a handful of short sequences; fed one by one
 * they make the linear layers run as 5-60-row GEMMs whose cost is dominated by packing the weights.
 * Here whole items are packed into one multi-sequence batch of up to harp_ctx_max_rows rows: per
 * item, the token prefix that all its requests share (the question, for ARC/PIQA/HellaSwag; the
 * sentence start for Winogrande) is one sequence, and each request's remaining input tokens are a
 * child sequence that attends to it -- so the shared context is still evaluated once per item.
 * The log-likelihood of request j is the sum over its continuation tokens of log p(token | the
 * tokens before it), read from the logits of the row holding the token before it; only those rows
 * go through the output head. Same arithmetic as the one-request-at-a-time scorer, up to the
 * row-count dependence of sgemm (float noise). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "zeroshot_internal.h"

/* One continuation token to score: logits row index (into p->logits), target id, item slot, choice. */
typedef struct term {
    int lrow;
    int32_t target;
    int slot, choice;
} term;

typedef struct pending {
    int index;
    const harp_zs_item *it;
    double ll[HARP_ZS_MAX_CHOICES];
} pending;

struct zs_pack {
    harp_ctx *c;
    int vocab, max_rows, max_lrows;
    int32_t *tokens;      /* max_rows */
    harp_seq *seqs;       /* max_rows (no empty sequences are added) */
    int32_t *lrows;       /* logit rows asked (max_lrows)            */
    int *row_to_l;        /* batch row -> index in lrows, -1 = none  */
    float *logits;        /* max_lrows * vocab                       */
    double *lse;          /* per logit row: max and log(sum exp)     */
    float *lmax;
    term *terms;
    int n_terms, cap_terms;
    pending *items;
    int n_items, cap_items;
    int rows, n_seqs, n_lrows;
    int64_t fed, scored;
};

harp_status zs_pack_create(harp_ctx *c, int vocab, zs_pack **out) {
    *out = NULL;
    zs_pack *p = harp_xcalloc(1, sizeof *p, "zeroshot packer");
    if (!p) return HARP_ERR_OOM;
    p->c = c;
    p->vocab = vocab;
    p->max_rows = harp_ctx_max_rows(c);
    /* bound the logits buffer (~128 MiB) for large vocabularies */
    int lim = (int)(((size_t)1 << 25) / (size_t)vocab);
    p->max_lrows = p->max_rows < lim ? p->max_rows : (lim > 32 ? lim : 32);
    p->tokens = harp_xmalloc((size_t)p->max_rows * sizeof *p->tokens, "zeroshot batch tokens");
    p->seqs = harp_xmalloc((size_t)p->max_rows * sizeof *p->seqs, "zeroshot batch sequences");
    p->row_to_l = harp_xmalloc((size_t)p->max_rows * sizeof *p->row_to_l, "zeroshot batch rows");
    p->lrows = harp_xmalloc((size_t)p->max_lrows * sizeof *p->lrows, "zeroshot logit rows");
    p->logits = harp_xmalloc((size_t)p->max_lrows * (size_t)vocab * sizeof *p->logits, "zeroshot logits");
    p->lse = harp_xmalloc((size_t)p->max_lrows * sizeof *p->lse, "zeroshot log-sum-exp");
    p->lmax = harp_xmalloc((size_t)p->max_lrows * sizeof *p->lmax, "zeroshot row maxima");
    if (!p->tokens || !p->seqs || !p->row_to_l || !p->lrows || !p->logits || !p->lse || !p->lmax) {
        zs_pack_free(p);
        return HARP_ERR_OOM;
    }
    for (int i = 0; i < p->max_rows; i++) p->row_to_l[i] = -1;
    *out = p;
    return HARP_OK;
}

void zs_pack_free(zs_pack *p) {
    if (!p) return;
    HARP_FREE_ALL(p->tokens, p->seqs, p->lrows, p->row_to_l, p->logits, p->lse, p->lmax, p->terms, p->items, p);
}

void zs_pack_counts(const zs_pack *p, int64_t *fed, int64_t *scored) {
    *fed = p->fed;
    *scored = p->scored;
}

static harp_status grow(void **a, int *cap, int need, size_t elem, const char *what) {
    if (need <= *cap) return HARP_OK;
    int nc = *cap ? *cap * 2 : 64;
    while (nc < need) nc *= 2;
    void *n = realloc(*a, (size_t)nc * elem);
    if (!n) return harp_err(HARP_ERR_OOM, "zeroshot: out of memory for %d %s", nc, what);
    *a = n;
    *cap = nc;
    return HARP_OK;
}

harp_status zs_pack_flush(zs_pack *p, zs_done_fn done, void *user) {
    harp_status st = HARP_OK;
    if (p->rows > 0) {
        st = harp_ctx_eval_seqs(p->c, p->tokens, p->seqs, p->n_seqs, p->lrows, p->n_lrows, p->logits);
        p->fed += p->rows;
    }
    if (st == HARP_OK) {
        /* the same log-softmax arithmetic as the one-request scorer, once per logits row */
        for (int r = 0; r < p->n_lrows; r++) {
            const float *l = p->logits + (size_t)r * p->vocab;
            float mx = l[0];
            for (int i = 1; i < p->vocab; i++)
                if (l[i] > mx) mx = l[i];
            double s = 0.0;
            for (int i = 0; i < p->vocab; i++) s += exp((double)l[i] - (double)mx);
            p->lmax[r] = mx;
            p->lse[r] = log(s);
        }
        for (int k = 0; k < p->n_terms; k++) {
            const term *t = &p->terms[k];
            double lp = (double)p->logits[(size_t)t->lrow * p->vocab + t->target] - (double)p->lmax[t->lrow] - p->lse[t->lrow];
            p->items[t->slot].ll[t->choice] += lp;
        }
        for (int i = 0; st == HARP_OK && i < p->n_items; i++)
            st = done(user, p->items[i].index, p->items[i].it, p->items[i].ll);
    }
    for (int r = 0; r < p->rows; r++) p->row_to_l[r] = -1;
    p->rows = p->n_seqs = p->n_lrows = p->n_terms = p->n_items = 0;
    return st;
}

/* Encoded requests of one item: input tokens (context + continuation minus its last token). */
typedef struct enc {
    int n;
    int32_t *in[HARP_ZS_MAX_CHOICES];
    int len[HARP_ZS_MAX_CHOICES], n_ctx[HARP_ZS_MAX_CHOICES], n_cont[HARP_ZS_MAX_CHOICES];
    int32_t last[HARP_ZS_MAX_CHOICES];  /* the continuation's last token (not an input) */
    int prefix, rows, lrows_max;
} enc;

static void enc_free(enc *e) {
    for (int j = 0; j < e->n; j++) free(e->in[j]);
}

static harp_status encode_item(const harp_tokenizer *t, const harp_zs_item *it, int add_bos, enc *e) {
    memset(e, 0, sizeof *e);
    for (int j = 0; j < it->n_choices; j++) {
        int32_t *ci = NULL, *ki = NULL;
        int nc = 0, nk = 0;
        HARP_TRY(zs_encode_request(t, it->ctx[j], it->cont[j], add_bos, &ci, &nc, &ki, &nk));
        e->n = j + 1;
        e->n_ctx[j] = nc;
        e->n_cont[j] = nk;
        e->len[j] = nk ? nc + nk - 1 : 0;
        e->in[j] = harp_xmalloc((size_t)(e->len[j] ? e->len[j] : 1) * sizeof(int32_t), "zeroshot request");
        if (e->in[j]) {
            if (nk) {
                memcpy(e->in[j], ci, (size_t)nc * sizeof *ci);
                memcpy(e->in[j] + nc, ki, (size_t)(nk - 1) * sizeof *ki);
                e->last[j] = ki[nk - 1];
            }
        }
        harp_free(ci);
        harp_free(ki);
        if (!e->in[j]) return HARP_ERR_OOM;
    }
    /* longest prefix shared by every scored request's input */
    int first = -1;
    for (int j = 0; j < e->n; j++)
        if (e->n_cont[j] && first < 0) first = j;
    int pre = first < 0 ? 0 : e->len[first];
    for (int j = first + 1; first >= 0 && j < e->n; j++) {
        if (!e->n_cont[j]) continue;
        int k = 0;
        while (k < pre && k < e->len[j] && e->in[j][k] == e->in[first][k]) k++;
        pre = k;
    }
    e->prefix = pre;
    e->rows = pre;
    for (int j = 0; j < e->n; j++) {
        if (!e->n_cont[j]) continue;
        e->rows += e->len[j] - pre;
        e->lrows_max += e->n_cont[j];
    }
    return HARP_OK;
}

/* Logits slot of batch row r, asking for it the first time. */
static int lrow_of(zs_pack *p, int r) {
    if (p->row_to_l[r] < 0) {
        p->row_to_l[r] = p->n_lrows;
        p->lrows[p->n_lrows++] = r;
    }
    return p->row_to_l[r];
}

static harp_status add_encoded(zs_pack *p, const enc *e, const harp_zs_item *it, int index) {
    HARP_TRY(grow((void **)&p->items, &p->cap_items, p->n_items + 1, sizeof *p->items, "pending items"));
    HARP_TRY(grow((void **)&p->terms, &p->cap_terms, p->n_terms + e->lrows_max, sizeof *p->terms, "scored tokens"));
    int slot = p->n_items++;
    pending *pd = &p->items[slot];
    pd->index = index;
    pd->it = it;
    for (int j = 0; j < HARP_ZS_MAX_CHOICES; j++) pd->ll[j] = 0.0;
    int root = -1, root_row = p->rows, first = -1;
    for (int j = 0; j < e->n && first < 0; j++)
        if (e->n_cont[j]) first = j;
    if (first < 0) return HARP_OK;
    if (e->prefix > 0) {
        memcpy(p->tokens + p->rows, e->in[first], (size_t)e->prefix * sizeof(int32_t));
        root = p->n_seqs;
        p->seqs[p->n_seqs++] = (harp_seq){e->prefix, -1};
        p->rows += e->prefix;
    }
    for (int j = 0; j < e->n; j++) {
        if (!e->n_cont[j]) continue;
        int rest = e->len[j] - e->prefix, start = p->rows;
        if (rest > 0) {
            memcpy(p->tokens + p->rows, e->in[j] + e->prefix, (size_t)rest * sizeof(int32_t));
            p->seqs[p->n_seqs++] = (harp_seq){rest, root};
            p->rows += rest;
        }
        /* continuation token k (0-based) is predicted by input position n_ctx - 1 + k */
        for (int k = 0; k < e->n_cont[j]; k++) {
            int pos = e->n_ctx[j] - 1 + k;
            int row = pos < e->prefix ? root_row + pos : start + (pos - e->prefix);
            int32_t target = k + 1 < e->n_cont[j] ? e->in[j][pos + 1] : e->last[j];
            p->terms[p->n_terms++] = (term){lrow_of(p, row), target, slot, j};
        }
        p->scored += e->n_cont[j];
    }
    return HARP_OK;
}

harp_status zs_pack_add(zs_pack *p, const harp_tokenizer *t, const harp_zs_item *it, int index, int add_bos,
                        int *added, zs_done_fn done, void *user) {
    *added = 0;
    enc e;
    harp_status st = encode_item(t, it, add_bos, &e);
    if (st == HARP_OK && e.rows <= p->max_rows && e.lrows_max <= p->max_lrows) {
        if (p->rows + e.rows > p->max_rows || p->n_lrows + e.lrows_max > p->max_lrows)
            st = zs_pack_flush(p, done, user);
        if (st == HARP_OK) st = add_encoded(p, &e, it, index);
        if (st == HARP_OK) *added = 1;
    }
    enc_free(&e);
    return st;
}
