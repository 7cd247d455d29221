/* The fp64 decoder block of quant/blockfit.h: (1) its hand-written backward pass against central
 * finite differences (fourth order) on a tiny random block at awkward sizes (d 24, 3 query heads, 1 kv head, hidden
 * 40, T 7, 2 sequences; both RoPE layouts), every entry of the input and of every weight, within 1e-6
 * relative; (2) the same with the W/A/KV slots: online rotations at every linear input and R3 after
 * RoPE (exact gradient), and with the activation and K/V quantizers on, the straight-through
 * backward against the finite differences of the surrogate block whose quantizers add their rounding
 * error frozen at the evaluation point; (3) its forward against harp's inference forward
 * (model/forward.c) on stories260K layer 0: the inputs of o, up|gate and down and the next layer's
 * attention-norm output, as the activation hook sees them (before the activation quantizer), within
 * fp32 tolerance, plain and as a W/A/KV model (R3, R_o, R4, 4-bit activations and K/V). */
#include <stdint.h>

#include "core/core.h"
#include "harp.h"
#include "model/slots.h"
#include "qmodel/ldpb.h"
#include "test_util.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* uniform in (−1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 4503599627370496.0 - 1.0;
}

/* L = Σ y ⊙ G for a fixed random G: dL/dy = G. */
static double loss_of(const harp_blk_dims *dm, const harp_blk_w *w, const double *x, harp_blk_cache *c, const double *G) {
    harp_blk_forward(dm, w, x, c);
    double L = 0;
    for (size_t i = 0; i < (size_t)dm->T * dm->nseq * dm->d; i++) L += c->y[i] * G[i];
    return L;
}

/* Worst over every step-th entry of p (len) of |fd − an| / max(|an|, 1e-6·max|an|): the floor keeps
 * entries whose gradient is ~0 from dividing by rounding noise while still testing them absolutely. */
static double check_fd(const char *what, const harp_blk_dims *dm, const harp_blk_w *w, double *x, harp_blk_cache *c,
                       const double *G, double *p, const double *an, size_t len, size_t step) {
    double amax = 0, worst = 0;
    for (size_t i = 0; i < len; i++) amax = fmax(amax, fabs(an[i]));
    for (size_t i = 0; i < len; i += step) {
        const double p0 = p[i], h = 1e-3 * fmax(1.0, fabs(p0));
        double f[4];
        for (int k = 0; k < 4; k++) {
            p[i] = p0 + (k < 2 ? (2 - k) * h : -(k - 1) * h);
            f[k] = loss_of(dm, w, x, c, G);
        }
        p[i] = p0;
        /* fourth-order central difference: truncation O(h⁴) and rounding O(ε/h) both ~1e-12 here */
        const double fd = (8.0 * (f[1] - f[2]) - (f[0] - f[3])) / (12.0 * h);
        const double rel = fabs(fd - an[i]) / fmax(fabs(an[i]), 1e-6 * amax);
        worst = fmax(worst, rel);
    }
    CHECK_MSG(worst <= 1e-6 && amax > 0, "%s: worst relative difference %.3g (max |grad| %.3g)", what, worst, amax);
    return worst;
}

/* Sum over the quantizer sites of c of their nonzero rounding errors; *emax the largest. */
static size_t count_errors(const harp_blk_dims *dm, const harp_blk_cache *c, double *frozen[HARP_BLK_NQS], double *emax) {
    const size_t R = (size_t)dm->T * dm->nseq;
    const size_t width[HARP_BLK_NQS] = {(size_t)dm->d, (size_t)(dm->nh * dm->hd), (size_t)dm->d, (size_t)dm->hid,
                                        (size_t)(dm->nkv * dm->hd), (size_t)(dm->nkv * dm->hd)};
    size_t n = 0;
    *emax = 0;
    for (int s = 0; s < HARP_BLK_NQS; s++) {
        if (!c->qerr[s]) continue;
        frozen[s] = malloc(R * width[s] * sizeof(double));
        memcpy(frozen[s], c->qerr[s], R * width[s] * sizeof(double));
        for (size_t k = 0; k < R * width[s]; k++) n += frozen[s][k] != 0, *emax = fmax(*emax, fabs(frozen[s][k]));
    }
    return n;
}

/* The block with W/A/KV slots wk (NULL: none). With quantizers, the backward of the quantized forward
 * is checked against central differences of the surrogate whose quantizers add the rounding error
 * they made at the evaluation point (what the straight-through estimator differentiates). */
static void grad_test_wk(harp_rope_layout layout, const harp_blk_wakv *wk) {
    double inv[4];
    for (int i = 0; i < 4; i++) inv[i] = pow(10000.0, -2.0 * i / 8.0);
    const harp_blk_dims dm = {24, 3, 1, 8, 40, 7, 2, layout, 1e-5, inv};
    harp_blk_w w, gw;
    harp_blk_cache c, cf;
    CHECK_OK(harp_blk_w_alloc(&dm, &w));
    CHECK_OK(harp_blk_w_alloc(&dm, &gw));
    CHECK_OK(harp_blk_cache_alloc_wakv(&dm, wk, &c));
    const size_t R = (size_t)dm.T * dm.nseq, d = (size_t)dm.d;
    double *x = malloc(R * d * sizeof *x), *G = malloc(R * d * sizeof *G), *dx = malloc(R * d * sizeof *dx);
    for (size_t i = 0; i < R * d; i++) x[i] = 2.0 * urand(), G[i] = urand();
    for (size_t j = 0; j < d; j++) w.attn_norm[j] = 1.0 + 0.3 * urand(), w.ffn_norm[j] = 1.0 + 0.3 * urand();
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(&dm, i, &m, &n);
        for (int64_t k = 0; k < m * n; k++) w.lin[i][k] = urand() * 1.5 / sqrt((double)n);
    }
    const double Lq = loss_of(&dm, &w, x, &c, G);
    CHECK_OK(harp_blk_backward(&dm, &w, &c, G, dx, &gw));
    double *frozen[HARP_BLK_NQS] = {NULL}, emax;
    const size_t n_err = count_errors(&dm, &c, frozen, &emax);
    harp_blk_cache *fc = &c; /* the cache the finite differences run on */
    if (n_err) {
        harp_blk_wakv wf = *wk;
        wf.frozen = (const double *const *)frozen;
        CHECK_OK(harp_blk_cache_alloc_wakv(&dm, &wf, &cf));
        fc = &cf;
        const double L0 = loss_of(&dm, &w, x, fc, G);
        CHECK_MSG(fabs(L0 - Lq) <= 1e-12 * fmax(1.0, fabs(Lq)), "surrogate at the point %.17g, quantized block %.17g", L0, Lq);
    }
    static const char *const names[HARP_BLK_NLIN] = {"Wq", "Wk", "Wv", "Wo", "Wgate", "Wup", "Wdown"};
    /* with slots, every 7th weight (7 is prime to the widths 8, 24, 40: every row and column is hit):
       each forward allocates the rotations' apply buffers, slow under ASan */
    const size_t step = wk ? 7 : 1;
    double worst = check_fd("x", &dm, &w, x, fc, G, x, dx, R * d, 1);
    worst = fmax(worst, check_fd("attn_norm", &dm, &w, x, fc, G, w.attn_norm, gw.attn_norm, d, 1));
    worst = fmax(worst, check_fd("ffn_norm", &dm, &w, x, fc, G, w.ffn_norm, gw.ffn_norm, d, 1));
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(&dm, i, &m, &n);
        worst = fmax(worst, check_fd(names[i], &dm, &w, x, fc, G, w.lin[i], gw.lin[i], (size_t)(m * n), step));
    }
    printf("rope %s%s: worst relative difference backward vs central differences %.3g%s%s\n",
           layout == HARP_ROPE_HALF ? "half" : "interleaved",
           !wk ? "" : n_err ? ", rotations + 4-bit activation / K / V quantizers (STE)" : ", rotations", worst,
           n_err ? " (of the surrogate with the rounding errors frozen)" : "", wk ? "; every x, every 7th weight" : "");
    if (n_err) printf("  %zu nonzero rounding errors, largest %.3g\n", n_err, emax);
    CHECK_MSG(!wk || !wk->aq[0] || n_err > R * d, "quantizers on but only %zu nonzero rounding errors", n_err);
    /* dx = NULL and a skipped weight give the same other gradients */
    harp_blk_w g2;
    CHECK_OK(harp_blk_w_alloc(&dm, &g2));
    harp_free(g2.lin[HARP_BLK_O]), g2.lin[HARP_BLK_O] = NULL;
    CHECK_OK(harp_blk_backward(&dm, &w, &c, G, NULL, &g2));
    CHECK(!memcmp(g2.lin[HARP_BLK_Q], gw.lin[HARP_BLK_Q], sizeof(double) * 24 * 24));
    harp_blk_w_free(&g2);
    for (int s = 0; s < HARP_BLK_NQS; s++) free(frozen[s]);
    free(x), free(G), free(dx);
    harp_blk_cache_free(&c);
    if (n_err) harp_blk_cache_free(&cf);
    harp_blk_w_free(&w), harp_blk_w_free(&gw);
}

static void grad_test(harp_rope_layout layout) {
    grad_test_wk(layout, NULL);
}

/* Rotations at every linear input and R3 (quant = 0: an exact gradient), and with quant the activation
 * quantizers (per token; the o input in groups of 8) and K/V per (token, head). */
static void grad_test_wakv(harp_rope_layout layout, int quant) {
    harp_rot *rot[5];
    CHECK_OK(harp_rot_create(HARP_ROT_RANDOM_ORTHOGONAL, 24, NULL, 1, &rot[0]));
    CHECK_OK(harp_rot_create(HARP_ROT_HADAMARD, 24, NULL, 0, &rot[1]));
    CHECK_OK(harp_rot_create(HARP_ROT_RHT, 24, NULL, 2, &rot[2]));
    CHECK_OK(harp_rot_create(HARP_ROT_HADAMARD, 40, NULL, 0, &rot[3]));
    CHECK_OK(harp_rot_create(HARP_ROT_HADAMARD, 8, NULL, 0, &rot[4]));
    const harp_aq_fmt act = {4, 0, 0, 0.9f, 0}, act_o = {4, 0, 8, 0.9f, 0}, kv = {4, 0, 8, 0.95f, 1};
    harp_blk_wakv wk = {{rot[0], rot[1], rot[2], rot[3]}, rot[4], {NULL}, {NULL}, NULL};
    if (quant) {
        wk.aq[HARP_BLK_IN_QKV] = wk.aq[HARP_BLK_IN_UG] = wk.aq[HARP_BLK_IN_DOWN] = &act, wk.aq[HARP_BLK_IN_O] = &act_o;
        wk.kvq[0] = wk.kvq[1] = &kv;
    }
    grad_test_wk(layout, &wk);
    for (int i = 0; i < 5; i++) harp_rot_destroy(rot[i]);
}

/* ---- against the inference forward ---- */

typedef struct {
    int T, nseq, n[4];
    float *cap[4]; /* layer 0: o, up, down inputs; layer 1: qkv input */
} capture;

static void hook(void *user, int layer, int which, const float *x, int rows, int n) {
    capture *cp = user;
    const int slot = layer == 0 && which >= 1 ? which - 1 : layer == 1 && which == 0 ? 3 : -1;
    if (slot < 0 || rows != cp->T * cp->nseq) return;
    cp->n[slot] = n;
    cp->cap[slot] = malloc((size_t)rows * n * sizeof(float));
    memcpy(cp->cap[slot], x, (size_t)rows * n * sizeof(float));
}

/* max |a − b| / max |b| over rows × n. */
static double rel_err(const double *a, const float *b, size_t len) {
    double e = 0, s = 0;
    for (size_t i = 0; i < len; i++) e = fmax(e, fabs(a[i] - b[i])), s = fmax(s, fabs((double)b[i]));
    return e / s;
}

/* e: the model's W/A/KV slots (NULL: none). */
static void inference_test(const harp_wakv_exec *e) {
    harp_model *m = NULL;
    CHECK_OK(harp_model_open(t_shared("models/stories260K/stories260K.bin"), NULL, &m));
    if (!m) return;
    if (e) CHECK_OK(harp_model_set_exec(m, e));
    const int T = 37, nseq = 2, dim = m->cfg.dim;
    int32_t tok[74];
    for (int i = 0; i < T * nseq; i++) tok[i] = 1 + (i * 37 + 11) % (m->cfg.vocab_size - 1);
    capture cp = {T, nseq, {0}, {NULL}};
    harp_ctx *c = NULL;
    CHECK_OK(harp_ctx_create(m, 128, &c));
    CHECK_OK(harp_ctx_set_hook(c, hook, &cp));
    const harp_seq seqs[2] = {{T, -1}, {T, -1}};
    CHECK_OK(harp_ctx_eval_seqs(c, tok, seqs, 2, NULL, 0, NULL));
    harp_blk_dims dm;
    harp_blk_w w;
    double *inv = NULL;
    CHECK_OK(harp_ldpb_block_of(m, 0, T, nseq, &dm, &inv, &w));
    harp_blk_wakv wk;
    harp_ldpb_block_wakv(m, 0, &wk);
    CHECK_MSG(!e || (wk.r3 && wk.rot_in[HARP_BLK_IN_O] && wk.rot_in[HARP_BLK_IN_DOWN] && wk.aq[HARP_BLK_IN_QKV] &&
                     wk.aq[HARP_BLK_IN_DOWN] && wk.kvq[0] && wk.kvq[1]),
              "the block did not take the layer's W/A/KV slots");
    harp_blk_cache bc;
    CHECK_OK(harp_blk_cache_alloc_wakv(&dm, &wk, &bc));
    const size_t R = (size_t)T * nseq;
    double *x = malloc(R * dim * sizeof *x), *h = malloc(R * dim * sizeof *h);
    for (size_t r = 0; r < R; r++)
        for (int j = 0; j < dim; j++) x[r * dim + j] = m->tok_emb[(size_t)tok[r] * dim + j];
    CHECK_OK(harp_blk_forward(&dm, &w, x, &bc));
    /* the hook sees a linear's input before its activation quantizer */
    double *const pre[HARP_BLK_NIN] = {bc.h1, bc.ctx, bc.h2, bc.a};
    const int width[HARP_BLK_NIN] = {dim, m->cfg.n_heads * m->cfg.head_dim, dim, m->cfg.hidden_dim};
    for (int g = 0; g < HARP_BLK_NIN; g++)
        for (size_t k = 0; bc.qerr[g] && k < R * (size_t)width[g]; k++) pre[g][k] -= bc.qerr[g][k];
    for (size_t r = 0; r < R; r++) { /* the next layer's attention-norm output */
        double ss = 0;
        for (int j = 0; j < dim; j++) ss += bc.y[r * dim + j] * bc.y[r * dim + j];
        for (int j = 0; j < dim; j++) h[r * dim + j] = m->layers[1].attn_norm[j] * bc.y[r * dim + j] / sqrt(ss / dim + dm.eps);
    }
    const double *mine[4] = {bc.ctx, bc.h2, bc.a, h};
    static const char *const names[4] = {"attention context", "ffn-norm output", "silu(gate)*up", "layer 1 attn-norm output"};
    for (int s = 0; s < 4; s++) {
        CHECK_MSG(cp.cap[s] != NULL, "hook did not see %s", names[s]);
        if (!cp.cap[s]) continue;
        const double err = rel_err(mine[s], cp.cap[s], R * (size_t)cp.n[s]);
        printf("stories260K layer 0%s, %s: max |fp64 block - inference| / max |inference| = %.3g\n",
               e ? " (W/A/KV: R3, R_o, R4, A4 per token, KV4 per head)" : "", names[s], err);
        CHECK_MSG(err < 2e-5, "%s: relative error %.3g", names[s], err);
        free(cp.cap[s]);
    }
    free(x), free(h), harp_free(inv);
    harp_blk_cache_free(&bc), harp_blk_w_free(&w);
    harp_ctx_free(c);
    harp_model_free(m);
}

int main(void) {
    harp_set_log_level(HARP_LOG_NONE);
    grad_test(HARP_ROPE_HALF);
    grad_test(HARP_ROPE_INTERLEAVED);
    grad_test_wakv(HARP_ROPE_HALF, 0);
    grad_test_wakv(HARP_ROPE_INTERLEAVED, 1);
    grad_test_wakv(HARP_ROPE_HALF, 1);
    inference_test(NULL);
    harp_wakv_exec e;
    memset(&e, 0, sizeof e);
    e.r3 = e.r4 = e.ro = 1;
    e.act = (harp_aq_fmt){4, 0, 0, 0.9f, 0};
    e.kv = (harp_aq_fmt){4, 0, 8, 0.95f, 1};
    inference_test(&e);
    return t_done();
}
