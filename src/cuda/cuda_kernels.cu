// Kernels of the CUDA backend (cuda/cuda_kernels.h). Compiled with --fmad=false so that a*b - c*d
// is not contracted into an FMA the CPU code does not do.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

extern "C" {
#include "core/core.h"
#include "cuda/cuda_kernels.h"
#include "harp/model.h"
}
#include "cuda/block_sum.cuh"

namespace {

constexpr int kThreads = 256;

__global__ void embed_kernel(const int32_t *tok, const float *emb, int dim, float *x) {
    const size_t r = blockIdx.x;
    const float *src = emb + (size_t)tok[r] * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) x[r * dim + i] = src[i];
}

__device__ double block_sum(double v, double *sh) { return block_sum_n<kThreads>(v, sh); }

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

__global__ void rmsnorm_kernel(const float *x, const int32_t *idx, const float *w, int n, float eps, float *y) {
    __shared__ double sh[kThreads];
    const float *xr = x + (size_t)(idx ? idx[blockIdx.x] : (int32_t)blockIdx.x) * n;
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

// One block per row; row r (stride ld) at position pos[r].
__global__ void rope_kernel(float *x, int ld, const int32_t *pos_of, int n_heads, int hd, const float *inv_freq,
                            int layout) {
    const int r = blockIdx.x, half = hd / 2;
    const float pos = (float)pos_of[r];
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

__global__ void swiglu_kernel(float *g, const float *u, size_t total) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const float x = g[i];
        g[i] = x / (1.0f + expf(-x)) * u[i];
    }
}

// Masked softmax over score rows: one block per (block z, query i); keys lo..hi-1 are visible.
__global__ void softmax_kernel(float *S, int n_q, int T, int p0, size_t zstride, int window) {
    __shared__ double shd[kThreads];
    __shared__ float shf[kThreads];
    const size_t z = blockIdx.x / n_q;
    const int i = (int)(blockIdx.x % n_q), p = p0 + i;
    float *s = S + z * zstride + (size_t)i * T;
    const int hi = p + 1, lo = window > 0 && p + 1 > window ? p + 1 - window : 0;
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
    for (int j = threadIdx.x; j < T; j += kThreads) s[j] = j >= lo && j < hi ? s[j] * inv : 0.0f;
}

// Log-sum-exp of one logits row and its argmax (lowest index among ties), over the whole block.
__device__ double row_lse(const float *l, int vocab, double *shd, float *shf, int *shi, int *am) {
    float v = -INFINITY, mx;
    int idx = 0x7fffffff;
    for (int j = threadIdx.x; j < vocab; j += kThreads)
        if (l[j] > v) {
            v = l[j];
            idx = j;
        }
    block_argmax(v, idx, shf, shi, &mx, am);
    double s = 0;
    for (int j = threadIdx.x; j < vocab; j += kThreads) s += exp((double)l[j] - mx);
    s = block_sum(s, shd);
    return log(s) + mx;
}

// One block per scored row.
__global__ void score_kernel(const float *logits, const float *ref, const int32_t *rows, const int32_t *targets,
                             int vocab, double *nll, double *kld, int *agree) {
    __shared__ double shd[kThreads];
    __shared__ float shf[kThreads];
    __shared__ int shi[kThreads];
    const size_t r = (size_t)rows[blockIdx.x];
    const float *l = logits + r * vocab;
    int am, amr;
    const double lse = row_lse(l, vocab, shd, shf, shi, &am);
    if (threadIdx.x == 0) nll[blockIdx.x] = lse - l[targets[blockIdx.x]];
    if (!ref) return;
    const float *lr = ref + r * vocab;
    const double lse_r = row_lse(lr, vocab, shd, shf, shi, &amr);
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

unsigned grid_for(size_t total) {
    size_t g = (total + kThreads - 1) / kThreads;
    return (unsigned)(g > 65535 * 8 ? 65535 * 8 : g < 1 ? 1 : g);
}

}  // namespace

extern "C" harp_status hc_launched(const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return harp_err(e == cudaErrorMemoryAllocation ? HARP_ERR_OOM : HARP_ERR_NO_DEVICE, "cuda %s: %s", what,
                        cudaGetErrorString(e));
    return HARP_OK;
}

extern "C" harp_status hc_embed(const int32_t *tok, const float *emb, int rows, int dim, float *x) {
    if (rows < 1) return HARP_OK;
    embed_kernel<<<rows, kThreads>>>(tok, emb, dim, x);
    return hc_launched("embedding");
}

extern "C" harp_status hc_rmsnorm(const float *x, const int32_t *idx, const float *w, int rows, int n, float eps,
                                  float *y) {
    if (rows < 1) return HARP_OK;
    rmsnorm_kernel<<<rows, kThreads>>>(x, idx, w, n, eps, y);
    return hc_launched("rmsnorm");
}

extern "C" harp_status hc_bias(float *y, const float *b, int n, size_t total) {
    if (!total) return HARP_OK;
    bias_kernel<<<grid_for(total), kThreads>>>(y, b, n, total);
    return hc_launched("bias");
}

extern "C" harp_status hc_add(float *x, const float *y, size_t n) {
    if (!n) return HARP_OK;
    add_kernel<<<grid_for(n), kThreads>>>(x, y, n);
    return hc_launched("residual");
}

extern "C" harp_status hc_rope(float *x, int ld, const int32_t *pos, int rows, int n_heads, int head_dim,
                               const float *inv_freq, int layout) {
    if (rows < 1) return HARP_OK;
    rope_kernel<<<rows, kThreads>>>(x, ld, pos, n_heads, head_dim, inv_freq, layout);
    return hc_launched("rope");
}

extern "C" harp_status hc_swiglu(float *g, const float *u, size_t n) {
    if (!n) return HARP_OK;
    swiglu_kernel<<<grid_for(n), kThreads>>>(g, u, n);
    return hc_launched("swiglu");
}

extern "C" harp_status hc_softmax(float *S, int nz, int n_q, int T, int p0, size_t zstride, int window) {
    if (nz < 1 || n_q < 1) return HARP_OK;
    softmax_kernel<<<(unsigned)((size_t)nz * n_q), kThreads>>>(S, n_q, T, p0, zstride, window);
    return hc_launched("softmax");
}

extern "C" harp_status hc_score(const float *logits, const float *ref, const int32_t *rows, const int32_t *targets,
                                int n, int vocab, double *nll, double *kld, int *agree) {
    if (n < 1) return HARP_OK;
    score_kernel<<<(unsigned)n, kThreads>>>(logits, ref, rows, targets, vocab, nll, kld, agree);
    return hc_launched("score");
}
