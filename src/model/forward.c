/* The one forward pass. Every entry point -- one sequence continuing the KV cache (prompt and
 * decode, harp_ctx_eval), a batch of sequences that may form prefix trees (harp_ctx_eval_seqs),
 * independent windows with the logits kept on the backend (harp_ctx_eval_windows, the GPU
 * perplexity) -- builds a sequence plan and runs the same layer loop, which only calls backend
 * ops. On the CPU backend the ops are the kernels and call shapes of the code before the backend
 * interface (sgemm for many rows, gemv for one, sgemm attention per head), so results are
 * bit-identical to it. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model_internal.h"

static const harp_lgroup *group_of(const harp_ctx *c, int l, int gi) {
    return &c->m->layers[l].cfg.g[gi];
}

static void *handle_of(const harp_mweights *w, int l, int gi) {
    return w->groups[(size_t)l * HARP_LG_COUNT + gi];
}

/* Y = group gi of layer l applied to its input X (rows × g->in, the buffer is the group's input only,
 * changed in place): the online rotation (W/A/KV slot), the activation hook (it sees the input the
 * weights see, before any activation quantization: what calibration wants), the activation quantizer
 * (inside the product on a backend with linear_q), then the product. */
static harp_status group_linear(harp_ctx *c, const harp_mweights *w, int l, int gi, float *X, int rows, float *const *Y) {
    harp_backend *b = c->b;
    const harp_lgroup *g = group_of(c, l, gi);
    if (g->rot_in) HARP_TRY(b->vt->rotate(b, c->ws, g->rot_in, X, rows, g->in));
    if (c->hook) c->hook(c->hook_user, l, gi, X, rows, g->in);
    if (g->act_q && b->vt->linear_q) return b->vt->linear_q(b, c->ws, g, handle_of(w, l, gi), X, rows, Y);
    if (g->act_q) HARP_TRY(b->vt->aquant(b, c->ws, g->act_q, X, rows, g->in));
    return b->vt->linear(b, c->ws, g, handle_of(w, l, gi), X, rows, Y);
}

/* Whether group gi's input needs to exist on its own (an online rotation, the hook or an activation
 * quantizer works on it); if not, a backend with linear_ex takes the RMSNorm or SwiGLU before it and
 * the residual add after it into the product. */
static int fusable(const harp_ctx *c, const harp_lgroup *g) {
    return c->b->vt->linear_ex && !g->rot_in && !g->act_q && !c->hook;
}

/* Y = group gi of layer l applied to RMSNorm(c->x)·norm_w (through c->xb unless fused); flags
 * (HARP_LIN_FUSED_OUT) only where fusable. */
static harp_status norm_linear(harp_ctx *c, const harp_mweights *w, int l, int gi, const float *norm_w, int rows,
                               float *const *Y, unsigned flags) {
    harp_backend *b = c->b;
    const harp_lgroup *g = group_of(c, l, gi);
    const float eps = c->m->cfg.norm_eps;
    if (fusable(c, g)) return b->vt->linear_ex(b, c->ws, g, handle_of(w, l, gi), c->x, norm_w, eps, rows, Y, flags);
    HARP_TRY(b->vt->rmsnorm(b, c->ws, c->x, NULL, rows, c->m->cfg.dim, norm_w, eps, c->xb));
    return group_linear(c, w, l, gi, c->xb, rows, Y);
}

/* c->x += group gi of layer l applied to X (through c->xb unless fused); flags (HARP_LIN_GLU) only
 * where fusable. */
static harp_status linear_residual(harp_ctx *c, const harp_mweights *w, int l, int gi, float *X, int rows, unsigned flags) {
    harp_backend *b = c->b;
    const harp_lgroup *g = group_of(c, l, gi);
    float *x[1] = {c->x}, *xb[1] = {c->xb};
    if (fusable(c, g)) return b->vt->linear_ex(b, c->ws, g, handle_of(w, l, gi), X, NULL, 0.0f, rows, x, flags | HARP_LIN_ACCUMULATE);
    HARP_TRY(group_linear(c, w, l, gi, X, rows, xb));
    return b->vt->add(b, c->x, c->xb, (size_t)rows * c->m->cfg.dim);
}

/* A residual step and the next linear: c->x += group (lp, gp) of Xp, then Y = group (ln, gn) of
 * RMSNorm(c->x)·norm_w -- one backend op (linear_seam) where both are fusable, which joins the first's
 * output side to the second's input side where it can. */
static harp_status seam(harp_ctx *c, const harp_mweights *w, int lp, int gp, float *Xp, unsigned pflags, int ln, int gn,
                        const float *norm_w, int rows, float *const *Y, unsigned nflags) {
    harp_backend *b = c->b;
    const harp_lgroup *P = group_of(c, lp, gp), *N = group_of(c, ln, gn);
    if (b->vt->linear_seam && fusable(c, P) && fusable(c, N))
        return b->vt->linear_seam(b, c->ws, P, handle_of(w, lp, gp), Xp, pflags, N, handle_of(w, ln, gn), norm_w,
                                  c->m->cfg.norm_eps, c->x, rows, Y, nflags);
    HARP_TRY(linear_residual(c, w, lp, gp, Xp, rows, pflags));
    return norm_linear(c, w, ln, gn, norm_w, rows, Y, nflags);
}

/* Where layer l's q|k|v product goes: one row through a fusable group stays unsplit in c->qkv1 (its
 * slices are then q | k | v side by side: no split launch), else it is split into c->q, c->k, c->v.
 * Returns the linear's flags; q, k, v (optional) get the three rows' addresses. */
static unsigned qkv_out(const harp_ctx *c, int l, int rows, float *Y[3], float **q, float **k, float **v) {
    const harp_model_config *cf = &c->m->cfg;
    const harp_lgroup *g = group_of(c, l, HARP_LG_QKV);
    const int qd = cf->n_heads * cf->head_dim, kvd = cf->n_kv_heads * cf->head_dim;
    const int one = rows == 1 && c->qkv1 && fusable(c, g) && g->n_slices == 3 && g->out[0] == qd && g->out[1] == kvd && g->out[2] == kvd;
    Y[0] = one ? c->qkv1 : c->q, Y[1] = c->k, Y[2] = c->v;
    if (q) *q = Y[0], *k = one ? Y[0] + qd : c->k, *v = one ? *k + kvd : c->v;
    return one ? HARP_LIN_FUSED_OUT : 0;
}

/* One decoder layer over the plan's rows: c->x is updated in place. *qkv_ready: on entry, the
 * previous layer's seam already wrote this layer's q, k, v; on return, whether this layer wrote the
 * next one's. */
static harp_status layer_forward(harp_ctx *c, const harp_mweights *w, int l, const harp_plan *p, int *qkv_ready) {
    harp_backend *b = c->b;
    const harp_backend_i *vt = b->vt;
    const harp_model_config *cf = &c->m->cfg;
    const harp_layer_cfg *lc = &c->m->layers[l].cfg;
    int rows = p->rows, hd = cf->head_dim, hid = cf->hidden_dim;
    float *qkv[3], *q, *k, *v;
    const unsigned qflags = qkv_out(c, l, rows, qkv, &q, &k, &v);
    if (!*qkv_ready) HARP_TRY(norm_linear(c, w, l, HARP_LG_QKV, w->attn_norm[l], rows, qkv, qflags));
    const int fused_att = vt->rope_attention && !lc->r3;   /* RoPE, the store and attention in one op */
    if (fused_att)
        HARP_TRY(vt->rope_attention(b, c->ws, q, k, v, cf->n_heads, cf->n_kv_heads, hd, w->inv_freq, cf->rope_layout, &c->kv, l, p,
                                    c->att));
    else if (vt->rope_kv_store && !lc->r3)
        HARP_TRY(vt->rope_kv_store(b, c->ws, q, k, v, cf->n_heads, cf->n_kv_heads, hd, w->inv_freq, cf->rope_layout, &c->kv, l, p));
    else {
        HARP_TRY(vt->rope(b, c->ws, q, cf->n_heads, hd, w->inv_freq, cf->rope_layout, p));
        HARP_TRY(vt->rope(b, c->ws, k, cf->n_kv_heads, hd, w->inv_freq, cf->rope_layout, p));
        if (lc->r3) {
            HARP_TRY(vt->rotate(b, c->ws, lc->r3, q, rows * cf->n_heads, hd));
            HARP_TRY(vt->rotate(b, c->ws, lc->r3, k, rows * cf->n_kv_heads, hd));
        }
        HARP_TRY(vt->kv_store(b, c->ws, &c->kv, l, k, v, p));
    }
    if (!fused_att) HARP_TRY(vt->attention(b, c->ws, q, &c->kv, l, p, c->att));
    /* SwiGLU fused: up|gate's product stays whole in c->u (rows × [up | gate]), down reads silu(gate)·up */
    const harp_lgroup *gu = &lc->g[HARP_LG_UPGATE], *gd = &lc->g[HARP_LG_DOWN];
    const int glu = fusable(c, gu) && fusable(c, gd) && gu->n_slices == 2 && gu->out[0] == hid && gu->out[1] == hid &&
                    harp_backend_supports(b, HARP_OP_LINEAR_GLU, gd->qtype);
    float *u[1] = {c->u}, *ug[2] = {c->u, c->g};
    HARP_TRY(seam(c, w, l, HARP_LG_O, c->att, 0, l, HARP_LG_UPGATE, w->ffn_norm[l], rows, glu ? u : ug,
                  glu ? HARP_LIN_FUSED_OUT : 0));
    if (!glu) HARP_TRY(vt->swiglu(b, c->g, c->u, (size_t)rows * hid));
    float *down_in = glu ? c->u : c->g;
    const unsigned dflags = glu ? HARP_LIN_GLU : 0;
    *qkv_ready = l + 1 < c->d.n_layers && vt->linear_seam;
    if (*qkv_ready) {
        const unsigned nflags = qkv_out(c, l + 1, rows, qkv, NULL, NULL, NULL);
        return seam(c, w, l, HARP_LG_DOWN, down_in, dflags, l + 1, HARP_LG_QKV, w->attn_norm[l + 1], rows, qkv, nflags);
    }
    return linear_residual(c, w, l, HARP_LG_DOWN, down_in, rows, dflags);
}

static harp_status run_layers(harp_ctx *c, const harp_mweights *w, const harp_plan *p) {
    int qkv_ready = 0;
    for (int l = 0; l < c->d.n_layers; l++) HARP_TRY(layer_forward(c, w, l, p, &qkv_ready));
    return HARP_OK;
}

/* x[r] = tok_emb[tokens[r]]: a gather on the host from the model's own table, which no backend holds a
 * copy of (a 7B model's fp32 table is 0.5 GB, Llama-3's 2.1 GB); a device backend gets the rows by one
 * upload in stream order, before the step's launches (so a replayed graph starts from them). The
 * staging rows are the backend's page-locked memory where it has some: the upload then runs at the
 * link's speed without blocking the host, which is why an earlier upload must be finished before the
 * rows are overwritten. Threads split the rows of a large step (a perplexity batch gathers 16 MB at
 * ref-llama's 8 192 rows); copies only, so the result does not depend on the split. */
static harp_status embed(harp_ctx *c, const int32_t *tokens, int rows) {
    const size_t dim = (size_t)c->d.dim;
    const int host = c->b->vt->host_memory;
    float *x = host ? c->x : c->emb_rows;
    if (c->emb_pending) HARP_TRY(c->b->vt->sync(c->b));
    c->emb_pending = 0;
    const float *emb = c->m->tok_emb;
#pragma omp parallel for schedule(static) if ((size_t)rows * dim >= ((size_t)1 << 20))
    for (int r = 0; r < rows; r++) memcpy(x + (size_t)r * dim, emb + (size_t)tokens[r] * dim, dim * sizeof(float));
    if (host) return HARP_OK;
    c->emb_pending = c->b->vt->host_alloc != NULL;
    return c->b->vt->upload(c->b, c->x, x, (size_t)rows * dim * sizeof(float));
}

/* Embedding and every layer for the plan (tokens: host ids of its rows); leaves c->x. A backend with
 * graphs replays a decode step's launches from one captured graph (graph_begin). */
static harp_status forward_layers(harp_ctx *c, const int32_t *tokens, const harp_plan *p) {
    harp_backend *b = c->b;
    if (p->tree && !harp_backend_supports(b, HARP_OP_ATTENTION_TREE, c->kv.type))
        return harp_err(HARP_ERR_UNSUPPORTED,
                        "backend %s: batches of sequences with a parent (prefix trees) are not supported; use the CPU backend",
                        b->name);
    HARP_TRY(harp_model_weights(c->m, b, &c->w));
    const harp_mweights *w = c->w;
    HARP_TRY(embed(c, tokens, p->rows));
    HARP_TRY(b->vt->plan_begin(b, c->ws, p));
    int mode = HARP_GRAPH_PLAIN;
    if (b->vt->graph_begin && !c->hook) HARP_TRY(b->vt->graph_begin(b, c->ws, p, w, w->serial, &mode));
    if (mode == HARP_GRAPH_REPLAYED) return HARP_OK;
    harp_status st = run_layers(c, w, p);
    if (mode != HARP_GRAPH_CAPTURE || b->vt->graph_end(b, c->ws, st) == HARP_OK) return st;
    return run_layers(c, w, p);   /* the capture was dropped: nothing ran */
}

/* Final norm and head on rows lrows[0..n) of c->x (NULL: rows first..first+n-1), in chunks of
 * max_rows: logits (backend memory) gets n × vocab. */
static harp_status forward_head(harp_ctx *c, const int32_t *lrows, int first, int n, float *logits) {
    harp_backend *b = c->b;
    const harp_model *m = c->m;
    int dim = c->d.dim, R = c->d.max_rows;
    for (int i = 0; i < n; i += R) {
        int nb = n - i < R ? n - i : R;
        const float *x = lrows ? c->x : c->x + (size_t)(first + i) * dim;
        float *y[1] = {logits + (size_t)i * c->d.vocab};
        if (fusable(c, &m->head_g) && (!lrows || nb == 1)) {   /* the norm in the head's input side */
            const float *xr = lrows ? c->x + (size_t)lrows[i] * dim : x;
            HARP_TRY(b->vt->linear_ex(b, c->ws, &m->head_g, c->w->head, xr, c->w->final_norm, m->cfg.norm_eps, nb, y, 0));
            continue;
        }
        HARP_TRY(b->vt->rmsnorm(b, c->ws, x, lrows ? lrows + i : NULL, nb, dim, c->w->final_norm, m->cfg.norm_eps, c->xb));
        HARP_TRY(b->vt->linear(b, c->ws, &m->head_g, c->w->head, c->xb, nb, y));
    }
    return HARP_OK;
}

static harp_status check_tokens(const harp_ctx *c, const int32_t *tokens, int n) {
    int V = c->d.vocab;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return harp_err(HARP_ERR_INVALID_ARG, "context: token id %d at index %d is outside the vocabulary (0..%d)",
                            (int)tokens[i], i, V - 1);
    return HARP_OK;
}

/* The head for lrows (or the first n rows) into host memory: in place on a host backend, else
 * through c->logits a chunk at a time. */
static harp_status head_to_host(harp_ctx *c, const int32_t *lrows, int n, float *logits) {
    if (c->b->vt->host_memory) return forward_head(c, lrows, 0, n, logits);
    size_t V = (size_t)c->d.vocab;
    for (int i = 0; i < n; i += c->d.max_rows) {
        int nb = n - i < c->d.max_rows ? n - i : c->d.max_rows;
        HARP_TRY(forward_head(c, lrows ? lrows + i : NULL, i, nb, c->logits));
        HARP_TRY(c->b->vt->download(c->b, logits + (size_t)i * V, c->logits, (size_t)nb * V * sizeof(float)));
    }
    return HARP_OK;
}

harp_status harp_ctx_eval(harp_ctx *c, const int32_t *tokens, int n, float *logits, int all_logits) {
    if (!c || (!tokens && n > 0) || n < 0) return harp_err(HARP_ERR_INVALID_ARG, "harp_ctx_eval: bad argument");
    if (n == 0) return HARP_OK;
    if (n > c->d.max_tokens - c->pos)
        return harp_err(HARP_ERR_INVALID_ARG, "context: %d tokens do not fit (%d cached, capacity %d)", n, c->pos,
                        c->d.max_tokens);
    HARP_TRY(check_tokens(c, tokens, n));
    size_t V = (size_t)c->d.vocab;
    for (int done = 0; done < n;) {
        int nb = n - done < c->d.max_rows ? n - done : c->d.max_rows;
        harp_span s = {0, nb, c->pos, -1, c->pos};
        harp_plan p = {&s, 1, nb, 0, c->pos == 0};
        HARP_TRY(forward_layers(c, tokens + done, &p));
        c->pos += nb;
        int32_t last = nb - 1;
        if (logits && all_logits) HARP_TRY(head_to_host(c, NULL, nb, logits + (size_t)done * V));
        else if (logits && done + nb == n) HARP_TRY(head_to_host(c, &last, 1, logits));
        done += nb;
    }
    return HARP_OK;
}

/* Validates a public sequence list and turns it into c->spans (rows in order, kv0 = row0). */
static harp_status plan_seqs(harp_ctx *c, const harp_seq *seqs, int n_seqs, harp_plan *p) {
    if (n_seqs > c->span_cap) {
        harp_span *a = realloc(c->spans, (size_t)n_seqs * sizeof *a);
        if (!a) return harp_err(HARP_ERR_OOM, "context: out of memory for %d sequences", n_seqs);
        c->spans = a;
        c->span_cap = n_seqs;
    }
    int rows = 0, tree = 0, windows = n_seqs > 0;
    for (int s = 0; s < n_seqs; s++) {
        int n = seqs[s].n, par = seqs[s].parent;
        if (n < 0 || par < -1 || par >= s)
            return harp_err(HARP_ERR_INVALID_ARG,
                            "context: sequence %d has %d tokens and parent %d (need n >= 0, -1 <= parent < %d)", s, n, par, s);
        if (n > c->d.max_rows - rows)
            return harp_err(HARP_ERR_INVALID_ARG, "context: %d sequences hold more than %d rows (the batch capacity)",
                            n_seqs, c->d.max_rows);
        int pos0 = par < 0 ? 0 : c->spans[par].pos0 + c->spans[par].n;
        if (pos0 + n > c->d.max_tokens)
            return harp_err(HARP_ERR_INVALID_ARG, "context: sequence %d reaches position %d, beyond the %d the context holds",
                            s, pos0 + n - 1, c->d.max_tokens);
        c->spans[s] = (harp_span){rows, n, pos0, par, rows};
        tree |= par >= 0;
        windows &= par < 0 && n > 0 && n == seqs[0].n;
        rows += n;
    }
    *p = (harp_plan){c->spans, n_seqs, rows, tree, windows};
    return HARP_OK;
}

harp_status harp_ctx_eval_seqs(harp_ctx *c, const int32_t *tokens, const harp_seq *seqs, int n_seqs,
                               const int32_t *logit_rows, int n_logit_rows, float *logits) {
    if (!c || !seqs || n_seqs < 0 || n_logit_rows < 0 || (n_logit_rows > 0 && (!logit_rows || !logits)))
        return harp_err(HARP_ERR_INVALID_ARG, "harp_ctx_eval_seqs: bad argument");
    harp_plan p;
    HARP_TRY(plan_seqs(c, seqs, n_seqs, &p));
    if (p.rows == 0) return n_logit_rows ? harp_err(HARP_ERR_INVALID_ARG, "context: logits asked of an empty batch") : HARP_OK;
    if (!tokens) return harp_err(HARP_ERR_INVALID_ARG, "harp_ctx_eval_seqs: NULL tokens");
    HARP_TRY(check_tokens(c, tokens, p.rows));
    for (int i = 0; i < n_logit_rows; i++)
        if (logit_rows[i] < 0 || logit_rows[i] >= p.rows)
            return harp_err(HARP_ERR_INVALID_ARG, "context: logit row %d is outside the batch (0..%d)", (int)logit_rows[i],
                            p.rows - 1);
    /* The batch occupies cache rows 0..rows-1; it is not one sequence, so the cache is left empty. */
    c->pos = 0;
    HARP_TRY(forward_layers(c, tokens, &p));
    return n_logit_rows ? head_to_host(c, logit_rows, n_logit_rows, logits) : HARP_OK;
}

harp_status harp_ctx_eval_windows(harp_ctx *c, const int32_t *tokens, int n_windows, int len) {
    if (!c || !tokens || n_windows < 1 || len < 1)
        return harp_err(HARP_ERR_INVALID_ARG, "harp_ctx_eval_windows: bad argument");
    if ((int64_t)n_windows * len > c->d.max_rows || len > c->d.max_tokens)
        return harp_err(HARP_ERR_INVALID_ARG, "context: %d windows of %d tokens exceed its %d rows / %d tokens", n_windows,
                        len, c->d.max_rows, c->d.max_tokens);
    int rows = n_windows * len;
    HARP_TRY(check_tokens(c, tokens, rows));
    if (n_windows > c->span_cap) {
        harp_span *a = realloc(c->spans, (size_t)n_windows * sizeof *a);
        if (!a) return harp_err(HARP_ERR_OOM, "context: out of memory for %d windows", n_windows);
        c->spans = a;
        c->span_cap = n_windows;
    }
    for (int w = 0; w < n_windows; w++) c->spans[w] = (harp_span){w * len, len, 0, -1, w * len};
    harp_plan p = {c->spans, n_windows, rows, 0, 1};
    if (!c->logits && !(c->logits = c->b->vt->alloc(c->b, (size_t)c->d.max_rows * c->d.vocab * sizeof(float), "logits")))
        return HARP_ERR_OOM;
    c->pos = 0;
    c->windows_rows = 0;
    HARP_TRY(forward_layers(c, tokens, &p));
    HARP_TRY(forward_head(c, NULL, 0, rows, c->logits));
    c->windows_rows = rows;
    return HARP_OK;
}

harp_status harp_ctx_score(harp_ctx *c, const harp_ctx *ref, const int32_t *rows, const int32_t *targets, int n,
                           double *nll, double *kld, int *agree) {
    if (!c || n < 0 || (n > 0 && (!rows || !targets || !nll || (ref && (!kld || !agree)))))
        return harp_err(HARP_ERR_INVALID_ARG, "harp_ctx_score: bad argument");
    if (n > c->d.max_rows) return harp_err(HARP_ERR_INVALID_ARG, "context: %d rows to score, at most %d", n, c->d.max_rows);
    if (ref && (ref->b != c->b || ref->d.vocab != c->d.vocab || ref->windows_rows != c->windows_rows))
        return harp_err(HARP_ERR_MISMATCH, "context: the reference context is on backend %s with vocab %d and %d rows; "
                        "this one on %s with vocab %d and %d rows", ref->b->name, ref->d.vocab, ref->windows_rows,
                        c->b->name, c->d.vocab, c->windows_rows);
    for (int j = 0; j < n; j++)
        if (rows[j] < 0 || rows[j] >= c->windows_rows || targets[j] < 0 || targets[j] >= c->d.vocab)
            return harp_err(HARP_ERR_INVALID_ARG, "context: score row %d (target %d) is outside the last windows' %d rows "
                            "or the vocabulary", (int)rows[j], (int)targets[j], c->windows_rows);
    return c->b->vt->score(c->b, c->ws, c->logits, ref ? ref->logits : NULL, c->d.vocab, rows, targets, n, nll, kld, agree);
}
