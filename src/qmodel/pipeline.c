/* `harp quantize` pipeline: per decoder layer and linear group, normalise, sign-conjugate, rotate,
 * quantize, and collect the tensors of the quantized folder (algorithms.md §4.1 with Had or a fixed
 * rotation in place of the fitted processor; §5.1 scale chain). Finished layers are saved to
 * OUT_DIR/.partial/layer_NNN.safetensors (atomic) so that an interrupted run resumes. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harp/calib.h"
#include "harp/rotate.h"
#include "qformat/st_writer.h"
#include "qmodel/qmodel_internal.h"

harp_status qm_write_folder(const harp_model *m, const char *model_path, const char *out_dir, const cJSON *qcfg,
                            const qt_list *q);

static const int hess_of_group[QM_NGROUPS] = {HARP_HESS_QKV, HARP_HESS_O, HARP_HESS_UP, HARP_HESS_DOWN};
static const char *const group_short[QM_NGROUPS] = {"qkv", "o", "up_gate", "down"};

enum { RPT_LOSS, RPT_SEC, RPT_BITS, RPT_HARP_BITS, RPT_ROT_BITS, RPT_HL0, RPT_HL1, RPT_FIT_SEC, RPT_Q_SEC, RPT_NCOL };

static harp_codebook qp_codebook(const harp_qmodel_params *p) {
    if (p->method != HARP_QMETHOD_QUIP) return HARP_CODEBOOK_SCALAR;
    return p->bits == 2 ? HARP_CODEBOOK_E8P12 : p->bits == 3 ? HARP_CODEBOOK_E8P12_RVQ3B : HARP_CODEBOOK_E8P12_RVQ4B;
}

/* quantization_config object: everything that determines the output bytes. */
static cJSON *qp_config_json(const harp_qmodel_params *p) {
    cJSON *o = cJSON_CreateObject();
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)p->seed);
    cJSON_AddStringToObject(o, "quant_method", "harp");
    cJSON_AddNumberToObject(o, "version", HARP_QMODEL_VERSION);
    cJSON_AddStringToObject(o, "method", qm_method_name(p->method));
    cJSON_AddNumberToObject(o, "bits", p->bits);
    cJSON_AddStringToObject(o, "codebook", qm_codebook_name(qp_codebook(p)));
    cJSON_AddStringToObject(o, "rotation", harp_qrot_name(p->rotation));
    cJSON_AddNumberToObject(o, "group_size", p->method == HARP_QMETHOD_QUIP ? 0 : p->group_size);
    cJSON_AddStringToObject(o, "seed", seed);
    cJSON_AddStringToObject(o, "fused_groups", "qkv_proj = q,k,v; up_gate_proj = up,gate");
    if (p->method == HARP_QMETHOD_QUIP && p->scale_override > 0) cJSON_AddNumberToObject(o, "scale_override", p->scale_override);
    if (p->rotation == HARP_QROT_HARP) {
        const harp_fit_params *h = &p->harp;
        cJSON *hp = cJSON_AddObjectToObject(o, "harp");
        cJSON_AddNumberToObject(hp, "steps", h->steps);
        cJSON_AddNumberToObject(hp, "base_b", h->base_b);
        cJSON_AddNumberToObject(hp, "max_b", h->max_b);
        cJSON_AddNumberToObject(hp, "passes", h->passes);
        cJSON_AddNumberToObject(hp, "lr_u", h->lr_u);
        cJSON_AddNumberToObject(hp, "lr_v", h->lr_v);
        cJSON_AddNumberToObject(hp, "hbd_lambda", h->hbd_lambda);
        cJSON_AddNumberToObject(hp, "hbd_block", h->hbd_block);
        cJSON_AddNumberToObject(hp, "q_every", h->q_every);
        cJSON_AddNumberToObject(hp, "theta_clip", h->theta_clip);
        cJSON_AddNumberToObject(hp, "givens_b2", h->givens_b2);
        cJSON_AddNumberToObject(hp, "early_stop_window", h->early_stop_window);
        cJSON_AddNumberToObject(hp, "early_stop_rel", h->early_stop_rel);
        cJSON_AddStringToObject(hp, "theta", h->theta_int8 ? "int8" : "fp16");
        cJSON_AddNumberToObject(hp, "scale_override", h->scale_override);
    }
    return o;
}

static harp_status qp_check(const harp_qmodel_params *p) {
    if (p->method == HARP_QMETHOD_QUIP) {
        if (p->bits < 2 || p->bits > 4) return harp_err(HARP_ERR_INVALID_ARG, "quantize: quip supports 2, 3 or 4 bits, not %d", p->bits);
    } else if (p->method == HARP_QMETHOD_RTN || p->method == HARP_QMETHOD_GPTQ) {
        if (p->bits != 2 && p->bits != 3 && p->bits != 4 && p->bits != 8)
            return harp_err(HARP_ERR_INVALID_ARG, "quantize: %s supports 2, 3, 4 or 8 bits, not %d", qm_method_name(p->method), p->bits);
        if (p->group_size < 0) return harp_err(HARP_ERR_INVALID_ARG, "quantize: group size %d < 0", p->group_size);
    } else {
        return harp_err(HARP_ERR_INVALID_ARG, "quantize: unknown method %d", (int)p->method);
    }
    if ((unsigned)p->rotation > HARP_QROT_HARP) return harp_err(HARP_ERR_INVALID_ARG, "quantize: unknown rotation %d", (int)p->rotation);
    return HARP_OK;
}

static harp_status qp_add_rot(qt_list *out, const char *P, const char *suffix, const harp_rot *r, int64_t *bits) {
    uint8_t *blob = NULL;
    size_t size = 0;
    HARP_TRY(harp_rot_serialize(r, &blob, &size));
    char name[160];
    snprintf(name, sizeof name, "%s.%s", P, suffix);
    int64_t shape[1] = {(int64_t)size};
    harp_status st = qt_add(out, name, HARP_ST_U8, shape, 1, blob);
    harp_free(blob);
    *bits += 8 * (int64_t)size;
    return st;
}

static harp_status qp_add(qt_list *out, const char *P, const char *suffix, harp_st_dtype dt, int64_t d0, int64_t d1,
                          const void *data) {
    char name[160];
    snprintf(name, sizeof name, "%s.%s", P, suffix);
    int64_t shape[2] = {d0, d1};
    return qt_add(out, name, dt, shape, d1 ? 2 : 1, data);
}

/* Tensors of the quantizer result (codes, scales) under prefix P. */
static harp_status qp_emit_codes(qt_list *out, const char *P, const harp_qlinear *q) {
    int64_t m = q->m, n = q->n;
    if (q->method == HARP_QMETHOD_QUIP) {
        int64_t nc = q->n_pad / 8;
        float ws[2] = {(float)q->wscale, q->codes2 ? (float)(q->wscale / q->resid_scale) : 0.0f};
        HARP_TRY(qp_add(out, P, "codes", HARP_ST_U16, m, nc, q->codes));
        if (q->codebook == HARP_CODEBOOK_E8P12_RVQ3B) {
            uint8_t *c8 = harp_xmalloc((size_t)(m * nc), "E81B codes");
            if (!c8) return HARP_ERR_OOM;
            for (int64_t i = 0; i < m * nc; i++) {
                if (q->codes2[i] > 255) {
                    free(c8);
                    return harp_err(HARP_ERR_INTERNAL, "%s: E81B code %u out of range", P, q->codes2[i]);
                }
                c8[i] = (uint8_t)q->codes2[i];
            }
            harp_status st = qp_add(out, P, "codes2", HARP_ST_U8, m, nc, c8);
            free(c8);
            HARP_TRY(st);
        } else if (q->codes2) {
            HARP_TRY(qp_add(out, P, "codes2", HARP_ST_U16, m, nc, q->codes2));
        }
        return qp_add(out, P, "wscale", HARP_ST_F32, 2, 0, ws);
    }
    int bits = q->bits;
    int64_t rowbytes = (n * bits + 7) / 8;
    uint8_t *pk = harp_xcalloc((size_t)(m * rowbytes), 1, "packed codes");
    if (!pk) return HARP_ERR_OOM;
    /* codes bit-packed LSB first along each row: code c occupies bits [c·bits, (c+1)·bits) */
    for (int64_t r = 0; r < m; r++)
        for (int64_t c = 0; c < n; c++) {
            unsigned v = q->q[r * n + c];
            int64_t b0 = c * bits;
            for (int b = 0; b < bits; b++)
                if (v >> b & 1u) pk[r * rowbytes + ((b0 + b) >> 3)] |= (uint8_t)(1u << ((b0 + b) & 7));
        }
    harp_status st = qp_add(out, P, "qweight", HARP_ST_U8, m, rowbytes, pk);
    free(pk);
    HARP_TRY(st);
    HARP_TRY(qp_add(out, P, "scales", HARP_ST_F32, m, q->n_groups, q->scale));
    HARP_TRY(qp_add(out, P, "zeros", HARP_ST_U8, m, q->n_groups, q->zero));
    if (q->g_idx) HARP_TRY(qp_add(out, P, "g_idx", HARP_ST_I32, n, 0, q->g_idx));
    return HARP_OK;
}

static harp_status qp_rot_create(harp_qrot r, int64_t dim, uint64_t seed, harp_rot **out) {
    harp_rot_kind k = r == HARP_QROT_RHT ? HARP_ROT_HADAMARD
                      : r == HARP_QROT_KRON ? HARP_ROT_KRON
                      : r == HARP_QROT_RANDOM ? HARP_ROT_RANDOM_ORTHOGONAL : HARP_ROT_GSR;
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

typedef struct qp_work {
    float *W;
    double *H, *Hreg;
    int8_t *su, *sv;
    harp_rot *RU, *RV;
    harp_qlinear ql;
} qp_work;

static void qp_work_free(qp_work *w) {
    free(w->W);
    free(w->H);
    free(w->Hreg);
    free(w->su);
    free(w->sv);
    harp_rot_destroy(w->RU);
    harp_rot_destroy(w->RV);
    harp_qlinear_free(&w->ql);
}

static harp_status qp_group_run(const harp_model *mdl, int layer, int gi, const harp_hess_layer *hl,
                                const harp_qmodel_params *p, qt_list *out, double *rpt, qp_work *w) {
    const harp_model_config *c = &mdl->cfg;
    const harp_layer *L = &mdl->layers[layer];
    int32_t len[3];
    int64_t n;
    int ns = qm_group_slices(c, gi, len, &n);
    const harp_linear *src[3] = {NULL, NULL, NULL};
    if (gi == QM_QKV) src[0] = &L->q, src[1] = &L->k, src[2] = &L->v;
    else if (gi == QM_O) src[0] = &L->o;
    else if (gi == QM_UPGATE) src[0] = &L->up, src[1] = &L->gate;
    else src[0] = &L->down;
    int64_t m = 0;
    for (int i = 0; i < ns; i++) m += len[i];
    char P[128], what[96];
    snprintf(P, sizeof P, "model.layers.%d.%s", layer, qm_group_tensor_name[gi]);
    snprintf(what, sizeof what, "layers.%d.%s", layer, group_short[gi]);
    double t0 = harp_time_s();

    /* W = vstack(W_i / rms(W_i)) */
    float ss[3];
    w->W = harp_xmalloc((size_t)(m * n) * sizeof(float), "group weight");
    if (!w->W) return HARP_ERR_OOM;
    int64_t r0 = 0;
    for (int i = 0; i < ns; i++) {
        const float *Wi = harp_linear_f32_weight(src[i]);
        if (!Wi || src[i]->in != n || src[i]->out != len[i])
            return harp_err(HARP_ERR_UNSUPPORTED, "%s: source linear is not an fp32 matrix of the expected shape", what);
        double s2 = 0;
        for (int64_t k = 0; k < (int64_t)len[i] * n; k++) s2 += (double)Wi[k] * Wi[k];
        double rms = sqrt(s2 / ((double)len[i] * (double)n));
        if (!(rms > 0) || !isfinite(rms)) rms = 1.0;
        ss[i] = (float)rms;
        for (int64_t k = 0; k < (int64_t)len[i] * n; k++) w->W[r0 * n + k] = (float)(Wi[k] / rms);
        r0 += len[i];
    }
    int hn = 0;
    const double *H0 = harp_hess_matrix(hl, hess_of_group[gi], &hn);
    if (!H0 || hn != n)
        return harp_err(HARP_ERR_SHAPE, "%s: Hessian '%s' has size %d, expected %lld", what, harp_hess_name(hess_of_group[gi]), hn,
                        (long long)n);
    w->H = harp_xmalloc((size_t)(n * n) * sizeof(double), "group Hessian");
    if (!w->H) return HARP_ERR_OOM;
    memcpy(w->H, H0, (size_t)(n * n) * sizeof(double));

    harp_fit_report frep;
    memset(&frep, 0, sizeof frep);
    if (p->rotation != HARP_QROT_NONE) {
        uint64_t seed = harp_qmodel_layer_seed(p->seed, layer, gi);
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
        if (p->rotation == HARP_QROT_HARP) {
            w->Hreg = harp_xmalloc((size_t)(n * n) * sizeof(double), "regularised Hessian");
            if (!w->Hreg) return HARP_ERR_OOM;
            memcpy(w->Hreg, w->H, (size_t)(n * n) * sizeof(double));
            HARP_TRY(harp_hessian_regularize(n, w->Hreg, 0.01, NULL));
            harp_fit_params fp = p->harp;
            fp.codebook = qp_codebook(p);
            HARP_TRY(harp_fit(&fp, m, n, w->W, w->Hreg, seed, what, &w->RU, &w->RV, &frep));
        } else {
            HARP_TRY(qp_rot_create(p->rotation, n, harp_seed_mix(seed, 1), &w->RV));
            HARP_TRY(qp_rot_create(p->rotation, m, harp_seed_mix(seed, 2), &w->RU));
        }
        HARP_TRY(harp_rot_weight(w->RU, w->RV, w->W, m, n, 0));
        HARP_TRY(harp_rot_hessian_f64(w->RV, w->H, n, 0));
    }
    harp_quant_params qp = harp_quant_default_params(p->method, p->bits);
    qp.group_size = p->group_size;
    if (p->scale_override > 0) qp.scale_override = p->scale_override;
    else if (p->rotation == HARP_QROT_HARP && p->harp.scale_override > 0) qp.scale_override = p->harp.scale_override;
    double tq = harp_time_s();
    HARP_TRY(harp_quantize_linear(&qp, m, n, w->W, w->H, what, &w->ql));
    rpt[RPT_Q_SEC] = harp_time_s() - tq;

    int64_t rot_bits = 0;
    HARP_TRY(qp_emit_codes(out, P, &w->ql));
    HARP_TRY(qp_add(out, P, "slice_scales", HARP_ST_F32, ns, 0, ss));
    if (p->rotation != HARP_QROT_NONE) {
        HARP_TRY(qp_add(out, P, "su", HARP_ST_I8, n, 0, w->su));
        HARP_TRY(qp_add(out, P, "sv", HARP_ST_I8, m, 0, w->sv));
        HARP_TRY(qp_add_rot(out, P, "rot_in", w->RV, &rot_bits));
        HARP_TRY(qp_add_rot(out, P, "rot_out", w->RU, &rot_bits));
    }
    rpt[RPT_LOSS] = w->ql.proxy_loss;
    rpt[RPT_SEC] = harp_time_s() - t0;
    rpt[RPT_BITS] = 8.0 * (double)qt_bytes_with_prefix(out, P);
    rpt[RPT_ROT_BITS] = (double)rot_bits;
    rpt[RPT_HARP_BITS] = p->rotation == HARP_QROT_HARP
                             ? (double)(harp_fit_storage_bits(w->RU, p->harp.theta_int8) + harp_fit_storage_bits(w->RV, p->harp.theta_int8))
                             : 0.0;
    rpt[RPT_HL0] = frep.loss0;
    rpt[RPT_HL1] = frep.loss_final;
    rpt[RPT_FIT_SEC] = frep.seconds;
    return HARP_OK;
}

static harp_status qp_layer(const harp_model *mdl, int layer, const char *hess_dir, const harp_qmodel_params *p,
                            qt_list *out, double rpt[QM_NGROUPS][RPT_NCOL], int *done, int total) {
    harp_hess_layer *hl = NULL;
    HARP_TRY(harp_hess_layer_load(hess_dir, layer, mdl, &hl));
    harp_status st = HARP_OK;
    for (int g = 0; g < QM_NGROUPS && !st; g++) {
        if (p->progress) {
            char stage[64];
            snprintf(stage, sizeof stage, "quantize layers.%d.%s", layer, group_short[g]);
            if (p->progress(p->progress_user, stage, *done, total)) {
                st = harp_err(HARP_ERR_CANCELLED, "quantize: cancelled");
                break;
            }
        }
        qp_work w;
        memset(&w, 0, sizeof w);
        st = qp_group_run(mdl, layer, g, hl, p, out, rpt[g], &w);
        qp_work_free(&w);
        (*done)++;
    }
    harp_hess_layer_free(hl);
    return st;
}

static void qp_fill_rows(harp_qmodel_report *rep, const harp_model_config *c, const harp_qmodel_params *p, int layer,
                         double rpt[QM_NGROUPS][RPT_NCOL], int resumed) {
    for (int g = 0; g < QM_NGROUPS; g++) {
        harp_qmodel_row *r = &rep->rows[layer * QM_NGROUPS + g];
        int32_t len[3];
        int64_t n;
        int ns = qm_group_slices(c, g, len, &n);
        r->m = 0;
        for (int i = 0; i < ns; i++) r->m += len[i];
        r->n = n;
        r->method = p->method;
        r->bits = p->bits;
        snprintf(r->name, sizeof r->name, "layers.%d.%s", layer, group_short[g]);
        r->proxy_loss = rpt[g][RPT_LOSS];
        r->seconds = rpt[g][RPT_SEC];
        r->stored_bits = (int64_t)rpt[g][RPT_BITS];
        r->harp_bits = (int64_t)rpt[g][RPT_HARP_BITS];
        r->rot_blob_bits = (int64_t)rpt[g][RPT_ROT_BITS];
        r->harp_loss0 = rpt[g][RPT_HL0];
        r->harp_loss_final = rpt[g][RPT_HL1];
        r->fit_seconds = rpt[g][RPT_FIT_SEC];
        r->quant_seconds = rpt[g][RPT_Q_SEC];
        r->resumed = resumed;
    }
}

/* Loads a finished layer from .partial if it belongs to this run (fingerprint), else returns 0. */
static int qp_try_resume(const char *path, uint64_t fp, qt_list *all, double rpt[QM_NGROUPS][RPT_NCOL]) {
    if (!harp_file_exists(path)) return 0;
    harp_st_file f;
    if (harp_st_open(path, &f)) {
        harp_log(HARP_LOG_WARN, "%s: unreadable partial layer, redoing it (%s)", path, harp_last_error());
        return 0;
    }
    const harp_st_tensor *tf = harp_st_find(&f, "run.fingerprint");
    const harp_st_tensor *tr = harp_st_find(&f, "run.report");
    int ok = tf && tr && tf->dtype == HARP_ST_U64 && tf->numel == 1 && tr->dtype == HARP_ST_F64 &&
             tr->numel == QM_NGROUPS * RPT_NCOL;
    uint64_t got = 0;
    if (ok) memcpy(&got, f.data + tf->begin, 8);
    if (ok && got != fp) {
        harp_log(HARP_LOG_WARN, "%s: partial layer from a different run (parameters or model), redoing it", path);
        ok = 0;
    }
    if (ok) {
        memcpy(rpt, f.data + tr->begin, sizeof(double) * QM_NGROUPS * RPT_NCOL);
        qt_list view = {0};
        ok = !qt_from_st(&f, &view) && !qt_copy_all(&view, all, "run.");
        qt_list_free(&view);
    }
    harp_st_close(&f);
    return ok;
}

static harp_status qp_save_partial(const char *path, const qt_list *lay, uint64_t fp, double rpt[QM_NGROUPS][RPT_NCOL]) {
    st_writer *w = st_writer_new();
    if (!w) return harp_err(HARP_ERR_OOM, "%s: out of memory", path);
    int64_t s1[1] = {1}, s2[2] = {QM_NGROUPS, RPT_NCOL};
    harp_status st = qt_to_writer(lay, w);
    if (!st) st = st_writer_add(w, "run.fingerprint", ST_U64, s1, 1, &fp);
    if (!st) st = st_writer_add(w, "run.report", ST_F64, s2, 2, rpt);
    if (!st) st = st_writer_save(w, path);
    st_writer_free(w);
    return st;
}

harp_status harp_quantize_model(harp_model *m, const char *model_path, const char *hess_dir, const char *out_dir,
                                const harp_qmodel_params *p, harp_qmodel_report *report) {
    if (!m || !model_path || !hess_dir || !out_dir || !p) return harp_err(HARP_ERR_INVALID_ARG, "harp_quantize_model: NULL argument");
    HARP_TRY(qp_check(p));
    const harp_model_config *c = &m->cfg;
    double t0 = harp_time_s();
    char *partial = harp_path_join(out_dir, ".partial");
    if (!partial) return HARP_ERR_OOM;
    harp_dir_lock lock = {-1, NULL};
    harp_status st = harp_mkdir_p(out_dir);
    if (!st) st = harp_dir_lock_take(&lock, out_dir, "harp quantize");
    if (!st) harp_remove_stale_temps(out_dir);
    if (!st) st = harp_mkdir_p(partial);
    cJSON *qcfg = qp_config_json(p);
    char *qtext = qcfg ? cJSON_PrintUnformatted(qcfg) : NULL;
    if (!st && !qtext) st = harp_err(HARP_ERR_OOM, "quantize: out of memory");
    uint64_t fp = 0;
    if (!st) {
        uint64_t mf = harp_model_fingerprint(m);
        fp = harp_fnv1a64(qtext, strlen(qtext), 0);
        fp = harp_fnv1a64(&mf, sizeof mf, fp);
    }
    harp_qmodel_report rep;
    memset(&rep, 0, sizeof rep);
    rep.n_rows = c->n_layers * QM_NGROUPS;
    rep.rows = st ? NULL : harp_xcalloc((size_t)rep.n_rows, sizeof *rep.rows, "report rows");
    if (!st && !rep.rows) st = HARP_ERR_OOM;
    qt_list all = {0};
    all.origin = "in-memory quantized model";
    int done = 0, total = c->n_layers * QM_NGROUPS;
    for (int layer = 0; layer < c->n_layers && !st; layer++) {
        char name[32];
        snprintf(name, sizeof name, "layer_%03d.safetensors", layer);
        char *path = harp_path_join(partial, name);
        if (!path) {
            st = HARP_ERR_OOM;
            break;
        }
        double rpt[QM_NGROUPS][RPT_NCOL];
        memset(rpt, 0, sizeof rpt);
        if (p->resume && qp_try_resume(path, fp, &all, rpt)) {
            qp_fill_rows(&rep, c, p, layer, rpt, 1);
            rep.layers_resumed++;
            done += QM_NGROUPS;
        } else {
            qt_list lay = {0};
            lay.origin = "in-memory layer";
            st = qp_layer(m, layer, hess_dir, p, &lay, rpt, &done, total);
            if (!st) st = qp_save_partial(path, &lay, fp, rpt);
            if (!st) st = qt_copy_all(&lay, &all, NULL);
            if (!st) qp_fill_rows(&rep, c, p, layer, rpt, 0);
            qt_list_free(&lay);
        }
        free(path);
        if (!st && p->abort_after_layer == layer)
            st = harp_err(HARP_ERR_CANCELLED, "quantize: stopped after layer %d (test hook)", layer);
    }
    if (!st && p->progress) p->progress(p->progress_user, "quantize", total, total);
    if (!st) st = qm_write_folder(m, model_path, out_dir, qcfg, &all);
    if (!st) {
        /* layer files and temp files a killed run left behind (layer_NNN.safetensors.tmp.PID) */
        DIR *d = opendir(partial);
        for (struct dirent *e; d && (e = readdir(d));) {
            if (strncmp(e->d_name, "layer_", 6)) continue;
            char *path = harp_path_join(partial, e->d_name);
            if (path) unlink(path);
            free(path);
        }
        if (d) closedir(d);
        rmdir(partial);
    }
    if (!st) {
        for (int i = 0; i < rep.n_rows; i++) {
            rep.n_weights += rep.rows[i].m * rep.rows[i].n;
            rep.stored_bits += rep.rows[i].stored_bits;
        }
        int64_t hb = rep.stored_bits;
        for (int i = 0; i < rep.n_rows; i++)
            if (p->rotation == HARP_QROT_HARP) hb += rep.rows[i].harp_bits - rep.rows[i].rot_blob_bits;
        rep.bpw = (double)rep.stored_bits / (double)rep.n_weights;
        rep.bpw_harp = (double)hb / (double)rep.n_weights;
        rep.seconds = harp_time_s() - t0;
    }
    if (!st && p->keep_model) {
        qm_config qc = {HARP_QMODEL_VERSION, p->method, p->bits, qp_codebook(p), p->rotation,
                        p->method == HARP_QMETHOD_QUIP ? 0 : p->group_size, p->seed};
        st = qm_install_linears(m, &qc, &all);
        if (!st) {
            qm_config_desc(&qc, m->quant_desc, sizeof m->quant_desc);
            snprintf(m->info.quant_method, sizeof m->info.quant_method, "harp");
        }
    }
    harp_dir_lock_release(&lock);
    qt_list_free(&all);
    free(qtext);
    cJSON_Delete(qcfg);
    free(partial);
    if (st || !report) harp_qmodel_report_free(&rep);
    else *report = rep;
    return st;
}
