/* Quantized model folders: for every method / bit width (and several rotations) on the mistral-tiny
 * fixture (fused slices of unequal height, untied head) the in-memory quantized model and the
 * folder re-read from disk give bit-identical logits on both the prompt (matmul) and the decode
 * (gemv) paths; 8-bit RTN stays close to the fp32 model (also on qwen2-tiny: q/k/v biases, tied
 * head); stories260K (width 172, not a multiple of 8) round-trips with 3-bit codes; damaged folders are rejected with messages naming the tensor. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "harp.h"
#include "io/safetensors.h"
#include "qmodel_test_util.h"
#include "test_util.h"

typedef struct { harp_qmethod method; int bits; harp_qrot rot; } qcase;

static harp_model_params g_src, g_dst;

static void roundtrip_case(const char *model_path, const char *hess, const qcase *qc, const char *tag, double fp_tol) {
    harp_model *m = NULL, *fp = NULL, *q = NULL;
    CHECK_OK(harp_model_open(model_path, &g_src, &m));
    CHECK_OK(harp_model_open(model_path, &g_src, &fp));
    if (!m || !fp) exit(1);
    harp_model_info in;
    harp_model_get_info(m, &in);
    size_t nl = (size_t)QM_NTOK * in.vocab_size;
    float *a = malloc(nl * 4), *b = malloc(nl * 4), *c = malloc(nl * 4), *d = malloc(nl * 4), *f = malloc(nl * 4),
          *g = malloc(nl * 4);
    harp_qmodel_params p = harp_qmodel_default_params(qc->method, qc->bits);
    p.rotation = qc->rot;
    p.keep_model = 1;
    p.group_size = 32;
    p.seed = 3;
    char out[512];
    snprintf(out, sizeof out, "%s", t_tmp(tag));
    harp_qmodel_report rep;
    CHECK_OK(harp_quantize_model(m, model_path, hess, out, &p, &rep));
    if (!rep.rows) exit(1);
    /* group 32 with fp32 scale + 8-bit zero adds 1.25 bits; signs and Hadamard blobs < 0.5 bits at these
       sizes; the dense random / Kronecker rotations store their matrices (large on tiny layers) */
    double extra = (qc->method == HARP_QMETHOD_QUIP ? 0.0 : 1.25) + (qc->rot == HARP_QROT_NONE ? 0.01 : 0.5);
    if (qc->rot == HARP_QROT_RANDOM || qc->rot == HARP_QROT_KRON) extra = 1e9;
    CHECK_MSG(rep.bpw > qc->bits && rep.bpw < qc->bits + extra, "%s: bpw %.4f", tag, rep.bpw);
    for (int i = 0; i < rep.n_rows; i++)
        CHECK_MSG(rep.rows[i].proxy_loss >= 0 && rep.rows[i].proxy_loss < 1.0, "%s %s: proxy loss %g", tag,
                  rep.rows[i].name, rep.rows[i].proxy_loss);
    harp_qmodel_report_free(&rep);
    CHECK_OK(harp_model_open(out, &g_dst, &q));
    if (!q) exit(1);
    CHECK_MSG(harp_model_quant_desc(q)[0] != 0, "%s: no quantization description", tag);
    qm_eval_logits(m, a, b);
    qm_eval_logits(q, c, d);
    qm_eval_logits(fp, f, g);
    CHECK_MSG(!memcmp(a, c, nl * 4), "%s: batched logits differ between in-memory and folder", tag);
    CHECK_MSG(!memcmp(b, d, nl * 4), "%s: single-token logits differ between in-memory and folder", tag);
    double md = 0, mfp = 0, mag = 0;
    for (size_t i = 0; i < nl; i++) {
        md = fmax(md, fabs((double)a[i] - b[i]));
        mfp = fmax(mfp, fabs((double)a[i] - f[i]));
        mag = fmax(mag, fabs((double)f[i]));
    }
    mfp /= mag; /* relative to the largest fp32 logit */
    CHECK_MSG(md < 1e-3, "%s: gemv vs matmul path max |diff| %g", tag, md);
    if (fp_tol > 0) CHECK_MSG(mfp < fp_tol, "%s: max |logit - fp32| / max |fp32| = %g >= %g", tag, mfp, fp_tol);
    printf("%-18s max|gemv-matmul| %.2e  max|q-fp|/max|fp| %.4f (max|fp| %.2f)\n", tag, md, mfp, mag);
    free(a), free(b), free(c), free(d), free(f), free(g);
    harp_model_free(m);
    harp_model_free(fp);
    harp_model_free(q);
}

/* ---- damaged folders ----------------------------------------------------------------------- */

static void copy_file(const char *src, const char *dst) {
    char *t = NULL;
    size_t n = 0;
    CHECK_OK(harp_read_file(src, &t, &n));
    CHECK_OK(harp_write_file_atomic(dst, t, n));
    free(t);
}

static void clone_folder(const char *src, const char *dst) {
    harp_mkdir_p(dst);
    static const char *const names[] = {"config.json", "model.safetensors", "tokenizer.json"};
    for (int i = 0; i < 3; i++) {
        char *a = harp_path_join(src, names[i]), *b = harp_path_join(dst, names[i]);
        if (harp_file_exists(a)) copy_file(a, b);
        free(a), free(b);
    }
}

/* Byte offset (in the file) of element 0 of tensor `name`. */
static int64_t tensor_offset(const char *file, const char *name) {
    harp_st_file f;
    if (harp_st_open(file, &f)) return -1;
    const harp_st_tensor *t = harp_st_find(&f, name);
    int64_t off = t ? (int64_t)(f.data - f.map.data) + (int64_t)t->begin : -1;
    harp_st_close(&f);
    return off;
}

static void patch(const char *file, int64_t off, const void *bytes, size_t n) {
    char *t = NULL;
    size_t len = 0;
    CHECK_OK(harp_read_file(file, &t, &len));
    CHECK(off >= 0 && (size_t)off + n <= len);
    if (off >= 0 && (size_t)off + n <= len) memcpy(t + off, bytes, n);
    CHECK_OK(harp_write_file_atomic(file, t, len));
    free(t);
}

/* In file path, the character at offset `at` of the first occurrence of `find` becomes c. */
static void patch_text(const char *path, const char *find, int at, char c) {
    char *t = NULL;
    size_t len = 0;
    CHECK_OK(harp_read_file(path, &t, &len));
    char *v = t ? strstr(t, find) : NULL;
    CHECK_MSG(v != NULL, "%s: no '%s'", path, find);
    if (v) {
        v[at] = c;
        CHECK_OK(harp_write_file_atomic(path, t, len));
    }
    free(t);
}

static void expect_reject(const char *dir, harp_status want, const char *needle1, const char *needle2) {
    harp_model *m = NULL;
    harp_status st = harp_model_open(dir, &g_dst, &m);
    const char *msg = harp_last_error();
    CHECK_MSG(st == want, "%s: status %d, expected %d (%s)", dir, st, want, msg);
    CHECK_MSG(strstr(msg, needle1) && (!needle2 || strstr(msg, needle2)), "message lacks '%s'/'%s': %s", needle1,
              needle2 ? needle2 : "", msg);
    printf("rejected as expected: %s\n", msg);
    harp_model_free(m);
}

static void corrupt_tests(const char *quip_dir, const char *rtn_dir) {
    char dir[512], st[600], cfg[600];
    snprintf(dir, sizeof dir, "%s", t_tmp("qm_bad"));
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);

    clone_folder(quip_dir, dir); /* rotation blob checksum */
    int64_t o = tensor_offset(st, "model.layers.1.mlp.down_proj.rot_in");
    uint8_t x = 0x5a;
    patch(st, o + 40, &x, 1);
    expect_reject(dir, HARP_ERR_FORMAT, "model.layers.1.mlp.down_proj.rot_in", NULL);

    clone_folder(quip_dir, dir); /* non-finite scale */
    float nan = NAN;
    patch(st, tensor_offset(st, "model.layers.0.self_attn.o_proj.wscale"), &nan, 4);
    expect_reject(dir, HARP_ERR_NUMERIC, "model.layers.0.self_attn.o_proj.wscale", "non-finite");

    clone_folder(quip_dir, dir); /* sign vector entry 0 */
    int8_t z = 0;
    patch(st, tensor_offset(st, "model.layers.0.self_attn.qkv_proj.su") + 3, &z, 1);
    expect_reject(dir, HARP_ERR_FORMAT, "model.layers.0.self_attn.qkv_proj.su", "+1 or -1");

    clone_folder(quip_dir, dir); /* missing tensor: rename it in the header (same length) */
    {
        char *t = NULL;
        size_t len = 0;
        CHECK_OK(harp_read_file(st, &t, &len));
        char *h = strstr(t + 8, "model.layers.1.self_attn.qkv_proj.codes\"");
        CHECK(h != NULL);
        if (h) h[38] = 'z';
        CHECK_OK(harp_write_file_atomic(st, t, len));
        free(t);
    }
    expect_reject(dir, HARP_ERR_NOT_FOUND, "missing tensor 'model.layers.1.self_attn.qkv_proj.codes'", NULL);

    clone_folder(quip_dir, dir); /* unknown version */
    patch_text(cfg, "\"version\":\t1", 11, '7');
    expect_reject(dir, HARP_ERR_UNSUPPORTED, "config.json", "version 7");

    clone_folder(rtn_dir, dir); /* scalar zero point out of range for 3-bit codes */
    uint8_t big = 9;
    patch(st, tensor_offset(st, "model.layers.0.mlp.down_proj.zeros") + 2, &big, 1);
    expect_reject(dir, HARP_ERR_FORMAT, "model.layers.0.mlp.down_proj.zeros", "out of range");

    clone_folder(rtn_dir, dir); /* wrong shape: config says a different group size */
    patch_text(cfg, "\"group_size\":\t32", 15, '1');
    expect_reject(dir, HARP_ERR_SHAPE, "scales", "expected");
}

int main(void) {
    /* mistral-tiny has vocab 512 and no tokenizer: calibrate with the stories260K tok512.bin */
    const char *model = t_data("mistral-tiny");
    g_src = harp_model_default_params();
    g_src.tokenizer_path = t_shared("models/stories260K/tok512.bin");
    g_dst = harp_model_default_params();
    g_dst.load_tokenizer = 0;
    char hess[512];
    snprintf(hess, sizeof hess, "%s", t_tmp("qm_hess_qwen2"));
    if (qm_calibrate(model, &g_src, hess, 32)) return t_done();
    static const qcase cases[] = {
        {HARP_QMETHOD_RTN, 8, HARP_QROT_NONE},   {HARP_QMETHOD_RTN, 2, HARP_QROT_NONE},
        {HARP_QMETHOD_RTN, 3, HARP_QROT_NONE},   {HARP_QMETHOD_RTN, 4, HARP_QROT_RHT},
        {HARP_QMETHOD_GPTQ, 2, HARP_QROT_NONE},  {HARP_QMETHOD_GPTQ, 3, HARP_QROT_KRON},
        {HARP_QMETHOD_GPTQ, 4, HARP_QROT_NONE},  {HARP_QMETHOD_QUIP, 2, HARP_QROT_RHT},
        {HARP_QMETHOD_QUIP, 3, HARP_QROT_RHT},   {HARP_QMETHOD_QUIP, 4, HARP_QROT_RHT},
        {HARP_QMETHOD_QUIP, 2, HARP_QROT_NONE},  {HARP_QMETHOD_RTN, 2, HARP_QROT_RANDOM},
        {HARP_QMETHOD_RTN, 3, HARP_QROT_GSR},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char tag[64];
        snprintf(tag, sizeof tag, "qm_%s%d_%s", cases[i].method == HARP_QMETHOD_RTN ? "rtn" : cases[i].method == HARP_QMETHOD_GPTQ ? "gptq" : "quip",
                 cases[i].bits, harp_qrot_name(cases[i].rot));
        roundtrip_case(model, hess, &cases[i], tag, cases[i].bits == 8 ? 0.05 : 0);
    }
    corrupt_tests(t_tmp("qm_quip2_rht"), t_tmp("qm_rtn3_none"));

    /* qwen2-tiny: q/k/v biases (stored unquantized beside the groups) and a tied head */
    const char *qw = t_data("qwen2-tiny");
    char qh[512];
    snprintf(qh, sizeof qh, "%s", t_tmp("qm_hess_qwen2"));
    if (qm_calibrate(qw, &g_src, qh, 32)) return t_done();
    qcase qwc = {HARP_QMETHOD_RTN, 8, HARP_QROT_RHT};
    roundtrip_case(qw, qh, &qwc, "qm_qwen2_rtn8_rht", 0.05);

    /* stories260K: width 172 (down_proj input) with 3-bit packed codes, llama2.c source */
    const char *st = t_shared("models/stories260K/stories260K.bin");
    g_src = harp_model_default_params();
    g_dst = harp_model_default_params();
    char sh[512];
    snprintf(sh, sizeof sh, "%s", t_tmp("qm_hess_st"));
    if (qm_calibrate(st, NULL, sh, 64)) return t_done();
    qcase sc = {HARP_QMETHOD_RTN, 3, HARP_QROT_RHT};
    roundtrip_case(st, sh, &sc, "qm_st_rtn3_rht", 0);
    return t_done();
}
