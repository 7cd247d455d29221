/* ldp2 (RCP's non-uniform 2-bit type, docs/format/ldp.md) on the GPU: the device layout of its codes
 * and levels, packed from the stored planes, its reader, the plain C twin of the decode GEMV, and the
 * GEMV itself (dec_ldp.cu) with int4 (W2A4) or fp16 (W2A16) activations. docs/gpu.md "ldp2 GEMV".
 *
 * Layout (tiles of 16 rows × 128 columns, the mma.m16n8k16 tiling of dec_gemv.cu):
 *   codes : [row tile][super-tile of 128 columns][32 lanes][16 bytes]. Lane (g = lane/4, t = lane%4)
 *           holds rows g and g+8 × columns 8(t + 4j) + e (j, e = 0…7) of the super-tile: word j, code
 *           of (row g + 8h, column e) at bit 16h + 8(e & 1) + 2(e >> 1). So (word >> 2i) & 0x03030303
 *           is the byte vector of the codes of the column pair (2i, 2i+1) of rows g and g+8, which one
 *           IMAD turns into the PRMT selectors of two fp16 pairs.
 *   levels: [row tile][group][8][16 bytes]: slot g holds X_g, Y_g, X_{g+8}, Y_{g+8}, where byte k of X_r
 *           is the low byte of level k of row r and byte k of Y_r its high byte (the 8-byte PRMT pool).
 * Rows past m and columns past n are code 0 with level 0 (padding contributes 0: padded activations
 * are 0 too). Group size: a multiple of 128 or the whole row (per channel); others are refused. */
#ifndef HARP_CUDA_DEC_LDP_H
#define HARP_CUDA_DEC_LDP_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "cuda/decode_layout.h"
#include "harp/common.h"

#define DEC_LDP_ROWS 16
#define DEC_LDP_COLS 128

typedef struct dec_ldp_layout {
    int32_t m, n, npad;   /* npad: n rounded up to 128 */
    int32_t g, ng;        /* group size in columns (n when per channel) and groups per row (stored form) */
    int32_t nrt, nst;     /* row tiles, super-tiles per row */
} dec_ldp_layout;

/* The layout of an m × n ldp2 matrix with groups of `group` columns (0 or ≥ n: per channel).
 * HARP_ERR_UNSUPPORTED (one line naming `what`) for a group that is neither a multiple of 128 nor the whole row. */
harp_status dec_ldp_layout_of(int64_t m, int64_t n, int64_t group, const char *what, dec_ldp_layout *L);
size_t dec_ldp_code_bytes(const dec_ldp_layout *L);
size_t dec_ldp_level_bytes(const dec_ldp_layout *L);

/* Stored planes (qweight [m][ceil(n/4)] 2-bit codes, lv16 [m][4·ng] fp16, may be unaligned) → the
 * device layout (host buffers of dec_ldp_code_bytes / dec_ldp_level_bytes). */
void dec_ldp_pack(const dec_ldp_layout *L, const uint8_t *qweight, const void *lv16, uint8_t *codes, uint8_t *levels);
/* Readers of the packed layout: code of (r, c) and the fp16 bits of level k of (r, group G). */
int dec_ldp_code_at(const dec_ldp_layout *L, const uint8_t *codes, int64_t r, int64_t c);
uint16_t dec_ldp_level_at(const dec_ldp_layout *L, const uint8_t *levels, int64_t r, int64_t G, int k);

/* Activations of the GEMV, B rows: either int4 (xq: harp_aq's symmetric per-token codes, two's
 * complement nibbles, low nibble first, each row zero-padded to npad/2 bytes; xs: the fp32 scale per
 * row) or fp16 (x16: B × npad, zero-padded; xq = NULL). */
typedef struct dec_ldp_act {
    const uint8_t *xq;
    const float *xs;
    const uint16_t *x16;
} dec_ldp_act;

/* The twin: y[b·m + r] = s_b · Σ_c ℓ[r][c/g][q_rc] · a_bc from the packed layout, double accumulation
 * in column order, rounded once to float (s_b = 1 for fp16 activations). With tol != NULL also the
 * error bound of the device kernel per entry: its products ℓ·a are exact in fp32; along any path its sum
 * takes ≤ 4·⌈nst/W⌉ mma steps of a warp's chain (W = 8 or 16 warps; ≤ 2 roundings each: the 16-term
 * inner sum and the accumulator), one chain merge and W reduction adds — ≤ 8·⌈nst/8⌉ + 32 roundings for
 * either W — each within 2^-22 relative (2^-23 for the tensor cores' truncating alignment, doubled), so
 *   |y − twin| ≤ s_b · (8·⌈nst/8⌉ + 32) · 2^-22 · Σ_c |ℓ a_bc| + 2^-23·|twin|   (the last: the scale). */
harp_status dec_ldp_gemv_ref(const dec_ldp_layout *L, const uint8_t *codes, const uint8_t *levels, const dec_ldp_act *x, int B,
                             float *y, float *tol);

/* The kernel's decode steps (host and device; the host runs them in the CPU test's emulation).
 * High word of a·b (IMAD.HI: the FMA pipe, where a shift would take the ALU pipe that LOP3 and PRMT
 * already fill; `b` must not be a compile-time power of two or the compiler makes it a shift). */
DL_FN uint32_t dec_ldp_umulhi(uint32_t a, uint32_t b) {
#ifdef __CUDA_ARCH__
    return __umulhi(a, b);
#else
    return (uint32_t)(((uint64_t)a * b) >> 32);
#endif
}
/* The fp16 pairs (columns 2i, 2i+1 of the lane word's 8 columns) of rows g (*ag) and g+8 (*ah) from
 * ws = the lane word shifted right by 2i and the level pools pool = {X_g, Y_g, X_{g+8}, Y_{g+8}}: the
 * four codes as bytes V, V·0x11 + 0x40 per byte = PRMT selector nibbles (q, q + 4), i.e. low byte X[q],
 * high byte Y[q]; row g+8's selector from V's upper half, as sel >> 16 (alu != 0) or as the high word
 * of V·0x110000 (exact: the lower half's product stays below 2^16) plus 0x4040 (IMAD.HI). */
DL_FN void dec_ldp_pair(uint32_t ws, const uint32_t pool[4], int alu, uint32_t *ag, uint32_t *ah) {
    const uint32_t v = ws & 0x03030303u, sel = v * 0x11u + 0x40404040u;
    *ag = dl_prmt7(pool[0], pool[1], sel);   /* nibbles q ≤ 3 and q + 4 ≤ 7 */
    *ah = dl_prmt7(pool[2], pool[3], alu ? sel >> 16 : dec_ldp_umulhi(v, 0x110000u) + 0x4040u);
}
/* int4 activations (eight nibbles, e = 0…7) → fp16 pair (2p, 2p+1), exact integers: byte p of w in
 * halves 0 and 1 (PRMT), then one LOP3 m ? x ^ d : d with m = 0x00F0000F, d = 0x64806408 — the two
 * nibbles XOR 8 (a + 8 in 0…15) under 0x6400, i.e. 1024 + n and 1024 + 16·n' — and one HFMA2 by
 * (1, 1/16) plus (−1032, −72). */
#define DEC_LDP_A4_MUL 0x2C003C00u /* fp16 pair (1, 1/16)     */
#define DEC_LDP_A4_OFF 0xD480E408u /* fp16 pair (−1032, −72) */
DL_FN uint32_t dec_ldp_a4_pair(uint32_t w, int p) {
    const uint32_t x = dl_prmt(w, 0u, 0x4040u | (uint32_t)p | (uint32_t)p << 8), m = 0x00F0000Fu, d = 0x64806408u;
#ifdef __CUDA_ARCH__
    uint32_t v, r;
    asm("lop3.b32 %0, %1, %2, %3, 0x6A;" : "=r"(v) : "r"(x), "r"(m), "r"(d));
    asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(r) : "r"(v), "r"(DEC_LDP_A4_MUL), "r"(DEC_LDP_A4_OFF));
    return r;
#else
    const uint32_t v = (m & (x ^ d)) | (~m & d);
    float h[2];
    for (int k = 0; k < 2; k++)   /* exact: small integers */
        h[k] = harp_f16_to_f32((uint16_t)(v >> 16 * k)) * harp_f16_to_f32((uint16_t)(DEC_LDP_A4_MUL >> 16 * k)) +
               harp_f16_to_f32((uint16_t)(DEC_LDP_A4_OFF >> 16 * k));
    return dl_f16x2(h[0], h[1]);
#endif
}

/* Random valid stored planes for benchmarks and tests: uniform codes, and per (row, group) the four
 * ordered levels 0.01·(−3, −1, 1, 3) (the CPU bench's ldp2 weights; random bits could be NaN). */
void dec_ldp_random_planes(harp_rng *rng, int64_t m, int64_t n, int64_t ng, uint8_t *qweight, uint16_t *lv16);

#ifdef HARP_HAVE_CUDA
typedef struct CUstream_st *dec_stream;
/* Device copies of a packed layout (dec_ldp_dev_free releases them). */
typedef struct dec_ldp_dev {
    dec_ldp_layout L;
    uint8_t *codes, *levels;
} dec_ldp_dev;
harp_status dec_ldp_upload(const dec_ldp_layout *L, const uint8_t *codes, const uint8_t *levels, dec_ldp_dev *d);
void dec_ldp_dev_free(dec_ldp_dev *d);
/* Kernel variants the bench compares (NULL or zeros = the default); the results are identical. */
typedef struct dec_ldp_opts {
    int fma;     /* 1: the decode's shifts as IMAD.HI (FMA pipe) instead of shifts (ALU pipe, the default: 6–10 %
                    faster at every Llama-2-7B shape on an H100, docs/results/rcp.md) */
    int warps;   /* k-split warps per CTA, 8 or 16 (0: 16 up to 512 row tiles, else 8) */
    int xs;      /* where the warps read x: 0 default (int4 at batch 1: the CTA's fp16 copy in shared memory,
                    else global memory), 1 the shared copy (when B · npad fp16 fit 48 KiB), −1 each warp reads
                    (and for int4 expands) its activations per super-tile from global memory */
} dec_ldp_opts;
/* y[b·ldy + r] (B = 1…8, ldy ≥ m) for the device activations x (device pointers, the layout of
 * dec_ldp_act). Launched with PDL (pdl.cuh): the weights are requested before the wait. */
harp_status dec_ldp_gemv(const dec_ldp_dev *w, const dec_ldp_act *x, int B, float *y, int ldy, const dec_ldp_opts *o, dec_stream s);
/* Rows [r0, r1) of the matrix as fp16 into out [r1 − r0][ld] (ld ≥ npad; columns n … npad − 1 are 0): the
 * prefill path's tiles (dec_dequant_f16). */
harp_status dec_ldp_dequant_f16(const dec_ldp_dev *w, int32_t r0, int32_t r1, void *out, int ld, dec_stream s);
/* The decode engine's LDP2 weights (dec_weights, qtype HARP_QTYPE_LDP2) as this file's device view. */
struct dec_weights;
harp_status dec_ldp_view(const struct dec_weights *w, dec_ldp_dev *d);
#endif

#endif
