/* `harp quantize` pipeline: per decoder layer, its four linear groups (qgroup.c), collecting the
 * tensors of the quantized folder; finished layers are saved to OUT_DIR/.partial/layer_NNN.safetensors
 * (atomic) so that an interrupted run resumes; then the folder is written (qwrite.c) and the report
 * filled. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/st_writer.h"
#include "qmodel/ldpb.h"
#include "qmodel/qmodel_internal.h"
#include "quant/qtype_traits.h"

/* quantization_config object: everything that determines the output bytes. */
static cJSON *qp_config_json(const harp_qmodel_params *p) {
    cJSON *o = cJSON_CreateObject();
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)p->seed);
    cJSON_AddStringToObject(o, "quant_method", "harp");
    cJSON_AddNumberToObject(o, "version", HARP_QMODEL_VERSION);
    cJSON_AddStringToObject(o, "method", harp_qmethod_name(p->method));
    cJSON_AddNumberToObject(o, "bits", p->bits);
    cJSON_AddStringToObject(o, "codebook", harp_qtype_traits_of(harp_qtype_for(p->method, p->bits))->legacy_codebook);
    cJSON_AddStringToObject(o, "rotation", harp_qrot_name(p->rotation));
    const int qtip = p->method == HARP_QMETHOD_QTIP;
    cJSON_AddNumberToObject(o, "group_size", p->method == HARP_QMETHOD_QUIP || qtip ? 0 : p->group_size);
    cJSON_AddStringToObject(o, "seed", seed);
    /* only when not the defaults: older folders stay byte-identical */
    if (p->symmetric) cJSON_AddBoolToObject(o, "symmetric", 1);
    if (p->mse_clip) cJSON_AddStringToObject(o, "grid_clip", "mse");
    if (p->act_order) cJSON_AddStringToObject(o, "act_order", "static_groups");
    cJSON_AddStringToObject(o, "fused_groups", "qkv_proj = q,k,v; up_gate_proj = up,gate");
    if ((p->method == HARP_QMETHOD_QUIP || qtip) && p->scale_override > 0)
        cJSON_AddNumberToObject(o, "scale_override", p->scale_override);
    if (qtip) {
        cJSON_AddStringToObject(o, "qtip_code", harp_tcode_name(p->qtip_code));
        if (p->qtip_code == HARP_TCODE_HYB) cJSON_AddStringToObject(o, "qtip_table_seed", "0"); /* harp_hyb_table_build */
    }
    if (p->method == HARP_QMETHOD_LDP && p->ldp_fit_block) { /* absent for fit (a): those folders stay as they were */
        cJSON *b = cJSON_AddObjectToObject(o, "ldp_block");
        char fnv[32];
        snprintf(fnv, sizeof fnv, "%016llx", (unsigned long long)harp_fnv1a64(p->ldp_text, p->ldp_text_len, 0));
        cJSON_AddStringToObject(b, "calib_text_fnv1a64", fnv);
        cJSON_AddNumberToObject(b, "ctx", p->ldp_ctx);
        cJSON_AddNumberToObject(b, "nseq", p->ldp_nseq);
        cJSON_AddNumberToObject(b, "steps", p->ldp_steps);
        cJSON_AddNumberToObject(b, "lr", p->ldp_lr);
        cJSON_AddStringToObject(b, "held_out", "the last nseq/4 windows when nseq >= 4 choose the candidate");
        if (p->ldp_gpu) cJSON_AddStringToObject(b, "device", "gpu"); /* absent: the CPU (other fp64 summation order) */
    }
    if (p->w_calib != HARP_WCALIB_FILES) { /* absent by default: those folders stay as they were */
        cJSON *b = cJSON_AddObjectToObject(o, "w_calib");
        char fnv[32];
        snprintf(fnv, sizeof fnv, "%016llx", (unsigned long long)harp_fnv1a64(p->calib_text, p->calib_text_len, 0));
        cJSON_AddStringToObject(b, "mode", harp_wcalib_name(p->w_calib));
        cJSON_AddStringToObject(b, "calib_text_fnv1a64", fnv);
        cJSON_AddNumberToObject(b, "ctx", p->calib_ctx);
        cJSON_AddNumberToObject(b, "nseq", p->calib_nseq);
        cJSON_AddStringToObject(b, "windows", "evenly spaced");
    }
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
        if (qtip) { /* the trellis target's refresh schedule (§4.12) */
            cJSON_AddNumberToObject(hp, "q_every_final", h->q_every_final);
            cJSON_AddNumberToObject(hp, "q_parts", h->q_parts);
        }
        /* only when not the reference's: greedy folders stay byte-identical to older builds' */
        if (h->schedule != HARP_BF_SCHEDULE_GREEDY) cJSON_AddStringToObject(hp, "schedule", harp_bf_schedule_name(h->schedule));
    }
    return o;
}

static harp_status qp_check(const harp_qmodel_params *p) {
    if (p->method == HARP_QMETHOD_QUIP) {
        if (p->bits < 2 || p->bits > 4) return harp_err(HARP_ERR_INVALID_ARG, "quantize: quip supports 2, 3 or 4 bits, not %d", p->bits);
    } else if (p->method == HARP_QMETHOD_QTIP) {
        if (p->bits < 2 || p->bits > 4) return harp_err(HARP_ERR_INVALID_ARG, "quantize: qtip supports 2, 3 or 4 bits, not %d", p->bits);
        if (p->qtip_code != HARP_TCODE_1MAD && p->qtip_code != HARP_TCODE_3INST && p->qtip_code != HARP_TCODE_HYB)
            return harp_err(HARP_ERR_INVALID_ARG, "quantize: qtip code %d is not 1mad, 3inst or hyb", (int)p->qtip_code);
    } else if (p->method == HARP_QMETHOD_RTN || p->method == HARP_QMETHOD_GPTQ) {
        if (p->bits != 2 && p->bits != 3 && p->bits != 4 && p->bits != 8)
            return harp_err(HARP_ERR_INVALID_ARG, "quantize: %s supports 2, 3, 4 or 8 bits, not %d", harp_qmethod_name(p->method), p->bits);
        if (p->group_size < 0) return harp_err(HARP_ERR_INVALID_ARG, "quantize: group size %d < 0", p->group_size);
    } else if (p->method == HARP_QMETHOD_LDP) {
        if (p->bits != 2) return harp_err(HARP_ERR_INVALID_ARG, "quantize: ldp supports 2 bits, not %d", p->bits);
        if (p->group_size < 0) return harp_err(HARP_ERR_INVALID_ARG, "quantize: group size %d < 0", p->group_size);
        if (p->rotation == HARP_QROT_HARP)
            return harp_err(HARP_ERR_INVALID_ARG, "quantize: ldp does not fit HARP rotations (use none, rht, gsr, ...)");
        if (p->ldp_fit_block && p->rotation != HARP_QROT_NONE)
            return harp_err(HARP_ERR_UNSUPPORTED, "quantize: the ldp block fit supports rotation none only, not %s",
                            harp_qrot_name(p->rotation));
        if (p->ldp_fit_block && (!p->ldp_text || p->ldp_ctx < 2 || p->ldp_nseq < 1 || p->ldp_steps < 0 || !(p->ldp_lr >= 0)))
            return harp_err(HARP_ERR_INVALID_ARG, "quantize: the ldp block fit needs a calibration text, ctx >= 2, nseq >= 1, "
                                                  "steps >= 0 and lr >= 0");
    } else {
        return harp_err(HARP_ERR_INVALID_ARG, "quantize: unknown method %d", (int)p->method);
    }
    if (!harp_wcalib_name(p->w_calib))
        return harp_err(HARP_ERR_INVALID_ARG, "quantize: w_calib %d is not files (0), seq (1) or asym (2)", p->w_calib);
    if (p->w_calib != HARP_WCALIB_FILES && p->method != HARP_QMETHOD_GPTQ)
        return harp_err(HARP_ERR_INVALID_ARG, "quantize: sequential calibration (%s) applies to gptq, not %s",
                        harp_wcalib_name(p->w_calib), harp_qmethod_name(p->method));
    if (p->w_calib != HARP_WCALIB_FILES && (!p->calib_text || p->calib_ctx < 2 || p->calib_nseq < 1))
        return harp_err(HARP_ERR_INVALID_ARG, "quantize: sequential calibration needs a calibration text, ctx >= 2 and nseq >= 1");
    if ((unsigned)p->rotation > HARP_QROT_HARP) return harp_err(HARP_ERR_INVALID_ARG, "quantize: unknown rotation %d", (int)p->rotation);
    const int scalar = p->method == HARP_QMETHOD_RTN || p->method == HARP_QMETHOD_GPTQ;
    if ((p->symmetric || p->mse_clip) && !scalar)
        return harp_err(HARP_ERR_INVALID_ARG, "quantize: symmetric / MSE-clipped grids apply to rtn and gptq, not %s",
                        harp_qmethod_name(p->method));
    if (p->act_order && p->method != HARP_QMETHOD_GPTQ)
        return harp_err(HARP_ERR_INVALID_ARG, "quantize: act-order applies to gptq, not %s", harp_qmethod_name(p->method));
    return HARP_OK;
}

/* seq: the layer's sequential calibration (its Hessians replace the folder's), or NULL. */
static harp_status qp_layer(const harp_model *mdl, int layer, const char *hess_dir, const qp_seq *seq, const harp_qmodel_params *p,
                            qf_tensors *out, double rpt[QF_NGROUPS][RPT_NCOL], int *done, int total) {
    harp_hess_layer *hl = NULL;
    if (!seq) HARP_TRY(harp_hess_layer_load(hess_dir, layer, mdl, &hl));
    harp_status st = HARP_OK;
    for (int g = 0; g < QF_NGROUPS && !st; g++) {
        if (p->progress) {
            char stage[64];
            snprintf(stage, sizeof stage, "quantize layers.%d.%s", layer, qf_group_short[g]);
            if (p->progress(p->progress_user, stage, *done, total)) {
                st = harp_err(HARP_ERR_CANCELLED, "quantize: cancelled");
                break;
            }
        }
        st = qp_group_run(mdl, layer, g, hl, seq, p, out, rpt[g]);
        (*done)++;
    }
    harp_hess_layer_free(hl);
    return st;
}

static void qp_fill_rows(harp_qmodel_report *rep, const harp_model_config *c, const harp_qmodel_params *p, int layer,
                         double rpt[QF_NGROUPS][RPT_NCOL], int resumed) {
    for (int g = 0; g < QF_NGROUPS; g++) {
        harp_qmodel_row *r = &rep->rows[layer * QF_NGROUPS + g];
        int64_t len[3], n;
        int ns = qf_group_slices(c, g, len, &n);
        r->m = 0;
        for (int i = 0; i < ns; i++) r->m += len[i];
        r->n = n;
        r->method = p->method;
        r->bits = p->bits;
        snprintf(r->name, sizeof r->name, "layers.%d.%s", layer, qf_group_short[g]);
        r->proxy_loss = rpt[g][RPT_LOSS];
        r->seconds = rpt[g][RPT_SEC];
        r->stored_bits = (int64_t)rpt[g][RPT_BITS];
        r->code_bits = (int64_t)rpt[g][RPT_CODE_BITS];
        r->xf_bits = (int64_t)rpt[g][RPT_XF_BITS];
        r->xf_bits_paper = (int64_t)rpt[g][RPT_XF_PAPER];
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
static int qp_try_resume(const char *path, uint64_t fp, qf_tensors *all, double rpt[QF_NGROUPS][RPT_NCOL]) {
    if (!harp_file_exists(path)) return 0;
    harp_st_file f;
    if (harp_st_open(path, &f)) {
        harp_log(HARP_LOG_WARN, "%s: unreadable partial layer, redoing it (%s)", path, harp_last_error());
        return 0;
    }
    const harp_st_tensor *tf = harp_st_find(&f, "run.fingerprint");
    const harp_st_tensor *tr = harp_st_find(&f, "run.report");
    int ok = tf && tr && tf->dtype == HARP_ST_U64 && tf->numel == 1 && tr->dtype == HARP_ST_F64 &&
             tr->numel == QF_NGROUPS * RPT_NCOL;
    uint64_t got = 0;
    if (ok) memcpy(&got, f.data + tf->begin, 8);
    if (ok && got != fp) {
        harp_log(HARP_LOG_WARN, "%s: partial layer from a different run (parameters or model), redoing it", path);
        ok = 0;
    }
    if (ok) {
        memcpy(rpt, f.data + tr->begin, sizeof(double) * QF_NGROUPS * RPT_NCOL);
        qf_tensors view = {0};
        ok = !qf_tensors_from_st(&f, &view) && !qf_tensors_copy(&view, all, "run.");
        qf_tensors_free(&view);
    }
    harp_st_close(&f);
    return ok;
}

static harp_status qp_save_partial(const char *path, const qf_tensors *lay, uint64_t fp, double rpt[QF_NGROUPS][RPT_NCOL]) {
    st_writer *w = st_writer_new();
    if (!w) return harp_err(HARP_ERR_OOM, "%s: out of memory", path);
    int64_t s1[1] = {1}, s2[2] = {QF_NGROUPS, RPT_NCOL};
    harp_status st = qf_tensors_to_writer(lay, NULL, w);
    if (!st) st = st_writer_add(w, "run.fingerprint", HARP_ST_U64, s1, 1, &fp);
    if (!st) st = st_writer_add(w, "run.report", HARP_ST_F64, s2, 2, rpt);
    if (!st) st = st_writer_save(w, path);
    st_writer_free(w);
    return st;
}

/* Every layer: resumed from .partial when it belongs to this run (fingerprint fp), else quantized and
 * saved there; all collects the folder tensors, rep the report rows. */
static harp_status qp_layers(harp_model *m, const char *hess_dir, const char *partial, uint64_t fp,
                             const harp_qmodel_params *p, qf_tensors *all, harp_qmodel_report *rep) {
    const harp_model_config *c = &m->cfg;
    int done = 0, total = c->n_layers * QF_NGROUPS;
    const int block = p->method == HARP_QMETHOD_LDP && p->ldp_fit_block;
    qp_ldpb lb = {0};
    qp_seq sq;
    harp_status st = block ? qp_ldpb_begin(m, p, &lb) : HARP_OK;
    if (!st) st = qp_seq_begin(m, p, &sq);
    else memset(&sq, 0, sizeof sq);
    const int seq = sq.mode != HARP_WCALIB_FILES;
    for (int layer = 0; layer < c->n_layers && !st; layer++) {
        char name[32];
        snprintf(name, sizeof name, "layer_%03d.safetensors", layer);
        char *path = harp_path_join(partial, name);
        if (!path) return HARP_ERR_OOM;
        double rpt[QF_NGROUPS][RPT_NCOL];
        memset(rpt, 0, sizeof rpt);
        if (p->resume && qp_try_resume(path, fp, all, rpt)) {
            qp_fill_rows(rep, c, p, layer, rpt, 1);
            rep->layers_resumed++;
            done += QF_NGROUPS;
            if (block) st = qp_ldpb_layer(m, layer, p, all, 0, &lb);
            if (!st && seq) st = qp_seq_advance(m, layer, p, all, &sq);
        } else {
            qf_tensors lay = {0};
            lay.origin = "in-memory layer";
            st = seq ? qp_seq_stats(m, layer, &sq) : HARP_OK;
            if (!st) st = qp_layer(m, layer, hess_dir, seq ? &sq : NULL, p, &lay, rpt, &done, total);
            const double tb = harp_time_s();
            if (!st && block) st = qp_ldpb_layer(m, layer, p, &lay, 1, &lb);
            if (!st && seq) st = qp_seq_advance(m, layer, p, &lay, &sq);
            if (!st) st = qp_save_partial(path, &lay, fp, rpt);
            if (!st) st = qf_tensors_copy(&lay, all, NULL);
            if (!st) qp_fill_rows(rep, c, p, layer, rpt, 0);
            for (int g = 0; !st && block && g < QF_NGROUPS; g++) {
                harp_qmodel_row *r = &rep->rows[layer * QF_NGROUPS + g];
                r->ldp_block_loss0 = lb.loss0, r->ldp_block_loss = lb.loss1, r->ldp_block_seconds = harp_time_s() - tb;
            }
            qf_tensors_free(&lay);
        }
        free(path);
        if (!st && p->abort_after_layer == layer)
            st = harp_err(HARP_ERR_CANCELLED, "quantize: stopped after layer %d (test hook)", layer);
    }
    qp_ldpb_end(&lb);
    qp_seq_end(&sq);
    if (!st && p->progress) p->progress(p->progress_user, "quantize", total, total);
    return st;
}

/* Removes the layer files and the temp files a killed run left behind (layer_NNN.safetensors.tmp.PID). */
static void qp_remove_partial(const char *partial) {
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

static void qp_totals(harp_qmodel_report *rep, const harp_qmodel_params *p, double t0) {
    for (int i = 0; i < rep->n_rows; i++) {
        rep->n_weights += rep->rows[i].m * rep->rows[i].n;
        rep->stored_bits += rep->rows[i].stored_bits;
    }
    int64_t hb = rep->stored_bits;
    for (int i = 0; i < rep->n_rows; i++)
        if (p->rotation == HARP_QROT_HARP) hb += rep->rows[i].harp_bits - rep->rows[i].rot_blob_bits;
    rep->bpw = (double)rep->stored_bits / (double)rep->n_weights;
    rep->bpw_harp = (double)hb / (double)rep->n_weights;
    rep->seconds = harp_time_s() - t0;
}

/* keep_model: the model's groups take the quantized tensors, built from the same tensors the
 * folder holds, through the folder loader's own path. */
static harp_status qp_keep_model(harp_model *m, const harp_qmodel_params *p, const qf_tensors *all) {
    qf_config qc;
    HARP_TRY(qf_config_uniform(p->method, p->bits, p->rotation, p->group_size, p->seed, m->cfg.n_layers, &qc));
    if (p->method == HARP_QMETHOD_QTIP) qc.qtip_code = p->qtip_code;
    harp_status st = harp_model_set_quantized(m, &qc, all);
    qf_config_free(&qc);
    return st;
}

harp_status harp_quantize_model(harp_model *m, const char *model_path, const char *hess_dir, const char *out_dir,
                                const harp_qmodel_params *p, harp_qmodel_report *report) {
    if (!m || !model_path || !out_dir || !p || (!hess_dir && p->w_calib == HARP_WCALIB_FILES))
        return harp_err(HARP_ERR_INVALID_ARG, "harp_quantize_model: NULL argument");
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
    rep.n_rows = c->n_layers * QF_NGROUPS;
    rep.rows = st ? NULL : harp_xcalloc((size_t)rep.n_rows, sizeof *rep.rows, "report rows");
    if (!st && !rep.rows) st = HARP_ERR_OOM;
    qf_tensors all = {0};
    all.origin = "in-memory quantized model";
    if (!st) st = qp_layers(m, hess_dir, partial, fp, p, &all, &rep);
    if (!st) st = qm_write_folder(m, model_path, out_dir, qcfg, &all);
    if (!st) qp_remove_partial(partial);
    if (!st) qp_totals(&rep, p, t0);
    if (!st && p->keep_model) st = qp_keep_model(m, p, &all);
    harp_dir_lock_release(&lock);
    qf_tensors_free(&all);
    free(qtext);
    cJSON_Delete(qcfg);
    free(partial);
    if (st || !report) harp_qmodel_report_free(&rep);
    else *report = rep;
    return st;
}
