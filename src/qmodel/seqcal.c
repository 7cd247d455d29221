/* Sequential calibration (qmodel/seqcal.h). Why: the Hessian folder is computed once from the
 * unquantized model, so GPTQ weighs each layer's error by inputs it will never see at run time —
 * with 4-bit activations the inputs of every linear are quantized, and from layer 1 on they carry
 * the earlier layers' weight error too. Here each layer is calibrated on the model as it will run
 * (GPTQ's own sequential order), and ASYM also aims each linear at the unquantized model's output
 * (the asymmetric objective ‖W X̃ − Ŵ X‖²: its minimiser W C H⁻¹ splits off exactly, so GPTQ on that
 * target with H minimises it). The windows run in chunks so the blocks' caches stay small. */
#include <cblas.h>
#include <lapacke.h>
#include <string.h>

#include "core/core.h"
#include "qmodel/ldpb.h"
#include "qmodel/seqcal.h"

_Static_assert((int)QF_NGROUPS == (int)HARP_BLK_NIN, "a folder group per block input");

/* The block's inputs of group g in cache c (rows × n). */
static const double *group_input(const harp_blk_cache *c, int g) {
    return g == HARP_BLK_IN_QKV ? c->h1 : g == HARP_BLK_IN_O ? c->ctx : g == HARP_BLK_IN_UG ? c->h2 : c->a;
}

/* Windows per chunk: the largest divisor of nseq up to 8 (the caches hold nh·T² attention weights
 * per window). */
static int chunk_windows(int nseq) {
    int c = nseq < 8 ? nseq : 8;
    while (nseq % c) c--;
    return c;
}

harp_status qp_seq_begin(const harp_model *m, const harp_qmodel_params *p, qp_seq *s) {
    memset(s, 0, sizeof *s);
    s->mode = p->w_calib;
    if (s->mode == HARP_WCALIB_FILES) return HARP_OK;
    s->T = p->calib_ctx;
    HARP_TRY(harp_ldpb_embed_windows(m, p->calib_text, p->calib_text_len, p->calib_ctx, p->calib_nseq, "sequential calibration",
                                     &s->nseq, &s->Xq));
    for (int g = 0; g < QF_NGROUPS; g++) {
        int64_t len[3];
        qf_group_slices(&m->cfg, g, len, &s->n[g]);
    }
    if (s->mode == HARP_WCALIB_ASYM) {
        const size_t bytes = (size_t)s->nseq * s->T * m->cfg.dim * sizeof *s->Xf;
        if (!(s->Xf = harp_xmalloc(bytes, "calibration activations"))) {
            qp_seq_end(s);
            return HARP_ERR_OOM;
        }
        memcpy(s->Xf, s->Xq, bytes);
    }
    return HARP_OK;
}

void qp_seq_end(qp_seq *s) {
    harp_free(s->Xq), harp_free(s->Xf);
    for (int g = 0; g < QF_NGROUPS; g++) harp_free(s->H[g]), harp_free(s->Mt[g]);
    memset(s, 0, sizeof *s);
}

/* The layer as a block: dims for `nseq` windows, fp64 weights, its slots (wk) and the same slots
 * without quantizers (rot: the unquantized model, whose rotations are exact). */
typedef struct seq_block {
    harp_blk_dims dm;
    harp_blk_w w;
    harp_blk_wakv wk, rot;
    double *inv;
} seq_block;

static harp_status block_open(const harp_model *m, int layer, const qp_seq *s, seq_block *b) {
    memset(b, 0, sizeof *b);
    HARP_TRY(harp_ldpb_block_of(m, layer, s->T, chunk_windows(s->nseq), &b->dm, &b->inv, &b->w));
    harp_ldpb_block_wakv(m, layer, &b->wk);
    b->rot = b->wk;
    memset(b->rot.aq, 0, sizeof b->rot.aq), memset(b->rot.kvq, 0, sizeof b->rot.kvq);
    return HARP_OK;
}

static void block_close(seq_block *b) {
    harp_blk_w_free(&b->w);
    harp_free(b->inv);
    memset(b, 0, sizeof *b);
}

/* Mt = (H+λI)⁻¹(C+λI)ᵀ; C is overwritten. 0 when H+λI is not positive definite. */
static int target_map(int64_t n, const double *H, double *C, double **Mt) {
    double tr = 0;
    for (int64_t i = 0; i < n; i++) tr += H[i * n + i];
    const double lam = 0.01 * tr / (double)n;
    double *A = harp_xmalloc((size_t)(n * n) * sizeof *A, "sequential calibration solve");
    *Mt = harp_xmalloc((size_t)(n * n) * sizeof **Mt, "sequential calibration target");
    if (!A || !*Mt) {
        harp_free(A);
        return -1;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) A[i * n + j] = H[i * n + j] + (i == j ? lam : 0), (*Mt)[i * n + j] = C[j * n + i] + (i == j ? lam : 0);
    const lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, (lapack_int)n, A, (lapack_int)n, *Mt, (lapack_int)n);
    harp_free(A);
    if (info) harp_free(*Mt), *Mt = NULL;
    return info == 0;
}

harp_status qp_seq_stats(const harp_model *m, int layer, qp_seq *s) {
    const int asym = s->mode == HARP_WCALIB_ASYM;
    seq_block b;
    HARP_TRY(block_open(m, layer, s, &b));
    harp_blk_cache cq = {0}, cf = {0};
    double *C[QF_NGROUPS] = {0};
    harp_status st = harp_blk_cache_alloc_wakv(&b.dm, &b.wk, &cq);
    if (!st && asym) st = harp_blk_cache_alloc_wakv(&b.dm, &b.rot, &cf);
    for (int g = 0; g < QF_NGROUPS && !st; g++) {
        const size_t nn = (size_t)(s->n[g] * s->n[g]);
        harp_free(s->H[g]), harp_free(s->Mt[g]);
        s->Mt[g] = NULL;
        if (!(s->H[g] = harp_xcalloc(nn, sizeof(double), "sequential Hessian")) ||
            (asym && !(C[g] = harp_xcalloc(nn, sizeof(double), "sequential cross moments"))))
            st = HARP_ERR_OOM;
    }
    const int cw = b.dm.nseq, rows = cw * s->T, d = m->cfg.dim;
    for (int w0 = 0; w0 < s->nseq && !st; w0 += cw) {
        const size_t off = (size_t)w0 * s->T * d;
        st = harp_blk_forward(&b.dm, &b.w, s->Xq + off, &cq);
        if (!st && asym) st = harp_blk_forward(&b.dm, &b.w, s->Xf + off, &cf);
        for (int g = 0; g < QF_NGROUPS && !st; g++) {
            const int n = (int)s->n[g];
            const double *X = group_input(&cq, g);
            cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, n, rows, 1.0, X, n, 1.0, s->H[g], n);
            if (asym)
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, rows, 1.0, group_input(&cf, g), n, X, n, 1.0, C[g], n);
        }
        if (!st && asym) memcpy(s->Xf + off, cf.y, (size_t)rows * d * sizeof *s->Xf); /* the unquantized block's output */
    }
    if (!st && asym) s->xf_layer = layer + 1;
    const double N = (double)s->nseq * s->T;
    for (int g = 0; g < QF_NGROUPS && !st; g++) {
        const int64_t n = s->n[g];
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j <= i; j++) s->H[g][i * n + j] = s->H[g][j * n + i] = s->H[g][i * n + j] / N;
        if (!asym) continue;
        for (size_t k = 0; k < (size_t)(n * n); k++) C[g][k] /= N;
        const int ok = target_map(n, s->H[g], C[g], &s->Mt[g]);
        if (ok < 0) st = HARP_ERR_OOM;
        else if (!ok)
            harp_log(HARP_LOG_WARN, "layers.%d.%s: the sequential Hessian is not positive definite; the target stays the "
                     "unquantized weights", layer, qf_group_short[g]);
    }
    for (int g = 0; g < QF_NGROUPS; g++) harp_free(C[g]);
    harp_blk_cache_free(&cq), harp_blk_cache_free(&cf);
    block_close(&b);
    return st;
}

/* b's linears ← the effective weights of the layer's quantized groups in t: each group's product
 * (harp_qtensor_apply, THE CPU product, transforms included) applied to the identity. */
static harp_status quant_weights(const harp_model *m, int layer, const harp_qmodel_params *p, const qf_tensors *t, seq_block *b) {
    qf_config qc;
    HARP_TRY(qf_config_uniform(p->method, p->bits, p->rotation, p->group_size, p->seed, m->cfg.n_layers, &qc));
    if (p->method == HARP_QMETHOD_QTIP) qc.qtip_code = p->qtip_code;
    harp_status st = HARP_OK;
    for (int g = 0; g < QF_NGROUPS && !st; g++) {
        int64_t len[3], n, mo = 0;
        const int ns = qf_group_slices(&m->cfg, g, len, &n);
        for (int i = 0; i < ns; i++) mo += len[i];
        char P[128];
        qf_group_prefix(P, sizeof P, layer, g);
        harp_qtensor qt;
        memset(&qt, 0, sizeof qt);
        float *E = harp_xcalloc((size_t)(n * n), sizeof *E, "identity"), *Y = harp_xmalloc((size_t)(n * mo) * sizeof *Y, "weights");
        st = E && Y ? qf_get_qtensor(t, P, &qc.layers[layer], n, ns, len, &qt) : HARP_ERR_OOM;
        for (int64_t i = 0; !st && i < n; i++) E[i * n + i] = 1.0f;
        if (!st) st = harp_qtensor_apply(&qt, E, n, Y, 0); /* Y = Wᵀ (n × mo) */
        for (int i = 0; !st && i < HARP_BLK_NLIN; i++) {
            if (harp_lin_slots[i].group != g) continue;
            int64_t r0 = 0;
            for (int k = 0; k < harp_lin_slots[i].slice; k++) r0 += len[k];
            const int64_t rl = len[harp_lin_slots[i].slice];
            for (int64_t r = 0; r < rl; r++)
                for (int64_t c = 0; c < n; c++) b->w.lin[i][r * n + c] = Y[c * mo + r0 + r];
        }
        harp_qtensor_free(&qt);
        harp_free(E), harp_free(Y);
    }
    qf_config_free(&qc);
    return st;
}

/* X ← block(X) chunk by chunk, with the slots wk. */
static harp_status run_stream(const seq_block *b, const harp_blk_wakv *wk, const qp_seq *s, int d, double *X) {
    harp_blk_cache c = {0};
    HARP_TRY(harp_blk_cache_alloc_wakv(&b->dm, wk, &c));
    harp_status st = HARP_OK;
    const size_t chunk = (size_t)b->dm.nseq * s->T * d;
    for (int w0 = 0; w0 < s->nseq && !st; w0 += b->dm.nseq) {
        double *x = X + (size_t)w0 * s->T * d;
        st = harp_blk_forward(&b->dm, &b->w, x, &c);
        if (!st) memcpy(x, c.y, chunk * sizeof *x);
    }
    harp_blk_cache_free(&c);
    return st;
}

harp_status qp_seq_advance(const harp_model *m, int layer, const harp_qmodel_params *p, const qf_tensors *t, qp_seq *s) {
    seq_block b;
    HARP_TRY(block_open(m, layer, s, &b));
    harp_status st = s->Xf && s->xf_layer == layer ? run_stream(&b, &b.rot, s, m->cfg.dim, s->Xf) : HARP_OK; /* a resumed layer */
    if (!st && s->Xf) s->xf_layer = layer + 1;
    if (!st) st = quant_weights(m, layer, p, t, &b);
    if (!st) st = run_stream(&b, &b.wk, s, m->cfg.dim, s->Xq);
    block_close(&b);
    return st;
}
