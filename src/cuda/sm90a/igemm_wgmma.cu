// The integer GEMM with its epilogue in one kernel, on Hopper's warpgroup MMA (decode.h, "W/A/KV on
// the GPU", dec_igemm_epi): Y[r][j] = ((float)Σ_c Q[r][c]·W[j][c] · sa[r]) · sw[j], the exact int32
// product of dec_igemm_ref (plus the zero-point term corr[r]·rs[j] where given) followed by dec_iepi_ref's
// two roundings, so Y equals the three-kernel path (cuBLAS int8 GEMM → int32 C → epilogue) bit for bit
// while C never goes to memory.
//
// Built for sm_90a only (cmake/cuda.cmake: wgmma and the sm_90a target); dec_igemm_epi refuses other
// devices with HARP_ERR_UNSUPPORTED and the callers keep the cuBLAS path.
//
// One CTA per 128 × BN tile of Y (rows × output channels; BN = 128, or 256 with dec_set_igemm_tile),
// three warpgroups: warpgroup 0's first thread is the producer, loading 128-byte-deep tiles of Q and W
// by the copy engine (TMA, 128-byte swizzle, the out-of-range parts zero-filled, so no shape needs
// padding) into a ring of stages<BN>() buffers guarded by full / empty mbarriers; warpgroups 1 and 2
// each own 64 rows of the tile and issue wgmma.m64nBNk32.s32.s8.s8 from shared memory, keeping one
// k-block of MMAs in flight, then apply the scales straight from the accumulator registers.
#include <cuda.h>
#include <cuda_runtime.h>
#include <cudaTypedefs.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/core.h"
#include "cuda/decode.h"
#include "cuda/env_switch.h"
}
#include "cuda/pdl.cuh"

namespace {

constexpr int kBM = 128, kBK = 128;   // kBK: int8 elements = bytes = one 128-byte swizzle row
// CX·10 + CY (igemm_wgmma_kernel); HARP_IGEMM_CLUSTER=1x1|2x1|1x2|2x2|1x4|2x4 for A/B. Measured (H100, batch 512,
// the Llama-2-7B shapes, the twenty-third session's clusters): 1x1 fastest; 2x1 / 1x2 2.1–3.4× slower, 2x2 up to
// 8× (docs/results/wakv.md). The clusters as rewritten in the twenty-fifth session have not run on a device yet.
constexpr int kDefaultCluster = 11;
constexpr int kThreads = 384;
constexpr int kATile = kBM * kBK;   // bytes of a Q tile; a W tile has BN × kBK (BN = 128 or 256 output channels)
// Ring stages: 5 × 32 KB at 128 × 128, 4 × 48 KB at 128 × 256 (both within the 227 KB of an SM).
template <int BN>
__host__ __device__ constexpr int stages() { return BN == 256 ? 4 : 5; }
template <int BN>
constexpr size_t smem_bytes() { return (size_t)stages<BN>() * (kATile + BN * kBK) + 2 * stages<BN>() * sizeof(uint64_t) + 1024; }

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define HARP_WGMMA 1
#endif

#ifdef HARP_WGMMA
__device__ __forceinline__ uint32_t saddr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void mbar_init(uint64_t *b, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(saddr(b)), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint64_t *b, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(saddr(b)), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t *b) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(saddr(b)) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t *b, uint32_t parity) {
    asm volatile(
        "{\n"
        ".reg .pred done;\n"
        "wait_%=:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra wait_%=;\n"
        "}\n" ::"r"(saddr(b)),
        "r"(parity)
        : "memory");
}
__device__ __forceinline__ void tma_load(void *dst, const CUtensorMap *map, int c0, int c1, uint64_t *bar) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];" ::"r"(saddr(dst)),
        "l"(map), "r"(c0), "r"(c1), "r"(saddr(bar))
        : "memory");
}

// Copy-engine load of a box into the same shared-memory offset of every CTA of the cluster in mask,
// each of whose barriers at bar's offset gets the bytes.
__device__ __forceinline__ void tma_load_mc(void *dst, const CUtensorMap *map, int c0, int c1, uint64_t *bar, uint16_t mask) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1, {%2, %3}], [%4], %5;" ::"r"(
            saddr(dst)),
        "l"(map), "r"(c0), "r"(c1), "r"(saddr(bar)), "h"(mask)
        : "memory");
}
// Arrival on the barrier at b's offset in cluster CTA `rank` (this CTA's own included). Plain arrive
// (release at CTA scope, the default): `.release.cluster` would fence every prior memory operation of
// the thread at cluster scope on each call.
__device__ __forceinline__ void mbar_arrive_cluster(uint64_t *b, uint32_t rank) {
    asm volatile(
        "{\n"
        ".reg .b32 remote;\n"
        "mapa.shared::cluster.u32 remote, %0, %1;\n"
        "mbarrier.arrive.shared::cluster.b64 _, [remote];\n"
        "}\n" ::"r"(saddr(b)),
        "r"(rank)
        : "memory");
}
__device__ __forceinline__ void cluster_sync() {
    asm volatile("barrier.cluster.arrive.release;\nbarrier.cluster.wait.acquire;" ::: "memory");
}
__device__ __forceinline__ uint32_t cluster_rank() {
    uint32_t v;
    asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(v));
    return v;
}

// Shared-memory matrix descriptor of a K-major tile with 128-byte swizzle: rows 128 bytes apart, groups
// of 8 rows 1 024 bytes apart (stride byte offset), the leading byte offset unused for this layout.
__device__ __forceinline__ uint64_t desc128(const void *p) {
    const uint64_t a = saddr(p);
    return ((a & 0x3FFFF) >> 4) | ((uint64_t)1 << 16) | ((uint64_t)(1024 >> 4) << 32) | ((uint64_t)1 << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory");
}

// D (64 × 128 int32, 64 registers per thread) = A (64 × 32 s8) · B (128 × 32 s8)ᵀ + (acc ? D : 0).
__device__ __forceinline__ void wgmma_s8(int (&d)[64], uint64_t da, uint64_t db, int acc) {
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "setp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
        "%64, %65, p;\n"
        "}\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]), "+r"(d[9]),
          "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]), "+r"(d[18]),
          "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]),
          "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]), "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]),
          "+r"(d[37]), "+r"(d[38]), "+r"(d[39]), "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]),
          "+r"(d[46]), "+r"(d[47]), "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]),
          "+r"(d[55]), "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63])
        : "l"(da), "l"(db), "r"(acc)
        : "memory");
}
// D (64 × 256 int32, 128 registers per thread) = A (64 × 32 s8) · B (256 × 32 s8)ᵀ + (acc ? D : 0): the
// 128 × 256 tiles, where a warpgroup reads its A rows once per 256 output channels instead of per 128.
__device__ __forceinline__ void wgmma_s8(int (&d)[128], uint64_t da, uint64_t db, int acc) {
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "setp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k32.s32.s8.s8 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
        "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
        "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
        "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
        "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, "
        "%128, %129, p;\n"
        "}\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]),
          "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]),
          "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]),
          "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]), "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]),
          "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]), "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]),
          "+r"(d[45]), "+r"(d[46]), "+r"(d[47]), "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]),
          "+r"(d[54]), "+r"(d[55]), "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]),
          "+r"(d[63]), "+r"(d[64]), "+r"(d[65]), "+r"(d[66]), "+r"(d[67]), "+r"(d[68]), "+r"(d[69]), "+r"(d[70]), "+r"(d[71]),
          "+r"(d[72]), "+r"(d[73]), "+r"(d[74]), "+r"(d[75]), "+r"(d[76]), "+r"(d[77]), "+r"(d[78]), "+r"(d[79]), "+r"(d[80]),
          "+r"(d[81]), "+r"(d[82]), "+r"(d[83]), "+r"(d[84]), "+r"(d[85]), "+r"(d[86]), "+r"(d[87]), "+r"(d[88]), "+r"(d[89]),
          "+r"(d[90]), "+r"(d[91]), "+r"(d[92]), "+r"(d[93]), "+r"(d[94]), "+r"(d[95]), "+r"(d[96]), "+r"(d[97]), "+r"(d[98]),
          "+r"(d[99]), "+r"(d[100]), "+r"(d[101]), "+r"(d[102]), "+r"(d[103]), "+r"(d[104]), "+r"(d[105]), "+r"(d[106]), "+r"(d[107]),
          "+r"(d[108]), "+r"(d[109]), "+r"(d[110]), "+r"(d[111]), "+r"(d[112]), "+r"(d[113]), "+r"(d[114]), "+r"(d[115]), "+r"(d[116]),
          "+r"(d[117]), "+r"(d[118]), "+r"(d[119]), "+r"(d[120]), "+r"(d[121]), "+r"(d[122]), "+r"(d[123]), "+r"(d[124]), "+r"(d[125]),
          "+r"(d[126]), "+r"(d[127])
        : "l"(da), "l"(db), "r"(acc)
        : "memory");
}
// Keeps the compiler from moving accumulator registers across the asynchronous MMAs (a non-wgmma
// instruction writing them while MMAs are in flight makes ptxas serialize every wgmma, warning C7515).
template <int N>
__device__ __forceinline__ void fence_acc(int (&d)[N]) {
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+r"(d[i])::"memory");
}
// Hands registers from the producer warpgroup (one thread of it issues the loads) to the two consumer
// warpgroups, whose 128 × 256 tiles hold 128 accumulators a thread: 128 · 40 + 256 · 232 = 64 512, the
// 168 × 384 the CTA is launched with (__launch_bounds__(384, 1)).
template <int N>
__device__ __forceinline__ void regs_dec() {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(N));
}
template <int N>
__device__ __forceinline__ void regs_inc() {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(N));
}
#endif

// CX × CY CTAs per cluster (CX along the output channels, CY along the rows; a 1-D cluster, rank = cx +
// cy·CX): the CX CTAs of a cluster row share their Q tile and the CY of a cluster column their W tile,
// so each loads 1/CX of its Q tile and 1/CY of its W tile and multicasts it to the others — a CTA reads
// 1/CX + 1/CY of its operands from L2 instead of both (at 128 × 128 tiles and one tile per
// multiprocessor the operand feed from L2, 32 KB per 128-deep k-block, is what limits the kernel). A
// stage is free for a producer once the consumers of every CTA it writes into have released it: each
// consumer warp arrives on the empty barrier of each CTA that writes into its own (its cluster row and
// column, one lane each).
//
// Which tiles a cluster takes: a cluster covers a super-tile of CY × CX tiles; with one cluster per
// super-tile (persist = 0) the cluster's index gives it, with persist the grid holds at most as many
// clusters as can be resident and each loops over every (clusters)-th super-tile, so the ring runs on
// across tiles and the next tile's loads overlap this one's epilogue. Super-tiles are numbered with the
// row direction fastest (rows_first) or the output-channel direction fastest: the multiprocessors start
// CTAs in the order of their index, so with rows first the few row tiles of one W tile run at the same
// time and W goes through L2 once; with channels first a W larger than L2 is read once per row tile.
template <int CX, int CY, int BN>
__global__ void __launch_bounds__(kThreads, 1)
    igemm_wgmma_kernel(const __grid_constant__ CUtensorMap tq, const __grid_constant__ CUtensorMap tw, int rows, int m, int kblocks,
                       const float *__restrict__ sa, const float *__restrict__ sw, const int32_t *__restrict__ corr,
                       const int32_t *__restrict__ rs, float *__restrict__ Y, int ldy, int rows_first, int persist) {
#ifdef HARP_WGMMA
    extern __shared__ uint8_t smem_raw[];
    // the 128-byte swizzle repeats every 1 024 bytes and is applied to absolute addresses: align the ring
    uint8_t *smem = (uint8_t *)(((uintptr_t)smem_raw + 1023) & ~(uintptr_t)1023);
    constexpr int kStages = stages<BN>(), kBTile = BN * kBK;
    uint8_t *sA = smem, *sB = smem + (size_t)kStages * kATile;
    uint64_t *full = (uint64_t *)(sB + (size_t)kStages * kBTile), *empty = full + kStages;
    const int wg = threadIdx.x / 128, t = threadIdx.x % 128;
    constexpr int kCl = CX * CY, kPeers = CX + CY - 1;   // CTAs writing into this one's ring, itself included
    const int rank = kCl > 1 ? (int)cluster_rank() : 0, cx = rank % CX, cy = rank / CX;
    const int ntj = (m + BN - 1) / BN, ntr = (rows + kBM - 1) / kBM;
    const int nsj = (ntj + CX - 1) / CX, nsr = (ntr + CY - 1) / CY;   // super-tiles
    const int ncl = (int)gridDim.x / kCl, cid = (int)blockIdx.x / kCl;
    const int lin0 = cid, lend = persist ? nsj * nsr : cid + 1, lstep = persist ? ncl : 1;
    auto tile_at = [&](int lin, int &j0, int &r0) {
        const int sj = rows_first ? lin / nsr : lin % nsj, sr = rows_first ? lin % nsr : lin / nsj;
        j0 = (sj * CX + cx) * BN, r0 = (sr * CY + cy) * kBM;   // beyond m / rows: zeros loaded, nothing stored
    };
    if (threadIdx.x == 0) {
        for (int s = 0; s < kStages; s++) mbar_init(&full[s], 1), mbar_init(&empty[s], 8 * kPeers);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        // the descriptors are kernel parameters no kernel writes: fetched before the wait below
        asm volatile("prefetch.tensormap [%0];" ::"l"(&tq) : "memory");
        asm volatile("prefetch.tensormap [%0];" ::"l"(&tw) : "memory");
    }
    if (kCl > 1) cluster_sync();   // every CTA's barriers exist before anyone loads into or arrives on them
    else __syncthreads();
    // Launched with programmatic dependent launch (launch_cfg): the set-up above ran beside the kernel
    // before; Q, the scales and Y are touched only after it has finished. Trigger at once: the next
    // kernel's CTAs take multiprocessors as this grid's leave (each waits for the whole grid before it
    // reads), so the launch gap and its set-up overlap this kernel's tail.
    pdl_wait();
    pdl_trigger();
    // `it` counts k-blocks over all of this CTA's tiles: ring stage it % kStages, its use it / kStages
    if (wg == 0) {
        if (BN == 256) regs_dec<40>();
        if (t == 0) {
            uint16_t mq = 0, mw = 0;   // the CTAs of this cluster row (sharing Q) and column (sharing W)
            for (int i = 0; i < CX; i++) mq |= (uint16_t)(1u << (i + cy * CX));
            for (int i = 0; i < CY; i++) mw |= (uint16_t)(1u << (cx + i * CX));
            int it = 0;
            for (int lin = lin0; lin < lend; lin += lstep) {
                int j0, r0;
                tile_at(lin, j0, r0);
                for (int kb = 0; kb < kblocks; kb++, it++) {
                    const int s = it % kStages;
                    if (it >= kStages) mbar_wait(&empty[s], ((it / kStages) & 1) ^ 1);
                    mbar_expect_tx(&full[s], kATile + kBTile);
                    uint8_t *qa = sA + (size_t)s * kATile + cx * (kBM / CX) * kBK, *wb = sB + (size_t)s * kBTile + cy * (BN / CY) * kBK;
                    if (CX > 1) tma_load_mc(qa, &tq, kb * kBK, r0 + cx * (kBM / CX), &full[s], mq);
                    else tma_load(qa, &tq, kb * kBK, r0, &full[s]);
                    if (CY > 1) tma_load_mc(wb, &tw, kb * kBK, j0 + cy * (BN / CY), &full[s], mw);
                    else tma_load(wb, &tw, kb * kBK, j0, &full[s]);
                }
            }
        }
        if (kCl > 1) cluster_sync();   // matches the consumers' final one: no CTA leaves while others still write into it
        return;
    }
    const int c = wg - 1;   // this warpgroup's 64 rows of the tile
    if (BN == 256) regs_inc<232>();
    // The cluster rank lane l of a warp releases a stage to: its cluster row, then the rest of its column.
    int peer = 0;
    if (kCl > 1) {
        const int l = t % 32;
        if (l < CX) peer = l + cy * CX;
        else if (l < kPeers) {
            const int i = l - CX;
            peer = cx + (i + (i >= cy)) * CX;
        }
    }
    // A consumer warp hands ring stage s back to every producer that writes into it.
    auto release = [&](int s) {
        if (kCl == 1) {
            if (t % 32 == 0) mbar_arrive(&empty[s]);
        } else if (t % 32 < kPeers)
            mbar_arrive_cluster(&empty[s], (uint32_t)peer);
    };
    const bool pair = !(ldy & 1) && !((uintptr_t)Y & 7);   // j is even: (Y + r·ldy + j) is 8-byte aligned
    int d[BN / 2];   // written first by each tile's MMA with accumulation off (no zeroing instructions: see fence_acc)
    int it = 0;
    for (int lin = lin0; lin < lend; lin += lstep) {
        int j0, r0;
        tile_at(lin, j0, r0);
        for (int kb = 0; kb < kblocks; kb++, it++) {
            const int s = it % kStages;
            mbar_wait(&full[s], (it / kStages) & 1);
            const uint8_t *a = sA + (size_t)s * kATile + c * 64 * kBK, *b = sB + (size_t)s * kBTile;
            fence_acc(d);
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < kBK / 32; kk++) wgmma_s8(d, desc128(a + 32 * kk), desc128(b + 32 * kk), kb > 0 || kk > 0);
            wgmma_commit();
            fence_acc(d);
            // the previous k-block's MMAs are done once at most this one is pending: its buffer is free
            // (wait_group is per warp, so each warp releases for itself)
            wgmma_wait<1>();
            if (kb > 0) release((it - 1) % kStages);
        }
        wgmma_wait<0>();
        fence_acc(d);
        release((it - 1) % kStages);   // the tile's last stage, for the next tile's loads
        // accumulator layout: warp w of the warpgroup holds rows 16w + lane/4 (+8); register 4i + {0, 1}
        // columns 8i + 2(lane%4) + {0, 1} of the first row, 4i + {2, 3} the same columns of the second
        const int w = t / 32, l = t % 32;
        const int ra = r0 + c * 64 + 16 * w + l / 4, rb = ra + 8;
        const float sra = ra < rows ? sa[ra] : 0.0f, srb = rb < rows ? sa[rb] : 0.0f;
        const int ca = corr && ra < rows ? corr[ra] : 0, cb = corr && rb < rows ? corr[rb] : 0;
        float *ya = Y + (size_t)ra * ldy, *yb = Y + (size_t)rb * ldy;
#pragma unroll
        for (int i = 0; i < BN / 8; i++) {
            const int j = j0 + 8 * i + 2 * (l % 4);
            float va[2], vb[2];
#pragma unroll
            for (int u = 0; u < 2; u++) {
                const float wj = j + u < m ? sw[j + u] : 0.0f;
                const int rj = corr && j + u < m ? rs[j + u] : 0;   // the zero-point term, exact in int32 (decode.h, dec_aq_int8)
                va[u] = __fmul_rn(__fmul_rn((float)(d[4 * i + u] + ca * rj), sra), wj);
                vb[u] = __fmul_rn(__fmul_rn((float)(d[4 * i + 2 + u] + cb * rj), srb), wj);
            }
            // a lane's two columns in one 8-byte store where they are aligned: a warp's store then fills
            // whole 32-byte sectors instead of every other 4 bytes of them
            if (pair && j + 1 < m) {
                if (ra < rows) *(float2 *)(ya + j) = make_float2(va[0], va[1]);
                if (rb < rows) *(float2 *)(yb + j) = make_float2(vb[0], vb[1]);
            } else {
#pragma unroll
                for (int u = 0; u < 2; u++)
                    if (j + u < m) {
                        if (ra < rows) ya[j + u] = va[u];
                        if (rb < rows) yb[j + u] = vb[u];
                    }
            }
        }
    }
    if (kCl > 1) cluster_sync();
#else
    (void)tq, (void)tw, (void)rows, (void)m, (void)kblocks, (void)sa, (void)sw, (void)corr, (void)rs, (void)Y, (void)ldy, (void)rows_first, (void)persist;
#endif
}

PFN_cuTensorMapEncodeTiled_v12000 g_encode;
int g_state;   // 0 not looked up, 1 usable (sm_90 device, encoder found), -1 not usable
int g_cluster = -1;   // CX·10 + CY of the launches (dec_set_igemm_cluster; -1: not read yet)
int g_raster = -1;    // 1 row tiles fastest, 0 channel tiles fastest (dec_set_igemm_raster; -1: not read yet)
int g_persist = -1;   // 1 one CTA per multiprocessor looping over tiles (dec_set_igemm_persistent; -1: not read yet)
int g_tile = -1;      // 0: 128 × 128 tiles, 1: 128 × 256 (dec_set_igemm_tile; -1: not read yet)
int g_persist_ctas;   // at most this many CTAs when persistent (0: the multiprocessor count)
int g_sms;            // multiprocessors of the device (0: not read yet)

int sm_count() {
    int n = __atomic_load_n(&g_sms, __ATOMIC_RELAXED);
    if (!n) {
        int dev = 0;
        if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n < 1)
            n = 1;
        cudaGetLastError();
        __atomic_store_n(&g_sms, n, __ATOMIC_RELAXED);
    }
    return n;
}

template <int CX, int CY, int BN>
bool allow_smem() {
    return cudaFuncSetAttribute(igemm_wgmma_kernel<CX, CY, BN>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem_bytes<BN>()) ==
           cudaSuccess;
}

// The cluster shapes instantiated, as CX·10 + CY, and the one dispatch from such a code to a template
// argument (f gets a Shape<CX, CY>).
constexpr int kShapes[] = {11, 21, 12, 22, 14, 24};
template <int X, int Y>
struct Shape {
    static constexpr int CX = X, CY = Y;
};
template <class F>
auto by_shape(int c, F &&f) {
    switch (c) {
    case 11: return f(Shape<1, 1>{});
    case 21: return f(Shape<2, 1>{});
    case 12: return f(Shape<1, 2>{});
    case 22: return f(Shape<2, 2>{});
    case 14: return f(Shape<1, 4>{});
    default: return f(Shape<2, 4>{});
    }
}
bool cluster_ok(int cx, int cy) {
    for (int c : kShapes)
        if (c == cx * 10 + cy) return true;
    return false;
}

template <int BN>
bool allow_smem_all() {
    for (int c : kShapes)
        if (!by_shape(c, [](auto sh) { return allow_smem<decltype(sh)::CX, decltype(sh)::CY, BN>(); })) return false;
    return true;
}

bool usable() {
    int st = __atomic_load_n(&g_state, __ATOMIC_ACQUIRE);
    if (st) return st > 0;
    int dev = 0, major = 0, minor = 0;
    void *fn = nullptr;
    cudaDriverEntryPointQueryResult q;
    st = cudaGetDevice(&dev) == cudaSuccess && cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
                 cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess && major == 9 && minor == 0 &&
                 cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q) == cudaSuccess &&
                 q == cudaDriverEntryPointSuccess && fn && allow_smem_all<128>() && allow_smem_all<256>()
             ? 1
             : -1;
    cudaGetLastError();
    if (st > 0) g_encode = (PFN_cuTensorMapEncodeTiled_v12000)fn;
    __atomic_store_n(&g_state, st, __ATOMIC_RELEASE);
    return st > 0;
}

int cluster_shape() {
    int c = __atomic_load_n(&g_cluster, __ATOMIC_ACQUIRE);
    if (c < 0) {
        const char *e = getenv("HARP_IGEMM_CLUSTER");
        c = e && strlen(e) == 3 && e[1] == 'x' && cluster_ok(e[0] - '0', e[2] - '0') ? (e[0] - '0') * 10 + (e[2] - '0') : kDefaultCluster;
        __atomic_store_n(&g_cluster, c, __ATOMIC_RELEASE);
    }
    return c;
}

// Row tiles fastest unless HARP_IGEMM_RASTER=cols (the order before the twenty-fourth session, for A/B).
int raster() {
    static const char *const kCols[] = {"cols"};
    return harp_env_choice(&g_raster, "HARP_IGEMM_RASTER", kCols, 1, 1);
}
// Persistent unless HARP_IGEMM_PERSIST=0 (H100, batch 512: equal at one wave, 2-3.5 % faster beyond).
int persistent() {
    static const char *const kOff[] = {"0"};
    return harp_env_choice(&g_persist, "HARP_IGEMM_PERSIST", kOff, 1, 1);
}

// Output channels a tile: 128 unless HARP_IGEMM_TILE=256 (an A/B until it has been measured).
int tile_n() {
    static const char *const kTiles[] = {"128", "256"};
    return harp_env_choice(&g_tile, "HARP_IGEMM_TILE", kTiles, 2, 0) ? 256 : 128;
}

// A 2-D int8 tensor [outer][ld] whose first `inner` columns are read, as boxes of box_rows × 128 bytes.
bool tile_map(CUtensorMap *map, const int8_t *p, int inner, int outer, int ld, int box_rows) {
    const cuuint64_t dims[2] = {(cuuint64_t)inner, (cuuint64_t)outer}, strides[1] = {(cuuint64_t)ld};
    const cuuint32_t box[2] = {(cuuint32_t)kBK, (cuuint32_t)box_rows}, estr[2] = {1, 1};
    return g_encode(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, (void *)p, dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
                    CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// The launch configuration of a grid of clusters of ncta CTAs with smem bytes of dynamic shared memory
// (at: room for its two attributes, the cluster shape and, on a stream with dec_pdl() on, programmatic
// dependent launch as pdl_launch sets it).
cudaLaunchConfig_t launch_cfg(int ncta, size_t smem, cudaLaunchAttribute *at, cudaStream_t st) {
    cudaLaunchConfig_t cfg = {};
    cfg.blockDim = dim3(kThreads), cfg.dynamicSmemBytes = smem, cfg.stream = st, cfg.gridDim = dim3(ncta);
    cfg.attrs = at, cfg.numAttrs = 0;
    if (ncta > 1) {
        at[cfg.numAttrs].id = cudaLaunchAttributeClusterDimension;
        at[cfg.numAttrs].val.clusterDim.x = ncta, at[cfg.numAttrs].val.clusterDim.y = 1, at[cfg.numAttrs].val.clusterDim.z = 1;
        cfg.numAttrs++;
    }
    if (st && dec_pdl()) {
        at[cfg.numAttrs].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at[cfg.numAttrs].val.programmaticStreamSerializationAllowed = 1;
        cfg.numAttrs++;
    }
    return cfg;
}

int g_resident[200];   // clusters of shape CX·10 + CY (+ 100 for 256-wide tiles) that fit at once (0: not asked yet)

// How many clusters of CX × CY CTAs can be resident at once (cudaOccupancyMaxActiveClusters; a cluster
// needs CX·CY free multiprocessors of one GPC, so this can be below sm_count / (CX·CY)).
template <int CX, int CY, int BN>
int resident_clusters() {
    int *slot = &g_resident[CX * 10 + CY + (BN == 256 ? 100 : 0)];
    int n = __atomic_load_n(slot, __ATOMIC_RELAXED);
    if (!n) {
        cudaLaunchAttribute at[2];
        const cudaLaunchConfig_t cfg = launch_cfg(CX * CY, smem_bytes<BN>(), at, nullptr);
        if (CX * CY == 1) n = sm_count();
        else if (cudaOccupancyMaxActiveClusters(&n, igemm_wgmma_kernel<CX, CY, BN>, &cfg) != cudaSuccess || n < 1) n = sm_count() / (CX * CY);
        cudaGetLastError();
        if (n < 1) n = 1;
        __atomic_store_n(slot, n, __ATOMIC_RELAXED);
    }
    return n;
}

template <int CX, int CY, int BN>
cudaError_t launch(const CUtensorMap &tq, const CUtensorMap &tw, int rows, int m, int kblocks, const float *sa, const float *sw,
                   const int32_t *corr, const int32_t *rs, float *Y, int ldy, cudaStream_t st) {
    // one cluster per super-tile of CY × CX tiles (the tiles beyond rows / m load zeros and store nothing),
    // or with persist at most the clusters that fit at once (or max_ctas CTAs), each looping
    constexpr int kCl = CX * CY;
    const int ntj = (m + BN - 1) / BN, ntr = (rows + kBM - 1) / kBM;
    const int supers = (ntj + CX - 1) / CX * ((ntr + CY - 1) / CY);
    cudaLaunchAttribute at[2];
    cudaLaunchConfig_t cfg = launch_cfg(kCl, smem_bytes<BN>(), at, st);
    const int persist = persistent();
    int ncl = supers;
    if (persist) {
        const int ctas = __atomic_load_n(&g_persist_ctas, __ATOMIC_RELAXED), res = resident_clusters<CX, CY, BN>();
        const int cap = ctas > 0 ? (ctas / kCl > 0 ? ctas / kCl : 1) : 0;
        const int n = cap > 0 && cap < res ? cap : res;
        if (n < ncl) ncl = n;
    }
    cfg.gridDim = dim3(ncl * kCl);
    return cudaLaunchKernelEx(&cfg, igemm_wgmma_kernel<CX, CY, BN>, tq, tw, rows, m, kblocks, sa, sw, corr, rs, Y, ldy, raster(), persist);
}

}  // namespace

extern "C" int dec_igemm_epi_available(void) { return usable(); }

// Measured (H100, batch 512, docs/results/wakv.md, twenty-fourth session): with the row tiles first
// and persistent CTAs faster than cuBLAS + dec_iepi at every Llama-2-7B shape (12 288 × 4 096: 69.1
// against 74.8 µs; 22 016 × 4 096: 136.8 against 168.1 µs; 4 096 × 11 008: 46.6 against 72.4 µs); the
// one-wave rule of the twenty-third session came from the channel-first order, which read W once per
// row tile.
extern "C" int dec_igemm_epi_pays(int rows, int m) {
    (void)m;
    return usable() && rows >= DEC_IGEMM_EPI_MIN_ROWS;
}

extern "C" int dec_igemm_cluster_ok(int cx, int cy) { return cluster_ok(cx, cy); }

extern "C" void dec_set_igemm_cluster(int cx, int cy) {
    if (cluster_ok(cx, cy)) __atomic_store_n(&g_cluster, cx * 10 + cy, __ATOMIC_RELEASE);
    else if (!cx && !cy) __atomic_store_n(&g_cluster, -1, __ATOMIC_RELEASE);   // back to the default / environment
}

extern "C" int dec_igemm_resident_clusters(int cx, int cy) {
    if (!usable() || !cluster_ok(cx, cy)) return 0;
    const bool wide = tile_n() == 256;
    return by_shape(cx * 10 + cy, [&](auto sh) {
        using S = decltype(sh);
        return wide ? resident_clusters<S::CX, S::CY, 256>() : resident_clusters<S::CX, S::CY, 128>();
    });
}

extern "C" void dec_set_igemm_tile(int n) { __atomic_store_n(&g_tile, n == 128 ? 0 : n == 256 ? 1 : -1, __ATOMIC_RELEASE); }
extern "C" int dec_igemm_tile(void) { return tile_n(); }

extern "C" void dec_set_igemm_raster(int rows_first) {
    __atomic_store_n(&g_raster, rows_first < 0 ? -1 : rows_first ? 1 : 0, __ATOMIC_RELEASE);
}

extern "C" void dec_set_igemm_persistent(int on, int max_ctas) {
    __atomic_store_n(&g_persist_ctas, max_ctas > 0 ? max_ctas : 0, __ATOMIC_RELAXED);
    __atomic_store_n(&g_persist, on < 0 ? -1 : on ? 1 : 0, __ATOMIC_RELEASE);
}

extern "C" harp_status dec_igemm_epi(const int8_t *Q, int ldq, int rows, const int8_t *W, int ldw, int m, int kpad, const float *sa,
                                     const float *sw, const int32_t *corr, const int32_t *rs, float *Y, int ldy, dec_stream stream) {
    if (!corr != !rs) return harp_err(HARP_ERR_INVALID_ARG, "cuda int8 gemm (fused): a correction needs both corr and rs");
    if (!usable()) return harp_err(HARP_ERR_UNSUPPORTED, "cuda int8 gemm: the fused kernel needs an sm_90 device (Hopper)");
    if (rows < 1 || m < 1 || kpad < 16 || kpad % 16 || ldq < kpad || ldq % 16 || ldw < kpad || ldw % 16 || ldy < m ||
        (uintptr_t)Q % 16 || (uintptr_t)W % 16)
        return harp_err(HARP_ERR_SHAPE, "cuda int8 gemm (fused): rows %d, m %d, kpad %d, ldq %d, ldw %d, ldy %d (kpad and the leading "
                                        "dimensions multiples of 16, operands 16-byte aligned)", rows, m, kpad, ldq, ldw, ldy);
    const int c = cluster_shape(), cx = c / 10, cy = c % 10, bn = tile_n();
    CUtensorMap tq, tw;
    if (!tile_map(&tq, Q, kpad, rows, ldq, kBM / cx) || !tile_map(&tw, W, kpad, m, ldw, bn / cy))
        return harp_err(HARP_ERR_NO_DEVICE, "cuda int8 gemm (fused): cuTensorMapEncodeTiled refused rows %d, m %d, kpad %d", rows, m, kpad);
    const int kb = (kpad + kBK - 1) / kBK;
    cudaStream_t st = (cudaStream_t)stream;
    const cudaError_t e = by_shape(c, [&](auto sh) {
        using S = decltype(sh);
        return bn == 256 ? launch<S::CX, S::CY, 256>(tq, tw, rows, m, kb, sa, sw, corr, rs, Y, ldy, st)
                         : launch<S::CX, S::CY, 128>(tq, tw, rows, m, kb, sa, sw, corr, rs, Y, ldy, st);
    });
    return e == cudaSuccess ? HARP_OK : harp_err(HARP_ERR_NO_DEVICE, "cuda int8 gemm (fused): %s", cudaGetErrorString(e));
}
