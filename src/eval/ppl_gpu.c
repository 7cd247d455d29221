/* Host side of the GPU perplexity / KLD evaluator (include/harp/cuda_eval.h): the window protocol and
 * the NLL accumulation are those of src/eval/ppl.c (sums over windows in the same order, in double);
 * only the forward and the per-position log-softmax run on the device (src/cuda/forward_cuda.cu).
 * Weights reach the device as dense W_effᵀ taken through the harp_linear interface (matmul of
 * identity rows), so quantized linears that rotate or scale inside matmul need no GPU code. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "eval/ppl_internal.h"
#include "harp/cuda_eval.h"
#include "harp/tokenizer.h"
#include "model/model_internal.h"
#ifdef HARP_HAVE_CUDA
#include "cuda/gpu_net.h"
#endif

harp_gpu_ppl_params harp_gpu_ppl_default_params(void) {
    harp_gpu_ppl_params p;
    memset(&p, 0, sizeof p);
    return p;
}

#ifndef HARP_HAVE_CUDA

int harp_cuda_available(void) {
    harp_err(HARP_ERR_NO_DEVICE, "harp was built without CUDA (configure with -DHARP_CUDA=ON)");
    return 0;
}

harp_status harp_eval_ppl_ids_gpu(harp_model *m, const int32_t *ids, size_t n_ids, const harp_ppl_params *p,
                                  const harp_gpu_ppl_params *gp, harp_ppl_result *out) {
    (void)m, (void)ids, (void)n_ids, (void)p, (void)gp;
    if (out) memset(out, 0, sizeof *out);
    return harp_err(HARP_ERR_NO_DEVICE, "ppl --gpu: harp was built without CUDA (configure with -DHARP_CUDA=ON)");
}

#else

int harp_cuda_available(void) {
    size_t fr;
    return harp_gpu_free_bytes(&fr) == HARP_OK;
}

/* dst (in × ld, row-major) columns col0..col0+out-1 = W_effᵀ of l, bias into bias_dst (if any). */
static harp_status dense_wt(const harp_linear *l, float *dst, int ld, int col0, float *bias_dst) {
    enum { BLK = 64 };
    float *I = harp_xcalloc((size_t)BLK * l->in, sizeof(float), "identity block");
    float *Y = harp_xmalloc((size_t)BLK * l->out * sizeof(float), "weight block");
    if (!I || !Y) {
        free(I);
        free(Y);
        return HARP_ERR_OOM;
    }
    for (int i0 = 0; i0 < l->in; i0 += BLK) {
        int nb = l->in - i0 < BLK ? l->in - i0 : BLK;
        memset(I, 0, (size_t)nb * l->in * sizeof(float));
        for (int r = 0; r < nb; r++) I[(size_t)r * l->in + i0 + r] = 1.0f;
        l->matmul(l, I, nb, Y);
        for (int r = 0; r < nb; r++)
            memcpy(dst + (size_t)(i0 + r) * ld + col0, Y + (size_t)r * l->out, (size_t)l->out * sizeof(float));
    }
    if (bias_dst) {
        if (l->bias) memcpy(bias_dst + col0, l->bias, (size_t)l->out * sizeof(float));
        else memset(bias_dst + col0, 0, (size_t)l->out * sizeof(float));
    }
    free(I);
    free(Y);
    return HARP_OK;
}

static harp_status check_linear(const harp_linear *l, int out, int in, const char *what, int layer) {
    if (!l->matmul || l->in != in || l->out != out)
        return harp_err(HARP_ERR_SHAPE, "ppl --gpu: layer %d %s is %d × %d, expected %d × %d", layer, what, l->out, l->in,
                        out, in);
    return HARP_OK;
}

static harp_status upload_layer(harp_gpu_net *net, const harp_model *m, int l, float *buf, size_t buf_floats) {
    const harp_model_config *c = &m->cfg;
    const harp_layer *L = &m->layers[l];
    int dim = c->dim, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, hid = c->hidden_dim;
    int qkvd = qd + 2 * kvd;
    HARP_TRY(check_linear(&L->q, qd, dim, "q_proj", l));
    HARP_TRY(check_linear(&L->k, kvd, dim, "k_proj", l));
    HARP_TRY(check_linear(&L->v, kvd, dim, "v_proj", l));
    HARP_TRY(check_linear(&L->o, dim, qd, "o_proj", l));
    HARP_TRY(check_linear(&L->gate, hid, dim, "gate_proj", l));
    HARP_TRY(check_linear(&L->up, hid, dim, "up_proj", l));
    HARP_TRY(check_linear(&L->down, dim, hid, "down_proj", l));
    float *wqkv = buf, *wo = wqkv + (size_t)dim * qkvd, *wgu = wo + (size_t)qd * dim, *wd = wgu + (size_t)dim * 2 * hid;
    float *bqkv = wd + (size_t)hid * dim, *bgu = bqkv + qkvd;
    if ((size_t)(bgu + 2 * hid - buf) > buf_floats) return harp_err(HARP_ERR_INTERNAL, "ppl --gpu: layer buffer too small");
    HARP_TRY(dense_wt(&L->q, wqkv, qkvd, 0, bqkv));
    HARP_TRY(dense_wt(&L->k, wqkv, qkvd, qd, bqkv));
    HARP_TRY(dense_wt(&L->v, wqkv, qkvd, qd + kvd, bqkv));
    HARP_TRY(dense_wt(&L->o, wo, dim, 0, NULL));
    HARP_TRY(dense_wt(&L->gate, wgu, 2 * hid, 0, bgu));
    HARP_TRY(dense_wt(&L->up, wgu, 2 * hid, hid, bgu));
    HARP_TRY(dense_wt(&L->down, wd, dim, 0, NULL));
    harp_gpu_layer_host h = {L->attn_norm, L->ffn_norm, wqkv, (L->q.bias || L->k.bias || L->v.bias) ? bqkv : NULL,
                             wo, L->o.bias, wgu, (L->gate.bias || L->up.bias) ? bgu : NULL, wd, L->down.bias};
    return harp_gpu_net_set_layer(net, l, &h);
}

static harp_status upload_model(const harp_model *m, int ctx, int max_windows, harp_gpu_net **out) {
    const harp_model_config *c = &m->cfg;
    harp_gpu_dims d = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size,
                       ctx, max_windows, c->sliding_window, c->norm_eps, c->rope_layout};
    harp_gpu_net *net = NULL;
    HARP_TRY(harp_gpu_net_create(&d, m->tok_emb, m->final_norm, m->rope_inv_freq, &net));
    int dim = c->dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim, hid = c->hidden_dim;
    size_t layer_floats = (size_t)dim * (qd + 2 * kvd) + (size_t)qd * dim + (size_t)dim * 2 * hid + (size_t)hid * dim +
                          (qd + 2 * kvd) + 2 * (size_t)hid;
    size_t head_floats = (size_t)dim * c->vocab_size;
    size_t nbuf = layer_floats > head_floats ? layer_floats : head_floats;
    float *buf = harp_xmalloc(nbuf * sizeof(float), "dense weights");
    harp_status st = buf ? HARP_OK : HARP_ERR_OOM;
    for (int l = 0; l < c->n_layers && !st; l++) st = upload_layer(net, m, l, buf, nbuf);
    if (!st) st = check_linear(&m->head, c->vocab_size, dim, "lm_head", -1);
    if (!st) st = dense_wt(&m->head, buf, c->vocab_size, 0, NULL);
    if (!st) st = harp_gpu_net_set_head(net, buf, m->head.bias);
    free(buf);
    if (st) {
        harp_gpu_net_free(net);
        return st;
    }
    *out = net;
    return HARP_OK;
}

/* Windows per launch: about 8192 rows, fewer when the device memory (both nets) would not hold them. */
static int pick_windows(const harp_model *m, const harp_model *ref, int ctx, int n_chunks, int asked) {
    int w = asked > 0 ? asked : (8192 / ctx > 0 ? 8192 / ctx : 1);
    if (w > n_chunks) w = n_chunks;
    if (asked > 0) return w;
    size_t fr = 0;
    if (harp_gpu_free_bytes(&fr)) return w;
    for (; w > 1; w /= 2) {
        size_t need = 0;
        const harp_model *ms[2] = {m, ref};
        for (int i = 0; i < 2; i++) {
            if (!ms[i]) continue;
            const harp_model_config *c = &ms[i]->cfg;
            harp_gpu_dims d = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim,
                               c->vocab_size, ctx, w, c->sliding_window, c->norm_eps, c->rope_layout};
            need += harp_gpu_net_bytes(&d);
        }
        if (need < fr / 10 * 8) break;
    }
    return w;
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
    harp_model *ref = gp->kld_ref;
    int ctx = p->ctx, V = m->cfg.vocab_size;
    if (p->save_logits || p->kld_base)
        return harp_err(HARP_ERR_UNSUPPORTED, "ppl --gpu: saved logits are CPU-only; use a reference model for KLD");
    if (ctx < 2 || ctx > m->cfg.max_seq_len)
        return harp_err(HARP_ERR_INVALID_ARG, "ppl: ctx %d is outside 2..%d (the model's max_position_embeddings)", ctx,
                        m->cfg.max_seq_len);
    if (ref && (ref->cfg.vocab_size != V || ctx > ref->cfg.max_seq_len))
        return harp_err(HARP_ERR_MISMATCH, "ppl --gpu: reference model has vocab %d and max_position_embeddings %d; "
                        "this run needs vocab %d and ctx %d", ref->cfg.vocab_size, ref->cfg.max_seq_len, V, ctx);
    if (p->max_chunks < 0) return harp_err(HARP_ERR_INVALID_ARG, "ppl: max_chunks must be >= 0");
    if (gp->windows_per_batch < 0) return harp_err(HARP_ERR_INVALID_ARG, "ppl --gpu: windows_per_batch must be >= 0");
    size_t avail = n_ids / (size_t)ctx;
    if (avail == 0)
        return harp_err(HARP_ERR_INVALID_ARG, "ppl: the text gives %zu tokens, fewer than one window of ctx %d", n_ids, ctx);
    int n_chunks = avail > (size_t)INT32_MAX ? INT32_MAX : (int)avail;
    if (p->max_chunks > 0 && p->max_chunks < n_chunks) n_chunks = p->max_chunks;
    for (size_t i = 0; i < (size_t)n_chunks * ctx; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return harp_err(HARP_ERR_INVALID_ARG, "ppl: token id %d at index %zu is outside the vocabulary (0..%d)",
                            (int)ids[i], i, V - 1);
    int W = pick_windows(m, ref, ctx, n_chunks, gp->windows_per_batch);
    harp_gpu_net *net = NULL, *rnet = NULL;
    harp_status st = upload_model(m, ctx, W, &net);
    if (!st && ref) st = upload_model(ref, ctx, W, &rnet);
    size_t rows = (size_t)W * (ctx - 1);
    double *nll = harp_xmalloc(rows * sizeof(double), "row nll");
    double *kld = ref ? harp_xmalloc(rows * sizeof(double), "row kld") : NULL;
    int *agree_row = ref ? harp_xmalloc(rows * sizeof(int), "row agreement") : NULL;
    out->chunk_nll = harp_xcalloc((size_t)n_chunks, sizeof(double), "chunk nll");
    if (!st && (!nll || !out->chunk_nll || (ref && (!kld || !agree_row)))) st = HARP_ERR_OOM;
    double sum = 0, sum2 = 0, ksum = 0, ksum2 = 0;
    int64_t scored = 0, agree = 0;
    for (int w0 = 0; w0 < n_chunks && !st; w0 += W) {
        int nw = n_chunks - w0 < W ? n_chunks - w0 : W;
        const int32_t *t = ids + (size_t)w0 * ctx;
        if (rnet && (st = harp_gpu_net_forward(rnet, t, nw))) break;
        if ((st = harp_gpu_net_forward(net, t, nw))) break;
        if ((st = harp_gpu_net_score(net, rnet, nw, nll, kld, agree_row))) break;
        for (int k = 0; k < nw && !st; k++) {
            int w = w0 + k;
            const double *rn = nll + (size_t)k * (ctx - 1);
            double cs = 0;
            for (int i = 0; i < ctx - 1; i++) {
                cs += rn[i];
                sum2 += rn[i] * rn[i];
                if (ref) {
                    double kl = kld[(size_t)k * (ctx - 1) + i];
                    ksum += kl;
                    ksum2 += kl * kl;
                    agree += agree_row[(size_t)k * (ctx - 1) + i];
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
    if (!st) {
        harp_ppl_finish(out, sum, sum2, scored, n_chunks, ctx, ref != NULL, ksum, ksum2, agree, t0);
    } else {
        harp_ppl_result_free(out);
    }
    free(nll);
    free(kld);
    free(agree_row);
    harp_gpu_net_free(net);
    harp_gpu_net_free(rnet);
    return st;
}

#endif

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
