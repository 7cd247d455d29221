/* harp_calib_run: accumulate the input second moments of every decoder layer's linear groups over
 * calibration windows of the unquantized model (activations always come from the FP model, as in
 * QuIP#'s offline Hessians). Layers are grouped to fit a memory budget; each group costs one pass
 * over the windows, and each finished layer is written atomically, so an interrupted run resumes
 * with the layers already on disk. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "calib_internal.h"
#include "harp/tokenizer.h"

harp_calib_params harp_calib_default_params(void) {
    harp_calib_params p;
    memset(&p, 0, sizeof p);
    p.ctx = 512;
    p.nseq = 256;
    p.seed = 0;
    p.mem_budget_mb = 8192;
    return p;
}

static void fill_model_fields(hess_header *h, const harp_model_info *mi, uint64_t fp) {
    h->n_layers = (uint32_t)mi->n_layers;
    h->dim = (uint32_t)mi->dim;
    h->hidden_dim = (uint32_t)mi->hidden_dim;
    h->n_heads = (uint32_t)mi->n_heads;
    h->n_kv_heads = (uint32_t)mi->n_kv_heads;
    h->head_dim = (uint32_t)mi->head_dim;
    h->vocab_size = (uint32_t)mi->vocab_size;
    h->model_fp = fp;
}

harp_status hess_check_model(const char *path, const hess_header *hdr, const harp_model *m) {
    harp_model_info mi;
    HARP_TRY(harp_model_get_info(m, &mi));
    hess_header want;
    memset(&want, 0, sizeof want);
    fill_model_fields(&want, &mi, harp_model_fingerprint(m));
    if (hdr->dim != want.dim || hdr->hidden_dim != want.hidden_dim || hdr->n_layers != want.n_layers ||
        hdr->n_heads != want.n_heads || hdr->n_kv_heads != want.n_kv_heads || hdr->head_dim != want.head_dim)
        return harp_err(HARP_ERR_MISMATCH,
                        "%s: Hessians are for another model shape (dim %u, hidden %u, %u layers; this model: dim %u, hidden %u, %u layers)",
                        path, hdr->dim, hdr->hidden_dim, hdr->n_layers, want.dim, want.hidden_dim, want.n_layers);
    if (hdr->model_fp != want.model_fp)
        return harp_err(HARP_ERR_MISMATCH, "%s: Hessians were collected on a model with different weights (fingerprint %016llx, this model %016llx)",
                        path, (unsigned long long)hdr->model_fp, (unsigned long long)want.model_fp);
    return HARP_OK;
}

typedef struct calib_state {
    int layer_lo, layer_hi;       /* layers accumulated in this pass: [lo, hi) */
    hess_acc (*acc)[HARP_HESS_COUNT];
    double *xbuf;                 /* rows × max n, fp64 copy of the hooked activations */
    size_t xbuf_cap;
    harp_status st;
} calib_state;

static void calib_hook(void *user, int layer, int which, const float *x, int rows, int n) {
    calib_state *cs = user;
    if (cs->st != HARP_OK || layer < cs->layer_lo || layer >= cs->layer_hi) return;
    hess_acc *a = &cs->acc[layer - cs->layer_lo][which];
    if (n != a->n) {
        cs->st = harp_err(HARP_ERR_INTERNAL, "calibration hook: layer %d %s has width %d, expected %d", layer, harp_hess_name(which), n, a->n);
        return;
    }
    size_t need = (size_t)rows * (size_t)n;
    if (need > cs->xbuf_cap) {
        free(cs->xbuf);
        cs->xbuf = harp_xmalloc(need * sizeof(double), "calibration activations");
        cs->xbuf_cap = cs->xbuf ? need : 0;
        if (!cs->xbuf) {
            cs->st = HARP_ERR_OOM;
            return;
        }
    }
    for (size_t i = 0; i < need; i++) cs->xbuf[i] = (double)x[i];
    /* Σ x xᵀ into the lower triangle; fp64 so that millions of rows sum without loss */
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, n, rows, 1.0, cs->xbuf, n, 1.0, a->S, n);
    for (int r = 0; r < rows; r++) {
        const double *xr = cs->xbuf + (size_t)r * n;
        for (int j = 0; j < n; j++) a->mu_sum[j] += xr[j];
    }
    a->ct += rows;
}

static int stat_width(const harp_model_info *mi, int which) {
    switch (which) {
    case HARP_HESS_QKV: case HARP_HESS_UP: return mi->dim;
    case HARP_HESS_O: return mi->n_heads * mi->head_dim;
    default: return mi->hidden_dim;
    }
}

static size_t layer_bytes(const harp_model_info *mi) {
    size_t b = 0;
    for (int w = 0; w < HARP_HESS_COUNT; w++) {
        size_t n = (size_t)stat_width(mi, w);
        b += (n * n + n) * sizeof(double);
    }
    return b;
}

/* Fisher–Yates over window indices with the run's seed; the first nseq are used, in file order. */
static int *pick_windows(int total, int nseq, uint64_t seed) {
    int *idx = harp_xmalloc(sizeof(int) * (size_t)(total > 0 ? total : 1), "window indices");
    if (!idx) return NULL;
    for (int i = 0; i < total; i++) idx[i] = i;
    if (nseq < total) {
        harp_rng r;
        harp_rng_seed(&r, harp_seed_mix(seed, 0xCA11B));
        for (int i = total - 1; i > 0; i--) {
            int j = (int)(harp_rng_u64(&r) % (uint64_t)(i + 1));
            int t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        /* sort the chosen prefix so windows are visited in text order */
        for (int i = 1; i < nseq; i++)
            for (int k = i; k > 0 && idx[k - 1] > idx[k]; k--) {
                int t = idx[k];
                idx[k] = idx[k - 1];
                idx[k - 1] = t;
            }
    }
    return idx;
}

/* One calibration run: the windows, the header every layer file carries, which layers are done. */
typedef struct calib_run {
    harp_model_info mi;
    int32_t *ids;
    int nseq;
    int *win;                /* window indices, nseq used */
    hess_header base;
    unsigned char *done;     /* per layer: file on disk belongs to this run */
} calib_run;

static void calib_run_free(calib_run *r) {
    harp_free(r->ids);
    free(r->win);
    free(r->done);
}

/* Tokenizes the text, picks the windows and fills the run header. */
static harp_status calib_prepare(harp_model *m, const char *text, size_t len, const harp_calib_params *p, calib_run *r) {
    HARP_TRY(harp_model_get_info(m, &r->mi));
    if (p->ctx < 2) return harp_err(HARP_ERR_INVALID_ARG, "calibration: ctx %d is too small (need >= 2)", p->ctx);
    if (p->ctx > r->mi.max_seq_len)
        return harp_err(HARP_ERR_INVALID_ARG, "calibration: ctx %d exceeds the model's maximum context %d", p->ctx, r->mi.max_seq_len);
    if (p->nseq < 0) return harp_err(HARP_ERR_INVALID_ARG, "calibration: nseq %d is negative", p->nseq);
    const harp_tokenizer *tok = harp_model_tokenizer(m);
    if (!tok) return harp_err(HARP_ERR_INVALID_ARG, "calibration: the model has no tokenizer loaded");
    size_t n_ids = 0;
    HARP_TRY(harp_tokenize(tok, text, len, 1, &r->ids, &n_ids));
    int total = (int)(n_ids / (size_t)p->ctx);
    if (total == 0) return harp_err(HARP_ERR_INVALID_ARG, "calibration text has %zu tokens, fewer than one window of %d", n_ids, p->ctx);
    r->nseq = (p->nseq == 0 || p->nseq > total) ? total : p->nseq;
    if (p->nseq > total)
        harp_log(HARP_LOG_WARN, "calibration: asked for %d windows, the text has only %d of %d tokens; using %d", p->nseq, total, p->ctx, total);
    fill_model_fields(&r->base, &r->mi, harp_model_fingerprint(m));
    r->base.ctx = (uint32_t)p->ctx;
    r->base.n_windows = (uint32_t)r->nseq;
    r->base.n_tokens = (uint64_t)r->nseq * (uint64_t)p->ctx;
    r->base.seed = p->seed;
    char text_hash[65];
    harp_sha256_hex(text, len, text_hash);
    memcpy(r->base.text_sha256, text_hash, 64);
    r->win = pick_windows(total, r->nseq, p->seed);
    r->done = harp_xcalloc((size_t)r->mi.n_layers, 1, "layer flags");
    return r->win && r->done ? HARP_OK : HARP_ERR_OOM;
}

/* Resume: keeps layers whose file matches this model and run; refuses to mix runs. */
static harp_status calib_scan_done(const harp_model *m, const char *out_dir, calib_run *r, int *n_done) {
    for (int l = 0; l < r->mi.n_layers; l++) {
        char *path = hess_layer_path(out_dir, l);
        if (!path) return HARP_ERR_OOM;
        harp_status st = HARP_OK;
        if (harp_file_exists(path)) {
            hess_header h;
            harp_hess_layer *probe = NULL;
            r->base.layer = (uint32_t)l;
            if (hess_read_header(path, &h) == HARP_OK && memcmp(&h, &r->base, sizeof h) != 0) {
                st = harp_err(HARP_ERR_MISMATCH, "%s: belongs to another calibration run or model; use an empty output folder", path);
            } else if (harp_hess_layer_load(out_dir, l, m, &probe) == HARP_OK) {
                r->done[l] = 1;
                (*n_done)++;
            } else {
                harp_log(HARP_LOG_WARN, "%s: damaged (%s); recomputing it", path, harp_last_error());
                harp_clear_error();
            }
            harp_hess_layer_free(probe);
        }
        free(path);
        HARP_TRY(st);
    }
    return HARP_OK;
}

static void calib_acc_free(calib_state *cs, int n) {
    for (int l = 0; cs->acc && l < n; l++)
        for (int w = 0; w < HARP_HESS_COUNT; w++) {
            free(cs->acc[l][w].S);
            free(cs->acc[l][w].mu_sum);
        }
    free(cs->acc);
    cs->acc = NULL;
}

/* One pass over the windows accumulating layers [lo, hi), then each layer's file written. */
static harp_status calib_pass(harp_ctx *ctx, calib_state *cs, const char *out_dir, const harp_calib_params *p, calib_run *r,
                              int lo, int hi) {
    cs->layer_lo = lo;
    cs->layer_hi = hi;
    cs->st = HARP_OK;
    cs->acc = harp_xcalloc((size_t)(hi - lo), sizeof *cs->acc, "Hessian accumulators");
    harp_status st = cs->acc ? HARP_OK : HARP_ERR_OOM;
    for (int l = lo; l < hi && st == HARP_OK; l++)
        for (int w = 0; w < HARP_HESS_COUNT; w++) {
            hess_acc *a = &cs->acc[l - lo][w];
            a->n = stat_width(&r->mi, w);
            a->S = harp_xcalloc((size_t)a->n * (size_t)a->n, sizeof(double), "Hessian accumulator");
            a->mu_sum = harp_xcalloc((size_t)a->n, sizeof(double), "Hessian mean");
            if (!a->S || !a->mu_sum) { st = HARP_ERR_OOM; break; }
        }
    char stage[96];
    snprintf(stage, sizeof stage, "calib layers %d-%d/%d", lo, hi - 1, r->mi.n_layers);
    for (int k = 0; st == HARP_OK && k < r->nseq; k++) {
        if (p->progress && p->progress(p->progress_user, stage, k, r->nseq)) { st = harp_err(HARP_ERR_CANCELLED, "calibration cancelled"); break; }
        harp_ctx_truncate(ctx, 0);
        st = harp_ctx_eval(ctx, r->ids + (size_t)r->win[k] * (size_t)p->ctx, p->ctx, NULL, 0);
        if (st == HARP_OK) st = cs->st;
    }
    if (st == HARP_OK && p->progress) p->progress(p->progress_user, stage, r->nseq, r->nseq);
    for (int l = lo; l < hi && st == HARP_OK; l++) {
        char *path = hess_layer_path(out_dir, l);
        r->base.layer = (uint32_t)l;
        st = path ? hess_write_layer(path, &r->base, cs->acc[l - lo]) : HARP_ERR_OOM;
        free(path);
        if (st == HARP_OK) r->done[l] = 1;
    }
    calib_acc_free(cs, hi - lo);
    return st;
}

harp_status harp_calib_run(harp_model *m, const char *text, size_t len, const char *out_dir,
                           const harp_calib_params *pin, harp_calib_summary *summary) {
    harp_calib_params p = pin ? *pin : harp_calib_default_params();
    harp_calib_summary sum;
    memset(&sum, 0, sizeof sum);
    double t0 = harp_time_s();
    calib_run r;
    memset(&r, 0, sizeof r);
    harp_dir_lock lock = {-1, NULL};
    harp_status st = calib_prepare(m, text, len, &p, &r);
    if (st == HARP_OK) st = harp_mkdir_p(out_dir);
    if (st == HARP_OK) st = harp_dir_lock_take(&lock, out_dir, "harp calib");
    if (st == HARP_OK) harp_remove_stale_temps(out_dir);
    if (st == HARP_OK) st = calib_scan_done(m, out_dir, &r, &sum.layers_done_before);

    size_t per_layer = layer_bytes(&r.mi), budget = p.mem_budget_mb * (size_t)1 << 20;
    int group = per_layer ? (int)(budget / per_layer) : r.mi.n_layers;
    if (group < 1) group = 1;
    harp_ctx *ctx = NULL;
    calib_state cs;
    memset(&cs, 0, sizeof cs);
    if (st == HARP_OK) st = harp_ctx_create(m, p.ctx, &ctx);
    if (st == HARP_OK) st = harp_ctx_set_hook(ctx, calib_hook, &cs);
    for (int lo = 0; st == HARP_OK;) {
        while (lo < r.mi.n_layers && r.done[lo]) lo++;
        if (lo >= r.mi.n_layers) break;
        int hi = lo;
        while (hi < r.mi.n_layers && hi - lo < group && !r.done[hi]) hi++;
        st = calib_pass(ctx, &cs, out_dir, &p, &r, lo, hi);
        sum.passes++;
        lo = hi;
    }
    harp_ctx_free(ctx);
    free(cs.xbuf);
    harp_dir_lock_release(&lock);
    sum.n_layers = r.mi.n_layers;
    sum.n_windows = r.nseq;
    sum.ctx = p.ctx;
    sum.n_tokens = (int64_t)r.nseq * p.ctx;
    sum.seconds = harp_time_s() - t0;
    calib_run_free(&r);
    if (summary) *summary = sum;
    return st;
}
