/* One QTIP linear (§5.6.6, §5.1): Wscale = rms(W̃) / (lut_rms · so), BlockLDLQ with b = 16 over
 * the 16-column blocks from last to first, each feedback-corrected block cut into 16 × 16 tiles
 * and quantized with the two-pass tail-biting trellis. No tune sweeps (the reference has none).
 *
 * Uses harp_block_ldl (b = 16) from ldlq.c's public building blocks; the recursion itself is here
 * because harp_ldlq is tied to 8-wide vector codewords. As in ldlq.c, a row's feedback only uses
 * that row's errors, so each 16-row strip runs the whole recursion alone: strips are spread over
 * OpenMP threads with single-threaded BLAS inside, and the codes do not depend on the thread count.
 * The reference's 128-column buffering (and its n % 128 assertion) is only a memory-traffic
 * optimisation of the same sums and is not needed. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "quant_internal.h"
#include "trellis_gpu.h"
#include "trellis_kern.h"

harp_trellis_params harp_trellis_default_params(int K, harp_tcode code, const uint16_t *tlut) {
    return (harp_trellis_params){.K = K, .code = code, .tlut = tlut, .scale_override = 0.9, .regularize = 1,
                                 .sigma_reg = 0.01};
}

void harp_trellis_linear_free(harp_trellis_linear *q) {
    if (!q) return;
    harp_free(q->codes), harp_free(q->w_hat);
    q->codes = NULL, q->w_hat = NULL;
}

typedef struct {
    const harp_tcb *cb;
    int64_t np;           /* padded width                      */
    const double *Z, *L;  /* (mp, np) and (np, np)              */
    double *E;            /* (mp, np) Z − Ẑ                     */
    float *Wq;            /* (mp, np) wscale · Ẑ                */
    float wscale;
    uint16_t *codes;
} strip_job;

/* The feedback-corrected tile (strip i, block-column k) as a sequence: Z + E·L over the columns
 * after the block (already quantized), then the kernel permutation. */
static void ldlq_tile_in(const strip_job *J, int64_t i, int64_t k, float *seq) {
    const int64_t np = J->np, o = 16 * k, rest = np - o - 16;
    const double *Z = J->Z + i * 16 * np;
    double T[256];
    float tile[256];
    for (int r = 0; r < 16; r++) memcpy(T + 16 * r, Z + r * np + o, 16 * sizeof *T);
    if (rest > 0)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 16, 16, (int)rest, 1.0, J->E + i * 16 * np + o + 16,
                    (int)np, J->L + (o + 16) * np + o, (int)np, 1.0, T, 16);
    for (int e = 0; e < 256; e++) tile[e] = (float)T[e];
    trellis_tile_seq(tile, 16, seq);
}

/* The tile's path → its codes, its errors E and its scaled reconstruction Wq. */
static void ldlq_tile_out(const strip_job *J, int64_t i, int64_t k, const uint32_t *states) {
    const int64_t np = J->np, nb = np / 16, o = 16 * k;
    const double *Z = J->Z + i * 16 * np;
    double *E = J->E + i * 16 * np;
    float rec[256];
    trellis_tile_finish(J->cb, states, J->codes + (i * nb + k) * harp_tcb_words(J->cb), rec, 16);
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) {
            E[r * np + o + c] = Z[r * np + o + c] - (double)rec[16 * r + c];
            J->Wq[(i * 16 + r) * np + o + c] = J->wscale * rec[16 * r + c];
        }
}

/* The LDLQ recursion for the 16 rows of strip i. */
static void ldlq_strip(const strip_job *J, int64_t i, harp_viterbi_ws *ws) {
    float seq[HARP_TRELLIS_T];
    uint32_t states[HARP_TRELLIS_T];
    for (int64_t k = J->np / 16 - 1; k >= 0; k--) {
        ldlq_tile_in(J, i, k, seq);
        harp_viterbi_tb(J->cb, seq, states, ws, 0);
        ldlq_tile_out(J, i, k, states);
    }
}

static void strips_run(const void *ctx, int64_t i0, int64_t count, void *ws) {
    for (int64_t i = i0; i < i0 + count; i++) ldlq_strip(ctx, i, ws);
}

/* Runs every strip, one strip per chunk (progress in tiles); HARP_ERR_OOM / HARP_ERR_CANCELLED as in
 * harp_ldlq. */
static harp_status run_strips(const strip_job *J, int64_t nstrips, const harp_trellis_params *p, const char *what) {
    const harp_rowchunks_spec s = {.m = nstrips, .chunk = 1, .unit = J->np / 16, .fn = strips_run, .ctx = J,
                                   .ws_new = harp_viterbi_ws_new_any, .ws_free = harp_viterbi_ws_free_any, .ws_arg = J->cb,
                                   .stage = "trellis", .progress = p->progress, .progress_user = p->progress_user,
                                   .what = what};
    return harp_rowchunks_spec_run(&s);
}

/* The same recursion block-column by block-column (last to first): the tiles of one block-column
 * depend only on the later ones, so their Viterbi passes go as one batched call (on the device when
 * gpu is set). Each tile sees exactly the inputs of run_strips, so the codes are identical. */
static harp_status run_columns(const strip_job *J, int64_t nstrips, harp_tvit_gpu *gpu, const harp_trellis_params *p,
                               const char *what) {
    const int64_t nb = J->np / 16, S = J->cb->S;
    float *x = harp_xmalloc(sizeof(float) * HARP_TRELLIS_T * (size_t)nstrips, "trellis block-column");
    uint32_t *states = harp_xmalloc(sizeof(uint32_t) * (size_t)(S * nstrips), "trellis block-column");
    harp_status st = x && states ? HARP_OK : HARP_ERR_OOM;
    for (int64_t k = nb - 1; k >= 0 && st == HARP_OK; k--) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < nstrips; i++) ldlq_tile_in(J, i, k, x + i * HARP_TRELLIS_T);
        if ((st = harp_tvit_run(J->cb, gpu, nstrips, x, states, NULL, 0, what)) != HARP_OK) break;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < nstrips; i++) ldlq_tile_out(J, i, k, states + i * S);
        if (p->progress && p->progress(p->progress_user, "trellis", (nb - k) * nstrips, nb * nstrips))
            st = harp_err(HARP_ERR_CANCELLED, "%s: cancelled", what);
    }
    harp_free(x), harp_free(states);
    return st;
}

static harp_status check_args(const harp_trellis_params *p, int64_t m, int64_t n, const float *W, const double *H,
                              const char *what) {
    if (!p || !W || !H || m <= 0 || n <= 0 || m > (1 << 20) || n > (1 << 20))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: trellis quantizer needs W, H and 1 ≤ m, n ≤ 2^20 (got %lld × %lld)",
                        what, (long long)m, (long long)n);
    if (!(p->scale_override > 0) || !isfinite(p->scale_override))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: trellis scale_override %g must be > 0", what, p->scale_override);
    HARP_TRY(harp_check_finite_f32(W, m * n, what));
    if (p->viterbi < HARP_TVIT_STRIPS || p->viterbi > HARP_TVIT_GPU)
        return harp_err(HARP_ERR_INVALID_ARG, "%s: trellis viterbi engine %d is not 0, 1 or 2", what, p->viterbi);
    return harp_check_finite_f64(H, n * n, what);
}

harp_status harp_trellis_quantize_linear(const harp_trellis_params *p, int64_t m, int64_t n, const float *W,
                                         const double *Hin, const char *what, harp_trellis_linear *out) {
    HARP_TRY(check_args(p, m, n, W, Hin, what));
    const double t0 = harp_time_s();
    memset(out, 0, sizeof *out);
    harp_tcb cb;
    HARP_TRY(harp_tcb_init(&cb, p->code, p->K, p->tlut, what));
    const int64_t mp = (m + 15) / 16 * 16, np = (n + 15) / 16 * 16;
    const int blas_threads = harp_blas_serial_begin();
    double *H = harp_xcalloc((size_t)(np * np), sizeof *H, "trellis hessian");
    double *L = harp_xmalloc((size_t)(np * np) * sizeof *L, "trellis LDL factor");
    double *D = harp_xmalloc((size_t)(np * 16) * sizeof *D, "trellis LDL blocks");
    double *Z = harp_xcalloc((size_t)(mp * np), sizeof *Z, "trellis weights");
    double *E = harp_xcalloc((size_t)(mp * np), sizeof *E, "trellis errors");
    float *Wq = harp_xmalloc((size_t)(mp * np) * sizeof *Wq, "trellis weights");
    out->codes = harp_xmalloc(harp_tmat_code_words((int32_t)m, (int32_t)n, p->K) * sizeof *out->codes, "trellis codes");
    harp_status st = HARP_OK;
    harp_tvit_gpu *gpu = NULL;
    if (!H || !L || !D || !Z || !E || !Wq || !out->codes) {
        st = HARP_ERR_OOM;
        goto done;
    }
    if ((st = harp_hessian_padded(n, np, Hin, p->regularize, p->sigma_reg, what, H)) != HARP_OK) goto done;
    if ((st = harp_block_ldl(np, 16, H, L, D, &out->chol_jitter_steps, what)) != HARP_OK) goto done;
    double ss = 0;
    for (int64_t k = 0; k < m * n; k++) ss += (double)W[k] * (double)W[k];
    const double rms = sqrt(ss / (double)(m * n));
    /* the stored scale is fp32: every use below divides and multiplies by that same number */
    const float wscale = rms > 0 ? (float)(rms / (cb.rms * p->scale_override)) : 1.0f;
    for (int64_t r = 0; r < m; r++)
        for (int64_t c = 0; c < n; c++) Z[r * np + c] = (double)W[r * n + c] / wscale;
    const strip_job J = {&cb, np, Z, L, E, Wq, wscale, out->codes};
    if (p->viterbi == HARP_TVIT_GPU && (st = harp_tvit_gpu_create(&cb, mp / 16, what, &gpu)) != HARP_OK) goto done;
    st = p->viterbi == HARP_TVIT_STRIPS ? run_strips(&J, mp / 16, p, what) : run_columns(&J, mp / 16, gpu, p, what);
    if (st != HARP_OK) goto done;
    for (int64_t r = 0; r < m; r++) memmove(Wq + r * n, Wq + r * np, (size_t)n * sizeof *Wq);
    out->m = m, out->n = n, out->m_pad = mp, out->n_pad = np, out->K = p->K, out->code = p->code;
    out->wscale = wscale;
    if (p->code == HARP_TCODE_HYB) memcpy(out->tlut, p->tlut, sizeof out->tlut);
    out->proxy_loss = harp_proxy_loss(m, n, W, Wq, Hin);
    if (p->keep_w_hat) out->w_hat = Wq, Wq = NULL;
    out->seconds = harp_time_s() - t0;
done:
    harp_tvit_gpu_destroy(gpu);
    harp_blas_serial_end(blas_threads);
    harp_free(H), harp_free(L), harp_free(D), harp_free(Z), harp_free(E), harp_free(Wq);
    harp_tcb_free(&cb);
    if (st != HARP_OK) harp_trellis_linear_free(out);
    return st;
}
