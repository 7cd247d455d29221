/* Backend interface (module API of src/model): the table every backend implements and the forward
 * pass (forward.c) calls. Implementations: the CPU (model/backend_cpu.c, the reference) and CUDA
 * (cuda/backend_cuda.cu).
 *
 * Memory: alloc/free/upload/download/sync move bytes between the host and the backend; ops take
 * backend pointers for tensors and host pointers for metadata (the sequence plan, row lists,
 * targets). A backend with host_memory = 1 works on host pointers (the model's own arrays are used
 * in place, the activation hook can see its tensors).
 *
 * Tensors are fp32 row-major; "rows" is the batch dimension. Every op returns a status. */
#ifndef HARP_MODEL_BACKEND_H
#define HARP_MODEL_BACKEND_H
#include <stddef.h>
#include <stdint.h>

#include "harp/backend.h"
#include "harp/model.h"
#include "harp/qtype.h"
#include "model/layer.h"

typedef enum harp_op {
    HARP_OP_EMBED = 0,
    HARP_OP_RMSNORM,
    HARP_OP_LINEAR,          /* qtype: the group's weight type */
    HARP_OP_ROTATE,          /* online rotation of rows (R3 per head, R4 on the down input)   */
    HARP_OP_ROPE,
    HARP_OP_KV_STORE,        /* qtype: the KV cache's type */
    HARP_OP_ATTENTION,       /* plans of root sequences; qtype: the KV cache's type */
    HARP_OP_ATTENTION_TREE,  /* plans where a sequence has a parent (zero-shot prefix trees) */
    HARP_OP_ADD,
    HARP_OP_SWIGLU,
    HARP_OP_SCORE,
    HARP_OP_AQUANT,          /* activation quantization of a linear's input (W/A/KV)          */
    HARP_OP_LINEAR_GLU,      /* linear_ex with HARP_LIN_GLU; qtype: the group's weight type     */
    HARP_OP_COUNT
} harp_op;

/* Sequence plan. Sequence s holds batch rows row0 .. row0+n-1 at positions pos0 .. pos0+n-1 and
 * stores its keys/values at KV-cache rows kv0 .. kv0+n-1. A root (parent = -1) attends to its own
 * rows causally and to the positions before pos0, which are cache rows kv0-pos0 .. kv0-1 (a
 * sequence continuing the cache: kv0 = pos0; a fresh window: pos0 = 0). A child (parent = p < s)
 * starts at the position after p's last one and attends to all rows of p and p's ancestors, then
 * causally to its own rows (a tree of prefixes). */
typedef struct harp_span {
    int row0, n, pos0, parent, kv0;
} harp_span;

typedef struct harp_plan {
    const harp_span *seqs;
    int n_seqs, rows;
    int tree;     /* some sequence has a parent                                                  */
    int windows;  /* every sequence a root of the same n at position 0 with kv0 = row0, rows in
                     order: independent windows, one batched attention                         */
} harp_plan;

/* Typed KV cache: per layer, rows × kv_dim keys and as many values. F32, or a scalar type INT2 …
 * INT8 holding the planes of quant/aq.h for each row (codes, fp16 scale and, asymmetric, a u8 zero
 * point per group of the row): K and V are quantized by kv_store and dequantized by attention. */
typedef struct harp_kv_cache {
    harp_qtype type;
    int n_layers, rows, kv_dim;
    size_t row_bytes;            /* bytes of one row of K (or of V): floats, or packed codes */
    void *k, *v;                 /* backend memory: layer l, row r at (l·rows + r)·row_bytes */
    void *k_scale, *v_scale;     /* quantized: uint16 (fp16) per group, (l·rows + r)·groups + g; else NULL */
    void *k_zero, *v_zero;       /* quantized asymmetric: uint8 per group, same index; else NULL */
    int groups;                  /* quantized: groups per row                                  */
    const struct harp_aquant *q; /* quantized: 2·n_layers quantizers (layer l: [2l] K, [2l+1] V) */
} harp_kv_cache;

/* The planes of cache rows row… of layer `layer`, K (which = 0) or V (1), of a quantized cache (backend
 * memory: pointer arithmetic only, for either backend). */
harp_aq_planes harp_kv_planes(const harp_kv_cache *kv, int layer, int which, int row);

/* Shapes a workspace is made for. */
typedef struct harp_dims {
    int dim, hidden, n_heads, n_kv_heads, head_dim, vocab, n_layers;
    int sliding_window;       /* 0 = none */
    int max_rows, max_tokens;
} harp_dims;

typedef struct harp_ws harp_ws;   /* a backend's per-context scratch (opaque) */

typedef struct harp_backend_i {
    const char *name;
    int host_memory;
    harp_qtype kv_default;   /* the KV-cache type of contexts with kv_qtype HARP_KV_DEFAULT (0: F32) */
    int (*supports)(const harp_backend *b, harp_op op, harp_qtype t);
    harp_status (*mem_free)(harp_backend *b, size_t *bytes);    /* free device memory */
    void (*destroy)(harp_backend *b);                           /* last reference gone */

    void *(*alloc)(harp_backend *b, size_t bytes, const char *what);   /* NULL (error logged) on failure */
    void (*free)(harp_backend *b, void *p);
    harp_status (*upload)(harp_backend *b, void *dst, const void *src, size_t bytes);
    harp_status (*download)(harp_backend *b, void *dst, const void *src, size_t bytes);
    harp_status (*sync)(harp_backend *b);
    /* Optional: host memory the backend uploads from fastest (page-locked), for the step's embedding
     * rows; an upload from it is asynchronous, so its writer syncs before reusing it (forward.c embed).
     * NULL: plain malloc. */
    void *(*host_alloc)(harp_backend *b, size_t bytes, const char *what);
    void (*host_free)(harp_backend *b, void *p);

    /* A linear group's weights onto the backend; handle is what linear() gets. */
    harp_status (*load_group)(harp_backend *b, const harp_lgroup *g, void **handle);
    void (*free_group)(harp_backend *b, void *handle);
    size_t (*group_bytes)(const harp_backend *b, const harp_lgroup *g);   /* backend memory it takes */
    /* Backend memory a loaded group holds, its transforms' device form included (NULL: group_bytes). */
    size_t (*group_held)(const harp_backend *b, const void *handle);

    harp_status (*ws_create)(harp_backend *b, const harp_dims *d, harp_ws **out);
    void (*ws_free)(harp_backend *b, harp_ws *ws);
    size_t (*ws_bytes)(const harp_backend *b, const harp_dims *d);
    /* Backend memory ws holds now, scratch grown by the calls so far included (NULL: ws_bytes). */
    size_t (*ws_held)(const harp_backend *b, const harp_ws *ws);
    /* Called once per forward before the ops that take the plan (uploads its metadata). */
    harp_status (*plan_begin)(harp_backend *b, harp_ws *ws, const harp_plan *p);

    /* y[j] = rmsnorm(x[row_idx ? row_idx[j] : j]) · w for j < rows (row_idx: host). */
    harp_status (*rmsnorm)(harp_backend *b, harp_ws *ws, const float *x, const int32_t *row_idx, int rows, int n,
                           const float *w, float eps, float *y);
    /* Y[s] (rows × g->out[s]) = X · W_sᵀ + b_s for every slice of the group. */
    harp_status (*linear)(harp_backend *b, harp_ws *ws, const harp_lgroup *g, const void *handle, const float *X,
                          int rows, float *const *Y);
    /* linear with what surrounds it fused (NULL on a backend without it: the loop calls rmsnorm, linear,
     * swiglu and add): the group's input is RMSNorm(X)·norm_w when norm_w is not NULL (X unchanged),
     * with HARP_LIN_GLU silu(gate)·up of X = rows × [up | gate] (2·in wide), else X. flags
     * (HARP_LIN_*): ACCUMULATE (one slice) Y[0] += the product; FUSED_OUT Y[0] gets the rows ×
     * out_total product with the slices side by side, not split. */
    harp_status (*linear_ex)(harp_backend *b, harp_ws *ws, const harp_lgroup *g, const void *handle, const float *X,
                             const float *norm_w, float eps, int rows, float *const *Y, unsigned flags);
    /* Two linears around a residual add and an RMSNorm, in the terms of linear_ex: x (rows × dim) +=
     * gp applied to Xp (pflags), then Yn = gn applied to RMSNorm(x)·norm_w (nflags). The backend may
     * join gp's output side to gn's input side (NULL: the loop calls linear_ex twice). */
    harp_status (*linear_seam)(harp_backend *b, harp_ws *ws, const harp_lgroup *gp, const void *hp, const float *Xp, unsigned pflags,
                               const harp_lgroup *gn, const void *hn, const float *norm_w, float eps, float *x, int rows,
                               float *const *Yn, unsigned nflags);
    /* x (rows × n) ← x·R in place, n = the rotation's dimension (ws: the backend's scratch, if it needs
     * any). */
    harp_status (*rotate)(harp_backend *b, harp_ws *ws, const harp_rot *r, float *x, int rows, int n);
    /* RoPE in place on rows × (n_heads·head_dim), row r at its plan position. */
    harp_status (*rope)(harp_backend *b, harp_ws *ws, float *x, int n_heads, int head_dim, const float *inv_freq,
                        harp_rope_layout layout, const harp_plan *p);
    /* Batch rows of k and v (rows × kv_dim) into the cache rows the plan gives. */
    harp_status (*kv_store)(harp_backend *b, harp_ws *ws, harp_kv_cache *kv, int layer, const float *k, const float *v,
                            const harp_plan *p);
    /* rope of q (n_heads) and k (n_kv_heads), then kv_store of k and v, in one op (NULL on a backend
     * without it: the loop calls the three). */
    harp_status (*rope_kv_store)(harp_backend *b, harp_ws *ws, float *q, float *k, const float *v, int n_heads, int n_kv_heads,
                                 int head_dim, const float *inv_freq, harp_rope_layout layout, harp_kv_cache *kv, int layer,
                                 const harp_plan *p);
    /* rope_kv_store, then attention of the rotated q into out, in one op (NULL on a backend without
     * it: the loop calls the two). q and k are left rotated or not: the caller reads only out. */
    harp_status (*rope_attention)(harp_backend *b, harp_ws *ws, float *q, float *k, const float *v, int n_heads, int n_kv_heads,
                                  int head_dim, const float *inv_freq, harp_rope_layout layout, harp_kv_cache *kv, int layer,
                                  const harp_plan *p, float *out);
    /* Causal GQA attention (sliding window from the workspace dims) of q (rows × n_heads·head_dim)
     * over the cache for the plan; out rows × n_heads·head_dim. */
    harp_status (*attention)(harp_backend *b, harp_ws *ws, const float *q, const harp_kv_cache *kv, int layer,
                             const harp_plan *p, float *out);
    harp_status (*add)(harp_backend *b, float *x, const float *y, size_t n);        /* x += y */
    harp_status (*swiglu)(harp_backend *b, float *g, const float *u, size_t n);     /* g = silu(g)·u */
    /* For j < n: logits row rows[j] (vocab wide) scored against targets[j]: nll[j] = lse - logit;
     * with ref (same layout): kld[j] = KL(P_ref || P) and agree[j] = argmax equal (lowest index on
     * ties). rows, targets and the outputs are host arrays; n ≤ the workspace's max_rows. */
    harp_status (*score)(harp_backend *b, harp_ws *ws, const float *logits, const float *ref, int vocab,
                         const int32_t *rows, const int32_t *targets, int n, double *nll, double *kld, int *agree);
    /* x (rows × n) ← its quantize-dequantize by q in place (what an integer linear would read).
     * NULL on a backend without it (HARP_OP_AQUANT then unsupported). */
    harp_status (*aquant)(harp_backend *b, harp_ws *ws, const struct harp_aquant *q, float *x, int rows, int n);
    /* aquant by the group's g->act_q, then linear, in one op: where the weights allow, the product of
     * the activation codes by the integer weights (the fake-quantized linear's sums, exact), else the two
     * ops. X may be left holding the fake-quantized input. NULL: the loop calls aquant, then linear. */
    harp_status (*linear_q)(harp_backend *b, harp_ws *ws, const harp_lgroup *g, const void *handle, float *X, int rows,
                            float *const *Y);

    /* Graphs of decode steps (NULL on a backend without them). graph_begin, after plan_begin, sets
     * *mode: HARP_GRAPH_REPLAYED -- a graph captured for a plan of this shape on these weights (tag,
     * serial) has run the step's layer ops (the embedding rows were uploaded before it);
     * HARP_GRAPH_CAPTURE -- call those ops, then graph_end; HARP_GRAPH_PLAIN -- call them as they are.
     * graph_end(b, ws, ops) gets the ops' status: HARP_OK when the graph was made and launched;
     * otherwise (quietly) nothing ran and the caller runs the ops plainly. */
    harp_status (*graph_begin)(harp_backend *b, harp_ws *ws, const harp_plan *p, const void *tag, uint64_t serial, int *mode);
    harp_status (*graph_end)(harp_backend *b, harp_ws *ws, harp_status ops);
} harp_backend_i;

enum { HARP_LIN_ACCUMULATE = 1u, HARP_LIN_FUSED_OUT = 2u, HARP_LIN_GLU = 4u };
enum { HARP_GRAPH_PLAIN = 0, HARP_GRAPH_CAPTURE = 1, HARP_GRAPH_REPLAYED = 2 };

struct harp_backend {
    const harp_backend_i *vt;
    void *impl;
    int refs;          /* -1: static (the CPU instance), never destroyed */
    char name[32];
};

/* Takes a reference (harp_backend_free drops it); NULL when b's count already reached 0 (it is
 * being destroyed). Static backends (the CPU) are returned as they are. */
harp_backend *harp_backend_retain(harp_backend *b);
int harp_backend_supports(const harp_backend *b, harp_op op, harp_qtype t);

#endif
