/* Hessian consumer form, finiteness checks, QuIP#/GPTQ damping and the safe Cholesky of §1.5. */
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "harp/quant.h"
#include "quant/quant_internal.h"

harp_status harp_hessian_from_flat(int64_t n, const float *flatH, const float *mu, double *H) {
    if (n <= 0 || !flatH || !H) return harp_err(HARP_ERR_INVALID_ARG, "hessian: bad arguments (n = %lld)", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        const float *row = flatH + i * (i + 1) / 2;
        for (int64_t j = 0; j <= i; j++) {
            double v = (double)row[j];
            if (mu) v += (double)mu[i] * (double)mu[j];
            H[i * n + j] = v;
            H[j * n + i] = v;
        }
    }
    return HARP_OK;
}

harp_status harp_check_finite_f32(const float *x, int64_t count, const char *what) {
    for (int64_t i = 0; i < count; i++)
        if (!isfinite(x[i]))
            return harp_err(HARP_ERR_NUMERIC, "%s: non-finite value (%g) at element %lld", what ? what : "matrix",
                            (double)x[i], (long long)i);
    return HARP_OK;
}

harp_status harp_check_finite_f64(const double *x, int64_t count, const char *what) {
    for (int64_t i = 0; i < count; i++)
        if (!isfinite(x[i]))
            return harp_err(HARP_ERR_NUMERIC, "%s: non-finite value (%g) at element %lld", what ? what : "matrix", x[i],
                            (long long)i);
    return HARP_OK;
}

static double mean_diag(int64_t n, const double *H) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += H[i * n + i];
    return s / (double)n;
}

harp_status harp_hessian_regularize(int64_t n, double *H, double sigma, double *md_out) {
    double md = mean_diag(n, H);
    if (!(md > 0) || !isfinite(md))
        return harp_err(HARP_ERR_NUMERIC, "hessian: mean diagonal %g is not positive, cannot regularise", md);
    double inv = 1.0 / md;
    for (int64_t i = 0; i < n * n; i++) H[i] *= inv;
    for (int64_t i = 0; i < n; i++) H[i * n + i] += sigma;
    if (md_out) *md_out = md;
    return HARP_OK;
}

harp_status harp_hessian_padded(int64_t n, int64_t np, const double *Hin, int regularize, double sigma_reg,
                                const char *what, double *H) {
    for (int64_t i = 0; i < n; i++) memcpy(H + i * np, Hin + i * n, (size_t)n * sizeof *H);
    for (int64_t i = n; i < np; i++) H[i * np + i] = 1.0;
    if (!regularize) return HARP_OK;
    /* regularise the real n×n part only: the padding stays a decoupled identity */
    double *Hr = harp_xmalloc((size_t)(n * n) * sizeof *Hr, "padded hessian");
    if (!Hr) return HARP_ERR_OOM;
    memcpy(Hr, Hin, (size_t)(n * n) * sizeof *Hr);
    harp_status st = harp_hessian_regularize(n, Hr, sigma_reg, NULL);
    if (st == HARP_OK)
        for (int64_t i = 0; i < n; i++) memcpy(H + i * np, Hr + i * n, (size_t)n * sizeof *H);
    else {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", harp_last_error());
        st = harp_err(st, "%s: %s", what, msg);
    }
    harp_free(Hr);
    return st;
}

harp_status harp_hessian_damp_gptq(int64_t n, double *H, int64_t m, float *W, double percdamp, int64_t *n_dead) {
    int64_t dead = 0;
    for (int64_t i = 0; i < n; i++) {
        if (H[i * n + i] == 0.0) {
            H[i * n + i] = 1.0;
            dead++;
            if (W)
                for (int64_t r = 0; r < m; r++) W[r * n + i] = 0.0f;
        }
    }
    double md = mean_diag(n, H);
    if (!(md > 0) || !isfinite(md))
        return harp_err(HARP_ERR_NUMERIC, "hessian: mean diagonal %g is not positive, cannot damp", md);
    double damp = percdamp * md;
    for (int64_t i = 0; i < n; i++) H[i * n + i] += damp;
    if (n_dead) *n_dead = dead;
    return HARP_OK;
}

harp_status harp_safe_cholesky(int64_t n, double *A, double *L, int *jitter_steps, const char *what) {
    if (!what) what = "hessian";
    if (jitter_steps) *jitter_steps = 0;
    HARP_TRY(harp_check_finite_f64(A, n * n, what));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++) {
            double v = 0.5 * (A[i * n + j] + A[j * n + i]);
            A[i * n + j] = v;
            A[j * n + i] = v;
        }
    double mad = 0;
    for (int64_t i = 0; i < n; i++) mad += fabs(A[i * n + i]);
    mad /= (double)n;
    double *work = L;
    if (L == A) {
        work = harp_xmalloc((size_t)(n * n) * sizeof *work, "cholesky workspace");
        if (!work) return HARP_ERR_OOM;
    }
    harp_status st = HARP_ERR_NUMERIC;
    int k;
    double tau = 0;
    for (k = 0; k <= 5; k++) {
        tau = k == 0 ? 0.0 : pow(10.0, k - 1) * 1e-8 * mad;
        memcpy(work, A, (size_t)(n * n) * sizeof *work);
        for (int64_t i = 0; i < n; i++) work[i * n + i] += tau;
        if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, work, (lapack_int)n) == 0) {
            st = HARP_OK;
            break;
        }
    }
    if (st == HARP_OK) {
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = i + 1; j < n; j++) work[i * n + j] = 0.0;
        if (k > 0)
            harp_log(HARP_LOG_WARN,
                     "%s: not positive definite; Cholesky succeeded after adding jitter %.0e*mean|diag H| (step %d of 5)",
                     what, tau / mad, k);
        if (jitter_steps) *jitter_steps = k;
    }
    if (work != L) {
        if (st == HARP_OK) memcpy(L, work, (size_t)(n * n) * sizeof *L);
        harp_free(work);
    }
    if (st == HARP_OK) return HARP_OK;
    return harp_err(HARP_ERR_NUMERIC, "%s: not positive definite even after jitter 1e-4·mean|diag| (%g)", what, mad);
}
