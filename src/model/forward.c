/* fp32 forward pass over a KV cache. Tokens are processed in sub-batches of up to HARP_BATCH rows:
 * every linear layer is one call of its harp_linear (sgemm for fp32), attention is sgemm per head,
 * so the prompt / perplexity path runs at BLAS speed while generation (1 row) uses gemv. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/kernels.h"
#include "model/model_internal.h"

#define HARP_BATCH 512

struct harp_ctx {
    harp_model *m;
    int max_tokens, pos, batch;
    float *kc, *vc;                 /* (n_layers, max_tokens, kv_dim) each */
    float *x, *xb, *q, *k, *v, *att, *g, *u, *S;
    float *kg, *vg;                 /* (batch, kv_dim): keys/values gathered for one sequence */
    int *seq_start, *seq_pos0, seq_cap;  /* per-sequence row offset and first position */
    harp_act_hook hook;
    void *hook_user;
};

harp_status harp_ctx_create(harp_model *m, int max_tokens, harp_ctx **out) {
    if (!m || !out) return harp_err(HARP_ERR_INVALID_ARG, "harp_ctx_create: NULL argument");
    *out = NULL;
    const harp_model_config *c = &m->cfg;
    if (max_tokens <= 0 || max_tokens > c->max_seq_len)
        return harp_err(HARP_ERR_INVALID_ARG, "context of %d tokens is outside 1..%d (the model's max_position_embeddings)",
                        max_tokens, c->max_seq_len);
    harp_ctx *x = harp_xcalloc(1, sizeof *x, "context");
    if (!x) return HARP_ERR_OOM;
    x->m = m;
    x->max_tokens = max_tokens;
    x->batch = max_tokens < HARP_BATCH ? max_tokens : HARP_BATCH;
    size_t B = (size_t)x->batch, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t cache = (size_t)c->n_layers * (size_t)max_tokens * kvd;
    size_t wide = qd > (size_t)c->dim ? qd : (size_t)c->dim;
    x->kc = harp_aligned_alloc(cache * 4, "key cache");
    x->vc = harp_aligned_alloc(cache * 4, "value cache");
    x->x = harp_aligned_alloc(B * c->dim * 4, "activations");
    x->xb = harp_aligned_alloc(B * wide * 4, "activations");
    x->q = harp_aligned_alloc(B * qd * 4, "queries");
    x->k = harp_aligned_alloc(B * kvd * 4, "keys");
    x->v = harp_aligned_alloc(B * kvd * 4, "values");
    x->att = harp_aligned_alloc(B * qd * 4, "attention output");
    x->g = harp_aligned_alloc(B * c->hidden_dim * 4, "mlp gate");
    x->u = harp_aligned_alloc(B * c->hidden_dim * 4, "mlp up");
    x->S = harp_aligned_alloc(B * (size_t)max_tokens * 4, "attention scores");
    if (!x->kc || !x->vc || !x->x || !x->xb || !x->q || !x->k || !x->v || !x->att || !x->g || !x->u || !x->S) {
        harp_ctx_free(x);
        return HARP_ERR_OOM;
    }
    *out = x;
    return HARP_OK;
}

void harp_ctx_free(harp_ctx *c) {
    if (!c) return;
    float *bufs[] = {c->kc, c->vc, c->x, c->xb, c->q, c->k, c->v, c->att, c->g, c->u, c->S, c->kg, c->vg};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) harp_free_aligned(bufs[i]);
    free(c->seq_start);
    free(c->seq_pos0);
    free(c);
}

int harp_ctx_pos(const harp_ctx *c) {
    return c ? c->pos : 0;
}

void harp_ctx_truncate(harp_ctx *c, int pos) {
    if (c && pos >= 0 && pos < c->pos) c->pos = pos;
}

void harp_ctx_set_hook(harp_ctx *c, harp_act_hook fn, void *user) {
    if (!c) return;
    c->hook = fn;
    c->hook_user = user;
}

/* One sub-batch of nb tokens at positions c->pos .. c->pos+nb-1. logits: nb rows or the last row. */
static void forward_batch(harp_ctx *c, const int32_t *tok, int nb, float *logits, int all_logits) {
    harp_model *m = c->m;
    const harp_model_config *cf = &m->cfg;
    int dim = cf->dim, hd = cf->head_dim, qd = cf->n_heads * hd, kvd = cf->n_kv_heads * hd, hid = cf->hidden_dim;
    int p0 = c->pos;
    for (int r = 0; r < nb; r++) memcpy(c->x + (size_t)r * dim, m->tok_emb + (size_t)tok[r] * dim, (size_t)dim * 4);
    for (int l = 0; l < cf->n_layers; l++) {
        harp_layer *L = &m->layers[l];
        float *kc = c->kc + (size_t)l * c->max_tokens * kvd, *vc = c->vc + (size_t)l * c->max_tokens * kvd;
        harp_rmsnorm(c->x, L->attn_norm, nb, dim, cf->norm_eps, c->xb);
        if (c->hook) c->hook(c->hook_user, l, 0, c->xb, nb, dim);
        harp_linear_apply(&L->q, c->xb, nb, c->q);
        harp_linear_apply(&L->k, c->xb, nb, kc + (size_t)p0 * kvd);
        harp_linear_apply(&L->v, c->xb, nb, vc + (size_t)p0 * kvd);
        harp_rope(c->q, nb, cf->n_heads, hd, p0, m->rope_inv_freq, cf->rope_layout);
        harp_rope(kc + (size_t)p0 * kvd, nb, cf->n_kv_heads, hd, p0, m->rope_inv_freq, cf->rope_layout);
        harp_attention(c->q, kc, vc, nb, p0, cf->n_heads, cf->n_kv_heads, hd, cf->sliding_window, c->S, c->att);
        if (c->hook) c->hook(c->hook_user, l, 1, c->att, nb, qd);
        harp_linear_apply(&L->o, c->att, nb, c->xb);
        for (size_t i = 0; i < (size_t)nb * dim; i++) c->x[i] += c->xb[i];
        harp_rmsnorm(c->x, L->ffn_norm, nb, dim, cf->norm_eps, c->xb);
        if (c->hook) c->hook(c->hook_user, l, 2, c->xb, nb, dim);
        harp_linear_apply(&L->gate, c->xb, nb, c->g);
        harp_linear_apply(&L->up, c->xb, nb, c->u);
        harp_swiglu(c->g, c->u, (size_t)nb * hid);
        if (c->hook) c->hook(c->hook_user, l, 3, c->g, nb, hid);
        harp_linear_apply(&L->down, c->g, nb, c->xb);
        for (size_t i = 0; i < (size_t)nb * dim; i++) c->x[i] += c->xb[i];
    }
    c->pos += nb;
    if (!logits) return;
    if (all_logits) {
        harp_rmsnorm(c->x, m->final_norm, nb, dim, cf->norm_eps, c->xb);
        harp_linear_apply(&m->head, c->xb, nb, logits);
    } else {
        harp_rmsnorm(c->x + (size_t)(nb - 1) * dim, m->final_norm, 1, dim, cf->norm_eps, c->xb);
        harp_linear_apply(&m->head, c->xb, 1, logits);
    }
}

harp_status harp_ctx_eval(harp_ctx *c, const int32_t *tokens, int n, float *logits, int all_logits) {
    if (!c || (!tokens && n > 0) || n < 0) return harp_err(HARP_ERR_INVALID_ARG, "harp_ctx_eval: bad argument");
    if (n == 0) return HARP_OK;
    if (n > c->max_tokens - c->pos)
        return harp_err(HARP_ERR_INVALID_ARG, "context: %d tokens do not fit (%d cached, capacity %d)", n, c->pos,
                        c->max_tokens);
    int V = c->m->cfg.vocab_size;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return harp_err(HARP_ERR_INVALID_ARG, "context: token id %d at index %d is outside the vocabulary (0..%d)",
                            (int)tokens[i], i, V - 1);
    for (int done = 0; done < n;) {
        int nb = n - done < c->batch ? n - done : c->batch;
        int last = done + nb == n;
        float *lg = NULL;
        if (logits && all_logits) lg = logits + (size_t)done * V;
        else if (logits && last) lg = logits;
        forward_batch(c, tokens + done, nb, lg, all_logits);
        done += nb;
    }
    return HARP_OK;
}

int harp_ctx_max_rows(const harp_ctx *c) {
    return c ? c->batch : 0;
}

/* Validates the sequence list and fills c->seq_start / c->seq_pos0 and *rows_out. */
static harp_status plan_seqs(harp_ctx *c, const harp_seq *seqs, int n_seqs, int *rows_out) {
    if (n_seqs > c->seq_cap) {
        int *a = realloc(c->seq_start, (size_t)n_seqs * sizeof *a);
        if (a) c->seq_start = a;
        int *b = a ? realloc(c->seq_pos0, (size_t)n_seqs * sizeof *b) : NULL;
        if (b) c->seq_pos0 = b;
        if (!a || !b) return harp_err(HARP_ERR_OOM, "context: out of memory for %d sequences", n_seqs);
        c->seq_cap = n_seqs;
    }
    int rows = 0;
    for (int s = 0; s < n_seqs; s++) {
        int n = seqs[s].n, p = seqs[s].parent;
        if (n < 0 || p < -1 || p >= s)
            return harp_err(HARP_ERR_INVALID_ARG,
                            "context: sequence %d has %d tokens and parent %d (need n >= 0, -1 <= parent < %d)", s, n, p, s);
        if (n > c->batch - rows)
            return harp_err(HARP_ERR_INVALID_ARG, "context: %d sequences hold more than %d rows (the batch capacity)",
                            n_seqs, c->batch);
        c->seq_start[s] = rows;
        c->seq_pos0[s] = p < 0 ? 0 : c->seq_pos0[p] + seqs[p].n;
        rows += n;
    }
    *rows_out = rows;
    return HARP_OK;
}

/* Attention of sequence s: its queries see all rows of its ancestors and, causally, its own rows.
 * A root sequence's keys are contiguous in the batch; otherwise they are gathered (ancestors
 * first, so that key index = position) into kg/vg and the single-sequence kernel runs on them. */
static void seq_attention(harp_ctx *c, const harp_seq *seqs, int s, const float *kb, const float *vb) {
    const harp_model_config *cf = &c->m->cfg;
    int hd = cf->head_dim, qd = cf->n_heads * hd, kvd = cf->n_kv_heads * hd;
    int n = seqs[s].n, p0 = c->seq_pos0[s], st = c->seq_start[s];
    const float *K = kb + (size_t)st * kvd, *V = vb + (size_t)st * kvd;
    if (seqs[s].parent >= 0) {
        for (int a = s; a >= 0; a = seqs[a].parent) {
            size_t off = (size_t)c->seq_pos0[a] * kvd, len = (size_t)seqs[a].n * kvd;
            memcpy(c->kg + off, kb + (size_t)c->seq_start[a] * kvd, len * 4);
            memcpy(c->vg + off, vb + (size_t)c->seq_start[a] * kvd, len * 4);
        }
        K = c->kg;
        V = c->vg;
    }
    harp_attention(c->q + (size_t)st * qd, K, V, n, p0, cf->n_heads, cf->n_kv_heads, hd,
                   cf->sliding_window, c->S, c->att + (size_t)st * qd);
}

harp_status harp_ctx_eval_seqs(harp_ctx *c, const int32_t *tokens, const harp_seq *seqs, int n_seqs,
                               const int32_t *logit_rows, int n_logit_rows, float *logits) {
    if (!c || !seqs || n_seqs < 0 || n_logit_rows < 0 || (n_logit_rows > 0 && (!logit_rows || !logits)))
        return harp_err(HARP_ERR_INVALID_ARG, "harp_ctx_eval_seqs: bad argument");
    int rows = 0;
    HARP_TRY(plan_seqs(c, seqs, n_seqs, &rows));
    if (rows == 0) return n_logit_rows ? harp_err(HARP_ERR_INVALID_ARG, "context: logits asked of an empty batch") : HARP_OK;
    if (!tokens) return harp_err(HARP_ERR_INVALID_ARG, "harp_ctx_eval_seqs: NULL tokens");
    harp_model *m = c->m;
    const harp_model_config *cf = &m->cfg;
    int V = cf->vocab_size;
    for (int i = 0; i < rows; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return harp_err(HARP_ERR_INVALID_ARG, "context: token id %d at index %d is outside the vocabulary (0..%d)",
                            (int)tokens[i], i, V - 1);
    for (int i = 0; i < n_logit_rows; i++)
        if (logit_rows[i] < 0 || logit_rows[i] >= rows)
            return harp_err(HARP_ERR_INVALID_ARG, "context: logit row %d is outside the batch (0..%d)", (int)logit_rows[i],
                            rows - 1);
    int dim = cf->dim, hd = cf->head_dim, qd = cf->n_heads * hd, kvd = cf->n_kv_heads * hd, hid = cf->hidden_dim;
    if (!c->kg) {
        c->kg = harp_aligned_alloc((size_t)c->batch * kvd * 4, "gathered keys");
        c->vg = harp_aligned_alloc((size_t)c->batch * kvd * 4, "gathered values");
        if (!c->kg || !c->vg) return HARP_ERR_OOM;
    }
    /* The batch occupies cache rows 0..rows-1; it is not one sequence, so the cache is left empty. */
    c->pos = 0;
    for (int r = 0; r < rows; r++) memcpy(c->x + (size_t)r * dim, m->tok_emb + (size_t)tokens[r] * dim, (size_t)dim * 4);
    for (int l = 0; l < cf->n_layers; l++) {
        harp_layer *L = &m->layers[l];
        float *kb = c->kc + (size_t)l * c->max_tokens * kvd, *vb = c->vc + (size_t)l * c->max_tokens * kvd;
        harp_rmsnorm(c->x, L->attn_norm, rows, dim, cf->norm_eps, c->xb);
        if (c->hook) c->hook(c->hook_user, l, 0, c->xb, rows, dim);
        harp_linear_apply(&L->q, c->xb, rows, c->q);
        harp_linear_apply(&L->k, c->xb, rows, kb);
        harp_linear_apply(&L->v, c->xb, rows, vb);
        for (int s = 0; s < n_seqs; s++) {
            if (!seqs[s].n) continue;
            int st = c->seq_start[s], p0 = c->seq_pos0[s];
            harp_rope(c->q + (size_t)st * qd, seqs[s].n, cf->n_heads, hd, p0, m->rope_inv_freq, cf->rope_layout);
            harp_rope(kb + (size_t)st * kvd, seqs[s].n, cf->n_kv_heads, hd, p0, m->rope_inv_freq, cf->rope_layout);
        }
        for (int s = 0; s < n_seqs; s++)
            if (seqs[s].n) seq_attention(c, seqs, s, kb, vb);
        if (c->hook) c->hook(c->hook_user, l, 1, c->att, rows, qd);
        harp_linear_apply(&L->o, c->att, rows, c->xb);
        for (size_t i = 0; i < (size_t)rows * dim; i++) c->x[i] += c->xb[i];
        harp_rmsnorm(c->x, L->ffn_norm, rows, dim, cf->norm_eps, c->xb);
        if (c->hook) c->hook(c->hook_user, l, 2, c->xb, rows, dim);
        harp_linear_apply(&L->gate, c->xb, rows, c->g);
        harp_linear_apply(&L->up, c->xb, rows, c->u);
        harp_swiglu(c->g, c->u, (size_t)rows * hid);
        if (c->hook) c->hook(c->hook_user, l, 3, c->g, rows, hid);
        harp_linear_apply(&L->down, c->g, rows, c->xb);
        for (size_t i = 0; i < (size_t)rows * dim; i++) c->x[i] += c->xb[i];
    }
    /* Only the asked rows go through the final norm and the head (gathered, in the asked order). */
    for (int i = 0; i < n_logit_rows; i += c->batch) {
        int nb = n_logit_rows - i < c->batch ? n_logit_rows - i : c->batch;
        for (int j = 0; j < nb; j++)
            harp_rmsnorm(c->x + (size_t)logit_rows[i + j] * dim, m->final_norm, 1, dim, cf->norm_eps,
                         c->xb + (size_t)j * dim);
        harp_linear_apply(&m->head, c->xb, nb, logits + (size_t)i * V);
    }
    return HARP_OK;
}
