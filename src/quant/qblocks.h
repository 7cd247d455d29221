/* Block and word layouts of the quant types, shared by the C kernels and the CUDA kernels (this
 * header compiles as C11 and as CUDA C++). A layout change here is a format change: the static
 * asserts pin every size a kernel relies on. Bit-level description: docs/format/e8p.md and
 * docs/format/qmodel.md. */
#ifndef HARP_QUANT_QBLOCKS_H
#define HARP_QUANT_QBLOCKS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define QB_STATIC_ASSERT static_assert
#else
#define QB_STATIC_ASSERT _Static_assert
#endif
#ifdef __CUDACC__
#define QB_INLINE static inline __host__ __device__
#else
#define QB_INLINE static inline
#endif

/* ---- E8P12 code word (e8p2, and the first stage of rvq3 / rvq4): 2 bits per weight ---------------
 * One uint16 per 8 consecutive input columns: bits 15..8 = index a of the 256-entry abs grid,
 * bits 7..0 = sign byte b. Coordinate i = ±A[a]_σ(i) with the sign from bit σ(i) of b ^ parity(b),
 * plus +¼ (parity(b) = 0) or −¼ (algorithms.md §5.2.1). Codes run along a row, ceil(n/8) per row;
 * columns ≥ n of the last code are padding (kernels read x as 0 there). */
typedef uint16_t harp_e8p_code;
#define HARP_E8P_BLOCK 8                       /* weights per code */
#define HARP_E8P_ABS(code) ((unsigned)(code) >> 8)
#define HARP_E8P_SIGNS(code) ((unsigned)(code) & 255u)
QB_STATIC_ASSERT(sizeof(harp_e8p_code) * 8 == 2 * HARP_E8P_BLOCK, "E8P12: 16 bits per 8 weights = 2 bits per weight");

/* ---- E81B residual code (second stage of rvq3): 1 bit per weight --------------------------------
 * One uint8 per 8 columns, an index into the 256-entry E81B table (index 56 = origin). */
typedef uint8_t harp_e81b_code;
QB_STATIC_ASSERT(sizeof(harp_e81b_code) * 8 == 1 * HARP_E8P_BLOCK, "E81B: 8 bits per 8 weights = 1 bit per weight");

QB_INLINE int32_t harp_e8p_ncode(int64_t n) { return (int32_t)((n + HARP_E8P_BLOCK - 1) / HARP_E8P_BLOCK); }

/* Non-owning view of an e8p2 / rvq3 / rvq4 tensor that the decode kernels (CPU and CUDA) read:
 *   W̃[r][8k + i] = scale0 · E8P(codes0[r·ncode + k])_i + scale1 · R(codes1[r·ncode + k])_i
 * with R = E81B (rvq3, uint8 codes) or E8P12 (rvq4, uint16 codes), absent for e8p2. Derived from a
 * harp_qtensor on each call; it owns nothing. */
typedef struct harp_e8p_view {
    int32_t type;              /* HARP_QTYPE_E8P2 / RVQ3 / RVQ4 */
    int32_t m, n;
    int32_t ncode;             /* ceil(n / 8) */
    float scale0, scale1;
    const uint16_t *codes0;    /* [m][ncode] */
    const void *codes1;        /* rvq4: uint16 [m][ncode]; rvq3: uint8 [m][ncode]; e8p2: NULL */
} harp_e8p_view;
QB_STATIC_ASSERT(offsetof(harp_e8p_view, scale0) == 16, "harp_e8p_view layout is shared with CUDA code");
QB_STATIC_ASSERT(offsetof(harp_e8p_view, codes0) == 24, "harp_e8p_view layout is shared with CUDA code");
QB_STATIC_ASSERT(sizeof(harp_e8p_view) == 24 + 2 * sizeof(void *), "harp_e8p_view has no hidden padding");

/* ---- QuIP#'s CUDA word layout (algorithms.md §5.2.3; e8p_pack_gpu in e8p_pack.c) -----------------
 * A permutation of the row-major codes, rows padded to 16 and code columns to 8 with code 0. One
 * 64-bit word holds 4 codes = 2 rows × 2 consecutive codes: slot i = r%2 + 2·(k%2); low 32 bits: byte
 * i = abs index of slot i; high 32 bits: bit 4j + i = sign bit j of slot i. */
#define HARP_E8P_GPU_TILE_ROWS 16
#define HARP_E8P_GPU_TILE_CODES 8
#define HARP_E8P_GPU_SLOTS 4
QB_STATIC_ASSERT(HARP_E8P_GPU_SLOTS * 8 + HARP_E8P_GPU_SLOTS * 8 == 64, "4 abs bytes + 4 x 8 sign bits fill one word");
QB_STATIC_ASSERT(HARP_E8P_GPU_TILE_ROWS * HARP_E8P_GPU_TILE_CODES % HARP_E8P_GPU_SLOTS == 0, "whole words per tile");

/* Word index of code (r, k); nc8 = code columns rounded up to 8. */
QB_INLINE size_t harp_e8p_gpu_word(int32_t r, int32_t k, int32_t nc8) {
    return (((size_t)(r / 16) * (size_t)(nc8 / 8) + (size_t)(k / 8)) * 8 + (size_t)((r % 16) / 2)) * 4 +
           (size_t)((k % 8) / 2);
}
QB_INLINE unsigned harp_e8p_gpu_slot(int32_t r, int32_t k) { return (unsigned)(r % 2 + 2 * (k % 2)); }

/* ---- scalar types (int2 / int3 / int4 / int8): bit-packed rows -----------------------------------
 * Row r of the qweight plane is ceil(n·bits/8) bytes; code c occupies bits [c·bits, (c+1)·bits)
 * of the row, LSB first (a 3-bit code may straddle two bytes). w = scale[r][G] · (q − zero[r][G]). */
QB_INLINE int64_t harp_scalar_row_bytes(int64_t n, int bits) { return (n * bits + 7) / 8; }

QB_INLINE unsigned harp_scalar_get(const uint8_t *row, int64_t c, int bits) {
    const int64_t b0 = c * bits;
    /* two bytes cover any code of ≤ 8 bits; the second is read only when the code straddles */
    unsigned v = row[b0 >> 3];
    if ((b0 & 7) + bits > 8) v |= (unsigned)row[(b0 >> 3) + 1] << 8;
    return (v >> (b0 & 7)) & ((1u << bits) - 1u);
}

/* ORs code v into a zeroed row. */
QB_INLINE void harp_scalar_put(uint8_t *row, int64_t c, int bits, unsigned v) {
    const int64_t b0 = c * bits;
    for (int b = 0; b < bits; b++)
        if (v >> b & 1u) row[(b0 + b) >> 3] |= (uint8_t)(1u << ((b0 + b) & 7));
}

#endif
