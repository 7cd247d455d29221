/* Contexts: a KV cache, activations and a backend workspace, created on a backend for one model
 * (whose weights are loaded onto that backend the first time). */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model_internal.h"
#include "model/slots.h"

#define HARP_DEFAULT_ROWS 512

harp_ctx_params harp_ctx_default_params(void) {
    harp_ctx_params p;
    memset(&p, 0, sizeof p);
    p.max_tokens = 512;
    p.kv_qtype = HARP_KV_DEFAULT;
    return p;
}

/* The cache type: the model's KV quantizers decide it when it has them (q: theirs), else p's, or
 * the backend's for HARP_KV_DEFAULT. */
static harp_qtype ctx_kv_type(const harp_model *m, const harp_ctx_params *p, const harp_backend *b, const struct harp_aquant **q) {
    harp_qtype t = harp_model_kv_type(m, q);
    return *q ? t : p->kv_qtype == HARP_KV_DEFAULT ? b->vt->kv_default : p->kv_qtype;
}

/* Bytes of one unquantized cache row (F32 or F16 elements); 0 for other types. */
static size_t kv_plain_row_bytes(harp_qtype t, int kv_dim) {
    return t == HARP_QTYPE_F32 ? (size_t)kv_dim * sizeof(float) : t == HARP_QTYPE_F16 ? (size_t)kv_dim * sizeof(uint16_t) : 0;
}

/* Resolves defaults and checks p against m; fills the dims. */
static harp_status ctx_dims(const harp_model *m, const harp_ctx_params *p, harp_backend **b, harp_dims *d) {
    const harp_model_config *c = &m->cfg;
    if (p->max_tokens <= 0 || p->max_tokens > c->max_seq_len)
        return harp_err(HARP_ERR_INVALID_ARG, "context of %d tokens is outside 1..%d (the model's max_position_embeddings)",
                        p->max_tokens, c->max_seq_len);
    if (p->max_rows < 0 || p->max_rows > (1 << 24))
        return harp_err(HARP_ERR_INVALID_ARG, "context: max_rows %d is outside 0..%d", p->max_rows, 1 << 24);
    *b = p->backend ? p->backend : harp_backend_cpu();
    const struct harp_aquant *q;
    harp_qtype kt = ctx_kv_type(m, p, *b, &q);
    if (!harp_backend_supports(*b, HARP_OP_KV_STORE, kt) || !harp_backend_supports(*b, HARP_OP_ATTENTION, kt))
        return harp_err(HARP_ERR_UNSUPPORTED, "backend %s: no KV cache of type %s", (*b)->name,
                        harp_qtype_name(kt) ? harp_qtype_name(kt) : "?");
    HARP_TRY(harp_model_slots_check(m, *b));
    *d = (harp_dims){.dim = c->dim, .hidden = c->hidden_dim, .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads,
                     .head_dim = c->head_dim, .vocab = c->vocab_size, .n_layers = c->n_layers,
                     .sliding_window = c->sliding_window, .max_tokens = p->max_tokens,
                     .max_rows = p->max_rows               ? p->max_rows
                                 : p->max_tokens < HARP_DEFAULT_ROWS ? p->max_tokens
                                                                     : HARP_DEFAULT_ROWS};
    return HARP_OK;
}

static int cache_rows(const harp_dims *d) {
    return d->max_tokens > d->max_rows ? d->max_tokens : d->max_rows;
}

/* Float counts of the activation buffers, in the order of struct harp_ctx (x .. qkv1). With glu (a
 * backend with linear_ex), u holds up|gate's product unsplit (rows × 2·hidden) for HARP_LIN_GLU and
 * qkv1 one row's q|k|v product unsplit (forward.c); without, qkv1 is not allocated. */
enum { N_ACT = 9 };
static void act_floats(const harp_dims *d, int glu, size_t n[N_ACT]) {
    size_t R = (size_t)d->max_rows, qd = (size_t)d->n_heads * d->head_dim, kvd = (size_t)d->n_kv_heads * d->head_dim;
    size_t wide = qd > (size_t)d->dim ? qd : (size_t)d->dim;
    size_t v[N_ACT] = {R * d->dim, R * wide, R * qd, R * kvd, R * kvd, R * qd, R * d->hidden, R * d->hidden * (glu ? 2 : 1),
                       glu ? qd + 2 * kvd : 0};
    memcpy(n, v, sizeof v);
}

/* Bytes of one quantized cache row: codes, fp16 scales and (asymmetric) zero points. */
static size_t kv_quant_row_bytes(const harp_aq_fmt *f, int kv_dim) {
    size_t g = (size_t)harp_aq_groups(f, kv_dim);
    return (size_t)harp_aq_row_bytes(f, kv_dim) + g * sizeof(uint16_t) + (f->sym ? 0 : g);
}

/* Bytes of the activation buffers and (non-host backends) the logits of a context of dims d on b. */
static size_t act_bytes(const harp_dims *d, const harp_backend *b) {
    size_t n[N_ACT], f = 0;
    act_floats(d, b->vt->linear_ex != NULL, n);
    for (int i = 0; i < N_ACT; i++) f += n[i];
    if (!b->vt->host_memory) f += (size_t)d->max_rows * d->vocab;
    return f * sizeof(float);
}

/* Bytes of one K (or V) row of a cache of type t (q: its quantizers, or NULL). */
static size_t kv_row_bytes(const struct harp_aquant *q, harp_qtype t, int kv_dim) {
    return q ? kv_quant_row_bytes(&q[0].fmt, kv_dim) : kv_plain_row_bytes(t, kv_dim);
}

size_t harp_ctx_bytes(const harp_model *m, const harp_ctx_params *p) {
    harp_backend *b;
    harp_dims d;
    if (!m || !p || ctx_dims(m, p, &b, &d)) return 0;
    const struct harp_aquant *q;
    const harp_qtype kt = ctx_kv_type(m, p, b, &q);
    size_t bytes = 2 * (size_t)d.n_layers * cache_rows(&d) * kv_row_bytes(q, kt, d.n_kv_heads * d.head_dim);
    return act_bytes(&d, b) + bytes + b->vt->ws_bytes(b, &d);
}

/* The planes of a quantized cache (the layout of harp_kv_cache). */
static harp_status kv_init_quant(harp_ctx *x, const struct harp_aquant *q) {
    harp_backend *b = x->b;
    harp_kv_cache *kv = &x->kv;
    const harp_aq_fmt *f = &q[0].fmt;
    kv->q = q;
    kv->groups = (int)harp_aq_groups(f, kv->kv_dim);
    kv->row_bytes = (size_t)harp_aq_row_bytes(f, kv->kv_dim);
    size_t rows = (size_t)kv->n_layers * kv->rows, ng = rows * (size_t)kv->groups;
    kv->k = b->vt->alloc(b, rows * kv->row_bytes, "key cache codes");
    kv->v = b->vt->alloc(b, rows * kv->row_bytes, "value cache codes");
    kv->k_scale = b->vt->alloc(b, ng * sizeof(uint16_t), "key cache scales");
    kv->v_scale = b->vt->alloc(b, ng * sizeof(uint16_t), "value cache scales");
    if (!f->sym) {
        kv->k_zero = b->vt->alloc(b, ng, "key cache zero points");
        kv->v_zero = b->vt->alloc(b, ng, "value cache zero points");
    }
    return kv->k && kv->v && kv->k_scale && kv->v_scale && (f->sym || (kv->k_zero && kv->v_zero)) ? HARP_OK : HARP_ERR_OOM;
}

static harp_status kv_init(harp_ctx *x, const harp_ctx_params *p) {
    harp_backend *b = x->b;
    harp_kv_cache *kv = &x->kv;
    const struct harp_aquant *q;
    kv->type = ctx_kv_type(x->m, p, b, &q);
    kv->n_layers = x->d.n_layers;
    kv->rows = cache_rows(&x->d);
    kv->kv_dim = x->d.n_kv_heads * x->d.head_dim;
    if (q) return kv_init_quant(x, q);
    kv->row_bytes = kv_plain_row_bytes(kv->type, kv->kv_dim);
    if (!kv->row_bytes)
        return harp_err(HARP_ERR_UNSUPPORTED, "context: a KV cache of type %s needs the model's KV quantizers",
                        harp_qtype_name(kv->type));
    size_t bytes = (size_t)kv->n_layers * kv->rows * kv->row_bytes;
    kv->k = b->vt->alloc(b, bytes, "key cache");
    kv->v = b->vt->alloc(b, bytes, "value cache");
    return kv->k && kv->v ? HARP_OK : HARP_ERR_OOM;
}

harp_status harp_ctx_create_ex(harp_model *m, const harp_ctx_params *p, harp_ctx **out) {
    if (!m || !out) return harp_err(HARP_ERR_INVALID_ARG, "harp_ctx_create: NULL argument");
    *out = NULL;
    harp_ctx_params dp = harp_ctx_default_params();
    if (!p) p = &dp;
    harp_backend *b;
    harp_dims d;
    HARP_TRY(ctx_dims(m, p, &b, &d));
    harp_ctx *x = harp_xcalloc(1, sizeof *x, "context");
    if (!x) return HARP_ERR_OOM;
    x->m = m;
    x->d = d;
    x->b = harp_backend_retain(b);
    if (!x->b) {
        free(x);
        return harp_err(HARP_ERR_INVALID_ARG, "backend %s: used after it was freed", b->name);
    }
    harp_status st = harp_model_weights(m, b, &x->w);
    if (!st) st = kv_init(x, p);
    if (!st) st = b->vt->ws_create(b, &d, &x->ws);
    size_t n[N_ACT];
    act_floats(&d, b->vt->linear_ex != NULL, n);
    float **bufs[N_ACT] = {&x->x, &x->xb, &x->q, &x->k, &x->v, &x->att, &x->g, &x->u, &x->qkv1};
    static const char *const what[N_ACT] = {"activations",      "activations", "queries", "keys",           "values",
                                            "attention output", "mlp gate",    "mlp up",  "one row's q|k|v"};
    for (int i = 0; i < N_ACT && !st; i++)
        if (n[i] && !(*bufs[i] = b->vt->alloc(b, n[i] * sizeof(float), what[i]))) st = HARP_ERR_OOM;
    if (!st && !b->vt->host_memory) {
        size_t eb = (size_t)d.max_rows * d.dim * sizeof(float);
        x->emb_rows = b->vt->host_alloc ? b->vt->host_alloc(b, eb, "embedding rows") : harp_xcalloc(eb, 1, "embedding rows");
        if (!x->emb_rows) st = HARP_ERR_OOM;
    }
    if (!st && !b->vt->host_memory &&
        !(x->logits = b->vt->alloc(b, (size_t)d.max_rows * d.vocab * sizeof(float), "logits")))
        st = HARP_ERR_OOM;
    if (st) {
        harp_ctx_free(x);
        return st;
    }
    *out = x;
    return HARP_OK;
}

harp_status harp_ctx_create(harp_model *m, int max_tokens, harp_ctx **out) {
    harp_ctx_params p = harp_ctx_default_params();
    p.max_tokens = max_tokens;
    return harp_ctx_create_ex(m, &p, out);
}

void harp_ctx_free(harp_ctx *c) {
    if (!c) return;
    harp_backend *b = c->b;
    void *bufs[] = {c->kv.k, c->kv.v, c->kv.k_scale, c->kv.v_scale, c->kv.k_zero, c->kv.v_zero, c->x, c->xb, c->q, c->k, c->v, c->att, c->g, c->u, c->qkv1, c->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) b->vt->free(b, bufs[i]);
    if (c->ws) b->vt->ws_free(b, c->ws);
    free(c->spans);
    if (c->emb_rows && b->vt->host_free) b->vt->host_free(b, c->emb_rows);
    else free(c->emb_rows);
    harp_backend_free(b);
    free(c);
}

harp_status harp_ctx_memory_get(const harp_ctx *c, harp_ctx_memory *out) {
    if (!c || !out) return harp_err(HARP_ERR_INVALID_ARG, "harp_ctx_memory_get: NULL argument");
    const harp_backend *b = c->b;
    const harp_kv_cache *kv = &c->kv;
    out->weights = harp_mweights_held(c->m, c->w);
    out->kv_cache = 2 * (size_t)kv->n_layers * kv->rows * kv_row_bytes(kv->q, kv->type, kv->kv_dim);
    out->workspace = act_bytes(&c->d, b) + (b->vt->ws_held ? b->vt->ws_held(b, c->ws) : b->vt->ws_bytes(b, &c->d));
    return HARP_OK;
}

harp_backend *harp_ctx_backend(const harp_ctx *c) {
    return c ? c->b : NULL;
}

int harp_ctx_pos(const harp_ctx *c) {
    return c ? c->pos : 0;
}

void harp_ctx_truncate(harp_ctx *c, int pos) {
    if (c && pos >= 0 && pos < c->pos) c->pos = pos;
}

int harp_ctx_max_rows(const harp_ctx *c) {
    return c ? c->d.max_rows : 0;
}

harp_status harp_ctx_set_hook(harp_ctx *c, harp_act_hook fn, void *user) {
    if (!c) return harp_err(HARP_ERR_INVALID_ARG, "harp_ctx_set_hook: NULL context");
    if (fn && !c->b->vt->host_memory)
        return harp_err(HARP_ERR_UNSUPPORTED, "backend %s: the activation hook needs a host-memory backend (use the CPU)",
                        c->b->name);
    c->hook = fn;
    c->hook_user = user;
    return HARP_OK;
}
