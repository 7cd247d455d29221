// The CUDA backend (model/backend.h). Linear groups: an fp32 group whose weights are all fp16 values
// (a checkpoint stored in fp16) is held as F16 planes and runs as a quantized group does; any other
// fp32 group is held as its dense W_effᵀ (taken through the group's CPU product on identity rows) and
// multiplied with one cuBLAS SGEMM in PEDANTIC math (true fp32, no TF32) over all rows of the batch;
// a quantized group (one stored
// harp_qtensor, harp_lgroup_qtensor) is held in its stored form, packed into the decode layouts of
// decode_layout.h and never densified: input transform (scales ⊙ signs, R_V) to split fp16 (h + lo),
// the decode GEMV for ≤ 8 rows or dequantized fp16 tiles + a cuBLAS GEMM for more, output transform (R_Uᵀ,
// signs ⊙ slice scales) -- q|k|v and up|gate fused, as one product each. A type or rotation the
// kernels lack fails at load naming the group. The optional ops fuse around packed linears
// (linear_ex: RMSNorm / SwiGLU into the input transform, the residual add into the output side;
// linear_seam: dec_linear_seam between two RHT linears; rope_kv_store; rope_attention). Attention: a
// plan of one row per sequence (decode) runs the engine's dec_attn over an fp16 cache (with RoPE and
// the store inside it for one unsplit q|k|v row: dec_attn_rope) and hc_attn_decode over an fp32 one,
// both reading positions and cache rows from device memory; otherwise two batched SGEMMs (one matrix
// per sequence × head, GQA by pointer) around a masked
// softmax kernel: one call for a plan of independent windows, one per sequence otherwise; prefix-tree
// plans are not supported. W/A/KV models: the online Hadamards (rotate) run as decode-engine transforms,
// the activation quantizer (aquant) is the CPU's on the device (dec_aq_fake, bit for bit), and a quantized
// KV cache holds the CPU cache's planes (dec_aq_quantize_to on store; decode attention decodes them in
// the kernel, hc_attn_decode_aq; prefill dequantizes the rows it reads into fp32 scratch). Every op
// runs on the instance's non-blocking stream, so a decode step's
// ops can be captured into a CUDA graph (graph_begin / graph_end) and replayed. The elementwise
// kernels are in cuda_kernels.cu. One backend instance per device, shared and reference counted;
// one thread at a time per instance.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cublas_dl.h"

extern "C" {
#include "core/core.h"
#include "cuda/cuda_kernels.h"
#include "cuda/decode.h"
#include "harp/cuda_eval.h"
#include "harp/qtensor.h"
#include "harp/rotate.h"
#include "model/backend.h"
#include "model/layer.h"
#include "quant/aq.h"
}

namespace {

#define CU_TRY(expr, what)                                                                                     \
    do {                                                                                                       \
        cudaError_t e_ = (expr);                                                                               \
        if (e_ != cudaSuccess)                                                                                 \
            return harp_err(e_ == cudaErrorMemoryAllocation ? HARP_ERR_OOM : HARP_ERR_NO_DEVICE, "cuda %s: %s", \
                            what, cudaGetErrorString(e_));                                                     \
    } while (0)

#define CUBLAS_TRY(expr, what)                                                               \
    do {                                                                                     \
        cublasStatus_t s_ = (expr);                                                          \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                     \
            return harp_err(HARP_ERR_NO_DEVICE, "cublas %s: %s", what, harp_cublas_why(s_)); \
    } while (0)

struct cuda_impl {
    int device;
    cudaStream_t stream;     // every op of this instance, in order (non-blocking: capturable into a graph)
    cublasHandle_t blas;     // fp32 products in pedantic math
    cublasHandle_t blas16;   // fp16 tensor-core GEMMs of the packed prefill path (default math)
};

// A quantized group resident in its stored form (decode_layout.h), never densified: the packed
// planes, its transforms (planned for decode batches of ≤ 8 rows and for prefill chunks) and the
// pre / post vectors (scales folded with the rotations' signs).
enum { kDecRows = 8, kChunkRows = 4096, kTileRows = 1024 };
// Largest m·npad whose weights prefill folds (dec_fold_weights): 10 bytes a weight of workspace, 160 MiB.
constexpr size_t kFoldMaxElems = (size_t)1 << 24;
struct cuda_packed {
    dec_linear_dev d;    // what dec_linear_run takes (aliases the members below)
    dec_weights w;
    dec_xdev *xin1, *xout1, *xin, *xout;   // planned for 1 row (single-token decode) / any chunk
    dec_xdev *xin_t;                       // prefill's weight fold (NULL when both sides are identities)
    float *pre, *post;
    int m, n, npad;
};

// A W/A/KV group whose input is quantized (g->act_q, whole rows, fp32 scales) and whose weights are
// per-channel INT2/3/4 without transforms or an input scale vector also keeps its codes as int8 [m][kpad]
// (code − zero), their scales (times out_mul) and row sums (decode.h, dec_aq_int8): prefill (more than kDecRows rows)
// multiplies the activation codes by them on the int8 tensor cores; decode keeps the packed GEMV on
// the fake-quantized input, which reads half the bytes at 4 bits. Opt-in (HARP_CUDA_INT8=1, read at
// load) until it has run on a device: its kernels have (bit-identical to their twins), this wiring not.
struct cuda_int8 {
    int8_t *w;
    float *sw;
    int32_t *rs;   // NULL unless the activations are 8-bit asymmetric
    int kpad;
};

struct cuda_group {
    float *wt;           // fp32 groups: in × out_total, row-major (W_effᵀ)
    float *bias;         // out_total or NULL
    cuda_packed *pk;     // quantized groups: the packed weights (wt == NULL)
    cuda_int8 *i8;       // the integer prefill's operands, or NULL
    size_t held;         // device bytes of all of it (cu_group_held)
};

// A decode step's layer ops (the embedding rows are uploaded before them) captured once per row count
// and replayed: the launches read the plan's positions and cache rows from device memory (plan_begin),
// so one graph serves every step. state: 0 not seen, 1 run once plainly (the scratch has grown to its size), 2
// captured, -1 capture failed (plain from then on). tag / serial: the weights it was captured on.
enum { kGraphNone = 0, kGraphSeen = 1, kGraphReady = 2, kGraphFailed = -1 };
struct cuda_graph {
    int state;
    const void *tag;
    uint64_t serial;
    cudaGraphExec_t exec;
};

// An online rotation (W/A/KV: R3, R4, R_o, all plain Hadamards, so the width names it) as device
// transforms: planned for one row and for chunks of kChunkRows (over the one-row plan's blocks).
enum { kRotSlots = 4 };
struct rot_dev {
    int64_t n;
    dec_xdev *x1, *xc;
};

// Attention pointer tables: per layer, kTabArrays arrays of nz pointers: K, Q, V (fp32 rows), S, P = S,
// O, then the tensor-core kernel's fp16 rows Kh, Kl, Vh, Vl (NULL where a path does not use them).
constexpr int kTabArrays = 10;
struct cuda_ws {
    harp_dims d;
    float *S;               // max_rows · n_heads · max_tokens scores; only for head sizes hc_attn_prefill does not take
    size_t s_bytes;         // what S holds
    float *fused;           // max_rows · widest multi-slice group: fused products before the split
    int32_t *pos, *idx, *tgt;   // max_rows each: row positions of the plan, row lists, targets
    int32_t *krow, *kbase;      // max_rows each: the cache row each row's K / V goes to, its sequence's position-0 row
    float *part;                // decode attention's per-chunk partials (hc_attn_part_floats)
    unsigned *att_count;        // and its chunk counters, kDecRows · n_heads, zeroed at creation
    cuda_graph graph[kDecRows + 1];
    int capturing;              // between graph_begin and graph_end: no allocation, no synchronous call
    double *nll, *kld;
    int *agree;
    void **tab_dev, **tab_host;  // n_layers · kTabArrays · tab_nz
    int tab_nz;
    int *tab_valid;          // per layer: the device copy matches tab_host
    // packed linear scratch, grown on demand: fp16 inputs, ỹ, transform scratch, dequantized tile
    void *xh, *tile;
    float *yt, *xscr, *nx;   // nx: an fp32 group's RMSNorm or SwiGLU input (linear_ex)
    float *kv32;             // an fp16 cache layer's rows as fp32 K then V (prefill attention)
    void *kvh;               // an fp32 cache layer's rows as fp16 h / lo (the tensor-core prefill attention): flag, Kh, Kl, Vh, Vl
    float *fold;             // prefill's weight fold: fp32 W̃ᵀ / W̃, and W_eff's fp16 h and lo rows
    void *fold_w;
    rot_dev rot[kRotSlots];  // online rotations met so far
    float *rtmp, *rscr;      // a rotation's output before it is copied back in place, its transform scratch
    void *iscr;              // the integer prefill: int8 codes, scales, zero-point terms, int32 products
    size_t xh_cap, tile_cap, yt_cap, xscr_cap, nx_cap, kv32_cap, kvh_cap, fold_cap, fold_w_cap, rtmp_cap, rscr_cap, iscr_cap;
};

// Switches for A/B timings: NAME=0 turns a feature off; anything else (or unset) leaves it on.
int env_on(const char *name) {
    const char *e = getenv(name);
    return !(e && !strcmp(e, "0"));
}

cuda_impl *impl_of(const harp_backend *b) {
    return (cuda_impl *)b->impl;
}

harp_status use(const harp_backend *b) {
    CU_TRY(cudaSetDevice(impl_of(b)->device), "set device");
    return HARP_OK;
}

harp_status new_blas(cublasHandle_t *h) {
    CUBLAS_TRY(harp_cublas_create(h), "create");
    if (harp_cublas_set_math_mode(*h, CUBLAS_PEDANTIC_MATH) != CUBLAS_STATUS_SUCCESS) {
        harp_cublas_destroy(*h);
        return harp_err(HARP_ERR_NO_DEVICE, "cublas: cannot select pedantic fp32 math");
    }
    return HARP_OK;
}

// ---- memory ---------------------------------------------------------------------------------------

int cu_supports(const harp_backend *b, harp_op op, harp_qtype t) {
    (void)b;
    switch (op) {
    case HARP_OP_ATTENTION_TREE: return 0;
    // fp32 groups run dense; a quantized group's load packs it or fails naming the group and the reason
    case HARP_OP_LINEAR: return t >= 0 && t < HARP_QTYPE_COUNT;
    // packed groups: the input transform does it; fp32 groups: a SwiGLU kernel before the SGEMM
    case HARP_OP_LINEAR_GLU: return t >= 0 && t < HARP_QTYPE_COUNT;
    // fp32, fp16, or the planes of quant/aq.h (dequantized into fp32 rows for attention)
    case HARP_OP_KV_STORE:
    case HARP_OP_ATTENTION:
        return t == HARP_QTYPE_F32 || t == HARP_QTYPE_F16 || t == HARP_QTYPE_INT2 || t == HARP_QTYPE_INT3 || t == HARP_QTYPE_INT4 ||
               t == HARP_QTYPE_INT8;
    default: return op >= 0 && op < HARP_OP_COUNT;
    }
}

harp_status cu_mem_free(harp_backend *b, size_t *bytes) {
    HARP_TRY(use(b));
    size_t fr = 0, total = 0;
    CU_TRY(cudaMemGetInfo(&fr, &total), "memory info");
    *bytes = fr;
    return HARP_OK;
}

void *cu_alloc(harp_backend *b, size_t bytes, const char *what) {
    void *p = NULL;
    if (use(b)) return NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 4);
    if (e != cudaSuccess) {
        cudaGetLastError();   // not sticky: clear it so that the next launch check does not report it
        harp_err(HARP_ERR_OOM, "cuda %s: %s (%zu bytes)", what, cudaGetErrorString(e), bytes);
        return NULL;
    }
    return p;
}

void cu_free(harp_backend *b, void *p) {
    (void)b;
    if (p) cudaFree(p);
}

// In stream order; from pageable memory the call returns once src has been staged, so the caller may
// reuse it at once.
harp_status cu_upload(harp_backend *b, void *dst, const void *src, size_t bytes) {
    if (bytes) CU_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, impl_of(b)->stream), "upload");
    return HARP_OK;
}

harp_status cu_download(harp_backend *b, void *dst, const void *src, size_t bytes) {
    if (!bytes) return HARP_OK;
    CU_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, impl_of(b)->stream), "download");
    CU_TRY(cudaStreamSynchronize(impl_of(b)->stream), "download");
    return HARP_OK;
}

// Page-locked host memory (the embedding rows' staging): an upload from it is a DMA that neither
// blocks the host nor goes through the driver's pageable bounce buffer.
void *cu_host_alloc(harp_backend *b, size_t bytes, const char *what) {
    void *p = NULL;
    if (use(b)) return NULL;
    const cudaError_t e = cudaMallocHost(&p, bytes ? bytes : 4);
    if (e != cudaSuccess) {
        cudaGetLastError();
        harp_err(HARP_ERR_OOM, "cuda %s: page-locked host memory: %s (%zu bytes)", what, cudaGetErrorString(e), bytes);
        return NULL;
    }
    memset(p, 0, bytes);
    return p;
}

void cu_host_free(harp_backend *b, void *p) {
    (void)b;
    if (p) cudaFreeHost(p);
}

harp_status cu_sync(harp_backend *b) {
    CU_TRY(cudaStreamSynchronize(impl_of(b)->stream), "kernel");
    return HARP_OK;
}

// ---- weights --------------------------------------------------------------------------------------

void packed_free(harp_backend *b, cuda_packed *p) {
    if (!p) return;
    dec_weights_free(&p->w);
    dec_xdev *x[] = {p->xin, p->xout, p->xin1, p->xout1, p->xin_t};   // the chunk plans borrow the one-row plans' blocks
    for (int i = 0; i < 5; i++)
        if (x[i]) dec_xform_dev_free(x[i]);
    cu_free(b, p->pre);
    cu_free(b, p->post);
    free(p);
}

void cu_free_group(harp_backend *b, void *handle) {
    cuda_group *g = (cuda_group *)handle;
    if (!g) return;
    cu_free(b, g->wt);
    cu_free(b, g->bias);
    packed_free(b, g->pk);
    if (g->i8) cu_free(b, g->i8->w), cu_free(b, g->i8->sw), cu_free(b, g->i8->rs), free(g->i8);
    free(g);
}

// A host vector onto the device (NULL stays NULL).
harp_status put_vec(harp_backend *b, const float *v, size_t n, const char *what, float **out) {
    *out = NULL;
    if (!v) return HARP_OK;
    if (!(*out = (float *)cu_alloc(b, n * sizeof(float), what))) return HARP_ERR_OOM;
    return cu_upload(b, *out, v, n * sizeof(float));
}

// Prefill's weight fold (dec_fold_weights): the input side's transpose.
harp_status fold_plan(const dec_linear *L, cuda_packed *p) {
    dec_xform t;
    HARP_TRY(dec_xform_transpose(&L->xin, &t));
    harp_status st = dec_xform_upload(&t, kChunkRows, &p->xin_t);
    dec_xform_free(&t);
    return st;
}

// The group's stored tensor packed into the device layout and uploaded with its transforms.
harp_status packed_load(harp_backend *b, const harp_qtensor *t, const char *what, cuda_packed **out) {
    *out = NULL;
    cuda_packed *p = (cuda_packed *)harp_xcalloc(1, sizeof *p, "cuda packed group");
    if (!p) return HARP_ERR_OOM;
    dec_linear L;
    harp_status st = dec_linear_from_qtensor(t, what, &L);
    if (st) {
        free(p);
        return st;
    }
    p->m = L.q.m, p->n = L.q.n, p->npad = dec_npad(L.q.n);
    dec_weights host;
    memset(&host, 0, sizeof host);
    st = dec_pack(&L.q, &host);
    if (!st) st = dec_weights_upload(&host, &p->w);
    dec_weights_free(&host);
    if (!st) st = dec_xform_upload(&L.xin, 1, &p->xin1);
    if (!st) st = dec_xform_upload(&L.xout, 1, &p->xout1);
    // the chunk plans over the one-row plans' blocks (HARP's fp32 Cayley blocks once, not twice)
    if (!st) st = dec_xform_upload_shared(&L.xin, kChunkRows, p->xin1, &p->xin);
    if (!st) st = dec_xform_upload_shared(&L.xout, kChunkRows, p->xout1, &p->xout);
    if (!st && !(dec_xform_dev_identity(p->xin, NULL) && dec_xform_dev_identity(p->xout, NULL))) st = fold_plan(&L, p);
    if (!st) st = put_vec(b, L.pre, (size_t)p->n, "input scales", &p->pre);
    if (!st) st = put_vec(b, L.post, (size_t)p->m, "output scales", &p->post);
    dec_linear_free(&L);
    if (st) {
        packed_free(b, p);
        return st;
    }
    p->d.w = p->w;
    p->d.xin = p->xin, p->d.xout = p->xout, p->d.xin1 = p->xin1, p->d.xout1 = p->xout1;
    p->d.pre = p->pre, p->d.post = p->post;
    p->d.xin_t = p->xin_t;
    *out = p;
    return HARP_OK;
}

// Biases of the slices side by side (zeros where a slice has none) onto the device.
harp_status bias_load(harp_backend *b, const harp_lgroup *g, float **out) {
    *out = NULL;
    if (!harp_lgroup_has_bias(g)) return HARP_OK;
    float *h = (float *)harp_xcalloc((size_t)g->out_total, sizeof(float), "bias");
    if (!h) return HARP_ERR_OOM;
    for (int s = 0, col = 0; s < g->n_slices; col += g->out[s++])
        if (g->bias[s]) memcpy(h + col, g->bias[s], (size_t)g->out[s] * sizeof(float));
    harp_status st = put_vec(b, h, (size_t)g->out_total, "bias", out);
    free(h);
    return st;
}

// Whether an fp32 group runs as F16 planes on the packed path (harp_lgroup_f16_exact: a checkpoint
// stored in fp16): the same numbers in half the bytes, with the fp16 GEMV / tensor-core prefill of
// quantized groups. HARP_CUDA_DENSE_F16=0 keeps them as fp32 SGEMMs (the dense fp32 path, for A/B).
int dense_as_f16(const harp_lgroup *g) {
    return env_on("HARP_CUDA_DENSE_F16") && harp_lgroup_f16_exact(g);
}

// The integer prefill's operands of g (cuda_int8) where g qualifies; otherwise nothing.
harp_status int8_load(const harp_lgroup *g, const harp_qtensor *t, const char *what, cuda_group *h) {
    const harp_aq_fmt *f = g->act_q ? &g->act_q->fmt : NULL;
    const char *on = getenv("HARP_CUDA_INT8");   // opt-in until it has run on a device (docs/gpu.md)
    if (!f || !on || strcmp(on, "1") || (f->group && f->group != g->in) || f->scale_f16 || t->xf.rot_in || t->xf.rot_out ||
        t->xf.in_mul)
        return HARP_OK;
    // INT2/3/4: code − zero always fits int8 (an 8-bit asymmetric weight's may not: the packed path)
    const int bits = dl_int_bits(t->type);
    if (!bits || bits > 4) return HARP_OK;
    dec_qplanes q;
    HARP_TRY(dec_qplanes_from_qtensor(t, what, &q));
    if (q.group_size > 0 && q.group_size < q.n) return HARP_OK;   // grouped scales: no per-channel epilogue
    h->i8 = (cuda_int8 *)harp_xcalloc(1, sizeof *h->i8, "cuda int8 group");
    if (!h->i8) return HARP_ERR_OOM;
    h->i8->kpad = dec_ikpad(q.n);
    // out_mul (the folder's per-channel scales ⊙ slice scales) goes into the column scales: one fp32
    // rounding earlier than the CPU's product, which applies it after the sum
    return dec_iweights_upload(&q, what, t->xf.out_mul, &h->i8->w, &h->i8->sw, !f->sym && f->bits == 8 ? &h->i8->rs : NULL);
}

harp_status load_group(harp_backend *b, const harp_lgroup *g, void **handle) {
    *handle = NULL;
    HARP_TRY(use(b));
    const harp_qtensor *t = harp_lgroup_qtensor(g);
    harp_qtensor f16;
    const int as_f16 = dense_as_f16(g);
    if (as_f16) {
        HARP_TRY(harp_lgroup_f16_tensor(g, &f16));
        t = &f16;
    }
    if (t) {
        char what[96];
        snprintf(what, sizeof what, "cuda backend: %s group %lldx%lld", harp_qtype_name(t->type), (long long)t->m,
                 (long long)t->n);
        cuda_group *h = NULL;
        harp_status st = t->m != g->out_total || t->n != g->in
                             ? harp_err(HARP_ERR_SHAPE, "%s: the tensor does not match the group (%d x %d)", what, g->out_total, g->in)
                         : (h = (cuda_group *)harp_xcalloc(1, sizeof *h, "cuda group")) ? HARP_OK
                                                                                         : HARP_ERR_OOM;
        if (!st) st = packed_load(b, t, what, &h->pk);
        if (!st && !as_f16) st = int8_load(g, t, what, h);
        if (!st) st = bias_load(b, g, &h->bias);
        if (as_f16) harp_qtensor_free(&f16);
        if (st) {
            cu_free_group(b, h);
            return st;
        }
        const cuda_packed *p = h->pk;
        h->held = dec_weights_bytes(&p->w) + ((size_t)p->m + (size_t)p->n) * sizeof(float) +
                  (h->bias ? (size_t)g->out_total * sizeof(float) : 0) + dec_xform_dev_bytes(p->xin1) +
                  dec_xform_dev_bytes(p->xout1) + dec_xform_dev_bytes(p->xin) + dec_xform_dev_bytes(p->xout) + dec_xform_dev_bytes(p->xin_t) +
                  (h->i8 ? (size_t)p->m * (h->i8->kpad + sizeof(float) + (h->i8->rs ? sizeof(int32_t) : 0)) : 0);
        *handle = h;
        return HARP_OK;
    }
    // no stored tensor: fp32 slices, their own stored form (a quantized group is never densified)
    size_t n = (size_t)g->in * g->out_total;
    int has_bias = harp_lgroup_has_bias(g);
    float *wt = (float *)harp_xmalloc(n * sizeof(float), "dense weights");
    float *bias = has_bias ? (float *)harp_xmalloc((size_t)g->out_total * sizeof(float), "dense bias") : NULL;
    cuda_group *h = (cuda_group *)harp_xcalloc(1, sizeof *h, "cuda group");
    harp_status st = wt && h && (!has_bias || bias) ? HARP_OK : HARP_ERR_OOM;
    if (!st) st = harp_lgroup_dense_t(g, wt, bias);
    if (!st && !(h->wt = (float *)cu_alloc(b, n * sizeof(float), "weights"))) st = HARP_ERR_OOM;
    if (!st) st = cu_upload(b, h->wt, wt, n * sizeof(float));
    if (!st && has_bias && !(h->bias = (float *)cu_alloc(b, (size_t)g->out_total * sizeof(float), "bias")))
        st = HARP_ERR_OOM;
    if (!st && has_bias) st = cu_upload(b, h->bias, bias, (size_t)g->out_total * sizeof(float));
    free(wt);
    free(bias);
    if (st) {
        cu_free_group(b, h);
        return st;
    }
    h->held = (n + (has_bias ? (size_t)g->out_total : 0)) * sizeof(float);
    *handle = h;
    return HARP_OK;
}

size_t cu_group_held(const harp_backend *b, const void *handle) {
    (void)b;
    return handle ? ((const cuda_group *)handle)->held : 0;
}

// The packed uploads (decode.h) are synchronous copies on the legacy stream, which the backend's
// non-blocking stream does not wait for: the load ends when they have landed.
harp_status cu_load_group(harp_backend *b, const harp_lgroup *g, void **handle) {
    HARP_TRY(load_group(b, g, handle));
    if (cudaDeviceSynchronize() != cudaSuccess) {
        cu_free_group(b, *handle);
        *handle = NULL;
        CU_TRY(cudaGetLastError(), "weight upload");
    }
    return HARP_OK;
}

size_t cu_group_bytes(const harp_backend *b, const harp_lgroup *g) {
    (void)b;
    const harp_qtensor *t = harp_lgroup_qtensor(g);
    dec_weights w;
    const int type = t ? (int)t->type : dense_as_f16(g) ? (int)HARP_QTYPE_F16 : -1;
    if (type >= 0 && dec_layout_shape(type, (int32_t)g->out_total, (int32_t)g->in, &w) == HARP_OK)
        return dec_weights_bytes(&w) + ((size_t)g->out_total + (size_t)g->in) * sizeof(float) +
               (harp_lgroup_has_bias(g) ? (size_t)g->out_total * sizeof(float) : 0);
    return ((size_t)g->in * g->out_total + (harp_lgroup_has_bias(g) ? (size_t)g->out_total : 0)) * sizeof(float);
}

// ---- workspace ------------------------------------------------------------------------------------

// The fp16 cache's decode attention is the engine's (dec_attn.cu: the chunk's K / V loaded into
// registers at once, four lanes per key, a kv head's q group in one CTA), where its shapes allow;
// HARP_CUDA_ENGINE_ATTN=0 keeps hc_attn_decode for the A/B. Its sequences are the plan's rows, each at
// its own cache rows (seq_row: the plan's position-0 rows).
bool engine_attn_shape(const harp_dims *d, const int32_t *seq_row, dec_attn_shape *s) {
    static const int on = env_on("HARP_CUDA_ENGINE_ATTN");
    const int hd = d->head_dim;
    if (!on || (hd != 32 && hd != 64 && hd != 128) || d->n_kv_heads < 1 || d->n_heads % d->n_kv_heads || d->n_heads / d->n_kv_heads > 8)
        return false;
    *s = dec_attn_shape{d->n_heads, d->n_kv_heads, hd, d->max_tokens, d->sliding_window, seq_row};
    return true;
}

// Decode attention's partials: rows of one token each, up to kDecRows of them, for either kernel.
size_t part_floats(const harp_dims *d) {
    const int rows = d->max_rows < kDecRows ? d->max_rows : kDecRows;
    const size_t own = hc_attn_part_floats(rows, d->n_heads, d->head_dim, d->max_tokens);
    dec_attn_shape s;
    const size_t eng = engine_attn_shape(d, NULL, &s) ? dec_attn_workspace_floats(&s, rows) : 0;
    return own > eng ? own : eng;
}

void graphs_reset(cuda_ws *w) {
    for (int r = 0; r <= kDecRows; r++) {
        if (w->graph[r].exec) cudaGraphExecDestroy(w->graph[r].exec);
        memset(&w->graph[r], 0, sizeof w->graph[r]);
    }
}

size_t fused_width(const harp_dims *d) {
    size_t qkv = (size_t)(d->n_heads + 2 * d->n_kv_heads) * d->head_dim, gu = 2 * (size_t)d->hidden;
    return qkv > gu ? qkv : gu;
}

// Prefill attention runs in one launch (hc_attn_prefill) where it takes the head size; elsewhere
// through cuBLAS and a score matrix of max_rows · n_heads · max_tokens floats.
bool flash_covers(const harp_dims *d) { return hc_attn_prefill_on() && (d->head_dim == 64 || d->head_dim == 128); }

size_t score_bytes(const harp_dims *d) { return (size_t)d->max_rows * d->n_heads * d->max_tokens * sizeof(float); }

// Without the score matrix (cu_ws_bytes adds it where it is needed; cu_ws_held what is held).
size_t ws_base_bytes(const harp_dims *d) {
    size_t R = (size_t)d->max_rows;
    return (R * fused_width(d) + part_floats(d)) * sizeof(float) +
           (size_t)kDecRows * d->n_heads * sizeof(unsigned) +
           R * (5 * sizeof(int32_t) + 2 * sizeof(double) + sizeof(int));
}

// What cu_ws_create allocated, the attention pointer tables and every grown scratch buffer.
size_t cu_ws_bytes(const harp_backend *b, const harp_dims *d) {
    (void)b;
    return ws_base_bytes(d) + (flash_covers(d) ? 0 : score_bytes(d));
}

size_t cu_ws_held(const harp_backend *b, const harp_ws *ws) {
    (void)b;
    const cuda_ws *w = (const cuda_ws *)ws;
    if (!w) return 0;
    const size_t tabs = w->tab_dev ? (size_t)w->d.n_layers * kTabArrays * w->tab_nz * sizeof(void *) : 0;
    size_t rots = 0;
    for (int i = 0; i < kRotSlots; i++) rots += dec_xform_dev_bytes(w->rot[i].x1) + dec_xform_dev_bytes(w->rot[i].xc);
    return ws_base_bytes(&w->d) + w->s_bytes + tabs + w->xh_cap + w->tile_cap + w->yt_cap + w->xscr_cap + w->nx_cap + w->kv32_cap + w->kvh_cap + w->fold_cap +
           w->fold_w_cap + w->rtmp_cap + w->rscr_cap + w->iscr_cap + rots;
}

void cu_ws_free(harp_backend *b, harp_ws *ws) {
    cuda_ws *w = (cuda_ws *)ws;
    if (!w) return;
    graphs_reset(w);
    void *p[] = {w->S, w->fused, w->pos, w->idx, w->tgt, w->nll, w->kld, w->agree, w->tab_dev, w->xh, w->tile, w->yt, w->xscr, w->part, w->att_count, w->nx, w->kv32, w->kvh, w->fold, w->fold_w, w->rtmp, w->rscr, w->iscr};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) cu_free(b, p[i]);
    for (int i = 0; i < kRotSlots; i++) {   // the chunk plan borrows the one-row plan's blocks: freed first
        dec_xform_dev_free(w->rot[i].xc);
        dec_xform_dev_free(w->rot[i].x1);
    }
    free(w->tab_host);
    free(w->tab_valid);
    free(w);
}

harp_status cu_ws_create(harp_backend *b, const harp_dims *d, harp_ws **out) {
    *out = NULL;
    cuda_ws *w = (cuda_ws *)harp_xcalloc(1, sizeof *w, "cuda workspace");
    if (!w) return HARP_ERR_OOM;
    w->d = *d;
    size_t R = (size_t)d->max_rows;
    if (!flash_covers(d)) {
        w->S = (float *)cu_alloc(b, score_bytes(d), "attention scores");
        if (w->S) w->s_bytes = score_bytes(d);
    }
    w->fused = (float *)cu_alloc(b, R * fused_width(d) * sizeof(float), "fused products");
    w->pos = (int32_t *)cu_alloc(b, 3 * R * sizeof(int32_t), "row positions");
    if (w->pos) w->krow = w->pos + R, w->kbase = w->pos + 2 * R;
    w->part = (float *)cu_alloc(b, part_floats(d) * sizeof(float), "decode attention partials");
    const size_t counts = (size_t)kDecRows * d->n_heads * sizeof(unsigned);
    w->att_count = (unsigned *)cu_alloc(b, counts, "decode attention counters");
    if (w->att_count && cudaMemsetAsync(w->att_count, 0, counts, impl_of(b)->stream) != cudaSuccess) {
        cudaGetLastError();
        cu_free(b, w->att_count);
        w->att_count = NULL;
    }
    w->idx = (int32_t *)cu_alloc(b, R * sizeof(int32_t), "row lists");
    w->tgt = (int32_t *)cu_alloc(b, R * sizeof(int32_t), "targets");
    w->nll = (double *)cu_alloc(b, R * sizeof(double), "row nll");
    w->kld = (double *)cu_alloc(b, R * sizeof(double), "row kld");
    w->agree = (int *)cu_alloc(b, R * sizeof(int), "row agreement");
    w->tab_valid = (int *)harp_xcalloc((size_t)d->n_layers, sizeof(int), "attention tables");
    if ((!w->S && !flash_covers(d)) || !w->fused || !w->pos || !w->idx || !w->tgt || !w->nll || !w->kld || !w->agree || !w->tab_valid || !w->part || !w->att_count) {
        cu_ws_free(b, (harp_ws *)w);
        return HARP_ERR_OOM;
    }
    *out = (harp_ws *)w;
    return HARP_OK;
}

// Per row of the plan, once per forward: its position (RoPE, decode attention), the cache row its K /
// V go to (kv_store) and its sequence's cache row of position 0 (decode attention), in one upload.
harp_status cu_plan_begin(harp_backend *b, harp_ws *ws, const harp_plan *p) {
    cuda_ws *w = (cuda_ws *)ws;
    HARP_TRY(use(b));
    const int R = w->d.max_rows;
    if (p->rows > R) return harp_err(HARP_ERR_INTERNAL, "cuda: a plan of %d rows in a workspace of %d", p->rows, R);
    int32_t *v = (int32_t *)harp_xcalloc(3 * (size_t)R, sizeof(int32_t), "row positions");
    if (!v) return HARP_ERR_OOM;
    for (int s = 0; s < p->n_seqs; s++) {
        const harp_span *a = &p->seqs[s];
        for (int i = 0; i < a->n; i++) {
            const int r = a->row0 + i;
            v[r] = a->pos0 + i, v[R + r] = a->kv0 + i, v[2 * R + r] = a->kv0 - a->pos0;
        }
    }
    harp_status st = cu_upload(b, w->pos, v, 3 * (size_t)R * sizeof(int32_t));
    free(v);
    return st;
}

// ---- ops ------------------------------------------------------------------------------------------

harp_status cu_rmsnorm(harp_backend *b, harp_ws *ws, const float *x, const int32_t *row_idx, int rows, int n,
                       const float *w, float eps, float *y) {
    cuda_ws *cw = (cuda_ws *)ws;
    if (row_idx) {
        if (rows > cw->d.max_rows) return harp_err(HARP_ERR_INTERNAL, "cuda rmsnorm: %d listed rows", rows);
        HARP_TRY(cu_upload(b, cw->idx, row_idx, (size_t)rows * sizeof(int32_t)));
    }
    return hc_rmsnorm(x, row_idx ? cw->idx : NULL, w, rows, n, eps, y, impl_of(b)->stream);
}

// A scratch buffer of at least `bytes` (grown, never shrunk).
// A graph holds the old pointer: they are dropped; during a capture, the capture fails instead.
harp_status grow(harp_backend *b, cuda_ws *cw, void **p, size_t *cap, size_t bytes, const char *what) {
    if (bytes <= *cap) return HARP_OK;
    if (cw->capturing) return HARP_ERR_UNSUPPORTED;   // quiet: graph_end reports the capture as failed, the step reruns plainly
    graphs_reset(cw);
    cu_free(b, *p);
    *cap = 0;
    if (!(*p = cu_alloc(b, bytes, what))) return HARP_ERR_OOM;
    *cap = bytes;
    return HARP_OK;
}

// y (rows × m) = packed product of X (rows × n), in chunks of kChunkRows rows (dec_linear_run: split
// fp16 activations, decode GEMV or dequantized tiles + cuBLAS GEMM, transforms, scales).
// The packed product's scratch for chunks of ch rows of p (grown, shared by every group).
harp_status packed_scratch(harp_backend *b, cuda_ws *cw, const cuda_packed *p, int ch, int rows) {
    const int wide = p->m > p->n ? p->m : p->n;
    HARP_TRY(grow(b, cw, &cw->xh, &cw->xh_cap, 2 * (size_t)ch * p->npad * 2, "packed inputs"));
    HARP_TRY(grow(b, cw, (void **)&cw->yt, &cw->yt_cap, 2 * (size_t)ch * p->m * sizeof(float), "packed products"));
    HARP_TRY(grow(b, cw, (void **)&cw->xscr, &cw->xscr_cap, 2 * (size_t)ch * wide * sizeof(float), "transform scratch"));
    if (rows > kDecRows)
        HARP_TRY(grow(b, cw, &cw->tile, &cw->tile_cap, (size_t)kTileRows * p->npad * 2, "dequantized tile"));
    const size_t fe = (size_t)p->m * p->npad;
    if (rows > kDecRows && fe <= kFoldMaxElems && dec_fold_pays(&p->d, rows)) {
        HARP_TRY(grow(b, cw, (void **)&cw->fold, &cw->fold_cap, fe * sizeof(float), "weight fold"));
        HARP_TRY(grow(b, cw, &cw->fold_w, &cw->fold_w_cap, fe * 6, "folded weights"));
    }
    return HARP_OK;
}

dec_linear_ws scratch_of(harp_backend *b, const cuda_ws *cw, int ch) {
    const size_t fe = cw->fold_cap / sizeof(float) < cw->fold_w_cap / 6 ? cw->fold_cap / sizeof(float) : cw->fold_w_cap / 6;
    return dec_linear_ws{ch, cw->xh, cw->yt, cw->xscr, cw->tile, kTileRows, (void *)impl_of(b)->blas16, cw->fold, cw->fold_w, fe};
}

harp_status packed_linear(harp_backend *b, cuda_ws *cw, const cuda_packed *p, const float *X, const float *norm_w, float eps,
                          int glu, int rows, float *y, int accumulate) {
    const int ch = rows < kChunkRows ? rows : kChunkRows;
    HARP_TRY(packed_scratch(b, cw, p, ch, rows));
    const dec_linear_ws ws = scratch_of(b, cw, ch);
    int mode = 0;   // the chunks share one weight fold, so the rule weighs it against all rows of the call
    if (rows > kDecRows && ws.fold && (size_t)p->m * p->npad <= ws.fold_elems && dec_fold_pays(&p->d, rows)) {
        HARP_TRY(dec_fold_weights(&p->d, &ws, impl_of(b)->stream));
        mode = DEC_LIN_FOLD_READY;
    }
    for (int r0 = 0; r0 < rows; r0 += ch) {
        const int nr = rows - r0 < ch ? rows - r0 : ch;
        const int ldx = glu ? 2 * p->n : p->n;
        HARP_TRY(dec_linear_run_mode(&p->d, mode, X + (size_t)r0 * ldx, ldx, nr, norm_w, eps, glu, NULL, y + (size_t)r0 * p->m, p->m,
                                     accumulate, &ws, impl_of(b)->stream));
    }
    return HARP_OK;
}

static_assert(HARP_LGROUP_MAX_SLICES <= HC_SPLIT_MAX, "one split launch per group");

// Y (rows × out_total, = or += with HARP_LIN_ACCUMULATE) = in · W_effᵀ + bias, in = X, its RMSNorm ·
// norm_w, or (HARP_LIN_GLU) silu(gate)·up of X's [up | gate] rows (fp32 groups: that kernel into
// scratch, then one SGEMM; packed ones: the norm or GLU is part of the input transform), then split
// into the slices unless HARP_LIN_FUSED_OUT.
harp_status linear_into(harp_backend *b, cuda_ws *cw, const harp_lgroup *g, const cuda_group *h, const float *X,
                        const float *norm_w, float eps, int rows, float *const *Y, unsigned flags) {
    const int accumulate = !!(flags & HARP_LIN_ACCUMULATE), glu = !!(flags & HARP_LIN_GLU), split = g->n_slices > 1 && !(flags & HARP_LIN_FUSED_OUT);
    if (rows < 1) return HARP_OK;
    if ((split && (accumulate || rows > cw->d.max_rows || (size_t)g->out_total > fused_width(&cw->d))) || (glu && norm_w))
        return harp_err(HARP_ERR_INTERNAL, "cuda linear: %d rows × %d outputs in %d slices, flags %u: not supported", rows,
                        g->out_total, g->n_slices, flags);
    cudaStream_t st = impl_of(b)->stream;
    float *y = split ? cw->fused : Y[0];
    if (h->pk) HARP_TRY(packed_linear(b, cw, h->pk, X, norm_w, eps, glu, rows, y, accumulate));
    else if (cw->capturing) return HARP_ERR_UNSUPPORTED;   // quiet: fp32 groups (cuBLAS) stay out of graphs
    else {
        if (norm_w || glu) {
            HARP_TRY(grow(b, cw, (void **)&cw->nx, &cw->nx_cap, (size_t)rows * g->in * sizeof(float), "normed inputs"));
            if (glu) HARP_TRY(dec_swiglu(X, 2 * g->in, rows, g->in, cw->nx, g->in, st));
            else HARP_TRY(hc_rmsnorm(X, NULL, norm_w, rows, g->in, eps, cw->nx, st));
            X = cw->nx;
        }
        const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
        CUBLAS_TRY(harp_cublas_sgemm(impl_of(b)->blas, CUBLAS_OP_N, CUBLAS_OP_N, g->out_total, rows, g->in, &one, h->wt,
                                     g->out_total, X, g->in, &beta, y, g->out_total),
                   "linear");
    }
    if (h->bias) HARP_TRY(hc_bias(y, h->bias, g->out_total, (size_t)rows * g->out_total, st));
    if (split) HARP_TRY(hc_split(y, g->out_total, rows, g->n_slices, g->out, Y, st));
    return HARP_OK;
}

harp_status cu_aquant(harp_backend *b, harp_ws *ws, const struct harp_aquant *q, float *x, int rows, int n);

// linear_q: more than kDecRows rows through a group with int8 operands (cuda_int8) as activation codes
// (dec_aq_int8) times the int8 weights (dec_igemm_scaled), then bias and split as linear_into; any
// other call as aquant then linear.
harp_status cu_linear_q(harp_backend *b, harp_ws *ws, const harp_lgroup *g, const void *handle, float *X, int rows, float *const *Y) {
    cuda_ws *cw = (cuda_ws *)ws;
    const cuda_group *h = (const cuda_group *)handle;
    const int split = g->n_slices > 1;
    if (!h->i8 || rows <= kDecRows || cw->capturing || (split && (rows > cw->d.max_rows || (size_t)g->out_total > fused_width(&cw->d)))) {
        HARP_TRY(cu_aquant(b, ws, g->act_q, X, rows, g->in));
        return linear_into(b, cw, g, h, X, NULL, 0.0f, rows, Y, 0);
    }
    const cuda_int8 *i8 = h->i8;
    const int m = g->out_total, ldc = dec_ildc(m);
    const size_t qb = ((size_t)rows * i8->kpad + 15) / 16 * 16, vb = ((size_t)rows * sizeof(float) + 15) / 16 * 16;
    HARP_TRY(grow(b, cw, &cw->iscr, &cw->iscr_cap, qb + 2 * vb + (size_t)rows * ldc * sizeof(int32_t), "integer prefill scratch"));
    int8_t *q = (int8_t *)cw->iscr;
    float *sa = (float *)((char *)cw->iscr + qb);
    int32_t *corr = i8->rs ? (int32_t *)((char *)cw->iscr + qb + vb) : NULL, *c = (int32_t *)((char *)cw->iscr + qb + 2 * vb);
    cudaStream_t st = impl_of(b)->stream;
    float *y = split ? cw->fused : Y[0];
    HARP_TRY(dec_aq_int8(&g->act_q->fmt, X, rows, g->in, g->in, q, i8->kpad, sa, corr, (dec_stream)st));
    HARP_TRY(dec_igemm_scaled((void *)impl_of(b)->blas, q, i8->kpad, rows, i8->w, i8->kpad, m, i8->kpad, sa, i8->sw, corr, i8->rs, y, m, c,
                              (dec_stream)st));
    if (h->bias) HARP_TRY(hc_bias(y, h->bias, m, (size_t)rows * m, st));
    if (split) HARP_TRY(hc_split(y, m, rows, g->n_slices, g->out, Y, st));
    return HARP_OK;
}

harp_status cu_linear(harp_backend *b, harp_ws *ws, const harp_lgroup *g, const void *handle, const float *X, int rows,
                      float *const *Y) {
    return linear_into(b, (cuda_ws *)ws, g, (const cuda_group *)handle, X, NULL, 0.0f, rows, Y, 0);
}

harp_status cu_linear_ex(harp_backend *b, harp_ws *ws, const harp_lgroup *g, const void *handle, const float *X,
                         const float *norm_w, float eps, int rows, float *const *Y, unsigned flags) {
    return linear_into(b, (cuda_ws *)ws, g, (const cuda_group *)handle, X, norm_w, eps, rows, Y, flags);
}

// The RHT seam (decode.h, dec_linear_seam) where both groups are packed, without biases, ≤ 8 rows
// and their transforms allow it: gp's GEMV leaves ỹ, one launch does gp's output side, the residual
// add, the RMSNorm and gn's input side, then gn's GEMV and output side. Otherwise linear_ex twice.
harp_status cu_linear_seam(harp_backend *b, harp_ws *ws, const harp_lgroup *gp, const void *hp, const float *Xp, unsigned pflags,
                           const harp_lgroup *gn, const void *hn, const float *norm_w, float eps, float *x, int rows,
                           float *const *Yn, unsigned nflags) {
    cuda_ws *cw = (cuda_ws *)ws;
    const cuda_group *P = (const cuda_group *)hp, *N = (const cuda_group *)hn;
    const int split = gn->n_slices > 1 && !(nflags & HARP_LIN_FUSED_OUT), glu = !!(pflags & HARP_LIN_GLU), dim = cw->d.dim;
    if (P->pk && N->pk && !P->bias && !N->bias && rows <= kDecRows && !(pflags & ~HARP_LIN_GLU) && !(nflags & ~HARP_LIN_FUSED_OUT) &&
        P->pk->m == dim && N->pk->n == dim && (!split || (size_t)gn->out_total <= fused_width(&cw->d))) {
        HARP_TRY(packed_scratch(b, cw, P->pk, rows, rows));
        HARP_TRY(packed_scratch(b, cw, N->pk, rows, rows));
        const dec_linear_ws dw = scratch_of(b, cw, rows);
        if (dec_seam_ok(&P->pk->d, &N->pk->d, x, dim, rows, norm_w, &dw)) {
            cudaStream_t st = impl_of(b)->stream;
            HARP_TRY(dec_linear_run_mode(&P->pk->d, DEC_LIN_YT_ONLY, Xp, glu ? 2 * P->pk->n : P->pk->n, rows, NULL, 0.0f, glu, NULL, x,
                                         dim, 1, &dw, st));
            HARP_TRY(dec_linear_seam(&P->pk->d, &N->pk->d, x, dim, rows, norm_w, eps, &dw, st));
            float *y = split ? cw->fused : Yn[0];
            HARP_TRY(dec_linear_run_mode(&N->pk->d, DEC_LIN_XH_READY, NULL, 0, rows, NULL, 0.0f, 0, NULL, y, gn->out_total, 0, &dw, st));
            if (split) HARP_TRY(hc_split(y, gn->out_total, rows, gn->n_slices, gn->out, Yn, st));
            return HARP_OK;
        }
    }
    HARP_TRY(linear_into(b, cw, gp, P, Xp, NULL, 0.0f, rows, &x, pflags | HARP_LIN_ACCUMULATE));
    return linear_into(b, cw, gn, N, x, norm_w, eps, rows, Yn, nflags);
}

// ---- W/A/KV: online rotations, activation quantization (the quantized cache is with kv_store) ---------

// The device transforms of plain Hadamard r (made at first use; the first decode step runs plainly, so a
// captured step finds them).
harp_status rot_of(cuda_ws *w, const harp_rot *r, const rot_dev **out) {
    const int64_t n = harp_rot_dim(r);
    int i = 0;
    while (i < kRotSlots && w->rot[i].n && w->rot[i].n != n) i++;
    if (i == kRotSlots) return harp_err(HARP_ERR_UNSUPPORTED, "cuda backend: more than %d online rotation widths", kRotSlots);
    *out = &w->rot[i];
    if (w->rot[i].n) return HARP_OK;
    if (w->capturing) return HARP_ERR_UNSUPPORTED;   // quiet: the capture fails, the step reruns plainly
    dec_xform xf;
    const int8_t *signs = NULL;
    HARP_TRY(dec_xform_from_rot(r, 0, &xf, &signs));
    rot_dev d{n, nullptr, nullptr};
    harp_status st = signs ? harp_err(HARP_ERR_INTERNAL, "cuda backend: a plain Hadamard of %lld with signs", (long long)n) : HARP_OK;
    if (!st) st = dec_xform_upload(&xf, 1, &d.x1);
    if (!st) st = dec_xform_upload_shared(&xf, kChunkRows, d.x1, &d.xc);
    dec_xform_free(&xf);
    if (st) {
        dec_xform_dev_free(d.xc);
        dec_xform_dev_free(d.x1);
        return st;
    }
    w->rot[i] = d;
    return HARP_OK;
}

// x ← x·R by the decode engine's transform passes (the Hadamard blocks exact in fp16, fp32 sums), through
// scratch and back, in chunks of kChunkRows rows. Only plain Hadamards (what W/A/KV models carry online).
harp_status cu_rotate(harp_backend *b, harp_ws *ws, const harp_rot *r, float *x, int rows, int n) {
    cuda_ws *w = (cuda_ws *)ws;
    if (!r || !w) return harp_err(HARP_ERR_INVALID_ARG, "cuda rotate: no rotation or no workspace");
    if (harp_rot_dim(r) != n)
        return harp_err(HARP_ERR_SHAPE, "cuda backend: online rotation of dimension %lld on rows of %d", (long long)harp_rot_dim(r), n);
    if (harp_rot_get_kind(r) != HARP_ROT_HADAMARD)
        return harp_err(HARP_ERR_UNSUPPORTED, "cuda backend: online rotations must be plain Hadamards (got %s)",
                        harp_rot_kind_name(harp_rot_get_kind(r)));
    if (rows < 1) return HARP_OK;
    const rot_dev *d = NULL;
    HARP_TRY(rot_of(w, r, &d));
    const int ch = rows < kChunkRows ? rows : kChunkRows;
    const dec_xdev *xd = rows == 1 ? d->x1 : d->xc;
    HARP_TRY(grow(b, w, (void **)&w->rtmp, &w->rtmp_cap, (size_t)ch * n * sizeof(float), "rotated rows"));
    HARP_TRY(grow(b, w, (void **)&w->rscr, &w->rscr_cap, dec_xform_scratch_floats(xd, ch) * sizeof(float), "rotation scratch"));
    cudaStream_t st = impl_of(b)->stream;
    for (int r0 = 0; r0 < rows; r0 += ch) {
        const int nr = rows - r0 < ch ? rows - r0 : ch;
        float *xr = x + (size_t)r0 * n;
        HARP_TRY(dec_xout(xd, xr, n, nr, NULL, 0, w->rtmp, n, w->rscr, (dec_stream)st));
        CU_TRY(cudaMemcpyAsync(xr, w->rtmp, (size_t)nr * n * sizeof(float), cudaMemcpyDeviceToDevice, st), "rotation copy");
    }
    return HARP_OK;
}

// The CPU's fake quantizer (harp_aq_fake), bit for bit (dec_aq.cu).
harp_status cu_aquant(harp_backend *b, harp_ws *ws, const struct harp_aquant *q, float *x, int rows, int n) {
    (void)ws;
    if (rows < 1) return HARP_OK;
    return dec_aq_fake(&q->fmt, x, rows, n, n, (dec_stream)impl_of(b)->stream);
}

harp_status cu_rope(harp_backend *b, harp_ws *ws, float *x, int n_heads, int head_dim, const float *inv_freq,
                    harp_rope_layout layout, const harp_plan *p) {
    return hc_rope(x, n_heads * head_dim, ((cuda_ws *)ws)->pos, p->rows, n_heads, head_dim, inv_freq, (int)layout,
                   impl_of(b)->stream);
}

void *kv_at(const harp_kv_cache *kv, void *base, int layer, int row) {
    return (char *)base + ((size_t)layer * kv->rows + (size_t)row) * kv->row_bytes;
}

// The cache types this backend holds: fp16 (the default, vt->kv_default), fp32, or a W/A/KV model's
// quantized planes (kv->q: quant/aq.h per row, the CPU cache's layout).
harp_status kv_type_ok(const harp_kv_cache *kv) {
    if (kv->type == HARP_QTYPE_F32 || kv->type == HARP_QTYPE_F16) return HARP_OK;
    if (kv->q && cu_supports(NULL, HARP_OP_KV_STORE, kv->type)) return HARP_OK;
    return harp_err(HARP_ERR_UNSUPPORTED, "cuda backend: KV cache of type %s is not implemented", harp_qtype_name(kv->type));
}

// Every row quantized into the cache row plan_begin gave it by the CPU's quantizer (dec_aq_quantize_to,
// bit for bit with harp_aq_quantize): a launch per tensor, the same at every decode step.
harp_status kv_store_quant(harp_backend *b, cuda_ws *w, harp_kv_cache *kv, int layer, const float *k, const float *v,
                           const harp_plan *p) {
    for (int which = 0; which < 2; which++) {
        const harp_aq_planes pl = harp_kv_planes(kv, layer, which, 0);
        HARP_TRY(dec_aq_quantize_to(&kv->q[2 * layer + which].fmt, which ? v : k, p->rows, kv->kv_dim, kv->kv_dim, &pl, w->krow,
                                    (dec_stream)impl_of(b)->stream));
    }
    return HARP_OK;
}

harp_status cu_rope_kv_store(harp_backend *b, harp_ws *ws, float *q, float *k, const float *v, int n_heads, int n_kv_heads,
                            int head_dim, const float *inv_freq, harp_rope_layout layout, harp_kv_cache *kv, int layer,
                            const harp_plan *p) {
    HARP_TRY(kv_type_ok(kv));
    if (kv->q) {
        HARP_TRY(cu_rope(b, ws, q, n_heads, head_dim, inv_freq, layout, p));
        HARP_TRY(cu_rope(b, ws, k, n_kv_heads, head_dim, inv_freq, layout, p));
        return kv_store_quant(b, (cuda_ws *)ws, kv, layer, k, v, p);
    }
    const cuda_ws *w = (const cuda_ws *)ws;
    return hc_rope_store(q, k, v, w->pos, w->krow, p->rows, n_heads, n_kv_heads, head_dim, inv_freq, (int)layout,
                         kv_at(kv, kv->k, layer, 0), kv_at(kv, kv->v, layer, 0), kv->type == HARP_QTYPE_F16, impl_of(b)->stream);
}

// Every row to the cache row plan_begin gave it: one launch, the same at every decode step.
harp_status cu_kv_store(harp_backend *b, harp_ws *ws, harp_kv_cache *kv, int layer, const float *k, const float *v,
                        const harp_plan *p) {
    HARP_TRY(kv_type_ok(kv));
    if (kv->q) return kv_store_quant(b, (cuda_ws *)ws, kv, layer, k, v, p);
    const cuda_ws *w = (const cuda_ws *)ws;
    return hc_kv_store(k, v, p->rows, kv->kv_dim, w->krow, kv_at(kv, kv->k, layer, 0), kv_at(kv, kv->v, layer, 0),
                       kv->type == HARP_QTYPE_F16, impl_of(b)->stream);
}

// Grows the pointer tables to nz pointers per array (all layers invalidated).
harp_status tab_reserve(harp_backend *b, cuda_ws *w, int nz) {
    if (nz <= w->tab_nz) return HARP_OK;
    size_t n = (size_t)w->d.n_layers * kTabArrays * nz;
    void **h = (void **)realloc(w->tab_host, n * sizeof(void *));
    if (!h) return harp_err(HARP_ERR_OOM, "cuda attention: out of host memory for %d pointer tables", nz);
    w->tab_host = h;
    memset(h, 0, n * sizeof(void *));
    cu_free(b, w->tab_dev);
    w->tab_nz = 0;
    if (!(w->tab_dev = (void **)cu_alloc(b, n * sizeof(void *), "attention pointers"))) return HARP_ERR_OOM;
    w->tab_nz = nz;
    memset(w->tab_valid, 0, (size_t)w->d.n_layers * sizeof(int));
    return HARP_OK;
}

// What attention reads of a layer's cache, rows of kvd elements: fp32 rows k / v from row row0 on (NULL:
// none), fp16 rows kh / vh (and lo parts kl / vl of split fp32 values) from row row0h on, the split's flag.
struct kv_view {
    const float *k, *v;
    const __half *kh, *kl, *vh, *vl;
    int row0, row0h, kvd;
    const int *overflow;
};

// The cache rows [lo, hi) the plan's sequences read
void plan_rows(const harp_plan *p, int cache_rows, int *lo, int *hi) {
    *lo = cache_rows, *hi = 0;
    for (int s = 0; s < p->n_seqs; s++) {
        const harp_span *sp = &p->seqs[s];
        const int base = sp->kv0 - sp->pos0, end = sp->kv0 + sp->n;
        *lo = base < *lo ? base : *lo;
        *hi = end > *hi ? end : *hi;
    }
}

// An fp32 cache is its own view; an fp16 one has the rows the plan's sequences read widened into
// scratch (prefill plans off the tensor-core kernel only: it and decode attention read fp16 directly),
// a quantized one dequantized there (prefill plans: decode attention decodes the planes itself).
harp_status kv_layer_f32(harp_backend *b, cuda_ws *w, const harp_kv_cache *kv, int layer, const harp_plan *p, kv_view *out) {
    *out = kv_view{(const float *)kv_at(kv, kv->k, layer, 0), (const float *)kv_at(kv, kv->v, layer, 0), nullptr, nullptr, nullptr, nullptr,
                   0, 0, kv->kv_dim, nullptr};
    if (kv->type == HARP_QTYPE_F32) return HARP_OK;
    int lo, hi;
    plan_rows(p, kv->rows, &lo, &hi);
    if (hi <= lo) return HARP_OK;
    const size_t n = (size_t)(hi - lo) * kv->kv_dim;
    HARP_TRY(grow(b, w, (void **)&w->kv32, &w->kv32_cap, 2 * n * sizeof(float), "fp32 view of the KV cache"));
    if (kv->q) {
        for (int which = 0; which < 2; which++) {
            const harp_aq_planes pl = harp_kv_planes(kv, layer, which, lo);
            HARP_TRY(dec_aq_dequantize(&kv->q[2 * layer + which].fmt, &pl, hi - lo, kv->kv_dim, w->kv32 + which * n, kv->kv_dim,
                                       (dec_stream)impl_of(b)->stream));
        }
    } else {
        HARP_TRY(hc_kv_widen(kv_at(kv, kv->k, layer, lo), kv_at(kv, kv->v, layer, lo), n, w->kv32, w->kv32 + n, impl_of(b)->stream));
    }
    out->k = w->kv32, out->v = w->kv32 + n, out->row0 = lo;
    return HARP_OK;
}

// The fp32 rows the plan reads, split into fp16 h + lo for the tensor-core kernel (hc_kv_split_f16:
// the flag it sets sends the layer to FFMA where a value does not fit fp16).
harp_status kv_split(harp_backend *b, cuda_ws *w, const harp_kv_cache *kv, const harp_plan *p, kv_view *v) {
    int lo, hi;
    plan_rows(p, kv->rows, &lo, &hi);
    const size_t n = hi > lo ? (size_t)(hi - lo) * kv->kv_dim : 0;
    HARP_TRY(grow(b, w, &w->kvh, &w->kvh_cap, 16 + 4 * n * sizeof(__half), "fp16 split of the KV cache"));
    __half *h = (__half *)((char *)w->kvh + 16);
    const size_t off = (size_t)(lo - v->row0) * kv->kv_dim;
    v->kh = h, v->kl = h + n, v->vh = h + 2 * n, v->vl = h + 3 * n, v->row0h = lo, v->overflow = (const int *)w->kvh;
    return hc_kv_split_f16(v->k + off, v->v + off, n, h, h + n, h + 2 * n, h + 3 * n, (int *)w->kvh, impl_of(b)->stream);
}

// The layer's table for the plan (z = sequence · n_heads + head), uploaded when it changed.
harp_status tab_fill(harp_backend *b, cuda_ws *w, const float *q, const kv_view *kv, int layer, const harp_plan *p, float *out,
                     void ***dev) {
    const harp_dims *d = &w->d;
    int nh = d->n_heads, hd = d->head_dim, grp = nh / d->n_kv_heads, qd = nh * hd, nz = p->n_seqs * nh;
    HARP_TRY(tab_reserve(b, w, nz));
    size_t tz = (size_t)w->tab_nz;
    void **h = w->tab_host + (size_t)layer * kTabArrays * tz;
    int changed = !w->tab_valid[layer];
    for (int s = 0; s < p->n_seqs; s++) {
        const harp_span *sp = &p->seqs[s];
        int base = sp->kv0 - sp->pos0;
        for (int hh = 0; hh < nh; hh++) {
            size_t z = (size_t)s * nh + hh, sz = p->windows ? z : (size_t)hh;
            const size_t col = (size_t)(hh / grp) * hd, o32 = (size_t)(base - kv->row0) * kv->kvd + col;
            const size_t o16 = (size_t)(base - kv->row0h) * kv->kvd + col;
            float *sc = w->S ? w->S + sz * sp->n * d->max_tokens : nullptr;
            const void *v[kTabArrays] = {kv->k ? kv->k + o32 : nullptr, q + (size_t)sp->row0 * qd + (size_t)hh * hd, kv->v ? kv->v + o32 : nullptr,
                                         sc, sc, out + (size_t)sp->row0 * qd + (size_t)hh * hd, kv->kh ? kv->kh + o16 : nullptr,
                                         kv->kl ? kv->kl + o16 : nullptr, kv->vh ? kv->vh + o16 : nullptr, kv->vl ? kv->vl + o16 : nullptr};
            for (int a = 0; a < kTabArrays; a++) {
                changed |= h[a * tz + z] != v[a];
                h[a * tz + z] = (void *)v[a];
            }
        }
    }
    void **dv = w->tab_dev + (size_t)layer * kTabArrays * tz;
    if (changed) HARP_TRY(cu_upload(b, dv, h, kTabArrays * tz * sizeof(void *)));
    w->tab_valid[layer] = 1;
    *dev = dv;
    return HARP_OK;
}

// Scores S = scale·Q·Kᵀ per (sequence, head), masked softmax, context = P·V: nz matrices from table
// offset z0, each n × T (queries at positions p0..p0+n-1), scores at w->S + z·n·max_tokens (not
// z·n·T: so the tables stay the same from one decode step to the next and are not uploaded again).
harp_status attn_batch(cublasHandle_t blas, cudaStream_t st, cuda_ws *w, void **tab, size_t tz, size_t z0, int nz, int n, int T, int p0,
                       int kvd, const kv_view *view) {
    const int hd = w->d.head_dim, qd = w->d.n_heads * hd;
    const float scale = 1.0f / sqrtf((float)hd), one = 1.0f, zero = 0.0f;
    const float **K = (const float **)(tab + z0), **Q = (const float **)(tab + tz + z0);
    const float **V = (const float **)(tab + 2 * tz + z0), **P = (const float **)(tab + 4 * tz + z0);
    float **S = (float **)(tab + 3 * tz + z0), **O = (float **)(tab + 5 * tz + z0);
    if (!w->S) {
        void **t = tab + z0;
        const hc_attn_kv kv{view->k ? t : nullptr,          view->v ? t + 2 * tz : nullptr,  view->kh ? t + 6 * tz : nullptr,
                            view->vh ? t + 8 * tz : nullptr, view->kl ? t + 7 * tz : nullptr, view->vl ? t + 9 * tz : nullptr,
                            view->overflow};
        return hc_attn_prefill(&kv, Q, O, nz, n, T, p0, hd, qd, kvd, w->d.sliding_window, scale, st);
    }
    // Row-major S (n × T) is column-major Sᵀ = K·Qᵀ (cuBLAS sees K as hd × T and Q as hd × n).
    CUBLAS_TRY(harp_cublas_sgemm_batched(blas, CUBLAS_OP_T, CUBLAS_OP_N, T, n, hd, &scale, K, kvd, Q, qd, &zero, S, T, nz),
               "attention scores");
    HARP_TRY(hc_softmax(w->S, nz, n, T, p0, (size_t)n * w->d.max_tokens, w->d.sliding_window, st));
    // Row-major O (n × hd, stride qd) is column-major Oᵀ = Vᵀ·Pᵀ.
    CUBLAS_TRY(harp_cublas_sgemm_batched(blas, CUBLAS_OP_N, CUBLAS_OP_N, hd, n, T, &one, V, kvd, P, T, &zero, O, qd, nz),
               "attention context");
    return HARP_OK;
}

// A layer's quantized cache that the engine's 4-bit attention kernel reads in place (dec_attn_kv4_planes):
// K and V 4-bit asymmetric, one group per kv head, fp16 scales, while dec_attn_kv4_planes_on() (on unless
// HARP_CUDA_KV4_ENGINE=0: 1.065× the fp16 cache at ctx 4 096 on an H100, docs/results/wakv.md); otherwise and for
// every other format the generic kernel decodes the planes (hc_attn_decode_aq).
bool kv4_engine(const harp_kv_cache *kv, int layer, const harp_dims *d) {
    if (!dec_attn_kv4_planes_on()) return false;
    for (int which = 0; which < 2; which++) {
        const harp_aq_fmt *f = &kv->q[2 * layer + which].fmt;
        if (f->bits != 4 || f->sym || !f->scale_f16 || (f->group > 0 ? f->group : kv->kv_dim) != d->head_dim) return false;
    }
    return true;
}

// One query row per sequence, ≤ kDecRows rows: the decode attention kernel's plans.
int decode_plan(const cuda_ws *w, const harp_plan *p) {
    int one_each = p->rows <= kDecRows && p->rows <= w->d.max_rows;
    for (int s = 0; s < p->n_seqs && one_each; s++) one_each = p->seqs[s].n == 1;
    return one_each;
}

harp_status cu_attention(harp_backend *b, harp_ws *ws, const float *q, const harp_kv_cache *kv, int layer,
                         const harp_plan *p, float *out) {
    cuda_ws *w = (cuda_ws *)ws;
    HARP_TRY(kv_type_ok(kv));
    if (p->tree) return harp_err(HARP_ERR_UNSUPPORTED, "cuda backend: prefix-tree sequence plans are not supported");
    const int f16 = kv->type == HARP_QTYPE_F16, dec = decode_plan(w, p);
    dec_attn_shape es;
    if (f16 && dec && engine_attn_shape(&w->d, w->kbase, &es))
        return dec_attn(&es, q, kv_at(kv, kv->k, layer, 0), kv_at(kv, kv->v, layer, 0), p->rows, w->pos, out, w->part,
                        (dec_stream)impl_of(b)->stream);
    if (dec && kv->q && kv4_engine(kv, layer, &w->d) && engine_attn_shape(&w->d, w->kbase, &es)) {
        const harp_aq_planes k4 = harp_kv_planes(kv, layer, 0, 0), v4 = harp_kv_planes(kv, layer, 1, 0);
        return dec_attn_kv4_planes(&es, q, &k4, &v4, p->rows, w->pos, out, w->part, (dec_stream)impl_of(b)->stream);
    }
    if (dec && kv->q) {   // the planes decoded in the kernel
        hc_kv_aq a[2];
        for (int which = 0; which < 2; which++) {
            const harp_aq_fmt *f = &kv->q[2 * layer + which].fmt;
            const harp_aq_planes pl = harp_kv_planes(kv, layer, which, 0);
            a[which] = hc_kv_aq{pl.codes, pl.scale16, pl.zero, f->bits, f->sym, (int)(f->group > 0 ? f->group : kv->kv_dim), kv->groups,
                                (int)harp_aq_group_bytes(f, kv->kv_dim), kv->row_bytes};
        }
        return hc_attn_decode_aq(q, &a[0], &a[1], w->pos, w->kbase, p->rows, w->d.n_heads, w->d.n_kv_heads, w->d.head_dim,
                                 w->d.sliding_window, w->d.max_tokens, w->part, w->att_count, out, impl_of(b)->stream);
    }
    if (dec)
        return hc_attn_decode(q, kv_at(kv, kv->k, layer, 0), kv_at(kv, kv->v, layer, 0), f16, w->pos, w->kbase, p->rows,
                              w->d.n_heads, w->d.n_kv_heads, w->d.head_dim, kv->kv_dim, w->d.sliding_window, w->d.max_tokens, w->part,
                              w->att_count, out, impl_of(b)->stream);
    if (!w->S && !flash_covers(&w->d)) {   // hc_set_attn_prefill(0) after this workspace was made: the cuBLAS path's scores now
        if (!(w->S = (float *)cu_alloc(b, score_bytes(&w->d), "attention scores"))) return HARP_ERR_OOM;
        w->s_bytes = score_bytes(&w->d);
        memset(w->tab_valid, 0, (size_t)w->d.n_layers * sizeof(int));   // the tables point into S
    }
    // the tensor-core kernel reads an fp16 cache as it is and an fp32 one split into h + lo; the others read fp32
    const int tc = !w->S && hc_attn_prefill_on() == 2;
    kv_view view{nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0, 0, kv->kv_dim, nullptr};
    if (tc && f16) {
        view.kh = (const __half *)kv_at(kv, kv->k, layer, 0), view.vh = (const __half *)kv_at(kv, kv->v, layer, 0);
    } else {
        HARP_TRY(kv_layer_f32(b, w, kv, layer, p, &view));
        if (tc) HARP_TRY(kv_split(b, w, kv, p, &view));
    }
    void **tab = NULL;
    HARP_TRY(tab_fill(b, w, q, &view, layer, p, out, &tab));
    cublasHandle_t blas = impl_of(b)->blas;
    cudaStream_t st = impl_of(b)->stream;
    int nh = w->d.n_heads;
    if (p->windows) {
        const harp_span *a = &p->seqs[0];
        return attn_batch(blas, st, w, tab, (size_t)w->tab_nz, 0, p->n_seqs * nh, a->n, a->n, 0, kv->kv_dim, &view);
    }
    for (int s = 0; s < p->n_seqs; s++) {
        const harp_span *a = &p->seqs[s];
        if (a->n)
            HARP_TRY(attn_batch(blas, st, w, tab, (size_t)w->tab_nz, (size_t)s * nh, nh, a->n, a->pos0 + a->n, a->pos0,
                                kv->kv_dim, &view));
    }
    return HARP_OK;
}

// One decode row whose q | k | v sit side by side (forward.c's unsplit one-row product) over an fp16
// cache: the engine's kernel rotates q and the new key itself and the CTA holding the new position
// stores K / V (dec_attn_rope: the same cache bits as rope_kv_store). Other plans: the two ops.
harp_status cu_rope_attention(harp_backend *b, harp_ws *ws, float *q, float *k, const float *v, int n_heads, int n_kv_heads,
                              int head_dim, const float *inv_freq, harp_rope_layout layout, harp_kv_cache *kv, int layer,
                              const harp_plan *p, float *out) {
    cuda_ws *w = (cuda_ws *)ws;
    HARP_TRY(kv_type_ok(kv));
    const size_t qd = (size_t)n_heads * head_dim, kvd = (size_t)kv->kv_dim;
    dec_attn_shape es;
    if (kv->type == HARP_QTYPE_F16 && p->rows == 1 && decode_plan(w, p) && k == q + qd && v == k + kvd &&
        engine_attn_shape(&w->d, w->kbase, &es))
        return dec_attn_rope(&es, q, (int)(qd + 2 * kvd), 1, w->pos, inv_freq, layout != HARP_ROPE_HALF, kv_at(kv, kv->k, layer, 0),
                             kv_at(kv, kv->v, layer, 0), out, w->part, (dec_stream)impl_of(b)->stream);
    HARP_TRY(cu_rope_kv_store(b, ws, q, k, v, n_heads, n_kv_heads, head_dim, inv_freq, layout, kv, layer, p));
    return cu_attention(b, ws, q, kv, layer, p, out);
}

// ---- graphs of decode steps ----------------------------------------------------------------------

harp_status cu_graph_begin(harp_backend *b, harp_ws *ws, const harp_plan *p, const void *tag, uint64_t serial, int *mode) {
    cuda_ws *w = (cuda_ws *)ws;
    *mode = HARP_GRAPH_PLAIN;
    if (p->tree || p->rows < 1 || !decode_plan(w, p)) return HARP_OK;
    cuda_graph *g = &w->graph[p->rows];
    if (g->state != kGraphNone && (g->tag != tag || g->serial != serial)) {
        if (g->exec) cudaGraphExecDestroy(g->exec);
        memset(g, 0, sizeof *g);
    }
    cudaStream_t st = impl_of(b)->stream;
    switch (g->state) {
    case kGraphNone:   // the first step runs plainly: the scratch buffers grow to this shape's size
        g->state = kGraphSeen, g->tag = tag, g->serial = serial;
        return HARP_OK;
    case kGraphSeen:
        CU_TRY(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal), "graph capture");
        w->capturing = p->rows;
        *mode = HARP_GRAPH_CAPTURE;
        return HARP_OK;
    case kGraphReady:
        CU_TRY(cudaGraphLaunch(g->exec, st), "graph launch");
        *mode = HARP_GRAPH_REPLAYED;
        return HARP_OK;
    default:
        return HARP_OK;
    }
}

harp_status cu_graph_end(harp_backend *b, harp_ws *ws, harp_status ops) {
    cuda_ws *w = (cuda_ws *)ws;
    cuda_graph *g = &w->graph[w->capturing];
    w->capturing = 0;
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    cudaError_t e = cudaStreamEndCapture(impl_of(b)->stream, &graph);
    if (e == cudaSuccess && !ops && graph) e = cudaGraphInstantiate(&exec, graph, 0);
    if (graph) cudaGraphDestroy(graph);
    if (ops || e != cudaSuccess || !exec) {   // some op cannot be captured: this shape runs plainly from now on
        cudaGetLastError();
        if (exec) cudaGraphExecDestroy(exec);
        g->state = kGraphFailed;
        return HARP_ERR_UNSUPPORTED;
    }
    g->exec = exec;
    g->state = kGraphReady;
    CU_TRY(cudaGraphLaunch(exec, impl_of(b)->stream), "graph launch");
    return HARP_OK;
}

harp_status cu_add(harp_backend *b, float *x, const float *y, size_t n) {
    return hc_add(x, y, n, impl_of(b)->stream);
}

harp_status cu_swiglu(harp_backend *b, float *g, const float *u, size_t n) {
    return hc_swiglu(g, u, n, impl_of(b)->stream);
}

harp_status cu_score(harp_backend *b, harp_ws *ws, const float *logits, const float *ref, int vocab,
                     const int32_t *rows, const int32_t *targets, int n, double *nll, double *kld, int *agree) {
    cuda_ws *w = (cuda_ws *)ws;
    if (n < 1) return HARP_OK;
    if (n > w->d.max_rows) return harp_err(HARP_ERR_INTERNAL, "cuda score: %d rows in a workspace of %d", n, w->d.max_rows);
    HARP_TRY(cu_upload(b, w->idx, rows, (size_t)n * sizeof(int32_t)));
    HARP_TRY(cu_upload(b, w->tgt, targets, (size_t)n * sizeof(int32_t)));
    HARP_TRY(hc_score(logits, ref, w->idx, w->tgt, n, vocab, w->nll, w->kld, w->agree, impl_of(b)->stream));
    HARP_TRY(cu_download(b, nll, w->nll, (size_t)n * sizeof(double)));
    if (ref) {
        HARP_TRY(cu_download(b, kld, w->kld, (size_t)n * sizeof(double)));
        HARP_TRY(cu_download(b, agree, w->agree, (size_t)n * sizeof(int)));
    }
    return HARP_OK;
}

// ---- instances ------------------------------------------------------------------------------------

enum { kMaxDevices = 64 };
pthread_mutex_t g_reg_mu = PTHREAD_MUTEX_INITIALIZER;
harp_backend *g_reg[kMaxDevices];
harp_backend_i g_vt;

void cu_destroy(harp_backend *b) {
    cuda_impl *im = impl_of(b);
    pthread_mutex_lock(&g_reg_mu);
    if (g_reg[im->device] == b) g_reg[im->device] = NULL;
    pthread_mutex_unlock(&g_reg_mu);
    cudaSetDevice(im->device);
    harp_cublas_destroy(im->blas);
    harp_cublas_destroy(im->blas16);
    cudaStreamDestroy(im->stream);
    free(im);
    free(b);
}

// C++ has no designated initialisers before C++20: the table is filled once, under the registry lock.
void fill_vt(harp_backend_i *v) {
    if (v->name) return;
    v->name = "cuda";
    v->host_memory = 0;
    // fp16 unless HARP_CUDA_KV_F16=0: half the cache's memory and reads, the decode engine's attention
    // kernel (a 7B token 7 % faster at 512 positions, 19 % at 4 096: docs/results/decode-gpu.md), at the
    // cost of the fp16 rounding of K and V (ref-llama ppl +7e-6 relative); kv_qtype F32 asks for fp32
    const char *kv16 = getenv("HARP_CUDA_KV_F16");
    v->kv_default = kv16 && !strcmp(kv16, "0") ? HARP_QTYPE_F32 : HARP_QTYPE_F16;
    v->supports = cu_supports;
    v->mem_free = cu_mem_free;
    v->destroy = cu_destroy;
    v->alloc = cu_alloc;
    v->free = cu_free;
    v->upload = cu_upload;
    v->download = cu_download;
    v->sync = cu_sync;
    v->host_alloc = cu_host_alloc;
    v->host_free = cu_host_free;
    v->load_group = cu_load_group;
    v->free_group = cu_free_group;
    v->group_bytes = cu_group_bytes;
    v->ws_create = cu_ws_create;
    v->ws_free = cu_ws_free;
    v->ws_bytes = cu_ws_bytes;
    v->ws_held = cu_ws_held;
    v->group_held = cu_group_held;
    v->plan_begin = cu_plan_begin;
    v->rmsnorm = cu_rmsnorm;
    v->linear = cu_linear;
    v->linear_ex = env_on("HARP_CUDA_FUSE") ? cu_linear_ex : NULL;
    v->linear_seam = env_on("HARP_CUDA_FUSE") && env_on("HARP_CUDA_SEAM") ? cu_linear_seam : NULL;
    v->rotate = cu_rotate;
    v->aquant = cu_aquant;
    v->linear_q = cu_linear_q;
    v->rope = cu_rope;
    v->kv_store = cu_kv_store;
    v->rope_kv_store = env_on("HARP_CUDA_FUSE") ? cu_rope_kv_store : NULL;
    v->attention = cu_attention;
    v->rope_attention = env_on("HARP_CUDA_FUSE") ? cu_rope_attention : NULL;
    v->add = cu_add;
    v->swiglu = cu_swiglu;
    v->score = cu_score;
    v->graph_begin = env_on("HARP_CUDA_GRAPHS") ? cu_graph_begin : NULL;   // 0: every step launched op by op
    v->graph_end = cu_graph_end;
}

harp_status device_count(int *n) {
    *n = 0;
    if (cudaGetDeviceCount(n) != cudaSuccess || *n == 0) {
        cudaGetLastError();
        *n = 0;
        return harp_err(HARP_ERR_NO_DEVICE, "cuda: no CUDA device");
    }
    return HARP_OK;
}

harp_status cu_create(int device, harp_backend **out) {
    CU_TRY(cudaSetDevice(device), "set device");
    cuda_impl *im = (cuda_impl *)harp_xcalloc(1, sizeof *im, "cuda backend");
    harp_backend *b = (harp_backend *)harp_xcalloc(1, sizeof *b, "cuda backend");
    if (!im || !b) {
        free(im);
        free(b);
        return HARP_ERR_OOM;
    }
    im->device = device;
    if (!env_on("HARP_CUDA_FOLD")) dec_set_prefill_fold(0);   // the A/B switch of prefill's weight fold
    if (cudaStreamCreateWithFlags(&im->stream, cudaStreamNonBlocking) != cudaSuccess) {
        cudaGetLastError();
        free(im);
        free(b);
        return harp_err(HARP_ERR_NO_DEVICE, "cuda: cannot create a stream");
    }
    harp_status st = new_blas(&im->blas);
    if (!st && harp_cublas_create(&im->blas16) != CUBLAS_STATUS_SUCCESS) {
        harp_cublas_destroy(im->blas);
        st = harp_err(HARP_ERR_NO_DEVICE, "cublas: cannot create a handle");
    }
    if (!st && (harp_cublas_set_stream(im->blas, im->stream) != CUBLAS_STATUS_SUCCESS ||
                harp_cublas_set_stream(im->blas16, im->stream) != CUBLAS_STATUS_SUCCESS)) {
        harp_cublas_destroy(im->blas);
        harp_cublas_destroy(im->blas16);
        st = harp_err(HARP_ERR_NO_DEVICE, "cublas: cannot set the stream");
    }
    if (st) {
        cudaStreamDestroy(im->stream);
        free(im);
        free(b);
        return st;
    }
    b->vt = &g_vt;
    b->impl = im;
    b->refs = 1;
    snprintf(b->name, sizeof b->name, "cuda:%d", device);
    *out = b;
    return HARP_OK;
}

}  // namespace

extern "C" harp_status harp_backend_cuda_create(int device, harp_backend **out) {
    if (!out) return harp_err(HARP_ERR_INVALID_ARG, "harp_backend_cuda_create: NULL argument");
    *out = NULL;
    int n = 0;
    HARP_TRY(device_count(&n));
    if (device < 0 || device >= n || device >= kMaxDevices)
        return harp_err(HARP_ERR_INVALID_ARG, "cuda backend: device %d does not exist (%d present)", device, n);
    pthread_mutex_lock(&g_reg_mu);
    fill_vt(&g_vt);
    harp_status st = HARP_OK;
    if (!(g_reg[device] && (*out = harp_backend_retain(g_reg[device])))) {
        st = cu_create(device, out);
        if (!st) g_reg[device] = *out;
    }
    pthread_mutex_unlock(&g_reg_mu);
    return st;
}

extern "C" int harp_cuda_available(void) {
    int n = 0;
    return device_count(&n) == HARP_OK;
}
