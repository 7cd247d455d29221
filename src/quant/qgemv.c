/* Quantized matrix header checks, the reference decode-GEMV, the portable kernel, run-time
 * dispatch, tile dequantization + sgemm (prompt path) and the fused transforms. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#include "core/core.h"
#include "harp/qkernels.h"
#include "quant/e8p.h"
#include "quant/qgemv_tab.h"
#include "quant/qgemv_q8.h"

_Static_assert(sizeof(uint16_t) == 2, "16-bit codes");
_Static_assert(sizeof(float) == 4, "fp32");
_Static_assert(offsetof(harp_qmat, scale0) == 16, "harp_qmat layout is shared with CUDA code");
_Static_assert(offsetof(harp_qmat, codes0) == 24, "harp_qmat layout is shared with CUDA code");
_Static_assert(sizeof(harp_qmat) == 24 + 2 * sizeof(void *), "harp_qmat has no hidden padding");
_Static_assert(sizeof(((qk_tables *)0)->absf) == 256 * 8 * 4, "abs table");

/* ---- header -------------------------------------------------------------------------------- */

size_t harp_qmat_code_bytes(harp_qfmt fmt, int32_t m, int32_t n) {
    if (m <= 0 || n <= 0) return 0;
    size_t cells = (size_t)m * (size_t)((n + 7) / 8);
    switch (fmt) {
    case HARP_QFMT_E8P2: return cells * 2;
    case HARP_QFMT_RVQ3: return cells * 3;
    case HARP_QFMT_RVQ4: return cells * 4;
    }
    return 0;
}

harp_status harp_qmat_init(harp_qmat *w, harp_qfmt fmt, int32_t m, int32_t n, float scale0,
                           float scale1) {
    memset(w, 0, sizeof *w);
    if (harp_qmat_code_bytes(fmt, m, n) == 0)
        return harp_err(HARP_ERR_INVALID_ARG, "quantized matrix: bad format %d or shape %dx%d",
                        (int)fmt, (int)m, (int)n);
    w->fmt = fmt;
    w->m = m;
    w->n = n;
    w->ncode = (n + 7) / 8;
    w->scale0 = scale0;
    w->scale1 = fmt == HARP_QFMT_E8P2 ? 0.0f : scale1;
    return HARP_OK;
}

harp_status harp_qmat_check(const harp_qmat *w, const char *what) {
    if (!what) what = "quantized matrix";
    if (!w) return harp_err(HARP_ERR_INVALID_ARG, "%s: NULL", what);
    if (harp_qmat_code_bytes((harp_qfmt)w->fmt, w->m, w->n) == 0)
        return harp_err(HARP_ERR_FORMAT, "%s: bad format %d or shape %dx%d", what, (int)w->fmt,
                        (int)w->m, (int)w->n);
    if (w->ncode != (w->n + 7) / 8)
        return harp_err(HARP_ERR_SHAPE, "%s: %d codes per row, expected %d for %d columns", what,
                        (int)w->ncode, (int)((w->n + 7) / 8), (int)w->n);
    if (!isfinite(w->scale0) || !isfinite(w->scale1))
        return harp_err(HARP_ERR_NUMERIC, "%s: non-finite scale", what);
    if (!w->codes0) return harp_err(HARP_ERR_INVALID_ARG, "%s: missing code plane 0", what);
    if (w->fmt != HARP_QFMT_E8P2 && !w->codes1)
        return harp_err(HARP_ERR_INVALID_ARG, "%s: missing code plane 1", what);
    return HARP_OK;
}

/* ---- reference ----------------------------------------------------------------------------- */

static void dec1(const harp_qmat *w, size_t idx, float out[8]) {
    if (w->fmt == HARP_QFMT_RVQ4) e8p_decode(((const uint16_t *)w->codes1)[idx], out);
    else if (w->fmt == HARP_QFMT_RVQ3) e81b_decode(((const uint8_t *)w->codes1)[idx], out);
    else memset(out, 0, 8 * sizeof(float));
}

void harp_qgemv_ref(const harp_qmat *w, const float *x, float *y) {
    for (int32_t r = 0; r < w->m; r++) {
        double s0 = 0, s1 = 0;
        for (int32_t k = 0; k < w->ncode; k++) {
            size_t idx = (size_t)r * w->ncode + k;
            float a[8], b[8];
            e8p_decode(w->codes0[idx], a);
            dec1(w, idx, b);
            for (int i = 0; i < 8 && 8 * k + i < w->n; i++) {
                s0 += (double)a[i] * x[8 * k + i];
                s1 += (double)b[i] * x[8 * k + i];
            }
        }
        y[r] = (float)((double)w->scale0 * s0 + (double)w->scale1 * s1);
    }
}

void harp_qmat_dequant_rows(const harp_qmat *w, int32_t r0, int32_t r1, float *out, size_t ld) {
    for (int32_t r = r0; r < r1; r++) {
        float *o = out + (size_t)(r - r0) * ld;
        for (int32_t k = 0; k < w->ncode; k++) {
            size_t idx = (size_t)r * w->ncode + k;
            float a[8], b[8];
            e8p_decode(w->codes0[idx], a);
            dec1(w, idx, b);
            for (int i = 0; i < 8 && 8 * k + i < w->n; i++)
                o[8 * k + i] = w->scale0 * a[i] + w->scale1 * b[i];
        }
    }
}

/* ---- tables -------------------------------------------------------------------------------- */

static qk_tables g_tab;
static pthread_once_t g_tab_once = PTHREAD_ONCE_INIT;

static void build_tab(void) {
    const uint32_t *P = e8p_packed();
    for (int a = 0; a < 256; a++)
        for (int i = 0; i < 8; i++) {
            int nib = (int)((P[a] >> (4 * e8p_sigma[i])) & 15u);
            g_tab.absf[a][i] = (float)(2 * (nib - 8));
        }
    for (int b = 0; b < 256; b++) {
        unsigned par = (unsigned)__builtin_popcount((unsigned)b) & 1u;
        unsigned e = (unsigned)b ^ par;
        for (int i = 0; i < 8; i++) g_tab.sgn[b][i] = ((e >> e8p_sigma[i]) & 1u) ? 0x80000000u : 0u;
        g_tab.shift[b] = par ? -1.0f : 1.0f;
    }
    const float *E = e81b_codebook();
    for (int c = 0; c < 256; c++)
        for (int i = 0; i < 8; i++) g_tab.e81b[c][i] = 4.0f * E[8 * c + i];
}

const qk_tables *qk_tables_get(void) {
    pthread_once(&g_tab_once, build_tab);
    return &g_tab;
}

/* ---- portable kernel ----------------------------------------------------------------------- */

/* Same order as the AVX2 kernel: 8 lane accumulators per plane over the codes of a row, then the
 * lanes are reduced as ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). Only FMA rounding differs. */
static float lane_sum(const float l[8]) {
    float a0 = l[0] + l[4], a1 = l[1] + l[5], a2 = l[2] + l[6], a3 = l[3] + l[7];
    return (a0 + a2) + (a1 + a3);
}

void qk_gemv_rows_portable(const harp_qmat *w, const qk_tables *t, const float *x, float *y,
                           int32_t r0, int32_t r1) {
    const int32_t nc = w->ncode, n = w->n;
    for (int32_t r = r0; r < r1; r++) {
        const uint16_t *c0 = w->codes0 + (size_t)r * nc;
        float acc0[8] = {0}, acc1[8] = {0};
        for (int32_t k = 0; k < nc; k++) {
            float xv[8];
            for (int i = 0; i < 8; i++) xv[i] = 8 * k + i < n ? x[8 * k + i] : 0.0f;
            unsigned a = c0[k] >> 8, b = c0[k] & 255u;
            for (int i = 0; i < 8; i++) {
                uint32_t u;
                float f;
                memcpy(&u, &t->absf[a][i], 4);
                u ^= t->sgn[b][i];
                memcpy(&f, &u, 4);
                acc0[i] += (f + t->shift[b]) * xv[i];
            }
            if (w->fmt == HARP_QFMT_RVQ4) {
                uint16_t c = ((const uint16_t *)w->codes1)[(size_t)r * nc + k];
                unsigned a1 = c >> 8, b1 = c & 255u;
                for (int i = 0; i < 8; i++) {
                    uint32_t u;
                    float f;
                    memcpy(&u, &t->absf[a1][i], 4);
                    u ^= t->sgn[b1][i];
                    memcpy(&f, &u, 4);
                    acc1[i] += (f + t->shift[b1]) * xv[i];
                }
            } else if (w->fmt == HARP_QFMT_RVQ3) {
                uint8_t c = ((const uint8_t *)w->codes1)[(size_t)r * nc + k];
                for (int i = 0; i < 8; i++) acc1[i] += t->e81b[c][i] * xv[i];
            }
        }
        float s0 = lane_sum(acc0), s1 = lane_sum(acc1);
        y[r] = (w->scale0 * s0 + w->scale1 * s1) * 0.25f;
    }
}

/* ---- dispatch ------------------------------------------------------------------------------ */

static int g_small_tables;
static int g_max_isa = HARP_QISA_AVX2;

void harp_qgemv_force_portable(int on) { g_max_isa = on ? HARP_QISA_PORTABLE : HARP_QISA_AVX2; }
void harp_qgemv_small_tables(int on) { g_small_tables = on != 0; }
void harp_qgemv_max_isa(harp_qisa isa) { g_max_isa = isa; }

/* The variant harp_qgemv runs now: the best the CPU has, capped by harp_qgemv_max_isa. (An
 * AVX-512 variant, two codes per 16-lane FMA, measured no faster — 0.87 vs 0.88 ms for 4096×4096 —
 * because the decode is bound by the table loads, not by vector width; it was dropped.) */
static harp_qisa current_isa(void) {
    if (g_max_isa >= HARP_QISA_AVX2 && qk_have_avx2()) return HARP_QISA_AVX2;
    return HARP_QISA_PORTABLE;
}

const char *harp_qgemv_isa(void) {
    switch (current_isa()) {
    case HARP_QISA_AVX2: return "avx2";
    default: return "portable";
    }
}

#define QK_ROW_BLOCK 16

static void run_rows(const harp_qmat *w, const float *x, float *y, harp_qisa isa) {
    const qk_tables *t = qk_tables_get();
    /* NULL if the 512 KiB table could not be allocated: the small tables give the same bits. */
    const int8_t *full = isa != HARP_QISA_PORTABLE && !g_small_tables ? e8p_codebook_x4() : NULL;
    const int32_t nb = (w->m + QK_ROW_BLOCK - 1) / QK_ROW_BLOCK;
    /* Rows are independent and each is summed by one thread in a fixed order: deterministic for
     * any thread count and schedule. Dynamic chunks of 64 rows: on a shared machine one worker
     * may be descheduled, and a static split would make the whole GEMV wait for it. Small
     * matrices stay on one thread (fork/join costs more than the work). */
    const int par = (int64_t)w->m * w->ncode >= 32768;
#pragma omp parallel for schedule(dynamic, 4) if (par)
    for (int32_t bi = 0; bi < nb; bi++) {
        int32_t r0 = bi * QK_ROW_BLOCK, r1 = r0 + QK_ROW_BLOCK < w->m ? r0 + QK_ROW_BLOCK : w->m;
        if (isa == HARP_QISA_AVX2) qk_gemv_rows_avx2(w, t, full, x, y, r0, r1);
        else qk_gemv_rows_portable(w, t, x, y, r0, r1);
    }
}

/* ---- int8-activation path (qgemv_q8.c) ---------------------------------------------------- */

static int g_act_q8;

void harp_qgemv_act_q8(int on) { g_act_q8 = on != 0; }

const char *harp_qgemv_q8_isa(void) {
    return g_max_isa >= HARP_QISA_AVX2 && qk_have_avx512q8() ? "avx512vnni" : "portable";
}

static harp_status q8_run(const harp_qmat *w, const float *x, float *y, int simd) {
    const int32_t nblk = (w->n + QK_Q8_BLOCK - 1) / QK_Q8_BLOCK;
    qk_xq8 q;
    void *buf = harp_aligned_alloc((size_t)nblk * (QK_Q8_BLOCK + 8), "int8 activations");
    if (!buf) return HARP_ERR_OOM;
    q.xt = buf;
    q.scale = (float *)(q.xt + (size_t)nblk * QK_Q8_BLOCK);
    q.sum = (int32_t *)(q.scale + nblk);
    qk_q8_quantize_x(x, w->n, &q);
    qk_q8_tables();
    const int32_t nb = (w->m + QK_ROW_BLOCK - 1) / QK_ROW_BLOCK;
    const int par = (int64_t)w->m * w->ncode >= 32768;
#pragma omp parallel for schedule(dynamic, 4) if (par)
    for (int32_t bi = 0; bi < nb; bi++) {
        int32_t r0 = bi * QK_ROW_BLOCK, r1 = r0 + QK_ROW_BLOCK < w->m ? r0 + QK_ROW_BLOCK : w->m;
        if (simd) qk_q8_rows_avx512(w, &q, y, r0, r1);
        else qk_q8_rows_portable(w, &q, y, r0, r1);
    }
    harp_free_aligned(buf);
    return HARP_OK;
}

harp_status harp_qgemv_q8(const harp_qmat *w, const float *x, float *y) {
    return q8_run(w, x, y, strcmp(harp_qgemv_q8_isa(), "portable") != 0);
}

harp_status harp_qgemv_q8_portable(const harp_qmat *w, const float *x, float *y) { return q8_run(w, x, y, 0); }

void harp_qgemv(const harp_qmat *w, const float *x, float *y) {
    if (g_act_q8 && harp_qgemv_q8(w, x, y) == HARP_OK) return;
    run_rows(w, x, y, current_isa());
}

void harp_qgemv_portable(const harp_qmat *w, const float *x, float *y) {
    run_rows(w, x, y, HARP_QISA_PORTABLE);
}

/* ---- prompt path --------------------------------------------------------------------------- */

#define QK_TILE_ROWS 64

harp_status harp_qgemm(const harp_qmat *w, const float *x, int32_t b, float *y) {
    HARP_TRY(harp_qmat_check(w, "harp_qgemm"));
    if (b <= 0) return harp_err(HARP_ERR_INVALID_ARG, "harp_qgemm: batch %d", (int)b);
    float *tile = harp_aligned_alloc((size_t)QK_TILE_ROWS * w->n * sizeof(float), "dequant tile");
    if (!tile) return HARP_ERR_OOM;
    for (int32_t r0 = 0; r0 < w->m; r0 += QK_TILE_ROWS) {
        int32_t r1 = r0 + QK_TILE_ROWS < w->m ? r0 + QK_TILE_ROWS : w->m;
        harp_qmat_dequant_rows(w, r0, r1, tile, (size_t)w->n);
        /* Y[:, r0:r1] = X · tileᵀ */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, r1 - r0, w->n, 1.0f, x, w->n, tile,
                    w->n, 0.0f, y + r0, w->m);
    }
    harp_free_aligned(tile);
    return HARP_OK;
}

/* ---- fused transforms ---------------------------------------------------------------------- */

void harp_qlinear_forward(const harp_qmat *w, const harp_qxform *t, const float *x, float *y,
                          float *scratch) {
    const float *xin = x;
    if (t && (t->in_mul || t->in_fn)) {
        if (t->in_mul)
            for (int32_t i = 0; i < w->n; i++) scratch[i] = x[i] * t->in_mul[i];
        else memcpy(scratch, x, (size_t)w->n * sizeof(float));
        if (t->in_fn) t->in_fn(t->in_user, scratch);
        xin = scratch;
    }
    harp_qgemv(w, xin, y);
    if (t && t->out_fn) t->out_fn(t->out_user, y);
    if (t && t->out_mul)
        for (int32_t i = 0; i < w->m; i++) y[i] *= t->out_mul[i];
}

/* ---- FWHT ---------------------------------------------------------------------------------- */

harp_status harp_fwht_f32(float *v, int32_t n) {
    if (n <= 0 || (n & (n - 1)))
        return harp_err(HARP_ERR_INVALID_ARG, "fwht: length %d is not a power of two", (int)n);
    for (int32_t h = 1; h < n; h *= 2)
        for (int32_t i = 0; i < n; i += 2 * h)
            for (int32_t j = i; j < i + h; j++) {
                float a = v[j], b = v[j + h];
                v[j] = a + b;
                v[j + h] = a - b;
            }
    const float s = 1.0f / sqrtf((float)n);
    for (int32_t i = 0; i < n; i++) v[i] *= s;
    return HARP_OK;
}
