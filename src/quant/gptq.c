/* GPTQ (§6.2, QuaRot/SpinQuant gptq_utils): column-by-column rounding with error feedback through the
 * upper Cholesky factor of H^{-1}, lazy block updates of width block_size, dynamic or static groups,
 * optional act-order, min/max or MSE-clipped group grids (harp_scalar_fit). fp64 throughout.
 *
 * Deliberate detail: dynamic group parameters are fitted on the current, fully error-updated
 * columns (the spec's wording; for a group reaching past the current block the pending lazy update
 * is applied to a copy first), so the result equals the textbook column-by-column algorithm. The
 * reference fits on W as of the start of the block, which is the same thing whenever the group
 * size divides the block size (the 128/128 default). */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "quant_internal.h"

typedef struct {
    double d;
    int64_t i;
} diag_idx;

static int cmp_diag_desc(const void *a, const void *b) {
    const diag_idx *x = a, *y = b;
    if (x->d > y->d) return -1;
    if (x->d < y->d) return 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* U upper with H^{-1} = Uᵀ U, from the damped H (n, n). Overwrites H. */
static harp_status inverse_cholesky_upper(int64_t n, double *H, double *U, int *jitter, const char *what) {
    HARP_TRY(harp_safe_cholesky(n, H, U, jitter, what));
    if (LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, U, (lapack_int)n) != 0)
        return harp_err(HARP_ERR_NUMERIC, "%s: inverting the damped Hessian failed", what);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) U[i * n + j] = U[j * n + i];
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', (lapack_int)n, U, (lapack_int)n) != 0)
        return harp_err(HARP_ERR_NUMERIC, "%s: Cholesky of the inverse Hessian failed", what);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++) U[i * n + j] = 0.0;
    return HARP_OK;
}

/* Rows are independent in GPTQ: each chunk of GPTQ_ROWS rows runs the whole column recursion (in-block
 * updates and the trailing dgemm of its own rows) with single-threaded BLAS (harp_rowchunks_run). */
enum { GPTQ_ROWS = 32 };

typedef struct {
    int64_t m, n;
    int g;
    int64_t ng, bs;
    int bits, sym, stat;
    const harp_quant_params *p;  /* the group fitter's parameters (harp_scalar_fit) */
    const int64_t *perm;
    const double *U;
    double *Wd;
    float *scale;       /* (m, ng) plane */
    uint8_t *zero;      /* (m, ng) plane */
    uint8_t *q;         /* (m, n) unpacked codes */
    harp_gptq_qcol_fn qcol;  /* a caller's quantizer instead of the scalar grid (no groups), or NULL */
    const void *qctx;
} gptq_job;

/* Rows [r0, r0 + rc); scratch: Err (GPTQ_ROWS, bs), then room x for one group. */
static void gptq_rows(const void *ctx, int64_t r0, int64_t rc, void *scratch) {
    const gptq_job *J = ctx;
    const int64_t n = J->n, bs = J->bs, ng = J->ng, g = J->g;
    const double *U = J->U;
    double *Err = scratch, *x = Err + GPTQ_ROWS * bs;
    for (int64_t i1 = 0; i1 < n; i1 += bs) {
        const int64_t i2 = i1 + bs < n ? i1 + bs : n, b = i2 - i1;
        for (int64_t lr = 0; lr < rc; lr++) {
            const int64_t r = r0 + lr;
            double *w = J->Wd + r * n, *err_r = Err + lr * bs;
            float s = 0;
            int z = 0;
            for (int64_t i = i1; i < i2; i++) {
                const int64_t col = J->perm[i];
                int64_t G;
                if (J->qcol) {
                    double v;
                    J->q[r * n + col] = (uint8_t)J->qcol(J->qctx, r, col, w[i], &v);
                    const double err = (w[i] - v) / U[i * n + i];
                    const double *u = U + i * n;
                    for (int64_t j = i + 1; j < i2; j++) w[j] -= err * u[j];
                    err_r[i - i1] = err;
                    continue;
                }
                if (J->stat) {
                    G = col / g;
                    s = J->scale[r * ng + G], z = J->zero[r * ng + G];
                } else {
                    G = i / g;
                    if (i % g == 0) {
                        int64_t len = n - i < g ? n - i : g;
                        const double *src = w + i;
                        if (i + len > i2) {
                            /* the group reaches past this block: fit on fully updated values */
                            for (int64_t j = i; j < i + len; j++) {
                                double v = w[j];
                                if (j >= i2)
                                    for (int64_t t = i1; t < i; t++) v -= err_r[t - i1] * U[t * n + j];
                                x[j - i] = v;
                            }
                            src = x;
                        }
                        harp_scalar_fit(J->p, src, len, &s, &z);
                        J->scale[r * ng + G] = s;
                        J->zero[r * ng + G] = (uint8_t)z;
                    } else {
                        s = J->scale[r * ng + G], z = J->zero[r * ng + G];
                    }
                }
                int q = harp_rtn_code(w[i], s, z, J->bits, J->sym);
                J->q[r * n + col] = (uint8_t)q;
                double err = (w[i] - harp_scalar_value(s, q, z)) / U[i * n + i];
                const double *u = U + i * n;
                for (int64_t j = i + 1; j < i2; j++) w[j] -= err * u[j];
                err_r[i - i1] = err;
            }
        }
        if (i2 < n)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rc, (int)(n - i2), (int)b, -1.0, Err, (int)bs,
                        U + i1 * n + i2, (int)n, 1.0, J->Wd + r0 * n + i2, (int)n);
    }
}

harp_status harp_gptq_quantize(const harp_quant_params *p, int64_t m, int64_t n, const float *W, const double *Hin,
                               const char *what, harp_qtensor *out, uint8_t *qcodes) {
    const int bits = p->bits, sym = p->symmetric;
    const int g = p->group_size > 0 && p->group_size < n ? p->group_size : (int)n;
    const int64_t bs = p->block_size > 0 ? p->block_size : 128;
    const int act = p->act_order, stat = p->static_groups || g == (int)n;
    const int blas_threads = harp_blas_serial_begin();
    harp_status st = HARP_OK;
    double *H = harp_xmalloc((size_t)(n * n) * sizeof *H, "gptq hessian");
    double *U = harp_xmalloc((size_t)(n * n) * sizeof *U, "gptq inverse factor");
    double *Wd = harp_xmalloc((size_t)(m * n) * sizeof *Wd, "gptq weights");
    int64_t *perm = harp_xmalloc((size_t)n * sizeof *perm, "gptq permutation");
    diag_idx *di = harp_xmalloc((size_t)n * sizeof *di, "gptq permutation");
    if (!H || !U || !Wd || !perm || !di) {
        st = HARP_ERR_OOM;
        goto done;
    }
    /* dead columns and act-order are decided on the undamped H */
    int64_t dead = 0;
    for (int64_t i = 0; i < n; i++) dead += Hin[i * n + i] == 0.0;
    for (int64_t i = 0; i < n; i++) di[i].d = Hin[i * n + i], di[i].i = i;
    if (act) qsort(di, (size_t)n, sizeof *di, cmp_diag_desc);
    for (int64_t i = 0; i < n; i++) perm[i] = di[i].i;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) H[i * n + j] = Hin[perm[i] * n + perm[j]];
    for (int64_t r = 0; r < m; r++)
        for (int64_t i = 0; i < n; i++)
            Wd[r * n + i] = Hin[perm[i] * n + perm[i]] == 0.0 ? 0.0 : (double)W[r * n + perm[i]];
    st = harp_hessian_damp_gptq(n, H, 0, NULL, p->percdamp, NULL);
    if (st != HARP_OK) goto done;
    st = inverse_cholesky_upper(n, H, U, &out->chol_jitter_steps, what);
    if (st != HARP_OK) goto done;

    st = harp_scalar_alloc_planes(out, act && !stat);
    if (st != HARP_OK) goto done;
    out->n_dead = dead;
    const int64_t ng = out->n_groups;
    float *scale = out->planes[QT_SC_SCALES].owned;
    uint8_t *zero = out->planes[QT_SC_ZEROS].owned;
    /* static groups (and per-channel): fitted on the original (dead-zeroed) columns, in original order */
    if (stat) st = harp_scalar_fit_rows(p, m, n, g, W, Hin, scale, zero, what);
    if (st != HARP_OK) goto done;
    int32_t *g_idx = out->planes[QT_SC_GIDX].owned;
    if (g_idx)
        for (int64_t i = 0; i < n; i++) g_idx[perm[i]] = (int32_t)(i / g);

    const gptq_job J = {m, n, g, ng, bs, bits, sym, stat, p, perm, U, Wd, scale, zero, qcodes, NULL, NULL};
    st = harp_rowchunks_run(m, GPTQ_ROWS, (size_t)(GPTQ_ROWS * bs + g) * sizeof(double), gptq_rows, &J, "gptq",
                            p->progress, p->progress_user, what);
done:
    harp_free(H), harp_free(U), harp_free(Wd), harp_free(perm), harp_free(di);
    harp_blas_serial_end(blas_threads);
    return st;
}

harp_status harp_gptq_factor(int64_t n, const double *Hin, double percdamp, double *U, int *jitter, const char *what) {
    double *H = harp_xmalloc((size_t)(n * n) * sizeof *H, "gptq hessian");
    if (!H) return HARP_ERR_OOM;
    memcpy(H, Hin, (size_t)(n * n) * sizeof *H);
    harp_status st = harp_hessian_damp_gptq(n, H, 0, NULL, percdamp, NULL);
    if (!st) st = inverse_cholesky_upper(n, H, U, jitter, what);
    harp_free(H);
    return st;
}

harp_status harp_gptq_feedback(int64_t m, int64_t n, const double *W0, const double *U, int64_t bs, harp_gptq_qcol_fn qcol,
                               const void *qctx, uint8_t *q, harp_progress_fn progress, void *progress_user,
                               const char *what) {
    if (bs <= 0) bs = 128;
    const int blas_threads = harp_blas_serial_begin();
    double *Wd = harp_xmalloc((size_t)(m * n) * sizeof *Wd, "gptq weights");
    int64_t *perm = harp_xmalloc((size_t)n * sizeof *perm, "gptq permutation");
    harp_status st = Wd && perm ? HARP_OK : HARP_ERR_OOM;
    if (!st) {
        memcpy(Wd, W0, (size_t)(m * n) * sizeof *Wd);
        for (int64_t i = 0; i < n; i++) perm[i] = i;
        const gptq_job J = {m, n, (int)n, 1, bs, 0, 0, 1, NULL, perm, U, Wd, NULL, NULL, q, qcol, qctx};
        st = harp_rowchunks_run(m, GPTQ_ROWS, (size_t)(GPTQ_ROWS * bs) * sizeof(double), gptq_rows, &J, "gptq", progress,
                                progress_user, what);
    }
    harp_free(Wd), harp_free(perm);
    harp_blas_serial_end(blas_threads);
    return st;
}
