/* LDP fit (b), per transformer block (ldp.h): Adam on the per-group (β, α, φ) of the block's linears,
 * minimising the block output error against a target on calibration activations. The gradient of the
 * loss w.r.t. each dequantized weight comes from the hand-written block backward (blockfit_bwd.c); the
 * chain rule through harp_ldp_levels gives the levels' parameters (codes held: straight-through). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "quant/blockfit_gpu.h"
#include "quant/ldp.h"
#include "quant/quant_internal.h"

#define NP HARP_LDP_NPARAM

typedef struct lin_state {
    int64_t m, n, g, ng;
    double scale;
    double *theta, *m1, *m2, *lr; /* (m, ng, NP) each: parameters, Adam moments, per-parameter step, */
    double *grad;                 /* dL/dθ                                                           */
    uint8_t *q;                   /* current codes (m, n)                                            */
} lin_state;

/* Sequences the loss is taken on: the fitted ones, or the held-out ones candidates are chosen on. */
typedef struct blk_set {
    harp_blk_dims dm;
    const double *X, *Y;
    double inv_norm; /* 1 / ‖Y − X‖² */
    harp_blk_cache c;
    harp_blk_gpu *gpu; /* the set on the device (harp_ldpb_params.gpu), else NULL: c on the CPU */
} blk_set;

typedef struct ldpb {
    const harp_blk_dims *dm; /* all sequences (shapes) */
    const harp_blk_wakv *wk; /* the quantized block's W/A/KV slots (NULL: none) */
    const harp_blk_w *fp;
    const double *X, *Y;
    harp_ldpb_lin *out;
    lin_state s[HARP_BLK_NLIN];
    harp_blk_w wq, gw;
    blk_set fit, val;        /* val.dm.nseq = 0: candidates are scored on the fitted sequences */
    double *dy;
} ldpb;

/* θ whose levels are lv (inverse of harp_ldp_levels up to rounding; equal gaps when α = β). */
static void theta_of_levels(const float lv[4], double th[NP]) {
    const double b = lv[0], a = lv[3], r = a - b;
    th[0] = b, th[1] = a;
    for (int k = 0; k < 3; k++) th[2 + k] = r > 0 ? log(fmax(((double)lv[k + 1] - lv[k]) / r, 1e-6)) : 0.0;
}

static void levels_f16(const double th[NP], float lv[4]) {
    double d[4];
    harp_ldp_levels(th, d, NULL);
    for (int k = 0; k < 4; k++) lv[k] = harp_f16_to_f32(harp_f32_to_f16((float)d[k]));
}

/* Dequantized weight of linear i from θ and the current codes: double levels, or fp16-rounded (as stored). */
static void dequant(ldpb *B, int i, int rounded) {
    const lin_state *s = &B->s[i];
    for (int64_t r = 0; r < s->m; r++)
        for (int64_t G = 0; G < s->ng; G++) {
            const double *th = s->theta + NP * (r * s->ng + G);
            double lv[4];
            float f[4];
            if (rounded) {
                levels_f16(th, f);
                for (int k = 0; k < 4; k++) lv[k] = f[k];
            } else {
                harp_ldp_levels(th, lv, NULL);
            }
            const int64_t c1 = (G + 1) * s->g < s->n ? (G + 1) * s->g : s->n;
            for (int64_t c = G * s->g; c < c1; c++) B->wq.lin[i][r * s->n + c] = s->scale * lv[s->q[r * s->n + c]];
        }
}

/* Block loss *L of the weights in B->wq on set S; with dy, dL/dy into it (CPU sets only). */
static harp_status set_loss(const ldpb *B, blk_set *S, double *dy, double *L) {
    if (S->gpu) return harp_blk_gpu_loss(S->gpu, &B->wq, L, NULL);
    const size_t len = (size_t)S->dm.T * S->dm.nseq * S->dm.d;
    HARP_TRY(harp_blk_forward(&S->dm, &B->wq, S->X, &S->c));
    double e = 0;
    for (size_t k = 0; k < len; k++) {
        const double r = S->c.y[k] - S->Y[k];
        e += r * r;
        if (dy) dy[k] = 2.0 * r * S->inv_norm;
    }
    *L = e * S->inv_norm;
    return HARP_OK;
}

/* Loss on the fitted sequences; with grad, dL/dW of the fitted linears into B->gw. */
static harp_status block_loss(ldpb *B, int grad, double *L) {
    if (B->fit.gpu) return harp_blk_gpu_loss(B->fit.gpu, &B->wq, L, grad ? &B->gw : NULL);
    HARP_TRY(set_loss(B, &B->fit, B->dy, L));
    return grad ? harp_blk_backward(&B->fit.dm, &B->wq, &B->fit.c, B->dy, NULL, &B->gw) : HARP_OK;
}

/* dL/dθ of linear i from dL/dW (B->gw): Σ over the group's columns of scale · dW · ∂ℓ_q/∂θ. */
static void theta_grad(ldpb *B, int i) {
    lin_state *s = &B->s[i];
    const double *gW = B->gw.lin[i];
    for (int64_t r = 0; r < s->m; r++)
        for (int64_t G = 0; G < s->ng; G++) {
            const int64_t k0 = NP * (r * s->ng + G), c1 = (G + 1) * s->g < s->n ? (G + 1) * s->g : s->n;
            double gl[4] = {0, 0, 0, 0}, lv[4], J[4][NP];
            for (int64_t c = G * s->g; c < c1; c++) gl[s->q[r * s->n + c]] += s->scale * gW[r * s->n + c];
            harp_ldp_levels(s->theta + k0, lv, J);
            for (int p = 0; p < NP; p++) s->grad[k0 + p] = gl[0] * J[0][p] + gl[1] * J[1][p] + gl[2] * J[2][p] + gl[3] * J[3][p];
        }
}

/* One Adam step (β1 0.9, β2 0.999) on linear i from s->grad; α < β after the step collapses both to
 * their mean (the levels stay ordered). */
static void adam_step(ldpb *B, int i, int t) {
    lin_state *s = &B->s[i];
    const double b1 = 0.9, b2 = 0.999, c1 = 1.0 - pow(b1, t), c2 = 1.0 - pow(b2, t);
    for (int64_t k0 = 0; k0 < NP * s->m * s->ng; k0 += NP) {
        double *th = s->theta + k0;
        for (int p = 0; p < NP; p++) {
            const double gp = s->grad[k0 + p];
            double *m1 = s->m1 + k0 + p, *m2 = s->m2 + k0 + p;
            *m1 = b1 * *m1 + (1 - b1) * gp;
            *m2 = b2 * *m2 + (1 - b2) * gp * gp;
            th[p] -= s->lr[k0 + p] * (*m1 / c1) / (sqrt(*m2 / c2) + 1e-30);
        }
        if (th[1] < th[0]) th[0] = th[1] = 0.5 * (th[0] + th[1]);
    }
}

/* Codes of linear i ← nearest level of the FP weight / scale (thresholds at the midpoints). */
static void reassign(ldpb *B, int i) {
    lin_state *s = &B->s[i];
    for (int64_t r = 0; r < s->m; r++)
        for (int64_t G = 0; G < s->ng; G++) {
            double lv[4];
            harp_ldp_levels(s->theta + NP * (r * s->ng + G), lv, NULL);
            const int64_t c1 = (G + 1) * s->g < s->n ? (G + 1) * s->g : s->n;
            for (int64_t c = G * s->g; c < c1; c++)
                s->q[r * s->n + c] = (uint8_t)harp_ldp_nearest(lv, B->fp->lin[i][r * s->n + c] / s->scale);
        }
}

/* Scores the current (codes, fp16 levels) on the held-out sequences (the fitted ones without); keeps
 * them in B->out when better than *best. */
static harp_status candidate(ldpb *B, int step, double *best, harp_ldpb_report *rep) {
    for (int i = 0; i < HARP_BLK_NLIN; i++)
        if (B->s[i].q) dequant(B, i, 1);
    double L;
    HARP_TRY(set_loss(B, B->val.dm.nseq ? &B->val : &B->fit, NULL, &L));
    if (!(L < *best)) return HARP_OK;
    *best = L, rep->best_step = step;
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        const lin_state *s = &B->s[i];
        if (!s->q) continue;
        memcpy(B->out[i].q, s->q, (size_t)(s->m * s->n));
        for (int64_t k = 0; k < s->m * s->ng; k++) levels_f16(s->theta + NP * k, B->out[i].levels + 4 * k);
    }
    return HARP_OK;
}

static harp_status state_init(ldpb *B, int i, double lr) {
    lin_state *s = &B->s[i];
    harp_blk_lin_shape(B->dm, i, &s->m, &s->n);
    s->g = B->out[i].g > 0 && B->out[i].g < s->n ? B->out[i].g : s->n;
    s->ng = (s->n + s->g - 1) / s->g;
    s->scale = B->out[i].scale;
    if (!(s->scale > 0) || !isfinite(s->scale))
        return harp_err(HARP_ERR_INVALID_ARG, "ldp block fit: linear %d has scale %g (need a positive finite one)", i, s->scale);
    const size_t np = (size_t)(s->m * s->ng * NP);
    s->theta = harp_xcalloc(np, sizeof(double), "ldp block parameters");
    s->m1 = harp_xcalloc(np, sizeof(double), "ldp block parameters");
    s->m2 = harp_xcalloc(np, sizeof(double), "ldp block parameters");
    s->lr = harp_xcalloc(np, sizeof(double), "ldp block parameters");
    s->grad = harp_xcalloc(np, sizeof(double), "ldp block parameters");
    s->q = harp_xmalloc((size_t)(s->m * s->n), "ldp block codes");
    if (!s->theta || !s->m1 || !s->m2 || !s->lr || !s->grad || !s->q) return HARP_ERR_OOM;
    memcpy(s->q, B->out[i].q, (size_t)(s->m * s->n));
    for (int64_t k = 0; k < s->m * s->ng; k++) {
        const float *lv = B->out[i].levels + 4 * k;
        for (int j = 1; j < 4; j++)
            if (!(lv[j] >= lv[j - 1]))
                return harp_err(HARP_ERR_INVALID_ARG, "ldp block fit: linear %d group %lld: levels not in increasing order", i,
                                (long long)k);
        theta_of_levels(lv, s->theta + NP * k);
        const double span = (double)lv[3] - lv[0] > 0 ? (double)lv[3] - lv[0] : fmax(fabs((double)lv[0]), 1e-3);
        for (int p = 0; p < NP; p++) s->lr[NP * k + p] = p < 2 ? lr * span : lr;
    }
    return HARP_OK;
}

static void ldpb_free(ldpb *B) {
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        lin_state *s = &B->s[i];
        harp_free(s->theta), harp_free(s->m1), harp_free(s->m2), harp_free(s->lr), harp_free(s->grad), harp_free(s->q);
    }
    harp_blk_w_free(&B->wq), harp_blk_w_free(&B->gw);
    harp_blk_cache_free(&B->fit.c), harp_blk_cache_free(&B->val.c);
    harp_blk_gpu_free(B->fit.gpu), harp_blk_gpu_free(B->val.gpu);
    harp_free(B->dy);
}

/* The first nseq − nv sequences are fitted, the last nv held out; ‖Y − X‖² normalises each. gpu: the set
 * lives on the device (no CPU cache). */
static harp_status set_init(ldpb *B, blk_set *S, int first, int count, int gpu) {
    S->dm = *B->dm, S->dm.nseq = count;
    if (!count) return HARP_OK;
    const size_t off = (size_t)first * B->dm->T * B->dm->d, len = (size_t)count * B->dm->T * B->dm->d;
    S->X = B->X + off, S->Y = B->Y + off;
    double nrm = 0;
    for (size_t k = 0; k < len; k++) nrm += (S->Y[k] - S->X[k]) * (S->Y[k] - S->X[k]);
    S->inv_norm = nrm > 0 ? 1.0 / nrm : 1.0;
    if (gpu) return harp_blk_gpu_create(&S->dm, B->wk, S->X, S->Y, S->inv_norm, &S->gpu);
    return harp_blk_cache_alloc_wakv(&S->dm, B->wk, &S->c);
}

/* Buffers: wq = the FP block (fitted linears overwritten by dequant), gw only for the fitted linears. */
static harp_status ldpb_setup(ldpb *B, const harp_ldpb_params *p) {
    const harp_blk_dims *dm = B->dm;
    const int nv = p->val_seqs;
    HARP_TRY(set_init(B, &B->fit, 0, dm->nseq - nv, p->gpu));
    HARP_TRY(set_init(B, &B->val, dm->nseq - nv, nv, p->gpu));
    HARP_TRY(harp_blk_w_alloc(dm, &B->wq));
    HARP_TRY(harp_blk_w_alloc(dm, &B->gw));
    const size_t len = (size_t)dm->T * B->fit.dm.nseq * dm->d;
    if (!p->gpu && !(B->dy = harp_xmalloc(len * sizeof *B->dy, "ldp block output gradient"))) return HARP_ERR_OOM;
    memcpy(B->wq.attn_norm, B->fp->attn_norm, (size_t)dm->d * sizeof(double));
    memcpy(B->wq.ffn_norm, B->fp->ffn_norm, (size_t)dm->d * sizeof(double));
    harp_free(B->gw.attn_norm), harp_free(B->gw.ffn_norm);
    B->gw.attn_norm = B->gw.ffn_norm = NULL;
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(dm, i, &m, &n);
        memcpy(B->wq.lin[i], B->fp->lin[i], (size_t)(m * n) * sizeof(double));
        if (B->out[i].q) HARP_TRY(state_init(B, i, p->lr));
        else harp_free(B->gw.lin[i]), B->gw.lin[i] = NULL;
    }
    return HARP_OK;
}

static harp_status ldpb_run(ldpb *B, const harp_ldpb_params *p, harp_ldpb_report *rep) {
    double best = INFINITY, L;
    const char *stage = p->stage ? p->stage : "ldp block fit";
    HARP_TRY(candidate(B, 0, &best, rep));
    rep->loss0 = best;
    const int every = p->reassign_every > 0 ? p->reassign_every : 10;
    for (int t = 1; t <= p->steps; t++) {
        if (p->progress && p->progress(p->progress_user, stage, t - 1, p->steps))
            return harp_err(HARP_ERR_CANCELLED, "ldp block fit: cancelled");
        for (int i = 0; i < HARP_BLK_NLIN; i++)
            if (B->s[i].q) dequant(B, i, 0);
        HARP_TRY(block_loss(B, 1, &L));
        for (int i = 0; i < HARP_BLK_NLIN; i++)
            if (B->s[i].q) theta_grad(B, i), adam_step(B, i, t);
        if (t % every && t < p->steps) continue;
        HARP_TRY(candidate(B, t, &best, rep));
        if (p->reassign_every > 0) {
            for (int i = 0; i < HARP_BLK_NLIN; i++)
                if (B->s[i].q) reassign(B, i);
            HARP_TRY(candidate(B, t, &best, rep));
        }
        harp_log(HARP_LOG_DEBUG, "ldp block fit: step %d: loss %.6g (best %.6g)", t, L, best);
    }
    if (p->progress) p->progress(p->progress_user, stage, p->steps, p->steps);
    rep->loss_best = best;
    return HARP_OK;
}

harp_status harp_ldpb_fit(const harp_blk_dims *dm, const harp_blk_w *fp, const double *X, const double *Y,
                          harp_ldpb_lin lin[HARP_BLK_NLIN], const harp_ldpb_params *p, harp_ldpb_report *rep) {
    return harp_ldpb_fit_wakv(dm, NULL, fp, X, Y, lin, p, rep);
}

harp_status harp_ldpb_fit_wakv(const harp_blk_dims *dm, const harp_blk_wakv *wk, const harp_blk_w *fp, const double *X,
                               const double *Y, harp_ldpb_lin lin[HARP_BLK_NLIN], const harp_ldpb_params *p,
                               harp_ldpb_report *rep) {
    memset(rep, 0, sizeof *rep);
    if (p->steps < 0 || !(p->lr >= 0) || p->reassign_every < 0 || p->val_seqs < 0 || p->val_seqs >= dm->nseq)
        return harp_err(HARP_ERR_INVALID_ARG, "ldp block fit: bad parameters (steps %d, lr %g, K %d, %d of %d sequences held out)",
                        p->steps, p->lr, p->reassign_every, p->val_seqs, dm->nseq);
    HARP_TRY(harp_blk_dims_check(dm));
    ldpb B = {.dm = dm, .wk = wk, .fp = fp, .X = X, .Y = Y, .out = lin};
    const int blas = harp_blas_serial_begin();
    harp_status st = ldpb_setup(&B, p);
    if (!st) st = ldpb_run(&B, p, rep);
    harp_blas_serial_end(blas);
    ldpb_free(&B);
    return st;
}

harp_status harp_ldpb_loss(const harp_blk_dims *dm, const harp_blk_w *fp, const double *X, const double *Y,
                           harp_ldpb_lin lin[HARP_BLK_NLIN], double *const theta[HARP_BLK_NLIN], double *const grad[HARP_BLK_NLIN],
                           double *L) {
    HARP_TRY(harp_blk_dims_check(dm));
    ldpb B = {.dm = dm, .fp = fp, .X = X, .Y = Y, .out = lin};
    const harp_ldpb_params p = {0, 0.0, 0, 0, NULL, NULL, NULL, 0};
    harp_status st = ldpb_setup(&B, &p);
    for (int i = 0; !st && i < HARP_BLK_NLIN; i++) {
        lin_state *s = &B.s[i];
        if (!s->q) continue;
        memcpy(s->theta, theta[i], (size_t)(s->m * s->ng * NP) * sizeof(double));
        dequant(&B, i, 0);
    }
    if (!st) st = block_loss(&B, grad != NULL, L);
    for (int i = 0; !st && grad && i < HARP_BLK_NLIN; i++) {
        lin_state *s = &B.s[i];
        if (!s->q) continue;
        theta_grad(&B, i);
        memcpy(grad[i], s->grad, (size_t)(s->m * s->ng * NP) * sizeof(double));
    }
    ldpb_free(&B);
    return st;
}
