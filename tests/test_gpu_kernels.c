/* Every op of the CUDA backend against the CPU backend (the reference) at awkward sizes: rows and
 * widths that are multiples of nothing, GQA, sliding windows, plans of independent windows, of one
 * sequence continuing the cache (decode) and of roots of different lengths. Skipped (77) without
 * -DHARP_CUDA=ON or without a device. Tolerances, all from the fact that both sides compute in fp32
 * with the same formulas and only the summation order or the libm differs:
 *   add, kv_store   exact; rope_kv_store bit-identical to rope, rope, kv_store on the GPU;
 *                          rope_attention bit-identical to rope_kv_store + attention on the GPU
 *   rmsnorm   |Δ| ≤ 4 ulp of |ref| (the double sum of squares rounds to float identically or 1 ulp apart)
 *   rope      |Δ| ≤ 1e-6·(|a|+|b|) of the rotated pair (CUDA cosf/sinf are within 2 ulp)
 *   swiglu    |Δ| ≤ 1e-6·|ref| (CUDA expf within 2 ulp)
 *   linear    |Δ| ≤ 1e-5·(1+|ref|) (cuBLAS vs OpenBLAS sgemm summation order; inputs in [-1, 1]); also
 *             linear_ex (RMSNorm first, accumulate) against the CPU's rmsnorm, linear, add
 *   attention |Δ| ≤ 1e-5 of both backends against the double reference harp_attention_ref (plans of
 *             one row per sequence take the CUDA backend's decode kernel, the others the one-launch
 *             prefill kernel at head sizes 64 / 128 — on the tensor cores, fp32 caches split into h + lo — and cuBLAS
 *             + softmax otherwise; those plans run in every mode: hc_set_attn_prefill 2, 1 and 0; keys of
 *             1e5 in an fp32 cache take the tensor-core path's FFMA fallback)
 *   score     NLL and KLD |Δ| ≤ 1e-9 (both double over the same fp32 logits), argmax exact.
 * W/A/KV (issue 14):
 *   rotate    online plain Hadamards (R3 per head, R4, R_o) at every width class harp builds (2^k, 12·2^k,
 *             172, 172·64, 28·2^k), 1 to 4 100 rows: |Δ| ≤ 2e-6·max|ref| (both fp32 with ±1 entries,
 *             different summation order; the same bound as the CPU against its dense twin)
 *   aquant    bit-identical (dec_aq_fake is harp_aq_fake's arithmetic)
 *   quantized KV cache (2/3/4/8 bits, sym / asym, groups of head_dim or wider): kv_store's codes, scales
 *             and zero points bit-identical; attention over them as for the fp32 cache (|Δ| ≤ 1e-5 between
 *             the backends: both read the same dequantized values), prefill and decode plans; decode
 *             again through the engine's 4-bit kernel over the planes (dec_set_attn_kv4_planes). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "harp/backend.h"
#include "harp/cuda_eval.h"
#include "harp/rotate.h"
#include "model/backend.h"
#include "model/kernels.h"
#include "model/layer.h"
#include "quant/aq.h"
#include "test_util.h"
#ifdef HARP_HAVE_CUDA
#include "cuda/cuda_kernels.h"
#include "cuda/decode.h"
#endif

#ifdef HARP_HAVE_CUDA
static harp_rng rng;
static float *rounded(const float *x, size_t n, uint16_t **bits);
static harp_backend *cpu, *gpu;

static float *rnd(size_t n, float scale) {
    float *x = malloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++) x[i] = (float)harp_rng_normal(&rng) * scale;
    return x;
}

static void *dev(const void *h, size_t bytes) {
    void *d = gpu->vt->alloc(gpu, bytes, "test buffer");
    CHECK(d != NULL);
    if (d && h) CHECK_OK(gpu->vt->upload(gpu, d, h, bytes));
    return d;
}

static void host(void *h, const void *d, size_t bytes) {
    CHECK_OK(gpu->vt->sync(gpu));
    CHECK_OK(gpu->vt->download(gpu, h, d, bytes));
}

static harp_dims dims(int nh, int nkv, int hd, int window, int max_rows, int max_tokens) {
    harp_dims d;
    memset(&d, 0, sizeof d);
    d.dim = nh * hd;
    d.hidden = 3 * d.dim;
    d.n_heads = nh;
    d.n_kv_heads = nkv;
    d.head_dim = hd;
    d.vocab = 7;
    d.n_layers = 2;
    d.sliding_window = window;
    d.max_rows = max_rows;
    d.max_tokens = max_tokens;
    return d;
}

typedef struct pair_ws {
    harp_ws *c, *g;
} pair_ws;

static pair_ws make_ws(const harp_dims *d) {
    pair_ws w = {NULL, NULL};
    CHECK_OK(cpu->vt->ws_create(cpu, d, &w.c));
    CHECK_OK(gpu->vt->ws_create(gpu, d, &w.g));
    return w;
}

static void free_ws(pair_ws *w) {
    if (w->c) cpu->vt->ws_free(cpu, w->c);
    if (w->g) gpu->vt->ws_free(gpu, w->g);
}

static harp_plan plan_of(const harp_span *s, int n) {
    harp_plan p = {s, n, 0, 0, 1};
    for (int i = 0; i < n; i++) {
        p.rows += s[i].n;
        p.tree |= s[i].parent >= 0;
        p.windows &= s[i].parent < 0 && s[i].pos0 == 0 && s[i].kv0 == s[i].row0 && s[i].n == s[0].n && s[i].n > 0;
    }
    return p;
}

static void test_rmsnorm(int rows, int n, int listed) {
    harp_dims d = dims(1, 1, 2, 0, rows + 3, 4);
    pair_ws w = make_ws(&d);
    int src_rows = rows + 3;
    float *x = rnd((size_t)src_rows * n, 3.0f), *wt = rnd((size_t)n, 1.0f);
    float *y = malloc((size_t)rows * n * 4), *r = malloc((size_t)rows * n * 4);
    int32_t *idx = malloc((size_t)rows * sizeof(int32_t));
    for (int j = 0; j < rows; j++) idx[j] = (int32_t)((j * 7 + 2) % src_rows);   /* any order, repeats */
    const int32_t *li = listed ? idx : NULL;
    CHECK_OK(cpu->vt->rmsnorm(cpu, w.c, x, li, rows, n, wt, 1e-5f, r));
    float *dx = dev(x, (size_t)src_rows * n * 4), *dw = dev(wt, (size_t)n * 4), *dy = dev(NULL, (size_t)rows * n * 4);
    CHECK_OK(gpu->vt->rmsnorm(gpu, w.g, dx, li, rows, n, dw, 1e-5f, dy));
    host(y, dy, (size_t)rows * n * 4);
    int bad = 0;
    for (size_t i = 0; i < (size_t)rows * n; i++) bad += !(fabsf(y[i] - r[i]) <= 4 * FLT_EPSILON * fabsf(r[i]));
    CHECK_MSG(!bad, "rmsnorm %d x %d (row list %d): %d values off", rows, n, listed, bad);
    gpu->vt->free(gpu, dx), gpu->vt->free(gpu, dw), gpu->vt->free(gpu, dy);
    free(x), free(wt), free(y), free(r), free(idx);
    free_ws(&w);
}

static void test_rope(const harp_span *sp, int ns, int nh, int hd, harp_rope_layout layout) {
    harp_plan p = plan_of(sp, ns);
    int width = nh * hd, maxpos = 0;
    for (int i = 0; i < ns; i++) maxpos = sp[i].pos0 + sp[i].n > maxpos ? sp[i].pos0 + sp[i].n : maxpos;
    harp_dims d = dims(nh, nh, hd, 0, p.rows, maxpos);
    pair_ws w = make_ws(&d);
    size_t total = (size_t)p.rows * width;
    float *x = rnd(total, 1.0f), *g = malloc(total * 4), *r = malloc(total * 4), *inv = malloc((size_t)hd / 2 * 4);
    for (int i = 0; i < hd / 2; i++) inv[i] = powf(10000.0f, -2.0f * i / hd);
    memcpy(r, x, total * 4);
    CHECK_OK(cpu->vt->rope(cpu, w.c, r, nh, hd, inv, layout, &p));
    float *dx = dev(x, total * 4), *di = dev(inv, (size_t)hd / 2 * 4);
    CHECK_OK(gpu->vt->plan_begin(gpu, w.g, &p));
    CHECK_OK(gpu->vt->rope(gpu, w.g, dx, nh, hd, di, layout, &p));
    host(g, dx, total * 4);
    int bad = 0, half = hd / 2;
    for (int row = 0; row < p.rows; row++)
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < half; i++) {
                size_t base = (size_t)row * width + (size_t)h * hd;
                size_t ia = base + (layout == HARP_ROPE_HALF ? (size_t)i : 2 * (size_t)i);
                size_t ib = base + (layout == HARP_ROPE_HALF ? (size_t)(i + half) : 2 * (size_t)i + 1);
                float tol = 1e-6f * (fabsf(x[ia]) + fabsf(x[ib]));
                bad += !(fabsf(g[ia] - r[ia]) <= tol) + !(fabsf(g[ib] - r[ib]) <= tol);
            }
    CHECK_MSG(!bad, "rope %d seqs (%d rows, positions to %d) heads %d hd %d layout %d: %d values off", ns, p.rows,
              maxpos - 1, nh, hd, layout, bad);
    gpu->vt->free(gpu, dx), gpu->vt->free(gpu, di);
    free(x), free(g), free(r), free(inv);
    free_ws(&w);
}

/* The positions a plan reaches (max pos0 + n) and the cache rows it needs (max kv0 + n, at least rows). */
static void extent(const harp_span *sp, int ns, int rows, int *maxpos, int *cache_rows) {
    *maxpos = 0, *cache_rows = rows;
    for (int i = 0; i < ns; i++) {
        *maxpos = sp[i].pos0 + sp[i].n > *maxpos ? sp[i].pos0 + sp[i].n : *maxpos;
        *cache_rows = sp[i].kv0 + sp[i].n > *cache_rows ? sp[i].kv0 + sp[i].n : *cache_rows;
    }
}

/* rope_kv_store against the three ops it stands for, on the GPU: bit-identical q, cache and k. */
static void test_rope_store(const harp_span *sp, int ns, int nh, int nkv, int hd, harp_rope_layout layout) {
    harp_plan p = plan_of(sp, ns);
    int qd = nh * hd, kvd = nkv * hd, maxpos, cache_rows;
    extent(sp, ns, p.rows, &maxpos, &cache_rows);
    harp_dims d = dims(nh, nkv, hd, 0, p.rows, maxpos);
    pair_ws w = make_ws(&d);
    size_t nq = (size_t)p.rows * qd, nk = (size_t)p.rows * kvd, cache = 2 * (size_t)cache_rows * kvd;
    float *q = rnd(nq, 1.0f), *k = rnd(nk, 1.0f), *v = rnd(nk, 1.0f), *c0 = rnd(cache, 1.0f), *inv = malloc((size_t)hd / 2 * 4);
    for (int i = 0; i < hd / 2; i++) inv[i] = powf(10000.0f, -2.0f * i / hd);
    float *di = dev(inv, (size_t)hd / 2 * 4), *dv = dev(v, nk * 4);
    float *dq[2], *dk[2];
    harp_kv_cache kv[2];
    for (int j = 0; j < 2; j++) {
        dq[j] = dev(q, nq * 4), dk[j] = dev(k, nk * 4);
        kv[j] = (harp_kv_cache){.type = HARP_QTYPE_F32, .n_layers = 2, .rows = cache_rows, .kv_dim = kvd, .row_bytes = (size_t)kvd * 4,
                                .k = dev(c0, cache * 4), .v = dev(c0, cache * 4)};
    }
    CHECK_OK(gpu->vt->plan_begin(gpu, w.g, &p));
    CHECK_OK(gpu->vt->rope(gpu, w.g, dq[0], nh, hd, di, layout, &p));
    CHECK_OK(gpu->vt->rope(gpu, w.g, dk[0], nkv, hd, di, layout, &p));
    CHECK_OK(gpu->vt->kv_store(gpu, w.g, &kv[0], 1, dk[0], dv, &p));
    CHECK_OK(gpu->vt->rope_kv_store(gpu, w.g, dq[1], dk[1], dv, nh, nkv, hd, di, layout, &kv[1], 1, &p));
    const size_t most = nq > cache ? nq : cache;
    float *a = malloc(most * 4), *b = malloc(most * 4);
    int same = 1;
    const void *pairs[4][2] = {{dq[0], dq[1]}, {dk[0], dk[1]}, {kv[0].k, kv[1].k}, {kv[0].v, kv[1].v}};
    const size_t bytes[4] = {nq * 4, nk * 4, cache * 4, cache * 4};
    for (int t = 0; t < 4; t++) {
        host(a, pairs[t][0], bytes[t]);
        host(b, pairs[t][1], bytes[t]);
        same &= !memcmp(a, b, bytes[t]);
    }
    CHECK_MSG(same, "rope_kv_store %d seqs (%d rows) heads %d/%d hd %d layout %d: differs from rope, rope, kv_store", ns, p.rows,
              nh, nkv, hd, layout);
    for (int j = 0; j < 2; j++) {
        gpu->vt->free(gpu, dq[j]), gpu->vt->free(gpu, dk[j]), gpu->vt->free(gpu, kv[j].k), gpu->vt->free(gpu, kv[j].v);
    }
    gpu->vt->free(gpu, di), gpu->vt->free(gpu, dv);
    free(q), free(k), free(v), free(c0), free(inv), free(a), free(b);
    free_ws(&w);
}

/* rope_attention on one decode row whose q | k | v sit side by side (forward.c's unsplit product)
 * against rope_kv_store + attention on split copies, on the GPU: the same cache bytes and the same
 * output bits (the engine's fp16 kernel rotates and stores as rope_kv_store does, and rope_kv_store
 * + attention reach the same kernel); fp16 and fp32 caches, head dims the engine takes and one it
 * does not (the fallback: the two ops), cache rows that do not start at position 0. */
static void test_rope_attention(int pos, int nh, int nkv, int hd, int window, harp_rope_layout layout, int f16) {
    if (!gpu->vt->rope_attention) return;   /* HARP_CUDA_FUSE=0 */
    const harp_span sp[1] = {{0, 1, pos, -1, pos + 5}};
    harp_plan p = plan_of(sp, 1);
    int qd = nh * hd, kvd = nkv * hd, maxpos, cache_rows;
    extent(sp, 1, p.rows, &maxpos, &cache_rows);
    harp_dims d = dims(nh, nkv, hd, window, p.rows, maxpos);
    pair_ws w = make_ws(&d);
    const size_t cache = 2 * (size_t)cache_rows * kvd, eb = f16 ? 2 : 4, nr = (size_t)qd + 2 * (size_t)kvd;
    float *c0 = rnd(cache, 1.0f), *row = rnd(nr, 1.0f), *inv = malloc((size_t)hd / 2 * 4);
    uint16_t *c16 = NULL;
    float *c0r = rounded(c0, cache, &c16);
    for (int i = 0; i < hd / 2; i++) inv[i] = powf(10000.0f, -2.0f * i / hd);
    float *di = dev(inv, (size_t)hd / 2 * 4), *drow = dev(row, nr * 4);
    float *dq = dev(row, (size_t)qd * 4), *dk = dev(row + qd, (size_t)kvd * 4), *dv = dev(row + qd + kvd, (size_t)kvd * 4);
    float *dout[2];
    harp_kv_cache kv[2];
    for (int j = 0; j < 2; j++) {
        dout[j] = dev(NULL, (size_t)qd * 4);
        kv[j] = (harp_kv_cache){.type = f16 ? HARP_QTYPE_F16 : HARP_QTYPE_F32, .n_layers = 2, .rows = cache_rows, .kv_dim = kvd,
                                .row_bytes = (size_t)kvd * eb, .k = dev(f16 ? (void *)c16 : (void *)c0, cache * eb),
                                .v = dev(f16 ? (void *)c16 : (void *)c0, cache * eb)};
    }
    CHECK_OK(gpu->vt->plan_begin(gpu, w.g, &p));
    CHECK_OK(gpu->vt->rope_kv_store(gpu, w.g, dq, dk, dv, nh, nkv, hd, di, layout, &kv[0], 1, &p));
    CHECK_OK(gpu->vt->attention(gpu, w.g, dq, &kv[0], 1, &p, dout[0]));
    CHECK_OK(gpu->vt->rope_attention(gpu, w.g, drow, drow + qd, drow + qd + kvd, nh, nkv, hd, di, layout, &kv[1], 1, &p, dout[1]));
    const size_t most = cache * eb > (size_t)qd * 4 ? cache * eb : (size_t)qd * 4;
    unsigned char *a = malloc(most), *b = malloc(most);
    int same = 1;
    const void *pairs[3][2] = {{kv[0].k, kv[1].k}, {kv[0].v, kv[1].v}, {dout[0], dout[1]}};
    const size_t bytes[3] = {cache * eb, cache * eb, (size_t)qd * 4};
    for (int t = 0; t < 3; t++) {
        host(a, pairs[t][0], bytes[t]);
        host(b, pairs[t][1], bytes[t]);
        same &= !memcmp(a, b, bytes[t]);
    }
    CHECK_MSG(same, "rope_attention position %d heads %d/%d hd %d window %d layout %d f16 %d: differs from rope_kv_store + attention",
              pos, nh, nkv, hd, window, layout, f16);
    for (int j = 0; j < 2; j++) gpu->vt->free(gpu, dout[j]), gpu->vt->free(gpu, kv[j].k), gpu->vt->free(gpu, kv[j].v);
    gpu->vt->free(gpu, di), gpu->vt->free(gpu, drow), gpu->vt->free(gpu, dq), gpu->vt->free(gpu, dk), gpu->vt->free(gpu, dv);
    free(c0), free(c0r), free(c16), free(row), free(inv), free(a), free(b);
    free_ws(&w);
}

static void test_elementwise(size_t n) {
    float *g = rnd(n, 4.0f), *u = rnd(n, 1.0f), *a = malloc(n * 4), *r = malloc(n * 4);
    memcpy(r, g, n * 4);
    CHECK_OK(cpu->vt->swiglu(cpu, r, u, n));
    float *dg = dev(g, n * 4), *du = dev(u, n * 4);
    CHECK_OK(gpu->vt->swiglu(gpu, dg, du, n));
    host(a, dg, n * 4);
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad += !(fabsf(a[i] - r[i]) <= 1e-6f * fabsf(r[i]));
    CHECK_MSG(!bad, "swiglu %zu: %d values off", n, bad);
    CHECK_OK(cpu->vt->add(cpu, a, u, n));   /* a + u on the CPU from the GPU's swiglu ... */
    CHECK_OK(gpu->vt->add(gpu, dg, du, n)); /* ... and on the GPU: the same float additions */
    float *b = malloc(n * 4);
    host(b, dg, n * 4);
    CHECK_MSG(!memcmp(a, b, n * 4), "add %zu: differs", n);
    gpu->vt->free(gpu, dg), gpu->vt->free(gpu, du);
    free(g), free(u), free(a), free(r), free(b);
}

/* A group of fp32 slices (with biases on some) through both backends' load_group and linear. */
static void test_linear(int rows, int in, int n, const int *outs, int with_bias) {
    harp_lgroup g;
    CHECK_OK(harp_lgroup_init(&g, n, outs, in, "test group"));
    g.w_borrowed = 1;
    float *W[3], *B[3] = {NULL, NULL, NULL};
    int total = 0;
    for (int s = 0; s < n; s++) {
        W[s] = g.w[s] = rnd((size_t)outs[s] * in, 0.5f);
        for (size_t i = 0; i < (size_t)outs[s] * in; i++) W[s][i] = fmaxf(-1.0f, fminf(1.0f, W[s][i]));
        if (with_bias && s != 1) g.bias[s] = B[s] = rnd((size_t)outs[s], 1.0f);
        total += outs[s];
    }
    harp_dims d = dims(1, 1, total, 0, rows, 4);
    d.hidden = total;
    pair_ws w = make_ws(&d);
    float *X = rnd((size_t)rows * in, 0.5f);
    for (size_t i = 0; i < (size_t)rows * in; i++) X[i] = fmaxf(-1.0f, fminf(1.0f, X[i]));
    void *hc = NULL, *hg = NULL;
    CHECK_OK(cpu->vt->load_group(cpu, &g, &hc));
    CHECK_OK(gpu->vt->load_group(gpu, &g, &hg));
    float *Yc[3], *Yg[3], *dY[3];
    for (int s = 0; s < n; s++) {
        Yc[s] = malloc((size_t)rows * outs[s] * 4);
        Yg[s] = malloc((size_t)rows * outs[s] * 4);
        dY[s] = dev(NULL, (size_t)rows * outs[s] * 4);
    }
    float *dX = dev(X, (size_t)rows * in * 4);
    CHECK_OK(cpu->vt->linear(cpu, w.c, &g, hc, X, rows, Yc));
    CHECK_OK(gpu->vt->linear(gpu, w.g, &g, hg, dX, rows, dY));
    double worst = 0;
    for (int s = 0; s < n; s++) {
        host(Yg[s], dY[s], (size_t)rows * outs[s] * 4);
        for (size_t i = 0; i < (size_t)rows * outs[s]; i++) {
            double e = fabs((double)Yg[s][i] - Yc[s][i]) / (1 + fabs(Yc[s][i]));
            worst = e > worst || e != e ? e : worst;
        }
    }
    CHECK_MSG(worst <= 1e-5, "linear %d rows, in %d, %d slices (bias %d): rel err %.3g", rows, in, n, with_bias, worst);
    /* linear_ex: the RMSNorm of X first and, one slice, the product added to what Y held, against the
     * CPU's rmsnorm, linear and add */
    float *nw = rnd((size_t)in, 1.0f), *Xn = malloc((size_t)rows * in * 4), *R0 = rnd((size_t)rows * outs[0], 1.0f);
    float *dnw = dev(nw, (size_t)in * 4);
    CHECK_OK(cpu->vt->rmsnorm(cpu, w.c, X, NULL, rows, in, nw, 1e-5f, Xn));
    CHECK_OK(cpu->vt->linear(cpu, w.c, &g, hc, Xn, rows, Yc));
    const int acc = n == 1;
    if (acc) {
        CHECK_OK(gpu->vt->upload(gpu, dY[0], R0, (size_t)rows * outs[0] * 4));
        CHECK_OK(cpu->vt->add(cpu, Yc[0], R0, (size_t)rows * outs[0]));
    }
    CHECK_OK(gpu->vt->linear_ex(gpu, w.g, &g, hg, dX, dnw, 1e-5f, rows, dY, acc ? HARP_LIN_ACCUMULATE : 0));
    worst = 0;
    for (int s = 0; s < n; s++) {
        host(Yg[s], dY[s], (size_t)rows * outs[s] * 4);
        for (size_t i = 0; i < (size_t)rows * outs[s]; i++) {
            double e = fabs((double)Yg[s][i] - Yc[s][i]) / (1 + fabs(Yc[s][i]));
            worst = e > worst || e != e ? e : worst;
        }
    }
    CHECK_MSG(worst <= 1e-5, "linear_ex %d rows, in %d, %d slices (bias %d, accumulate %d): rel err %.3g", rows, in, n,
              with_bias, acc, worst);
    gpu->vt->free(gpu, dnw);
    free(nw), free(Xn), free(R0);
    cpu->vt->free_group(cpu, hc);
    gpu->vt->free_group(gpu, hg);
    gpu->vt->free(gpu, dX);
    for (int s = 0; s < n; s++) {
        free(Yc[s]), free(Yg[s]), free(W[s]), free(B[s]);
        gpu->vt->free(gpu, dY[s]);
    }
    free(X);
    free_ws(&w);
}

/* fp16 of every value, as fp32 (what an fp16 cache holds) and as the stored bits. */
static float *rounded(const float *x, size_t n, uint16_t **bits) {
    float *r = malloc(n * 4);
    *bits = malloc(n * 2);
    for (size_t i = 0; i < n; i++) (*bits)[i] = harp_f32_to_f16(x[i]), r[i] = harp_f16_to_f32((*bits)[i]);
    return r;
}

/* kv_store + attention of a plan in layer 1 of a 2-layer cache whose rows before each root's
 * first position hold earlier keys/values (the same random data on both backends). f16: the CUDA
 * cache holds fp16 (kv_qtype F16), checked bit for bit against the CPU's fp32 cache rounded, and its
 * attention against the reference on those rounded keys and values. g_kscale: the keys' magnitude,
 * the queries' scaled by its inverse so that the scores keep theirs (1e5 puts an fp32 cache past
 * fp16's range: the tensor-core path's FFMA fallback; unscaled queries would make scores of 1e5
 * whose fp32 rounding alone moves the softmax by 1e-3 on the CPU too). */
static float g_kscale = 1.0f;

static void test_attention_t(const harp_span *sp, int ns, int nh, int nkv, int hd, int window, int f16) {
    harp_plan p = plan_of(sp, ns);
    int qd = nh * hd, kvd = nkv * hd, maxpos, cache_rows;
    extent(sp, ns, p.rows, &maxpos, &cache_rows);
    harp_dims d = dims(nh, nkv, hd, window, p.rows, maxpos);
    pair_ws w = make_ws(&d);
    size_t cache = 2 * (size_t)cache_rows * kvd, eb = f16 ? 2 : 4;
    float *K0 = rnd(cache, g_kscale), *V0 = rnd(cache, 1.0f);
    float *q = rnd((size_t)p.rows * qd, 1.0f / g_kscale), *k = rnd((size_t)p.rows * kvd, g_kscale), *v = rnd((size_t)p.rows * kvd, 1.0f);
    harp_kv_cache kc = {.type = HARP_QTYPE_F32, .n_layers = 2, .rows = cache_rows, .kv_dim = kvd, .row_bytes = (size_t)kvd * 4, .k = K0, .v = V0};
    harp_kv_cache kg = kc;
    uint16_t *K16 = NULL, *V16 = NULL;
    float *K0r = rounded(K0, cache, &K16), *V0r = rounded(V0, cache, &V16);
    if (f16) kg.type = HARP_QTYPE_F16, kg.row_bytes = (size_t)kvd * 2;
    kg.k = dev(f16 ? (void *)K16 : (void *)K0, cache * eb);
    kg.v = dev(f16 ? (void *)V16 : (void *)V0, cache * eb);
    float *oc = malloc((size_t)p.rows * qd * 4), *og = malloc((size_t)p.rows * qd * 4);
    float *dq = dev(q, (size_t)p.rows * qd * 4), *dk = dev(k, (size_t)p.rows * kvd * 4);
    float *dv = dev(v, (size_t)p.rows * kvd * 4), *dout = dev(NULL, (size_t)p.rows * qd * 4);
    CHECK_OK(cpu->vt->kv_store(cpu, w.c, &kc, 1, k, v, &p));
    CHECK_OK(cpu->vt->attention(cpu, w.c, q, &kc, 1, &p, oc));
    CHECK_OK(gpu->vt->plan_begin(gpu, w.g, &p));
    CHECK_OK(gpu->vt->kv_store(gpu, w.g, &kg, 1, dk, dv, &p));
    CHECK_OK(gpu->vt->attention(gpu, w.g, dq, &kg, 1, &p, dout));
    host(og, dout, (size_t)p.rows * qd * 4);
    free(K0r), free(V0r), free(K16), free(V16);
    K0r = rounded(K0, cache, &K16), V0r = rounded(V0, cache, &V16);   /* the CPU cache after its store */
    void *Kg = malloc(cache * eb), *Vg = malloc(cache * eb);
    host(Kg, kg.k, cache * eb);
    host(Vg, kg.v, cache * eb);
    CHECK_MSG(!memcmp(Kg, f16 ? (void *)K16 : (void *)K0, cache * eb) && !memcmp(Vg, f16 ? (void *)V16 : (void *)V0, cache * eb),
              "kv_store: the caches differ (f16 %d)", f16);
    double wc = 0, wg = 0;
    float *r = malloc((size_t)p.rows * qd * 4), *rg = malloc((size_t)p.rows * qd * 4);
    for (int s = 0; s < ns; s++) {
        const harp_span *a = &sp[s];
        const size_t o = ((size_t)cache_rows + a->kv0 - a->pos0) * kvd;
        harp_attention_ref(q + (size_t)a->row0 * qd, K0 + o, V0 + o, a->n, a->pos0, nh, nkv, hd, window, r + (size_t)a->row0 * qd);
        harp_attention_ref(q + (size_t)a->row0 * qd, (f16 ? K0r : K0) + o, (f16 ? V0r : V0) + o, a->n, a->pos0, nh, nkv, hd, window,
                           rg + (size_t)a->row0 * qd);
    }
    for (size_t i = 0; i < (size_t)p.rows * qd; i++) {
        double ec = fabs((double)oc[i] - r[i]), eg = fabs((double)og[i] - rg[i]);
        wc = ec > wc || ec != ec ? ec : wc;
        wg = eg > wg || eg != eg ? eg : wg;
    }
    CHECK_MSG(wc <= 1e-5 && wg <= 1e-5, "attention %d seqs (%d rows, windows %d) heads %d/%d hd %d window %d f16 %d: "
              "max |diff| cpu %.3g, cuda %.3g", ns, p.rows, p.windows, nh, nkv, hd, window, f16, wc, wg);
    gpu->vt->free(gpu, kg.k), gpu->vt->free(gpu, kg.v), gpu->vt->free(gpu, dq), gpu->vt->free(gpu, dk);
    gpu->vt->free(gpu, dv), gpu->vt->free(gpu, dout);
    free(K0), free(V0), free(q), free(k), free(v), free(oc), free(og), free(Kg), free(Vg), free(r), free(rg);
    free(K0r), free(V0r), free(K16), free(V16);
    free_ws(&w);
}

/* Both cache types. */
static void test_attention(const harp_span *sp, int ns, int nh, int nkv, int hd, int window) {
    test_attention_t(sp, ns, nh, nkv, hd, window, 0);
    test_attention_t(sp, ns, nh, nkv, hd, window, 1);
}

static void test_windows_attention(int n_windows, int ctx, int nh, int nkv, int hd, int window) {
    harp_span sp[8];
    for (int i = 0; i < n_windows; i++) sp[i] = (harp_span){i * ctx, ctx, 0, -1, i * ctx};
    test_attention(sp, n_windows, nh, nkv, hd, window);
}

static void test_score(int n_windows, int ctx, int V) {
    size_t R = (size_t)n_windows * ctx;
    int n = n_windows * (ctx - 1);
    harp_dims d = dims(1, 1, 2, 0, (int)R, ctx);
    d.vocab = V;
    pair_ws w = make_ws(&d);
    float *l = rnd(R * V, 3.0f), *lr = rnd(R * V, 3.0f);
    /* Ties: row 0 has its maximum twice, so the lowest index must win on both sides. */
    l[5] = l[V - 2] = 40.0f;
    lr[V - 2] = 41.0f;
    for (size_t i = V; i < R * V; i += 7) lr[i] = l[i];   /* some agreement elsewhere */
    int32_t *rows = malloc((size_t)n * 4), *tg = malloc((size_t)n * 4);
    for (int k = 0; k < n_windows; k++)
        for (int i = 0; i < ctx - 1; i++) {
            rows[k * (ctx - 1) + i] = k * ctx + i;
            tg[k * (ctx - 1) + i] = (int32_t)(harp_rng_u64(&rng) % (uint64_t)V);
        }
    double *nc = malloc((size_t)n * 8), *kc = malloc((size_t)n * 8), *ng = malloc((size_t)n * 8), *kg = malloc((size_t)n * 8);
    int *ac = malloc((size_t)n * sizeof(int)), *ag = malloc((size_t)n * sizeof(int));
    CHECK_OK(cpu->vt->score(cpu, w.c, l, lr, V, rows, tg, n, nc, kc, ac));
    float *dl = dev(l, R * V * 4), *dr = dev(lr, R * V * 4);
    CHECK_OK(gpu->vt->score(gpu, w.g, dl, dr, V, rows, tg, n, ng, kg, ag));
    int bad = 0;
    for (int j = 0; j < n; j++) bad += !(fabs(ng[j] - nc[j]) <= 1e-9) + !(fabs(kg[j] - kc[j]) <= 1e-9) + (ag[j] != ac[j]);
    CHECK_MSG(!bad, "score %d windows ctx %d vocab %d: %d values off", n_windows, ctx, V, bad);
    /* Against itself: KL exactly 0 and full agreement. */
    CHECK_OK(gpu->vt->score(gpu, w.g, dl, dl, V, rows, tg, n, ng, kg, ag));
    int nz = 0;
    for (int j = 0; j < n; j++) nz += kg[j] != 0.0 || ag[j] != 1;
    CHECK_MSG(!nz, "score against itself: %d rows with KL != 0 or disagreement", nz);
    gpu->vt->free(gpu, dl), gpu->vt->free(gpu, dr);
    free(l), free(lr), free(rows), free(tg), free(nc), free(kc), free(ng), free(kg), free(ac), free(ag);
    free_ws(&w);
}

/* The online rotation op on rows of width n (a plain Hadamard of that width). */
static void test_rotate(int n, int rows) {
    harp_rot *r = NULL;
    CHECK_OK(harp_rot_create(HARP_ROT_HADAMARD, n, NULL, 0, &r));
    if (!r) return;
    harp_dims d = dims(1, 1, 2, 0, 8, 4);
    pair_ws w = make_ws(&d);
    const size_t e = (size_t)rows * n;
    float *x = rnd(e, 1.0f), *y = malloc(e * 4);
    for (size_t i = 0; i < e; i += 97) x[i] *= 40.0f;   /* outliers, what the rotation is for */
    float *dx = dev(x, e * 4);
    CHECK_OK(cpu->vt->rotate(cpu, w.c, r, x, rows, n));
    CHECK_OK(gpu->vt->rotate(gpu, w.g, r, dx, rows, n));
    host(y, dx, e * 4);
    double worst = 0, top = 0;
    for (size_t i = 0; i < e; i++) {
        const double t = fabs((double)y[i] - x[i]);
        worst = t > worst || t != t ? t : worst;
        top = fmax(top, fabs(x[i]));
    }
    CHECK_MSG(worst <= 2e-6 * top, "rotate n %d (K %d) rows %d: max |diff| %.3g of max %.3g", n, harp_rot_hadamard_k(r), rows, worst, top);
    CHECK(gpu->vt->rotate(gpu, w.g, r, dx, rows, n + 1) != HARP_OK);
    gpu->vt->free(gpu, dx);
    free(x), free(y);
    harp_rot_destroy(r);
    free_ws(&w);
}

/* The activation quantizer op (fake quantization in place), every format class. */
static void test_aquant(int bits, int sym, int group, float clip, int rows, int n) {
    harp_dims d = dims(1, 1, 2, 0, 8, 4);
    pair_ws w = make_ws(&d);
    struct harp_aquant q = {{bits, sym, group, clip, 0}};
    const size_t e = (size_t)rows * n;
    float *x = rnd(e, 1.0f), *y = malloc(e * 4);
    for (size_t i = 0; i < e; i += 31) x[i] *= 9.0f;
    float *dx = dev(x, e * 4);
    CHECK_OK(cpu->vt->aquant(cpu, w.c, &q, x, rows, n));
    CHECK_OK(gpu->vt->aquant(gpu, w.g, &q, dx, rows, n));
    host(y, dx, e * 4);
    CHECK_MSG(!memcmp(x, y, e * 4), "aquant %d-bit %s group %d clip %g, %d × %d: differs from the CPU", bits, sym ? "sym" : "asym",
              group, clip, rows, n);
    gpu->vt->free(gpu, dx);
    free(x), free(y);
    free_ws(&w);
}

/* A quantized cache of 2 layers: the planes on the host (h) and the same layout on the device (g). */
typedef struct qcache {
    harp_kv_cache h, g;
    size_t codes, groups;
} qcache;

static qcache qcache_make(const struct harp_aquant *q, harp_qtype t, int rows, int kvd) {
    qcache c;
    memset(&c, 0, sizeof c);
    c.h = (harp_kv_cache){.type = t, .n_layers = 2, .rows = rows, .kv_dim = kvd, .q = q};
    c.h.groups = (int)harp_aq_groups(&q[0].fmt, kvd);
    c.h.row_bytes = (size_t)harp_aq_row_bytes(&q[0].fmt, kvd);
    c.codes = 2 * (size_t)rows * c.h.row_bytes, c.groups = 2 * (size_t)rows * c.h.groups;
    c.h.k = calloc(c.codes, 1), c.h.v = calloc(c.codes, 1);
    c.h.k_scale = calloc(c.groups, 2), c.h.v_scale = calloc(c.groups, 2);
    if (!q[0].fmt.sym) c.h.k_zero = calloc(c.groups, 1), c.h.v_zero = calloc(c.groups, 1);
    c.g = c.h;
    c.g.k = dev(c.h.k, c.codes), c.g.v = dev(c.h.v, c.codes);
    c.g.k_scale = dev(c.h.k_scale, c.groups * 2), c.g.v_scale = dev(c.h.v_scale, c.groups * 2);
    if (c.h.k_zero) c.g.k_zero = dev(c.h.k_zero, c.groups), c.g.v_zero = dev(c.h.v_zero, c.groups);
    return c;
}

static int qcache_same(const qcache *c) {
    const void *hp[6] = {c->h.k, c->h.v, c->h.k_scale, c->h.v_scale, c->h.k_zero, c->h.v_zero};
    const void *gp[6] = {c->g.k, c->g.v, c->g.k_scale, c->g.v_scale, c->g.k_zero, c->g.v_zero};
    const size_t n[6] = {c->codes, c->codes, 2 * c->groups, 2 * c->groups, c->groups, c->groups};
    int same = 1;
    for (int i = 0; i < 6; i++) {
        if (!hp[i]) continue;
        void *t = malloc(n[i]);
        host(t, gp[i], n[i]);
        same &= !memcmp(t, hp[i], n[i]);
        free(t);
    }
    return same;
}

static void qcache_free(qcache *c) {
    void *hp[6] = {c->h.k, c->h.v, c->h.k_scale, c->h.v_scale, c->h.k_zero, c->h.v_zero};
    void *gp[6] = {c->g.k, c->g.v, c->g.k_scale, c->g.v_scale, c->g.k_zero, c->g.v_zero};
    for (int i = 0; i < 6; i++) free(hp[i]), gpu->vt->free(gpu, gp[i]);
}

/* kv_store + attention of a quantized cache in layer 1: a plan of two roots (a prefill), then a decode
 * step continuing each, both backends on the same inputs. */
static void test_kv_quant(int bits, int sym, int group_heads, int nh, int nkv, int hd, int window) {
    const int kvd = nkv * hd, qd = nh * hd, T = 160;
    harp_span pre[2] = {{0, 37, 0, -1, 0}, {37, 21, 0, -1, 80}}, dec[2] = {{0, 1, 37, -1, 37}, {1, 1, 21, -1, 101}};
    harp_plan pp = plan_of(pre, 2), pd = plan_of(dec, 2);
    harp_dims d = dims(nh, nkv, hd, window, pp.rows, 64);
    pair_ws w = make_ws(&d);
    struct harp_aquant q[4];
    for (int i = 0; i < 4; i++) q[i].fmt = (harp_aq_fmt){bits, sym, group_heads * hd, i % 2 ? 0.9f : 1.0f, 1};
    qcache c = qcache_make(q, harp_qtype_for(HARP_QMETHOD_RTN, bits), T, kvd);
    const harp_plan *plans[2] = {&pp, &pd};
    for (int s = 0; s < 2; s++) {
        const harp_plan *p = plans[s];
        float *qv = rnd((size_t)p->rows * qd, 1.0f), *k = rnd((size_t)p->rows * kvd, 2.0f), *v = rnd((size_t)p->rows * kvd, 1.0f);
        float *oc = malloc((size_t)p->rows * qd * 4), *og = malloc((size_t)p->rows * qd * 4);
        float *dq = dev(qv, (size_t)p->rows * qd * 4), *dk = dev(k, (size_t)p->rows * kvd * 4), *dv = dev(v, (size_t)p->rows * kvd * 4);
        float *dout = dev(NULL, (size_t)p->rows * qd * 4);
        CHECK_OK(cpu->vt->kv_store(cpu, w.c, &c.h, 1, k, v, p));
        CHECK_OK(cpu->vt->attention(cpu, w.c, qv, &c.h, 1, p, oc));
        CHECK_OK(gpu->vt->plan_begin(gpu, w.g, p));
        CHECK_OK(gpu->vt->kv_store(gpu, w.g, &c.g, 1, dk, dv, p));
        CHECK_OK(gpu->vt->attention(gpu, w.g, dq, &c.g, 1, p, dout));
        host(og, dout, (size_t)p->rows * qd * 4);
        CHECK_MSG(qcache_same(&c), "KV%d %s group %d: %s plan: the caches' planes differ", bits, sym ? "sym" : "asym", group_heads * hd,
                  s ? "decode" : "prefill");
        double worst = 0;
        for (size_t i = 0; i < (size_t)p->rows * qd; i++) {
            const double e = fabs((double)og[i] - oc[i]);
            worst = e > worst || e != e ? e : worst;
        }
        CHECK_MSG(worst <= 1e-5, "KV%d %s group %d heads %d/%d hd %d window %d, %s plan: attention max |diff| %.3g", bits, sym ? "sym" : "asym",
                  group_heads * hd, nh, nkv, hd, window, s ? "decode" : "prefill", worst);
        gpu->vt->free(gpu, dq), gpu->vt->free(gpu, dk), gpu->vt->free(gpu, dv), gpu->vt->free(gpu, dout);
        free(qv), free(k), free(v), free(oc), free(og);
    }
    qcache_free(&c);
    free_ws(&w);
}

static void test_capabilities(void) {
    CHECK(harp_backend_supports(cpu, HARP_OP_ATTENTION_TREE, HARP_QTYPE_F32));
    CHECK(!harp_backend_supports(gpu, HARP_OP_ATTENTION_TREE, HARP_QTYPE_F32));
    /* W/A/KV: online rotations, activation quantization and quantized caches on both */
    CHECK(harp_backend_supports(cpu, HARP_OP_ROTATE, HARP_QTYPE_F32) && harp_backend_supports(gpu, HARP_OP_ROTATE, HARP_QTYPE_F32));
    CHECK(harp_backend_supports(gpu, HARP_OP_AQUANT, HARP_QTYPE_F32) && gpu->vt->aquant);
    CHECK(harp_backend_supports(gpu, HARP_OP_KV_STORE, HARP_QTYPE_INT8) && harp_backend_supports(gpu, HARP_OP_ATTENTION, HARP_QTYPE_INT4));
    CHECK(!harp_backend_supports(gpu, HARP_OP_KV_STORE, HARP_QTYPE_E8P2));
    CHECK(gpu->vt->rotate(gpu, NULL, NULL, NULL, 0, 0) == HARP_ERR_INVALID_ARG);
    harp_backend *again = NULL;
    CHECK_OK(harp_backend_cuda_create(0, &again));
    CHECK_MSG(again == gpu, "one CUDA backend instance per device");
    harp_backend_free(again);
    CHECK(!strcmp(harp_backend_name(gpu), "cuda:0"));
}
#endif

int main(void) {
    T_REQUIRE_CUDA();
#ifdef HARP_HAVE_CUDA
    harp_rng_seed(&rng, 77);
    cpu = harp_backend_cpu();
    CHECK_OK(harp_backend_cuda_create(0, &gpu));
    if (!gpu) return t_done();
    test_capabilities();
    test_rmsnorm(1, 1, 0);
    test_rmsnorm(7, 173, 0);
    test_rmsnorm(3, 4099, 0);
    test_rmsnorm(11, 515, 1);
    harp_span w1[1] = {{0, 1, 0, -1, 0}}, w3[3] = {{0, 13, 0, -1, 0}, {13, 13, 0, -1, 13}, {26, 13, 0, -1, 26}};
    harp_span w2[2] = {{0, 37, 0, -1, 0}, {37, 37, 0, -1, 37}}, one[1] = {{0, 1000, 0, -1, 0}};
    harp_span cont[1] = {{0, 7, 993, -1, 993}}, mixed[3] = {{0, 5, 0, -1, 0}, {5, 3, 11, -1, 20}, {8, 1, 40, -1, 60}};
    test_rope(w1, 1, 1, 2, HARP_ROPE_HALF);
    test_rope(w3, 3, 3, 10, HARP_ROPE_HALF);
    test_rope(w2, 2, 5, 6, HARP_ROPE_INTERLEAVED);
    test_rope(one, 1, 2, 64, HARP_ROPE_HALF);
    test_rope(one, 1, 2, 128, HARP_ROPE_INTERLEAVED);
    test_rope(cont, 1, 3, 64, HARP_ROPE_HALF);
    test_rope(mixed, 3, 2, 18, HARP_ROPE_INTERLEAVED);
    test_rope_store(one, 1, 8, 2, 64, HARP_ROPE_HALF);
    test_rope_store(cont, 1, 6, 3, 18, HARP_ROPE_INTERLEAVED);
    test_rope_store(mixed, 3, 4, 4, 128, HARP_ROPE_HALF);
    harp_span step[2] = {{0, 1, 300, -1, 300}, {1, 1, 7, -1, 900}};
    test_rope_store(step, 2, 32, 8, 128, HARP_ROPE_HALF);
    for (int f16 = 0; f16 < 2; f16++) {
        test_rope_attention(300, 32, 8, 128, 0, HARP_ROPE_HALF, f16);
        test_rope_attention(0, 8, 8, 64, 0, HARP_ROPE_INTERLEAVED, f16);
        test_rope_attention(1000, 12, 4, 32, 100, HARP_ROPE_HALF, f16);
        test_rope_attention(65, 6, 2, 64, 17, HARP_ROPE_INTERLEAVED, f16);
        test_rope_attention(513, 4, 4, 72, 0, HARP_ROPE_HALF, f16);   /* head_dim 72: the two ops */
    }
    const int rot_n[] = {64, 128, 512, 1536, 172, 11008, 4096, 14336};
    for (size_t i = 0; i < sizeof rot_n / sizeof rot_n[0]; i++) {
        test_rotate(rot_n[i], 1);
        test_rotate(rot_n[i], 3);
        test_rotate(rot_n[i], 67);
    }
    test_rotate(64, 4100);   /* R3 over a prefill's heads: more rows than one chunk */
    test_aquant(4, 1, 0, 1.0f, 1, 4096);
    test_aquant(4, 1, 0, 0.9f, 67, 1536);
    test_aquant(8, 0, 0, 1.0f, 5, 11008);
    test_aquant(3, 0, 128, 0.95f, 9, 512);
    test_aquant(2, 1, 64, 1.0f, 3, 172 * 64);
    const int kvb[] = {2, 3, 4, 8};
    dec_set_attn_kv4_planes(0);   /* the generic kernel for every format first */
    for (int i = 0; i < 4; i++) {
        test_kv_quant(kvb[i], 0, 1, 8, 2, 64, 0);
        test_kv_quant(kvb[i], 1, 1, 4, 4, 128, 0);
    }
    test_kv_quant(4, 0, 2, 8, 4, 64, 20);    /* groups of two heads, a window */
    test_kv_quant(4, 0, 1, 6, 3, 40, 0);     /* head_dim the engine kernels do not take */
    /* the engine's 4-bit kernel over the planes (4-bit asymmetric, a group per kv head; the default): decode
       plans of head_dim 32 / 64 / 128, GQA groups 1 / 4 / 8, a window; the other formats fall back */
    dec_set_attn_kv4_planes(1);
    test_kv_quant(4, 0, 1, 8, 2, 64, 0);
    test_kv_quant(4, 0, 1, 4, 4, 128, 0);
    test_kv_quant(4, 0, 1, 8, 1, 32, 20);
    test_kv_quant(4, 0, 2, 8, 4, 64, 20);    /* groups of two heads: the generic kernel */
    test_kv_quant(3, 0, 1, 8, 2, 64, 0);     /* 3 bits: the generic kernel */
    test_elementwise(1);
    test_elementwise(173 * 5);
    test_elementwise(33 * 1537);
    int o3[3] = {24, 7, 7}, o2[2] = {45, 45}, o1[1] = {101};
    test_linear(1, 17, 3, o3, 1);
    test_linear(37, 17, 3, o3, 1);
    test_linear(129, 300, 2, o2, 0);
    test_linear(5, 1031, 1, o1, 1);
    /* many-row plans, with the one-launch prefill kernel (head sizes 64 and 128: several query and key
     * tiles, partial last tiles, sliding windows across tiles, continuations at pos0 > 0, roots of
     * different lengths) and with cuBLAS + softmax */
    for (int mode = 2; mode >= 0; mode--) {
        hc_set_attn_prefill(mode);
        test_windows_attention(1, 2, 1, 1, 2, 0);
        test_windows_attention(3, 37, 6, 2, 24, 0);
        test_windows_attention(2, 129, 8, 4, 64, 0);
        test_windows_attention(2, 300, 4, 1, 16, 7);
        test_windows_attention(2, 300, 8, 2, 128, 0);
        test_windows_attention(3, 200, 4, 4, 64, 70);
        test_windows_attention(1, 129, 2, 1, 128, 33);
        test_windows_attention(1, 1, 2, 2, 64, 0);
        harp_span pre[1] = {{0, 7, 45, -1, 45}}, cont2[1] = {{0, 150, 700, -1, 700}};
        harp_span roots[3] = {{0, 70, 0, -1, 0}, {70, 5, 11, -1, 100}, {75, 130, 0, -1, 200}};
        test_attention(pre, 1, 8, 4, 64, 0);
        test_attention(cont2, 1, 4, 2, 64, 0);
        test_attention(cont2, 1, 4, 4, 128, 300);
        test_attention(roots, 3, 4, 2, 64, 0);
        test_attention(roots, 3, 2, 1, 128, 50);
        test_attention(mixed, 3, 4, 2, 16, 0);
        g_kscale = 1e5f;   /* fp32 cache only: an fp16 one cannot hold such keys */
        test_attention_t(cont2, 1, 4, 2, 64, 0, 0);
        test_attention_t(roots, 3, 2, 1, 128, 50, 0);
        g_kscale = 1.0f;
    }
    hc_set_attn_prefill(2);
    harp_span dec[1] = {{0, 1, 100, -1, 100}};
    test_attention(dec, 1, 6, 2, 24, 13);
    /* one row per sequence: the CUDA backend's decode kernel (positions from device memory, split over
     * chunks of 32 keys, wider ones past 2 048 cache rows): several chunks, a window inside a chunk and
     * across them, cache rows that do not start at position 0, 8 rows, head_dim 72 and 128, chunks of
     * 64 (4 096 rows), 128 (8 101) and 160 (9 001 rows: more keys than threads) */
    harp_span d3[3] = {{0, 1, 300, -1, 300}, {1, 1, 5, -1, 700}, {2, 1, 129, -1, 1000}};
    test_attention(d3, 3, 8, 2, 72, 0);
    test_attention(d3, 3, 8, 2, 72, 100);
    test_attention(d3, 3, 6, 3, 40, 200);
    harp_span dl[1] = {{0, 1, 4095, -1, 4095}}, d8[8];
    test_attention(dl, 1, 4, 4, 128, 0);
    test_attention(dl, 1, 4, 1, 128, 1000);
    for (int i = 0; i < 8; i++) d8[i] = (harp_span){i, 1, 37 * i * i + 3 * i, -1, 1200 * i + 37 * i * i + 3 * i};
    test_attention(d8, 8, 4, 2, 64, 0);
    harp_span dx[1] = {{0, 1, 9000, -1, 9000}}, dy[1] = {{0, 1, 8100, -1, 8100}};   /* the reference sees ≤ 8 192 keys */
    test_attention(dx, 1, 2, 1, 64, 5000);
    test_attention(dy, 1, 2, 1, 64, 0);
    test_score(1, 2, 3);
    test_score(2, 9, 1001);
    test_score(3, 17, 8192);
    harp_backend_free(gpu);
    return t_done();
#endif
}
