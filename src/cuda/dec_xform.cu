// Transform engine of the GPU decode path (decode.h): a transform is a list of mixed-radix stages
// (dec_xform); the upload lays the stage matrices out [i][group][j] (row i of every group's matrix
// contiguous over groups, rows padded to 8 entries), in fp16 where that is exact (the Hadamard
// blocks) and fp32 otherwise (learned and Kronecker blocks), and plans passes.
//
// A pass keeps a tile of the row in shared memory and applies consecutive stages to it. "Chunk"
// passes hold G contiguous sub-vectors of S elements (stages whose groups stay inside S: small
// steps); "strided" passes hold, for G consecutive offsets q, the S elements q + C·u (stages with
// step ≥ C = n/S). A typical transform is one chunk pass + one strided pass (two launches): e.g.
// Had_11008 = FWHT on 64-element chunks, then hadK (172) across them; HARP [8,8,8,43] = stages
// 0–2 on chunks of 512, then the radix-43 stage. The first pass also applies RMSNorm (the CTA
// recomputes the row's sum of squares), the pre vector and the gather; the last applies the scale,
// scatter, post vector, residual add and the fp16 store with zero padding. Every reduction has a
// fixed order: results are deterministic. Each thread owns whole elements and reads its block row
// once for all rows of its CTA (a prefill plan's kWideRows; at decode, under dec_set_xform_fast, one
// row per CTA: more CTAs beat shared block traffic there). Before its PDL wait a pass copies the stage
// blocks it will read (cp.async, as far as kStageBytes allows), its permutation entries and its norm /
// pre / post entries into shared memory (stage_weights), so that only the activations are read after
// the wait (dec_set_xform_stage; docs/gpu.md "Weights before the wait").
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/core.h"
#include "cuda/decode.h"
}
#include "cuda/attn_combine.cuh"
#include "cuda/pdl.cuh"
#include "cuda/swiglu.cuh"

namespace {

constexpr int kRows = 8;            // most activation rows per CTA
// Rows per CTA of a prefill plan. A CTA's time is ~7 µs of stage latency plus ~1.5 µs per row (Nsight,
// ref-llama HARP n = 512 at 1 024 rows: 19 µs with 8 rows in one wave of 128 CTAs, 10 µs with 2 rows in
// two waves of 512): 4 rows fill one wave of two CTAs per SM.
constexpr int kWideRows = 4;
constexpr int kThreads = 512;
constexpr int kTileFloats = 8192;   // rows × tile elements per buffer (2 buffers: 64 KiB)
constexpr int kMaxPasses = 8;
constexpr int kSpread = 512;        // elements per CTA of a stage-free pass
// Shared memory for the stage blocks a pass stages before its PDL wait (decode plans; a prefill plan
// keeps room for three CTAs per SM) and the largest tile whose permutation / norm / pre / post entries
// are staged too.
constexpr int kStageBytes = 96 * 1024, kSmemWide = 72 * 1024;
constexpr int kVecTile = 1024;
constexpr size_t kSmemMax = 2 * kTileFloats * sizeof(float) + 16 + kStageBytes + 5 * kVecTile * sizeof(float);
int g_fast = 1;                     // dec_set_xform_fast: spread identity passes
int g_stage = 1;                    // dec_set_xform_stage: weights fetched before the PDL wait

// Division by a runtime constant d in three multiply instructions: q = ⌊c·x / 2^64⌋ with c = ⌈2^64 / d⌉
// is exact for every 32-bit x and 2 ≤ d < 2^32 (Lemire, Kaser, Kurz 2019, "Faster remainder by direct
// computation"); d = 1 is the identity. The stage index math ran four integer divisions per element and
// stage, ~80 instructions, more than the stage's own 8 multiply-adds (prefill: 19 µs per call at n = 512).
struct FDiv {
    unsigned long long c;
    unsigned d;
};

FDiv fdiv_of(unsigned d) {
    FDiv f;
    f.d = d;
    f.c = d > 1 ? ~0ull / d + 1 : 0;
    return f;
}

__device__ __forceinline__ unsigned fdiv(unsigned x, const FDiv &f) {
    return f.d == 1 ? x : (unsigned)__umul64hi(f.c, (unsigned long long)x);
}

struct XStageK {
    FDiv fstep, fb;                 // ÷ step, ÷ b
    int b, bp, step, Gs, ts;        // ts: neighbour distance inside the tile
    int f32;                        // blocks in fp32: entries fp16 cannot hold exactly (Cayley, Kronecker)
    int soff;                       // ≥ 0: byte offset of the staged copy in shared memory (whole block
                                    // when Gs = 1, else the tile's rows in tile order); −1: read from blk
    const void *blk;                // [b][Gs][bp] of __half, or of float when f32
};

struct XPassK {
    FDiv fG;                              // ÷ G (strided passes)
    int strided, S, G, C, ncta, ns, rb;   // rb: rows per CTA
    int sbytes;                           // staged stage blocks (soff ≥ 0), bytes
    XStageK st[DEC_MAX_STAGES];
};

struct XArgs {
    XPassK p;
    int n, rows;
    const float *in;
    const float *in2;  // first pass: the input is in + in2 (the two halves of a split product, summed as dec_add does)
    int ldi;
    const float *norm;
    float eps;
    int glu;           // > 0: the input is SwiGLU(gate = in[i + glu], up = in[i]) (dec_xin_split_glu)
    int att_nch, att_hd, att_heads;   // att_nch > 0: the input is the combine of attention partials at in
    const float *pre;
    const int *gather;
    int first, last, accumulate;
    float *outf;
    __half *outh;
    __half *outl;      // with outh: the fp16 residual v − fp16(v) (split activations), or NULL
    int ldo, npad;
    const float *post;
    const int *scatter;
    float scale;
    int vst;           // the tile's gather / norm / pre (first pass) and scatter / post (last) entries are staged
};

// Input element i of row r; with glu, SwiGLU of the up|gate product, with att_nch, the combine of
// the attention partials (swiglu.cuh, attn_combine.cuh: the separate kernels' expressions, so the
// folded forms are bit-identical to them).
__device__ __forceinline__ float load_in(const XArgs &a, int r, int i) {
    if (a.att_nch) {
        const int h = i / a.att_hd;
        return dec_attn_combine1(a.in + ((size_t)r * a.att_heads + h) * a.att_nch * (a.att_hd + 2), a.att_nch, a.att_hd, i - h * a.att_hd);
    }
    const float *x = a.in + (size_t)r * a.ldi;
    if (a.in2) return x[i] + a.in2[(size_t)r * a.ldi + i];
    return a.glu ? dec_swiglu1(x[i + a.glu], x[i]) : x[i];
}

__device__ __forceinline__ int elem_of(const XPassK &p, int bx, int idx) {
    if (!p.strided) return bx * p.G * p.S + idx;
    const int u = (int)fdiv((unsigned)idx, p.fG), qq = idx - u * p.G;
    return bx * p.G + qq + p.C * u;
}

// Byte offset of the staging area behind the two tile buffers (16-aligned for cp.async).
__host__ __device__ __forceinline__ size_t stage_base(int rb, int tile) { return ((size_t)2 * rb * tile * sizeof(float) + 15) & ~(size_t)15; }

__device__ __forceinline__ void cp_async16(void *smem, const void *gmem) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(gmem) : "memory");
}

__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;" ::: "memory"); }

// Row of stage S's matrix for element e (entries): block d (e's digit) of group c (its other digits).
__device__ __forceinline__ size_t stage_row(const XStageK &S, int e, int *d_out) {
    const int q1 = (int)fdiv((unsigned)e, S.fstep), hi = (int)fdiv((unsigned)q1, S.fb);   // e / step, e / (b·step)
    const int d = q1 - hi * S.b;
    const int c = S.Gs == 1 ? 0 : hi * S.step + (e - q1 * S.step);
    *d_out = d;
    return ((size_t)d * S.Gs + c) * S.bp;
}

// Everything a pass reads that no kernel of the token writes (stage blocks, permutations, norm, pre
// and post vectors) is fetched before the PDL wait, so at decode its latency (DRAM: a layer's weights
// have streamed through L2 since the last token) overlaps the kernel before; after the wait only the
// activations are read from global memory.
__device__ void stage_weights(const XArgs &a, int bx, unsigned char *stg) {
    const int tid = threadIdx.x, tile = a.p.G * a.p.S;
    int *vsrc = reinterpret_cast<int *>(stg + a.p.sbytes), *vdst = vsrc + tile;
    float *vnorm = reinterpret_cast<float *>(vdst + tile), *vpre = vnorm + tile, *vpost = vpre + tile;
    for (int s = 0; s < a.p.ns; s++) {
        const XStageK &S = a.p.st[s];
        if (S.soff < 0) continue;
        const int esz = S.f32 ? 4 : 2;
        if (S.Gs == 1) {
            const int chunks = S.b * S.bp * esz / 16;
            for (int c = tid; c < chunks; c += kThreads) cp_async16(stg + S.soff + 16 * c, (const unsigned char *)S.blk + 16 * c);
        } else {
            const int cpr = S.bp * esz / 16;   // 16-byte pieces per block row: 1, 2, … (bp is a multiple of 8)
            for (int i = tid; i < tile * cpr; i += kThreads) {
                const int idx = i / cpr, part = i - idx * cpr, e = elem_of(a.p, bx, idx);
                if (e >= a.n) continue;
                int d;
                const size_t mo = stage_row(S, e, &d);
                cp_async16(stg + S.soff + (size_t)idx * S.bp * esz + 16 * part, (const unsigned char *)S.blk + mo * esz + 16 * part);
            }
        }
    }
    asm volatile("cp.async.commit_group;" ::: "memory");
    if (!a.vst) return;
    for (int idx = tid; idx < tile; idx += kThreads) {
        const int e = elem_of(a.p, bx, idx);
        if (e >= a.n) continue;
        if (a.first) {
            const int src = a.gather ? a.gather[e] : e;
            vsrc[idx] = src;
            if (a.norm) vnorm[idx] = a.norm[src];
            if (a.pre) vpre[idx] = a.pre[src];
        }
        if (a.last) {
            const int dst = a.scatter ? a.scatter[e] : e;
            vdst[idx] = dst;
            if (a.post) vpost[idx] = a.post[dst];
        }
    }
}

// One pass on CTA (bx, by) of its grid, after the PDL wait and stage_weights (into stg).
__device__ __forceinline__ void xf_body(const XArgs &a, int bx, int by, unsigned char *stg) {
    extern __shared__ float sm[];
    __shared__ float s_inv[kRows];
    const int row0 = by * a.p.rb, RB = min(a.p.rb, a.rows - row0);
    const int tile = a.p.G * a.p.S;
    float *b0 = sm, *b1 = sm + a.p.rb * tile;
    const bool vst = a.vst;
    int *vsrc = reinterpret_cast<int *>(stg + a.p.sbytes), *vdst = vsrc + tile;
    float *vnorm = reinterpret_cast<float *>(vdst + tile), *vpre = vnorm + tile, *vpost = vpre + tile;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    if (a.first && a.norm) {   // the row's sum of squares over all 16 warps, added in a fixed order
        __shared__ float s_part[kThreads / 32][kRows];
        for (int r = 0; r < RB; r++) {
            const float *x = a.in + (size_t)(row0 + r) * a.ldi;
            float ss = 0.0f;
            for (int i = tid; i < a.n; i += kThreads) ss = fmaf(x[i], x[i], ss);
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
            if (lane == 0) s_part[warp][r] = ss;
        }
        __syncthreads();
        if (tid < RB) {
            float ss = 0.0f;
            for (int w = 0; w < kThreads / 32; w++) ss += s_part[w][tid];
            s_inv[tid] = 1.0f / sqrtf(ss / (float)a.n + a.eps);
        }
        __syncthreads();
    }
    for (int idx = tid; idx < tile; idx += kThreads) {
        const int e = elem_of(a.p, bx, idx);
        const int src = e >= a.n ? e : vst && a.first ? vsrc[idx] : a.gather ? a.gather[e] : e;
        const float nw = e < a.n && a.norm ? (vst ? vnorm[idx] : a.norm[src]) : 0.0f;
        const float pw = e < a.n && a.pre ? (vst ? vpre[idx] : a.pre[src]) : 0.0f;
#pragma unroll
        for (int r = 0; r < kRows; r++) {
            if (r >= RB) break;
            float v = 0.0f;
            if (e < a.n) {
                v = load_in(a, row0 + r, src);
                if (a.norm) v = nw * (v * s_inv[r]);
                if (a.pre) v *= pw;
            }
            b0[r * tile + idx] = v;
        }
    }
    cp_async_wait_all();
    __syncthreads();
    for (int s = 0; s < a.p.ns; s++) {
        const XStageK S = a.p.st[s];
        for (int idx = tid; idx < tile; idx += kThreads) {
            const int e = elem_of(a.p, bx, idx);
            float acc[kRows];
#pragma unroll
            for (int r = 0; r < kRows; r++) acc[r] = 0.0f;
            if (e < a.n) {
                int d;
                const size_t mo = stage_row(S, e, &d);
                const int base = idx - d * S.ts;
                // the staged copy holds the whole block (Gs = 1) or this tile's rows in tile order
                const bool st = S.soff >= 0;
                const void *blk = st ? (const void *)(stg + S.soff) : S.blk;
                const size_t row = !st || S.Gs == 1 ? mo : (size_t)idx * S.bp;
                for (int j0 = 0; j0 < S.bp; j0 += 8) {
                    float mf[8];
                    if (S.f32) {
                        const float4 *M = reinterpret_cast<const float4 *>((const float *)blk + row + j0);
                        const float4 u0 = M[0], u1 = M[1];
                        mf[0] = u0.x, mf[1] = u0.y, mf[2] = u0.z, mf[3] = u0.w;
                        mf[4] = u1.x, mf[5] = u1.y, mf[6] = u1.z, mf[7] = u1.w;
                    } else {
                        const uint4 mv = *reinterpret_cast<const uint4 *>((const __half *)blk + row + j0);
                        const __half *mh = reinterpret_cast<const __half *>(&mv);
#pragma unroll
                        for (int jj = 0; jj < 8; jj++) mf[jj] = __half2float(mh[jj]);
                    }
#pragma unroll
                    for (int jj = 0; jj < 8; jj++) {
                        const int j = j0 + jj;
                        if (j >= S.b) break;
                        const float m = mf[jj];
                        const int at = base + j * S.ts;
#pragma unroll
                        for (int r = 0; r < kRows; r++) {
                            if (r >= RB) break;
                            acc[r] = fmaf(m, b0[r * tile + at], acc[r]);
                        }
                    }
                }
            }
#pragma unroll
            for (int r = 0; r < kRows; r++) {
                if (r >= RB) break;
                b1[r * tile + idx] = acc[r];
            }
        }
        __syncthreads();
        float *t = b0;
        b0 = b1;
        b1 = t;
    }
    for (int idx = tid; idx < tile; idx += kThreads) {
        const int e = elem_of(a.p, bx, idx);
        if (e >= a.n) continue;
        const int dst = a.last && vst ? vdst[idx] : a.last && a.scatter ? a.scatter[e] : e;
        const float post = a.last && a.post ? (vst ? vpost[idx] : a.post[dst]) : 1.0f;
#pragma unroll
        for (int r = 0; r < kRows; r++) {
            if (r >= RB) break;
            float v = b0[r * tile + idx];
            if (a.last) v = v * a.scale * post;
            const size_t o = (size_t)(row0 + r) * a.ldo + dst;
            if (a.outh) {
                const __half h = __float2half_rn(v);
                a.outh[o] = h;
                if (a.outl) a.outl[o] = __float2half_rn(v - __half2float(h));
            } else if (a.accumulate) a.outf[o] += v;
            else a.outf[o] = v;
        }
    }
    if (a.last && a.outh && bx == 0)
        for (int i = a.n + tid; i < a.npad; i += kThreads)
            for (int r = 0; r < RB; r++) {
                a.outh[(size_t)(row0 + r) * a.ldo + i] = __float2half_rn(0.0f);
                if (a.outl) a.outl[(size_t)(row0 + r) * a.ldo + i] = __float2half_rn(0.0f);
            }
}

__global__ void __launch_bounds__(kThreads) xf_kernel(const __grid_constant__ XArgs a) {
    extern __shared__ float sm[];
    unsigned char *stg = reinterpret_cast<unsigned char *>(sm) + stage_base(a.p.rb, a.p.G * a.p.S);
    stage_weights(a, blockIdx.x, stg);
    pdl_wait();
    pdl_trigger();
    xf_body(a, blockIdx.x, blockIdx.y, stg);
}

}  // namespace

struct dec_xdev {
    int n, max_rows, npass;
    int fwht;               // log2 n when the transform is c·H_n (dec_xform_fwht), else 0
    float fwht_scale;       // c · scale
    XPassK pass[kMaxPasses];
    float scale;
    int *gather, *scatter;
    void *blocks;
    int borrowed;           // blocks / gather / scatter belong to another upload of the same transform
    size_t own_bytes;       // device bytes of the three when not borrowed
};

namespace {

harp_status cuda_fail(const char *what, cudaError_t e) {
    return harp_err(HARP_ERR_NO_DEVICE, "cuda transform: %s: %s", what, cudaGetErrorString(e));
}

// Largest divisor of c that is ≤ lim and leaves at least `want` groups (when possible).
int pick_group(int c, int lim, int want) {
    int best = 1;
    for (int g = 1; g <= c && g <= lim; g++)
        if (c % g == 0 && (c / g >= want || g == 1)) best = g;
    return best;
}

// Plans the passes for stage list st (application order): stages with step < C are "low" (chunk
// passes of C), the others "high" (strided passes of n/C); consecutive stages of one kind share a pass.
harp_status plan(dec_xdev *x, const dec_xform *xf, XStageK *ks) {
    // Planned for more than one row group (prefill): the row groups alone fill the GPU, so each CTA
    // takes kWideRows rows and the largest tile, and a row that fits one tile is one pass. The decode
    // plan (≤ 8 rows) spreads a row over ≥ 128 CTAs instead; at 512 rows its 8-element tiles left 504
    // of a CTA's 512 threads idle (ref-llama HARP transforms: 159 → 19–34 µs per call at n = 512).
    // Both plans apply the same stages in the same order in fp32: their results are bit-identical.
    const bool wide = x->max_rows > kRows;
    const int want = wide ? 1 : 128;
    const int n = (int)xf->n, ns = xf->nstages, rb = wide ? kWideRows : x->max_rows < kRows ? x->max_rows : kRows, cap = kTileFloats / rb;
    int64_t macs = 0;
    for (int s = 0; s < ns; s++) macs += (int64_t)n * xf->st[s].b;
    // one pass (one launch, one CTA per row group) only for tiny rows: measured on the H200, a single
    // CTA on a 4096-wide row costs more than a second launch; otherwise a chunk pass and a strided
    // pass spread over many CTAs
    if (ns == 0 || (n * rb <= 1024 && macs <= (1 << 16)) || (wide && n <= cap)) {
        XPassK &p = x->pass[0];
        memset(&p, 0, sizeof p);
        p.strided = 0;
        p.S = ns == 0 ? (n < cap ? n : cap) : n;
        p.G = 1;
        p.rb = rb;
        p.ncta = (n + p.S - 1) / p.S;
        p.ns = ns;
        for (int s = 0; s < ns; s++) {
            p.st[s] = ks[s];
            p.st[s].ts = ks[s].step;
        }
        x->npass = 1;
        return HARP_OK;
    }
    // candidate C: the steps of the stages, C > 1; choose the most balanced one that fits.
    int bestC = 0;
    for (int s = 0; s < ns; s++) {
        const int C = (int)xf->st[s].step;
        if (C <= 1 || n % C) continue;
        bool ok = C <= cap && n / C <= cap;
        for (int u = 0; u < ns && ok; u++) {
            const int64_t su = xf->st[u].step, span = (int64_t)xf->st[u].b * su;
            if (su < C ? C % span != 0 : su % C != 0) ok = false;   // groups must stay inside a tile
        }
        if (!ok) continue;
        const int cur = bestC ? (bestC > n / bestC ? bestC : n / bestC) : 1 << 30, mine = C > n / C ? C : n / C;
        if (mine < cur) bestC = C;
    }
    if (!bestC && n <= cap) {   // no digit split (e.g. a single radix-172 stage): one pass
        XPassK &p = x->pass[0];
        memset(&p, 0, sizeof p);
        p.S = n, p.G = 1, p.rb = rb, p.ncta = 1, p.ns = ns;
        for (int s = 0; s < ns; s++) {
            p.st[s] = ks[s];
            p.st[s].ts = ks[s].step;
        }
        x->npass = 1;
        return HARP_OK;
    }
    if (!bestC)
        return harp_err(HARP_ERR_UNSUPPORTED, "cuda transform: no two-level split of the %d stages of n = %d fits a tile of %d", ns,
                        n, cap);
    const int C = bestC, Sh = n / C;
    x->npass = 0;
    for (int s = 0; s < ns;) {
        const bool high = xf->st[s].step >= C;
        if (x->npass == kMaxPasses) return harp_err(HARP_ERR_UNSUPPORTED, "cuda transform: more than %d passes", kMaxPasses);
        XPassK &p = x->pass[x->npass++];
        memset(&p, 0, sizeof p);
        p.strided = high;
        p.S = high ? Sh : C;
        p.C = C;
        p.rb = rb;
        p.G = high ? pick_group(C, cap / Sh, want) : pick_group(Sh, cap / C, want);
        p.ncta = high ? C / p.G : Sh / p.G;
        while (s < ns && (xf->st[s].step >= C) == high) {
            XStageK k = ks[s];
            k.ts = high ? (int)(xf->st[s].step / C) * p.G : (int)xf->st[s].step;
            p.st[p.ns++] = k;
            s++;
        }
    }
    return HARP_OK;
}

// Which stage blocks of pass p are staged in shared memory before the PDL wait, in stage order while
// they fit: a decode CTA has kStageBytes for them; a prefill CTA keeps its whole shared memory under
// kSmemWide (three CTAs per SM), its blocks mostly in L2 anyway.
void plan_staging(XPassK *p, bool wide) {
    const int tile = p->G * p->S;
    const size_t base = stage_base(p->rb, tile), vec = tile <= kVecTile ? 5 * (size_t)tile * sizeof(float) : 0;
    const size_t budget = !wide ? kStageBytes : base + vec < (size_t)kSmemWide ? kSmemWide - base - vec : 0;
    size_t used = 0;
    for (int s = 0; s < p->ns; s++) {
        XStageK &k = p->st[s];
        const size_t bytes = ((size_t)(k.Gs == 1 ? k.b : tile) * k.bp * (k.f32 ? 4 : 2) + 15) / 16 * 16;
        k.soff = used + bytes <= budget ? (int)used : -1;
        if (k.soff >= 0) used += bytes;
    }
    p->sbytes = (int)used;
}

}  // namespace

// The blocks' layout depends on the transform only, not on max_rows, so plans of one transform for
// several row counts can share one upload of them (share).
extern "C" harp_status dec_xform_upload_shared(const dec_xform *xf, int max_rows, const dec_xdev *share, dec_xdev **out) {
    *out = NULL;
    if (xf->n < 1 || xf->n > (1 << 26) || max_rows < 1)
        return harp_err(HARP_ERR_INVALID_ARG, "cuda transform: n = %lld, rows %d", (long long)xf->n, max_rows);
    if (share && share->n != xf->n)
        return harp_err(HARP_ERR_INTERNAL, "cuda transform: sharing the blocks of n = %d with n = %lld", share->n,
                        (long long)xf->n);
    dec_xdev *x = (dec_xdev *)calloc(1, sizeof *x);
    if (!x) return HARP_ERR_OOM;
    x->n = (int)xf->n;
    x->max_rows = max_rows;
    x->scale = (float)xf->scale;
    double fc = 0;
    x->fwht = dec_xform_fwht(xf, &fc);
    x->fwht_scale = (float)fc;
    size_t bytes = 0;
    XStageK ks[DEC_MAX_STAGES];
    size_t off[DEC_MAX_STAGES];   // byte offsets, 16-aligned
    for (int s = 0; s < xf->nstages; s++) {
        const dec_xstage *S = &xf->st[s];
        ks[s].b = S->b;
        ks[s].bp = (S->b + 7) / 8 * 8;
        ks[s].step = (int)S->step;
        ks[s].fstep = fdiv_of((unsigned)S->step);
        ks[s].fb = fdiv_of((unsigned)S->b);
        ks[s].Gs = S->shared ? 1 : (int)(xf->n / S->b);
        // fp16 keeps the ±1 / ±½ Hadamard blocks exactly; learned blocks (HARP's Cayley factors) lose
        // 2^-11 per entry there, enough to flip a near-tie greedy token, so those stay fp32
        ks[s].f32 = dec_xstage_needs_f32(S, xf->n);
        off[s] = bytes;
        bytes += ((size_t)ks[s].b * ks[s].Gs * ks[s].bp * (ks[s].f32 ? 4 : 2) + 15) / 16 * 16;
    }
    harp_status st = HARP_OK;
    unsigned char *h = share ? NULL : (unsigned char *)calloc(bytes ? bytes : 1, 1);
    if (!share && !h) st = HARP_ERR_OOM;
    for (int s = 0; s < xf->nstages && st == HARP_OK && !share; s++) {
        const XStageK &k = ks[s];
        for (int64_t c = 0; c < k.Gs; c++)
            for (int i = 0; i < k.b; i++)
                for (int j = 0; j < k.b; j++) {
                    const size_t at = ((size_t)i * k.Gs + c) * k.bp + j;
                    const float v = xf->st[s].mat[((size_t)c * k.b + i) * k.b + j];
                    if (k.f32) ((float *)(h + off[s]))[at] = v;
                    else ((uint16_t *)(h + off[s]))[at] = harp_f32_to_f16(v);
                }
    }
    cudaError_t e = cudaSuccess;
    if (share) {
        x->blocks = share->blocks, x->gather = share->gather, x->scatter = share->scatter, x->borrowed = 1;
    } else if (st == HARP_OK && bytes) {
        e = cudaMalloc(&x->blocks, bytes);
        if (e == cudaSuccess) e = cudaMemcpy(x->blocks, h, bytes, cudaMemcpyHostToDevice);
        x->own_bytes = bytes;
    }
    for (int s = 0; s < xf->nstages; s++) ks[s].blk = (const unsigned char *)x->blocks + off[s];
    const int32_t *perms[2] = {xf->gather, xf->scatter};
    int **dst[2] = {&x->gather, &x->scatter};
    for (int i = 0; i < 2 && e == cudaSuccess && st == HARP_OK && !share; i++) {
        if (!perms[i]) continue;
        e = cudaMalloc((void **)dst[i], sizeof(int) * (size_t)x->n);
        if (e == cudaSuccess) e = cudaMemcpy(*dst[i], perms[i], sizeof(int) * (size_t)x->n, cudaMemcpyHostToDevice);
        if (e == cudaSuccess) x->own_bytes += sizeof(int) * (size_t)x->n;
    }
    free(h);
    if (st == HARP_OK && e != cudaSuccess) st = cuda_fail("upload", e);
    if (st == HARP_OK) st = plan(x, xf, ks);
    for (int i = 0; st == HARP_OK && i < x->npass; i++) {
        x->pass[i].fG = fdiv_of((unsigned)x->pass[i].G);
        plan_staging(&x->pass[i], x->max_rows > kRows);
    }
    if (st == HARP_OK) {
        e = cudaFuncSetAttribute(xf_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kSmemMax);
        if (e != cudaSuccess) st = cuda_fail("shared memory limit", e);
    }
    if (st != HARP_OK) {
        dec_xform_dev_free(x);
        return st;
    }
    *out = x;
    return HARP_OK;
}

extern "C" void dec_set_xform_stage(int on) { __atomic_store_n(&g_stage, on ? 1 : 0, __ATOMIC_RELAXED); }
extern "C" int dec_xform_stage(void) { return __atomic_load_n(&g_stage, __ATOMIC_RELAXED); }
extern "C" void dec_set_xform_fast(int on) { __atomic_store_n(&g_fast, on ? 1 : 0, __ATOMIC_RELAXED); }
extern "C" int dec_xform_fast(void) { return __atomic_load_n(&g_fast, __ATOMIC_RELAXED); }

extern "C" int dec_xform_dev_identity(const dec_xdev *x, float *scale) {
    const bool id = x->npass == 1 && x->pass[0].ns == 0 && !x->gather && !x->scatter;
    if (id && scale) *scale = x->scale;
    return id;
}

extern "C" int dec_xform_dev_fwht(const dec_xdev *x, float *scale) {
    if (x->fwht && scale) *scale = x->fwht_scale;
    return x->fwht;
}

extern "C" harp_status dec_xform_upload(const dec_xform *xf, int max_rows, dec_xdev **out) {
    return dec_xform_upload_shared(xf, max_rows, NULL, out);
}

extern "C" void dec_xform_dev_free(dec_xdev *x) {
    if (!x) return;
    if (!x->borrowed) {
        cudaFree(x->blocks);
        cudaFree(x->gather);
        cudaFree(x->scatter);
    }
    free(x);
}

extern "C" size_t dec_xform_dev_bytes(const dec_xdev *x) {
    return x ? x->own_bytes : 0;
}

extern "C" size_t dec_xform_scratch_floats(const dec_xdev *x, int rows) {
    return x->npass > 1 ? 2 * (size_t)rows * (size_t)x->n : 0;
}

namespace {

// Shared memory of one pass launch: tile buffers, staged blocks, staged vectors.
size_t pass_smem(const XArgs &k) {
    const int tile = k.p.G * k.p.S;
    return stage_base(k.p.rb, tile) + k.p.sbytes + (k.vst ? 5 * (size_t)tile * sizeof(float) : 0);
}

harp_status run(const dec_xdev *x, XArgs a, float *scratch, cudaStream_t stream, int out_half) {
    if (a.rows > x->max_rows) return harp_err(HARP_ERR_INVALID_ARG, "cuda transform: %d rows, planned for %d", a.rows, x->max_rows);
    XArgs ks[kMaxPasses];
    float *const outf = a.outf;
    __half *const outh = a.outh, *const outl = a.outl;
    const float *in = a.in;
    int ldi = a.ldi;
    for (int i = 0; i < x->npass; i++) {
        XArgs k = a;
        k.p = x->pass[i];
        k.first = i == 0;
        k.last = i == x->npass - 1;
        k.in = in;
        k.ldi = ldi;
        if (!k.first) k.norm = NULL, k.pre = NULL, k.gather = NULL, k.glu = 0, k.att_nch = 0, k.in2 = NULL;
        if (!k.last) {
            k.outh = NULL;
            k.outl = NULL;
            k.outf = scratch + (size_t)(i & 1) * a.rows * x->n;
            k.ldo = x->n;
            k.accumulate = 0;
            k.post = NULL;
            k.scatter = NULL;
        } else {
            k.outh = out_half ? outh : NULL;
            k.outl = out_half ? outl : NULL;
            k.outf = out_half ? NULL : outf;
        }
        if (k.p.ns == 0 && !k.p.strided && k.p.S > kSpread && __atomic_load_n(&g_fast, __ATOMIC_RELAXED)) {
            // a pass without stages (identity: RMSNorm, pre, split, post, residual) over many small
            // tiles: one CTA per 8192 elements left most SMs idle (the FP16 row's identity transforms cost
            // ~7 µs per launch at decode, docs/results/decode-gpu.md)
            k.p.S = kSpread;
            k.p.ncta = (x->n + kSpread - 1) / kSpread;
        }
        if (x->max_rows <= kRows && __atomic_load_n(&g_fast, __ATOMIC_RELAXED)) {
            // decode with several rows: one row per CTA (the tiles as planned). A CTA's time grows with
            // its rows while most SMs idle: E8P2 RHT at B = 4 spent 4.95 ms of its 7.31 ms token in
            // transforms against 2.27 ms at B = 1 (H100). Same bits: rows never interact.
            k.p.rb = 1;
        }
        const int tile = k.p.G * k.p.S;
        if (__atomic_load_n(&g_stage, __ATOMIC_RELAXED)) {
            k.vst = tile <= kVecTile && (k.first || k.last);
        } else {   // the A/B switch: every read from global memory after the wait, as before
            for (int s = 0; s < k.p.ns; s++) k.p.st[s].soff = -1;
            k.p.sbytes = 0;
            k.vst = 0;
        }
        ks[i] = k;
        in = k.outf;
        ldi = x->n;
    }
    for (int i = 0; i < x->npass; i++) {
        const XArgs &k = ks[i];
        const dim3 grid(k.p.ncta, (a.rows + k.p.rb - 1) / k.p.rb);
        const cudaError_t e = pdl_launch(xf_kernel, grid, kThreads, pass_smem(k), stream, k);
        if (e != cudaSuccess) return cuda_fail("launch", e);
    }
    return HARP_OK;
}

// The fields every pass reads: shape, input, permutations, output stride and scale.
XArgs xargs_of(const dec_xdev *x, const float *in, int ldi, int rows, int ldo) {
    XArgs a;
    memset(&a, 0, sizeof a);
    a.n = x->n;
    a.rows = rows;
    a.in = in;
    a.ldi = ldi;
    a.gather = x->gather;
    a.scatter = x->scatter;
    a.ldo = ldo;
    a.scale = x->scale;
    return a;
}

}  // namespace

extern "C" harp_status dec_xin(const dec_xdev *x, const float *in, int ldx, int rows, const float *norm_w, float eps,
                               const float *pre, void *out, int ldo, int32_t npad, float *scratch, dec_stream stream) {
    return dec_xin_split(x, in, ldx, rows, norm_w, eps, pre, out, NULL, ldo, npad, scratch, stream);
}

namespace {
harp_status xin(const dec_xdev *x, const float *in, int ldx, int rows, const float *norm_w, float eps, int glu, const dec_attn_shape *att,
                const float *pre, void *out, void *out_lo, int ldo, int32_t npad, float *scratch, dec_stream stream) {
    if (rows < 1 || ldo < npad || npad < x->n || (x->npass > 1 && !scratch) || (glu && (norm_w || ldx < 2 * x->n)) ||
        (att && att->n_heads * att->head_dim != x->n))
        return harp_err(HARP_ERR_INVALID_ARG, "cuda transform in: rows %d, ldo %d, npad %d, n %d, ldx %d%s", rows, ldo, (int)npad,
                        x->n, ldx, glu && norm_w ? ", SwiGLU input with RMSNorm" : att ? ", attention heads × head dim ≠ n" : "");
    XArgs a = xargs_of(x, in, ldx, rows, ldo);
    a.glu = glu ? x->n : 0;
    if (att) a.att_nch = dec_attn_chunks(att), a.att_hd = att->head_dim, a.att_heads = att->n_heads;
    a.norm = norm_w;
    a.eps = eps;
    a.pre = pre;
    a.outh = (__half *)out;
    a.outl = (__half *)out_lo;
    a.npad = npad;
    return run(x, a, scratch, (cudaStream_t)stream, 1);
}
}  // namespace

extern "C" harp_status dec_xin_split(const dec_xdev *x, const float *in, int ldx, int rows, const float *norm_w, float eps,
                                     const float *pre, void *out, void *out_lo, int ldo, int32_t npad, float *scratch,
                                     dec_stream stream) {
    return xin(x, in, ldx, rows, norm_w, eps, 0, NULL, pre, out, out_lo, ldo, npad, scratch, stream);
}

extern "C" harp_status dec_xin_split_att(const dec_xdev *x, const dec_attn_shape *s, const float *ws, int rows, const float *pre,
                                         void *out, void *out_lo, int ldo, int32_t npad, float *scratch, dec_stream stream) {
    return xin(x, ws, 0, rows, NULL, 0.0f, 0, s, pre, out, out_lo, ldo, npad, scratch, stream);
}

extern "C" harp_status dec_xin_split_glu(const dec_xdev *x, const float *ug, int ldx, int rows, const float *pre, void *out,
                                         void *out_lo, int ldo, int32_t npad, float *scratch, dec_stream stream) {
    return xin(x, ug, ldx, rows, NULL, 0.0f, 1, NULL, pre, out, out_lo, ldo, npad, scratch, stream);
}

extern "C" harp_status dec_xout(const dec_xdev *x, const float *y, int ldy, int rows, const float *post, int accumulate, float *out,
                                int ldo, float *scratch, dec_stream stream) {
    return dec_xout_sum(x, y, NULL, ldy, rows, post, accumulate, out, ldo, scratch, stream);
}

extern "C" harp_status dec_xout_sum(const dec_xdev *x, const float *y, const float *y2, int ldy, int rows, const float *post,
                                    int accumulate, float *out, int ldo, float *scratch, dec_stream stream) {
    if (rows < 1 || ldo < x->n || (x->npass > 1 && !scratch))
        return harp_err(HARP_ERR_INVALID_ARG, "cuda transform out: rows %d, ldo %d, n %d", rows, ldo, x->n);
    XArgs a = xargs_of(x, y, ldy, rows, ldo);
    a.in2 = y2;
    a.outf = out;
    a.post = post;
    a.accumulate = accumulate;
    return run(x, a, scratch, (cudaStream_t)stream, 0);
}

extern "C" harp_status dec_xout_split(const dec_xdev *x, const float *y, int ldy, int rows, const float *post, void *out, void *out_lo,
                                      int ldo, int32_t npad, float *scratch, dec_stream stream) {
    if (rows < 1 || ldo < npad || npad < x->n || (x->npass > 1 && !scratch))
        return harp_err(HARP_ERR_INVALID_ARG, "cuda transform out (split): rows %d, ldo %d, npad %d, n %d", rows, ldo, (int)npad, x->n);
    XArgs a = xargs_of(x, y, ldy, rows, ldo);
    a.post = post;
    a.outh = (__half *)out;
    a.outl = (__half *)out_lo;
    a.npad = npad;
    return run(x, a, scratch, (cudaStream_t)stream, 1);
}
