/* harp_fit: the fitting loop of algorithms.md §4.7 on the fp32 engine, then θ rounding (§4.9).
 * Deviation from the reference (documented in docs/results/harp-fit.md): θ is rounded to int8 (or fp16)
 * BEFORE the caller's final transform, so LDLQ and the runtime see the same rotation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harpfit/hf_gpu.h"
#include "harpfit/hf_internal.h"

/* Unnamed members are 0 (theta_clip, givens_b2, early_stop_window, …); the QuIP# scale defaults are
 * the quantizer's. */
harp_fit_params harp_fit_default_params(int bits) {
    const harp_quant_params q = harp_quant_default_params(HARP_QMETHOD_QUIP, bits);
    return (harp_fit_params){.steps = 1200, .schedule = HARP_BF_SCHEDULE_GREEDY, .base_b = 8, .max_b = 8, .passes = 1,
                             .lr_u = 0.03, .lr_v = 0.03, .hbd_lambda = 0.1, .hbd_block = 8, .q_every = 1,
                             .early_stop_rel = 0.01, .theta_int8 = 1, .codebook = harp_qtype_for(HARP_QMETHOD_QUIP, bits),
                             .scale_override = q.scale_override, .resid_scale_override = q.resid_scale_override};
}

harp_fit_params harp_fit_default_params_qtip(int bits, harp_tcode code) {
    harp_fit_params p = harp_fit_default_params(bits);
    p.codebook = harp_qtype_for(HARP_QMETHOD_QTIP, bits);
    p.qtip_code = code;
    p.hbd_block = 16;
    p.q_every = p.q_every_final = 2;
    p.q_parts = 16;
    p.scale_override = 0.9;
    return p;
}

static int is_qtip(harp_codebook cb) {
    return cb == HARP_QTYPE_QTIP2 || cb == HARP_QTYPE_QTIP3 || cb == HARP_QTYPE_QTIP4;
}

/* The reference's _q_schedule_state (§4.12): refresh period and parts of the phase of `step`. */
static int qtip_phase(const harp_fit_params *p, int step, int *interval, int *parts) {
    const int start = p->q_every > p->q_every_final ? p->q_every : p->q_every_final, fin = p->q_every_final;
    const double prog = p->steps > 1 ? (double)step / (double)(p->steps - 1) : 1.0;
    const int mid = (int)lround((start + fin) / 2.0);
    const int phase = prog < 0.5 ? 0 : prog < 0.8 ? 1 : prog < 0.95 ? 2 : 3;
    *interval = phase == 0 ? start : phase == 1 ? (fin + 1 > mid ? fin + 1 : mid) : fin;
    *parts = phase == 0 ? p->q_parts : phase == 1 ? (p->q_parts / 2 > 2 ? p->q_parts / 2 : 2) : phase == 2 ? 2 : 1;
    return phase;
}

int64_t harp_fit_storage_bits(const harp_rot *r, int theta_int8) {
    if (!r || harp_rot_get_kind(r) != HARP_ROT_BUTTERFLY) return 0;
    /* int8: Σ D_t·T_t·8 + D_t·16 (one byte per parameter, one fp16 scale per group); fp16: 16 per parameter.
     * Non-power-of-two mixers are fixed per radix (not per layer) and not counted, as in the reference. */
    int64_t G = harp_rot_butterfly_num_groups(r), np = harp_rot_butterfly_num_params(r);
    return theta_int8 ? np * 8 + G * 16 : np * 16;
}

static harp_status check_params(const harp_fit_params *p, const char *what) {
    if (p->steps < 0) return harp_err(HARP_ERR_INVALID_ARG, "%s: harp steps %d < 0", what, p->steps);
    if (!(p->lr_u >= 0 && p->lr_v >= 0 && isfinite(p->lr_u) && isfinite(p->lr_v)))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: harp learning rates must be finite and >= 0 (%g, %g)", what, p->lr_u, p->lr_v);
    if (!(p->hbd_lambda >= 0) || !isfinite(p->hbd_lambda))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: harp hbd lambda %g must be >= 0", what, p->hbd_lambda);
    if (p->hbd_block < 1) return harp_err(HARP_ERR_INVALID_ARG, "%s: harp hbd block %d < 1", what, p->hbd_block);
    if (p->q_every < 1) return harp_err(HARP_ERR_INVALID_ARG, "%s: harp q-every %d < 1", what, p->q_every);
    if (p->early_stop_window < 0 || !(p->early_stop_rel >= 0))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: bad harp early stop (%d, %g)", what, p->early_stop_window, p->early_stop_rel);
    if (p->codebook != HARP_CODEBOOK_E8P12 && p->codebook != HARP_CODEBOOK_E8P12_RVQ3B && p->codebook != HARP_CODEBOOK_E8P12_RVQ4B &&
        !is_qtip(p->codebook))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: harp proxy target needs an E8P or QTIP type (got %d)", what, (int)p->codebook);
    if (is_qtip(p->codebook) && (p->q_every_final < 1 || p->q_parts < 1 || p->gpu))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: harp on QTIP needs q_every_final, q_parts >= 1 (%d, %d) and the CPU engine%s",
                        what, p->q_every_final, p->q_parts, p->gpu ? " (no GPU trellis target yet)" : "");
    return HARP_OK;
}

static harp_status check_finite(int64_t m, int64_t n, const float *W, const double *H, const char *what) {
    for (int64_t k = 0; k < m * n; k++)
        if (!isfinite(W[k]))
            return harp_err(HARP_ERR_NUMERIC, "%s: weight element (%lld, %lld) is not finite", what, (long long)(k / n),
                            (long long)(k % n));
    for (int64_t k = 0; k < n * n; k++)
        if (!isfinite(H[k]))
            return harp_err(HARP_ERR_NUMERIC, "%s: Hessian element (%lld, %lld) is not finite", what, (long long)(k / n),
                            (long long)(k % n));
    return HARP_OK;
}

static harp_status make_side(const harp_fit_params *p, int64_t d, uint64_t seed, const char *what, const char *side,
                             harp_rot **out) {
    harp_rot_params rp;
    harp_rot_params_default(&rp);
    rp.schedule = p->schedule, rp.base_b = p->base_b, rp.max_b = p->max_b, rp.n_passes = p->passes;
    rp.givens_b2 = p->givens_b2, rp.theta_clip = p->theta_clip;
    harp_status st = harp_rot_create(HARP_ROT_BUTTERFLY, d, &rp, seed, out);
    if (st != HARP_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", harp_last_error());
        return harp_err(st, "%s: no HARP schedule for %s dimension %lld (%s)", what, side, (long long)d, why);
    }
    return HARP_OK;
}

/* The fixed Hadamard stages (schedule hadamard) are constants of the fit: the engine sees
 * W' = F_Uᵀ W F_V and H' = F_Vᵀ H F_V (computed once, in fp64) and learns the stages after them.
 * Without a fixed stage *Wo = W and *Ho = H (nothing allocated). */
static harp_status fixed_inputs(const harp_rot *U, const harp_rot *V, int64_t m, int64_t n, const float *W, const double *H,
                                const float **Wo, const double **Ho, float **Wown, double **Hown) {
    *Wo = W, *Ho = H;
    if (!harp_rot_butterfly_fixed_k(U) && !harp_rot_butterfly_fixed_k(V)) return HARP_OK;
    size_t mn = (size_t)m * (size_t)n, nn = (size_t)n * (size_t)n;
    double *Wd = harp_xmalloc(mn * sizeof(double), "harp fixed stage");
    *Wown = harp_xmalloc(mn * sizeof(float), "harp fixed stage");
    *Hown = harp_xmalloc(nn * sizeof(double), "harp fixed stage");
    if (!Wd || !*Wown || !*Hown) {
        free(Wd);
        return HARP_ERR_OOM;
    }
    for (size_t k = 0; k < mn; k++) Wd[k] = W[k];
    memcpy(*Hown, H, nn * sizeof(double));
    harp_status st = bf_fixed_weight_f64(U, V, Wd, m, n);
    if (st == HARP_OK) st = bf_fixed_weight_f64(V, V, *Hown, n, n);
    for (size_t k = 0; k < mn; k++) (*Wown)[k] = (float)Wd[k];
    free(Wd);
    *Wo = *Wown, *Ho = *Hown;
    return st;
}

typedef struct fit_state {
    harp_rot *U, *V;
    harp_tcb tcb;   /* QTIP target trellis (tcb.val NULL otherwise) */
    harp_tvit_gpu *tgpu; /* its CUDA Viterbi (p->qtip_gpu) */
    hf_ctx_f32 *ctx;
    hf_gpu *gctx;   /* the GPU engine instead of ctx when p->gpu */
    float *Wfix;    /* fixed_inputs' copies (NULL without a fixed stage) */
    double *Hfix;
    double *thU, *thV, *gU, *gV, *hist;
    hf_adam aU, aV;
} fit_state;

static void fit_state_free(fit_state *s) {
    harp_tcb_free(&s->tcb);
    harp_tvit_gpu_destroy(s->tgpu);
    hf_ctx_destroy_f32(s->ctx);
    hf_gpu_destroy(s->gctx);
    free(s->thU), free(s->thV), free(s->gU), free(s->gV), free(s->hist), free(s->Wfix), free(s->Hfix);
    hf_adam_free(&s->aU), hf_adam_free(&s->aV);
}

/* Refresh kind of `step`: every q_every steps (E8P); QTIP: the schedule of §4.12, a full refresh at
 * each phase change and when the phase has one part, else the next round-robin part. */
static int refresh_kind(const harp_fit_params *p, fit_state *s, int step, int *phase, int *rr) {
    if (!s->tcb.val) return step % p->q_every == 0 ? HF_REFRESH : HF_KEEP;
    int interval, parts;
    const int ph = qtip_phase(p, step, &interval, &parts);
    if (ph != *phase) {
        *phase = ph, *rr = 0;
        return HF_REFRESH;
    }
    if (step % interval) return HF_KEEP;
    if (parts <= 1) return HF_REFRESH;
    hf_set_part_f32(s->ctx, parts, (*rr)++ % parts);
    return HF_REFRESH_PART;
}

static harp_status eval(fit_state *s, int refresh, hf_terms *t, double *dU, double *dV) {
    return s->gctx ? hf_gpu_eval(s->gctx, refresh, t, dU, dV) : hf_eval_f32(s->ctx, refresh, t, dU, dV);
}

static harp_status run_loop(const harp_fit_params *p, fit_state *s, const char *what, harp_fit_report *r) {
    int64_t nu = harp_rot_butterfly_num_params(s->U), nv = harp_rot_butterfly_num_params(s->V);
    hf_terms tm;
    if (p->steps == 0) {
        HARP_TRY(eval(s, 1, &tm, NULL, NULL));
        r->loss0 = tm.loss, r->proxy0 = tm.proxy, r->hbd0 = tm.hbd;
        return HARP_OK;
    }
    int phase = -1, rr = 0;
    for (int step = 0; step < p->steps; step++) {
        memset(s->gU, 0, (size_t)nu * sizeof(double));
        memset(s->gV, 0, (size_t)nv * sizeof(double));
        double te = harp_time_s();
        HARP_TRY(eval(s, refresh_kind(p, s, step, &phase, &rr), &tm, s->gU, s->gV));
        r->engine_seconds += harp_time_s() - te;
        if (!isfinite(tm.loss)) return harp_err(HARP_ERR_NUMERIC, "%s: harp loss is not finite at step %d", what, step);
        if (step == 0) r->loss0 = tm.loss, r->proxy0 = tm.proxy, r->hbd0 = tm.hbd;
        s->hist[step] = tm.loss;
        /* the engine's dθ is 2× the reference's full-matrix θ gradient (rotate.h); Adam gets the latter */
        for (int64_t k = 0; k < nu; k++) s->gU[k] *= 0.5;
        for (int64_t k = 0; k < nv; k++) s->gV[k] *= 0.5;
        hf_adam_step(&s->aU, p->lr_u, s->gU, s->thU);
        hf_adam_step(&s->aV, p->lr_v, s->gV, s->thV);
        HARP_TRY(harp_rot_butterfly_set_theta(s->U, s->thU));
        HARP_TRY(harp_rot_butterfly_set_theta(s->V, s->thV));
        r->steps_run = step + 1;
        int w = p->early_stop_window;
        if (w > 0 && step + 1 > w) {
            double prev = INFINITY, recent = INFINITY;
            for (int k = 0; k <= step - w; k++) prev = fmin(prev, s->hist[k]);
            for (int k = step - w + 1; k <= step; k++) recent = fmin(recent, s->hist[k]);
            if ((prev - recent) / fmax(fabs(prev), 1e-12) < p->early_stop_rel) break;
        }
        if (p->progress && p->progress(p->progress_user, "harp", step + 1, p->steps))
            return harp_err(HARP_ERR_CANCELLED, "%s: harp fit cancelled at step %d", what, step + 1);
    }
    return HARP_OK;
}

harp_status harp_fit(const harp_fit_params *p, int64_t m, int64_t n, const float *W_r, const double *H_r,
                     uint64_t seed, const char *what, harp_rot **R_U, harp_rot **R_V, harp_fit_report *rep) {
    if (!what) what = "harp_fit";
    if (!p || !W_r || !H_r || !R_U || !R_V) return harp_err(HARP_ERR_INVALID_ARG, "%s: NULL argument", what);
    *R_U = *R_V = NULL;
    if (m < 2 || n < 2) return harp_err(HARP_ERR_SHAPE, "%s: harp needs m, n >= 2 (got %lld×%lld)", what, (long long)m, (long long)n);
    HARP_TRY(check_params(p, what));
    harp_fit_report r;
    memset(&r, 0, sizeof r);
    fit_state s;
    memset(&s, 0, sizeof s);
    harp_status st = make_side(p, m, seed, what, "output (m)", &s.U);
    if (st == HARP_OK) st = make_side(p, n, harp_seed_mix(seed, 1), what, "input (n)", &s.V);
    if (st == HARP_OK) st = check_finite(m, n, W_r, H_r, what);
    const float *W_e = W_r;   /* what the engine fits: W_r, H_r behind the fixed stages */
    const double *H_e = H_r;
    if (st == HARP_OK) st = fixed_inputs(s.U, s.V, m, n, W_r, H_r, &W_e, &H_e, &s.Wfix, &s.Hfix);
    const int qtip = is_qtip(p->codebook);
    hf_opts o = {p->hbd_lambda, p->hbd_block, p->codebook,
                 p->scale_override > 0 ? p->scale_override : qtip ? 0.9 : harp_codebook_opt_scale(p->codebook),
                 p->resid_scale_override > 0 ? p->resid_scale_override : qtip ? 1.0 : harp_codebook_opt_resid_scale(p->codebook),
                 0, NULL, NULL};
    if (st == HARP_OK && qtip) {
        const harp_tcode code = p->qtip_code ? p->qtip_code : HARP_TCODE_HYB;
        uint16_t tlut[2 * HARP_HYB_N] = {0};
        if (code == HARP_TCODE_HYB) st = harp_hyb_table_shared(0, tlut);
        if (st == HARP_OK) st = harp_tcb_init(&s.tcb, code, (int)harp_qtype_bits(p->codebook), tlut, what);
        o.tcb = &s.tcb;
        if (st == HARP_OK && p->qtip_gpu)
            st = harp_tvit_gpu_create(&s.tcb, ((m + 15) / 16) * ((n + 15) / 16), what, &s.tgpu);
        o.tgpu = s.tgpu;
    }
    if (st == HARP_OK && p->gpu) {
        st = hf_gpu_create(s.U, s.V, W_e, H_e, &o, &s.gctx);
        if (st != HARP_OK) {
            char why[256];
            snprintf(why, sizeof why, "%s", harp_last_error());
            st = harp_err(st, "%s: %s", what, why);
        }
    } else if (st == HARP_OK) {
        st = hf_ctx_create_f32(s.U, s.V, W_e, H_e, &o, &s.ctx);
    }
    int64_t nu = harp_rot_butterfly_num_params(s.U), nv = harp_rot_butterfly_num_params(s.V);
    if (st == HARP_OK) {
        s.thU = harp_xcalloc((size_t)nu + 1, sizeof(double), "harp theta");
        s.thV = harp_xcalloc((size_t)nv + 1, sizeof(double), "harp theta");
        s.gU = harp_xcalloc((size_t)nu + 1, sizeof(double), "harp grad");
        s.gV = harp_xcalloc((size_t)nv + 1, sizeof(double), "harp grad");
        s.hist = harp_xcalloc((size_t)p->steps + 1, sizeof(double), "harp loss history");
        if (!s.thU || !s.thV || !s.gU || !s.gV || !s.hist) st = HARP_ERR_OOM;
    }
    if (st == HARP_OK) st = hf_adam_init(&s.aU, nu);
    if (st == HARP_OK) st = hf_adam_init(&s.aV, nv);
    if (st == HARP_OK) st = harp_rot_butterfly_get_theta(s.U, s.thU);
    if (st == HARP_OK) st = harp_rot_butterfly_get_theta(s.V, s.thV);
    double t0 = harp_time_s();
    if (st == HARP_OK) st = run_loop(p, &s, what, &r);
    r.seconds = harp_time_s() - t0;
    r.steps_per_s = r.seconds > 0 ? r.steps_run / r.seconds : 0;
    /* θ rounded to its storage precision before the final transform (deviation from the reference) */
    harp_theta_enc enc = p->theta_int8 ? HARP_THETA_INT8 : HARP_THETA_FP16;
    if (st == HARP_OK) st = harp_rot_butterfly_round_theta(s.U, enc);
    if (st == HARP_OK) st = harp_rot_butterfly_round_theta(s.V, enc);
    hf_terms tm = {0, 0, 0};
    if (st == HARP_OK) st = eval(&s, 1, &tm, NULL, NULL);
    if (st == HARP_OK && !isfinite(tm.loss)) st = harp_err(HARP_ERR_NUMERIC, "%s: harp final loss is not finite", what);
    r.loss_final = tm.loss, r.proxy_final = tm.proxy, r.hbd_final = tm.hbd;
    r.storage_bits = harp_fit_storage_bits(s.U, p->theta_int8) + harp_fit_storage_bits(s.V, p->theta_int8);
    if (st == HARP_OK) {
        harp_log(HARP_LOG_INFO, "%s: harp %lld×%lld %d steps, loss %.6g -> %.6g (proxy %.6g -> %.6g, hbd %.4g -> %.4g), %.2f steps/s, %.1f s",
                 what, (long long)m, (long long)n, r.steps_run, r.loss0, r.loss_final, r.proxy0, r.proxy_final, r.hbd0,
                 r.hbd_final, r.steps_per_s, r.seconds);
        *R_U = s.U, *R_V = s.V;
        s.U = s.V = NULL;
        if (rep) *rep = r;
    }
    harp_rot_destroy(s.U);
    harp_rot_destroy(s.V);
    fit_state_free(&s);
    return st;
}
