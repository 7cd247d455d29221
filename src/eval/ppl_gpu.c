/* GPU perplexity / KLD (include/harp/cuda_eval.h): the CUDA backend, one context per model, and the
 * one forward pass over batches of independent windows (harp_ctx_eval_windows), scored on the
 * device (harp_ctx_score) so that logits never reach the host. The window protocol and the NLL
 * accumulation are those of src/eval/ppl.c (sums over windows in the same order, in double). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "eval/ppl_internal.h"
#include "harp/backend.h"
#include "harp/cuda_eval.h"
#include "model/model.h"

harp_gpu_ppl_params harp_gpu_ppl_default_params(void) {
    harp_gpu_ppl_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* kv: harp_ppl_params.kv_qtype -- fp32 unless asked, whatever the backend's default (a quality
 * measurement compares with the CPU's). */
static harp_ctx_params window_params(harp_backend *b, int ctx, int windows, harp_qtype kv) {
    harp_ctx_params p = harp_ctx_default_params();
    p.max_tokens = ctx;
    p.max_rows = ctx * windows;
    p.backend = b;
    p.kv_qtype = kv;
    return p;
}

/* Windows per launch: about 8192 rows, fewer when the device memory (both models' weights and
 * contexts) would not hold them. */
static int pick_windows(harp_model *m, harp_model *ref, harp_backend *b, int ctx, int n_chunks, int asked, harp_qtype kv) {
    int w = asked > 0 ? asked : (8192 / ctx > 0 ? 8192 / ctx : 1);
    if (w > n_chunks) w = n_chunks;
    if (asked > 0) return w;
    size_t fr = 0;
    if (harp_backend_free_memory(b, &fr)) return w;
    for (; w > 1; w /= 2) {
        size_t need = 0;
        harp_model *ms[2] = {m, ref};
        for (int i = 0; i < 2; i++) {
            if (!ms[i]) continue;
            harp_ctx_params p = window_params(b, ctx, w, kv);
            need += harp_model_backend_bytes(ms[i], b) + harp_ctx_bytes(ms[i], &p);
        }
        if (need < fr / 10 * 8) break;
    }
    return w;
}

static harp_status check_args(const harp_model *m, const harp_model *ref, const int32_t *ids, size_t n_ids,
                              const harp_ppl_params *p,
                              const harp_gpu_ppl_params *gp, int *n_chunks) {
    int ctx = p->ctx, V = m->cfg.vocab_size;
    if (p->save_logits || p->kld_base)
        return harp_err(HARP_ERR_UNSUPPORTED, "ppl --gpu: saved logits are CPU-only; use a reference model for KLD");
    if (ctx < 2 || ctx > m->cfg.max_seq_len)
        return harp_err(HARP_ERR_INVALID_ARG, "ppl: ctx %d is outside 2..%d (the model's max_position_embeddings)", ctx,
                        m->cfg.max_seq_len);
    if (ref && (ref->cfg.vocab_size != V || ctx > ref->cfg.max_seq_len))
        return harp_err(HARP_ERR_MISMATCH, "reference model: vocab %d and max_position_embeddings %d; this run needs vocab %d and "
                        "ctx %d", ref->cfg.vocab_size, ref->cfg.max_seq_len, V, ctx);
    if (p->max_chunks < 0) return harp_err(HARP_ERR_INVALID_ARG, "ppl: max_chunks must be >= 0");
    if (gp->windows_per_batch < 0) return harp_err(HARP_ERR_INVALID_ARG, "ppl --gpu: windows_per_batch must be >= 0");
    size_t avail = n_ids / (size_t)ctx;
    if (avail == 0)
        return harp_err(HARP_ERR_INVALID_ARG, "ppl: the text gives %zu tokens, fewer than one window of ctx %d", n_ids, ctx);
    *n_chunks = avail > (size_t)INT32_MAX ? INT32_MAX : (int)avail;
    if (p->max_chunks > 0 && p->max_chunks < *n_chunks) *n_chunks = p->max_chunks;
    for (size_t i = 0; i < (size_t)*n_chunks * ctx; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return harp_err(HARP_ERR_INVALID_ARG, "ppl: token id %d at index %zu is outside the vocabulary (0..%d)",
                            (int)ids[i], i, V - 1);
    return HARP_OK;
}

typedef struct gpu_run {
    harp_ctx *c, *rc;
    int32_t *rows, *targets;
    double *nll, *kld;
    int *agree;
} gpu_run;

static void run_free(gpu_run *r) {
    harp_ctx_free(r->c);
    harp_ctx_free(r->rc);
    HARP_FREE_ALL(r->rows, r->targets, r->nll, r->kld, r->agree);
}

static harp_status run_init(gpu_run *r, harp_model *m, harp_model *ref, harp_backend *b, int ctx, int W, harp_qtype kv) {
    memset(r, 0, sizeof *r);
    harp_ctx_params cp = window_params(b, ctx, W, kv);
    HARP_TRY(harp_ctx_create_ex(m, &cp, &r->c));
    if (ref) HARP_TRY(harp_ctx_create_ex(ref, &cp, &r->rc));
    size_t n = (size_t)W * (ctx - 1);
    r->rows = harp_xmalloc(n * sizeof(int32_t), "scored rows");
    r->targets = harp_xmalloc(n * sizeof(int32_t), "scored targets");
    r->nll = harp_xmalloc(n * sizeof(double), "row nll");
    if (ref) r->kld = harp_xmalloc(n * sizeof(double), "row kld");
    if (ref) r->agree = harp_xmalloc(n * sizeof(int), "row agreement");
    return r->rows && r->targets && r->nll && (!ref || (r->kld && r->agree)) ? HARP_OK : HARP_ERR_OOM;
}

/* Forward of nw windows (reference first) and the per-position scores of positions 0..ctx-2. */
static harp_status run_batch(gpu_run *r, const int32_t *t, int nw, int ctx) {
    if (r->rc) HARP_TRY(harp_ctx_eval_windows(r->rc, t, nw, ctx));
    HARP_TRY(harp_ctx_eval_windows(r->c, t, nw, ctx));
    for (int k = 0; k < nw; k++)
        for (int i = 0; i < ctx - 1; i++) {
            size_t j = (size_t)k * (ctx - 1) + i;
            r->rows[j] = k * ctx + i;
            r->targets[j] = t[(size_t)k * ctx + i + 1];
        }
    return harp_ctx_score(r->c, r->rc, r->rows, r->targets, nw * (ctx - 1), r->nll, r->kld, r->agree);
}

harp_status harp_eval_ppl_ids_gpu(harp_model *m, const int32_t *ids, size_t n_ids, const harp_ppl_params *pp,
                                  const harp_gpu_ppl_params *gpp, harp_ppl_result *out) {
    harp_ppl_params dp = harp_ppl_default_params();
    harp_gpu_ppl_params dg = harp_gpu_ppl_default_params();
    const harp_ppl_params *p = pp ? pp : &dp;
    const harp_gpu_ppl_params *gp = gpp ? gpp : &dg;
    if (!m || !ids || !out) return harp_err(HARP_ERR_INVALID_ARG, "harp_eval_ppl_gpu: NULL argument");
    memset(out, 0, sizeof *out);
    double t0 = harp_time_s();
    harp_model *ref = p->kld_ref;
    int ctx = p->ctx, n_chunks = 0;
    HARP_TRY(check_args(m, ref, ids, n_ids, p, gp, &n_chunks));
    harp_backend *b = NULL;
    HARP_TRY(harp_backend_cuda_create(0, &b));
    int W = pick_windows(m, ref, b, ctx, n_chunks, gp->windows_per_batch, p->kv_qtype);
    gpu_run r;
    double t1 = harp_time_s();
    harp_status st = run_init(&r, m, ref, b, ctx, W, p->kv_qtype);
    double t2 = harp_time_s();
    out->chunk_nll = harp_xcalloc((size_t)n_chunks, sizeof(double), "chunk nll");
    if (!st && !out->chunk_nll) st = HARP_ERR_OOM;
    double sum = 0, sum2 = 0, ksum = 0, ksum2 = 0;
    int64_t scored = 0, agree = 0;
    for (int w0 = 0; w0 < n_chunks && !st; w0 += W) {
        int nw = n_chunks - w0 < W ? n_chunks - w0 : W;
        if ((st = run_batch(&r, ids + (size_t)w0 * ctx, nw, ctx))) break;
        for (int k = 0; k < nw && !st; k++) {
            int w = w0 + k;
            const double *rn = r.nll + (size_t)k * (ctx - 1);
            double cs = 0;
            for (int i = 0; i < ctx - 1; i++) {
                cs += rn[i];
                sum2 += rn[i] * rn[i];
                if (ref) {
                    double kl = r.kld[(size_t)k * (ctx - 1) + i];
                    ksum += kl;
                    ksum2 += kl * kl;
                    agree += r.agree[(size_t)k * (ctx - 1) + i];
                }
            }
            if (!isfinite(cs)) st = harp_err(HARP_ERR_NUMERIC, "ppl --gpu: non-finite NLL in window %d", w);
            sum += cs;
            scored += ctx - 1;
            out->chunk_nll[w] = cs / (ctx - 1);
            if (p->on_chunk) p->on_chunk(p->on_chunk_user, w, n_chunks, out->chunk_nll[w], exp(sum / scored));
            if (!st && p->progress && p->progress(p->progress_user, "ppl", w + 1, n_chunks))
                st = harp_err(HARP_ERR_CANCELLED, "ppl: cancelled");
        }
    }
    /* where a run's time goes (HARP_LOG=info): a packed model's setup and its forwards are what differ from a dense one's */
    if (!st)
        harp_log(HARP_LOG_INFO, "ppl --gpu: device %.3f s, contexts and weights %.3f s, %d forward(s) of up to %d windows %.3f s",
                 t1 - t0, t2 - t1, (n_chunks + W - 1) / W, W, harp_time_s() - t2);
    if (!st) harp_ppl_finish(out, sum, sum2, scored, n_chunks, ctx, ref != NULL, ksum, ksum2, agree, t0);
    else harp_ppl_result_free(out);
    run_free(&r);
    harp_backend_free(b);
    return st;
}

typedef struct ppl_gpu_args {
    const harp_ppl_params *p;
    const harp_gpu_ppl_params *gp;
} ppl_gpu_args;

static harp_status ppl_ids_gpu(harp_model *m, const int32_t *ids, size_t n, void *user, harp_ppl_result *out) {
    const ppl_gpu_args *a = user;
    return harp_eval_ppl_ids_gpu(m, ids, n, a->p, a->gp, out);
}

harp_status harp_eval_ppl_gpu(harp_model *m, const char *text, size_t len, const harp_ppl_params *p,
                              const harp_gpu_ppl_params *gp, harp_ppl_result *out) {
    ppl_gpu_args a = {p, gp};
    return harp_ppl_over_text(m, text, len, "harp_eval_ppl_gpu", ppl_ids_gpu, &a, out);
}
