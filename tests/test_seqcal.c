/* Sequential calibration of the quantize pipeline (src/qmodel/seqcal.h) on stories260K with W/A/KV
 * slots (R3, R_o, R4, 4-bit activations per token, 4-bit K/V per head), gptq W4 with w_calib ASYM:
 * (1) the quantized stream it carries through the layers is the model harp runs: after layers
 * 0 … L−1 of the written folder, the attention-norm output of layer L equals what the activation
 * hook sees in harp's inference forward of that folder (fp32 against fp64: within 1e-3 relative, in
 * the Frobenius norm — a flipped 4-bit rounding moves single entries), and it is far closer than the
 * unquantized stream it carries beside it (which is what a stale advance would give);
 * (2) where the two streams agree (layer 0, no quantizers) ASYM's target map is the identity;
 * (3) the refusals: gptq only, a text needed. */
#include <stdint.h>

#include "core/core.h"
#include "harp.h"
#include "io/safetensors.h"
#include "model/model_internal.h"
#include "model/slots.h"
#include "qformat/qformat.h"
#include "qmodel/seqcal.h"
#include "test_util.h"

enum { T = 64, NSEQ = 4, MAXL = 16 };

typedef struct {
    int n_layers, dim;
    float *qkv_in[MAXL]; /* T·NSEQ × dim per layer */
} capture;

static void hook(void *user, int layer, int which, const float *x, int rows, int n) {
    capture *cp = user;
    if (which != 0 || layer >= MAXL || rows != T * NSEQ || n != cp->dim || cp->qkv_in[layer]) return;
    cp->qkv_in[layer] = malloc((size_t)rows * n * sizeof(float));
    memcpy(cp->qkv_in[layer], x, (size_t)rows * n * sizeof(float));
}

static harp_wakv_exec slots(void) {
    harp_wakv_exec e;
    memset(&e, 0, sizeof e);
    e.r3 = e.r4 = e.ro = 1;
    e.act = (harp_aq_fmt){4, 0, 0, 0.9f, 0};
    e.kv = (harp_aq_fmt){4, 0, 8, 0.95f, 1};
    return e;
}

/* ‖a_norm(X) − b‖ / ‖b‖ with a_norm the RMSNorm of layer l's attention. */
static double norm_err(const harp_model *m, int l, const double *X, const float *b) {
    const int d = m->cfg.dim;
    double e2 = 0, b2 = 0;
    for (int r = 0; r < T * NSEQ; r++) {
        double ss = 0;
        for (int j = 0; j < d; j++) ss += X[r * d + j] * X[r * d + j];
        const double inv = 1.0 / sqrt(ss / d + (double)m->cfg.norm_eps);
        for (int j = 0; j < d; j++) {
            const double v = m->layers[l].attn_norm[j] * X[r * d + j] * inv, w = b[r * d + j];
            e2 += (v - w) * (v - w), b2 += w * w;
        }
    }
    return sqrt(e2 / b2);
}

static void stream_test(void) {
    const char *mpath = t_shared("models/stories260K/stories260K.bin");
    const char *tpath = t_shared("data/tinystories/val_head.txt");
    harp_model *m = NULL, *q = NULL;
    CHECK_OK(harp_model_open(mpath, NULL, &m));
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(harp_read_file(tpath, &text, &len));
    if (!m || !text) return;
    len = len < 20000 ? len : 20000;
    const harp_wakv_exec e = slots();
    CHECK_OK(harp_model_set_exec(m, &e));
    harp_qmodel_params p = harp_qmodel_default_params(HARP_QMETHOD_GPTQ, 4);
    p.w_calib = HARP_WCALIB_ASYM, p.calib_text = text, p.calib_text_len = len, p.calib_ctx = T, p.calib_nseq = NSEQ;
    p.resume = 0;
    const char *out = t_tmp("seqcal_q");
    CHECK_OK(harp_quantize_model(m, mpath, NULL, out, &p, NULL));

    /* the folder through harp's forward, with the same slots, on the calibration windows */
    CHECK_OK(harp_model_open(out, NULL, &q));
    if (!q) return;
    CHECK_OK(harp_model_set_exec(q, &e));
    int32_t *ids = NULL;
    size_t n_ids = 0;
    CHECK_OK(harp_tokenize(harp_model_tokenizer(m), text, len, 1, &ids, &n_ids));
    const int nw = (int)(n_ids / T);
    CHECK(nw >= NSEQ);
    int32_t tok[T * NSEQ];
    for (int w = 0; w < NSEQ; w++) memcpy(tok + w * T, ids + (size_t)((int64_t)w * nw / NSEQ) * T, T * sizeof *tok);
    capture cp = {m->cfg.n_layers, m->cfg.dim, {NULL}};
    harp_ctx *c = NULL;
    harp_ctx_params cprm = harp_ctx_default_params();
    cprm.max_tokens = T, cprm.max_rows = T * NSEQ;
    CHECK_OK(harp_ctx_create_ex(q, &cprm, &c));
    CHECK_OK(harp_ctx_set_hook(c, hook, &cp));
    harp_seq seqs[NSEQ];
    for (int w = 0; w < NSEQ; w++) seqs[w] = (harp_seq){T, -1};
    CHECK_OK(harp_ctx_eval_seqs(c, tok, seqs, NSEQ, NULL, 0, NULL));

    /* the pipeline's streams, rebuilt from the folder's tensors on the unquantized model */
    harp_st_file f;
    char *st_path = harp_path_join(out, "model.safetensors");
    CHECK_OK(harp_st_open(st_path, &f));
    free(st_path);
    qf_tensors t = {0};
    t.origin = out;
    CHECK_OK(qf_tensors_from_st(&f, &t));
    harp_model *m2 = NULL;
    CHECK_OK(harp_model_open(mpath, NULL, &m2));
    CHECK_OK(harp_model_set_exec(m2, &e));
    qp_seq s;
    CHECK_OK(qp_seq_begin(m2, &p, &s));
    for (int l = 0; l < m->cfg.n_layers; l++) {
        if (l > 0) {
            CHECK_MSG(cp.qkv_in[l] != NULL, "the hook did not see layer %d's qkv input", l);
            if (!cp.qkv_in[l]) break;
            const double eq = norm_err(m2, l, s.Xq, cp.qkv_in[l]), ef = norm_err(m2, l, s.Xf, cp.qkv_in[l]);
            printf("layer %d attention-norm output vs harp's forward of the folder: quantized stream %.3g, unquantized %.3g\n", l,
                   eq, ef);
            CHECK_MSG(eq < 1e-3 && eq < 0.1 * ef, "layer %d: quantized stream off by %.3g (unquantized stream %.3g)", l, eq, ef);
        }
        CHECK_OK(qp_seq_advance(m2, l, &p, &t, &s));
    }
    qp_seq_end(&s);
    for (int l = 0; l < MAXL; l++) free(cp.qkv_in[l]);
    qf_tensors_free(&t);
    harp_st_close(&f);
    harp_ctx_free(c);
    harp_free(ids), harp_free(text);
    harp_model_free(q), harp_model_free(m), harp_model_free(m2);
}

/* Layer 0 without slots: the quantized and unquantized streams are the same rows, so C = H and the
 * ASYM map (H+λI)⁻¹(C+λI)ᵀ is the identity up to the solve's rounding. */
static void identity_test(void) {
    harp_model *m = NULL;
    CHECK_OK(harp_model_open(t_shared("models/stories260K/stories260K.bin"), NULL, &m));
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(harp_read_file(t_shared("data/tinystories/val_head.txt"), &text, &len));
    if (!m || !text) return;
    harp_qmodel_params p = harp_qmodel_default_params(HARP_QMETHOD_GPTQ, 4);
    p.w_calib = HARP_WCALIB_ASYM, p.calib_text = text, p.calib_text_len = len < 20000 ? len : 20000;
    p.calib_ctx = T, p.calib_nseq = NSEQ;
    qp_seq s;
    CHECK_OK(qp_seq_begin(m, &p, &s));
    CHECK_OK(qp_seq_stats(m, 0, &s));
    for (int g = 0; g < QF_NGROUPS; g++) {
        const int64_t n = s.n[g];
        double e = 0, hd = 0;
        CHECK_MSG(s.Mt[g] != NULL, "group %d: no map", g);
        for (int64_t i = 0; s.Mt[g] && i < n; i++) {
            hd += s.H[g][i * n + i];
            for (int64_t j = 0; j < n; j++) e = fmax(e, fabs(s.Mt[g][i * n + j] - (i == j)));
        }
        printf("layer 0 %s (n %lld): max |Mt - I| = %.3g, mean diag H %.3g\n", qf_group_short[g], (long long)n, e, hd / (double)n);
        CHECK_MSG(e < 1e-9 && hd > 0, "group %d: the map is not the identity (%.3g)", g, e);
    }
    qp_seq_end(&s);
    harp_free(text);
    harp_model_free(m);
}

static void refusals(void) {
    harp_model *m = NULL;
    CHECK_OK(harp_model_open(t_shared("models/stories260K/stories260K.bin"), NULL, &m));
    if (!m) return;
    harp_qmodel_params p = harp_qmodel_default_params(HARP_QMETHOD_QUIP, 2);
    p.w_calib = HARP_WCALIB_SEQ, p.calib_text = "x", p.calib_text_len = 1;
    CHECK(harp_quantize_model(m, "x", NULL, t_tmp("seqcal_bad"), &p, NULL) == HARP_ERR_INVALID_ARG &&
          strstr(harp_last_error(), "applies to gptq"));
    p = harp_qmodel_default_params(HARP_QMETHOD_GPTQ, 4);
    p.w_calib = HARP_WCALIB_SEQ;
    CHECK(harp_quantize_model(m, "x", NULL, t_tmp("seqcal_bad"), &p, NULL) == HARP_ERR_INVALID_ARG &&
          strstr(harp_last_error(), "calibration text"));
    p.w_calib = 7;
    CHECK(harp_quantize_model(m, "x", "h", t_tmp("seqcal_bad"), &p, NULL) == HARP_ERR_INVALID_ARG &&
          strstr(harp_last_error(), "w_calib 7"));
    p.w_calib = HARP_WCALIB_FILES;
    CHECK(harp_quantize_model(m, "x", NULL, t_tmp("seqcal_bad"), &p, NULL) == HARP_ERR_INVALID_ARG);
    CHECK(!strcmp(harp_wcalib_name(HARP_WCALIB_ASYM), "asym") && !harp_wcalib_name(3) && !harp_wcalib_name(-1));
    harp_clear_error();
    harp_model_free(m);
}

int main(void) {
    t_shared("models/stories260K/stories260K.bin"), t_shared("data/tinystories/val_head.txt");
    harp_set_log_level(HARP_LOG_NONE);
    refusals();
    identity_test();
    stream_test();
    return t_done();
}
