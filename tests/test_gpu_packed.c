#define _POSIX_C_SOURCE 200809L
/* Packed-weight GPU inference against the CPU (issue 12 acceptance 1): for ref-llama (fp32 path)
 * and every quantized model folder named in $HARP_GPU_PACKED_MODELS (space-separated; made on the
 * device machine by scripts/gpu2_device.sh: QuIP#-RHT 2/3/4-bit, QuIP#-HARP 2-bit, GPTQ 4-bit):
 *   1. a 16-token prompt (the prefill path: dequantized fp16 tiles + GEMM) then 64 decode steps
 *      (the decode GEMV), both backends fed the CPU's greedy token: logits relative L2 error
 *      ‖gpu − cpu‖/‖cpu‖ ≤ 1e-3 at every step (the bound), except folders with HARP
 *      butterflies: the GPU holds their Cayley blocks in fp16 (phase 1: ≤ 2e-3 relative RMS per
 *      transform), which perturbs the rotation itself, so they get 1e-2 — a stated budget, a miss of
 *      the 1e-3 if they need it (the CPU emulation with fp32 blocks, test_dec_forward, is
 *      within 8e-6);
 *   2. 128 greedy tokens on each backend alone: identical, or at the first divergence the CPU's top
 *      two logits within 1e-3 relative (a near tie that fp16 activations may flip);
 *   1. and 2. run twice: with fp32 KV caches on both backends and with fp16 caches on both (the CPU's
 *      rounds as the GPU's stores do; bound: compare_backends);
 *   3. harp_eval_ppl_gpu vs the CPU harp_eval_ppl on the first 8 windows (ctx 512, or the model's
 *      maximum) of the ref-corpus test split (TinyStories for vocab ≤ 512): within 2e-3 relative.
 * Also synthetic E8P2 models (model/synth.c) of dim 1 024 / 2 048, where the backend joins linears by the
 * RHT seam, and one with HARP butterflies: 1. and 2. with the same bounds.
 * Why these bounds: the packed path feeds split fp16 activations (h + lo: the input to ~2^-22) into
 * exact fp16 weight values with fp32 accumulation; the CPU computes in fp32. Skipped (77) without CUDA, a
 * device or ../shared. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "harp/cuda_eval.h"
#include "harp/eval.h"
#include "harp/qtensor.h"
#include "model/model.h"
#include "ctx_compare.h"
#include "test_util.h"

#ifdef HARP_HAVE_CUDA
/* A context of m on backend b (NULL: the CPU) with KV cache elements of type kv (F32 or F16). */
static harp_status ctx_on(harp_model *m, harp_backend *b, harp_qtype kv, harp_ctx **c) {
    harp_ctx_params p = harp_ctx_default_params();
    p.max_tokens = 256;
    p.max_rows = 64;
    p.backend = b;
    p.kv_qtype = kv;
    return harp_ctx_create_ex(m, &p, c);
}

/* 1. and 2. for model m (name: what the lines say), with fp32 caches on both backends, then with fp16
 * caches on both. tol: the fp32 caches' bound. An fp16 cache rounds K and V once more, and where the
 * two backends' fp32 values differ by a fraction of an fp16 step, their roundings can land a step apart:
 * the fp16 caches of two backends may differ by twice what rounding to fp16 moves (one step against
 * half a step) -- so their bound is the larger of tol and twice the CPU's own fp16-vs-fp32 cache
 * difference over the same prompt and as many decode steps (measured here, each side fed the fp32
 * context's greedy token; ref-llama 6.2e-4, the stories260K QuIP#-RHT 2-bit folder 3.8e-3). */
static void compare_backends(harp_model *m, const char *name, double tol) {
    const int V = m->cfg.vocab_size;
    harp_backend *g = NULL;
    CHECK_OK(harp_backend_cuda_create(0, &g));
    if (!g) return;
    ctx_cmp noise = {0, 0, 0, -1, 0};
    for (int i = 0; i < 2; i++) {
        const harp_qtype kv = i ? HARP_QTYPE_F16 : HARP_QTYPE_F32;
        harp_ctx *cg = NULL, *cc = NULL, *c32 = NULL;
        CHECK_OK(ctx_on(m, g, kv, &cg));
        CHECK_OK(ctx_on(m, NULL, kv, &cc));
        if (i && cc) {   /* what the fp16 cache alone moves, on the CPU */
            CHECK_OK(ctx_on(m, NULL, HARP_QTYPE_F32, &c32));
            if (c32) noise = ctx_compare(c32, cc, V, 16, 64, 0);
            harp_ctx_free(c32);
            harp_ctx_truncate(cc, 0);
        }
        const double tp = fmax(tol, 2 * noise.prompt), td = fmax(tol, 2 * noise.dec);
        if (cg && cc) {
            const ctx_cmp r = ctx_compare(cc, cg, V, 16, 64, 128);
            printf("%s, %s cache: logits rel L2 gpu vs cpu: prompt (16 rows, GEMM path) %.3g (bound %.3g), 64 decode steps (GEMV "
                   "path) max %.3g (bound %.3g); greedy 128: %d identical",
                   name, i ? "fp16" : "fp32", r.prompt, tp, r.dec, td, r.same);
            if (i) printf("; the CPU's fp16 vs fp32 cache: prompt %.3g, decode %.3g", noise.prompt, noise.dec);
            if (r.div >= 0) printf(", first divergence at step %d, cpu top-2 gap %.3g relative", r.div, r.gap);
            printf("\n");
            CHECK_MSG(r.prompt <= tp && r.dec <= td, "%s, %s cache: logits differ (prompt %.3g, decode %.3g)", name, i ? "fp16" : "fp32",
                      r.prompt, r.dec);
            CHECK_MSG(r.div < 0 || r.gap <= 1e-3, "%s, %s cache: greedy decode diverges at %d with a top-2 gap of %.3g", name,
                      i ? "fp16" : "fp32", r.div, r.gap);
        }
        harp_ctx_free(cg), harp_ctx_free(cc);
    }
    harp_backend_free(g);
}

static void check_model(const char *dir, const char *text_big, const char *text_small) {
    harp_model *m = NULL;
    CHECK_OK(harp_model_open(dir, NULL, &m));
    if (!m) return;
    const int V = m->cfg.vocab_size;
    const char *text = V <= 512 ? text_small : text_big;   /* stories260K-shaped folders: TinyStories */
    const harp_qtensor *t = harp_lgroup_qtensor(&m->layers[0].cfg.g[0]);
    compare_backends(m, dir, t && t->xf.rot_in && harp_rot_get_kind(t->xf.rot_in) == HARP_ROT_BUTTERFLY ? 1e-2 : 1e-3);

    /* perplexity, first 8 windows */
    char *buf = NULL;
    size_t len = 0;
    CHECK_OK(harp_read_file(text, &buf, &len));
    harp_ppl_params p = harp_ppl_default_params();
    p.ctx = m->cfg.max_seq_len < 512 ? m->cfg.max_seq_len : 512;
    p.max_chunks = 8;
    harp_gpu_ppl_params gp = harp_gpu_ppl_default_params();
    harp_ppl_result c, g;
    memset(&c, 0, sizeof c), memset(&g, 0, sizeof g);
    CHECK_OK(harp_eval_ppl(m, buf, len, &p, &c));
    CHECK_OK(harp_eval_ppl_gpu(m, buf, len, &p, &gp, &g));
    printf("%s: ppl 8 windows: cpu %.6f gpu %.6f rel %.3g\n", dir, c.ppl, g.ppl, fabs(g.ppl / c.ppl - 1));
    CHECK_MSG(fabs(g.ppl / c.ppl - 1) <= 2e-3, "%s: ppl cpu %.6f gpu %.6f", dir, c.ppl, g.ppl);
    harp_ppl_result_free(&c), harp_ppl_result_free(&g);
    free(buf);
    harp_model_free(m);
}

/* A SYNTHETIC model (src/model/synth.c: seeded random E8P2 codes) of widths where the CUDA backend joins
 * o → up|gate and down → the next q|k|v by the RHT seam (dim 1 024 or 2 048; the folders here are
 * narrower), and the same with HARP butterflies (no seam): its logits against the CPU's as above. */
static void check_synthetic(int dim, int hidden, int rotation) {
    harp_synth_params sp = harp_synth_default_params();
    sp.dim = dim, sp.hidden = hidden, sp.n_heads = dim / 64, sp.n_kv_heads = dim / 256, sp.vocab = 1000, sp.n_layers = 2;
    sp.max_seq_len = 256, sp.qtype = HARP_QTYPE_E8P2, sp.rotation = rotation;
    harp_model *m = NULL;
    CHECK_OK(harp_model_synthetic(&sp, &m));
    if (!m) return;
    char name[96];
    snprintf(name, sizeof name, "synthetic E8P2 %s dim %d hidden %d", rotation == HARP_SYNTH_ROT_HARP ? "harp" : "rht", dim, hidden);
    compare_backends(m, name, rotation == HARP_SYNTH_ROT_HARP ? 1e-2 : 1e-3);
    harp_model_free(m);
}
#endif

int main(void) {
#ifndef HARP_HAVE_CUDA
    printf("SKIP: built without -DHARP_CUDA=ON\n");
    return 77;
#else
    if (!harp_cuda_available()) {
        printf("SKIP: %s\n", harp_last_error());
        return 77;
    }
    const char *text = t_shared("data/ref-corpus/test.txt"), *small = t_shared("data/tinystories/val_head.txt");
    check_model(t_shared("models/ref-llama"), text, small);
    check_synthetic(1024, 2048, HARP_SYNTH_ROT_RHT);
    check_synthetic(2048, 3072, HARP_SYNTH_ROT_RHT);
    check_synthetic(1024, 2048, HARP_SYNTH_ROT_HARP);
    const char *env = getenv("HARP_GPU_PACKED_MODELS");
    char *list = env ? strdup(env) : NULL, *save = NULL;
    for (char *d = list ? strtok_r(list, " ", &save) : NULL; d; d = strtok_r(NULL, " ", &save)) check_model(d, text, small);
    free(list);
    return t_done();
#endif
}
