// fp32 forward of many perplexity windows at once on the GPU (src/cuda/gpu_net.h). Every linear
// is one cuBLAS SGEMM over all rows of the batch in PEDANTIC math mode (true fp32, no TF32);
// attention is two batched SGEMMs per layer (one matrix per window × head) around a masked
// softmax kernel. The elementwise kernels mirror src/model/kernels.c operation by operation, and
// this file is compiled with --fmad=false so that a*b - c*d is not contracted into an FMA the CPU
// code does not do. Reductions use a fixed shared-memory tree: results are deterministic.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/core.h"
#include "cuda/gpu_net.h"
}

namespace {

constexpr int kThreads = 256;

#define CU_TRY(expr, what)                                                                                     \
    do {                                                                                                       \
        cudaError_t e_ = (expr);                                                                               \
        if (e_ != cudaSuccess)                                                                                 \
            return harp_err(e_ == cudaErrorMemoryAllocation ? HARP_ERR_OOM : HARP_ERR_NO_DEVICE, "cuda %s: %s", \
                            what, cudaGetErrorString(e_));                                                     \
    } while (0)

#define CUBLAS_TRY(expr, what)                                                                \
    do {                                                                                      \
        cublasStatus_t s_ = (expr);                                                           \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                      \
            return harp_err(HARP_ERR_NO_DEVICE, "cublas %s: status %d", what, (int)s_);       \
    } while (0)

static harp_status launched(const char *what) {
    CU_TRY(cudaGetLastError(), what);
    return HARP_OK;
}

// ---- kernels -----------------------------------------------------------------------------------

__global__ void embed_kernel(const int32_t *tok, const float *emb, int dim, float *x) {
    const size_t r = blockIdx.x;
    const float *src = emb + (size_t)tok[r] * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) x[r * dim + i] = src[i];
}

// Fixed-order tree sum of one double per thread (blockDim.x == kThreads).
__device__ double block_sum(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

__device__ float block_max(float v, float *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] = fmaxf(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

// Max with the lowest index among ties (the CPU's strict '>' scan keeps the first maximum).
__device__ void block_argmax(float v, int idx, float *shv, int *shi, float *out_v, int *out_i) {
    shv[threadIdx.x] = v;
    shi[threadIdx.x] = idx;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) {
            float a = shv[threadIdx.x], b = shv[threadIdx.x + s];
            int ia = shi[threadIdx.x], ib = shi[threadIdx.x + s];
            if (b > a || (b == a && ib < ia)) {
                shv[threadIdx.x] = b;
                shi[threadIdx.x] = ib;
            }
        }
        __syncthreads();
    }
    *out_v = shv[0];
    *out_i = shi[0];
    __syncthreads();
}

__global__ void rmsnorm_kernel(const float *x, const float *w, int n, float eps, float *y) {
    __shared__ double sh[kThreads];
    const float *xr = x + (size_t)blockIdx.x * n;
    float *yr = y + (size_t)blockIdx.x * n;
    double ss = 0;
    for (int i = threadIdx.x; i < n; i += kThreads) ss += (double)xr[i] * xr[i];
    ss = block_sum(ss, sh);
    const float var = (float)(ss / n);
    const float s = 1.0f / sqrtf(var + eps);
    for (int i = threadIdx.x; i < n; i += kThreads) yr[i] = w[i] * (xr[i] * s);
}

__global__ void bias_kernel(float *y, const float *b, int n, size_t total) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        y[i] += b[i % n];
}

__global__ void add_kernel(float *x, const float *y, size_t total) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        x[i] += y[i];
}

// One block per row; row r sits at position r % ctx. x has row stride ld.
__global__ void rope_kernel(float *x, int ld, int ctx, int n_heads, int hd, const float *inv_freq, int layout) {
    const int r = blockIdx.x, half = hd / 2;
    const float pos = (float)(r % ctx);
    float *row = x + (size_t)r * ld;
    for (int t = threadIdx.x; t < n_heads * half; t += blockDim.x) {
        const int h = t / half, i = t % half;
        const float a = pos * inv_freq[i];
        const float cs = cosf(a), sn = sinf(a);
        float *v = row + (size_t)h * hd;
        if (layout == HARP_ROPE_HALF) {
            const float p = v[i], q = v[i + half];
            v[i] = p * cs - q * sn;
            v[i + half] = q * cs + p * sn;
        } else {
            const float p = v[2 * i], q = v[2 * i + 1];
            v[2 * i] = p * cs - q * sn;
            v[2 * i + 1] = p * sn + q * cs;
        }
    }
}

// gu rows are [gate | up] (2·hidden wide); h = silu(gate) * up.
__global__ void swiglu_kernel(const float *gu, int hidden, size_t total, float *h) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t r = i / hidden, c = i % hidden;
        const float g = gu[r * 2 * hidden + c], u = gu[r * 2 * hidden + hidden + c];
        h[i] = g / (1.0f + expf(-g)) * u;
    }
}

// Masked softmax over score rows: one block per (window, head, query i); S row is ctx wide.
__global__ void softmax_kernel(float *S, int ctx, int window) {
    __shared__ double shd[kThreads];
    __shared__ float shf[kThreads];
    const size_t row = blockIdx.x;
    const int i = (int)(row % ctx);
    float *s = S + row * ctx;
    const int hi = i + 1, lo = window > 0 && i + 1 > window ? i + 1 - window : 0;
    float mx = -INFINITY;
    for (int j = lo + threadIdx.x; j < hi; j += kThreads) mx = fmaxf(mx, s[j]);
    mx = block_max(mx, shf);
    double sum = 0;
    for (int j = lo + threadIdx.x; j < hi; j += kThreads) {
        const float e = expf(s[j] - mx);
        s[j] = e;
        sum += e;
    }
    sum = block_sum(sum, shd);
    const float inv = (float)(1.0 / sum);
    for (int j = threadIdx.x; j < ctx; j += kThreads) s[j] = j >= lo && j < hi ? s[j] * inv : 0.0f;
}

// One block per scored position (window w, i < ctx-1).
__global__ void score_kernel(const float *logits, const float *ref, const int32_t *tok, int ctx, int vocab,
                             double *nll, double *kld, int *agree) {
    __shared__ double shd[kThreads];
    __shared__ float shf[kThreads];
    __shared__ int shi[kThreads];
    const int w = blockIdx.x / (ctx - 1), i = blockIdx.x % (ctx - 1);
    const size_t r = (size_t)w * ctx + i;
    const float *l = logits + r * vocab;
    float v = -INFINITY, mx;
    int idx = 0x7fffffff, am;
    for (int j = threadIdx.x; j < vocab; j += kThreads)
        if (l[j] > v) {
            v = l[j];
            idx = j;
        }
    block_argmax(v, idx, shf, shi, &mx, &am);
    double s = 0;
    for (int j = threadIdx.x; j < vocab; j += kThreads) s += exp((double)l[j] - mx);
    s = block_sum(s, shd);
    const double lse = log(s) + mx;
    if (threadIdx.x == 0) nll[blockIdx.x] = lse - l[tok[r + 1]];
    if (!ref) return;
    const float *lr = ref + r * vocab;
    float vr = -INFINITY, mxr;
    int idr = 0x7fffffff, amr;
    for (int j = threadIdx.x; j < vocab; j += kThreads)
        if (lr[j] > vr) {
            vr = lr[j];
            idr = j;
        }
    block_argmax(vr, idr, shf, shi, &mxr, &amr);
    double sr = 0;
    for (int j = threadIdx.x; j < vocab; j += kThreads) sr += exp((double)lr[j] - mxr);
    sr = block_sum(sr, shd);
    const double lse_r = log(sr) + mxr;
    double kl = 0;
    for (int j = threadIdx.x; j < vocab; j += kThreads) {
        const double lpb = (double)lr[j] - lse_r, lpt = (double)l[j] - lse;
        const double pb = exp(lpb);
        if (pb > 0) kl += pb * (lpb - lpt);
    }
    kl = block_sum(kl, shd);
    if (threadIdx.x == 0) {
        kld[blockIdx.x] = kl;
        agree[blockIdx.x] = am == amr;
    }
}

static unsigned grid_for(size_t total) {
    size_t g = (total + kThreads - 1) / kThreads;
    return (unsigned)(g > 65535 * 8 ? 65535 * 8 : g < 1 ? 1 : g);
}

// ---- attention over a qkv buffer -----------------------------------------------------------------

// Device pointer arrays for the batched SGEMMs: z = window·nh + head.
struct attn_ptrs {
    const float **k, **q, **v, **p;
    float **s, **o;
};

static harp_status attn_ptrs_init(attn_ptrs *a, const float *qkv, int ldqkv, float *S, float *att, int n_windows,
                                  int ctx, int nh, int nkv, int hd) {
    const int nz = n_windows * nh, grp = nh / nkv, qd = nh * hd, kvd = nkv * hd;
    void **h = (void **)malloc(sizeof(void *) * 6 * (size_t)nz);
    if (!h) return harp_err(HARP_ERR_OOM, "cuda attention: out of host memory");
    for (int b = 0; b < n_windows; b++)
        for (int hh = 0; hh < nh; hh++) {
            const size_t z = (size_t)b * nh + hh, base = (size_t)b * ctx * ldqkv;
            h[0 * nz + z] = (void *)(qkv + base + qd + (size_t)(hh / grp) * hd);
            h[1 * nz + z] = (void *)(qkv + base + (size_t)hh * hd);
            h[2 * nz + z] = (void *)(qkv + base + qd + kvd + (size_t)(hh / grp) * hd);
            h[3 * nz + z] = (void *)(S + z * ctx * ctx);
            h[4 * nz + z] = (void *)(S + z * ctx * ctx);
            h[5 * nz + z] = (void *)(att + (size_t)b * ctx * qd + (size_t)hh * hd);
        }
    void **d = NULL;
    cudaError_t e = cudaMalloc((void **)&d, sizeof(void *) * 6 * (size_t)nz);
    if (e == cudaSuccess) e = cudaMemcpy(d, h, sizeof(void *) * 6 * (size_t)nz, cudaMemcpyHostToDevice);
    free(h);
    if (e != cudaSuccess) {
        cudaFree(d);
        return harp_err(HARP_ERR_NO_DEVICE, "cuda attention pointers: %s", cudaGetErrorString(e));
    }
    a->k = (const float **)d;
    a->q = (const float **)(d + nz);
    a->v = (const float **)(d + 2 * nz);
    a->s = (float **)(d + 3 * nz);
    a->p = (const float **)(d + 4 * nz);
    a->o = (float **)(d + 5 * nz);
    return HARP_OK;
}

// Scores S = scale·Q·Kᵀ per (window, head), masked softmax, context = P·V into att (rows × qd).
static harp_status attention(cublasHandle_t blas, const attn_ptrs *a, float *S, int n_windows, int ctx, int nh,
                             int nkv, int hd, int ldqkv, int window) {
    const float scale = 1.0f / sqrtf((float)hd), one = 1.0f, zero = 0.0f;
    const int nz = n_windows * nh;
    // Row-major S (ctx × ctx) is column-major Sᵀ = K·Qᵀ (cuBLAS sees K and Q as hd × ctx).
    CUBLAS_TRY(cublasSgemmBatched(blas, CUBLAS_OP_T, CUBLAS_OP_N, ctx, ctx, hd, &scale, a->k, ldqkv, a->q, ldqkv, &zero,
                                  a->s, ctx, nz),
               "attention scores");
    softmax_kernel<<<(unsigned)((size_t)nz * ctx), kThreads>>>(S, ctx, window);
    HARP_TRY(launched("softmax"));
    // Row-major O (ctx × hd, stride qd) is column-major Oᵀ = Vᵀ·Pᵀ.
    CUBLAS_TRY(cublasSgemmBatched(blas, CUBLAS_OP_N, CUBLAS_OP_N, hd, ctx, ctx, &one, a->v, ldqkv, a->p, ctx, &zero,
                                  a->o, nh * hd, nz),
               "attention context");
    return HARP_OK;
}

static harp_status new_blas(cublasHandle_t *h) {
    CUBLAS_TRY(cublasCreate(h), "create");
    if (cublasSetMathMode(*h, CUBLAS_PEDANTIC_MATH) != CUBLAS_STATUS_SUCCESS) {
        cublasDestroy(*h);
        return harp_err(HARP_ERR_NO_DEVICE, "cublas: cannot select pedantic fp32 math");
    }
    return HARP_OK;
}

// Y (rows × out) = X (rows × in) · Wt (in × out), all row-major.
static harp_status linear(cublasHandle_t blas, const float *wt, const float *bias, const float *x, int rows, int in,
                          int out, float *y) {
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_TRY(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, out, rows, in, &one, wt, out, x, in, &zero, y, out),
               "linear");
    if (bias) {
        const size_t total = (size_t)rows * out;
        bias_kernel<<<grid_for(total), kThreads>>>(y, bias, out, total);
        HARP_TRY(launched("bias"));
    }
    return HARP_OK;
}

struct dlayer {
    float *attn_norm, *ffn_norm, *wqkv, *bqkv, *wo, *bo, *wgu, *bgu, *wd, *bd;
};

}  // namespace

struct harp_gpu_net {
    harp_gpu_dims d;
    cublasHandle_t blas;
    int have_blas;
    float *emb, *fnorm, *inv_freq, *whead, *bhead;
    dlayer *L;
    int32_t *tok;
    float *x, *xb, *qkv, *S, *att, *gu, *h, *logits;
    attn_ptrs ap;
    void *ap_base;
};

namespace {

static harp_status dev_upload(float **dst, const float *src, size_t n, const char *what) {
    *dst = NULL;
    if (!src) return HARP_OK;
    CU_TRY(cudaMalloc((void **)dst, n * sizeof(float)), what);
    CU_TRY(cudaMemcpy(*dst, src, n * sizeof(float), cudaMemcpyHostToDevice), what);
    return HARP_OK;
}

static harp_status dev_alloc(float **dst, size_t n, const char *what) {
    CU_TRY(cudaMalloc((void **)dst, n * sizeof(float)), what);
    return HARP_OK;
}

static size_t weight_floats(const harp_gpu_dims *d) {
    const size_t dim = d->dim, qd = (size_t)d->n_heads * d->head_dim, kvd = (size_t)d->n_kv_heads * d->head_dim;
    const size_t per_layer = 2 * dim + dim * (qd + 2 * kvd) + (qd + 2 * kvd) + qd * dim + dim +
                             dim * 2 * d->hidden + 2 * d->hidden + (size_t)d->hidden * dim + dim;
    return (size_t)d->vocab * dim * 2 + dim + d->vocab + d->n_layers * per_layer;
}

static size_t scratch_floats(const harp_gpu_dims *d) {
    const size_t R = (size_t)d->max_windows * d->ctx, qd = (size_t)d->n_heads * d->head_dim,
                 kvd = (size_t)d->n_kv_heads * d->head_dim;
    const size_t wide = qd > (size_t)d->dim ? qd : (size_t)d->dim;
    return R * (d->dim + wide + qd + 2 * kvd + qd + 3 * (size_t)d->hidden + d->vocab + 1) +
           (size_t)d->max_windows * d->n_heads * d->ctx * d->ctx;
}

}  // namespace

extern "C" size_t harp_gpu_net_bytes(const harp_gpu_dims *d) {
    return (weight_floats(d) + scratch_floats(d)) * sizeof(float);
}

extern "C" harp_status harp_gpu_free_bytes(size_t *free_bytes) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        cudaGetLastError();
        return harp_err(HARP_ERR_NO_DEVICE, "cuda: no CUDA device");
    }
    size_t fr = 0, total = 0;
    CU_TRY(cudaMemGetInfo(&fr, &total), "memory info");
    *free_bytes = fr;
    return HARP_OK;
}

extern "C" void harp_gpu_net_free(harp_gpu_net *n) {
    if (!n) return;
    if (n->L)
        for (int l = 0; l < n->d.n_layers; l++) {
            dlayer *L = &n->L[l];
            float *p[] = {L->attn_norm, L->ffn_norm, L->wqkv, L->bqkv, L->wo, L->bo, L->wgu, L->bgu, L->wd, L->bd};
            for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) cudaFree(p[i]);
        }
    free(n->L);
    float *p[] = {n->emb, n->fnorm, n->inv_freq, n->whead, n->bhead, n->x, n->xb, n->qkv, n->S, n->att, n->gu, n->h,
                  n->logits};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) cudaFree(p[i]);
    cudaFree(n->tok);
    cudaFree(n->ap_base);
    if (n->have_blas) cublasDestroy(n->blas);
    free(n);
}

extern "C" harp_status harp_gpu_net_create(const harp_gpu_dims *d, const float *tok_emb, const float *final_norm,
                                           const float *rope_inv_freq, harp_gpu_net **out) {
    *out = NULL;
    size_t fr;
    HARP_TRY(harp_gpu_free_bytes(&fr));
    harp_gpu_net *n = (harp_gpu_net *)calloc(1, sizeof *n);
    if (!n) return harp_err(HARP_ERR_OOM, "cuda net: out of host memory");
    n->d = *d;
    n->L = (dlayer *)calloc((size_t)d->n_layers, sizeof(dlayer));
    harp_status st = n->L ? HARP_OK : harp_err(HARP_ERR_OOM, "cuda net: out of host memory");
    const size_t R = (size_t)d->max_windows * d->ctx, qd = (size_t)d->n_heads * d->head_dim,
                 kvd = (size_t)d->n_kv_heads * d->head_dim, wide = qd > (size_t)d->dim ? qd : (size_t)d->dim;
    if (!st) st = new_blas(&n->blas);
    if (!st) n->have_blas = 1;
    if (!st) st = dev_upload(&n->emb, tok_emb, (size_t)d->vocab * d->dim, "token embeddings");
    if (!st) st = dev_upload(&n->fnorm, final_norm, (size_t)d->dim, "final norm");
    if (!st) st = dev_upload(&n->inv_freq, rope_inv_freq, (size_t)d->head_dim / 2, "rope frequencies");
    if (!st) {
        cudaError_t e = cudaMalloc((void **)&n->tok, R * sizeof(int32_t));
        if (e != cudaSuccess) st = harp_err(HARP_ERR_OOM, "cuda tokens: %s", cudaGetErrorString(e));
    }
    if (!st) st = dev_alloc(&n->x, R * d->dim, "activations");
    if (!st) st = dev_alloc(&n->xb, R * wide, "activations");
    if (!st) st = dev_alloc(&n->qkv, R * (qd + 2 * kvd), "qkv");
    if (!st) st = dev_alloc(&n->att, R * qd, "attention output");
    if (!st) st = dev_alloc(&n->gu, R * 2 * d->hidden, "mlp gate/up");
    if (!st) st = dev_alloc(&n->h, R * d->hidden, "mlp hidden");
    if (!st) st = dev_alloc(&n->logits, R * d->vocab, "logits");
    if (!st) st = dev_alloc(&n->S, (size_t)d->max_windows * d->n_heads * d->ctx * d->ctx, "attention scores");
    if (!st) st = attn_ptrs_init(&n->ap, n->qkv, (int)(qd + 2 * kvd), n->S, n->att, d->max_windows, d->ctx,
                                 d->n_heads, d->n_kv_heads, d->head_dim);
    if (!st) n->ap_base = (void *)n->ap.k;
    if (st) {
        harp_gpu_net_free(n);
        return st;
    }
    *out = n;
    return HARP_OK;
}

extern "C" harp_status harp_gpu_net_set_layer(harp_gpu_net *n, int layer, const harp_gpu_layer_host *h) {
    const harp_gpu_dims *d = &n->d;
    const size_t dim = d->dim, qd = (size_t)d->n_heads * d->head_dim, kvd = (size_t)d->n_kv_heads * d->head_dim,
                 hid = d->hidden;
    dlayer *L = &n->L[layer];
    HARP_TRY(dev_upload(&L->attn_norm, h->attn_norm, dim, "attention norm"));
    HARP_TRY(dev_upload(&L->ffn_norm, h->ffn_norm, dim, "mlp norm"));
    HARP_TRY(dev_upload(&L->wqkv, h->wqkv, dim * (qd + 2 * kvd), "qkv weights"));
    HARP_TRY(dev_upload(&L->bqkv, h->bqkv, qd + 2 * kvd, "qkv bias"));
    HARP_TRY(dev_upload(&L->wo, h->wo, qd * dim, "o weights"));
    HARP_TRY(dev_upload(&L->bo, h->bo, dim, "o bias"));
    HARP_TRY(dev_upload(&L->wgu, h->wgu, dim * 2 * hid, "gate/up weights"));
    HARP_TRY(dev_upload(&L->bgu, h->bgu, 2 * hid, "gate/up bias"));
    HARP_TRY(dev_upload(&L->wd, h->wd, hid * dim, "down weights"));
    HARP_TRY(dev_upload(&L->bd, h->bd, dim, "down bias"));
    return HARP_OK;
}

extern "C" harp_status harp_gpu_net_set_head(harp_gpu_net *n, const float *wt, const float *bias) {
    HARP_TRY(dev_upload(&n->whead, wt, (size_t)n->d.dim * n->d.vocab, "head weights"));
    HARP_TRY(dev_upload(&n->bhead, bias, (size_t)n->d.vocab, "head bias"));
    return HARP_OK;
}

extern "C" harp_status harp_gpu_net_forward(harp_gpu_net *n, const int32_t *tokens, int n_windows) {
    const harp_gpu_dims *d = &n->d;
    if (n_windows < 1 || n_windows > d->max_windows)
        return harp_err(HARP_ERR_INVALID_ARG, "cuda forward: %d windows (capacity %d)", n_windows, d->max_windows);
    const int R = n_windows * d->ctx, dim = d->dim, hd = d->head_dim, qd = d->n_heads * hd,
              kvd = d->n_kv_heads * hd, qkvd = qd + 2 * kvd, hid = d->hidden;
    CU_TRY(cudaMemcpy(n->tok, tokens, (size_t)R * sizeof(int32_t), cudaMemcpyHostToDevice), "token upload");
    embed_kernel<<<R, kThreads>>>(n->tok, n->emb, dim, n->x);
    HARP_TRY(launched("embedding"));
    const size_t xs = (size_t)R * dim;
    for (int l = 0; l < d->n_layers; l++) {
        const dlayer *L = &n->L[l];
        rmsnorm_kernel<<<R, kThreads>>>(n->x, L->attn_norm, dim, d->norm_eps, n->xb);
        HARP_TRY(launched("rmsnorm"));
        HARP_TRY(linear(n->blas, L->wqkv, L->bqkv, n->xb, R, dim, qkvd, n->qkv));
        rope_kernel<<<R, kThreads>>>(n->qkv, qkvd, d->ctx, d->n_heads, hd, n->inv_freq, (int)d->rope_layout);
        HARP_TRY(launched("rope q"));
        rope_kernel<<<R, kThreads>>>(n->qkv + qd, qkvd, d->ctx, d->n_kv_heads, hd, n->inv_freq, (int)d->rope_layout);
        HARP_TRY(launched("rope k"));
        HARP_TRY(attention(n->blas, &n->ap, n->S, n_windows, d->ctx, d->n_heads, d->n_kv_heads, hd, qkvd,
                           d->sliding_window));
        HARP_TRY(linear(n->blas, L->wo, L->bo, n->att, R, qd, dim, n->xb));
        add_kernel<<<grid_for(xs), kThreads>>>(n->x, n->xb, xs);
        HARP_TRY(launched("residual"));
        rmsnorm_kernel<<<R, kThreads>>>(n->x, L->ffn_norm, dim, d->norm_eps, n->xb);
        HARP_TRY(launched("rmsnorm"));
        HARP_TRY(linear(n->blas, L->wgu, L->bgu, n->xb, R, dim, 2 * hid, n->gu));
        swiglu_kernel<<<grid_for((size_t)R * hid), kThreads>>>(n->gu, hid, (size_t)R * hid, n->h);
        HARP_TRY(launched("swiglu"));
        HARP_TRY(linear(n->blas, L->wd, L->bd, n->h, R, hid, dim, n->xb));
        add_kernel<<<grid_for(xs), kThreads>>>(n->x, n->xb, xs);
        HARP_TRY(launched("residual"));
    }
    rmsnorm_kernel<<<R, kThreads>>>(n->x, n->fnorm, dim, d->norm_eps, n->xb);
    HARP_TRY(launched("final norm"));
    HARP_TRY(linear(n->blas, n->whead, n->bhead, n->xb, R, dim, d->vocab, n->logits));
    return HARP_OK;
}

namespace {

static harp_status score_dev(const float *logits, const float *ref, const int32_t *tok, int n_windows, int ctx,
                             int vocab, double *nll, double *kld, int *agree) {
    const size_t rows = (size_t)n_windows * (ctx - 1);
    double *dn = NULL, *dk = NULL;
    int *da = NULL;
    harp_status st = HARP_OK;
    if (cudaMalloc((void **)&dn, rows * sizeof(double)) != cudaSuccess ||
        (ref && (cudaMalloc((void **)&dk, rows * sizeof(double)) != cudaSuccess ||
                 cudaMalloc((void **)&da, rows * sizeof(int)) != cudaSuccess)))
        st = harp_err(HARP_ERR_OOM, "cuda score: out of device memory");
    if (!st) {
        score_kernel<<<(unsigned)rows, kThreads>>>(logits, ref, tok, ctx, vocab, dn, dk, da);
        st = launched("score");
    }
    if (!st && cudaMemcpy(nll, dn, rows * sizeof(double), cudaMemcpyDeviceToHost) != cudaSuccess)
        st = harp_err(HARP_ERR_NO_DEVICE, "cuda score: copy back failed");
    if (!st && ref &&
        (cudaMemcpy(kld, dk, rows * sizeof(double), cudaMemcpyDeviceToHost) != cudaSuccess ||
         cudaMemcpy(agree, da, rows * sizeof(int), cudaMemcpyDeviceToHost) != cudaSuccess))
        st = harp_err(HARP_ERR_NO_DEVICE, "cuda score: copy back failed");
    cudaFree(dn);
    cudaFree(dk);
    cudaFree(da);
    return st;
}

}  // namespace

extern "C" harp_status harp_gpu_net_score(harp_gpu_net *n, const harp_gpu_net *ref, int n_windows, double *nll,
                                          double *kld, int *agree) {
    if (ref && (ref->d.vocab != n->d.vocab || ref->d.ctx != n->d.ctx))
        return harp_err(HARP_ERR_MISMATCH, "cuda score: reference has vocab %d ctx %d, model %d %d", ref->d.vocab,
                        ref->d.ctx, n->d.vocab, n->d.ctx);
    return score_dev(n->logits, ref ? ref->logits : NULL, n->tok, n_windows, n->d.ctx, n->d.vocab, nll, kld, agree);
}

// ---- host-array entry points for the kernel tests ------------------------------------------------

namespace {

// A few device buffers freed together.
struct dbufs {
    void *p[8];
    int n;
    dbufs() : n(0) {}
    ~dbufs() {
        for (int i = 0; i < n; i++) cudaFree(p[i]);
    }
    template <class T>
    harp_status get(T **out, size_t count, const void *src = NULL) {
        void *d = NULL;
        CU_TRY(cudaMalloc(&d, count * sizeof(T) + 1), "test buffer");
        p[n++] = d;
        if (src) CU_TRY(cudaMemcpy(d, src, count * sizeof(T), cudaMemcpyHostToDevice), "test upload");
        *out = (T *)d;
        return HARP_OK;
    }
};

static harp_status fetch(void *dst, const void *src, size_t bytes) {
    CU_TRY(cudaDeviceSynchronize(), "kernel");
    CU_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "copy back");
    return HARP_OK;
}

static harp_status need_device(void) {
    size_t fr;
    return harp_gpu_free_bytes(&fr);
}

}  // namespace

extern "C" harp_status harp_gpu_rmsnorm_host(const float *x, const float *w, int rows, int n, float eps, float *y) {
    HARP_TRY(need_device());
    dbufs b;
    float *dx, *dw, *dy;
    HARP_TRY(b.get(&dx, (size_t)rows * n, x));
    HARP_TRY(b.get(&dw, (size_t)n, w));
    HARP_TRY(b.get(&dy, (size_t)rows * n));
    rmsnorm_kernel<<<rows, kThreads>>>(dx, dw, n, eps, dy);
    HARP_TRY(launched("rmsnorm"));
    return fetch(y, dy, (size_t)rows * n * sizeof(float));
}

extern "C" harp_status harp_gpu_rope_host(float *x, int rows, int ctx, int n_heads, int head_dim,
                                          const float *inv_freq, harp_rope_layout layout) {
    HARP_TRY(need_device());
    dbufs b;
    float *dx, *df;
    const size_t total = (size_t)rows * n_heads * head_dim;
    HARP_TRY(b.get(&dx, total, x));
    HARP_TRY(b.get(&df, (size_t)head_dim / 2, inv_freq));
    rope_kernel<<<rows, kThreads>>>(dx, n_heads * head_dim, ctx, n_heads, head_dim, df, (int)layout);
    HARP_TRY(launched("rope"));
    return fetch(x, dx, total * sizeof(float));
}

extern "C" harp_status harp_gpu_swiglu_host(const float *g, const float *u, int rows, int hidden, float *h) {
    HARP_TRY(need_device());
    const size_t total = (size_t)rows * hidden;
    float *gu = (float *)malloc(2 * total * sizeof(float));
    if (!gu) return harp_err(HARP_ERR_OOM, "swiglu test: out of memory");
    for (int r = 0; r < rows; r++) {
        memcpy(gu + (size_t)r * 2 * hidden, g + (size_t)r * hidden, (size_t)hidden * sizeof(float));
        memcpy(gu + (size_t)r * 2 * hidden + hidden, u + (size_t)r * hidden, (size_t)hidden * sizeof(float));
    }
    dbufs b;
    float *dgu, *dh;
    harp_status st = b.get(&dgu, 2 * total, gu);
    free(gu);
    HARP_TRY(st);
    HARP_TRY(b.get(&dh, total));
    swiglu_kernel<<<grid_for(total), kThreads>>>(dgu, hidden, total, dh);
    HARP_TRY(launched("swiglu"));
    return fetch(h, dh, total * sizeof(float));
}

extern "C" harp_status harp_gpu_attention_host(const float *q, const float *k, const float *v, int n_windows, int ctx,
                                               int nh, int nkv, int hd, int window, float *out) {
    HARP_TRY(need_device());
    const int qd = nh * hd, kvd = nkv * hd, ld = qd + 2 * kvd;
    const size_t R = (size_t)n_windows * ctx;
    float *qkv = (float *)malloc(R * ld * sizeof(float));
    if (!qkv) return harp_err(HARP_ERR_OOM, "attention test: out of memory");
    for (size_t r = 0; r < R; r++) {
        memcpy(qkv + r * ld, q + r * qd, (size_t)qd * sizeof(float));
        memcpy(qkv + r * ld + qd, k + r * kvd, (size_t)kvd * sizeof(float));
        memcpy(qkv + r * ld + qd + kvd, v + r * kvd, (size_t)kvd * sizeof(float));
    }
    dbufs b;
    float *dqkv, *dS, *datt;
    harp_status st = b.get(&dqkv, R * ld, qkv);
    free(qkv);
    HARP_TRY(st);
    HARP_TRY(b.get(&dS, (size_t)n_windows * nh * ctx * ctx));
    HARP_TRY(b.get(&datt, R * qd));
    cublasHandle_t blas;
    HARP_TRY(new_blas(&blas));
    attn_ptrs ap;
    st = attn_ptrs_init(&ap, dqkv, ld, dS, datt, n_windows, ctx, nh, nkv, hd);
    if (!st) {
        st = attention(blas, &ap, dS, n_windows, ctx, nh, nkv, hd, ld, window);
        cudaDeviceSynchronize();
        cudaFree((void *)ap.k);
    }
    cublasDestroy(blas);
    HARP_TRY(st);
    return fetch(out, datt, R * qd * sizeof(float));
}

extern "C" harp_status harp_gpu_score_host(const float *logits, const float *ref_logits, const int32_t *tokens,
                                           int n_windows, int ctx, int vocab, double *nll, double *kld, int *agree) {
    HARP_TRY(need_device());
    const size_t R = (size_t)n_windows * ctx;
    dbufs b;
    float *dl, *dr = NULL;
    int32_t *dt;
    HARP_TRY(b.get(&dl, R * vocab, logits));
    if (ref_logits) HARP_TRY(b.get(&dr, R * vocab, ref_logits));
    HARP_TRY(b.get(&dt, R, tokens));
    return score_dev(dl, dr, dt, n_windows, ctx, vocab, nll, kld, agree);
}
