/* E8P12 lattice codebook (2 bits/weight, 8 weights per 16-bit code), the E81B 1-bit residual
 * codebook and the residual (RVQ) 3/4-bit decoders — algorithms.md §5.2.1 and §5.3.
 *
 * Tables are built once from the construction rules (not pasted) on first use; every accessor is
 * thread-safe. Internal API shared by the quantizer (encoder) and the inference kernels. */
#ifndef HARP_QUANT_E8P_H
#define HARP_QUANT_E8P_H

#include <stddef.h>
#include <stdint.h>

#define E8P_NCODES 65536
#define E8P_NABS 256       /* abs-grid entries (high byte of a code) */
#define E8P_NABS_BASE 227  /* entries with norm^2 <= 10; the other 29 have norm^2 12 */
#define E81B_NCODES 256
#define E81B_ORIGIN 56     /* E81B index of the zero vector */

/* Reference scale constants (§5.1 table): Wscale = rms(W)/opt_scale; residual multiplier r. */
#define E8P_OPT_SCALE 1.03f
#define RVQ3_OPT_SCALE 0.98f
#define RVQ3_RESID_SCALE 2.04f
#define RVQ4_OPT_SCALE 1.03f
#define RVQ4_RESID_SCALE 3.45f

/* Nibble permutation: coordinate i of an abs vector lives in nibble e8p_sigma[i] of P[a], and its
 * sign is bit e8p_sigma[i] of the (parity-corrected) sign byte. */
extern const uint8_t e8p_sigma[8];

/* Abs grid A[a] in units of 1/2: e8p_abs2()[8a + i] = 2·A[a]_i ∈ {1, 3, 5}. 256×8 bytes. */
const uint8_t *e8p_abs2(void);
/* Packed abs words P[256] (§5.2.1: nibble σ(i) = 2·â_i + 8, â = A with coord 7 negated when
 * Σ A is odd). */
const uint32_t *e8p_packed(void);
/* 4·‖A[a]‖² (an integer: 8, 16, ..., 48) and Σ_i A[a]_i (an integer) for each abs entry. */
const uint8_t *e8p_abs_norm2x4(void);
const uint8_t *e8p_abs_sum(void);

/* Scalar reference decoder; defines the code → vector map. */
void e8p_decode(uint16_t code, float out[8]);
/* Same vector times 4: odd integers in [-15, 15] (exact). */
void e8p_decode_x4(uint16_t code, int8_t out[8]);
/* All 65 536 decoded vectors, [code][8] float (2 MiB), built on first call. */
const float *e8p_codebook(void);
/* Same, times 4, as int8 [code][8] (512 KiB). */
const int8_t *e8p_codebook_x4(void);
/* Brute-force nearest codeword (argmin over all 65 536, ties to the lower code). Slow: for tests. */
uint16_t e8p_nearest_bruteforce(const float x[8]);

/* E81B: the 241 E8 points of norm^2 <= 2 + 15 points ±2e_i (§5.3), [idx][8] float. */
const float *e81b_codebook(void);
void e81b_decode(uint8_t idx, float out[8]);
/* Brute-force nearest E81B entry (ties to the lower index). */
uint8_t e81b_nearest(const float x[8]);

/* Residual decoders: dec(c0) + dec(c1) / r (r = resid_scale), in float, in that order. */
void rvq4_decode(uint16_t c0, uint16_t c1, float resid_scale, float out[8]);
void rvq3_decode(uint16_t c0, uint8_t c1, float resid_scale, float out[8]);

/* QuIP#'s CUDA layout (algorithms.md §5.2.3), a permutation of the row-major codes [m][ncode]:
 * rows padded to a multiple of 16 and code columns to a multiple of 8 with code 0. Word (r, k):
 * ((R·(nc8/8) + k/8)·8 + (r%16)/2)·4 + (k%8)/2 with R = r/16; slot i = r%2 + 2·(k%2); low 32 bits:
 * byte i = abs index; high 32 bits: bit 4j + i = sign bit j of slot i. */
size_t e8p_gpu_words(int32_t m, int32_t ncode);
void e8p_pack_gpu(const uint16_t *codes, int32_t m, int32_t ncode, uint64_t *words);
void e8p_unpack_gpu(const uint64_t *words, int32_t m, int32_t ncode, uint16_t *codes);

#endif
