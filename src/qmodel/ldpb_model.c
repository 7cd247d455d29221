/* A decoder layer of a loaded model as the fp64 block of quant/blockfit.h (qmodel/ldpb.h). */
#include <string.h>

#include "core/core.h"
#include "qmodel/ldpb.h"

_Static_assert((int)HARP_BLK_IN_QKV == (int)HARP_LG_QKV && (int)HARP_BLK_IN_O == (int)HARP_LG_O &&
                   (int)HARP_BLK_IN_UG == (int)HARP_LG_UPGATE && (int)HARP_BLK_IN_DOWN == (int)HARP_LG_DOWN &&
                   (int)HARP_BLK_NIN == (int)HARP_LG_COUNT,
               "the block's linear inputs are the layer's groups");

harp_status harp_ldpb_block_of(const harp_model *m, int l, int T, int nseq, harp_blk_dims *dm, double **inv, harp_blk_w *w) {
    const harp_model_config *cf = &m->cfg;
    *inv = NULL;
    memset(w, 0, sizeof *w);
    if (l < 0 || l >= cf->n_layers) return harp_err(HARP_ERR_INVALID_ARG, "ldp block fit: no layer %d", l);
    const harp_layer_cfg *lc = &m->layers[l].cfg;
    for (int g = 0; g < HARP_LG_COUNT; g++)
        if (lc->g[g].qt || harp_lgroup_has_bias(&lc->g[g]))
            return harp_err(HARP_ERR_UNSUPPORTED, "ldp block fit: layer %d has quantized or biased linears (fp32 Llama blocks only)",
                            l);
    if (cf->sliding_window > 0 && cf->sliding_window < T)
        return harp_err(HARP_ERR_UNSUPPORTED, "ldp block fit: sliding-window attention (%d < %d tokens) is not modelled",
                        cf->sliding_window, T);
    *dm = (harp_blk_dims){cf->dim, cf->n_heads, cf->n_kv_heads, cf->head_dim, cf->hidden_dim, T, nseq, cf->rope_layout,
                          (double)cf->norm_eps, NULL};
    if (!(*inv = harp_xmalloc((size_t)(cf->head_dim / 2) * sizeof **inv, "rope frequencies"))) return HARP_ERR_OOM;
    for (int i = 0; i < cf->head_dim / 2; i++) (*inv)[i] = m->rope_inv_freq[i];
    dm->inv_freq = *inv;
    harp_status st = harp_blk_w_alloc(dm, w);
    for (int j = 0; !st && j < cf->dim; j++) w->attn_norm[j] = m->layers[l].attn_norm[j], w->ffn_norm[j] = m->layers[l].ffn_norm[j];
    for (int i = 0; !st && i < HARP_BLK_NLIN; i++) {
        int s;
        const harp_lgroup *g = harp_model_lin_c(m, l, i, &s);
        int64_t r, c;
        harp_blk_lin_shape(dm, i, &r, &c);
        for (int64_t k = 0; k < r * c; k++) w->lin[i][k] = g->w[s][k];
    }
    if (st) harp_free(*inv), *inv = NULL;
    return st;
}

void harp_ldpb_block_wakv(const harp_model *m, int l, harp_blk_wakv *wk) {
    const harp_layer_cfg *lc = &m->layers[l].cfg;
    memset(wk, 0, sizeof *wk);
    for (int g = 0; g < HARP_LG_COUNT; g++) { /* HARP_BLK_IN_* is the HARP_LG_* order */
        wk->rot_in[g] = lc->g[g].rot_in;
        wk->aq[g] = lc->g[g].act_q ? &lc->g[g].act_q->fmt : NULL;
    }
    wk->r3 = lc->r3;
    if (lc->kv_q) wk->kvq[0] = &lc->kv_q[0].fmt, wk->kvq[1] = &lc->kv_q[1].fmt;
}

harp_status harp_ldpb_embed_windows(const harp_model *m, const char *text, size_t len, int T, int nseq_req, const char *what,
                                    int *nseq, double **X) {
    *X = NULL, *nseq = 0;
    if (!m->tok) return harp_err(HARP_ERR_INVALID_ARG, "%s: the model has no tokenizer for the calibration text", what);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    HARP_TRY(harp_tokenize(m->tok, text, len, 1, &ids, &n_ids));
    const int nw = (int)(n_ids / (size_t)T), dim = m->cfg.dim;
    if (nw < 1) {
        harp_free(ids);
        return harp_err(HARP_ERR_INVALID_ARG, "%s: the calibration text has %zu tokens, fewer than one window of %d", what, n_ids,
                        T);
    }
    const int ns = nseq_req < nw ? nseq_req : nw;
    if (ns < nseq_req)
        harp_log(HARP_LOG_WARN, "%s: asked for %d windows, the text has %d of %d tokens; using %d", what, nseq_req, nw, T, nw);
    double *x = harp_xmalloc((size_t)ns * T * dim * sizeof *x, "calibration activations");
    for (int w = 0; x && w < ns; w++) {
        const int32_t *tok = ids + (size_t)((int64_t)w * nw / ns) * T;
        for (int t = 0; t < T; t++)
            for (int j = 0; j < dim; j++) x[((size_t)w * T + t) * dim + j] = m->tok_emb[(size_t)tok[t] * dim + j];
    }
    harp_free(ids);
    if (!x) return HARP_ERR_OOM;
    *X = x, *nseq = ns;
    return HARP_OK;
}
