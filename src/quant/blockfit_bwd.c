/* Hand-written backward pass of the fp64 decoder block (blockfit.h), op by op in reverse:
 * residual, down, [R4ᵀ,] SiLU·mul, gate|up, RMSNorm, residual, o, [R_oᵀ,] attention (softmax), [R3ᵀ,]
 * RoPE (rotation back), q|k|v, RMSNorm. The quantizers pass the gradient unchanged (STE), the online
 * rotations their transpose. Tested against central finite differences (tests/test_blockfit_grad.c). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "quant/blockfit.h"

static size_t rows_of(const harp_blk_dims *dm) { return (size_t)dm->T * (size_t)dm->nseq; }

/* For Y = X·Wᵀ (X R × n, W m × n): dW = dYᵀ·X (when dW), dX (+)= dY·W (beta 0 or 1, when dX). */
static void lin_bwd(const double *W, int64_t m, int64_t n, const double *X, size_t R, const double *dY, double *dW, double *dX,
                    double beta) {
    if (dW)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)n, (int)R, 1.0, dY, (int)m, X, (int)n, 0.0, dW, (int)n);
    if (dX)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)n, (int)m, 1.0, dY, (int)m, W, (int)n, beta, dX, (int)n);
}

/* h = w ⊙ x·r, r = (mean(x²) + eps)^(−1/2): dw (when non-NULL) = Σ_rows dh ⊙ x·r and
 * dx += r·(w ⊙ dh) − x·r³/d · Σ_j (w ⊙ dh)_j x_j. */
static void rmsnorm_bwd(const double *x, const double *w, const double *r, size_t R, int d, const double *dh, double *dw,
                        double *dx) {
    if (dw) memset(dw, 0, (size_t)d * sizeof *dw);
    for (size_t i = 0; i < R; i++) {
        const double *xi = x + i * d, *gi = dh + i * d;
        double dot = 0;
        for (int j = 0; j < d; j++) dot += w[j] * gi[j] * xi[j];
        const double k = r[i] * r[i] * r[i] * dot / d;
        for (int j = 0; j < d; j++) {
            dx[i * d + j] += r[i] * w[j] * gi[j] - xi[j] * k;
            if (dw) dw[j] += gi[j] * xi[j] * r[i];
        }
    }
}

/* ctx_i = Σ_j P_ij v_j with P = softmax_j(scale·q_i·k_j), j ≤ i:
 * dP_ij = dctx_i·v_j; dv_j += P_ij dctx_i; dS_ij = P_ij (dP_ij − Σ_l P_il dP_il);
 * dq_i += scale Σ_j dS_ij k_j; dk_j += scale dS_ij q_i. dq, dk, dv are overwritten. row: T doubles. */
static void attention_bwd(const harp_blk_dims *dm, const harp_blk_cache *c, const double *dctx, double *dq, double *dk, double *dv,
                          double *row) {
    const int T = dm->T, hd = dm->hd, qd = dm->nh * hd, kvd = dm->nkv * hd, grp = dm->nh / dm->nkv;
    const double scale = 1.0 / sqrt((double)hd);
    const size_t R = rows_of(dm);
    memset(dq, 0, R * qd * sizeof *dq), memset(dk, 0, R * kvd * sizeof *dk), memset(dv, 0, R * kvd * sizeof *dv);
    for (int s = 0; s < dm->nseq; s++)
        for (int h = 0; h < dm->nh; h++) {
            const double *Ph = c->P + ((size_t)s * dm->nh + h) * T * T;
            const size_t r0 = (size_t)s * T, kh = (size_t)(h / grp) * hd, qh = (size_t)h * hd;
            for (int i = 0; i < T; i++) {
                const double *p = Ph + (size_t)i * T, *go = dctx + (r0 + i) * qd + qh, *qi = c->q + (r0 + i) * qd + qh;
                double sum = 0;
                for (int j = 0; j <= i; j++) {
                    const double *vj = c->v + (r0 + j) * kvd + kh;
                    double *gv = dv + (r0 + j) * kvd + kh, dp = 0;
                    for (int t = 0; t < hd; t++) dp += go[t] * vj[t], gv[t] += p[j] * go[t];
                    row[j] = dp;
                    sum += p[j] * dp;
                }
                double *gq = dq + (r0 + i) * qd + qh;
                for (int j = 0; j <= i; j++) {
                    const double ds = p[j] * (row[j] - sum) * scale;
                    const double *kj = c->k + (r0 + j) * kvd + kh;
                    double *gk = dk + (r0 + j) * kvd + kh;
                    for (int t = 0; t < hd; t++) gq[t] += ds * kj[t], gk[t] += ds * qi[t];
                }
            }
        }
}

/* X ← X·Rᵀ (the backward of X·R) when R is on. */
static harp_status rot_back(const harp_rot *r, double *X, size_t rows, int n) {
    return r ? harp_rot_apply_f64(r, X, (int64_t)rows, n, 1) : HARP_OK;
}

/* The attention half, from dx2 (the gradient at the first residual's output): gradients of o, q, k, v,
 * attn_norm, and dx += the branch's share. */
static harp_status attn_half_bwd(const harp_blk_dims *dm, const harp_blk_w *w, const harp_blk_cache *c, const double *dx2,
                                 double *dx, harp_blk_w *gw, double *s) {
    const size_t R = rows_of(dm), qd = (size_t)dm->nh * dm->hd, kvd = (size_t)dm->nkv * dm->hd;
    double *dctx = s, *dq = dctx + R * qd, *dk = dq + R * qd, *dv = dk + R * kvd, *dh1 = dv + R * kvd, *row = dh1 + R * dm->d;
    int64_t m, n;
    harp_blk_lin_shape(dm, HARP_BLK_O, &m, &n);
    lin_bwd(w->lin[HARP_BLK_O], m, n, c->ctx, R, dx2, gw->lin[HARP_BLK_O], dctx, 0.0);
    HARP_TRY(rot_back(c->wk.rot_in[HARP_BLK_IN_O], dctx, R, (int)qd));
    attention_bwd(dm, c, dctx, dq, dk, dv, row);
    HARP_TRY(rot_back(c->wk.r3, dq, R * dm->nh, dm->hd));
    HARP_TRY(rot_back(c->wk.r3, dk, R * dm->nkv, dm->hd));
    harp_blk_rope(dm, dq, dm->nh, -1.0);
    harp_blk_rope(dm, dk, dm->nkv, -1.0);
    const double *dqkv[3] = {dq, dk, dv};
    for (int i = HARP_BLK_Q; i <= HARP_BLK_V; i++) {
        harp_blk_lin_shape(dm, i, &m, &n);
        lin_bwd(w->lin[i], m, n, c->h1, R, dqkv[i], gw->lin[i], dh1, i == HARP_BLK_Q ? 0.0 : 1.0);
    }
    HARP_TRY(rot_back(c->wk.rot_in[HARP_BLK_IN_QKV], dh1, R, dm->d));
    rmsnorm_bwd(c->x, w->attn_norm, c->r1, R, dm->d, dh1, gw->attn_norm, dx);
    return HARP_OK;
}

harp_status harp_blk_backward(const harp_blk_dims *dm, const harp_blk_w *w, const harp_blk_cache *c, const double *dy,
                              double *dx, harp_blk_w *gw) {
    const size_t R = rows_of(dm), d = (size_t)dm->d, hid = (size_t)dm->hid, qd = (size_t)dm->nh * dm->hd;
    const size_t kvd = (size_t)dm->nkv * dm->hd;
    const size_t ffn = R * (d + 2 * hid + d), att = R * (2 * qd + 2 * kvd + d) + (size_t)dm->T;
    double *s = harp_xmalloc((ffn + att) * sizeof *s, "blockfit backward scratch");
    if (!s) return HARP_ERR_OOM;
    double *dx2 = s, *da = dx2 + R * d, *dgu = da + R * hid, *dh2 = dgu + R * hid;
    /* y = x2 + a·Wdownᵀ */
    memcpy(dx2, dy, R * d * sizeof *dy);
    int64_t m, n;
    harp_blk_lin_shape(dm, HARP_BLK_DOWN, &m, &n);
    lin_bwd(w->lin[HARP_BLK_DOWN], m, n, c->a, R, dy, gw->lin[HARP_BLK_DOWN], da, 0.0);
    harp_status st = rot_back(c->wk.rot_in[HARP_BLK_IN_DOWN], da, R, dm->hid);
    /* a = silu(g)·u: dg = da·u·σ(g)(1 + g(1 − σ(g))) (into da), du = da·silu(g) (into dgu) */
    for (size_t i = 0; i < R * hid; i++) {
        const double g = c->g[i], sg = 1.0 / (1.0 + exp(-g));
        dgu[i] = da[i] * g * sg;
        da[i] *= c->u[i] * sg * (1.0 + g * (1.0 - sg));
    }
    harp_blk_lin_shape(dm, HARP_BLK_GATE, &m, &n);
    lin_bwd(w->lin[HARP_BLK_GATE], m, n, c->h2, R, da, gw->lin[HARP_BLK_GATE], dh2, 0.0);
    lin_bwd(w->lin[HARP_BLK_UP], m, n, c->h2, R, dgu, gw->lin[HARP_BLK_UP], dh2, 1.0);
    if (!st) st = rot_back(c->wk.rot_in[HARP_BLK_IN_UG], dh2, R, dm->d);
    rmsnorm_bwd(c->x2, w->ffn_norm, c->r2, R, dm->d, dh2, gw->ffn_norm, dx2);
    if (dx) memcpy(dx, dx2, R * d * sizeof *dx);
    else dx = dh2; /* the attention half still needs somewhere to add its input gradient */
    if (!st) st = attn_half_bwd(dm, w, c, dx2, dx, gw, s + ffn);
    harp_free(s);
    return st;
}
