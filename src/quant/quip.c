/* QuIP# per-linear quantizer on an already rotated W̃ (m, n) and H̃ (n, n): §1.5 regularisation,
 * the Wscale chain of §5.1, BlockLDLQ + tune sweeps (§5.4) with E8P12 / RVQ3B / RVQ4B.
 * Widths that are not a multiple of 8 are padded with zero columns and an identity block in H̃
 * (decoupled, so the padding never feeds back into real columns). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "quant_internal.h"

typedef struct {
    harp_codebook cb;
    double r;
} cb_ctx;

static void cb_vq8(const void *ctx, const double x[8], double out[8], uint16_t *c1, uint16_t *c2) {
    const cb_ctx *c = ctx;
    *c1 = harp_cb_quantize8(c->cb, c->r, x, out, c2);
}

harp_status harp_quip_quantize(const harp_quant_params *p, int64_t m, int64_t n, const float *W, const double *Hin,
                               const char *what, harp_qlinear *out) {
    const harp_codebook cb = p->bits == 2 ? HARP_CODEBOOK_E8P12
                             : p->bits == 3 ? HARP_CODEBOOK_E8P12_RVQ3B
                                            : HARP_CODEBOOK_E8P12_RVQ4B;
    const double so = p->scale_override > 0 ? p->scale_override : harp_codebook_opt_scale(cb);
    const double r = p->resid_scale_override > 0 ? p->resid_scale_override : harp_codebook_opt_resid_scale(cb);
    const int64_t np = (n + 7) / 8 * 8, nb = np / 8;
    harp_status st = HARP_OK;
    double *H = harp_xcalloc((size_t)(np * np), sizeof *H, "QuIP# hessian");
    double *Z = harp_xcalloc((size_t)(m * np), sizeof *Z, "QuIP# weights");
    double *Zq = harp_xmalloc((size_t)(m * np) * sizeof *Zq, "QuIP# weights");
    out->codes = harp_xmalloc((size_t)(m * nb) * sizeof *out->codes, "QuIP# codes");
    if (cb != HARP_CODEBOOK_E8P12) out->codes2 = harp_xmalloc((size_t)(m * nb) * sizeof *out->codes2, "QuIP# codes");
    if (!H || !Z || !Zq || !out->codes || (cb != HARP_CODEBOOK_E8P12 && !out->codes2)) {
        st = HARP_ERR_OOM;
        goto done;
    }
    for (int64_t i = 0; i < n; i++) memcpy(H + i * np, Hin + i * n, (size_t)n * sizeof *H);
    if (p->regularize) {
        /* regularise the real n×n part only, then add the decoupled identity for the padding */
        double *Hr = harp_xmalloc((size_t)(n * n) * sizeof *Hr, "QuIP# hessian");
        if (!Hr) {
            st = HARP_ERR_OOM;
            goto done;
        }
        memcpy(Hr, Hin, (size_t)(n * n) * sizeof *Hr);
        st = harp_hessian_regularize(n, Hr, p->sigma_reg, NULL);
        if (st == HARP_OK)
            for (int64_t i = 0; i < n; i++) memcpy(H + i * np, Hr + i * n, (size_t)n * sizeof *H);
        harp_free(Hr);
        if (st != HARP_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", harp_last_error());
            harp_err(st, "%s: %s", what, msg);
            goto done;
        }
    }
    for (int64_t i = n; i < np; i++) H[i * np + i] = 1.0;
    /* Wscale = rms(W̃) / so; rows summed in order (deterministic) */
    double ss = 0;
    for (int64_t k = 0; k < m * n; k++) ss += (double)W[k] * (double)W[k];
    const double rms = sqrt(ss / (double)(m * n));
    const double wscale = rms > 0 ? rms / so : 0.0;
    if (wscale > 0)
        for (int64_t rr = 0; rr < m; rr++)
            for (int64_t c = 0; c < n; c++) Z[rr * np + c] = (double)W[rr * n + c] / wscale;
    cb_ctx ctx = {cb, r};
    st = harp_ldlq(m, np, Z, H, cb_vq8, &ctx, p->tune_iters, Zq, out->codes, out->codes2, &out->chol_jitter_steps,
                   what, p->progress, p->progress_user);
    if (st != HARP_OK) goto done;
    out->codebook = cb;
    out->n_pad = np;
    out->wscale = wscale;
    out->resid_scale = cb == HARP_CODEBOOK_E8P12 ? 0.0 : r;
done:
    harp_free(H), harp_free(Z), harp_free(Zq);
    if (st != HARP_OK) {
        harp_free(out->codes), harp_free(out->codes2);
        out->codes = out->codes2 = NULL;
    }
    return st;
}
