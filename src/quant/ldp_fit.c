/* LDP fit (a), per linear (ldp.h; harp's post-training stand-in for RCP's QAT, algorithms.md §6.6):
 * minimise tr(ΔW H ΔWᵀ) over the per-group (β, α, φ), alternating
 *   (i)  a GPTQ pass with the current fp16 levels (nearest level of the error-updated weight, error
 *        fed forward through the Cholesky factor of H⁻¹: gptq.c's recursion, harp_gptq_feedback), and
 *   (ii) a few steps of Gauss–Newton-preconditioned gradient descent on θ with the codes fixed (exact
 *        gradient of the levels, straight-through for the assignments), with a backtracking line
 *        search that only accepts a lower loss and α ≥ β (so the levels stay ordered).
 * Every candidate (codes, fp16 levels) is scored by the proxy loss against the original W; the best
 * is kept. Rows are independent in (ii) and chunked in (i): the result does not depend on the thread
 * count. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "quant/ldp.h"
#include "quant/quant_internal.h"

enum { LDP_ALTERNATIONS = 3, LDP_GD_STEPS = 10, LDP_LINE_SEARCH = 12 };

void harp_ldp_levels(const double th[HARP_LDP_NPARAM], double lv[4], double J[4][HARP_LDP_NPARAM]) {
    const double b = th[0], a = th[1], *phi = th + 2;
    const double mx = fmax(phi[0], fmax(phi[1], phi[2]));
    double s[3], se = 0;
    for (int i = 0; i < 3; i++) se += s[i] = exp(phi[i] - mx);
    for (int i = 0; i < 3; i++) s[i] /= se;
    const double c[4] = {0.0, s[0], fmin(s[0] + s[1], 1.0), 1.0};
    /* exact ends, and rounding never breaks the order (a clamp moves a level by at most an ulp) */
    lv[0] = b, lv[3] = a;
    for (int k = 1; k < 3; k++) lv[k] = fmin(fmax(b + (a - b) * c[k], lv[k - 1]), a);
    if (!J) return;
    for (int k = 0; k < 4; k++) {
        J[k][0] = 1.0 - c[k];
        J[k][1] = c[k];
        /* ∂c_k/∂φ_j = Σ_{i<k} s_i(δ_ij − s_j) = [j < k]·s_j − s_j·c_k (0 for k = 0 and k = 3) */
        for (int j = 0; j < 3; j++) J[k][2 + j] = k == 3 ? 0.0 : (a - b) * ((j < k ? s[j] : 0.0) - s[j] * c[k]);
    }
}

/* L = Δ H Δᵀ with Δ_c = lv[4·G(c) + q_c] − w_c; leaves HΔ in h. d, h: n doubles each. */
static double loss_levels(int64_t n, int64_t g, const double *w, const uint8_t *q, const double *lv, const double *H,
                          double *d, double *h) {
    for (int64_t c = 0; c < n; c++) d[c] = lv[4 * (c / g) + q[c]] - w[c];
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)n, 1.0, H, (int)n, d, 1, 0.0, h, 1);
    double L = 0;
    for (int64_t c = 0; c < n; c++) L += d[c] * h[c];
    return L;
}

double harp_ldp_row_loss(int64_t n, int64_t g, const double *w, const uint8_t *q, const double *theta, const double *H,
                         double *grad, double *scratch) {
    const int64_t ng = (n + g - 1) / g;
    double *d = scratch, *h = d + n, *lv = h + n;
    for (int64_t G = 0; G < ng; G++) harp_ldp_levels(theta + HARP_LDP_NPARAM * G, lv + 4 * G, NULL);
    const double L = loss_levels(n, g, w, q, lv, H, d, h);
    for (int64_t G = 0; grad && G < ng; G++) {
        const int64_t c0 = G * g, c1 = c0 + g < n ? c0 + g : n;
        double gl[4] = {0, 0, 0, 0}, lv4[4], J[4][HARP_LDP_NPARAM];
        for (int64_t c = c0; c < c1; c++) gl[q[c]] += 2.0 * h[c];
        harp_ldp_levels(theta + HARP_LDP_NPARAM * G, lv4, J);
        for (int p = 0; p < HARP_LDP_NPARAM; p++)
            grad[HARP_LDP_NPARAM * G + p] = gl[0] * J[0][p] + gl[1] * J[1][p] + gl[2] * J[2][p] + gl[3] * J[3][p];
    }
    return L;
}

/* Initial θ of one group: 4 uniform levels on [p·min, p·max], p from the MSE (norm 2.4) clip grid of
 * §6.1 (p = 1 − i/100, i < 80), equal gaps (φ = 0). */
static void init_group(const double *x, int64_t len, double th[HARP_LDP_NPARAM]) {
    double lo = x[0], hi = x[0];
    for (int64_t c = 1; c < len; c++) lo = fmin(lo, x[c]), hi = fmax(hi, x[c]);
    double best = INFINITY, bp = 1.0;
    for (int i = 0; i < 80; i++) {
        const double p = 1.0 - i / 100.0, b = p * lo, a = p * hi;
        const double lv[4] = {b, b + (a - b) / 3.0, b + 2.0 * (a - b) / 3.0, a};
        double e = 0;
        for (int64_t c = 0; c < len; c++) e += pow(fabs(lv[harp_ldp_nearest(lv, x[c])] - x[c]), 2.4);
        if (e < best) best = e, bp = p;
    }
    th[0] = bp * lo, th[1] = bp * hi, th[2] = th[3] = th[4] = 0.0;
}

typedef struct {
    int64_t m, n, g, ng;
    const double *W0, *H;  /* dead-zeroed weights (m, n); undamped H (n, n): the proxy loss's */
    double *theta;         /* (m, ng, 5) */
    float *lv;             /* (m, ng, 4): the fp16-rounded levels the GPTQ pass codes with */
} ldp_fit;

static int ldp_qcol(const void *ctx, int64_t r, int64_t col, double w, double *wq) {
    const ldp_fit *F = ctx;
    const float *l = F->lv + 4 * (r * F->ng + col / F->g);
    const double lv[4] = {l[0], l[1], l[2], l[3]};
    const int k = harp_ldp_nearest(lv, w);
    *wq = lv[k];
    return k;
}

/* Levels of θ rounded to fp16 (monotone rounding keeps them ordered). */
static void round_levels(const ldp_fit *F) {
    for (int64_t k = 0; k < F->m * F->ng; k++) {
        double lv[4];
        harp_ldp_levels(F->theta + HARP_LDP_NPARAM * k, lv, NULL);
        for (int i = 0; i < 4; i++) F->lv[4 * k + i] = harp_f16_to_f32(harp_f32_to_f16((float)lv[i]));
    }
}

/* Σ over rows (in order) of the proxy loss of codes q with the fp16 levels. */
static double total_loss(const ldp_fit *F, const uint8_t *q, double *rowL) {
    const int64_t n = F->n, ng = F->ng;
#pragma omp parallel
    {
        double *s = malloc((size_t)(2 * n + 4 * ng) * sizeof *s);
#pragma omp for schedule(dynamic, 4)
        for (int64_t r = 0; r < F->m; r++) {
            if (!s) continue;
            for (int64_t k = 0; k < 4 * ng; k++) s[2 * n + k] = F->lv[4 * r * ng + k];
            rowL[r] = loss_levels(n, F->g, F->W0 + r * n, q + r * n, s + 2 * n, F->H, s, s + n);
        }
        free(s);
    }
    double L = 0;
    for (int64_t r = 0; r < F->m; r++) L += rowL[r];
    return L;
}

/* Step (ii) on row r: preconditioner = Gauss–Newton diagonal Σ_k D_k J_kp², D_k = 2 Σ_{c: q_c = k} H_cc. */
static void fit_row(const ldp_fit *F, const uint8_t *q, int64_t r, double *s) {
    const int64_t n = F->n, g = F->g, ng = F->ng, np = HARP_LDP_NPARAM * ng;
    double *th = F->theta + r * np, *grad = s + 2 * n + 4 * ng, *step = grad + np, *trial = step + np;
    const double *w = F->W0 + r * n;
    const uint8_t *qr = q + r * n;
    double L = harp_ldp_row_loss(n, g, w, qr, th, F->H, grad, s);
    for (int it = 0; it < LDP_GD_STEPS; it++) {
        double gmax = 0;
        for (int64_t G = 0; G < ng; G++) {
            const int64_t c0 = G * g, c1 = c0 + g < n ? c0 + g : n;
            double D[4] = {0, 0, 0, 0}, lv[4], J[4][HARP_LDP_NPARAM];
            for (int64_t c = c0; c < c1; c++) D[qr[c]] += 2.0 * F->H[c * n + c];
            harp_ldp_levels(th + HARP_LDP_NPARAM * G, lv, J);
            for (int p = 0; p < HARP_LDP_NPARAM; p++) {
                double gn = 0;
                for (int k = 0; k < 4; k++) gn += D[k] * J[k][p] * J[k][p];
                step[HARP_LDP_NPARAM * G + p] = gn;
                gmax = fmax(gmax, gn);
            }
        }
        const double floor = 1e-6 * gmax + 1e-300;
        for (int64_t k = 0; k < np; k++) step[k] = grad[k] / (step[k] + floor);
        double t = 1.0;
        int ok = 0;
        for (int ls = 0; ls < LDP_LINE_SEARCH && !ok; ls++, t *= 0.5) {
            ok = 1;
            for (int64_t k = 0; k < np; k++) trial[k] = th[k] - t * step[k];
            for (int64_t G = 0; G < ng; G++) ok &= trial[HARP_LDP_NPARAM * G + 1] >= trial[HARP_LDP_NPARAM * G];
            if (ok) {
                const double Lt = harp_ldp_row_loss(n, g, w, qr, trial, F->H, NULL, s);
                ok = Lt < L;
                if (ok) L = Lt;
            }
        }
        if (!ok) break;
        memcpy(th, trial, (size_t)np * sizeof *th);
        harp_ldp_row_loss(n, g, w, qr, th, F->H, grad, s);
    }
}

static void fit_levels(const ldp_fit *F, const uint8_t *q) {
    const int64_t n = F->n, ng = F->ng;
#pragma omp parallel
    {
        double *s = malloc((size_t)(2 * n + 4 * ng + 3 * HARP_LDP_NPARAM * ng) * sizeof *s);
#pragma omp for schedule(dynamic, 4)
        for (int64_t r = 0; r < F->m; r++)
            if (s) fit_row(F, q, r, s);
        free(s);
    }
}

/* Alternations; the best (codes, levels) go to q and best_lv. */
static harp_status ldp_alternate(const harp_quant_params *p, const ldp_fit *F, const double *U, uint8_t *q, float *best_lv,
                                 const char *what) {
    const int64_t m = F->m, n = F->n;
    uint8_t *qc = harp_xmalloc((size_t)(m * n), "ldp codes");
    double *rowL = harp_xmalloc((size_t)m * sizeof *rowL, "ldp row losses");
    harp_status st = qc && rowL ? HARP_OK : HARP_ERR_OOM;
    double best = INFINITY;
    const size_t lvb = (size_t)(4 * m * F->ng) * sizeof(float);
    for (int t = 0; !st && t <= LDP_ALTERNATIONS; t++) {
        st = harp_gptq_feedback(m, n, F->W0, U, p->block_size, ldp_qcol, F, qc, p->progress, p->progress_user, what);
        if (st) break;
        double L = total_loss(F, qc, rowL);
        for (int pass = 0; pass < 2; pass++) {
            if (L < best) best = L, memcpy(q, qc, (size_t)(m * n)), memcpy(best_lv, F->lv, lvb);
            if (pass || t == LDP_ALTERNATIONS) break;
            fit_levels(F, qc); /* the refitted levels with the same codes are a candidate too */
            round_levels(F);
            L = total_loss(F, qc, rowL);
        }
        harp_log(HARP_LOG_DEBUG, "%s: ldp alternation %d: proxy %.6g", what, t, L);
    }
    harp_free(qc), harp_free(rowL);
    return st;
}

harp_status harp_ldp_quantize(const harp_quant_params *p, int64_t m, int64_t n, const float *W, const double *H,
                              const char *what, harp_qtensor *out, uint8_t *q) {
    const int64_t g = out->group_size, ng = out->n_groups;
    const int blas_threads = harp_blas_serial_begin();
    ldp_fit F = {m, n, g, ng, NULL, H, NULL, NULL};
    double *W0 = harp_xmalloc((size_t)(m * n) * sizeof *W0, "ldp weights");
    double *U = harp_xmalloc((size_t)(n * n) * sizeof *U, "ldp inverse factor");
    F.theta = harp_xmalloc((size_t)(m * ng * HARP_LDP_NPARAM) * sizeof *F.theta, "ldp parameters");
    F.lv = harp_xmalloc((size_t)(m * ng * 4) * sizeof *F.lv, "ldp levels");
    float *best_lv = harp_xmalloc((size_t)(m * ng * 4) * sizeof *best_lv, "ldp levels");
    harp_status st = W0 && U && F.theta && F.lv && best_lv ? HARP_OK : HARP_ERR_OOM;
    if (!st) {
        int64_t dead = 0;
        for (int64_t i = 0; i < n; i++) dead += H[i * n + i] == 0.0;
        out->n_dead = dead;
        for (int64_t r = 0; r < m; r++)
            for (int64_t c = 0; c < n; c++) W0[r * n + c] = H[c * n + c] == 0.0 ? 0.0 : (double)W[r * n + c];
        F.W0 = W0;
        for (int64_t r = 0; r < m; r++)
            for (int64_t G = 0; G < ng; G++)
                init_group(W0 + r * n + G * g, (G + 1) * g < n ? g : n - G * g, F.theta + HARP_LDP_NPARAM * (r * ng + G));
        round_levels(&F);
        st = harp_gptq_factor(n, H, p->percdamp, U, &out->chol_jitter_steps, what);
    }
    if (!st) st = ldp_alternate(p, &F, U, q, best_lv, what);
    if (!st) st = harp_qtensor_alloc_plane(out, QT_LDP_LEVELS);
    if (!st) {
        uint16_t *lp = out->planes[QT_LDP_LEVELS].owned;
        for (int64_t k = 0; k < 4 * m * ng; k++) lp[k] = harp_f32_to_f16(best_lv[k]);
    }
    harp_free(W0), harp_free(U), harp_free(F.theta), harp_free(F.lv), harp_free(best_lv);
    harp_blas_serial_end(blas_threads);
    return st;
}
