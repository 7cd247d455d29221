/* Calibration: Hessian files on stories260K — the accumulated statistics equal a brute-force
 * float64 recomputation from hooked activations, resume keeps finished layers, and damaged or
 * foreign files are rejected with a clear error. */
#include <stdint.h>

#include "core/core.h"
#include "harp.h"
#include "test_util.h"

typedef struct {
    int layer, which, n;
    int64_t rows;
    double *S, *mu;
} brute;

static void brute_hook(void *user, int layer, int which, const float *x, int rows, int n) {
    brute *b = user;
    if (layer != b->layer || which != b->which) return;
    b->n = n;
    if (!b->S) {
        b->S = calloc((size_t)n * n, sizeof(double));
        b->mu = calloc((size_t)n, sizeof(double));
    }
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < n; i++) {
            b->mu[i] += x[(size_t)r * n + i];
            for (int j = 0; j < n; j++) b->S[(size_t)i * n + j] += (double)x[(size_t)r * n + i] * x[(size_t)r * n + j];
        }
    b->rows += rows;
}

int main(void) {
    harp_set_log_level(HARP_LOG_NONE);
    const char *model_path = t_shared("models/stories260K/stories260K.bin");
    const char *text_path = t_shared("data/tinystories/val_head.txt");
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(harp_read_file(text_path, &text, &len));
    if (len > 6000) len = 6000;   /* ~11 windows of 128: the triple search below stays cheap */
    while (len > 0 && ((unsigned char)text[len - 1] & 0xC0) == 0x80) len--;   /* UTF-8 boundary */
    harp_model *m = NULL;
    harp_model_params mp = harp_model_default_params();
    CHECK_OK(harp_model_open(model_path, &mp, &m));
    if (!m) return t_done();
    harp_model_info mi;
    harp_model_get_info(m, &mi);

    const char *dir = t_tmp("calib_stories");
    for (int l = 0; l < 64; l++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/layer_%03d.hess", dir, l);
        remove(p);
    }
    harp_calib_params cp = harp_calib_default_params();
    cp.ctx = 128;
    cp.nseq = 3;
    cp.seed = 7;
    cp.mem_budget_mb = 1;   /* forces several passes over the windows */
    harp_calib_summary s;
    CHECK_OK(harp_calib_run(m, text, len, dir, &cp, &s));
    CHECK(s.n_layers == mi.n_layers && s.layers_done_before == 0 && s.n_windows == 3);
    CHECK(s.passes >= 1);

    /* Brute force for layer 1, statistic "down" (width = hidden_dim = 172): re-run the same windows. */
    int32_t *ids = NULL;
    size_t n_ids = 0;
    CHECK_OK(harp_tokenize(harp_model_tokenizer(m), text, len, 1, &ids, &n_ids));
    harp_hess_layer *h = NULL;
    CHECK_OK(harp_hess_layer_load(dir, 1, m, &h));
    for (int which = 0; which < HARP_HESS_COUNT && h; which++) {
        brute b = {1, which, 0, 0, NULL, NULL};
        harp_ctx *c = NULL;
        CHECK_OK(harp_ctx_create(m, cp.ctx, &c));
        harp_ctx_set_hook(c, brute_hook, &b);
        /* the windows the run picked are not exposed; recompute over all windows and compare counts */
        int total = (int)(n_ids / (size_t)cp.ctx);
        int n = 0;
        const double *H = harp_hess_matrix(h, which, &n);
        CHECK(harp_hess_count(h, which) == (int64_t)cp.nseq * cp.ctx);
        /* find the 3-window subset whose statistics match: try every window's own contribution */
        double *Sw = calloc((size_t)total * n * n, sizeof(double));
        for (int w = 0; w < total; w++) {
            brute bw = {1, which, 0, 0, NULL, NULL};
            harp_ctx_set_hook(c, brute_hook, &bw);
            harp_ctx_truncate(c, 0);
            CHECK_OK(harp_ctx_eval(c, ids + (size_t)w * cp.ctx, cp.ctx, NULL, 0));
            memcpy(Sw + (size_t)w * n * n, bw.S, sizeof(double) * n * n);
            free(bw.S);
            free(bw.mu);
        }
        /* the chosen windows' sum must reproduce H·ct; search all triples (few windows) */
        double best = 1e300;
        for (int a = 0; a < total; a++)
            for (int b2 = a + 1; b2 < total; b2++)
                for (int d = b2 + 1; d < total; d++) {
                    double err = 0, ref = 0;
                    for (int i = 0; i < n * n; i++) {
                        double v = (Sw[(size_t)a * n * n + i] + Sw[(size_t)b2 * n * n + i] + Sw[(size_t)d * n * n + i]) / (double)(3 * cp.ctx);
                        err = fmax(err, fabs(v - H[i]));
                        ref = fmax(ref, fabs(v));
                    }
                    if (err / ref < best) best = err / ref;
                }
        CHECK_MSG(best < 1e-12, "statistic %s: best relative max error %.3g", harp_hess_name(which), best);
        /* symmetric, non-negative diagonal */
        int sym = 1;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) sym &= H[(size_t)i * n + j] == H[(size_t)j * n + i] && (i != j || H[(size_t)i * n + i] >= 0);
        CHECK(sym);
        free(Sw);
        harp_ctx_free(c);
        free(b.S);
        free(b.mu);
    }
    harp_hess_layer_free(h);
    harp_free(ids);

    /* Resume: every layer is kept. */
    CHECK_OK(harp_calib_run(m, text, len, dir, &cp, &s));
    CHECK(s.layers_done_before == mi.n_layers && s.passes == 0);
    /* Another run's parameters into the same folder are refused. */
    harp_calib_params other = cp;
    other.seed = 8;
    CHECK(harp_calib_run(m, text, len, dir, &other, &s) == HARP_ERR_MISMATCH);
    CHECK(strstr(harp_last_error(), "layer_000.hess") != NULL);

    /* Corruption: flip one byte in the payload → checksum error naming the file. */
    char path[4200];
    snprintf(path, sizeof path, "%s/layer_002.hess", dir);
    char *data = NULL;
    size_t n = 0;
    CHECK_OK(harp_read_file(path, &data, &n));
    data[n / 2] ^= 0x40;
    CHECK_OK(harp_write_file_atomic(path, data, n));
    CHECK(harp_hess_layer_load(dir, 2, m, &h) == HARP_ERR_FORMAT);
    CHECK(strstr(harp_last_error(), "layer_002.hess") && strstr(harp_last_error(), "checksum"));
    /* Truncation. */
    CHECK_OK(harp_write_file_atomic(path, data, 100));
    CHECK(harp_hess_layer_load(dir, 2, m, &h) == HARP_ERR_FORMAT);
    free(data);
    /* A damaged layer is recomputed on resume; the others are kept. */
    CHECK_OK(harp_calib_run(m, text, len, dir, &cp, &s));
    CHECK(s.layers_done_before == mi.n_layers - 1);
    CHECK_OK(harp_hess_layer_load(dir, 2, m, &h));
    harp_hess_layer_free(h);

    harp_model_free(m);
    free(text);
    return t_done();
}
