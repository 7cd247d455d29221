/* Internals shared by the quantizer sources (not public API). */
#ifndef HARP_QUANT_INTERNAL_H
#define HARP_QUANT_INTERNAL_H

#include <cblas.h>
#include <stdint.h>

#include "harp/quant.h"
#include "quant/qblocks.h"
#include "quant/qtype_traits.h"

/* Value of a stored scalar code (the one formula every decoder uses). */
static inline double harp_scalar_value(float scale, int q, int zero) { return (double)scale * (double)(q - zero); }
/* The 2^bits values of a group's codes (bits ≤ 4), each by harp_scalar_value: the fast kernels look codes up. */
static inline void harp_scalar_lut(float scale, int zero, int bits, float *lut) {
    for (int q = 0; q < (1 << bits); q++) lut[q] = (float)harp_scalar_value(scale, q, zero);
}

/* Vector quantizer of one 8-weight block (input already divided by Wscale): writes the decoded
 * value to out[8] and the code(s) to *c1, *c2. */
typedef void (*harp_vq8_fn)(const void *ctx, const double x[8], double out[8], uint16_t *c1, uint16_t *c2);

/* BlockLDLQ with optional tune sweeps (§5.4) on Z (m, n) row-major fp64, n % 8 == 0, against the
 * SPD H (n, n) (already damped). Writes Ẑ to Zq (m, n) and codes to c1/c2 (m, n/8; c2 may be NULL).
 * Deterministic for any thread count. */
harp_status harp_ldlq(int64_t m, int64_t n, const double *Z, const double *H, harp_vq8_fn q, const void *qctx,
                      int tune_iters, double *Zq, uint16_t *c1, uint16_t *c2, int *jitter_steps, const char *what,
                      harp_progress_fn progress, void *progress_user);

/* The quantizers parallelise over independent row chunks with OpenMP and call BLAS inside the
 * parallel region; OpenBLAS (pthreads build) must then run single-threaded, both for speed (no
 * oversubscription) and so that results cannot depend on its thread count. begin returns the
 * previous setting for end. */
static inline int harp_blas_serial_begin(void) {
    int t = openblas_get_num_threads();
    if (t != 1) openblas_set_num_threads(1);
    return t;
}
static inline void harp_blas_serial_end(int prev) {
    if (prev != 1) openblas_set_num_threads(prev);
}

/* H (np, np) ← Hin (n, n), regularised (harp_hessian_regularize, sigma_reg) when asked, plus an
 * identity block for the padding columns n … np − 1, decoupled so that the padding never feeds back
 * into real columns. H must be zeroed. Errors name `what`. */
harp_status harp_hessian_padded(int64_t n, int64_t np, const double *Hin, int regularize, double sigma_reg,
                                const char *what, double *H);

/* Row-chunk driver of the row-parallel solvers (GPTQ, LDLQ, the trellis strips and tiles): rows
 * [0, m) in chunks of `chunk` rows (the chunking does not depend on the thread count), chunks spread
 * over OpenMP threads (dynamic, one at a time), each thread with its own workspace: ws_new(ws_arg)
 * makes it (NULL when out of memory), ws_free(ws) releases it. fn(ctx, r0, rc, ws) runs one chunk.
 * Progress (stage, unit · rows done, unit · m) is reported from thread 0 and once at the end; a
 * non-zero answer stops with HARP_ERR_CANCELLED. Errors name `what`. */
typedef void (*harp_rowchunk_fn)(const void *ctx, int64_t r0, int64_t rc, void *ws);
typedef struct harp_rowchunks_spec {
    int64_t m, chunk, unit; /* unit: progress units per row (1 when 0) */
    harp_rowchunk_fn fn;
    const void *ctx;
    void *(*ws_new)(const void *ws_arg);
    void (*ws_free)(void *ws);
    const void *ws_arg;
    const char *stage;
    harp_progress_fn progress; /* may be NULL */
    void *progress_user;
    const char *what;
} harp_rowchunks_spec;
harp_status harp_rowchunks_spec_run(const harp_rowchunks_spec *s);
/* The same with a 64-byte aligned scratch of scratch_bytes per thread and one progress unit per row. */
harp_status harp_rowchunks_run(int64_t m, int64_t chunk, size_t scratch_bytes, harp_rowchunk_fn fn, const void *ctx,
                               const char *stage, harp_progress_fn progress, void *progress_user, const char *what);

/* The group grid of a scalar solver: harp_rtn_fit, or the MSE-clipped grid (harp_wq_fit_mse with
 * harp_wclip_default, aq.h) when p->mse_clip. */
void harp_scalar_fit(const harp_quant_params *p, const double *x, int64_t len, float *scale, int *zero);
/* harp_scalar_fit on every group of g columns of every row of W (m, n) into the (m, ⌈n/g⌉) planes,
 * rows in parallel (bit-identical for any thread count); columns whose H_ii is 0 count as 0 when H is
 * given (GPTQ's dead inputs). */
harp_status harp_scalar_fit_rows(const harp_quant_params *p, int64_t m, int64_t n, int64_t g, const float *W,
                                 const double *H, float *scale, uint8_t *zero, const char *what);

/* Solvers (called by harp_quantize_linear after argument checks; out is initialised with its type
 * and shape). Scalar solvers write the scales / zeros / g_idx planes and the unpacked codes q (m, n);
 * harp_quantize_linear packs q into the qweight plane. The QuIP# solver writes every plane and its
 * fp64 reconstruction Zq (m, n) for the proxy loss. */
harp_status harp_rtn_quantize(const harp_quant_params *p, int64_t m, int64_t n, const float *W, harp_qtensor *out,
                              uint8_t *q);
harp_status harp_gptq_quantize(const harp_quant_params *p, int64_t m, int64_t n, const float *W, const double *H,
                               const char *what, harp_qtensor *out, uint8_t *q);
harp_status harp_quip_quantize(const harp_quant_params *p, int64_t m, int64_t n, const float *W, const double *H,
                               const char *what, harp_qtensor *out, float *Wh);

/* GPTQ's column recursion with a caller's quantizer (the LDP fit): qcol codes w, the current
 * error-updated value of (row, col), returning the code and its value *wq. */
typedef int (*harp_gptq_qcol_fn)(const void *ctx, int64_t row, int64_t col, double w, double *wq);
/* U upper with (damped H)^{-1} = Uᵀ U from the undamped Hin (n, n), as GPTQ computes it (dead inputs
 * get H_ii = 1, then percdamp · mean diag). */
harp_status harp_gptq_factor(int64_t n, const double *Hin, double percdamp, double *U, int *jitter, const char *what);
/* Columns in order, rows in chunks over threads (thread-count independent), lazy block updates of
 * width bs: q (m, n) receives the codes of W0 (m, n, not modified; dead columns already zeroed). */
harp_status harp_gptq_feedback(int64_t m, int64_t n, const double *W0, const double *U, int64_t bs, harp_gptq_qcol_fn qcol,
                               const void *qctx, uint8_t *q, harp_progress_fn progress, void *progress_user,
                               const char *what);

/* Planes of the scalar types: 0 qweight, 1 scales, 2 zeros, 3 g_idx (optional). */
enum { QT_SC_QWEIGHT = 0, QT_SC_SCALES = 1, QT_SC_ZEROS = 2, QT_SC_GIDX = 3 };
/* Allocates the zeroed scales and zeros planes (and g_idx with with_gidx) of an initialised out. */
harp_status harp_scalar_alloc_planes(harp_qtensor *out, int with_gidx);

/* ---- kernels of the traits rows (src/quant/qt_*.c) ----------------------------------------------- */
void qt_dense_dequant_rows(const harp_qtensor *w, int64_t r0, int64_t r1, float *out, size_t ld);
void qt_dense_gemv_ref(const harp_qtensor *w, const float *x, float *y);
harp_status qt_dense_gemv(const harp_qtensor *w, const float *x, float *y, int act_q8);
harp_status qt_dense_mm(const harp_qtensor *w, const float *X, int64_t rows, float *Y);

void qt_scalar_dequant_rows(const harp_qtensor *w, int64_t r0, int64_t r1, float *out, size_t ld);
void qt_scalar_gemv_ref(const harp_qtensor *w, const float *x, float *y);
harp_status qt_scalar_gemv(const harp_qtensor *w, const float *x, float *y, int act_q8);
/* 1 when the AVX2 int4 rows apply to w (int4, no act-order, n and the group size multiples of 8, the CPU
 * has AVX2 and harp_qgemv_max_isa allows it); then qt_scalar4_rows8_avx2 gives rows r0 … r0 + 7 of the
 * product in out[8] with the reference's bits. */
int qt_scalar4_avx2_applies(const harp_qtensor *w);
void qt_scalar4_rows8_avx2(const harp_qtensor *w, int64_t r0, const float *x, double *out);

void qt_e8p_decode(harp_qtensor *w);
void qt_e8p_view(const harp_qtensor *w, harp_e8p_view *v);
void qt_e8p_dequant_rows(const harp_qtensor *w, int64_t r0, int64_t r1, float *out, size_t ld);
void qt_e8p_gemv_ref(const harp_qtensor *w, const float *x, float *y);
harp_status qt_e8p_gemv(const harp_qtensor *w, const float *x, float *y, int act_q8);

void qt_ldp_dequant_rows(const harp_qtensor *w, int64_t r0, int64_t r1, float *out, size_t ld);
void qt_ldp_gemv_ref(const harp_qtensor *w, const float *x, float *y);
harp_status qt_ldp_gemv(const harp_qtensor *w, const float *x, float *y, int act_q8);
/* The int4-activation rows on AVX-512 (qt_ldp_avx512.c): usable when every group starts on a 64-column
 * block (qk_ldp_a4_fits) and qk_q8_simd(). prep stores the int8 codes xq in the kernel's column order
 * (xp: 64·qk_ldp_a4_blocks(n) bytes) and each group's lane sums (xg: 16·n_groups); rows [r0, r1) of
 * y = s·W·xq then need lv, 4·n_groups + 16 floats of scratch. */
int64_t qk_ldp_a4_blocks(int64_t n);
int qk_ldp_a4_fits(const harp_qtensor *w);
void qk_ldp_a4_prep(const harp_qtensor *w, const int8_t *xq, int8_t *xp, int32_t *xg);
void qk_ldp_a4_rows_avx512(const harp_qtensor *w, const int8_t *xp, const int32_t *xg, float s, float *lv, float *y, int64_t r0,
                           int64_t r1);
/* levels plane rule: count fp16 values, finite, each run of 4 non-decreasing */
harp_status qt_ldp_check_levels(const void *p, int64_t count, const char *file, const char *prefix, const char *suffix);
void qt_trellis_decode(harp_qtensor *w);
void qt_trellis_dequant_rows(const harp_qtensor *w, int64_t r0, int64_t r1, float *out, size_t ld);
void qt_trellis_gemv_ref(const harp_qtensor *w, const float *x, float *y);
harp_status qt_trellis_gemv(const harp_qtensor *w, const float *x, float *y, int act_q8);
harp_status qt_trellis_check(const harp_qtensor *w, const char *what);
/* QTIP solver (qt_trellis.c): BlockLDLQ b = 16 + tail-biting trellis into every plane of out;
 * Wh (m, n) receives the reconstruction (bit-identical to decoding the planes). */
harp_status harp_qtip_quantize(const harp_quant_params *p, int64_t m, int64_t n, const float *W, const double *H,
                               const char *what, harp_qtensor *out, float *Wh);

#endif
