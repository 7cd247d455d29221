// GPU twin of the fp64 decoder block (quant/blockfit_gpu.h): blockfit_fwd.c and blockfit_bwd.c op for
// op. Linears and the online rotations are DGEMMs (cuBLAS, fp64 compute); every other op is a kernel
// whose sums run in a fixed order (one CTA per row or per (sequence, head, query); trees of a fixed
// shape), so a rerun gives the same bits. Attention keeps P (sequences · heads · T · T) as the CPU does,
// and its backward is three kernels so that no two threads add into one value: dS per query row, dq per
// query row, dk / dv per key row (summing the query rows and the heads of its group).
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/block_sum.cuh"
#include "cuda/cublas_dl.h"

extern "C" {
#include "core/core.h"
#include "cuda/decode.h"
#include "harp/cuda_eval.h"
#include "harp/rotate.h"
#include "quant/aq.h"
#include "quant/blockfit_gpu.h"
}

namespace {

constexpr int kThreads = 256;

#define BF_CU(expr, what)                                                                                           \
    do {                                                                                                            \
        cudaError_t e_ = (expr);                                                                                    \
        if (e_ != cudaSuccess)                                                                                      \
            return harp_err(e_ == cudaErrorMemoryAllocation ? HARP_ERR_OOM : HARP_ERR_NO_DEVICE, "blockfit gpu: %s: %s", \
                            what, cudaGetErrorString(e_));                                                          \
    } while (0)

harp_status launched(const char *what) {
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "blockfit gpu: %s: %s", what, cudaGetErrorString(e));
}

__device__ double block_sum(double v, double *sh) { return block_sum_n<kThreads>(v, sh); }

// Maximum of v over the CTA (blockDim.x = kThreads) in a fixed tree; every thread gets it.
__device__ double block_max(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] = fmax(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    const double r = sh[0];
    __syncthreads();
    return r;
}

// h = w ⊙ x·r, r = (mean(x²) + eps)^(−1/2); one CTA per row.
__global__ void rmsnorm_fwd_kernel(const double *x, const double *w, int d, double eps, double *r, double *h) {
    __shared__ double sh[kThreads];
    const size_t i = blockIdx.x;
    const double *xi = x + i * d;
    double ss = 0;
    for (int j = threadIdx.x; j < d; j += kThreads) ss += xi[j] * xi[j];
    ss = block_sum(ss, sh);
    const double ri = 1.0 / sqrt(ss / d + eps);
    if (threadIdx.x == 0) r[i] = ri;
    for (int j = threadIdx.x; j < d; j += kThreads) h[i * d + j] = w[j] * (xi[j] * ri);
}

// dx += r·(w ⊙ dh) − x·r³/d · Σ_j (w ⊙ dh)_j x_j; one CTA per row.
__global__ void rmsnorm_bwd_kernel(const double *x, const double *w, const double *r, int d, const double *dh, double *dx) {
    __shared__ double sh[kThreads];
    const size_t i = blockIdx.x;
    const double *xi = x + i * d, *gi = dh + i * d;
    double dot = 0;
    for (int j = threadIdx.x; j < d; j += kThreads) dot += w[j] * gi[j] * xi[j];
    dot = block_sum(dot, sh);
    const double ri = r[i], k = ri * ri * ri * dot / d;
    for (int j = threadIdx.x; j < d; j += kThreads) dx[i * d + j] += ri * w[j] * gi[j] - xi[j] * k;
}

// dw[j] = Σ_rows dh·x·r, each column summed by one thread over the rows in order.
__global__ void rmsnorm_dw_kernel(const double *x, const double *r, size_t R, int d, const double *dh, double *dw) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    double s = 0;
    for (size_t i = 0; i < R; i++) s += dh[i * d + j] * x[i * d + j] * r[i];
    dw[j] = s;
}

// RoPE of rows × heads·hd in place (row r at position r mod T); sign −1 rotates back.
__global__ void rope_kernel(double *x, size_t rows, int heads, int hd, int T, const double *inv_freq, int half_layout, double sign) {
    const int half = hd / 2;
    const size_t n = rows * (size_t)heads * half;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) {
        const int i = (int)(e % half);
        const size_t rh = e / half, r = rh / heads;
        const double pos = (double)(r % (size_t)T), cs = cos(pos * inv_freq[i]), sn = sign * sin(pos * inv_freq[i]);
        double *v = x + rh * hd;
        const int i0 = half_layout ? i : 2 * i, i1 = half_layout ? i + half : 2 * i + 1;
        const double a = v[i0], b = v[i1];
        v[i0] = a * cs - b * sn;
        v[i1] = b * cs + a * sn;
    }
}

struct AttnShape {
    int T, hd, nh, nkv;
    double scale;
};

// One CTA per (query i, head h, sequence s): P row i (zeros above the diagonal) and ctx_i.
__global__ void attn_fwd_kernel(AttnShape a, const double *q, const double *k, const double *v, double *P, double *ctx) {
    __shared__ double sh[kThreads];
    const int i = blockIdx.x, h = blockIdx.y, s = blockIdx.z, T = a.T, hd = a.hd, grp = a.nh / a.nkv;
    const int qd = a.nh * hd, kvd = a.nkv * hd;
    const size_t r0 = (size_t)s * T, kh = (size_t)(h / grp) * hd;
    const double *qi = q + (r0 + i) * qd + (size_t)h * hd;
    double *p = P + (((size_t)s * a.nh + h) * T + i) * T;
    double mx = -INFINITY;
    for (int j = threadIdx.x; j < T; j += kThreads) {
        if (j > i) {
            p[j] = 0.0;
            continue;
        }
        const double *kj = k + (r0 + j) * kvd + kh;
        double dot = 0;
        for (int t = 0; t < hd; t++) dot += qi[t] * kj[t];
        p[j] = dot * a.scale;
        mx = fmax(mx, p[j]);
    }
    mx = block_max(mx, sh);
    double sum = 0;
    for (int j = threadIdx.x; j <= i; j += kThreads) sum += p[j] = exp(p[j] - mx);
    sum = block_sum(sum, sh);
    for (int j = threadIdx.x; j <= i; j += kThreads) p[j] /= sum;
    __syncthreads();
    double *o = ctx + (r0 + i) * qd + (size_t)h * hd;
    for (int t = threadIdx.x; t < hd; t += kThreads) {
        double acc = 0;
        for (int j = 0; j <= i; j++) acc += p[j] * v[(r0 + j) * kvd + kh + t];
        o[t] = acc;
    }
}

// dS row i: dp_j = dctx_i·v_j, dS_ij = P_ij (dp_j − Σ_l P_il dp_l)·scale (j ≤ i; zeros above).
__global__ void attn_ds_kernel(AttnShape a, const double *v, const double *P, const double *dctx, double *dS) {
    __shared__ double sh[kThreads];
    const int i = blockIdx.x, h = blockIdx.y, s = blockIdx.z, T = a.T, hd = a.hd, grp = a.nh / a.nkv;
    const int qd = a.nh * hd, kvd = a.nkv * hd;
    const size_t r0 = (size_t)s * T, kh = (size_t)(h / grp) * hd, row = (((size_t)s * a.nh + h) * T + i) * T;
    const double *go = dctx + (r0 + i) * qd + (size_t)h * hd, *p = P + row;
    double *ds = dS + row, sum = 0;
    for (int j = threadIdx.x; j < T; j += kThreads) {
        if (j > i) {
            ds[j] = 0.0;
            continue;
        }
        const double *vj = v + (r0 + j) * kvd + kh;
        double dp = 0;
        for (int t = 0; t < hd; t++) dp += go[t] * vj[t];
        ds[j] = dp;
        sum += p[j] * dp;
    }
    sum = block_sum(sum, sh);
    for (int j = threadIdx.x; j <= i; j += kThreads) ds[j] = p[j] * (ds[j] - sum) * a.scale;
}

// dq_i = Σ_{j ≤ i} dS_ij k_j; one CTA per (i, h, s), threads over the head's columns.
__global__ void attn_dq_kernel(AttnShape a, const double *k, const double *dS, double *dq) {
    const int i = blockIdx.x, h = blockIdx.y, s = blockIdx.z, T = a.T, hd = a.hd, grp = a.nh / a.nkv;
    const int qd = a.nh * hd, kvd = a.nkv * hd;
    const size_t r0 = (size_t)s * T, kh = (size_t)(h / grp) * hd;
    const double *ds = dS + (((size_t)s * a.nh + h) * T + i) * T;
    for (int t = threadIdx.x; t < hd; t += blockDim.x) {
        double acc = 0;
        for (int j = 0; j <= i; j++) acc += ds[j] * k[(r0 + j) * kvd + kh + t];
        dq[(r0 + i) * qd + (size_t)h * hd + t] = acc;
    }
}

// dk_j = Σ_{h ∈ group} Σ_{i ≥ j} dS_ij q_i and dv_j = Σ_{h ∈ group} Σ_{i ≥ j} P_ij dctx_i; one CTA per
// (key j, kv head, sequence).
__global__ void attn_dkv_kernel(AttnShape a, const double *q, const double *P, const double *dS, const double *dctx, double *dk,
                                double *dv) {
    const int j = blockIdx.x, kvh = blockIdx.y, s = blockIdx.z, T = a.T, hd = a.hd, grp = a.nh / a.nkv;
    const int qd = a.nh * hd, kvd = a.nkv * hd;
    const size_t r0 = (size_t)s * T;
    for (int t = threadIdx.x; t < hd; t += blockDim.x) {
        double gk = 0, gv = 0;
        for (int hh = 0; hh < grp; hh++) {
            const int h = kvh * grp + hh;
            const size_t base = ((size_t)s * a.nh + h) * T * T;
            for (int i = j; i < T; i++) {
                const size_t qi = (r0 + i) * qd + (size_t)h * hd + t, pij = base + (size_t)i * T + j;
                gk += dS[pij] * q[qi];
                gv += P[pij] * dctx[qi];
            }
        }
        dk[(r0 + j) * kvd + (size_t)kvh * hd + t] = gk;
        dv[(r0 + j) * kvd + (size_t)kvh * hd + t] = gv;
    }
}

__global__ void swiglu_fwd_kernel(const double *g, const double *u, size_t n, double *a) {
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x)
        a[e] = g[e] / (1.0 + exp(-g[e])) * u[e];
}

// a = silu(g)·u: dg = da·u·σ(g)(1 + g(1 − σ(g))) (into da), du = da·silu(g) (into du)
__global__ void swiglu_bwd_kernel(const double *g, const double *u, size_t n, double *da, double *du) {
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) {
        const double ge = g[e], sg = 1.0 / (1.0 + exp(-ge));
        du[e] = da[e] * ge * sg;
        da[e] *= u[e] * sg * (1.0 + ge * (1.0 - sg));
    }
}

__global__ void to_f32_kernel(const double *x, size_t n, float *f) {
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) f[e] = (float)x[e];
}

// After the fp32 fake quantizer: err = out − in, x = out (quant_site of blockfit_fwd.c).
__global__ void qerr_kernel(double *x, const float *f, size_t n, double *err) {
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) {
        err[e] = (double)f[e] - x[e];
        x[e] = f[e];
    }
}

// The surrogate: x += frozen, err = frozen.
__global__ void frozen_kernel(double *x, const double *fr, size_t n, double *err) {
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) {
        err[e] = fr[e];
        x[e] += fr[e];
    }
}

// Per CTA: Σ (y − Y)² over its stride of elements (fixed order), and dy = 2·(y − Y)·inv_norm.
__global__ void loss_kernel(const double *y, const double *Y, size_t n, double inv_norm, double *dy, double *part) {
    __shared__ double sh[kThreads];
    double e2 = 0;
    for (size_t e = (size_t)blockIdx.x * kThreads + threadIdx.x; e < n; e += (size_t)gridDim.x * kThreads) {
        const double r = y[e] - Y[e];
        e2 += r * r;
        if (dy) dy[e] = 2.0 * r * inv_norm;
    }
    e2 = block_sum(e2, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = e2;
}

unsigned grid_of(size_t n) {
    const size_t b = (n + kThreads - 1) / kThreads;
    return (unsigned)(b < 4096 ? (b ? b : 1) : 4096);
}

constexpr int kLossBlocks = 512;

}  // namespace

struct harp_blk_gpu {
    harp_blk_dims dm;
    cublasHandle_t blas;
    cudaStream_t st;
    double *inv_freq;
    double *rot[HARP_BLK_NIN], *r3;   // dense n × n, x ← x·R
    harp_aq_fmt aq[HARP_BLK_NIN], kvq[2];
    int has_aq[HARP_BLK_NIN], has_kvq[2];
    double *frozen[HARP_BLK_NQS];
    double *X, *Y, inv_norm;
    double *attn_norm, *ffn_norm, *lin[HARP_BLK_NLIN];
    // what the backward needs (blockfit.h's cache)
    double *r1, *h1, *q, *k, *v, *P, *ctx, *x2, *r2, *h2, *g, *u, *a, *y;
    double *qerr[HARP_BLK_NQS];
    float *fbuf;
    double *tmp;   // rotation output before the copy back
    // backward scratch and gradients
    double *dy, *dx2, *da, *dgu, *dh2, *dctx, *dq, *dk, *dv, *dh1, *dS, *dx, *gnorm[2], *glin[HARP_BLK_NLIN], *part;
};

namespace {

size_t rows_of(const harp_blk_dims *dm) { return (size_t)dm->T * (size_t)dm->nseq; }

int in_width(const harp_blk_dims *dm, int g) {
    const int w[HARP_BLK_NIN] = {dm->d, dm->nh * dm->hd, dm->d, dm->hid};
    return w[g];
}

harp_status dalloc(double **p, size_t n, const char *what) {
    BF_CU(cudaMalloc((void **)p, (n ? n : 1) * sizeof(double)), what);
    return HARP_OK;
}

harp_status put(double **p, const double *h, size_t n, const char *what) {
    HARP_TRY(dalloc(p, n, what));
    BF_CU(cudaMemcpy(*p, h, n * sizeof(double), cudaMemcpyHostToDevice), what);
    return HARP_OK;
}

// A rotation as its dense fp64 matrix on the device (NULL when off).
harp_status put_rot(const harp_rot *r, double **out) {
    *out = nullptr;
    if (!r) return HARP_OK;
    const int64_t n = harp_rot_dim(r);
    double *R = (double *)harp_xmalloc((size_t)(n * n) * sizeof(double), "blockfit gpu rotation");
    if (!R) return HARP_ERR_OOM;
    harp_status st = harp_rot_materialize(r, R);
    if (!st) st = put(out, R, (size_t)(n * n), "rotation upload");
    harp_free(R);
    return st;
}

// Row-major Y (R × m) (+)= X (R × n) · Wᵀ, W m × n.
harp_status gemm_xwt(cublasHandle_t h, const double *X, const double *W, int64_t m, int64_t n, size_t R, double *Y, double beta) {
    const double one = 1.0;
    const cublasStatus_t s = harp_cublas_gemm_ex(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)m, (int)R, (int)n, &one, W, CUDA_R_64F, (int)n, X,
                                                 CUDA_R_64F, (int)n, &beta, Y, CUDA_R_64F, (int)m, CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT);
    return s == CUBLAS_STATUS_SUCCESS ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "blockfit gpu: dgemm: %s", harp_cublas_why(s));
}

// Row-major dW (m × n) = dYᵀ (m × R) · X (R × n).
harp_status gemm_dw(cublasHandle_t h, const double *dY, const double *X, int64_t m, int64_t n, size_t R, double *dW) {
    const double one = 1.0, zero = 0.0;
    const cublasStatus_t s = harp_cublas_gemm_ex(h, CUBLAS_OP_N, CUBLAS_OP_T, (int)n, (int)m, (int)R, &one, X, CUDA_R_64F, (int)n, dY,
                                                 CUDA_R_64F, (int)m, &zero, dW, CUDA_R_64F, (int)n, CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT);
    return s == CUBLAS_STATUS_SUCCESS ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "blockfit gpu: dgemm: %s", harp_cublas_why(s));
}

// Row-major dX (R × n) (+)= dY (R × m) · W (m × n).
harp_status gemm_dx(cublasHandle_t h, const double *dY, const double *W, int64_t m, int64_t n, size_t R, double *dX, double beta) {
    const double one = 1.0;
    const cublasStatus_t s = harp_cublas_gemm_ex(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)n, (int)R, (int)m, &one, W, CUDA_R_64F, (int)n, dY,
                                                 CUDA_R_64F, (int)m, &beta, dX, CUDA_R_64F, (int)n, CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT);
    return s == CUBLAS_STATUS_SUCCESS ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "blockfit gpu: dgemm: %s", harp_cublas_why(s));
}

// X (rows × n) ← X·R (back: X·Rᵀ) through g->tmp.
harp_status rotate(harp_blk_gpu *g, const double *R, double *X, size_t rows, int n, int back) {
    if (!R) return HARP_OK;
    const double one = 1.0, zero = 0.0;
    // column-major: Xᵀ·… — (X·R)ᵀ = Rᵀ·Xᵀ, R row-major is Rᵀ column-major: op N; X·Rᵀ takes op T
    const cublasStatus_t s = harp_cublas_gemm_ex(g->blas, back ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, n, (int)rows, n, &one, R,
                                                 CUDA_R_64F, n, X, CUDA_R_64F, n, &zero, g->tmp, CUDA_R_64F, n, CUBLAS_COMPUTE_64F,
                                                 CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS) return harp_err(HARP_ERR_NO_DEVICE, "blockfit gpu: rotation: %s", harp_cublas_why(s));
    BF_CU(cudaMemcpyAsync(X, g->tmp, rows * (size_t)n * sizeof(double), cudaMemcpyDeviceToDevice, g->st), "rotation copy");
    return HARP_OK;
}

// Quantizer site s on x (R × n): fake quantization in fp32 (or the frozen error), the error kept.
harp_status quant_site(harp_blk_gpu *g, int s, const harp_aq_fmt *f, double *x, size_t R, int n) {
    if (!f) return HARP_OK;
    const size_t len = R * (size_t)n;
    if (g->frozen[s]) {
        frozen_kernel<<<grid_of(len), kThreads, 0, g->st>>>(x, g->frozen[s], len, g->qerr[s]);
        return launched("frozen quantizer");
    }
    to_f32_kernel<<<grid_of(len), kThreads, 0, g->st>>>(x, len, g->fbuf);
    HARP_TRY(launched("quantizer input"));
    HARP_TRY(dec_aq_fake(f, g->fbuf, (int)R, n, n, (dec_stream)g->st));
    qerr_kernel<<<grid_of(len), kThreads, 0, g->st>>>(x, g->fbuf, len, g->qerr[s]);
    return launched("quantizer error");
}

harp_status group_in(harp_blk_gpu *g, int gi, double *x) {
    const size_t R = rows_of(&g->dm);
    HARP_TRY(rotate(g, g->rot[gi], x, R, in_width(&g->dm, gi), 0));
    return quant_site(g, gi, g->has_aq[gi] ? &g->aq[gi] : nullptr, x, R, in_width(&g->dm, gi));
}

harp_status upload_w(harp_blk_gpu *g, const harp_blk_w *w) {
    const harp_blk_dims *dm = &g->dm;
    BF_CU(cudaMemcpyAsync(g->attn_norm, w->attn_norm, (size_t)dm->d * sizeof(double), cudaMemcpyHostToDevice, g->st), "weights");
    BF_CU(cudaMemcpyAsync(g->ffn_norm, w->ffn_norm, (size_t)dm->d * sizeof(double), cudaMemcpyHostToDevice, g->st), "weights");
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(dm, i, &m, &n);
        BF_CU(cudaMemcpyAsync(g->lin[i], w->lin[i], (size_t)(m * n) * sizeof(double), cudaMemcpyHostToDevice, g->st), "weights");
    }
    return HARP_OK;
}

AttnShape attn_of(const harp_blk_dims *dm) { return AttnShape{dm->T, dm->hd, dm->nh, dm->nkv, 1.0 / sqrt((double)dm->hd)}; }

harp_status forward_run(harp_blk_gpu *g, const harp_blk_w *w) {
    const harp_blk_dims *dm = &g->dm;
    const size_t R = rows_of(dm), d = (size_t)dm->d, hid = (size_t)dm->hid;
    const int kvd = dm->nkv * dm->hd;
    int64_t m, n;
    HARP_TRY(upload_w(g, w));
    rmsnorm_fwd_kernel<<<(unsigned)R, kThreads, 0, g->st>>>(g->X, g->attn_norm, dm->d, dm->eps, g->r1, g->h1);
    HARP_TRY(launched("rmsnorm"));
    HARP_TRY(group_in(g, HARP_BLK_IN_QKV, g->h1));
    double *qkv[3] = {g->q, g->k, g->v};
    for (int i = HARP_BLK_Q; i <= HARP_BLK_V; i++) {
        harp_blk_lin_shape(dm, i, &m, &n);
        HARP_TRY(gemm_xwt(g->blas, g->h1, g->lin[i], m, n, R, qkv[i], 0.0));
    }
    const int half = dm->rope == HARP_ROPE_HALF;
    rope_kernel<<<grid_of(R * dm->nh * (dm->hd / 2)), kThreads, 0, g->st>>>(g->q, R, dm->nh, dm->hd, dm->T, g->inv_freq, half, 1.0);
    rope_kernel<<<grid_of(R * dm->nkv * (dm->hd / 2)), kThreads, 0, g->st>>>(g->k, R, dm->nkv, dm->hd, dm->T, g->inv_freq, half, 1.0);
    HARP_TRY(launched("rope"));
    HARP_TRY(rotate(g, g->r3, g->q, R * dm->nh, dm->hd, 0));
    HARP_TRY(rotate(g, g->r3, g->k, R * dm->nkv, dm->hd, 0));
    HARP_TRY(quant_site(g, HARP_BLK_QS_K, g->has_kvq[0] ? &g->kvq[0] : nullptr, g->k, R, kvd));
    HARP_TRY(quant_site(g, HARP_BLK_QS_V, g->has_kvq[1] ? &g->kvq[1] : nullptr, g->v, R, kvd));
    attn_fwd_kernel<<<dim3(dm->T, dm->nh, dm->nseq), kThreads, 0, g->st>>>(attn_of(dm), g->q, g->k, g->v, g->P, g->ctx);
    HARP_TRY(launched("attention"));
    HARP_TRY(group_in(g, HARP_BLK_IN_O, g->ctx));
    harp_blk_lin_shape(dm, HARP_BLK_O, &m, &n);
    BF_CU(cudaMemcpyAsync(g->x2, g->X, R * d * sizeof(double), cudaMemcpyDeviceToDevice, g->st), "residual");
    HARP_TRY(gemm_xwt(g->blas, g->ctx, g->lin[HARP_BLK_O], m, n, R, g->x2, 1.0));
    rmsnorm_fwd_kernel<<<(unsigned)R, kThreads, 0, g->st>>>(g->x2, g->ffn_norm, dm->d, dm->eps, g->r2, g->h2);
    HARP_TRY(launched("rmsnorm"));
    HARP_TRY(group_in(g, HARP_BLK_IN_UG, g->h2));
    harp_blk_lin_shape(dm, HARP_BLK_GATE, &m, &n);
    HARP_TRY(gemm_xwt(g->blas, g->h2, g->lin[HARP_BLK_GATE], m, n, R, g->g, 0.0));
    HARP_TRY(gemm_xwt(g->blas, g->h2, g->lin[HARP_BLK_UP], m, n, R, g->u, 0.0));
    swiglu_fwd_kernel<<<grid_of(R * hid), kThreads, 0, g->st>>>(g->g, g->u, R * hid, g->a);
    HARP_TRY(launched("swiglu"));
    HARP_TRY(group_in(g, HARP_BLK_IN_DOWN, g->a));
    harp_blk_lin_shape(dm, HARP_BLK_DOWN, &m, &n);
    BF_CU(cudaMemcpyAsync(g->y, g->x2, R * d * sizeof(double), cudaMemcpyDeviceToDevice, g->st), "residual");
    return gemm_xwt(g->blas, g->a, g->lin[HARP_BLK_DOWN], m, n, R, g->y, 1.0);
}

// The gradient of linear i's weights into g->glin[i] when wanted (gw->lin[i] != NULL), dX (+)= dY·W.
harp_status lin_bwd(harp_blk_gpu *g, int i, const double *X, const double *dY, const harp_blk_w *gw, double *dX, double beta) {
    int64_t m, n;
    harp_blk_lin_shape(&g->dm, i, &m, &n);
    const size_t R = rows_of(&g->dm);
    if (gw && gw->lin[i]) HARP_TRY(gemm_dw(g->blas, dY, X, m, n, R, g->glin[i]));
    return dX ? gemm_dx(g->blas, dY, g->lin[i], m, n, R, dX, beta) : HARP_OK;
}

harp_status backward_run(harp_blk_gpu *g, const harp_blk_w *gw) {
    const harp_blk_dims *dm = &g->dm;
    const size_t R = rows_of(dm), d = (size_t)dm->d, hid = (size_t)dm->hid;
    const int qd = dm->nh * dm->hd;
    // y = x2 + a·Wdownᵀ
    BF_CU(cudaMemcpyAsync(g->dx2, g->dy, R * d * sizeof(double), cudaMemcpyDeviceToDevice, g->st), "backward");
    HARP_TRY(lin_bwd(g, HARP_BLK_DOWN, g->a, g->dy, gw, g->da, 0.0));
    HARP_TRY(rotate(g, g->rot[HARP_BLK_IN_DOWN], g->da, R, dm->hid, 1));
    swiglu_bwd_kernel<<<grid_of(R * hid), kThreads, 0, g->st>>>(g->g, g->u, R * hid, g->da, g->dgu);
    HARP_TRY(launched("swiglu backward"));
    HARP_TRY(lin_bwd(g, HARP_BLK_GATE, g->h2, g->da, gw, g->dh2, 0.0));
    HARP_TRY(lin_bwd(g, HARP_BLK_UP, g->h2, g->dgu, gw, g->dh2, 1.0));
    HARP_TRY(rotate(g, g->rot[HARP_BLK_IN_UG], g->dh2, R, dm->d, 1));
    if (gw && gw->ffn_norm) {
        rmsnorm_dw_kernel<<<(dm->d + kThreads - 1) / kThreads, kThreads, 0, g->st>>>(g->x2, g->r2, R, dm->d, g->dh2, g->gnorm[1]);
        HARP_TRY(launched("rmsnorm weight gradient"));
    }
    rmsnorm_bwd_kernel<<<(unsigned)R, kThreads, 0, g->st>>>(g->x2, g->ffn_norm, g->r2, dm->d, g->dh2, g->dx2);
    HARP_TRY(launched("rmsnorm backward"));
    BF_CU(cudaMemcpyAsync(g->dx, g->dx2, R * d * sizeof(double), cudaMemcpyDeviceToDevice, g->st), "backward");
    // attention half
    HARP_TRY(lin_bwd(g, HARP_BLK_O, g->ctx, g->dx2, gw, g->dctx, 0.0));
    HARP_TRY(rotate(g, g->rot[HARP_BLK_IN_O], g->dctx, R, qd, 1));
    const AttnShape as = attn_of(dm);
    const dim3 qgrid(dm->T, dm->nh, dm->nseq), kgrid(dm->T, dm->nkv, dm->nseq);
    attn_ds_kernel<<<qgrid, kThreads, 0, g->st>>>(as, g->v, g->P, g->dctx, g->dS);
    attn_dq_kernel<<<qgrid, 128, 0, g->st>>>(as, g->k, g->dS, g->dq);
    attn_dkv_kernel<<<kgrid, 128, 0, g->st>>>(as, g->q, g->P, g->dS, g->dctx, g->dk, g->dv);
    HARP_TRY(launched("attention backward"));
    HARP_TRY(rotate(g, g->r3, g->dq, R * dm->nh, dm->hd, 1));
    HARP_TRY(rotate(g, g->r3, g->dk, R * dm->nkv, dm->hd, 1));
    const int half = dm->rope == HARP_ROPE_HALF;
    rope_kernel<<<grid_of(R * dm->nh * (dm->hd / 2)), kThreads, 0, g->st>>>(g->dq, R, dm->nh, dm->hd, dm->T, g->inv_freq, half, -1.0);
    rope_kernel<<<grid_of(R * dm->nkv * (dm->hd / 2)), kThreads, 0, g->st>>>(g->dk, R, dm->nkv, dm->hd, dm->T, g->inv_freq, half, -1.0);
    HARP_TRY(launched("rope backward"));
    const double *dqkv[3] = {g->dq, g->dk, g->dv};
    for (int i = HARP_BLK_Q; i <= HARP_BLK_V; i++) HARP_TRY(lin_bwd(g, i, g->h1, dqkv[i], gw, g->dh1, i == HARP_BLK_Q ? 0.0 : 1.0));
    HARP_TRY(rotate(g, g->rot[HARP_BLK_IN_QKV], g->dh1, R, dm->d, 1));
    if (gw && gw->attn_norm) {
        rmsnorm_dw_kernel<<<(dm->d + kThreads - 1) / kThreads, kThreads, 0, g->st>>>(g->X, g->r1, R, dm->d, g->dh1, g->gnorm[0]);
        HARP_TRY(launched("rmsnorm weight gradient"));
    }
    rmsnorm_bwd_kernel<<<(unsigned)R, kThreads, 0, g->st>>>(g->X, g->attn_norm, g->r1, dm->d, g->dh1, g->dx);
    return launched("rmsnorm backward");
}

harp_status download_gw(harp_blk_gpu *g, harp_blk_w *gw) {
    const harp_blk_dims *dm = &g->dm;
    if (gw->attn_norm) BF_CU(cudaMemcpyAsync(gw->attn_norm, g->gnorm[0], (size_t)dm->d * sizeof(double), cudaMemcpyDeviceToHost, g->st), "gradients");
    if (gw->ffn_norm) BF_CU(cudaMemcpyAsync(gw->ffn_norm, g->gnorm[1], (size_t)dm->d * sizeof(double), cudaMemcpyDeviceToHost, g->st), "gradients");
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        if (!gw->lin[i]) continue;
        int64_t m, n;
        harp_blk_lin_shape(dm, i, &m, &n);
        BF_CU(cudaMemcpyAsync(gw->lin[i], g->glin[i], (size_t)(m * n) * sizeof(double), cudaMemcpyDeviceToHost, g->st), "gradients");
    }
    BF_CU(cudaStreamSynchronize(g->st), "gradients");
    return HARP_OK;
}

harp_status create_run(harp_blk_gpu *g, const harp_blk_wakv *wk, const double *X, const double *Y) {
    const harp_blk_dims *dm = &g->dm;
    const size_t R = rows_of(dm), d = (size_t)dm->d, hid = (size_t)dm->hid, qd = (size_t)dm->nh * dm->hd;
    const size_t kvd = (size_t)dm->nkv * dm->hd, P = (size_t)dm->nseq * dm->nh * dm->T * dm->T;
    if (harp_cublas_create(&g->blas) != CUBLAS_STATUS_SUCCESS)
        return harp_err(HARP_ERR_NO_DEVICE, "blockfit gpu: %s", harp_cublas_why(CUBLAS_STATUS_NOT_INITIALIZED));
    BF_CU(cudaStreamCreateWithFlags(&g->st, cudaStreamNonBlocking), "stream");
    if (harp_cublas_set_stream(g->blas, g->st) != CUBLAS_STATUS_SUCCESS) return harp_err(HARP_ERR_NO_DEVICE, "blockfit gpu: cublas stream");
    HARP_TRY(put(&g->inv_freq, dm->inv_freq, (size_t)dm->hd / 2, "rope frequencies"));
    int widest = (int)kvd;
    for (int i = 0; i < HARP_BLK_NIN; i++) widest = in_width(dm, i) > widest ? in_width(dm, i) : widest;
    if (wk) {
        for (int i = 0; i < HARP_BLK_NIN; i++) {
            HARP_TRY(put_rot(wk->rot_in[i], &g->rot[i]));
            if (wk->aq[i]) g->aq[i] = *wk->aq[i], g->has_aq[i] = 1;
        }
        HARP_TRY(put_rot(wk->r3, &g->r3));
        for (int i = 0; i < 2; i++)
            if (wk->kvq[i]) g->kvq[i] = *wk->kvq[i], g->has_kvq[i] = 1;
        for (int s = 0; s < HARP_BLK_NQS; s++) {
            const int on = s < HARP_BLK_NIN ? g->has_aq[s] : g->has_kvq[s - HARP_BLK_NIN];
            if (!on) continue;
            const size_t len = R * (s < HARP_BLK_NIN ? (size_t)in_width(dm, s) : kvd);
            HARP_TRY(dalloc(&g->qerr[s], len, "quantizer errors"));
            if (wk->frozen) HARP_TRY(put(&g->frozen[s], wk->frozen[s], len, "frozen quantizer errors"));
        }
    }
    BF_CU(cudaMalloc((void **)&g->fbuf, R * (size_t)widest * sizeof(float)), "quantizer scratch");
    // the rotation scratch: the widest rotated rows (R3 over the q heads is R·qd as well)
    HARP_TRY(dalloc(&g->tmp, R * (size_t)(widest > (int)qd ? widest : (int)qd), "rotation scratch"));
    HARP_TRY(put(&g->X, X, R * d, "inputs"));
    if (Y) HARP_TRY(put(&g->Y, Y, R * d, "targets"));
    HARP_TRY(dalloc(&g->attn_norm, d, "weights"));
    HARP_TRY(dalloc(&g->ffn_norm, d, "weights"));
    HARP_TRY(dalloc(&g->gnorm[0], d, "gradients"));
    HARP_TRY(dalloc(&g->gnorm[1], d, "gradients"));
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(dm, i, &m, &n);
        HARP_TRY(dalloc(&g->lin[i], (size_t)(m * n), "weights"));
        HARP_TRY(dalloc(&g->glin[i], (size_t)(m * n), "gradients"));
    }
    double **f[] = {&g->r1, &g->h1, &g->q, &g->k, &g->v, &g->P, &g->ctx, &g->x2, &g->r2, &g->h2, &g->g, &g->u, &g->a, &g->y,
                    &g->dy, &g->dx2, &g->da, &g->dgu, &g->dh2, &g->dctx, &g->dq, &g->dk, &g->dv, &g->dh1, &g->dS, &g->dx, &g->part};
    const size_t len[] = {R, R * d, R * qd, R * kvd, R * kvd, P, R * qd, R * d, R, R * d, R * hid, R * hid, R * hid, R * d,
                          R * d, R * d, R * hid, R * hid, R * d, R * qd, R * qd, R * kvd, R * kvd, R * d, P, R * d, kLossBlocks};
    for (size_t i = 0; i < sizeof len / sizeof len[0]; i++) HARP_TRY(dalloc(f[i], len[i], "activations"));
    return HARP_OK;
}

}  // namespace

extern "C" void harp_blk_gpu_free(harp_blk_gpu *g) {
    if (!g) return;
    double *p[] = {g->inv_freq, g->r3, g->X, g->Y, g->attn_norm, g->ffn_norm, g->r1, g->h1, g->q, g->k, g->v, g->P, g->ctx, g->x2, g->r2,
                   g->h2, g->g, g->u, g->a, g->y, g->tmp, g->dy, g->dx2, g->da, g->dgu, g->dh2, g->dctx, g->dq, g->dk, g->dv, g->dh1,
                   g->dS, g->dx, g->gnorm[0], g->gnorm[1], g->part};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) cudaFree(p[i]);
    for (int i = 0; i < HARP_BLK_NIN; i++) cudaFree(g->rot[i]);
    for (int s = 0; s < HARP_BLK_NQS; s++) cudaFree(g->qerr[s]), cudaFree(g->frozen[s]);
    for (int i = 0; i < HARP_BLK_NLIN; i++) cudaFree(g->lin[i]), cudaFree(g->glin[i]);
    cudaFree(g->fbuf);
    if (g->blas) harp_cublas_destroy(g->blas);
    if (g->st) cudaStreamDestroy(g->st);
    free(g);
}

extern "C" harp_status harp_blk_gpu_create(const harp_blk_dims *dm, const harp_blk_wakv *wk, const double *X, const double *Y,
                                           double inv_norm, harp_blk_gpu **out) {
    *out = NULL;
    HARP_TRY(harp_blk_dims_check(dm));
    if (!harp_cuda_available()) return HARP_ERR_NO_DEVICE;
    if (wk) HARP_TRY(harp_blk_wakv_check(dm, wk));   // the CPU's checks (one line naming the site)
    harp_blk_gpu *g = (harp_blk_gpu *)harp_xcalloc(1, sizeof *g, "blockfit gpu");
    if (!g) return HARP_ERR_OOM;
    g->dm = *dm;
    g->inv_norm = inv_norm;
    harp_status st = create_run(g, wk, X, Y);
    if (st) {
        harp_blk_gpu_free(g);
        return st;
    }
    g->dm.inv_freq = NULL;   // the caller's array: only the device copy is used
    *out = g;
    return HARP_OK;
}

extern "C" harp_status harp_blk_gpu_forward(harp_blk_gpu *g, const harp_blk_w *w, double *y) {
    HARP_TRY(forward_run(g, w));
    if (y) BF_CU(cudaMemcpyAsync(y, g->y, rows_of(&g->dm) * (size_t)g->dm.d * sizeof(double), cudaMemcpyDeviceToHost, g->st), "output");
    BF_CU(cudaStreamSynchronize(g->st), "forward");
    return HARP_OK;
}

extern "C" harp_status harp_blk_gpu_backward(harp_blk_gpu *g, const double *dy, double *dx, harp_blk_w *gw) {
    const size_t len = rows_of(&g->dm) * (size_t)g->dm.d;
    BF_CU(cudaMemcpyAsync(g->dy, dy, len * sizeof(double), cudaMemcpyHostToDevice, g->st), "output gradient");
    HARP_TRY(backward_run(g, gw));
    if (dx) BF_CU(cudaMemcpyAsync(dx, g->dx, len * sizeof(double), cudaMemcpyDeviceToHost, g->st), "input gradient");
    return gw ? download_gw(g, gw) : (cudaStreamSynchronize(g->st) == cudaSuccess ? HARP_OK : launched("backward"));
}

extern "C" harp_status harp_blk_gpu_loss(harp_blk_gpu *g, const harp_blk_w *w, double *L, harp_blk_w *gw) {
    if (!g->Y) return harp_err(HARP_ERR_INVALID_ARG, "blockfit gpu: an engine without targets has no loss");
    HARP_TRY(forward_run(g, w));
    const size_t len = rows_of(&g->dm) * (size_t)g->dm.d;
    loss_kernel<<<kLossBlocks, kThreads, 0, g->st>>>(g->y, g->Y, len, g->inv_norm, gw ? g->dy : nullptr, g->part);
    HARP_TRY(launched("loss"));
    double part[kLossBlocks];
    BF_CU(cudaMemcpyAsync(part, g->part, sizeof part, cudaMemcpyDeviceToHost, g->st), "loss");
    if (gw) HARP_TRY(backward_run(g, gw));
    if (gw) HARP_TRY(download_gw(g, gw));
    else BF_CU(cudaStreamSynchronize(g->st), "loss");
    double e = 0;
    for (int b = 0; b < kLossBlocks; b++) e += part[b];
    *L = e * g->inv_norm;
    return HARP_OK;
}
