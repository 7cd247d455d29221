// The HARP loss/gradient engine on CUDA: the same computation as hf_eval_f32 (src/harpfit/hf_tpl.h)
// in the same "coordinate-major" layout. Stage kernels: one thread per (group, vector) for the mix
// and for dx = Kᵀg; dK of a group row i is one block summing g_i·v_j over the batch. Every reduction
// is a fixed partition (thread strides) followed by a fixed shared-memory tree, and there are no
// atomics, so a rerun is bit-identical on the same GPU. The θ-side work (Cayley, dθ from dK, Adam)
// stays on the host (src/harpfit/hf_gpu.c, hf_fit.c).
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/core.h"
#include "harp/quant.h"
#include "harpfit/hf_gpu_dev.h"
}
#include "cuda/block_sum.cuh"

namespace {

__constant__ float c_abs[8 * 256];
__constant__ float c_n2[256];
__constant__ int32_t c_odd[256];
__constant__ float c_e81b[256 * 8];

constexpr int kRed = 256;    // threads of the reduction blocks (power of two)
constexpr int kJ = 16;       // dK columns per block pass

enum { S_SS = 0, S_S, S_PROXY, S_HBD, S_DSUM, S_N };

#define CU_TRY(x, what)                                                                                  \
    do {                                                                                                 \
        cudaError_t e_ = (x);                                                                            \
        if (e_ != cudaSuccess) return harp_err(HARP_ERR_IO, "harp fit gpu: %s: %s", what, cudaGetErrorString(e_)); \
    } while (0)

__device__ __forceinline__ int64_t grp_row(int64_t c, int b, int64_t step, int i) {
    return (c / step) * b * step + (int64_t)i * step + c % step;
}

__device__ __forceinline__ double block_sum(double v, double *sh) { return block_sum_n<kRed>(v, sh); }

// out rows of every group ← K·(in rows) (TR = false: the stage's forward mix) or Kᵀ·(in rows) (TR = true:
// its input gradient); one thread per (group, vector), vectors contiguous.
template <int B, bool TR>
__global__ void stage_mix(const float *__restrict__ K, int bb, int64_t step, int64_t D, int64_t L,
                          const float *__restrict__ in, float *__restrict__ out) {
    const int b = B ? B : bb;
    int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= D * L) return;
    const int64_t c = t / L, l = t % L;
    const float *Kc = K + (size_t)c * b * b;
    // element (i, j) of K, or of Kᵀ
    const size_t si = TR ? 1 : (size_t)b, sj = TR ? (size_t)b : 1;
    if (B) {
        float v[B ? B : 1];
#pragma unroll
        for (int j = 0; j < B; j++) v[j] = in[grp_row(c, B, step, j) * L + l];
#pragma unroll
        for (int i = 0; i < B; i++) {
            float acc = v[0] * Kc[i * si];
#pragma unroll
            for (int j = 1; j < B; j++) acc += v[j] * Kc[i * si + j * sj];
            out[grp_row(c, B, step, i) * L + l] = acc;
        }
    } else {
        for (int i = 0; i < b; i++) {
            float acc = in[grp_row(c, b, step, 0) * L + l] * Kc[i * si];
            for (int j = 1; j < b; j++) acc += in[grp_row(c, b, step, j) * L + l] * Kc[i * si + j * sj];
            out[grp_row(c, b, step, i) * L + l] = acc;
        }
    }
}

// dK[c][i][j] += Σ_l g[row_i][l]·v[row_j][l]; block (c·b + i), columns j in passes of kJ.
__global__ void stage_dk(int b, int64_t step, int64_t L, const float *__restrict__ g, const float *__restrict__ v,
                         double *__restrict__ dK) {
    __shared__ double sh[kJ][kRed];
    const int64_t c = blockIdx.x / b;
    const int i = blockIdx.x % b;
    const float *gi = g + grp_row(c, b, step, i) * L;
    for (int j0 = 0; j0 < b; j0 += kJ) {
        const int nj = b - j0 < kJ ? b - j0 : kJ;
        double acc[kJ];
#pragma unroll
        for (int q = 0; q < kJ; q++) acc[q] = 0;
        for (int64_t l = threadIdx.x; l < L; l += kRed) {
            const double gl = gi[l];
#pragma unroll
            for (int q = 0; q < kJ; q++)
                if (q < nj) acc[q] += gl * (double)v[grp_row(c, b, step, j0 + q) * L + l];
        }
        for (int q = 0; q < nj; q++) sh[q][threadIdx.x] = acc[q];
        __syncthreads();
        for (int w = kRed / 2; w > 0; w >>= 1) {
            if ((int)threadIdx.x < w)
                for (int q = 0; q < nj; q++) sh[q][threadIdx.x] += sh[q][threadIdx.x + w];
            __syncthreads();
        }
        if ((int)threadIdx.x < nj) dK[(size_t)c * b * b + (size_t)i * b + j0 + threadIdx.x] += sh[threadIdx.x][0];
        __syncthreads();
    }
}

__global__ void transpose_k(const float *__restrict__ src, float *__restrict__ dst, int64_t rows, int64_t cols) {
    __shared__ float tile[32][33];
    const int64_t r0 = (int64_t)blockIdx.y * 32, c0 = (int64_t)blockIdx.x * 32;
    for (int k = threadIdx.y; k < 32; k += blockDim.y) {
        const int64_t r = r0 + k, c = c0 + threadIdx.x;
        if (r < rows && c < cols) tile[k][threadIdx.x] = src[r * cols + c];
    }
    __syncthreads();
    for (int k = threadIdx.y; k < 32; k += blockDim.y) {
        const int64_t c = c0 + k, r = r0 + threadIdx.x;
        if (r < rows && c < cols) dst[c * rows + r] = tile[threadIdx.x][k];
    }
}

// Σ part[0..k) in a fixed order into scal[slot].
__global__ void reduce_k(const double *__restrict__ part, int64_t k, double *scal, int slot) {
    __shared__ double sh[kRed];
    double a = 0;
    for (int64_t i = threadIdx.x; i < k; i += kRed) a += part[i];
    a = block_sum(a, sh);
    if (threadIdx.x == 0) scal[slot] = a;
}

// Diagonal weights h_j = |H̃_jj| / (mean |H̃_kk| + 1e−8).
__global__ void diag_weights(const float *__restrict__ Ht, int64_t n, double *hw, double *scal) {
    __shared__ double sh[kRed];
    double a = 0;
    for (int64_t j = threadIdx.x; j < n; j += kRed) a += fabs((double)Ht[j * n + j]);
    a = block_sum(a, sh);
    const double dmean = a / (double)n;
    for (int64_t j = threadIdx.x; j < n; j += kRed) hw[j] = fabs((double)Ht[j * n + j]) / (dmean + 1e-8);
    if (threadIdx.x == 0) scal[S_DSUM] = a;
}

// part[i] = Σ_j W̃_ij² (one block per row).
__global__ void row_sumsq(const float *__restrict__ Wt, int64_t n, double *part) {
    __shared__ double sh[kRed];
    const float *row = Wt + (size_t)blockIdx.x * n;
    double a = 0;
    for (int64_t j = threadIdx.x; j < n; j += kRed) a += (double)row[j] * row[j];
    a = block_sum(a, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = a;
}

__global__ void finish_scale(double *scal, double mn, double so) {
    scal[S_S] = (sqrt(scal[S_SS] / mn) + 1e-8) / so;
}

// Nearest E8P codeword, hf_e8p.c's algorithm and tie rule with the same fp32 operations (no FMA).
__device__ void nearest_e8p(const float *x, float *out) {
    float best = INFINITY, bay[8];
    int bp = 0, ba = 0;
    unsigned bneg = 0;
    for (int p = 0; p < 2; p++) {
        const float shift = p ? -0.25f : 0.25f;
        float ay[8], yy = 0;
        unsigned neg = 0;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            float y = __fsub_rn(x[i], shift);
            neg |= (unsigned)(y < 0) << i;
            ay[i] = fabsf(y);
            yy = __fadd_rn(yy, __fmul_rn(y, y));
        }
        const int32_t nodd = __popc(neg) & 1;
        float dmin = INFINITY;
        int amin = 0;
        for (int a = 0; a < 256; a++) {
            float dot = __fmul_rn(c_abs[a], ay[0]), mn = dot;
#pragma unroll
            for (int i = 1; i < 8; i++) {
                float t = __fmul_rn(c_abs[i * 256 + a], ay[i]);
                dot = __fadd_rn(dot, t);
                mn = t < mn ? t : mn;
            }
            float flip = c_odd[a] != nodd ? mn : 0.0f;
            float d = __fsub_rn(c_n2[a], __fmul_rn(2.0f, __fsub_rn(dot, __fmul_rn(2.0f, flip))));
            if (d < dmin) dmin = d, amin = a;
        }
        dmin = __fadd_rn(dmin, yy);
        if (dmin < best) {
            best = dmin, bp = p, ba = amin, bneg = neg;
#pragma unroll
            for (int i = 0; i < 8; i++) bay[i] = ay[i];
        }
    }
    unsigned t = bneg;
    if ((int32_t)(__popc(bneg) & 1) != c_odd[ba]) {
        int imn = 0;
        float mn = __fmul_rn(c_abs[ba], bay[0]);
        for (int i = 1; i < 8; i++) {
            float v = __fmul_rn(c_abs[i * 256 + ba], bay[i]);
            if (v < mn) mn = v, imn = i;
        }
        t ^= 1u << imn;
    }
    const float shift = bp ? -0.25f : 0.25f;
#pragma unroll
    for (int i = 0; i < 8; i++) out[i] = __fadd_rn((t >> i) & 1 ? -c_abs[i * 256 + ba] : c_abs[i * 256 + ba], shift);
}

// Proxy target: one thread per 8-vector of W̃/s (zero-padded past n), hf_quantize8_fast's arithmetic.
__global__ void refresh_target(const float *__restrict__ Wt, int64_t m, int64_t n, const double *scal, int cb,
                               double resid, float *__restrict__ target) {
    const int64_t nb = (n + 7) / 8;
    int64_t v = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (v >= m * nb) return;
    const int64_t i = v / nb, j0 = (v % nb) * 8;
    const float sR = (float)scal[S_S];
    double x[8], q[8];
    float xf[8], o[8];
    for (int k = 0; k < 8; k++) x[k] = j0 + k < n ? (double)__fdiv_rn(Wt[i * n + j0 + k], sR) : 0.0;
    for (int k = 0; k < 8; k++) xf[k] = (float)x[k];
    nearest_e8p(xf, o);
    for (int k = 0; k < 8; k++) q[k] = o[k];
    if (cb == HARP_CODEBOOK_E8P12_RVQ4B) {
        for (int k = 0; k < 8; k++) xf[k] = (float)__dmul_rn(__dsub_rn(x[k], q[k]), resid);
        nearest_e8p(xf, o);
        for (int k = 0; k < 8; k++) q[k] = __dadd_rn(q[k], __ddiv_rn((double)o[k], resid));
    } else if (cb == HARP_CODEBOOK_E8P12_RVQ3B) {
        double res[8];
        for (int k = 0; k < 8; k++) res[k] = __dmul_rn(__dsub_rn(x[k], q[k]), resid);
        int best = 0;
        double bd = INFINITY;
        for (int c = 0; c < 256; c++) {
            double d = 0;
            for (int k = 0; k < 8; k++) {
                double t = __dsub_rn(res[k], (double)c_e81b[8 * c + k]);
                d = __dadd_rn(d, __dmul_rn(t, t));
            }
            if (d < bd) bd = d, best = c;
        }
        for (int k = 0; k < 8; k++) q[k] = __dadd_rn(q[k], __ddiv_rn((double)c_e81b[8 * best + k], resid));
    }
    for (int k = 0; k < 8 && j0 + k < n; k++) target[i * n + j0 + k] = (float)q[k];
}

// Proxy rows: part[i] = Σ_j h_j e², gw = (2/(mn))/s·h_j·e, e = W̃/s − T (one block per row).
__global__ void proxy_rows(const float *__restrict__ Wt, const float *__restrict__ target, const double *__restrict__ hw,
                           int64_t m, int64_t n, const double *scal, int grad, float *__restrict__ gw, double *part) {
    __shared__ double sh[kRed];
    const int64_t i = blockIdx.x;
    const double s = scal[S_S], cg = 2.0 / ((double)m * (double)n) / s;
    const float sR = (float)s;
    double a = 0;
    for (int64_t j = threadIdx.x; j < n; j += kRed) {
        const double e = (double)__fsub_rn(__fdiv_rn(Wt[i * n + j], sR), target[i * n + j]);
        a += hw[j] * e * e;
        if (grad) gw[i * n + j] = (float)(cg * hw[j] * e);
    }
    a = block_sum(a, sh);
    if (threadIdx.x == 0) part[i] = a;
}

// HBD rows: part[i] = Σ_{off-block j} H̃_ij², gh = (2λ/n²)·H̃ on off-block entries, 0 elsewhere.
__global__ void hbd_rows(const float *__restrict__ Ht, int64_t n, int64_t beta, int grad, double ch,
                         float *__restrict__ gh, double *part) {
    __shared__ double sh[kRed];
    const int64_t i = blockIdx.x;
    double a = 0;
    for (int64_t j = threadIdx.x; j < n; j += kRed) {
        const int off = i / beta != j / beta;
        const double h = Ht[i * n + j];
        if (off) a += h * h;
        if (grad) gh[i * n + j] = off ? (float)(ch * h) : 0.0f;
    }
    a = block_sum(a, sh);
    if (threadIdx.x == 0) part[i] = a;
}

}  // namespace

struct hfg_ctx {
    hfg_desc d;
    hfg_stage *stU, *stV;
    float **bv, **bu, **bh1, **bh2;  // stage buffers as in hf_tpl.h
    float *g1, *g2, *g3;             // gradient ping-pong scratch (max(m,n)·max(m,n)... sized below)
    float *target, *kblk;
    double *hw, *part, *scal, *dk;
    int have_target;
    cudaStream_t s;
};

namespace {

harp_status dalloc(void **p, size_t bytes) {
    if (cudaMalloc(p, bytes ? bytes : 16) != cudaSuccess) {
        cudaGetLastError();
        *p = NULL;
        return harp_err(HARP_ERR_OOM, "harp fit gpu: out of device memory (%zu bytes)", bytes);
    }
    return HARP_OK;
}

float **dbufs(int k, size_t elems, harp_status *st) {
    float **b = (float **)calloc((size_t)k, sizeof(float *));
    if (!b) {
        *st = harp_err(HARP_ERR_OOM, "harp fit gpu: out of host memory");
        return NULL;
    }
    for (int i = 0; i < k && *st == HARP_OK; i++) *st = dalloc((void **)&b[i], elems * sizeof(float));
    return b;
}

void dbufs_free(float **b, int k) {
    if (!b) return;
    for (int i = 0; i < k; i++) cudaFree(b[i]);
    free(b);
}

unsigned nblk(int64_t work, int t) { return (unsigned)((work + t - 1) / t); }

// K·in (TR = false) or Kᵀ·in (TR = true) over every group of one stage.
template <bool TR> void launch_mix(cudaStream_t s, const float *K, const hfg_stage *st, int64_t L, const float *in, float *out) {
    const int64_t W = st->D * L;
    const int T = 256;
    switch (st->b) {
    case 2: stage_mix<2, TR><<<nblk(W, T), T, 0, s>>>(K, 2, st->step, st->D, L, in, out); break;
    case 4: stage_mix<4, TR><<<nblk(W, T), T, 0, s>>>(K, 4, st->step, st->D, L, in, out); break;
    case 8: stage_mix<8, TR><<<nblk(W, T), T, 0, s>>>(K, 8, st->step, st->D, L, in, out); break;
    default: stage_mix<0, TR><<<nblk(W, T), T, 0, s>>>(K, st->b, st->step, st->D, L, in, out); break;
    }
}

void side_fwd(cudaStream_t s, const hfg_side *sd, const float *kb, float **buf, int64_t L) {
    for (int pt = 0; pt < sd->PT; pt++) launch_mix<false>(s, kb + sd->st[pt].koff, &sd->st[pt], L, buf[pt], buf[pt + 1]);
}

// Backward through every stage: upstream *g (ping-pong with *tmp; on return *g holds dL/d buf[0] when
// dx_first), dK of each stage added into dk.
void side_bwd(cudaStream_t s, const hfg_side *sd, const float *kb, float **buf, int64_t L, float **g, float **tmp,
              double *dk, int dx_first) {
    for (int pt = sd->PT - 1; pt >= 0; pt--) {
        const hfg_stage *st = &sd->st[pt];
        stage_dk<<<(unsigned)(st->D * st->b), kRed, 0, s>>>(st->b, st->step, L, *g, buf[pt], dk + st->koff);
        if (pt > 0 || dx_first) {
            launch_mix<true>(s, kb + st->koff, st, L, *g, *tmp);
            float *x = *g;
            *g = *tmp, *tmp = x;
        }
    }
}

void transpose(cudaStream_t s, const float *src, float *dst, int64_t rows, int64_t cols) {
    dim3 grid((unsigned)((cols + 31) / 32), (unsigned)((rows + 31) / 32)), blk(32, 8);
    transpose_k<<<grid, blk, 0, s>>>(src, dst, rows, cols);
}

}  // namespace

extern "C" int hfg_device_present(void) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        cudaGetLastError();
        return 0;
    }
    return 1;
}

extern "C" void hfg_destroy(hfg_ctx *g) {
    if (!g) return;
    dbufs_free(g->bv, g->d.V.PT + 1);
    dbufs_free(g->bu, g->d.U.PT + 1);
    dbufs_free(g->bh1, g->d.V.PT + 1);
    dbufs_free(g->bh2, g->d.V.PT + 1);
    cudaFree(g->g1), cudaFree(g->g2), cudaFree(g->g3);
    cudaFree(g->target), cudaFree(g->kblk);
    cudaFree(g->hw), cudaFree(g->part), cudaFree(g->scal), cudaFree(g->dk);
    if (g->s) cudaStreamDestroy(g->s);
    free(g->stU), free(g->stV);
    free(g);
}

extern "C" harp_status hfg_create(const hfg_desc *d, const float *W, const double *H, hfg_ctx **out) {
    *out = NULL;
    if (!hfg_device_present()) return harp_err(HARP_ERR_NO_DEVICE, "harp fit gpu: no CUDA device");
    hfg_ctx *g = (hfg_ctx *)calloc(1, sizeof *g);
    if (!g) return harp_err(HARP_ERR_OOM, "harp fit gpu: out of host memory");
    g->d = *d;
    g->stU = (hfg_stage *)malloc(sizeof(hfg_stage) * (size_t)d->U.PT);
    g->stV = (hfg_stage *)malloc(sizeof(hfg_stage) * (size_t)d->V.PT);
    harp_status st = g->stU && g->stV ? HARP_OK : harp_err(HARP_ERR_OOM, "harp fit gpu: out of host memory");
    if (st == HARP_OK) {
        memcpy(g->stU, d->U.st, sizeof(hfg_stage) * (size_t)d->U.PT);
        memcpy(g->stV, d->V.st, sizeof(hfg_stage) * (size_t)d->V.PT);
        g->d.U.st = g->stU, g->d.V.st = g->stV;
    }
    const int64_t m = d->m, n = d->n;
    const size_t mn = (size_t)m * n, nn = (size_t)n * n, big = mn > nn ? mn : nn, mx = (size_t)(m > n ? m : n);
    if (st == HARP_OK && cudaStreamCreateWithFlags(&g->s, cudaStreamNonBlocking) != cudaSuccess) {
        cudaGetLastError();
        st = harp_err(HARP_ERR_NO_DEVICE, "harp fit gpu: cannot create a stream");
    }
    if (st == HARP_OK) g->bv = dbufs(d->V.PT + 1, mn, &st);
    if (st == HARP_OK) g->bu = dbufs(d->U.PT + 1, mn, &st);
    if (st == HARP_OK) g->bh1 = dbufs(d->V.PT + 1, nn, &st);
    if (st == HARP_OK) g->bh2 = dbufs(d->V.PT + 1, nn, &st);
    if (st == HARP_OK) st = dalloc((void **)&g->g1, big * sizeof(float));
    if (st == HARP_OK) st = dalloc((void **)&g->g2, big * sizeof(float));
    if (st == HARP_OK) st = dalloc((void **)&g->g3, big * sizeof(float));
    if (st == HARP_OK) st = dalloc((void **)&g->target, mn * sizeof(float));
    if (st == HARP_OK) st = dalloc((void **)&g->kblk, (size_t)(d->U.nk + d->V.nk) * sizeof(float));
    if (st == HARP_OK) st = dalloc((void **)&g->hw, (size_t)n * sizeof(double));
    if (st == HARP_OK) st = dalloc((void **)&g->part, mx * sizeof(double));
    if (st == HARP_OK) st = dalloc((void **)&g->scal, S_N * sizeof(double));
    if (st == HARP_OK) st = dalloc((void **)&g->dk, (size_t)(d->U.nk + d->V.nk) * sizeof(double));
    float *Wt = NULL, *Hf = NULL;
    if (st == HARP_OK) {
        Wt = (float *)malloc(mn * sizeof(float));
        Hf = (float *)malloc(nn * sizeof(float));
        if (!Wt || !Hf) st = harp_err(HARP_ERR_OOM, "harp fit gpu: out of host memory");
    }
    if (st == HARP_OK) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) Wt[j * m + i] = W[i * n + j];
        for (size_t k = 0; k < nn; k++) Hf[k] = (float)H[k];
        cudaError_t e = cudaMemcpy(g->bv[0], Wt, mn * sizeof(float), cudaMemcpyHostToDevice);
        if (e == cudaSuccess) e = cudaMemcpy(g->bh1[0], Hf, nn * sizeof(float), cudaMemcpyHostToDevice);
        if (e == cudaSuccess) e = cudaMemcpyToSymbol(c_abs, d->e8p_abs, sizeof(float) * 8 * 256);
        if (e == cudaSuccess) e = cudaMemcpyToSymbol(c_n2, d->e8p_n2, sizeof(float) * 256);
        if (e == cudaSuccess) e = cudaMemcpyToSymbol(c_odd, d->e8p_odd, sizeof(int32_t) * 256);
        if (e == cudaSuccess) e = cudaMemcpyToSymbol(c_e81b, d->e81b, sizeof(float) * 256 * 8);
        if (e == cudaSuccess) e = cudaMemset(g->scal, 0, S_N * sizeof(double));
        if (e != cudaSuccess) st = harp_err(HARP_ERR_IO, "harp fit gpu: upload: %s", cudaGetErrorString(e));
    }
    free(Wt);
    free(Hf);
    if (st != HARP_OK) {
        hfg_destroy(g);
        return st;
    }
    *out = g;
    return HARP_OK;
}

extern "C" harp_status hfg_eval(hfg_ctx *g, const float *kblk, int refresh, double out3[3], double *dk) {
    const hfg_desc *d = &g->d;
    const int64_t m = d->m, n = d->n;
    const int grad = dk != NULL;
    cudaStream_t s = g->s;
    const float *kU = g->kblk, *kV = g->kblk + d->U.nk;
    CU_TRY(cudaMemcpyAsync(g->kblk, kblk, (size_t)(d->U.nk + d->V.nk) * sizeof(float), cudaMemcpyHostToDevice, s),
           "block upload");
    const int PU = d->U.PT, PV = d->V.PT;
    // forward: W̃ = R_Uᵀ W R_V and H̃ = R_Vᵀ H R_V
    side_fwd(s, &d->V, kV, g->bv, m);
    transpose(s, g->bv[PV], g->bu[0], n, m);
    side_fwd(s, &d->U, kU, g->bu, n);
    side_fwd(s, &d->V, kV, g->bh1, n);
    transpose(s, g->bh1[PV], g->bh2[0], n, n);
    side_fwd(s, &d->V, kV, g->bh2, n);
    const float *Wt = g->bu[PU], *Ht = g->bh2[PV];
    const int fresh = refresh || !g->have_target;
    if (fresh || !d->freeze_weights) diag_weights<<<1, kRed, 0, s>>>(Ht, n, g->hw, g->scal);
    if (fresh) {
        row_sumsq<<<(unsigned)m, kRed, 0, s>>>(Wt, n, g->part);
        reduce_k<<<1, kRed, 0, s>>>(g->part, m, g->scal, S_SS);
        finish_scale<<<1, 1, 0, s>>>(g->scal, (double)m * (double)n, d->so);
        refresh_target<<<nblk(m * ((n + 7) / 8), 128), 128, 0, s>>>(Wt, m, n, g->scal, d->cb, d->resid, g->target);
        g->have_target = 1;
    }
    float *gw = g->g1, *gtmp = g->g2;
    proxy_rows<<<(unsigned)m, kRed, 0, s>>>(Wt, g->target, g->hw, m, n, g->scal, grad, gw, g->part);
    reduce_k<<<1, kRed, 0, s>>>(g->part, m, g->scal, S_PROXY);
    const int64_t beta = d->hbd_block > 0 && n % d->hbd_block == 0 ? d->hbd_block : 1;
    const int hgrad = grad && d->lambda > 0;
    const double ch = 2.0 * d->lambda / ((double)n * (double)n);
    // gh lives in g3 until the W path is done with g1/g2
    hbd_rows<<<(unsigned)n, kRed, 0, s>>>(Ht, n, beta, hgrad, ch, g->g3, g->part + 0);
    reduce_k<<<1, kRed, 0, s>>>(g->part, n, g->scal, S_HBD);
    if (grad) {
        CU_TRY(cudaMemsetAsync(g->dk, 0, (size_t)(d->U.nk + d->V.nk) * sizeof(double), s), "dK clear");
        double *dkU = g->dk, *dkV = g->dk + d->U.nk;
        side_bwd(s, &d->U, kU, g->bu, n, &gw, &gtmp, dkU, 1);
        transpose(s, gw, gtmp, m, n);
        float *gwt = gtmp, *gwt2 = gw;
        side_bwd(s, &d->V, kV, g->bv, m, &gwt, &gwt2, dkV, 0);
        if (hgrad) {
            float *gh = g->g3, *ghs = g->g1;
            side_bwd(s, &d->V, kV, g->bh2, n, &gh, &ghs, dkV, 1);
            transpose(s, gh, ghs, n, n);
            float *gh2 = ghs, *gh2s = gh;
            side_bwd(s, &d->V, kV, g->bh1, n, &gh2, &gh2s, dkV, 0);
        }
        CU_TRY(cudaMemcpyAsync(dk, g->dk, (size_t)(d->U.nk + d->V.nk) * sizeof(double), cudaMemcpyDeviceToHost, s),
               "dK download");
    }
    double sc[S_N];
    CU_TRY(cudaMemcpyAsync(sc, g->scal, sizeof sc, cudaMemcpyDeviceToHost, s), "loss download");
    CU_TRY(cudaStreamSynchronize(s), "evaluation");
    CU_TRY(cudaGetLastError(), "kernel launch");
    const double proxy = sc[S_PROXY] / ((double)m * (double)n), hbd = sc[S_HBD] / ((double)n * (double)n);
    out3[0] = proxy + d->lambda * hbd, out3[1] = proxy, out3[2] = hbd;
    return HARP_OK;
}

extern "C" harp_status hfg_debug(hfg_ctx *g, float *wt, float *target, double *s) {
    const size_t mn = (size_t)g->d.m * g->d.n;
    CU_TRY(cudaStreamSynchronize(g->s), "sync");
    if (wt) CU_TRY(cudaMemcpy(wt, g->bu[g->d.U.PT], mn * sizeof(float), cudaMemcpyDeviceToHost), "W̃ download");
    if (target) CU_TRY(cudaMemcpy(target, g->target, mn * sizeof(float), cudaMemcpyDeviceToHost), "target download");
    if (s) CU_TRY(cudaMemcpy(s, g->scal + S_S, sizeof(double), cudaMemcpyDeviceToHost), "scale download");
    return HARP_OK;
}
