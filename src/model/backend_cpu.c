/* The CPU backend: the reference implementation of every op, with the kernels of model/kernels.c
 * and the products of model/layer.c, in the call shapes the forward pass has always used (so the
 * results are bit-identical to the code before the backend interface). Memory is host memory:
 * weights are the model's own arrays, used in place. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "model/backend.h"
#include "model/kernels.h"
#include "quant/aq.h"

typedef struct cpu_ws {
    harp_dims d;
    float *S;        /* max_rows × max_tokens attention scores (one head at a time)      */
    float *kg, *vg;  /* max_rows × kv_dim: keys/values of a prefix-tree sequence gathered */
    float *gy;       /* max_rows × the widest fused group: a quantized group's output before it
                        is split into its slices */
    float *kq, *vq;  /* max(max_tokens, max_rows) × kv_dim: an fp16 or quantized cache widened for
                        one sequence; allocated on first use, so F32 caches never pay for them */
} cpu_ws;

static int cpu_kv_type_ok(harp_qtype t) {
    return t == HARP_QTYPE_F32 || t == HARP_QTYPE_F16 || t == HARP_QTYPE_INT2 || t == HARP_QTYPE_INT3 || t == HARP_QTYPE_INT4 ||
           t == HARP_QTYPE_INT8;
}

static size_t group_scratch_floats(const harp_dims *d) {
    size_t qkv = (size_t)(d->n_heads + 2 * d->n_kv_heads) * d->head_dim, ug = 2 * (size_t)d->hidden;
    return (size_t)d->max_rows * (qkv > ug ? qkv : ug);
}

static int cpu_supports(const harp_backend *b, harp_op op, harp_qtype t) {
    (void)b;
    switch (op) {
    case HARP_OP_LINEAR: return t >= 0 && t < HARP_QTYPE_COUNT;   /* harp_qtensor_apply runs every type */
    case HARP_OP_KV_STORE:
    case HARP_OP_ATTENTION:
    case HARP_OP_ATTENTION_TREE: return cpu_kv_type_ok(t);
    default: return op >= 0 && op < HARP_OP_COUNT;
    }
}

static harp_status cpu_mem_free(harp_backend *b, size_t *bytes) {
    (void)b;
    long pages = sysconf(_SC_AVPHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    *bytes = pages > 0 && size > 0 ? (size_t)pages * (size_t)size : 0;
    return HARP_OK;
}

static void *cpu_alloc(harp_backend *b, size_t bytes, const char *what) {
    (void)b;
    return harp_aligned_alloc(bytes ? bytes : 64, what);
}

static void cpu_free(harp_backend *b, void *p) {
    (void)b;
    harp_free_aligned(p);
}

static harp_status cpu_copy(harp_backend *b, void *dst, const void *src, size_t bytes) {
    (void)b;
    if (dst != src && bytes) memmove(dst, src, bytes);
    return HARP_OK;
}

static harp_status cpu_sync(harp_backend *b) {
    (void)b;
    return HARP_OK;
}

/* The group itself is the handle: its weights are the model's. */
static harp_status cpu_load_group(harp_backend *b, const harp_lgroup *g, void **handle) {
    (void)b;
    *handle = (void *)g;
    return HARP_OK;
}

static void cpu_free_group(harp_backend *b, void *handle) {
    (void)b, (void)handle;
}

static size_t cpu_group_bytes(const harp_backend *b, const harp_lgroup *g) {
    (void)b, (void)g;
    return 0;
}

static size_t cpu_ws_bytes(const harp_backend *b, const harp_dims *d) {
    (void)b;
    size_t R = (size_t)d->max_rows;
    return (R * (size_t)d->max_tokens + 2 * R * (size_t)d->n_kv_heads * d->head_dim + group_scratch_floats(d)) *
           sizeof(float);
}

static void cpu_ws_free(harp_backend *b, harp_ws *ws) {
    (void)b;
    cpu_ws *w = (cpu_ws *)ws;
    if (!w) return;
    HARP_FREE_ALIGNED_ALL(w->S, w->kg, w->vg, w->gy, w->kq, w->vq);
    free(w);
}

static harp_status cpu_ws_create(harp_backend *b, const harp_dims *d, harp_ws **out) {
    cpu_ws *w = harp_xcalloc(1, sizeof *w, "cpu workspace");
    if (!w) return HARP_ERR_OOM;
    w->d = *d;
    size_t R = (size_t)d->max_rows, kvd = (size_t)d->n_kv_heads * d->head_dim;
    w->S = harp_aligned_alloc(R * (size_t)d->max_tokens * sizeof(float), "attention scores");
    w->kg = harp_aligned_alloc(R * kvd * sizeof(float), "gathered keys");
    w->vg = harp_aligned_alloc(R * kvd * sizeof(float), "gathered values");
    w->gy = harp_aligned_alloc(group_scratch_floats(d) * sizeof(float), "group output");
    if (!w->S || !w->kg || !w->vg || !w->gy) {
        cpu_ws_free(b, (harp_ws *)w);
        return HARP_ERR_OOM;
    }
    *out = (harp_ws *)w;
    return HARP_OK;
}

static harp_status cpu_plan_begin(harp_backend *b, harp_ws *ws, const harp_plan *p) {
    (void)b, (void)ws, (void)p;
    return HARP_OK;
}

static harp_status cpu_rmsnorm(harp_backend *b, harp_ws *ws, const float *x, const int32_t *row_idx, int rows, int n,
                               const float *w, float eps, float *y) {
    (void)b, (void)ws;
    if (!row_idx) harp_rmsnorm(x, w, rows, n, eps, y);
    else
        for (int j = 0; j < rows; j++) harp_rmsnorm(x + (size_t)row_idx[j] * n, w, 1, n, eps, y + (size_t)j * n);
    return HARP_OK;
}

static harp_status cpu_linear(harp_backend *b, harp_ws *ws, const harp_lgroup *g, const void *handle, const float *X,
                              int rows, float *const *Y) {
    (void)b, (void)handle;
    cpu_ws *w = (cpu_ws *)ws;
    /* the workspace holds max_rows rows of the widest decoder group; anything else allocates */
    float *scratch = harp_lgroup_scratch_floats(g, rows) <= group_scratch_floats(&w->d) ? w->gy : NULL;
    return harp_lgroup_apply_host(g, X, rows, Y, scratch);
}

static harp_status cpu_rotate(harp_backend *b, harp_ws *ws, const harp_rot *r, float *x, int rows, int n) {
    (void)b, (void)ws;
    if (harp_rot_dim(r) != n)
        return harp_err(HARP_ERR_SHAPE, "cpu backend: online rotation of dimension %lld on rows of %d",
                        (long long)harp_rot_dim(r), n);
    return harp_rot_apply(r, x, rows, n, 0);
}

static harp_status cpu_aquant(harp_backend *b, harp_ws *ws, const struct harp_aquant *q, float *x, int rows, int n) {
    (void)b, (void)ws;
    return harp_aq_fake(&q->fmt, x, rows, n, n);
}

static harp_status cpu_rope(harp_backend *b, harp_ws *ws, float *x, int n_heads, int head_dim, const float *inv_freq,
                            harp_rope_layout layout, const harp_plan *p) {
    (void)b, (void)ws;
    size_t w = (size_t)n_heads * head_dim;
    for (int s = 0; s < p->n_seqs; s++) {
        const harp_span *q = &p->seqs[s];
        if (q->n) harp_rope(x + (size_t)q->row0 * w, q->n, n_heads, head_dim, q->pos0, inv_freq, layout);
    }
    return HARP_OK;
}

static float *kv_row(const harp_kv_cache *kv, void *base, int layer, int row) {
    return (float *)((char *)base + ((size_t)layer * kv->rows + (size_t)row) * kv->row_bytes);
}

static harp_status cpu_kv_store(harp_backend *b, harp_ws *ws, harp_kv_cache *kv, int layer, const float *k, const float *v,
                                const harp_plan *p) {
    (void)b, (void)ws;
    if (!cpu_kv_type_ok(kv->type))
        return harp_err(HARP_ERR_UNSUPPORTED, "cpu backend: KV cache of type %d is not implemented", (int)kv->type);
    size_t w = (size_t)kv->kv_dim;
    for (int s = 0; s < p->n_seqs; s++) {
        const harp_span *q = &p->seqs[s];
        if (!q->n) continue;
        if (kv->type == HARP_QTYPE_F16) {   /* rounded to nearest even, as the CUDA cache stores them */
            for (int which = 0; which < 2; which++) {
                const float *src = (which ? v : k) + (size_t)q->row0 * w;
                uint16_t *dst = (uint16_t *)kv_row(kv, which ? kv->v : kv->k, layer, q->kv0);
                for (size_t i = 0; i < (size_t)q->n * w; i++) dst[i] = harp_f32_to_f16(src[i]);
            }
            continue;
        }
        if (kv->type != HARP_QTYPE_F32) {
            for (int which = 0; which < 2; which++) {
                harp_aq_planes pl = harp_kv_planes(kv, layer, which, q->kv0);
                HARP_TRY(harp_aq_quantize(&kv->q[2 * layer + which].fmt, (which ? v : k) + (size_t)q->row0 * w, q->n,
                                          kv->kv_dim, kv->kv_dim, &pl));
            }
            continue;
        }
        memcpy(kv_row(kv, kv->k, layer, q->kv0), k + (size_t)q->row0 * w, (size_t)q->n * kv->row_bytes);
        memcpy(kv_row(kv, kv->v, layer, q->kv0), v + (size_t)q->row0 * w, (size_t)q->n * kv->row_bytes);
    }
    return HARP_OK;
}

/* Rows row .. row+n-1 of layer `layer` of an fp16 or quantized cache, K and V widened into K, V (n × kv_dim). */
static harp_status kv_read(const harp_kv_cache *kv, int layer, int row, int n, float *K, float *V) {
    if (kv->type == HARP_QTYPE_F16) {
        for (int which = 0; which < 2; which++) {
            harp_f16_to_f32_n((const uint16_t *)kv_row(kv, which ? kv->v : kv->k, layer, row), which ? V : K, (size_t)n * kv->kv_dim);
        }
        return HARP_OK;
    }
    for (int which = 0; which < 2; which++) {
        harp_aq_planes pl = harp_kv_planes(kv, layer, which, row);
        HARP_TRY(harp_aq_dequantize(&kv->q[2 * layer + which].fmt, &pl, n, kv->kv_dim, which ? V : K, kv->kv_dim));
    }
    return HARP_OK;
}

/* Sequence s of an fp16 or quantized cache: the rows it attends to, widened at their positions into the
 * workspace (a root: the cache rows before it and its own; a child: its ancestors' rows). */
static harp_status kv_gather_quant(cpu_ws *w, const harp_kv_cache *kv, int layer, const harp_plan *p, int s) {
    size_t R = (size_t)(w->d.max_tokens > w->d.max_rows ? w->d.max_tokens : w->d.max_rows), kvd = (size_t)kv->kv_dim;
    if (!w->kq && !(w->kq = harp_aligned_alloc(R * kvd * sizeof(float), "dequantized keys"))) return HARP_ERR_OOM;
    if (!w->vq && !(w->vq = harp_aligned_alloc(R * kvd * sizeof(float), "dequantized values"))) return HARP_ERR_OOM;
    const harp_span *sp = &p->seqs[s];
    if (sp->parent < 0) return kv_read(kv, layer, sp->kv0 - sp->pos0, sp->pos0 + sp->n, w->kq, w->vq);
    for (int a = s; a >= 0; a = p->seqs[a].parent) {
        const harp_span *an = &p->seqs[a];
        size_t off = (size_t)an->pos0 * kvd;
        HARP_TRY(kv_read(kv, layer, an->kv0, an->n, w->kq + off, w->vq + off));
    }
    return HARP_OK;
}

/* Sequence s: a root sees the cache rows before it (position = cache row - (kv0 - pos0)) and its
 * own; a child's ancestors are gathered first (ancestors' rows at their positions) into kg/vg, then
 * the one-sequence kernel runs on them. */
static harp_status cpu_attention(harp_backend *b, harp_ws *ws, const float *q, const harp_kv_cache *kv, int layer,
                                 const harp_plan *p, float *out) {
    (void)b;
    cpu_ws *w = (cpu_ws *)ws;
    if (!cpu_kv_type_ok(kv->type))
        return harp_err(HARP_ERR_UNSUPPORTED, "cpu backend: KV cache of type %d is not implemented", (int)kv->type);
    const harp_dims *d = &w->d;
    int hd = d->head_dim, qd = d->n_heads * hd, kvd = kv->kv_dim;
    for (int s = 0; s < p->n_seqs; s++) {
        const harp_span *sp = &p->seqs[s];
        if (!sp->n) continue;
        if (kv->type != HARP_QTYPE_F32) {
            HARP_TRY(kv_gather_quant(w, kv, layer, p, s));
            harp_attention(q + (size_t)sp->row0 * qd, w->kq, w->vq, sp->n, sp->pos0, d->n_heads, d->n_kv_heads, hd,
                           d->sliding_window, w->S, out + (size_t)sp->row0 * qd);
            continue;
        }
        const float *K = kv_row(kv, kv->k, layer, sp->kv0 - sp->pos0), *V = kv_row(kv, kv->v, layer, sp->kv0 - sp->pos0);
        if (sp->parent >= 0) {
            for (int a = s; a >= 0; a = p->seqs[a].parent) {
                const harp_span *an = &p->seqs[a];
                size_t off = (size_t)an->pos0 * kvd, len = (size_t)an->n * kv->row_bytes;
                memcpy(w->kg + off, kv_row(kv, kv->k, layer, an->kv0), len);
                memcpy(w->vg + off, kv_row(kv, kv->v, layer, an->kv0), len);
            }
            K = w->kg;
            V = w->vg;
        }
        harp_attention(q + (size_t)sp->row0 * qd, K, V, sp->n, sp->pos0, d->n_heads, d->n_kv_heads, hd, d->sliding_window,
                       w->S, out + (size_t)sp->row0 * qd);
    }
    return HARP_OK;
}

static harp_status cpu_add(harp_backend *b, float *x, const float *y, size_t n) {
    (void)b;
    for (size_t i = 0; i < n; i++) x[i] += y[i];
    return HARP_OK;
}

static harp_status cpu_swiglu(harp_backend *b, float *g, const float *u, size_t n) {
    (void)b;
    harp_swiglu(g, u, n);
    return HARP_OK;
}

static harp_status cpu_score(harp_backend *b, harp_ws *ws, const float *logits, const float *ref, int vocab,
                             const int32_t *rows, const int32_t *targets, int n, double *nll, double *kld, int *agree) {
    (void)b, (void)ws;
    for (int j = 0; j < n; j++) {
        const float *l = logits + (size_t)rows[j] * vocab;
        int am = 0, ar = 0;
        double lse = 0, lse_r = 0;
        nll[j] = harp_score_row(l, vocab, targets[j], &am, &lse);
        if (!ref) continue;
        const float *lr = ref + (size_t)rows[j] * vocab;
        harp_score_row(lr, vocab, 0, &ar, &lse_r);
        kld[j] = harp_kl_row(l, lse, lr, lse_r, vocab);
        agree[j] = am == ar;
    }
    return HARP_OK;
}

static const harp_backend_i cpu_vt = {
    .name = "cpu",
    .host_memory = 1,
    .supports = cpu_supports,
    .mem_free = cpu_mem_free,
    .destroy = NULL,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .sync = cpu_sync,
    .load_group = cpu_load_group,
    .free_group = cpu_free_group,
    .group_bytes = cpu_group_bytes,
    .ws_create = cpu_ws_create,
    .ws_free = cpu_ws_free,
    .ws_bytes = cpu_ws_bytes,
    .plan_begin = cpu_plan_begin,
    .rmsnorm = cpu_rmsnorm,
    .linear = cpu_linear,
    .rotate = cpu_rotate,
    .rope = cpu_rope,
    .kv_store = cpu_kv_store,
    .attention = cpu_attention,
    .add = cpu_add,
    .swiglu = cpu_swiglu,
    .score = cpu_score,
    .aquant = cpu_aquant,
};

static harp_backend cpu_backend = {&cpu_vt, NULL, -1, "cpu"};

harp_backend *harp_backend_cpu(void) {
    return &cpu_backend;
}
