/* Quantized-matrix storage (E8P12 2-bit, RVQ 3/4-bit) and the CPU inference kernels:
 * decode-GEMV (batch 1, codes decoded on the fly, never a dense copy of W), a row-tile
 * dequantizer plus sgemm for prompts, and the fused input/output transforms around the GEMV.
 * Bit-level layout: docs/format/e8p.md. The same struct is meant for a CUDA kernel. */
#ifndef HARP_QKERNELS_H
#define HARP_QKERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "harp/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum harp_qfmt {
    HARP_QFMT_E8P2 = 1,   /* one E8P12 code plane: 16 bits per 8 weights */
    HARP_QFMT_RVQ3 = 2,   /* E8P12 plane + E81B plane (8 bits per 8 weights) */
    HARP_QFMT_RVQ4 = 3    /* two E8P12 planes */
} harp_qfmt;

/* A quantized matrix W̃ (m × n, y = W̃ x) in the rotated basis:
 *   W̃[r][8k + i] = scale0 · dec0(codes0[r·ncode + k])_i + scale1 · dec1(codes1[r·ncode + k])_i
 * where dec0 is the E8P12 decoder and dec1 the E8P12 (RVQ4) or E81B (RVQ3) decoder (algorithms.md
 * §5.2.1, §5.3); for E8P2 the second term is absent. For RVQ, scale1 = scale0 / resid_scale.
 * Codes run along the input dimension, row-major, ncode = ceil(n / 8) codes per row: when
 * n % 8 != 0 the last code of a row covers columns beyond n, which are padding — the kernels treat
 * x as zero there, so the padding codes' values never matter. Rows are not padded. */
typedef struct harp_qmat {
    int32_t fmt;               /* harp_qfmt */
    int32_t m, n;              /* logical shape */
    int32_t ncode;             /* codes per row = ceil(n / 8) */
    float scale0, scale1;      /* per-stage scales (scale1 = 0 for E8P2) */
    const uint16_t *codes0;    /* [m][ncode] E8P12 codes */
    const void *codes1;        /* RVQ4: uint16 [m][ncode]; RVQ3: uint8 [m][ncode]; E8P2: NULL */
} harp_qmat;

/* Bytes of code storage (both planes) of an m × n matrix of the given format; 0 if invalid. */
size_t harp_qmat_code_bytes(harp_qfmt fmt, int32_t m, int32_t n);
/* Fills the header fields of *w (codes pointers left NULL); checks the shape. */
harp_status harp_qmat_init(harp_qmat *w, harp_qfmt fmt, int32_t m, int32_t n, float scale0,
                           float scale1);
/* Validates a header + pointers (shape, ncode, scales finite, planes present); `what` names the
 * matrix in the error message. */
harp_status harp_qmat_check(const harp_qmat *w, const char *what);

/* y[m] = W̃ x[n]. Scalar reference (double accumulation): it defines the format. For all GEMV
 * entry points w must have passed harp_qmat_check; x has n floats, y m floats. */
void harp_qgemv_ref(const harp_qmat *w, const float *x, float *y);
/* Optimized decode-GEMV: AVX2+FMA when the CPU has it (chosen at run time), portable C
 * otherwise; rows split across OpenMP threads (each row summed by one thread in a fixed order, so
 * results do not depend on the thread count). */
void harp_qgemv(const harp_qmat *w, const float *x, float *y);

/* Kernel variants of harp_qgemv, best first available at run time. */
typedef enum harp_qisa { HARP_QISA_PORTABLE = 0, HARP_QISA_AVX2 = 1 } harp_qisa;
/* Variant harp_qgemv uses now: "avx2" or "portable". */
const char *harp_qgemv_isa(void);
/* Caps the variant (tests, benchmarks). harp_qgemv_force_portable(1) = cap at portable, (0) = no
 * cap. Process-wide, not thread-safe. */
void harp_qgemv_max_isa(harp_qisa isa);
void harp_qgemv_force_portable(int on);
/* SIMD decode source: 0 (default) = the 512 KiB int8 table of all 65 536 codewords times 4 (one
 * load per code), 1 = the 8 KiB abs / sign / shift tables (L1-resident, ~2x the instructions).
 * Identical decoded values. */
void harp_qgemv_small_tables(int on);
/* The portable C kernel alone (same summation order as the AVX2 one, without FMA). */
void harp_qgemv_portable(const harp_qmat *w, const float *x, float *y);

/* Int8-activation decode-GEMV: x is rounded to int8 in blocks of 512 columns (scale absmax/127),
 * the codes are decoded exactly and the block dot products are exact integer sums (AVX-512
 * VBMI + VNNI + BITALG when the CPU has them, chosen at run time; portable C otherwise, same bits).
 * Deviation from harp_qgemv_ref: |Δy_r| ≤ Σ_c |W̃[r][c]| · scale_block(c) / 2 (+ fp32 rounding).
 * Deterministic for any thread count. HARP_ERR_OOM if the small activation buffer cannot be
 * allocated. */
harp_status harp_qgemv_q8(const harp_qmat *w, const float *x, float *y);
harp_status harp_qgemv_q8_portable(const harp_qmat *w, const float *x, float *y);
/* "avx512vnni" or "portable" (capped to portable by harp_qgemv_max_isa(HARP_QISA_PORTABLE)). */
const char *harp_qgemv_q8_isa(void);
/* Process-wide switch (default 0): 1 makes harp_qgemv, hence harp_qlinear_forward, use the
 * int8-activation path. Not thread-safe; set it before inference starts. */
void harp_qgemv_act_q8(int on);

/* Dense dequantization of rows [r0, r1) into out (row stride ld ≥ n floats, n columns written).
 * Bit-identical to the decoded values of harp_qgemv_ref. For the prompt path, on tiles only. */
void harp_qmat_dequant_rows(const harp_qmat *w, int32_t r0, int32_t r1, float *out, size_t ld);

/* Prompt path: Y[b][m] = X[b][n] · W̃ᵀ for b rows of activations, dequantizing 64-row tiles of W̃
 * into a small buffer and calling sgemm on each (never the whole dense matrix). */
harp_status harp_qgemm(const harp_qmat *w, const float *x, int32_t b, float *y);

/* In-place transform of a vector (its length is fixed by the caller's setup). */
typedef void (*harp_qvec_fn)(void *user, float *v);

/* Input / output transforms fused around the GEMV (RHT: in_mul = s_in, in_fn = Had_nᵀ·;
 * out_fn = Had_m·, out_mul = s_out·Wscale·rms, §2.2):
 *   x̃ = in_fn(x ⊙ in_mul);  ỹ = W̃ x̃;  y = out_fn(ỹ) ⊙ out_mul.
 * Any member may be NULL (identity). */
typedef struct harp_qxform {
    const float *in_mul;       /* [n] */
    harp_qvec_fn in_fn;
    void *in_user;
    harp_qvec_fn out_fn;
    void *out_user;
    const float *out_mul;      /* [m] */
} harp_qxform;

/* y[m] = out_fn(W̃ · in_fn(x ⊙ in_mul)) ⊙ out_mul. scratch: n floats, required when in_mul or
 * in_fn is set (x is not modified). w must pass harp_qmat_check (the kernels do not re-check). */
void harp_qlinear_forward(const harp_qmat *w, const harp_qxform *t, const float *x, float *y,
                          float *scratch);

/* In-place normalised fast Walsh–Hadamard transform (natural order, scale 1/√n) for n a power of
 * two (plain C, vectorised by the compiler; it costs n·log2 n adds, small next to the GEMV). A
 * local helper for benchmarks and tests until the rotation module's transforms are wired in.
 * Returns HARP_ERR_INVALID_ARG if n is not a power of two. */
harp_status harp_fwht_f32(float *v, int32_t n);

#ifdef HARP_HAVE_CUDA
/* CUDA decode-GEMV (built with -DHARP_CUDA=ON; src/cuda/qgemv_e8p.cu). harp_qgemv_cuda: code
 * planes, x and y are device pointers, launched on the default stream (asynchronous). The _host
 * variant copies host data to the device and back (tests). HARP_ERR_NO_DEVICE without a GPU. */
harp_status harp_qgemv_cuda(const harp_qmat *w, const float *x, float *y);
harp_status harp_qgemv_cuda_host(const harp_qmat *w, const float *x, float *y);
#endif

#ifdef __cplusplus
}
#endif
#endif
