/* Issue 18, acceptance 1 (unit part): HARP with schedule hadamard and 0 fitting steps reproduces the
 * RHT pipeline exactly at the widths of real models — harp_fit's processors, applied as the quantize
 * pipeline applies them (harp_rot_weight, harp_rot_hessian_f64), give W̃ and H̃ bit-identical to
 * the Hadamard rotations', and QuIP# 2-bit codes and scales identical to the RHT ones. Synthetic W
 * and SPD H; each width on the output side (m = width, n = 64) and, where the n×n Hessian is small
 * enough for a unit test, on the input side (m = 64, n = width). A fit with steps > 0 must not stay
 * at the RHT (the learned stages move). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "harp.h"
#include "harpfit_problem.h"
#include "test_util.h"

/* 1 if (U, V) transform W and H exactly as the Hadamard rotations and quantize to the same codes. */
static int same_as_rht(const harp_rot *U, const harp_rot *V, int64_t m, int64_t n, const float *W, const double *H) {
    harp_rot *hu = NULL, *hv = NULL;
    CHECK_OK(harp_rot_create(HARP_ROT_HADAMARD, m, NULL, 0, &hu));
    CHECK_OK(harp_rot_create(HARP_ROT_HADAMARD, n, NULL, 0, &hv));
    size_t mn = (size_t)(m * n), nn = (size_t)(n * n);
    float *w1 = malloc(mn * 4), *w2 = malloc(mn * 4);
    double *h1 = malloc(nn * 8), *h2 = malloc(nn * 8);
    memcpy(w1, W, mn * 4), memcpy(w2, W, mn * 4), memcpy(h1, H, nn * 8), memcpy(h2, H, nn * 8);
    CHECK_OK(harp_rot_weight(U, V, w1, m, n, 0));
    CHECK_OK(harp_rot_weight(hu, hv, w2, m, n, 0));
    CHECK_OK(harp_rot_hessian_f64(V, h1, n, 0));
    CHECK_OK(harp_rot_hessian_f64(hv, h2, n, 0));
    int same = !memcmp(w1, w2, mn * 4) && !memcmp(h1, h2, nn * 8);
    harp_quant_params qp = harp_quant_default_params(HARP_QMETHOD_QUIP, 2);
    harp_qtensor q1, q2;
    memset(&q1, 0, sizeof q1), memset(&q2, 0, sizeof q2);
    CHECK_OK(harp_quantize_linear(&qp, m, n, w1, h1, "hadamard schedule", &q1));
    CHECK_OK(harp_quantize_linear(&qp, m, n, w2, h2, "rht", &q2));
    /* every stored plane (codes, wscale) byte for byte */
    for (int i = 0; i < HARP_QT_MAX_PLANES; i++)
        same &= q1.planes[i].nbytes == q2.planes[i].nbytes &&
                (!q1.planes[i].nbytes || !memcmp(q1.planes[i].data, q2.planes[i].data, q1.planes[i].nbytes));
    same &= q1.planes[0].nbytes > 0 && q1.proxy_loss == q2.proxy_loss;
    harp_qtensor_free(&q1), harp_qtensor_free(&q2);
    free(w1), free(w2), free(h1), free(h2);
    harp_rot_destroy(hu), harp_rot_destroy(hv);
    return same;
}

static void check(int64_t m, int64_t n, int steps) {
    float *W = malloc(sizeof(float) * (size_t)(m * n));
    double *H = malloc(sizeof(double) * (size_t)(n * n));
    hft_problem((int)m, (int)n, (uint64_t)(m * 7 + n), W, H);
    harp_fit_params p = harp_fit_default_params(2);
    p.schedule = HARP_BF_SCHEDULE_HADAMARD;
    p.steps = steps;
    harp_rot *U = NULL, *V = NULL;
    harp_fit_report rep;
    CHECK_OK(harp_fit(&p, m, n, W, H, 3, "hadamard schedule", &U, &V, &rep));
    if (U && V) {
        int same = same_as_rht(U, V, m, n, W, H);
        if (steps == 0) CHECK_MSG(same, "%lld×%lld: HARP (hadamard schedule, 0 steps) differs from RHT", (long long)m, (long long)n);
        else CHECK_MSG(!same && rep.loss_final < rep.loss0, "%lld×%lld: %d steps left the RHT unchanged or the loss not lower", (long long)m,
                       (long long)n, steps);
        printf("%6lld×%-6lld steps %d: K_U %d, K_V %d, %s RHT; fit loss %.6g -> %.6g\n", (long long)m, (long long)n, steps,
               harp_rot_butterfly_fixed_k(U), harp_rot_butterfly_fixed_k(V), same ? "equal to" : "differs from", rep.loss0,
               rep.loss_final);
    }
    harp_rot_destroy(U), harp_rot_destroy(V);
    free(W), free(H);
}

int main(void) {
    setenv("OMP_WAIT_POLICY", "passive", 0);
    static const int64_t widths[] = {172, 1536, 11008, 14336, 4864, 1728};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        check(widths[i], 64, 0);
        if (widths[i] <= 1728) check(64, widths[i], 0);
    }
    check(344, 172, 0);   /* both sides non-power-of-two (stories260K up|gate transposed) */
    check(344, 172, 3);
    return t_done();
}
