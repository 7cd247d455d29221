/* Relative proxy loss tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) in fp64. Rows are summed in index order after a
 * parallel per-row pass, so the result does not depend on the thread count. */
#include <math.h>
#include <stdlib.h>

#include "core/core.h"
#include "harp/quant.h"
#include "quant_internal.h"

/* Rows are processed in fixed chunks of PROXY_ROWS: X = [ΔW rows; W rows] (2·rc, n), P = X H by a
 * single-threaded dgemm (cache-blocked, so H is streamed once per chunk instead of once per row),
 * then each row's x·p is summed in index order. The chunking is independent of the thread count. */
enum { PROXY_ROWS = 32 };

static double proxy_core(int64_t m, int64_t n, const float *Wf, const float *Qf, const double *Wd, const double *Qd,
                         const double *H) {
    double *num = malloc((size_t)m * sizeof *num), *den = malloc((size_t)m * sizeof *den);
    if (!num || !den) {
        free(num), free(den);
        return NAN;
    }
    const int blas_threads = harp_blas_serial_begin();
    const int64_t nchunks = (m + PROXY_ROWS - 1) / PROXY_ROWS;
#pragma omp parallel
    {
        double *X = malloc((size_t)(4 * PROXY_ROWS * n) * sizeof *X);
#pragma omp for schedule(dynamic, 1)
        for (int64_t ch = 0; ch < nchunks; ch++) {
            const int64_t r0 = ch * PROXY_ROWS, rc = m - r0 < PROXY_ROWS ? m - r0 : PROXY_ROWS;
            if (!X) {
                for (int64_t i = 0; i < rc; i++) num[r0 + i] = den[r0 + i] = NAN;
                continue;
            }
            double *P = X + 2 * PROXY_ROWS * n;
            for (int64_t i = 0; i < rc; i++)
                for (int64_t c = 0; c < n; c++) {
                    const int64_t k = (r0 + i) * n + c;
                    double a = Wf ? (double)Wf[k] : Wd[k];
                    double b = Qf ? (double)Qf[k] : Qd[k];
                    X[i * n + c] = b - a;
                    X[(rc + i) * n + c] = a;
                }
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(2 * rc), (int)n, (int)n, 1.0, X, (int)n, H,
                        (int)n, 0.0, P, (int)n);
            for (int64_t i = 0; i < 2 * rc; i++) {
                double s = 0;
                for (int64_t c = 0; c < n; c++) s += X[i * n + c] * P[i * n + c];
                if (i < rc) num[r0 + i] = s;
                else den[r0 + i - rc] = s;
            }
        }
        free(X);
    }
    harp_blas_serial_end(blas_threads);
    double sn = 0, sd = 0;
    for (int64_t r = 0; r < m; r++) sn += num[r], sd += den[r];
    free(num), free(den);
    return sd != 0.0 ? sn / sd : NAN;
}

double harp_proxy_loss(int64_t m, int64_t n, const float *W, const float *Wq, const double *H) {
    return proxy_core(m, n, W, Wq, NULL, NULL, H);
}

double harp_proxy_loss_f64(int64_t m, int64_t n, const double *W, const double *Wq, const double *H) {
    return proxy_core(m, n, NULL, NULL, W, Wq, H);
}
