/* LDP fit (b) inside the quantize pipeline (qmodel/ldpb.h): sequential over the decoder layers, as
 * GPTQ is — each block is fitted on the activations that the already quantized previous blocks
 * produce, against the FP block on the same activations, then those activations move on through the
 * fitted quantized block. The fit edits the codes and levels of the layer's folder tensors in place. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "qmodel/ldpb.h"
#include "quant/ldp.h"

harp_status qp_ldpb_begin(const harp_model *m, const harp_qmodel_params *p, qp_ldpb *s) {
    memset(s, 0, sizeof *s);
    s->T = p->ldp_ctx;
    return harp_ldpb_embed_windows(m, p->ldp_text, p->ldp_text_len, p->ldp_ctx, p->ldp_nseq, "ldp block fit", &s->nseq, &s->X);
}

void qp_ldpb_end(qp_ldpb *s) {
    harp_free(s->X);
    s->X = NULL;
}

/* The planes of group gi of layer `layer` in t (mutable: t owns fresh layers' bytes; a resumed
 * layer's are only read). */
typedef struct grp_planes {
    uint8_t *qweight;
    uint16_t *levels;
    const float *slice_scales;
    int64_t ng;
} grp_planes;

static harp_status find_planes(const qf_tensors *t, int layer, int gi, int64_t m, int64_t n, grp_planes *g) {
    char P[128], name[160];
    qf_group_prefix(P, sizeof P, layer, gi);
    const char *sfx[3] = {"qweight", "levels", "slice_scales"};
    const qf_tensor *f[3];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%s.%s", P, sfx[i]);
        if (!(f[i] = qf_tensors_find(t, name)))
            return harp_err(HARP_ERR_FORMAT, "ldp block fit: %s: no tensor '%s' (not an ldp2 group?)", t->origin, name);
    }
    g->ng = f[1]->ndim == 2 ? f[1]->shape[1] / 4 : 0;
    if (f[0]->nbytes != (size_t)(m * ((n + 3) / 4)) || f[1]->ndim != 2 || f[1]->shape[0] != m || g->ng < 1 ||
        f[1]->nbytes != (size_t)(m * g->ng * 8))
        return harp_err(HARP_ERR_SHAPE, "ldp block fit: %s: group '%s' planes do not match a %lld x %lld ldp2 matrix", t->origin, P,
                        (long long)m, (long long)n);
    g->qweight = (uint8_t *)f[0]->data, g->levels = (uint16_t *)f[1]->data, g->slice_scales = f[2]->data;
    return HARP_OK;
}

/* The seven linears' LDP state (codes, levels, slice scale) from t, each its own arrays. */
static harp_status load_lins(const harp_blk_dims *dm, const qf_tensors *t, int layer, int64_t group_size,
                             harp_ldpb_lin lin[HARP_BLK_NLIN], grp_planes gp[QF_NGROUPS], int64_t row0[HARP_BLK_NLIN]) {
    int64_t gm[QF_NGROUPS] = {0}, gn[QF_NGROUPS] = {0};
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(dm, i, &m, &n);
        const int gi = harp_lin_slots[i].group;
        gm[gi] += m, gn[gi] = n;
    }
    for (int gi = 0; gi < QF_NGROUPS; gi++) HARP_TRY(find_planes(t, layer, gi, gm[gi], gn[gi], &gp[gi]));
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(dm, i, &m, &n);
        const int gi = harp_lin_slots[i].group, sl = harp_lin_slots[i].slice;
        row0[i] = 0; /* rows of the slices before this one (slices are stored in slice order) */
        for (int j = 0; j < HARP_BLK_NLIN; j++)
            if (harp_lin_slots[j].group == gi && harp_lin_slots[j].slice < sl) {
                int64_t mj, nj;
                harp_blk_lin_shape(dm, j, &mj, &nj);
                row0[i] += mj;
            }
        const int64_t ng = gp[gi].ng, g = group_size > 0 && group_size < n ? group_size : n;
        if ((n + g - 1) / g != ng)
            return harp_err(HARP_ERR_SHAPE, "ldp block fit: %s: layer %d group %d has %lld level groups per row, not %lld",
                            t->origin, layer, gi, (long long)ng, (long long)((n + g - 1) / g));
        float sc;
        memcpy(&sc, gp[gi].slice_scales + sl, sizeof sc);
        lin[i] = (harp_ldpb_lin){g, sc, harp_xmalloc((size_t)(m * n), "ldp block codes"),
                                 harp_xmalloc((size_t)(m * ng * 4) * sizeof(float), "ldp block levels")};
        if (!lin[i].q || !lin[i].levels) return HARP_ERR_OOM;
        harp_ldp_unpack(n, ng, row0[i], m, gp[gi].qweight, gp[gi].levels, lin[i].q, lin[i].levels);
    }
    return HARP_OK;
}

/* Weights of the quantized block: scale · level (what the folder's dequantization gives, in fp64). */
static void quant_weights(const harp_blk_dims *dm, const harp_ldpb_lin lin[HARP_BLK_NLIN], harp_blk_w *w) {
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(dm, i, &m, &n);
        const int64_t ng = (n + lin[i].g - 1) / lin[i].g;
        for (int64_t r = 0; r < m; r++)
            for (int64_t c = 0; c < n; c++)
                w->lin[i][r * n + c] = (double)(float)(lin[i].scale * lin[i].levels[4 * (r * ng + c / lin[i].g) + lin[i].q[r * n + c]]);
    }
}

/* Y = the FP block's output on X: the layer's online rotations (exact; its weights carry their offline
 * halves) without the activation and K/V quantizers. */
static harp_status fp_target(const harp_blk_dims *dm, const harp_blk_wakv *wk, const harp_blk_w *w, const double *X, double *Y) {
    harp_blk_wakv rot = *wk;
    memset(rot.aq, 0, sizeof rot.aq), memset(rot.kvq, 0, sizeof rot.kvq);
    harp_blk_cache c;
    HARP_TRY(harp_blk_cache_alloc_wakv(dm, &rot, &c));
    harp_status st = harp_blk_forward(dm, w, X, &c);
    if (!st) memcpy(Y, c.y, (size_t)dm->T * dm->nseq * dm->d * sizeof *Y);
    harp_blk_cache_free(&c);
    return st;
}

/* Fit (b) of the layer's linears (lin, fit (a)'s state) against Y, packed back into the planes gp. */
static harp_status fit_layer(const harp_blk_dims *dm, const harp_blk_wakv *wk, const harp_blk_w *w, int layer,
                             const harp_qmodel_params *p, qp_ldpb *s, harp_ldpb_lin lin[HARP_BLK_NLIN], const grp_planes *gp,
                             const int64_t row0[HARP_BLK_NLIN]) {
    const size_t len = (size_t)s->T * s->nseq * dm->d;
    double *Y = harp_xmalloc(len * sizeof *Y, "ldp block target");
    if (!Y) return HARP_ERR_OOM;
    harp_status st = fp_target(dm, wk, w, s->X, Y);
    char stage[64];
    snprintf(stage, sizeof stage, "ldp block fit layers.%d", layer);
    /* a quarter of the windows (from 4 on) held out: the candidate kept is the best on them */
    harp_ldpb_params bp = {p->ldp_steps, p->ldp_lr, 0, s->nseq >= 4 ? s->nseq / 4 : 0, stage, p->progress, p->progress_user, p->ldp_gpu};
    harp_ldpb_report rep;
    if (!st) st = harp_ldpb_fit_wakv(dm, wk, w, s->X, Y, lin, &bp, &rep);
    if (!st) {
        s->loss0 = rep.loss0, s->loss1 = rep.loss_best;
        harp_log(HARP_LOG_INFO, "layers.%d: ldp block loss %.6g -> %.6g (step %d of %d)", layer, rep.loss0, rep.loss_best,
                 rep.best_step, p->ldp_steps);
        for (int i = 0; i < HARP_BLK_NLIN; i++) {
            int64_t mi, n;
            harp_blk_lin_shape(dm, i, &mi, &n);
            const grp_planes *g = &gp[harp_lin_slots[i].group];
            harp_ldp_pack(n, g->ng, row0[i], mi, lin[i].q, lin[i].levels, g->qweight, g->levels);
        }
    }
    harp_free(Y);
    return st;
}

harp_status qp_ldpb_layer(const harp_model *m, int layer, const harp_qmodel_params *p, qf_tensors *t, int fit, qp_ldpb *s) {
    harp_blk_dims dm;
    harp_blk_w w;
    harp_blk_wakv wk;
    harp_blk_cache c = {0};
    double *inv = NULL;
    harp_ldpb_lin lin[HARP_BLK_NLIN] = {{0}};
    grp_planes gp[QF_NGROUPS];
    int64_t row0[HARP_BLK_NLIN];
    const size_t len = (size_t)s->T * s->nseq * m->cfg.dim;
    harp_status st = harp_ldpb_block_of(m, layer, s->T, s->nseq, &dm, &inv, &w);
    if (!st) harp_ldpb_block_wakv(m, layer, &wk);
    if (!st) st = load_lins(&dm, t, layer, p->group_size, lin, gp, row0);
    if (!st && fit) st = fit_layer(&dm, &wk, &w, layer, p, s, lin, gp, row0);
    /* the next block's input: this block quantized, its activation and K/V quantizers on */
    if (!st) st = harp_blk_cache_alloc_wakv(&dm, &wk, &c);
    if (!st) quant_weights(&dm, lin, &w), st = harp_blk_forward(&dm, &w, s->X, &c);
    if (!st) memcpy(s->X, c.y, len * sizeof *s->X);
    for (int i = 0; i < HARP_BLK_NLIN; i++) harp_free(lin[i].q), harp_free(lin[i].levels);
    harp_free(inv);
    harp_blk_cache_free(&c), harp_blk_w_free(&w);
    return st;
}
