/* QTIP trellis-coded quantization (algorithms.md §5.6, §7.2): the bitshift trellis and its codes
 * (1MAD, 3INST, HYB), exact Viterbi (SIMD kernels + a plain reference twin), the two-pass
 * tail-biting approximation, bit packing, 16 × 16 tiles with the kernel permutation, BlockLDLQ
 * with b = 16 and the decode-GEMV. Module API of src/quant (not public). The packed layout is
 * defined in docs/format/trellis.md; harp_trellis_decode_tile and harp_tmat_gemv_ref are its
 * definition in code.
 *
 * Trellis (L state bits, K bits per weight, V weights per step, KV = K·V): state s_t ∈ [0, 2^L),
 * s_{t+1} = ((s_t << KV) mod 2^L) | u_t. A sequence of T = 256 weights has S = T / V steps; step t
 * emits the V values of state s_t. Tail-biting: the S states are the L-bit windows at bit offsets
 * t·KV of a circular stream of exactly T·K bits (stored as 16·K uint16 words, MSB first).
 *
 * Every value a format code produces is an fp16 number (held in a float), so CPU and GPU decoders
 * agree bit for bit; the encoder's reconstruction is made of the same values. */
#ifndef HARP_QUANT_TRELLIS_H
#define HARP_QUANT_TRELLIS_H

#include <stddef.h>
#include <stdint.h>

#include "harp/common.h"
#include "harp/quant.h"

#define HARP_TRELLIS_L 16    /* state bits of the stored format                              */
#define HARP_TRELLIS_TD 16   /* tile side: a sequence is one 16 × 16 tile                     */
#define HARP_TRELLIS_T 256   /* weights per tile / sequence                                   */
#define HARP_HYB_Q 9         /* HYB table index bits (tlut_bits)                              */
#define HARP_HYB_N 512       /* HYB table rows; the table is fp16 [512][2] = 1024 values       */

/* harp_tcode, harp_tcode_name and harp_tcode_parse are public (harp/quant.h). */
/* Weights per trellis step of a format code (1 or 2); 0 for TABLE / unknown. */
int harp_tcode_v(harp_tcode c);

/* ---- state values (the format definition, §5.6.3) ------------------------------------------- */

/* 1MAD: x = s·34038481 + 76625530 mod 2^32, y = Σ bytes(x) − 510, value = fp16(y / 147.800537109375). */
float harp_tcode_1mad(uint32_t s);
/* 3INST: x = s·89226354 + 64248484 mod 2^32, r = (x & 0x8FFF8FFF) ^ 0x3B603B60,
 * value = fp16(half(r >> 16) + half(r & 0xFFFF)) (the fp16 sum, as a half-precision add gives). */
float harp_tcode_3inst(uint32_t s);
/* HYB index word: h = s·(s+1) mod 2^32; table row (h >> 6) & 511, sign of coordinate 0 = bit 15. */
static inline uint32_t harp_hyb_hash(uint32_t s) { return s * (s + 1u); }
/* HYB: (±tlut[row][0], tlut[row][1]) with tlut fp16 [512][2]. */
void harp_tcode_hyb(const uint16_t *tlut, uint32_t s, float out[2]);

/* The HYB table built from a seed (§5.6.3 with a reproducible recipe): k-means (Lloyd, fixed
 * iteration count) of 2^20 samples of a 2-D N(0, 1) from harp_rng(seed), 512 centroids started at
 * N(0, 1) draws, rescaled so the std over all 1 024 numbers is √(15/16), rounded to fp16.
 * Bit-identical for any thread count. Stored with each linear; never rebuilt at load. */
harp_status harp_hyb_table_build(uint64_t seed, uint16_t tlut[2 * HARP_HYB_N]);
/* harp_hyb_table_build, memoised for the last seed (thread-safe): the quantizer and the HARP fit's
 * target build the table once per process. */
harp_status harp_hyb_table_shared(uint64_t seed, uint16_t tlut[2 * HARP_HYB_N]);
/* Same recipe with explicit sizes (tests, studies): samples ≥ 512, iters ≥ 0. */
harp_status harp_hyb_table_build_ex(uint64_t seed, int64_t samples, int iters, uint16_t tlut[2 * HARP_HYB_N]);
/* HARP_ERR_FORMAT naming `what` if tlut is NULL, has a non-finite entry or is all zero. */
harp_status harp_hyb_table_check(const uint16_t *tlut, const char *what);

/* ---- the codebook of one trellis ------------------------------------------------------------- */

typedef struct harp_tcb {
    int L, K, V, KV;    /* state bits, bits per weight, weights per step, new bits per step    */
    int S;              /* steps per sequence (T / V for the format codes)                      */
    harp_tcode code;
    float *val;         /* (V, 2^L) planar: val[d·2^L + s] = coordinate d of state s            */
    uint16_t tlut[2 * HARP_HYB_N]; /* HYB only: the fp16 table                                 */
    double rms;         /* sqrt(mean of the V·2^L values²): the lut_rms of §5.1                  */
} harp_tcb;

/* The format trellis (L = 16, T = 256) of a code at K ∈ {2, 3, 4}; tlut is required for HYB
 * (checked, error names `what`) and ignored otherwise. Free with harp_tcb_free. */
harp_status harp_tcb_init(harp_tcb *cb, harp_tcode code, int K, const uint16_t *tlut, const char *what);
/* A trellis with explicit values val (V, 2^L) for tests of the search: 2 ≤ L ≤ 16, 1 ≤ KV < L,
 * KV ≤ 8, S ≥ 2. Packing needs S·KV ≥ L. */
harp_status harp_tcb_init_table(harp_tcb *cb, int L, int K, int V, int S, const float *val);
void harp_tcb_free(harp_tcb *cb);
/* uint16 words of one packed sequence: ceil(S·KV / 16) (16·K for the format). */
static inline int harp_tcb_words(const harp_tcb *cb) { return (cb->S * cb->KV + 15) / 16; }

/* ---- Viterbi (§5.6.4) ------------------------------------------------------------------------- */

/* Per-thread scratch of the search (back-pointers and cost rows), sized for cb: use it only with
 * trellises of the same L, K, V and S. S·2^{L−KV} bytes of back-pointers (4 MB at V = 1, K = 2;
 * 0.5 MB for HYB at K = 2) plus ≈ 0.3 MB. */
typedef struct harp_viterbi_ws harp_viterbi_ws;
harp_viterbi_ws *harp_viterbi_ws_new(const harp_tcb *cb);   /* NULL (logged) when out of memory */
void harp_viterbi_ws_free(harp_viterbi_ws *ws);
/* The two above in harp_rowchunks_spec's workspace form (quant_internal.h). */
static inline void *harp_viterbi_ws_new_any(const void *cb) { return harp_viterbi_ws_new((const harp_tcb *)cb); }
static inline void harp_viterbi_ws_free_any(void *ws) { harp_viterbi_ws_free((harp_viterbi_ws *)ws); }

#define HARP_TB_OPEN (-1)

/* Exact minimum-distortion path of x (S·V floats; step t is x[tV .. tV+V)): states[S] and its
 * cost Σ_t ‖val(s_t) − x_t‖², accumulated in fp32 as cost_t = dist_t + cost_{t−1}. With
 * overlap ≥ 0 the path is constrained to s_0 >> KV == overlap and s_{S−1} mod 2^{L−KV} == overlap
 * (a tail-biting path). Ties go to the smallest predecessor and the smallest final state, so the
 * reference and the SIMD kernels return identical states. x must be finite. */
float harp_viterbi_ref(const harp_tcb *cb, const float *x, int32_t overlap, uint32_t *states, harp_viterbi_ws *ws);
float harp_viterbi(const harp_tcb *cb, const float *x, int32_t overlap, uint32_t *states, harp_viterbi_ws *ws);
/* Two-pass tail-biting approximation: Viterbi on x rotated left by S/2 steps fixes
 * o = s_{S/2} >> KV (= original step 0), then the constrained search with overlap o. The result
 * is always a valid tail-biting path (it packs into exactly S·KV bits); it is not guaranteed to
 * be the best one. use_ref selects the reference search. */
float harp_viterbi_tb(const harp_tcb *cb, const float *x, uint32_t *states, harp_viterbi_ws *ws, int use_ref);

/* Kernel variants (Viterbi and GEMV), best first available at run time. AVX512VBMI adds the
 * byte-permute HYB table lookup and funnel shifts to the GEMV (Ice Lake, Zen 4 and later); the
 * Viterbi is the same at both AVX-512 levels. */
typedef enum harp_tisa {
    HARP_TISA_REF = 0,        /* plain C (Viterbi: the reference twin; GEMV: the portable kernel) */
    HARP_TISA_AVX2 = 1,       /* AVX2 + FMA + F16C                                                 */
    HARP_TISA_AVX512 = 2,     /* AVX-512 F + BW + VL                                               */
    HARP_TISA_AVX512VBMI = 3  /* + VBMI + VBMI2                                                    */
} harp_tisa;
/* Variant in use now ("avx512vbmi", "avx512", "avx2" or "portable"). */
harp_tisa harp_trellis_isa(void);
const char *harp_tisa_name(harp_tisa isa);
/* Caps the variant (tests, benchmarks); process-wide, not thread-safe. */
void harp_trellis_max_isa(harp_tisa isa);

/* ---- packing (§5.6.5) ------------------------------------------------------------------------- */

/* Packs a tail-biting path: s_0 (L bits, MSB first), then the low KV bits of s_1 … s_{S−1}, the
 * last L−KV bits dropped (they repeat the first), zero-padded to whole words. HARP_ERR_INVALID_ARG
 * if a transition or the tail-biting wrap is violated. */
harp_status harp_trellis_pack(const harp_tcb *cb, const uint32_t *states, uint16_t *words);
/* Inverse of pack: every L-bit window at offsets t·KV of the circular S·KV-bit stream. */
void harp_trellis_unpack(const harp_tcb *cb, const uint16_t *words, uint32_t *states);
/* Value(s) of state s of a format code (V of them); tlut is used by HYB only. */
void harp_tcode_value(harp_tcode code, const uint16_t *tlut, uint32_t s, float *out);

/* ---- tiles and the kernel permutation (§5.6.6) ------------------------------------------------ */

/* Sequence position p ↔ tile element 16r + c: p = ((((r%8)·4 + e)·2 + d)·2 + a)·2 + f with
 * r = 8a + r%8, c = 8d + 2e + f (the mma.m16n8k16 A-fragment order). */
static inline int harp_trellis_perm(int p) {
    const int f = p & 1, a = (p >> 1) & 1, d = (p >> 2) & 1, e = (p >> 3) & 3, r8 = p >> 5;
    return (8 * a + r8) * 16 + 8 * d + 2 * e + f;
}

/* Quantizes one 16 × 16 tile (row-major, row stride ld, finite values) with the two-pass
 * tail-biting search: writes harp_tcb_words(cb) words and, when recon is not NULL, the
 * reconstruction (row stride ldr). Returns the squared error. cb must be a format trellis. */
float harp_trellis_quantize_tile(const harp_tcb *cb, const float *tile, int64_t ld, uint16_t *words, float *recon,
                                 int64_t ldr, harp_viterbi_ws *ws);
/* Decodes one packed tile (16·K words) of a format code into 16 × 16 values (row-major, stride
 * ld), unscaled: the definition of the stored format. tlut is used by HYB only. */
void harp_trellis_decode_tile(harp_tcode code, int K, const uint16_t *tlut, const uint16_t *words, float *out,
                              int64_t ld);

/* Quantizes every tile of X (m × n row-major, finite) independently — plain trellis rounding
 * without feedback, HARP's target (§4.12). Boundary tiles are zero-padded to 16 × 16 (as the
 * stored format pads). Only tiles with index ≡ part (mod parts) are done (parts ≥ 1); the others
 * are left untouched. codes: ceil(m/16)·ceil(n/16) sequences of harp_tcb_words(cb) words, tile
 * (i, j) at i·ceil(n/16) + j; recon (m × n) may be NULL. OpenMP over tiles; results do not depend
 * on the thread count. */
harp_status harp_trellis_quantize_tiles(const harp_tcb *cb, int64_t m, int64_t n, const float *X, int parts,
                                        int part, uint16_t *codes, float *recon, const char *what);

/* ---- one quantized linear: BlockLDLQ b = 16 (§5.6.6) ----------------------------------------- */

/* Where harp_trellis_quantize_linear runs the Viterbi passes; the codes are the same for all three. */
typedef enum harp_tvit_engine {
    HARP_TVIT_STRIPS = 0,    /* CPU, each 16-row strip's recursion on one thread (default)          */
    HARP_TVIT_COLUMNS = 1,   /* CPU, the tiles of one 16-column block as one batched call (the GPU
                                path's twin: tests)                                                 */
    HARP_TVIT_GPU = 2        /* the batched calls on the CUDA device (trellis_gpu.h)                 */
} harp_tvit_engine;

typedef struct harp_trellis_params {
    int K;                   /* 2, 3 or 4 bits per weight                                      */
    harp_tcode code;         /* HARP_TCODE_HYB (paper), _1MAD or _3INST                         */
    const uint16_t *tlut;    /* HYB table (harp_hyb_table_build); required for HYB              */
    double scale_override;   /* Wscale = rms(W̃) / (lut_rms · so); 0.9 in the paper scripts      */
    int regularize;          /* 1 = harp_hessian_regularize(sigma_reg) on H̃ first               */
    double sigma_reg;        /* 0.01 */
    int keep_w_hat;          /* 1 = return Ŵ̃ (m × n fp32) in harp_trellis_linear.w_hat          */
    int viterbi;             /* harp_tvit_engine (HARP_TVIT_STRIPS)                             */
    harp_progress_fn progress; /* stage "trellis", done / total tiles; may be NULL               */
    void *progress_user;
} harp_trellis_params;

harp_trellis_params harp_trellis_default_params(int K, harp_tcode code, const uint16_t *tlut);

typedef struct harp_trellis_linear {
    int64_t m, n;            /* logical shape of W̃                                             */
    int64_t m_pad, n_pad;    /* rounded up to 16 (padding: zero rows / decoupled zero columns)  */
    int K;
    harp_tcode code;
    uint16_t *codes;         /* (m_pad/16)(n_pad/16) tiles × 16·K words                         */
    uint16_t tlut[2 * HARP_HYB_N]; /* HYB: the table used (copied from the params)            */
    double wscale;           /* Ŵ̃ = wscale · value; an fp32 number (store it as fp32)           */
    float *w_hat;            /* (m, n) Ŵ̃ when keep_w_hat, bit-identical to decoding the codes    */
    double proxy_loss;       /* relative proxy loss with the caller's H (undamped)              */
    double seconds;
    int chol_jitter_steps;
} harp_trellis_linear;

/* Quantizes the rotated W̃ (m × n) against H̃ (n × n, undamped) with BlockLDLQ over 16-column
 * blocks (last to first) and one tail-biting trellis per 16 × 16 tile of each feedback-corrected
 * block. Widths are padded to 16 (zero rows; zero columns with an identity block in H̃ so they
 * never feed back). Row strips of 16 are independent given H̃ and run in parallel: codes are
 * bit-identical for any thread count. W and H are not modified; free with harp_trellis_linear_free. */
harp_status harp_trellis_quantize_linear(const harp_trellis_params *p, int64_t m, int64_t n, const float *W,
                                         const double *H, const char *what, harp_trellis_linear *out);
void harp_trellis_linear_free(harp_trellis_linear *q);

/* ---- the stored matrix and its decode-GEMV (§7.2) --------------------------------------------- */

/* W̃ (m × n, y = W̃ x) as stored: tiles of the padded (m_pad × n_pad) matrix, tile (i, j) at
 * i·(n_pad/16) + j, 16·K words each; W̃[r][c] = scale · value(tile state at the permuted position).
 * Columns ≥ n and rows ≥ m are padding: kernels treat x as zero there and drop those rows. */
typedef struct harp_tmat {
    int32_t m, n;            /* logical shape                                                  */
    int32_t K;               /* 2, 3, 4                                                         */
    harp_tcode code;         /* 1MAD, 3INST or HYB                                              */
    float scale;             /* Wscale                                                          */
    const uint16_t *codes;   /* the tiles                                                       */
    size_t ncodes;           /* uint16 words available at codes (checked against the shape)      */
    const uint16_t *tlut;    /* HYB: fp16 [512][2]; NULL for the computed codes                 */
} harp_tmat;

/* uint16 words of the code plane of an m × n matrix at K bits: 16·K per padded tile. */
size_t harp_tmat_code_words(int32_t m, int32_t n, int K);
/* One error line naming `what`: shape, K, code, scale finite, code plane present and exactly
 * harp_tmat_code_words long (a truncated or overlong stream, a wrong tile count), the HYB table
 * present and finite. Every kernel below requires a checked matrix. */
harp_status harp_tmat_check(const harp_tmat *w, const char *what);
/* Dense W̃ rows [r0, r1) into out ((r1 − r0) rows of n floats, row stride ld ≥ n). */
void harp_tmat_dequant_rows(const harp_tmat *w, int32_t r0, int32_t r1, float *out, size_t ld);
/* y = W̃ x. Reference: decodes each tile with harp_trellis_decode_tile, double accumulation. */
void harp_tmat_gemv_ref(const harp_tmat *w, const float *x, float *y);
/* Fast decode-GEMV: AVX-512 (F+BW) or AVX2 chosen at run time, else portable C; OpenMP over row
 * tiles. All three sum in the same fixed order (16 lane accumulators per row tile, FMA), so they
 * are bit-identical to each other and do not depend on the thread count. HARP_ERR_OOM only if
 * the small x / y buffers cannot be allocated. */
harp_status harp_tmat_gemv(const harp_tmat *w, const float *x, float *y);

#endif
