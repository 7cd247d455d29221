/* Device layouts of the packed weights for the GPU decode kernels, shared by C (packing, reference
 * twins, tests) and CUDA (src/cuda/dec_*.cu). src/quant/qblocks.h does not exist yet; when it does,
 * these definitions move there. Every layout is a permutation of the stored planes (docs/format/
 * qmodel.md) at the stored bit width: nothing is densified, only rows and columns are padded.
 *
 * Tiles. W (m × n, rotated basis) is cut into tiles of 16 rows × 128 columns: nrt = ceil(m/16) row
 * tiles, nst = ceil(n/128) column super-tiles, npad = 128·nst. A tile is read by one warp: lane
 * l = 4g + t (g = l/4 ∈ [0,8), t = l%4) owns 8 "units" of 8 consecutive columns each,
 *     unit k ∈ [0,8): row 16·rt + g + 8·(k & 1), columns 128·st + 8·(t + 4·(k >> 1)) + [0, 8),
 * which is exactly the A fragment of two mma.m16n8k16 (rows g, g+8; k-slots permuted so that lane
 * t's four k-slots are four consecutive columns of its unit; the B fragment is permuted the same
 * way). Each plane stores, per tile, 32 lane chunks of L bytes, cut into 16-byte pieces and
 * interleaved by lane so that every 16-byte load of a warp reads 512 contiguous bytes: piece i of the
 * chunk (rt, st, lane) is at byte (((rt·nst + st)·(L/16) + i)·32 + lane)·16 (L = 8: one 8-byte piece
 * at ((rt·nst + st)·32 + lane)·8).
 * Padding rows decode to 0 (E8P/RVQ: code 0 is padding but its value is never used because the
 * output row is dropped); padding columns hold code 0 / q = zero, and the activation buffer must
 * hold zeros there (the kernels never test column bounds).
 *
 * Per-lane chunks (L bytes), value v ∈ [0,8) of unit k:
 *   E8P   (16): two 64-bit words, word w holds units 4w..4w+3 as slots i = k − 4w; low 32 bits:
 *               byte i = abs index a (code >> 8); high 32 bits: bit 4j + i = bit j of the sign
 *               byte b (code & 255) — QuIP#'s in-word interleave (algorithms.md §7.1).
 *   E81B   (8): byte k = E81B index of unit k (RVQ3 second plane).
 *   INT2  (16): u32 w = units 2w, 2w+1: q of (k, v) at bits 2·(v/2 + 4·(k & 1)) + 16·(v & 1).
 *   INT3  (16 + 8): plane 0 = INT2 layout of q & 3; plane 1: u32 w = units 4w..4w+3, bit
 *               (v/2 + 4·(k & 3)) + 16·(v & 1) = q >> 2.
 *   INT4  (32): u32 k = unit k: q of v at bits 4·(v/2) + 16·(v & 1).
 *   INT8  (64): u32 2k + h = values 4h..4h+3 of unit k: q of v at bits 8·((v/2) & 1) + 16·(v & 1).
 *   F16  (128): unit k = 8 halves in column order.
 * In every integer layout a "pair" (values 2p, 2p+1 of a unit) sits at bit offsets o and o + 16 of
 * one u32, so one mask + OR with the fp16 exponent 0x6400 gives the pair as fp16 (1024 + q).
 * Scalar formats carry a meta plane: per tile (rt, st) one dl_meta_tile (scales and zeros of the
 * 16 rows for that 128-column group; the stored group size must be 128, a multiple of 128, or the
 * whole row).
 *
 * The decode helpers below are plain C (host and device): the kernels call the same functions the
 * CPU tests check against the format's reference decoders, so a layout or bit-trick error cannot
 * pass the CPU tests. */
#ifndef HARP_CUDA_DECODE_LAYOUT_H
#define HARP_CUDA_DECODE_LAYOUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "harp/qtype.h"

#ifdef __CUDACC__
#define DL_FN static inline __host__ __device__
#define DL_FNI static __forceinline__ __host__ __device__
#define DL_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define DL_FN static inline
#define DL_FNI static inline
#define DL_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* fp16 conversions of src/core (core/core.h), for the host emulation of the device helpers. */
uint16_t harp_f32_to_f16(float f);
float harp_f16_to_f32(uint16_t h);

enum {
    DL_TILE_ROWS = 16,
    DL_TILE_COLS = 128,
    DL_UNIT = 8,
    DL_LANES = 32,
    DL_UNITS_PER_LANE = 8
};

/* The decode engine's quant types are harp_qtype (harp/qtype.h): F16, INT2 … INT8, E8P2, RVQ3, RVQ4. */

/* Per tile: scale of rows g and g+8 side by side (lane 4g+t loads one 8-byte pair), zeros alike. */
typedef struct dl_meta_tile {
    float sc[8][2];
    uint8_t z[8][2];
} dl_meta_tile;

DL_STATIC_ASSERT(DL_TILE_ROWS * DL_TILE_COLS == DL_LANES * DL_UNITS_PER_LANE * DL_UNIT, "a tile is 32 lanes x 8 units x 8 values");
DL_STATIC_ASSERT(sizeof(dl_meta_tile) == 80, "meta tile: 16 fp32 scales + 16 u8 zeros");
DL_STATIC_ASSERT(sizeof(float) == 4 && sizeof(uint32_t) == 4 && sizeof(uint64_t) == 8, "word sizes");

#define DL_E8P_LANE 16
#define DL_E81B_LANE 8
#define DL_INT2_LANE 16
#define DL_INT3HI_LANE 8
#define DL_INT4_LANE 32
#define DL_INT8_LANE 64
#define DL_F16_LANE 128
DL_STATIC_ASSERT(DL_E8P_LANE * 8 == DL_UNITS_PER_LANE * 16, "E8P: 16 bits per unit");
DL_STATIC_ASSERT(DL_E81B_LANE * 8 == DL_UNITS_PER_LANE * 8, "E81B: 8 bits per unit");
DL_STATIC_ASSERT(DL_INT2_LANE * 8 == DL_UNITS_PER_LANE * DL_UNIT * 2, "INT2: 2 bits per value");
DL_STATIC_ASSERT(DL_INT3HI_LANE * 8 == DL_UNITS_PER_LANE * DL_UNIT * 1, "INT3 high plane: 1 bit per value");
DL_STATIC_ASSERT(DL_INT4_LANE * 8 == DL_UNITS_PER_LANE * DL_UNIT * 4, "INT4: 4 bits per value");
DL_STATIC_ASSERT(DL_INT8_LANE * 8 == DL_UNITS_PER_LANE * DL_UNIT * 8, "INT8: 8 bits per value");
DL_STATIC_ASSERT(DL_F16_LANE * 8 == DL_UNITS_PER_LANE * DL_UNIT * 16, "F16: 16 bits per value");

/* Row and column of value v of unit k of lane `lane` in tile (rt, st). */
DL_FN int32_t dl_unit_row(int32_t rt, int lane, int k) { return DL_TILE_ROWS * rt + (lane >> 2) + 8 * (k & 1); }
DL_FN int32_t dl_unit_col(int32_t st, int lane, int k) {
    return DL_TILE_COLS * st + DL_UNIT * ((lane & 3) + 4 * (k >> 1));
}
/* Byte offset of 16-byte piece `piece` (8-byte chunks: piece 0) of a lane chunk of lane_bytes. */
DL_FN size_t dl_piece_offset(int32_t rt, int32_t st, int32_t nst, int lane, int lane_bytes, int piece) {
    const size_t tile = (size_t)rt * (size_t)nst + (size_t)st;
    if (lane_bytes < 16) return (tile * DL_LANES + (size_t)lane) * (size_t)lane_bytes;
    return ((tile * (size_t)(lane_bytes / 16) + (size_t)piece) * DL_LANES + (size_t)lane) * 16;
}

/* PRMT (byte permute, __byte_perm): byte k of the result is byte (sel >> 4k) & 7 of the 8-byte
 * value b:a (a = bytes 0..3). Emulated on the host so the CPU tests run the kernels' exact steps. */
DL_FN uint32_t dl_prmt(uint32_t a, uint32_t b, uint32_t sel) {
#ifdef __CUDA_ARCH__
    return __byte_perm(a, b, sel);
#else
    const uint64_t v = (uint64_t)b << 32 | a;
    uint32_t r = 0;
    for (int k = 0; k < 4; k++) r |= (uint32_t)((v >> (8 * ((sel >> (4 * k)) & 7))) & 255u) << (8 * k);
    return r;
#endif
}

/* dl_prmt for selectors whose nibbles are all ≤ 7 (bit 3, PRMT's sign-replicate flag, clear), as
 * one PRMT: __byte_perm masks a selector it cannot prove clean with an extra AND (0x7777), which for a
 * computed selector costs one ALU instruction per permute (ldp2's decode: 2 of its 8 per column pair). */
DL_FN uint32_t dl_prmt7(uint32_t a, uint32_t b, uint32_t sel) {
#ifdef __CUDA_ARCH__
    uint32_t r;
    asm("prmt.b32 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(sel));
    return r;
#else
    return dl_prmt(a, b, sel);
#endif
}

/* (x & mask) | or_bits as one LOP3: nvcc otherwise emits two (one immediate per LOP3), so the second
 * operand is forced into a register. */
DL_FN uint32_t dl_and_or(uint32_t x, uint32_t mask, uint32_t or_bits) {
#ifdef __CUDA_ARCH__
    uint32_t r;
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(r) : "r"(x), "r"(mask), "r"(or_bits));
    return r;
#else
    return (x & mask) | or_bits;
#endif
}

/* ---- E8P ----------------------------------------------------------------------------------------
 * Table (512 u32, built by dl_e8p_table): entry p·256 + a = the packed abs word P[a] (algorithms.md
 * §5.2.1) with every nibble lowered by p (p = parity of the sign byte; nibbles are odd, so no
 * borrow). After the sign flip (nibble ^ 14 on odd n is 16 − n, on even n − 1 it is 15 − n), the
 * nibble ν of a coordinate in the fp16 pattern 0x5008 | ν << 4 gives 32 + ν/2 + 1/4, and one
 * constant half add of −36 yields the E8P value (n − 8)/2 ± 1/4 exactly, for both parities: no
 * per-code offset selection is needed. */
#define DL_E8P_TABLE 512
#define DL_E8P_MAGIC 0x50085008u
#define DL_E8P_BIAS 36.0f

/* out[4·i + p] = fp16 pair (coordinates 2p, 2p+1) of slot i, biased by +36 (subtract DL_E8P_BIAS). */
DL_FN void dl_e8p_word(uint32_t lo, uint32_t hi, const uint32_t *tab, uint32_t out[16]) {
    uint32_t t = hi ^ (hi >> 16);
    t ^= t >> 8;
    t ^= t >> 4;                             /* bit i (i < 4): parity p_i of slot i's sign byte */
    const uint32_t p4 = t & 15u;
    const uint32_t e = hi ^ p4;              /* sign bit 0 of odd-parity codes flipped: bit σ(c) flips coord c */
    const uint32_t e2 = e >> 2;
    /* table index a_i | p_i << 8 by one byte permute: byte 0 = abs byte i, byte 1 = p_i, bytes 2, 3
     * = zero bytes of pl (p0, p1, 0, 0) or ph (p2, p3, 0, 0) */
    const uint32_t pl = ((p4 & 3u) * 0x81u) & 0x101u, ph = ((p4 >> 2) * 0x81u) & 0x101u;
    const uint32_t magic = DL_E8P_MAGIC;
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
    for (int i = 0; i < 4; i++) {
        const uint32_t idx = dl_prmt(lo, i < 2 ? pl : ph, (uint32_t)i | (uint32_t)(4 + (i & 1)) << 4 | 0x7600u);
        uint32_t w = tab[idx];
        const uint32_t sm = (i == 0) ? (e & 0x11111111u) * 14u
                          : (i == 1) ? (e & 0x22222222u) * 7u
                          : (i == 2) ? (e2 & 0x11111111u) * 14u
                                     : (e2 & 0x22222222u) * 7u;
        w ^= sm;
        out[4 * i + 0] = dl_and_or(w << 4, 0x00F000F0u, magic); /* nibbles 0, 4: coords 0, 1 */
        out[4 * i + 1] = dl_and_or(w, 0x00F000F0u, magic);      /* nibbles 1, 5: coords 2, 3 */
        out[4 * i + 2] = dl_and_or(w >> 4, 0x00F000F0u, magic); /* nibbles 2, 6: coords 4, 5 */
        out[4 * i + 3] = dl_and_or(w >> 8, 0x00F000F0u, magic); /* nibbles 3, 7: coords 6, 7 */
    }
}

/* Table from the packed abs words P[256] (quant/e8p.h e8p_packed). */
DL_FN void dl_e8p_table(const uint32_t *P, uint32_t tab[DL_E8P_TABLE]) {
    for (int a = 0; a < 256; a++) {
        tab[a] = P[a];
        tab[256 + a] = P[a] - 0x11111111u;
    }
}

/* Packs 4 codes into one word (slot i = code[i]). */
DL_FN uint64_t dl_e8p_pack_word(const uint16_t code[4]) {
    uint32_t lo = 0, hi = 0;
    for (int i = 0; i < 4; i++) {
        lo |= (uint32_t)(code[i] >> 8) << (8 * i);
        const uint32_t b = code[i] & 255u;
        for (int j = 0; j < 8; j++) hi |= ((b >> j) & 1u) << (4 * j + i);
    }
    return (uint64_t)lo | (uint64_t)hi << 32;
}

/* ---- integer formats: fp16 pairs 0x6400 | q (= 1024 + q) ----------------------------------------- */
#define DL_INT_MAGIC 0x64006400u

/* Pair p of unit k (of the lane's 8) from the lane chunk words (u32 little-endian). */
DL_FN uint32_t dl_int2_pair(const uint32_t *w, int k, int p) {
    return dl_and_or(w[k >> 1] >> (2 * p + 8 * (k & 1)), 0x00030003u, DL_INT_MAGIC);
}
DL_FN uint32_t dl_int3_pair(const uint32_t *lo, const uint32_t *hi, int k, int p) {
    const uint32_t l = (lo[k >> 1] >> (2 * p + 8 * (k & 1))) & 0x00030003u;
    const uint32_t h = (hi[k >> 2] >> (p + 4 * (k & 3))) & 0x00010001u;
    return dl_and_or(h << 2, 0x00040004u, l | DL_INT_MAGIC);
}
DL_FN uint32_t dl_int4_pair(const uint32_t *w, int k, int p) {
    return dl_and_or(w[k] >> (4 * p), 0x000F000Fu, DL_INT_MAGIC);
}
DL_FN uint32_t dl_int8_pair(const uint32_t *w, int k, int p) {
    return dl_and_or(w[2 * k + (p >> 1)] >> (8 * (p & 1)), 0x00FF00FFu, DL_INT_MAGIC);
}

/* Sets value v of unit k to q in a lane chunk being packed (chunk zeroed beforehand). */
DL_FN void dl_int_put(uint32_t *w, uint32_t *hi, int bits, int k, int v, unsigned q) {
    const int p = v >> 1, h = v & 1;
    switch (bits) {
    case 2:
        w[k >> 1] |= (uint32_t)(q & 3u) << (2 * p + 8 * (k & 1) + 16 * h);
        break;
    case 3:
        w[k >> 1] |= (uint32_t)(q & 3u) << (2 * p + 8 * (k & 1) + 16 * h);
        hi[k >> 2] |= (uint32_t)((q >> 2) & 1u) << (p + 4 * (k & 3) + 16 * h);
        break;
    case 4:
        w[k] |= (uint32_t)(q & 15u) << (4 * p + 16 * h);
        break;
    default:
        w[2 * k + (p >> 1)] |= (uint32_t)(q & 255u) << (8 * (p & 1) + 16 * h);
        break;
    }
}

/* ---- QTIP trellis codes (algorithms.md §5.6, §7.2) -------------------------------------------
 * Decode types DL_QTIP<K>_<CODE> (beyond harp_qtype's range: the stored type qtip<K> plus the
 * trellis code of the linear). A stored 16 × 16 trellis tile is one tail-biting stream of 256·K
 * bits whose kernel permutation (§5.6.6) already is the mma A-fragment order: lane l = 4g + t owns
 * sequence positions 8l … 8l+7 = fragment registers a0 … a3 (pair q = positions 8l + 2q, +1: rows
 * g + 8·(q & 1), columns 2t + 8·(q >> 1), +1), i.e. the states whose windows start in its segment,
 * bits [8lK, 8lK + 8K) of the stream. A decode tile (16 × 128) is 8 trellis tiles side by side
 * (column tile j = 0 … 7); per lane and j the segment is stored as it is, at K bits per weight:
 *   plane 0 (16 bytes): u16 j = bits 0 … 15 of the segment (MSB first, as the stream);
 *   plane 1: K = 3 (8 bytes): u8 j = bits 16 … 23; K = 4 (16 bytes): u16 j = bits 16 … 31.
 * The windows of a lane's last states run into the next lane's segment (lane 31: lane 0's, the
 * tail-biting wrap): the kernel reads it with one warp shuffle per plane word, so no bit is stored
 * twice. The B fragment is x in natural column order (columns 16J + 2t, +1 and 16J + 8 + 2t, +1).
 * Padding column tiles (beyond the stored ceil(n/16)) hold zero streams: their values are finite
 * and meet zero activations. HYB's table is 512 u32 fp16 pairs (coordinate 0 low) per linear. */
enum {
    DL_QTIP_BASE = 32,
    DL_QTIP2_1MAD = DL_QTIP_BASE + 1, DL_QTIP2_3INST, DL_QTIP2_HYB,
    DL_QTIP3_1MAD = DL_QTIP_BASE + 5, DL_QTIP3_3INST, DL_QTIP3_HYB,
    DL_QTIP4_1MAD = DL_QTIP_BASE + 9, DL_QTIP4_3INST, DL_QTIP4_HYB,
    DL_TCODE_1MAD = 1, DL_TCODE_3INST = 2, DL_TCODE_HYB = 3   /* harp_tcode (harp/quant.h) */
};
#define DL_QTIP_LANE 16
#define DL_HYB_ROWS 512
DL_STATIC_ASSERT(DL_QTIP_LANE * 8 == DL_UNITS_PER_LANE * DL_UNIT * 2, "QTIP plane 0: 2 bits per weight");

/* Decode type of K bits and trellis code (0 when out of range); its K and code (0 when not QTIP). */
DL_FN int dl_qtip_type(int K, int code) { return K >= 2 && K <= 4 && code >= 1 && code <= 3 ? DL_QTIP_BASE + 4 * (K - 2) + code : 0; }
DL_FN int dl_qtip_bits(int qtype) {
    const int o = qtype - DL_QTIP_BASE;
    return o > 0 && o < 12 && (o & 3) ? 2 + (o >> 2) : 0;
}
DL_FN int dl_qtip_code(int qtype) { return dl_qtip_bits(qtype) ? (qtype - DL_QTIP_BASE) & 3 : 0; }

/* Segment of column tile j (MSB-aligned u32: its 8K bits, then zeros) from a lane's plane words. */
DL_FN uint32_t dl_qtip_seg(const uint32_t *w0, const uint32_t *w1, int K, int j) {
    const uint32_t top = (w0[j >> 1] >> (16 * (j & 1))) << 16;
    if (K == 2) return top;
    if (K == 3) return top | ((w1[j >> 2] >> (8 * (j & 3))) & 255u) << 8;
    return top | ((w1[j >> 1] >> (16 * (j & 1))) & 0xFFFFu);
}

/* fp16 pair of two 1MAD states: y = Σ bytes(s·34038481 + 76625530) − 510 as an exact fp32 (the
 * byte sum lands in the mantissa of 1.5·2^23), times fp32(1/147.800537109375), rounded to fp16:
 * equal to the format's fp16(y / 147.800537109375) for every y (checked over all states in CI). */
DL_FN float dl_1mad_f32(uint32_t s) {
    const uint32_t x = s * 34038481u + 76625530u;
#ifdef __CUDA_ARCH__
    const uint32_t bits = __dp4a(x, 0x01010101u, 0x4B400000u - 510u);
    return (__uint_as_float(bits) - 12582912.0f) * (1.0f / 147.800537109375f);
#else
    const uint32_t bits = (x & 255u) + ((x >> 8) & 255u) + ((x >> 16) & 255u) + (x >> 24) + 0x4B400000u - 510u;
    float f;
    memcpy(&f, &bits, 4);
    return (f - 12582912.0f) * (1.0f / 147.800537109375f);
#endif
}

/* Both halves of r have exponents in [12, 15]: their sum is one correctly rounded half add. */
DL_FN uint32_t dl_3inst_r(uint32_t s) { return ((s * 89226354u + 64248484u) & 0x8FFF8FFFu) ^ 0x3B603B60u; }

/* fp16 pair (a low, b high) of two fp32, round to nearest; sum of two fp16 pairs (one correctly
 * rounded half add each). */
DL_FN uint32_t dl_f16x2(float a, float b) {
#ifdef __CUDA_ARCH__
    uint32_t r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(b), "f"(a));
    return r;
#else
    return (uint32_t)harp_f32_to_f16(a) | (uint32_t)harp_f32_to_f16(b) << 16;
#endif
}
DL_FN uint32_t dl_hadd2(uint32_t a, uint32_t b) {
#ifdef __CUDA_ARCH__
    asm("add.rn.f16x2 %0, %0, %1;" : "+r"(a) : "r"(b));
    return a;
#else
    const float lo = harp_f16_to_f32((uint16_t)a) + harp_f16_to_f32((uint16_t)b);
    const float hi = harp_f16_to_f32((uint16_t)(a >> 16)) + harp_f16_to_f32((uint16_t)(b >> 16));
    return dl_f16x2(lo, hi);   /* the fp32 sums are exact for the 3INST halves */
#endif
}

/* The 8K + 16 bits a lane's windows of column tile j span (MSB first: hi, then lo), from its
 * plane words (w0, w1) and the next lane's (n0, n1). K = 2: one byte permute. */
DL_FN void dl_qtip_hilo(const uint32_t *w0, const uint32_t *w1, const uint32_t *n0, const uint32_t *n1, int K, int j,
                        uint32_t *hi, uint32_t *lo) {
    if (K == 2) {   /* own u16 j above the next lane's u16 j; the windows end by bit 30 */
        *hi = dl_prmt(n0[j >> 1], w0[j >> 1], (j & 1) ? 0x7632u : 0x5410u);
        *lo = 0;
        return;
    }
    const uint32_t own = dl_qtip_seg(w0, w1, K, j), nxt = dl_qtip_seg(n0, n1, K, j);
    *hi = K == 4 ? own : own | nxt >> (8 * K);
    *lo = K == 4 ? nxt : nxt << (32 - 8 * K);
}

/* The window at bit sh (≤ 32) of hi:lo in bits 0 … 15 of the result, bits above it NOT cleared:
 * one funnel shift (SHF.R) or shift. */
DL_FN uint32_t dl_qtip_window(uint32_t hi, uint32_t lo, int sh) {
    if (sh <= 16) return hi >> (16 - sh);
#ifdef __CUDA_ARCH__
    return __funnelshift_r(lo, hi, (unsigned)(48 - sh));
#else
    return lo >> (48 - sh) | hi << (sh - 16);
#endif
}

/* The 4 A-fragment registers (fp16 pairs of unscaled values) of one lane for one trellis tile from
 * its window bits (dl_qtip_hilo). tab: the HYB pairs, row r at tab[r·tstride] (the kernels keep
 * interleaved copies of the table in shared memory against bank conflicts). HYB reads only bits
 * 0 … 15 of s·(s+1), which depend only on s mod 2^16, so its state needs no mask; the LCG codes do. */
DL_FNI void dl_qtip_frag(int K, int code, uint32_t hi, uint32_t lo, const uint32_t *tab, int tstride, uint32_t a[4]) {
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
    for (int q = 0; q < 4; q++) {
        if (code == DL_TCODE_HYB) {   /* V = 2: state q gives both values of pair q */
            const uint32_t s = dl_qtip_window(hi, lo, 2 * K * q), h = s * s + s;
            a[q] = tab[((h >> 6) & (DL_HYB_ROWS - 1)) * (uint32_t)tstride] ^ (h & 0x8000u);
            continue;
        }
        const uint32_t s0 = dl_qtip_window(hi, lo, 2 * q * K) & 0xFFFFu, s1 = dl_qtip_window(hi, lo, (2 * q + 1) * K) & 0xFFFFu;
        if (code == DL_TCODE_1MAD) {
            a[q] = dl_f16x2(dl_1mad_f32(s0), dl_1mad_f32(s1));
        } else {
            const uint32_t r0 = dl_3inst_r(s0), r1 = dl_3inst_r(s1);
            a[q] = dl_hadd2(dl_prmt(r0, r1, 0x5410u), dl_prmt(r0, r1, 0x7632u));
        }
    }
}

/* Lane chunk bytes of plane 0 / plane 1 (0 = none) of a type. */
DL_FN int dl_lane_bytes(int qtype, int plane) {
    switch (qtype) {
    case HARP_QTYPE_F16: return plane == 0 ? DL_F16_LANE : 0;
    case HARP_QTYPE_INT2: return plane == 0 ? DL_INT2_LANE : 0;
    case HARP_QTYPE_INT3: return plane == 0 ? DL_INT2_LANE : DL_INT3HI_LANE;
    case HARP_QTYPE_INT4: return plane == 0 ? DL_INT4_LANE : 0;
    case HARP_QTYPE_INT8: return plane == 0 ? DL_INT8_LANE : 0;
    case HARP_QTYPE_E8P2: return plane == 0 ? DL_E8P_LANE : 0;
    case HARP_QTYPE_RVQ3: return plane == 0 ? DL_E8P_LANE : DL_E81B_LANE;
    case HARP_QTYPE_RVQ4: return DL_E8P_LANE;
    default: {
        const int K = dl_qtip_bits(qtype);
        return !K ? 0 : plane == 0 ? DL_QTIP_LANE : K == 3 ? 8 : K == 4 ? 16 : 0;
    }
    }
}
DL_FN int dl_int_bits(int qtype) {
    return qtype == HARP_QTYPE_INT2 ? 2 : qtype == HARP_QTYPE_INT3 ? 3 : qtype == HARP_QTYPE_INT4 ? 4 : qtype == HARP_QTYPE_INT8 ? 8 : 0;
}

#ifdef __cplusplus
}
#endif
#endif
