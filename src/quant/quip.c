/* QuIP# per-linear quantizer on an already rotated W̃ (m, n) and H̃ (n, n): §1.5 regularisation,
 * the Wscale chain of §5.1, BlockLDLQ + tune sweeps (§5.4) with E8P12 / RVQ3B / RVQ4B.
 * Widths that are not a multiple of 8 are padded with zero columns and an identity block in H̃
 * (decoupled, so the padding never feeds back into real columns). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "quant_internal.h"
#include "quant/qtype_traits.h"

typedef struct {
    harp_qtype cb;
    double r;
} cb_ctx;

static void cb_vq8(const void *ctx, const double x[8], double out[8], uint16_t *c1, uint16_t *c2) {
    const cb_ctx *c = ctx;
    *c1 = harp_cb_quantize8(c->cb, c->r, x, out, c2);
}

/* Wh (m, n) = (float)(Wscale · (E8P(c1) + R(c2)/r)) in fp64: the solver's reconstruction, for the
 * proxy loss. */
static void quip_recon(harp_qtype cb, int64_t m, int64_t n, const uint16_t *c1, const uint16_t *c2, double wscale,
                       double r, float *Wh) {
    const int64_t nb = (n + 7) / 8;
    for (int64_t rr = 0; rr < m; rr++)
        for (int64_t k = 0; k < nb; k++) {
            double v[8];
            harp_cb_decode8(cb, r, c1[rr * nb + k], c2 ? c2[rr * nb + k] : 0, v);
            for (int j = 0; j < 8 && 8 * k + j < n; j++) Wh[rr * n + 8 * k + j] = (float)(wscale * v[j]);
        }
}

harp_status harp_quip_quantize(const harp_quant_params *p, int64_t m, int64_t n, const float *W, const double *Hin,
                               const char *what, harp_qtensor *out, float *Wh) {
    const harp_qtype cb = out->type;
    const double so = p->scale_override > 0 ? p->scale_override : harp_codebook_opt_scale(cb);
    const double r = p->resid_scale_override > 0 ? p->resid_scale_override : harp_codebook_opt_resid_scale(cb);
    const int64_t np = (n + 7) / 8 * 8, nb = np / 8;
    const int two_stage = cb != HARP_QTYPE_E8P2;
    harp_status st = HARP_OK;
    for (int i = 0; i < harp_qtype_traits_of(cb)->n_planes && !st; i++) st = harp_qtensor_alloc_plane(out, i);
    if (st) return st;
    double *H = harp_xcalloc((size_t)(np * np), sizeof *H, "QuIP# hessian");
    double *Z = harp_xcalloc((size_t)(m * np), sizeof *Z, "QuIP# weights");
    double *Zq = harp_xmalloc((size_t)(m * np) * sizeof *Zq, "QuIP# weights");
    uint16_t *c1 = out->planes[0].owned;
    /* the E81B stage is searched into 16-bit codes and narrowed to its 8-bit plane below */
    uint16_t *c2 = !two_stage ? NULL : cb == HARP_QTYPE_RVQ4 ? out->planes[1].owned
                                                              : harp_xmalloc((size_t)(m * nb) * sizeof *c2, "QuIP# codes");
    if (!H || !Z || !Zq || (two_stage && !c2)) {
        st = HARP_ERR_OOM;
        goto done;
    }
    if ((st = harp_hessian_padded(n, np, Hin, p->regularize, p->sigma_reg, what, H)) != HARP_OK) goto done;
    /* Wscale = rms(W̃) / so; rows summed in order (deterministic) */
    double ss = 0;
    for (int64_t k = 0; k < m * n; k++) ss += (double)W[k] * (double)W[k];
    const double rms = sqrt(ss / (double)(m * n));
    const double wscale = rms > 0 ? rms / so : 0.0;
    if (wscale > 0)
        for (int64_t rr = 0; rr < m; rr++)
            for (int64_t c = 0; c < n; c++) Z[rr * np + c] = (double)W[rr * n + c] / wscale;
    cb_ctx ctx = {cb, r};
    st = harp_ldlq(m, np, Z, H, cb_vq8, &ctx, p->tune_iters, Zq, c1, c2, &out->chol_jitter_steps, what, p->progress,
                   p->progress_user);
    if (st != HARP_OK) goto done;
    if (cb == HARP_QTYPE_RVQ3) {
        uint8_t *c8 = out->planes[1].owned;
        for (int64_t i = 0; i < m * nb; i++) {
            if (c2[i] > 255) {
                st = harp_err(HARP_ERR_INTERNAL, "%s: E81B code %u out of range", what, c2[i]);
                goto done;
            }
            c8[i] = (uint8_t)c2[i];
        }
    }
    float *ws = out->planes[two_stage ? 2 : 1].owned;
    ws[0] = (float)wscale;
    ws[1] = two_stage ? (float)(wscale / r) : 0.0f;
    quip_recon(cb, m, n, c1, c2, wscale, r, Wh);
done:
    harp_free(H), harp_free(Z), harp_free(Zq);
    if (cb == HARP_QTYPE_RVQ3) harp_free(c2);
    return st;
}
