// The batched two-pass tail-biting Viterbi of QTIP (algorithms.md §5.6.4) on CUDA: one block per
// sequence and pass, the two best rows (2^{L−KV} floats each) in shared memory, back-pointers of KV
// bits per group and step in device memory (bit planes: for each 32 groups, KV words made by warp
// ballots, word b holding bit b of the 32 choices), then a one-thread-per-sequence traceback. Per state the
// arithmetic is the reference's (harp_viterbi_ref) with round-to-nearest intrinsics, so nothing is
// contracted into an FMA: cost(s) = (d0·d0 [+ d1·d1]) + best[s >> KV]. The min over the 2^KV
// predecessor slices is a sequential scan with a strict <, and the final state is the smallest one
// among the minimal costs (a (cost, state) reduction), exactly the reference's tie rules, so the
// states are bit-identical to the CPU's. Launch sequence per batch: forward (rotated x, open),
// traceback to step S − S/2 (the overlap), forward (x, overlap), full traceback.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include "core/core.h"
#include "quant/trellis_gpu.h"
}

namespace {

#define TV_TRY(x, what)                                                                                  \
    do {                                                                                                 \
        cudaError_t e_ = (x);                                                                            \
        if (e_ != cudaSuccess) return harp_err(HARP_ERR_IO, "%s: CUDA Viterbi: %s", what, cudaGetErrorString(e_)); \
    } while (0)

constexpr int kMaxThreads = 1024;

template <int V>
__device__ __forceinline__ float tv_dist(const float *__restrict__ val, uint32_t N, uint32_t s, float x0, float x1) {
    const float d0 = __fsub_rn(__ldg(val + s), x0);
    float d = __fmul_rn(d0, d0);
    if (V == 2) {
        const float d1 = __fsub_rn(__ldg(val + N + s), x1);
        d = __fadd_rn(d, __fmul_rn(d1, d1));
    }
    return d;
}

// (c, s) ← (oc, os) when it is smaller, or equal with a smaller state.
__device__ __forceinline__ void tv_pick(float &c, uint32_t &s, float oc, uint32_t os) {
    if (oc < c || (oc == c && os < s)) c = oc, s = os;
}

// One pass of the search for sequence blockIdx.x: x step t is x[(t + rot) mod S]; ovl NULL = open,
// else the tail-biting group of each sequence. Writes bp (S steps × KV·⌈G/32⌉ words per sequence)
// and the final state and cost.
template <int V>
__global__ void __launch_bounds__(kMaxThreads) tv_forward(const float *__restrict__ val, const float *__restrict__ x,
                                                          int L, int KV, int S, int rot, const int32_t *__restrict__ ovl,
                                                          uint32_t *__restrict__ bp, uint32_t *__restrict__ fin,
                                                          float *__restrict__ fcost) {
    extern __shared__ float tv_sh[];
    __shared__ float red_c[32];
    __shared__ uint32_t red_s[32];
    const uint32_t N = 1u << L, G = N >> KV, J = 1u << KV, nt = blockDim.x, lane = threadIdx.x & 31;
    const uint32_t wstep = harp_tvit_bp_words(G, KV);   // back-pointer words per step
    const int64_t q = blockIdx.x;
    const float *xq = x + q * (int64_t)S * V;
    uint32_t *bq = bp + q * (int64_t)S * wstep;
    const int32_t o = ovl ? ovl[q] : -1;
    float *bprev = tv_sh, *bcur = tv_sh + G;
    for (uint32_t g = threadIdx.x; g < G; g += nt) bprev[g] = o < 0 || (uint32_t)o == g ? 0.0f : INFINITY;
    __syncthreads();
    for (int t = 1; t < S; t++) {
        const float *xt = xq + (int64_t)((t - 1 + rot) % S) * V;
        const float x0 = xt[0], x1 = V == 2 ? xt[1] : 0.0f;
        uint32_t *bt = bq + (int64_t)t * wstep;
        // warp-uniform loop (nt is a multiple of 32): every lane takes part in the ballots
        for (uint32_t gb = threadIdx.x - lane; gb < G; gb += nt) {
            const uint32_t g = gb + lane;
            uint32_t arg = 0;
            if (g < G) {
                float b = __fadd_rn(tv_dist<V>(val, N, g, x0, x1), bprev[g >> KV]);
                for (uint32_t j = 1; j < J; j++) {
                    const uint32_t s = g + j * G;
                    const float c = __fadd_rn(tv_dist<V>(val, N, s, x0, x1), bprev[s >> KV]);
                    if (c < b) b = c, arg = j;
                }
                bcur[g] = b;
            }
            for (int k = 0; k < KV; k++) {
                const uint32_t plane = __ballot_sync(0xFFFFFFFFu, (arg >> k) & 1u);
                if (lane == (uint32_t)k) bt[(gb >> 5) * (uint32_t)KV + (uint32_t)k] = plane;
            }
        }
        __syncthreads();
        float *tmp = bprev;
        bprev = bcur, bcur = tmp;
    }
    // final state: all states (open) or overlap + k·G; thread-local scans go up in s, so a strict <
    // keeps the first minimum, and the reduction prefers the smaller state on equal costs
    const float *xl = xq + (int64_t)((S - 1 + rot) % S) * V;
    const float x0 = xl[0], x1 = V == 2 ? xl[1] : 0.0f;
    const uint32_t n = o < 0 ? N : J;
    float bc = INFINITY;
    uint32_t bs = 0xFFFFFFFFu;
    for (uint32_t k = threadIdx.x; k < n; k += nt) {
        const uint32_t s = o < 0 ? k : (uint32_t)o + k * G;
        const float c = __fadd_rn(tv_dist<V>(val, N, s, x0, x1), bprev[s >> KV]);
        if (bs == 0xFFFFFFFFu || c < bc) bc = c, bs = s;
    }
    for (int w = 16; w > 0; w >>= 1) {
        const float oc = __shfl_down_sync(0xFFFFFFFFu, bc, w);
        const uint32_t os = __shfl_down_sync(0xFFFFFFFFu, bs, w);
        if (os != 0xFFFFFFFFu && (bs == 0xFFFFFFFFu || oc < bc || (oc == bc && os < bs))) bc = oc, bs = os;
    }
    const int warp = threadIdx.x >> 5, nw = (int)((nt + 31) / 32);
    if (lane == 0) red_c[warp] = bc, red_s[warp] = bs;
    __syncthreads();
    if (threadIdx.x == 0) {
        float c = red_c[0];
        uint32_t s = red_s[0];
        for (int w = 1; w < nw; w++)
            if (red_s[w] != 0xFFFFFFFFu) {
                if (s == 0xFFFFFFFFu) c = red_c[w], s = red_s[w];
                else tv_pick(c, s, red_c[w], red_s[w]);
            }
        fin[q] = s, fcost[q] = c;
    }
}

// Traceback of each sequence from its final state down to step `stop`: states (count × S, NULL =
// not stored) and, with ovl, the group s_stop >> KV (the first pass's overlap).
__global__ void tv_trace(const uint32_t *__restrict__ bp, const uint32_t *__restrict__ fin, int L, int KV, int S,
                         int stop, int64_t count, uint32_t *__restrict__ states, int32_t *__restrict__ ovl) {
    const int64_t q = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= count) return;
    const uint32_t wstep = harp_tvit_bp_words((1u << L) >> KV, KV);
    const uint32_t s = harp_tvit_trace(bp + q * (int64_t)S * wstep, fin[q], L, KV, S, stop, states ? states + q * S : NULL);
    if (ovl) ovl[q] = (int32_t)(s >> KV);
}

}  // namespace

struct harp_tvit_gpu {
    int L, KV, V, S;
    int64_t batch;
    int threads;
    size_t smem;
    float *val, *x, *cost;
    uint32_t *bp, *fin, *states;
    int32_t *ovl;
    const char *what;
};

extern "C" int harp_tvit_gpu_available(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1) {
        cudaGetLastError();
        harp_err(HARP_ERR_NO_DEVICE, "CUDA Viterbi: no CUDA device");
        return 0;
    }
    return 1;
}

extern "C" void harp_tvit_gpu_destroy(harp_tvit_gpu *g) {
    if (!g) return;
    cudaFree(g->val), cudaFree(g->x), cudaFree(g->cost), cudaFree(g->bp), cudaFree(g->fin);
    cudaFree(g->states), cudaFree(g->ovl);
    harp_free(g);
}

extern "C" int64_t harp_tvit_gpu_batch(const harp_tvit_gpu *g) { return g ? g->batch : 0; }

static harp_status tv_alloc(harp_tvit_gpu *g, const harp_tcb *cb, const char *what) {
    const size_t N = (size_t)1 << cb->L, G = N >> cb->KV, B = (size_t)g->batch, S = (size_t)cb->S;
    TV_TRY(cudaMalloc(&g->val, sizeof(float) * N * (size_t)cb->V), what);
    TV_TRY(cudaMemcpy(g->val, cb->val, sizeof(float) * N * (size_t)cb->V, cudaMemcpyHostToDevice), what);
    TV_TRY(cudaMalloc(&g->x, sizeof(float) * B * S * (size_t)cb->V), what);
    TV_TRY(cudaMalloc(&g->bp, sizeof(uint32_t) * B * S * harp_tvit_bp_words((uint32_t)G, cb->KV)), what);
    TV_TRY(cudaMalloc(&g->states, sizeof(uint32_t) * B * S), what);
    TV_TRY(cudaMalloc(&g->cost, sizeof(float) * B), what);
    TV_TRY(cudaMalloc(&g->fin, sizeof(uint32_t) * B), what);
    TV_TRY(cudaMalloc(&g->ovl, sizeof(int32_t) * B), what);
    return HARP_OK;
}

extern "C" harp_status harp_tvit_gpu_create(const harp_tcb *cb, int64_t max_seq, const char *what, harp_tvit_gpu **out) {
    *out = NULL;
    if (!harp_tvit_gpu_available()) return HARP_ERR_NO_DEVICE;
    const size_t smem = harp_tvit_smem_bytes(cb);
    if (smem > HARP_TVIT_MAX_SMEM || cb->S < 2 || (cb->V != 1 && cb->V != 2))
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: CUDA Viterbi needs 2^(L-KV) best rows in %d KiB of shared memory "
                        "(L %d, KV %d) and V 1 or 2", what, HARP_TVIT_MAX_SMEM / 1024, cb->L, cb->KV);
    size_t fr = 0, tot = 0;
    TV_TRY(cudaMemGetInfo(&fr, &tot), what);
    const int64_t batch = harp_tvit_plan_batch(fr, harp_tvit_seq_bytes(cb), max_seq < 1 ? 1 : max_seq);
    if (batch < 1)
        return harp_err(HARP_ERR_OOM, "%s: CUDA Viterbi: %zu bytes free on the device, one sequence needs %zu", what,
                        fr, harp_tvit_seq_bytes(cb));
    harp_tvit_gpu *g = (harp_tvit_gpu *)harp_xcalloc(1, sizeof *g, "CUDA Viterbi");
    if (!g) return HARP_ERR_OOM;
    g->L = cb->L, g->KV = cb->KV, g->V = cb->V, g->S = cb->S, g->batch = batch, g->smem = smem;
    const uint32_t G = (1u << cb->L) >> cb->KV;
    g->threads = G < (uint32_t)kMaxThreads ? (int)((G + 31) / 32 * 32) : kMaxThreads;
    harp_status st = tv_alloc(g, cb, what);
    if (st == HARP_OK && g->V == 1)
        st = cudaFuncSetAttribute(tv_forward<1>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem) == cudaSuccess
                 ? HARP_OK : harp_err(HARP_ERR_IO, "%s: CUDA Viterbi: shared memory %zu bytes refused", what, smem);
    if (st == HARP_OK && g->V == 2)
        st = cudaFuncSetAttribute(tv_forward<2>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem) == cudaSuccess
                 ? HARP_OK : harp_err(HARP_ERR_IO, "%s: CUDA Viterbi: shared memory %zu bytes refused", what, smem);
    if (st != HARP_OK) {
        harp_tvit_gpu_destroy(g);
        return st;
    }
    *out = g;
    return HARP_OK;
}

static void tv_launch_forward(const harp_tvit_gpu *g, int64_t nb, int rot, const int32_t *ovl) {
    const size_t dyn = g->smem - 32 * (sizeof(float) + sizeof(uint32_t));
    if (g->V == 1)
        tv_forward<1><<<(unsigned)nb, g->threads, dyn>>>(g->val, g->x, g->L, g->KV, g->S, rot, ovl, g->bp, g->fin, g->cost);
    else
        tv_forward<2><<<(unsigned)nb, g->threads, dyn>>>(g->val, g->x, g->L, g->KV, g->S, rot, ovl, g->bp, g->fin, g->cost);
}

extern "C" harp_status harp_tvit_gpu_run(harp_tvit_gpu *g, int64_t count, const float *x, uint32_t *states, float *cost) {
    const char *what = "CUDA Viterbi";
    const size_t sv = (size_t)g->S * (size_t)g->V;
    const int half = g->S / 2;
    for (int64_t b0 = 0; b0 < count; b0 += g->batch) {
        const int64_t nb = count - b0 < g->batch ? count - b0 : g->batch;
        const unsigned tb = 128, nblk = (unsigned)((nb + tb - 1) / tb);
        TV_TRY(cudaMemcpy(g->x, x + (size_t)b0 * sv, sizeof(float) * sv * (size_t)nb, cudaMemcpyHostToDevice), what);
        tv_launch_forward(g, nb, half, NULL);
        tv_trace<<<nblk, tb>>>(g->bp, g->fin, g->L, g->KV, g->S, g->S - half, nb, NULL, g->ovl);
        tv_launch_forward(g, nb, 0, g->ovl);
        tv_trace<<<nblk, tb>>>(g->bp, g->fin, g->L, g->KV, g->S, 0, nb, g->states, NULL);
        TV_TRY(cudaGetLastError(), what);
        TV_TRY(cudaMemcpy(states + (size_t)b0 * (size_t)g->S, g->states, sizeof(uint32_t) * (size_t)g->S * (size_t)nb,
                          cudaMemcpyDeviceToHost), what);
        if (cost) TV_TRY(cudaMemcpy(cost + b0, g->cost, sizeof(float) * (size_t)nb, cudaMemcpyDeviceToHost), what);
    }
    return HARP_OK;
}
