/* One linear group of the quantize pipeline (algorithms.md §4.1 with Had or a fixed rotation in
 * place of the fitted processor; §5.1 scale chain): stack the slices normalised by their rms, draw
 * the signs, conjugate W and H, fit or create the rotations, rotate, quantize into a harp_qtensor,
 * attach its transforms and append its folder tensors. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmodel/qmodel_internal.h"

static const int hess_of_group[QF_NGROUPS] = {HARP_HESS_QKV, HARP_HESS_O, HARP_HESS_UP, HARP_HESS_DOWN};

typedef struct qp_work {
    int64_t m, n;
    int ns;
    int64_t len[3];
    char what[96];
    float *W;             /* (m, n) normalised, then signed and rotated */
    double *H;            /* (n, n) layer Hessian, then signed and rotated */
    float ss[3];          /* rms of each slice */
    int8_t *su, *sv;      /* signs (moved into the qtensor) */
    harp_rot *RU, *RV;    /* rotations (moved into the qtensor) */
    harp_fit_report frep;
    harp_qtensor qt;
} qp_work;

static void work_free(qp_work *w) {
    HARP_FREE_ALL(w->W, w->H, w->su, w->sv);
    harp_rot_destroy(w->RU);
    harp_rot_destroy(w->RV);
    harp_qtensor_free(&w->qt);
}

/* T_i = W_i·Mtᵀ (sequential calibration's ASYM target, qmodel/seqcal.h), len × n. */
static double *asym_target(const float *Wi, int64_t len, int64_t n, const double *Mt) {
    double *A = harp_xmalloc((size_t)(len * n) * sizeof *A, "group target");
    double *T = A ? harp_xmalloc((size_t)(len * n) * sizeof *T, "group target") : NULL;
    if (T) {
        for (int64_t k = 0; k < len * n; k++) A[k] = Wi[k];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)len, (int)n, (int)n, 1.0, A, (int)n, Mt, (int)n, 0.0, T, (int)n);
    }
    harp_free(A);
    return T;
}

/* W = vstack(T_i / rms(T_i)) with T_i the group's source linears (or their ASYM targets); H = a copy
 * of its Hessian, from the folder (hl) or the sequential calibration (seq). */
static harp_status load_group(const harp_model *mdl, int layer, int gi, const harp_hess_layer *hl, const qp_seq *seq, qp_work *w) {
    const harp_lgroup *G = &mdl->layers[layer].cfg.g[gi];
    const int64_t n = w->n;
    w->W = harp_xmalloc((size_t)(w->m * n) * sizeof(float), "group weight");
    if (!w->W) return HARP_ERR_OOM;
    int64_t r0 = 0;
    const double *Mt = seq ? seq->Mt[gi] : NULL;
    for (int i = 0; i < w->ns; i++) {
        const float *Wi = G->qt ? NULL : G->w[i];
        if (!Wi || G->n_slices != w->ns || G->in != n || G->out[i] != w->len[i])
            return harp_err(HARP_ERR_UNSUPPORTED, "%s: source linear is not an fp32 matrix of the expected shape", w->what);
        double *Ti = Mt ? asym_target(Wi, w->len[i], n, Mt) : NULL;
        if (Mt && !Ti) return HARP_ERR_OOM;
        double s2 = 0;
        for (int64_t k = 0; k < w->len[i] * n; k++) {
            const double v = Ti ? Ti[k] : Wi[k];
            s2 += v * v;
        }
        double rms = sqrt(s2 / ((double)w->len[i] * (double)n));
        if (!(rms > 0) || !isfinite(rms)) rms = 1.0;
        w->ss[i] = (float)rms;
        for (int64_t k = 0; k < w->len[i] * n; k++) w->W[r0 * n + k] = (float)((Ti ? Ti[k] : Wi[k]) / rms);
        harp_free(Ti);
        r0 += w->len[i];
    }
    if (seq) {
        if (!(w->H = harp_xmalloc((size_t)(n * n) * sizeof(double), "group Hessian"))) return HARP_ERR_OOM;
        memcpy(w->H, seq->H[gi], (size_t)(n * n) * sizeof(double));
        return HARP_OK;
    }
    int hn = 0;
    const double *H0 = harp_hess_matrix(hl, hess_of_group[gi], &hn);
    if (!H0 || hn != n)
        return harp_err(HARP_ERR_SHAPE, "%s: Hessian '%s' has size %d, expected %lld", w->what,
                        harp_hess_name(hess_of_group[gi]), hn, (long long)n);
    w->H = harp_xmalloc((size_t)(n * n) * sizeof(double), "group Hessian");
    if (!w->H) return HARP_ERR_OOM;
    memcpy(w->H, H0, (size_t)(n * n) * sizeof(double));
    return HARP_OK;
}

/* Signs from the group seed (harp_qmodel_layer_seed), then W ← diag(s_out) W diag(s_in) and
 * H ← diag(s_in) H diag(s_in). */
static harp_status draw_signs(uint64_t seed, qp_work *w) {
    const int64_t m = w->m, n = w->n;
    harp_rng rng;
    harp_rng_seed(&rng, seed);
    w->su = harp_xmalloc((size_t)n, "s_in");
    w->sv = harp_xmalloc((size_t)m, "s_out");
    if (!w->su || !w->sv) return HARP_ERR_OOM;
    for (int64_t j = 0; j < n; j++) w->su[j] = (harp_rng_u64(&rng) >> 63) ? -1 : 1;
    for (int64_t i = 0; i < m; i++) w->sv[i] = (harp_rng_u64(&rng) >> 63) ? -1 : 1;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            if (w->sv[i] * w->su[j] < 0) w->W[i * n + j] = -w->W[i * n + j];
    for (int64_t a = 0; a < n; a++)
        for (int64_t b = 0; b < n; b++)
            if (w->su[a] * w->su[b] < 0) w->H[a * n + b] = -w->H[a * n + b];
    return HARP_OK;
}

static harp_status rot_create(harp_qrot r, int64_t dim, uint64_t seed, harp_rot **out) {
    const harp_rot_kind k = (harp_rot_kind)harp_qrot_kind(r);
    harp_rot_params rp;
    harp_rot_params_default(&rp);
    if (k == HARP_ROT_GSR) {
        /* GSR groups of 128, or the largest power of two dividing dim when 128 does not (320 → 64) */
        int g = 128;
        while (g > 1 && dim % g) g /= 2;
        rp.gsr_group = g;
    }
    return harp_rot_create(k, dim, &rp, seed, out);
}

/* Signs and rotations (HARP: fitted on the regularised, sign-conjugated H), then W̃ = Uᵀ W V and
 * H̃ = Vᵀ H V. */
static harp_status rotate_group(const harp_qmodel_params *p, int layer, int gi, qp_work *w) {
    const int64_t m = w->m, n = w->n;
    const uint64_t seed = harp_qmodel_layer_seed(p->seed, layer, gi);
    HARP_TRY(draw_signs(seed, w));
    if (p->rotation == HARP_QROT_HARP) {
        double *Hreg = harp_xmalloc((size_t)(n * n) * sizeof(double), "regularised Hessian");
        if (!Hreg) return HARP_ERR_OOM;
        memcpy(Hreg, w->H, (size_t)(n * n) * sizeof(double));
        harp_status st = harp_hessian_regularize(n, Hreg, 0.01, NULL);
        harp_fit_params fp = p->harp;
        fp.codebook = harp_qtype_for(p->method, p->bits);
        fp.qtip_code = p->qtip_code, fp.qtip_gpu = p->qtip_gpu;
        if (!st) st = harp_fit(&fp, m, n, w->W, Hreg, seed, w->what, &w->RU, &w->RV, &w->frep);
        free(Hreg);
        HARP_TRY(st);
    } else {
        HARP_TRY(rot_create(p->rotation, n, harp_seed_mix(seed, 1), &w->RV));
        HARP_TRY(rot_create(p->rotation, m, harp_seed_mix(seed, 2), &w->RU));
    }
    HARP_TRY(harp_rot_weight(w->RU, w->RV, w->W, m, n, 0));
    return harp_rot_hessian_f64(w->RV, w->H, n, 0);
}

static harp_status solve_group(const harp_qmodel_params *p, qp_work *w, double *rpt) {
    harp_quant_params qp = harp_quant_default_params(p->method, p->bits);
    qp.group_size = p->group_size;
    qp.symmetric = p->symmetric, qp.mse_clip = p->mse_clip;
    qp.act_order = qp.static_groups = p->act_order;
    qp.qtip_code = p->qtip_code, qp.qtip_gpu = p->qtip_gpu;
    if (p->scale_override > 0) qp.scale_override = p->scale_override;
    else if (p->rotation == HARP_QROT_HARP && p->harp.scale_override > 0) qp.scale_override = p->harp.scale_override;
    const double tq = harp_time_s();
    HARP_TRY(harp_quantize_linear(&qp, w->m, w->n, w->W, w->H, w->what, &w->qt));
    rpt[RPT_Q_SEC] = harp_time_s() - tq;
    return HARP_OK;
}

/* Moves slices, signs and rotations into the qtensor and appends its folder tensors; the report's
 * bit columns. Paper count of the transforms (docs/format/qmodel.md): HARP θ as harp_fit_storage_bits,
 * 0 for the parameter-free Hadamard and GSR, the stored blob for the dense random / Kronecker
 * rotations, and 1 bit per sign. */
static harp_status emit_group(const harp_qmodel_params *p, const char *P, qp_work *w, qf_tensors *out, double *rpt) {
    harp_qxf *x = &w->qt.xf;
    x->n_slices = w->ns;
    for (int i = 0; i < w->ns; i++) x->slice_len[i] = w->len[i], x->slice_scale[i] = w->ss[i];
    x->s_in = w->su, x->s_out = w->sv, x->rot_in = w->RV, x->rot_out = w->RU;
    w->su = w->sv = NULL;
    w->RU = w->RV = NULL;
    HARP_TRY(harp_qtensor_derive(&w->qt));
    int64_t code_bytes = 0, xf_bytes = 0;
    HARP_TRY(qf_put_qtensor(out, P, &w->qt, &code_bytes, &xf_bytes));
    const int rotated = p->rotation != HARP_QROT_NONE;
    const int64_t sign_bytes = rotated ? w->m + w->n : 0;
    const int64_t harp_bits =
        p->rotation == HARP_QROT_HARP
            ? harp_fit_storage_bits(x->rot_out, p->harp.theta_int8) + harp_fit_storage_bits(x->rot_in, p->harp.theta_int8)
            : 0;
    const int dense = p->rotation == HARP_QROT_RANDOM || p->rotation == HARP_QROT_KRON;
    rpt[RPT_LOSS] = w->qt.proxy_loss;
    rpt[RPT_BITS] = 8.0 * (double)(code_bytes + xf_bytes);
    rpt[RPT_ROT_BITS] = 8.0 * (double)(xf_bytes - sign_bytes);
    rpt[RPT_HARP_BITS] = (double)harp_bits;
    rpt[RPT_CODE_BITS] = 8.0 * (double)code_bytes;
    rpt[RPT_XF_BITS] = 8.0 * (double)xf_bytes;
    /* the paper's BPP (algorithms.md §4.9) counts HARP θ and leaves the sign vectors out */
    rpt[RPT_XF_PAPER] = (double)harp_bits + (dense ? rpt[RPT_ROT_BITS] : 0.0);
    rpt[RPT_HL0] = w->frep.loss0;
    rpt[RPT_HL1] = w->frep.loss_final;
    rpt[RPT_FIT_SEC] = w->frep.seconds;
    return HARP_OK;
}

harp_status qp_group_run(const harp_model *mdl, int layer, int gi, const harp_hess_layer *hl, const qp_seq *seq,
                         const harp_qmodel_params *p, qf_tensors *out, double *rpt) {
    qp_work w;
    memset(&w, 0, sizeof w);
    w.ns = qf_group_slices(&mdl->cfg, gi, w.len, &w.n);
    for (int i = 0; i < w.ns; i++) w.m += w.len[i];
    char P[128];
    qf_group_prefix(P, sizeof P, layer, gi);
    snprintf(w.what, sizeof w.what, "layers.%d.%s", layer, qf_group_short[gi]);
    const double t0 = harp_time_s();
    harp_status st = load_group(mdl, layer, gi, hl, seq, &w);
    if (!st && p->rotation != HARP_QROT_NONE) st = rotate_group(p, layer, gi, &w);
    if (!st) st = solve_group(p, &w, rpt);
    if (!st) st = emit_group(p, P, &w, out, rpt);
    rpt[RPT_SEC] = harp_time_s() - t0;
    work_free(&w);
    return st;
}
