/* QTIP (qtip2 / qtip3 / qtip4) through the quantize pipeline and the folder loader (issue 13):
 * stories260K (widths 64 and 172: padded tiles) quantized with each trellis code round-trips to
 * bit-identical logits between the in-memory model and the re-read folder, on the prompt (matmul)
 * and decode (gemv) paths; the folder bytes are identical for 1 and 2 threads; bad trellis planes
 * (truncated code stream, wrong tile count, missing / damaged HYB table, unknown or mismatched code
 * kind) are rejected with one error naming the tensor. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "harp.h"
#include "qformat/qformat.h"
#include "quant/qtype_traits.h"
#include "qmodel_test_util.h"
#include "test_util.h"

static harp_model_params g_par;

static int read_all(const char *path, char **buf, size_t *len) { return harp_read_file(path, buf, len) == HARP_OK; }

/* Quantizes model into out with method qtip; returns the in-memory model (keep_model). */
static harp_model *quantize(const char *model, const char *hess, const char *out, int bits, harp_tcode code, harp_qrot rot) {
    harp_model *m = NULL;
    CHECK_OK(harp_model_open(model, &g_par, &m));
    if (!m) exit(1);
    harp_qmodel_params p = harp_qmodel_default_params(HARP_QMETHOD_QTIP, bits);
    p.qtip_code = code;
    p.rotation = rot;
    p.keep_model = 1;
    p.resume = 0;
    p.seed = 7;
    harp_qmodel_report rep;
    CHECK_OK(harp_quantize_model(m, model, hess, out, &p, &rep));
    if (!rep.rows) exit(1);
    /* K bits of codes + table (hyb: 16 kbit per linear) + signs / Hadamard blobs on these small layers */
    CHECK_MSG(rep.bpw > bits && rep.bpw < bits + (code == HARP_TCODE_HYB ? 3.0 : 1.0), "%s: bpw %.4f", out, rep.bpw);
    for (int i = 0; i < rep.n_rows; i++)
        CHECK_MSG(rep.rows[i].proxy_loss >= 0 && rep.rows[i].proxy_loss < 0.5, "%s %s: proxy loss %g", out, rep.rows[i].name,
                  rep.rows[i].proxy_loss);
    const char *base = strrchr(out, '/');
    printf("%-16s bits %d code %-5s rot %-4s: bpw %.4f, %.1f s\n", base ? base + 1 : out, bits, harp_tcode_name(code),
           harp_qrot_name(rot), rep.bpw, rep.seconds);
    harp_qmodel_report_free(&rep);
    return m;
}

static void roundtrip(const char *model, const char *hess, int bits, harp_tcode code, harp_qrot rot, const char *tag) {
    char out[512];
    snprintf(out, sizeof out, "%s", t_tmp(tag));
    harp_model *m = quantize(model, hess, out, bits, code, rot), *q = NULL;
    CHECK_OK(harp_model_open(out, &g_par, &q));
    if (!q) exit(1);
    CHECK_MSG(strstr(harp_model_quant_desc(q), harp_tcode_name(code)) != NULL, "%s: description '%s'", tag,
              harp_model_quant_desc(q));
    harp_model_info in;
    harp_model_get_info(m, &in);
    const size_t nl = (size_t)QM_NTOK * in.vocab_size;
    float *a = malloc(nl * 4), *b = malloc(nl * 4), *c = malloc(nl * 4), *d = malloc(nl * 4);
    qm_eval_logits(m, a, b);
    qm_eval_logits(q, c, d);
    CHECK_MSG(!memcmp(a, c, nl * 4), "%s: batched logits differ between in-memory and folder", tag);
    CHECK_MSG(!memcmp(b, d, nl * 4), "%s: single-token logits differ between in-memory and folder", tag);
    double md = 0;
    for (size_t i = 0; i < nl; i++) md = fmax(md, fabs((double)a[i] - b[i]));
    CHECK_MSG(md < 1e-3, "%s: gemv vs matmul path max |diff| %g", tag, md);
    free(a), free(b), free(c), free(d);
    harp_model_free(m);
    harp_model_free(q);
}

/* The same run with 1 and 2 threads writes the same bytes. */
static void threads_identical(const char *model, const char *hess) {
    char d1[512], d2[512], f1[600], f2[600];
    snprintf(d1, sizeof d1, "%s", t_tmp("qtip_t1"));
    snprintf(d2, sizeof d2, "%s", t_tmp("qtip_t2"));
    omp_set_num_threads(1);
    harp_model_free(quantize(model, hess, d1, 2, HARP_TCODE_HYB, HARP_QROT_RHT));
    omp_set_num_threads(2);
    harp_model_free(quantize(model, hess, d2, 2, HARP_TCODE_HYB, HARP_QROT_RHT));
    snprintf(f1, sizeof f1, "%s/model.safetensors", d1);
    snprintf(f2, sizeof f2, "%s/model.safetensors", d2);
    char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    CHECK(read_all(f1, &a, &la) && read_all(f2, &b, &lb));
    CHECK_MSG(la == lb && a && b && !memcmp(a, b, la), "qtip folder differs between 1 and 2 threads (%zu vs %zu bytes)", la, lb);
    free(a), free(b);
}

/* ---- bad planes (in memory, through the folder loader's own path) ------------------------------- */

static qf_tensors g_good;
static const char *const P = "model.layers.0.self_attn.o_proj";

/* A copy of g_good with tensor P.suffix replaced by (dt, shape, data) or removed (data NULL). */
static void edited(qf_tensors *out, const char *suffix, harp_st_dtype dt, const int64_t *shape, int nd, const void *data) {
    memset(out, 0, sizeof *out);
    out->origin = "mem";
    char name[160];
    snprintf(name, sizeof name, "%s.%s", P, suffix);
    for (int i = 0; i < g_good.n; i++) {
        const qf_tensor *t = &g_good.t[i];
        if (strcmp(t->name, name)) CHECK_OK(qf_tensors_add(out, t->name, t->dtype, t->shape, t->ndim, t->data));
    }
    if (data) CHECK_OK(qf_tensors_add(out, name, dt, shape, nd, data));
}

static void expect_bad(const qf_tensors *l, const qf_layer_config *lc, int64_t n, const int64_t *len, harp_status want,
                       const char *needle, const char *tag) {
    harp_qtensor w;
    harp_status st = qf_get_qtensor(l, P, lc, n, 1, len, &w);
    const char *msg = harp_last_error();
    CHECK_MSG(st == want && strstr(msg, needle) && strstr(msg, P), "%s: status %d (want %d): %s", tag, st, want, msg);
    printf("rejected as expected (%s): %s\n", tag, msg);
    if (!st) harp_qtensor_free(&w);
}

static void bad_planes(void) {
    /* one 40 × 72 qtip2 linear (3 × 5 tiles, both widths padded), hyb and 1mad */
    const int64_t m = 40, n = 72, len[1] = {40};
    harp_rng rng;
    harp_rng_seed(&rng, 11);
    float *W = malloc(sizeof(float) * (size_t)(m * n));
    double *H = calloc((size_t)(n * n), sizeof(double));
    for (int64_t i = 0; i < m * n; i++) W[i] = (float)harp_rng_normal(&rng);
    for (int64_t i = 0; i < n; i++) H[i * n + i] = 1.0 + 0.1 * (double)(i % 7);
    qf_layer_config lc = {.wtype = HARP_QTYPE_QTIP2, .rotation = HARP_QROT_NONE, .act_type = HARP_QTYPE_F32, .kv_type = HARP_QTYPE_F32};
    for (int code = HARP_TCODE_1MAD; code <= HARP_TCODE_HYB; code += 2) {
        harp_quant_params qp = harp_quant_default_params(HARP_QMETHOD_QTIP, 2);
        qp.qtip_code = (harp_tcode)code;
        harp_qtensor w;
        CHECK_OK(harp_quantize_linear(&qp, m, n, W, H, "bad-planes", &w));
        w.xf.n_slices = 1, w.xf.slice_len[0] = m, w.xf.slice_scale[0] = 1.0f;
        CHECK_OK(harp_qtensor_derive(&w));
        memset(&g_good, 0, sizeof g_good);
        g_good.origin = "mem";
        CHECK_OK(qf_put_qtensor(&g_good, P, &w, NULL, NULL));
        harp_qtensor r;
        CHECK_OK(qf_get_qtensor(&g_good, P, &lc, n, 1, len, &r));
        CHECK(!memcmp(r.planes[0].data, w.planes[0].data, w.planes[0].nbytes) && r.scale0 == w.scale0);
        harp_qtensor_free(&r);
        const uint16_t *codes = w.planes[0].data;
        qf_tensors l;
        int64_t sh[2] = {15, 31}; /* truncated stream: 31 of 32 words per tile */
        edited(&l, "trellis", HARP_ST_U16, sh, 2, codes);
        expect_bad(&l, &lc, n, len, HARP_ERR_SHAPE, "trellis", "truncated code stream");
        qf_tensors_free(&l);
        sh[0] = 14, sh[1] = 32; /* a tile missing */
        edited(&l, "trellis", HARP_ST_U16, sh, 2, codes);
        expect_bad(&l, &lc, n, len, HARP_ERR_SHAPE, "expected [15, 32]", "wrong tile count");
        qf_tensors_free(&l);
        if (code == HARP_TCODE_HYB) {
            edited(&l, "tlut", HARP_ST_U16, NULL, 0, NULL);
            expect_bad(&l, &lc, n, len, HARP_ERR_FORMAT, "HYB", "missing HYB table");
            qf_tensors_free(&l);
            uint16_t tab[1024];
            memcpy(tab, w.planes[1].data, sizeof tab);
            tab[77] = 0x7E00; /* NaN */
            const int64_t ts[2] = {512, 2};
            edited(&l, "tlut", HARP_ST_F16, ts, 2, tab);
            expect_bad(&l, &lc, n, len, HARP_ERR_FORMAT, "not finite", "non-finite HYB table");
            qf_tensors_free(&l);
            memset(tab, 0, sizeof tab);
            edited(&l, "tlut", HARP_ST_F16, ts, 2, tab);
            expect_bad(&l, &lc, n, len, HARP_ERR_FORMAT, "all zero", "zero HYB table");
            qf_tensors_free(&l);
            const int32_t c1 = HARP_TCODE_1MAD;
            const int64_t s1[1] = {1};
            edited(&l, "tcode", HARP_ST_I32, s1, 1, &c1);
            expect_bad(&l, &lc, n, len, HARP_ERR_FORMAT, "no use for", "table with a computed code");
            qf_tensors_free(&l);
        }
        const int32_t bad = 9;
        const int64_t s1[1] = {1};
        edited(&l, "tcode", HARP_ST_I32, s1, 1, &bad);
        expect_bad(&l, &lc, n, len, HARP_ERR_FORMAT, "not a trellis code", "unknown code kind");
        qf_tensors_free(&l);
        qf_tensors_free(&g_good);
        harp_qtensor_free(&w);
    }
    free(W), free(H);
}

/* Folder level: quantization_config.qtip_code unknown, or not what the planes hold. */
static void bad_config(const char *dir_good) {
    char dir[512], cfg[600], src[600];
    snprintf(dir, sizeof dir, "%s", t_tmp("qtip_bad"));
    CHECK_OK(harp_mkdir_p(dir));
    static const char *const files[] = {"model.safetensors", "tokenizer.json"};
    for (int i = 0; i < 2; i++) {
        char a[600], b[600], *t = NULL;
        size_t len = 0;
        snprintf(a, sizeof a, "%s/%s", dir_good, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        if (!harp_file_exists(a) || !read_all(a, &t, &len)) continue;
        CHECK_OK(harp_write_file_atomic(b, t, len));
        free(t);
    }
    snprintf(src, sizeof src, "%s/config.json", dir_good);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    static const struct { const char *to, *needle; harp_status st; } cases[] = {
        {"\"qtip_code\": \"5mad\"", "qtip_code '5mad'", HARP_ERR_FORMAT},
        {"\"qtip_code\": \"1mad\"", "quantization_config.qtip_code says 1mad", HARP_ERR_FORMAT},
    };
    for (int k = 0; k < 2; k++) {
        char *t = NULL;
        size_t len = 0;
        CHECK(read_all(src, &t, &len));
        if (!t) return;
        char *v = strstr(t, "\"qtip_code\"");
        CHECK(v != NULL);
        if (!v) return;
        char *e = strchr(strchr(v + 11, '"') + 1, '"') + 1; /* end of the value string */
        char *nt = malloc(len + 64);
        const size_t pre = (size_t)(v - t);
        memcpy(nt, t, pre);
        size_t o = pre + (size_t)sprintf(nt + pre, "%s", cases[k].to);
        memcpy(nt + o, e, len - (size_t)(e - t));
        o += len - (size_t)(e - t);
        CHECK_OK(harp_write_file_atomic(cfg, nt, o));
        free(nt), free(t);
        harp_model *m = NULL;
        harp_status st = harp_model_open(dir, &g_par, &m);
        CHECK_MSG(st == cases[k].st && strstr(harp_last_error(), cases[k].needle), "config case %d: %d %s", k, st,
                  harp_last_error());
        printf("rejected as expected: %s\n", harp_last_error());
        harp_model_free(m);
    }
}

/* HARP fitted against the trellis target with the refresh schedule of §4.12 (partial refreshes of
 * 4 parts): the loss falls, and the fitted rotations are the same bytes for 1 and 2 threads. */
static void harp_on_qtip(void) {
    const int64_t m = 48, n = 64;
    harp_rng rng;
    harp_rng_seed(&rng, 3);
    float *W = malloc(sizeof(float) * (size_t)(m * n));
    double *H = calloc((size_t)(n * n), sizeof(double));
    for (int64_t i = 0; i < m * n; i++) W[i] = (float)(harp_rng_normal(&rng) * (i % 5 == 0 ? 4.0 : 1.0));
    for (int64_t k = 0; k < 3 * n; k++) { /* H = Σ x xᵀ of correlated inputs */
        double x[64], c = harp_rng_normal(&rng);
        for (int64_t i = 0; i < n; i++) x[i] = harp_rng_normal(&rng) + c * (double)(i % 4);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) H[i * n + j] += x[i] * x[j];
    }
    harp_hessian_regularize(n, H, 0.01, NULL);
    harp_fit_params fp = harp_fit_default_params_qtip(2, HARP_TCODE_HYB);
    fp.steps = 24;
    fp.q_parts = 4;
    uint8_t *blob[2][2] = {{NULL}};
    size_t size[2][2] = {{0}};
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        harp_rot *U = NULL, *V = NULL;
        harp_fit_report r;
        CHECK_OK(harp_fit(&fp, m, n, W, H, 9, "harp-qtip", &U, &V, &r));
        if (!U || !V) exit(1);
        CHECK_MSG(r.proxy_final < r.proxy0, "harp on qtip: proxy %g -> %g", r.proxy0, r.proxy_final);
        if (t == 0) printf("harp on qtip 48x64, 24 steps: loss %.5f -> %.5f (proxy %.5f -> %.5f)\n", r.loss0, r.loss_final,
                           r.proxy0, r.proxy_final);
        CHECK_OK(harp_rot_serialize(U, &blob[t][0], &size[t][0]));
        CHECK_OK(harp_rot_serialize(V, &blob[t][1], &size[t][1]));
        harp_rot_destroy(U), harp_rot_destroy(V);
    }
    omp_set_num_threads(2);
    for (int k = 0; k < 2; k++) {
        CHECK_MSG(size[0][k] == size[1][k] && !memcmp(blob[0][k], blob[1][k], size[0][k]),
                  "harp on qtip: rotation %d differs between 1 and 2 threads", k);
        harp_free(blob[0][k]), harp_free(blob[1][k]);
    }
    fp.gpu = 1; /* no GPU trellis target: refused with a clear error, not ignored */
    harp_rot *U = NULL, *V = NULL;
    CHECK(harp_fit(&fp, m, n, W, H, 9, "harp-qtip", &U, &V, NULL) == HARP_ERR_INVALID_ARG &&
          strstr(harp_last_error(), "GPU"));
    free(W), free(H);
}

int main(void) {
    const char *st = t_shared("models/stories260K/stories260K.bin");
    g_par = harp_model_default_params();
    g_par.tokenizer_path = t_shared("models/stories260K/tok512.bin");
    bad_planes();
    harp_on_qtip();
    char hess[512];
    snprintf(hess, sizeof hess, "%s", t_tmp("qtip_hess_st"));
    if (qm_calibrate(st, &g_par, hess, 64)) return t_done();
    roundtrip(st, hess, 2, HARP_TCODE_HYB, HARP_QROT_RHT, "qtip_st_2_hyb");
    roundtrip(st, hess, 3, HARP_TCODE_1MAD, HARP_QROT_NONE, "qtip_st_3_1mad");
    roundtrip(st, hess, 4, HARP_TCODE_3INST, HARP_QROT_RHT, "qtip_st_4_3inst");
    threads_identical(st, hess);
    bad_config(t_tmp("qtip_st_2_hyb"));
    return t_done();
}
