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
 *      rounds as the GPU's stores do);
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
/* A GPU and a CPU context, both with KV cache elements of type kv (F32 or F16). */
static harp_status ctxs(harp_model *m, harp_qtype kv, harp_ctx **cg, harp_ctx **cc) {
    harp_backend *g = NULL;
    HARP_TRY(harp_backend_cuda_create(0, &g));
    harp_ctx_params p = harp_ctx_default_params();
    p.max_tokens = 256;
    p.max_rows = 64;
    p.backend = g;
    p.kv_qtype = kv;
    harp_status st = harp_ctx_create_ex(m, &p, cg);
    harp_backend_free(g);
    p.backend = NULL;
    if (!st) st = harp_ctx_create_ex(m, &p, cc);
    return st;
}

static const char *kv_name(harp_qtype kv) { return kv == HARP_QTYPE_F16 ? "fp16 cache" : "fp32 cache"; }

static void check_model(const char *dir, const char *text_big, const char *text_small) {
    harp_model *m = NULL;
    CHECK_OK(harp_model_open(dir, NULL, &m));
    if (!m) return;
    const int V = m->cfg.vocab_size;
    const char *text = V <= 512 ? text_small : text_big;   /* stories260K-shaped folders: TinyStories */
    const harp_qtensor *t = harp_lgroup_qtensor(&m->layers[0].cfg.g[0]);
    const double tol = t && t->xf.rot_in && harp_rot_get_kind(t->xf.rot_in) == HARP_ROT_BUTTERFLY ? 1e-2 : 1e-3;
    for (int i = 0; i < 2; i++) {   /* both cache types, each against the CPU with the same cache */
        const harp_qtype kv = i ? HARP_QTYPE_F16 : HARP_QTYPE_F32;
        harp_ctx *cg = NULL, *cc = NULL;
        CHECK_OK(ctxs(m, kv, &cg, &cc));
        if (cg && cc) {
            const ctx_cmp r = ctx_compare(cc, cg, V, 16, 64, 128);
            printf("%s, %s: logits rel L2 gpu vs cpu: prompt (16 rows, GEMM path) %.3g, 64 decode steps (GEMV path) max %.3g "
                   "(bound %.3g); greedy 128: %d identical", dir, kv_name(kv), r.prompt, r.dec, tol, r.same);
            if (r.div >= 0) printf(", first divergence at step %d, cpu top-2 gap %.3g relative", r.div, r.gap);
            printf("\n");
            CHECK_MSG(r.prompt <= tol && r.dec <= tol, "%s, %s: logits differ (prompt %.3g, decode %.3g)", dir, kv_name(kv), r.prompt,
                      r.dec);
            CHECK_MSG(r.div < 0 || r.gap <= 1e-3, "%s, %s: greedy decode diverges at %d with a top-2 gap of %.3g", dir, kv_name(kv),
                      r.div, r.gap);
        }
        harp_ctx_free(cg), harp_ctx_free(cc);
    }

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
    const double tol = rotation == HARP_SYNTH_ROT_HARP ? 1e-2 : 1e-3;
    for (int i = 0; i < 2; i++) {
        const harp_qtype kv = i ? HARP_QTYPE_F16 : HARP_QTYPE_F32;
        harp_ctx *cg = NULL, *cc = NULL;
        CHECK_OK(ctxs(m, kv, &cg, &cc));
        if (cg && cc) {
            const ctx_cmp r = ctx_compare(cc, cg, sp.vocab, 16, 64, 128);
            printf("synthetic E8P2 %s dim %d hidden %d, %s: logits rel L2 gpu vs cpu: prompt %.3g, 64 decode steps max %.3g "
                   "(bound %.3g); greedy 128: %d identical", rotation == HARP_SYNTH_ROT_HARP ? "harp" : "rht", dim, hidden, kv_name(kv),
                   r.prompt, r.dec, tol, r.same);
            if (r.div >= 0) printf(", first divergence at step %d, cpu top-2 gap %.3g relative", r.div, r.gap);
            printf("\n");
            CHECK_MSG(r.prompt <= tol && r.dec <= tol, "synthetic dim %d, %s: logits differ (prompt %.3g, decode %.3g)", dim, kv_name(kv),
                      r.prompt, r.dec);
            CHECK_MSG(r.div < 0 || r.gap <= 1e-3, "synthetic dim %d, %s: greedy decode diverges at %d with a top-2 gap of %.3g", dim,
                      kv_name(kv), r.div, r.gap);
        }
        harp_ctx_free(cg), harp_ctx_free(cc);
    }
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
