/* The CUDA backend's packed linear op, emulated on the CPU inside the real forward pass: a backend
 * that is the CPU backend except for its linear groups, which run through dec_linear_ref (the C
 * twin of what src/cuda/backend_cuda.cu does with a quantized group: scales ⊙ signs, R_V, split fp16
 * activations h + lo, the packed-plane GEMV on both, R_Uᵀ, signs ⊙ slice scales). stories260K is quantized in the
 * test (QuIP#-RHT 2-bit, QuIP#-HARP 2-bit, QuIP# 4-bit, GPTQ 4-bit group 128: widths 64 and 172,
 * neither a multiple of the 128-column tile) and the emulated forward is compared with the CPU's:
 *   logits relative L2 on a 12-token prompt and on 24 decode steps fed the CPU's greedy token, and
 *   48 greedy tokens identical or diverging only at a near tie (CPU top-2 gap ≤ 1e-3 relative).
 * Bound: the 1e-3 everywhere. With plain fp16 activations (one h row, no lo) this
 * emulation measured 1.6e-3 (QuIP#-RHT 2-bit) and 5e-3 (QuIP#-HARP 2-bit) in decode: the reason the
 * engine splits activations (docs/results/decode-gpu.md, "Phase 2").
 * With the argument "qtip" (test_dec_forward_qtip, label slow: the trellis search takes ~20 s of
 * CPU) the folder is QTIP 2-bit RHT with each trellis code (HYB, 1MAD, 3INST) instead.
 * The GPU kernels themselves are checked against the same twins in test_dec_gpu. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "cuda/decode.h"
#include "harp/calib.h"
#include "harp/qmodel.h"
#include "harp/qtensor.h"
#include "model/backend.h"
#include "model/model.h"
#include "ctx_compare.h"
#include "test_util.h"

typedef struct emu_group {
    int packed;
    dec_linear L;
} emu_group;

static harp_backend_i g_vt;
static harp_backend g_emu;

static harp_status emu_load(harp_backend *b, const harp_lgroup *g, void **handle) {
    (void)b;
    emu_group *e = calloc(1, sizeof *e);
    if (!e) return HARP_ERR_OOM;
    const harp_qtensor *t = harp_lgroup_qtensor(g);
    if (t) {
        harp_status st = dec_linear_from_qtensor(t, "emulated group", &e->L);
        if (st) {
            free(e);
            return st;
        }
        e->packed = 1;
    }
    *handle = e;
    return HARP_OK;
}

static void emu_free(harp_backend *b, void *handle) {
    (void)b;
    emu_group *e = handle;
    if (e && e->packed) dec_linear_free(&e->L);
    free(e);
}

static harp_status emu_linear(harp_backend *b, harp_ws *ws, const harp_lgroup *g, const void *handle, const float *X,
                              int rows, float *const *Y) {
    const emu_group *e = handle;
    if (!e->packed) return harp_backend_cpu()->vt->linear(b, ws, g, NULL, X, rows, Y);
    float *y = malloc(sizeof(float) * (size_t)rows * g->out_total);
    if (!y) return HARP_ERR_OOM;
    harp_status st = dec_linear_ref(&e->L, X, rows, y);
    for (int r = 0; !st && r < rows; r++)
        for (int s = 0, col = 0; s < g->n_slices; col += g->out[s++])
            for (int i = 0; i < g->out[s]; i++) {
                const float *bias = g->bias[s];
                Y[s][(size_t)r * g->out[s] + i] = y[(size_t)r * g->out_total + col + i] + (bias ? bias[i] : 0.0f);
            }
    free(y);
    return st;
}

static harp_backend *emu_backend(void) {
    g_vt = *harp_backend_cpu()->vt;
    g_vt.name = "emu";
    g_vt.load_group = emu_load;
    g_vt.free_group = emu_free;
    g_vt.linear = emu_linear;
    g_emu = (harp_backend){&g_vt, NULL, -1, "emu-packed"};
    return &g_emu;
}

static void compare(harp_model *m, const char *tag) {
    const double dec_tol = 1e-3;
    harp_ctx_params p = harp_ctx_default_params();
    p.max_tokens = 128;
    p.backend = emu_backend();
    harp_ctx *ce = NULL, *cc = NULL;
    CHECK_OK(harp_ctx_create_ex(m, &p, &ce));
    CHECK_OK(harp_ctx_create(m, 128, &cc));
    if (ce && cc) {
        const ctx_cmp r = ctx_compare(cc, ce, m->cfg.vocab_size, 12, 24, 48);
        printf("%s: emulated packed forward vs cpu: logits rel L2 prompt %.3g, decode max %.3g; greedy %d/48 identical%s\n",
               tag, r.prompt, r.dec, r.same, r.div < 0 ? "" : " (then a divergence)");
        CHECK_MSG(r.prompt <= 1e-3 && r.dec <= dec_tol, "%s: logits differ (prompt %.3g, decode %.3g, bound %.3g)", tag,
                  r.prompt, r.dec, dec_tol);
        CHECK_MSG(r.div < 0 || r.gap <= 1e-3, "%s: greedy diverges at %d with a top-2 gap of %.3g", tag, r.div, r.gap);
    }
    harp_ctx_free(ce), harp_ctx_free(cc);
}

static void make_text(char *buf, size_t size) {
    static const char *const words[] = {"the", "cat", "sat", "on", "a", "mat", "and", "then", "ran", "to",
                                        "see", "big", "red", "dog", "who", "was", "very", "happy", "today", "Lily"};
    harp_rng r;
    harp_rng_seed(&r, 42);
    size_t o = 0;
    while (o + 16 < size) o += (size_t)snprintf(buf + o, size - o, "%s ", words[harp_rng_u64(&r) % 20]);
}

int main(int argc, char **argv) {
    const int qtip = argc > 1 && !strcmp(argv[1], "qtip");
    harp_set_log_level(HARP_LOG_NONE);
    const char *model = t_shared("models/stories260K/stories260K.bin");
    /* one Hessian file per mode: ctest runs the two modes of this test in parallel */
    const char *hess = t_tmp(qtip ? "dec_forward_qtip_hess" : "dec_forward_hess");
    {
        harp_model *m = NULL;
        CHECK_OK(harp_model_open(model, NULL, &m));
        if (!m) return t_done();
        static char text[20000];
        make_text(text, sizeof text);
        harp_calib_params cp = harp_calib_default_params();
        cp.ctx = 128;
        cp.nseq = 0;
        harp_calib_summary s;
        CHECK_OK(harp_calib_run(m, text, strlen(text), hess, &cp, &s));
        harp_model_free(m);
    }
    static const struct {
        harp_qmethod method;
        int bits;
        harp_qrot rot;
        const char *tag;
        harp_tcode tcode;
        int qtip;
    } cases[] = {{HARP_QMETHOD_QUIP, 2, HARP_QROT_RHT, "quip2-rht", 0, 0},
                 {HARP_QMETHOD_QUIP, 2, HARP_QROT_HARP, "quip2-harp", 0, 0},
                 {HARP_QMETHOD_QUIP, 4, HARP_QROT_RHT, "quip4-rht", 0, 0},
                 {HARP_QMETHOD_GPTQ, 4, HARP_QROT_NONE, "gptq4", 0, 0},
                 {HARP_QMETHOD_QTIP, 2, HARP_QROT_RHT, "qtip2-rht-hyb", HARP_TCODE_HYB, 1},
                 {HARP_QMETHOD_QTIP, 2, HARP_QROT_RHT, "qtip2-rht-1mad", HARP_TCODE_1MAD, 1},
                 {HARP_QMETHOD_QTIP, 2, HARP_QROT_RHT, "qtip2-rht-3inst", HARP_TCODE_3INST, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].qtip != qtip) continue;
        harp_model *m = NULL;
        CHECK_OK(harp_model_open(model, NULL, &m));
        if (!m) continue;
        harp_qmodel_params p = harp_qmodel_default_params(cases[i].method, cases[i].bits);
        p.rotation = cases[i].rot;
        if (cases[i].tcode) p.qtip_code = cases[i].tcode;
        p.keep_model = 1;
        p.seed = 3;
        p.harp.steps = 5;
        char out[512];
        snprintf(out, sizeof out, "%s", t_tmp(cases[i].tag));
        harp_status st = harp_quantize_model(m, model, hess, out, &p, NULL);
        CHECK_OK(st);
        if (!st) compare(m, cases[i].tag);
        harp_model_free(m);
    }
    /* quantized folders named in $HARP_DEC_FORWARD_MODELS (space-separated), e.g. ref-llama ones */
    const char *env = getenv("HARP_DEC_FORWARD_MODELS");
    char *list = env ? strdup(env) : NULL, *save = NULL;
    for (char *d = list ? strtok_r(list, " ", &save) : NULL; d; d = strtok_r(NULL, " ", &save)) {
        harp_model *m = NULL;
        CHECK_OK(harp_model_open(d, NULL, &m));
        if (!m) continue;
        compare(m, d);
        harp_model_free(m);
    }
    free(list);
    return t_done();
}
