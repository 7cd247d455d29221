/* Block LDL and BlockLDLQ with the reference's "tune" sweeps (§5.4), fp64.
 *
 * The feedback of block k is one dgemm over the blocks already done (the plain recursion; the
 * reference's 128-column buffering is only a memory-traffic optimisation of the same sums).
 * Rows are independent given the feedback, so codeword search runs row-parallel. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "quant_internal.h"

harp_status harp_block_ldl(int64_t n, int b, const double *H, double *L, double *D, int *jitter_steps,
                           const char *what) {
    if (b <= 0 || n % b != 0)
        return harp_err(HARP_ERR_SHAPE, "%s: block LDL needs n (%lld) to be a multiple of the block %d", what,
                        (long long)n, b);
    double *A = harp_xmalloc((size_t)(n * n) * sizeof *A, "block LDL");
    if (!A) return HARP_ERR_OOM;
    memcpy(A, H, (size_t)(n * n) * sizeof *A);
    harp_status st = harp_safe_cholesky(n, A, L, jitter_steps, what);
    harp_free(A);
    if (st != HARP_OK) return st;
    double *delta = harp_xmalloc((size_t)b * (size_t)b * sizeof *delta, "block LDL");
    if (!delta) return HARP_ERR_OOM;
    for (int64_t k = 0; k < n / b; k++) {
        const int64_t o = k * b;
        for (int i = 0; i < b; i++)
            for (int j = 0; j < b; j++) delta[i * b + j] = L[(o + i) * n + o + j];
        /* D_k = Δ Δᵀ */
        double *Dk = D + k * b * b;
        for (int i = 0; i < b; i++)
            for (int j = 0; j < b; j++) {
                double s = 0;
                for (int t = 0; t < b; t++) s += delta[i * b + t] * delta[j * b + t];
                Dk[i * b + j] = s;
            }
        /* L[o:, block] ← L[o:, block] Δ^{-1} (rows above o are zero) */
        cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, (int)(n - o), b, 1.0, delta, b,
                    L + o * n + o, (int)n);
        for (int i = 0; i < b; i++)
            for (int j = 0; j < b; j++) L[(o + i) * n + o + j] = i == j ? 1.0 : 0.0;
    }
    harp_free(delta);
    return HARP_OK;
}

/* Quantizes the m rows of T (m, 8) into Zq[:, o:o+8] and the code arrays at code column k. */
static void quantize_block(int64_t m, int64_t n, int64_t k, const double *T, harp_vq8_fn q, const void *qctx,
                           double *Zq, uint16_t *c1, uint16_t *c2) {
    const int64_t nb = n / 8;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < m; r++) {
        uint16_t a = 0, b = 0;
        q(qctx, T + r * 8, Zq + r * n + 8 * k, &a, &b);
        c1[r * nb + k] = a;
        if (c2) c2[r * nb + k] = b;
    }
}

harp_status harp_ldlq(int64_t m, int64_t n, const double *Z, const double *H, harp_vq8_fn q, const void *qctx,
                      int tune_iters, double *Zq, uint16_t *c1, uint16_t *c2, int *jitter_steps, const char *what,
                      harp_progress_fn progress, void *progress_user) {
    const int b = 8;
    if (n % b != 0)
        return harp_err(HARP_ERR_SHAPE, "%s: LDLQ needs n (%lld) to be a multiple of 8", what, (long long)n);
    const int64_t nb = n / b;
    harp_status st = HARP_OK;
    double *L = harp_xmalloc((size_t)(n * n) * sizeof *L, "LDLQ factor");
    double *D = harp_xmalloc((size_t)(n * b) * sizeof *D, "LDLQ blocks");
    double *E = harp_xcalloc((size_t)(m * n), sizeof *E, "LDLQ errors");
    double *T = harp_xmalloc((size_t)(m * b) * sizeof *T, "LDLQ targets");
    double *Hinv = NULL, *Hj = NULL;
    if (!L || !D || !E || !T) {
        st = HARP_ERR_OOM;
        goto done;
    }
    int jit = 0;
    st = harp_block_ldl(n, b, H, L, D, &jit, what);
    if (jitter_steps) *jitter_steps = jit;
    if (st != HARP_OK) goto done;
    if (jit > 0 && tune_iters > 0) {
        /* the tune sweeps must see the same repaired H as the LDL: add the jitter that worked */
        Hj = harp_xmalloc((size_t)(n * n) * sizeof *Hj, "LDLQ hessian");
        if (!Hj) {
            st = HARP_ERR_OOM;
            goto done;
        }
        double mad = 0;
        for (int64_t i = 0; i < n; i++) mad += fabs(H[i * n + i]);
        mad /= (double)n;
        const double tau = pow(10.0, jit - 1) * 1e-8 * mad;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) Hj[i * n + j] = 0.5 * (H[i * n + j] + H[j * n + i]) + (i == j ? tau : 0.0);
        H = Hj;
    }
    const int64_t total = nb * (1 + (tune_iters > 0 ? tune_iters : 0));
    for (int64_t k = nb - 1; k >= 0; k--) {
        const int64_t o = k * b, rest = n - o - b;
        for (int64_t r = 0; r < m; r++) memcpy(T + r * b, Z + r * n + o, b * sizeof *T);
        if (rest > 0)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, b, (int)rest, 1.0, E + o + b, (int)n,
                        L + (o + b) * n + o, (int)n, 1.0, T, b);
        quantize_block(m, n, k, T, q, qctx, Zq, c1, c2);
        for (int64_t r = 0; r < m; r++)
            for (int j = 0; j < b; j++) E[r * n + o + j] = Z[r * n + o + j] - Zq[r * n + o + j];
        if (progress && ((nb - k) % 16 == 0 || k == 0) && progress(progress_user, "ldlq", nb - k, total)) {
            st = harp_err(HARP_ERR_CANCELLED, "%s: cancelled", what);
            goto done;
        }
    }
    if (tune_iters > 0) {
        /* inverses of the diagonal blocks of H */
        Hinv = harp_xmalloc((size_t)(nb * b * b) * sizeof *Hinv, "LDLQ tune");
        if (!Hinv) {
            st = HARP_ERR_OOM;
            goto done;
        }
        for (int64_t k = 0; k < nb; k++) {
            double *Hk = Hinv + k * b * b;
            for (int i = 0; i < b; i++)
                for (int j = 0; j < b; j++) Hk[i * b + j] = H[(k * b + i) * n + k * b + j];
            if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', b, Hk, b) != 0 || LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', b, Hk, b) != 0) {
                st = harp_err(HARP_ERR_NUMERIC, "%s: diagonal block %lld of the Hessian is not positive definite", what,
                              (long long)k);
                goto done;
            }
            for (int i = 0; i < b; i++)
                for (int j = i + 1; j < b; j++) Hk[i * b + j] = Hk[j * b + i];
        }
        double *S = harp_xmalloc((size_t)(m * b) * sizeof *S, "LDLQ tune");
        if (!S) {
            st = HARP_ERR_OOM;
            goto done;
        }
        for (int it = 0; it < tune_iters && st == HARP_OK; it++) {
            for (int64_t k = nb - 1; k >= 0; k--) {
                const int64_t o = k * b;
                /* S = δ H[:, block]; target = Ẑ_k + S H_kk^{-1} */
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, b, (int)n, 1.0, E, (int)n, H + o, (int)n,
                            0.0, S, b);
                for (int64_t r = 0; r < m; r++)
                    for (int j = 0; j < b; j++) T[r * b + j] = Zq[r * n + o + j];
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, b, b, 1.0, S, b, Hinv + k * b * b, b, 1.0,
                            T, b);
                quantize_block(m, n, k, T, q, qctx, Zq, c1, c2);
                for (int64_t r = 0; r < m; r++)
                    for (int j = 0; j < b; j++) E[r * n + o + j] = Z[r * n + o + j] - Zq[r * n + o + j];
            }
            if (progress && progress(progress_user, "tune", nb * (it + 2), total))
                st = harp_err(HARP_ERR_CANCELLED, "%s: cancelled", what);
        }
        harp_free(S);
    }
done:
    harp_free(L), harp_free(D), harp_free(E), harp_free(T), harp_free(Hinv), harp_free(Hj);
    return st;
}
