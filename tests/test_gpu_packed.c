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
 * W/A/KV (issue 14): ref-llama offline-rotated with the online R3 / R4 / R_o (the rotations alone: 1. to
 * 3. with the fp32 bounds), then with activation and KV-cache quantizers (W16A8KV8 without rotations,
 * W4A4KV4 with RTN weights and Hadamards), and every W/A/KV folder in $HARP_GPU_PACKED_MODELS. A
 * quantizer turns inputs that differ by a rounding into codes a step apart where they sit on a
 * boundary, so the logits bound of those models is the larger of 1e-3 and twice what the CPU itself
 * moves under a different summation order: 80 tokens (the compared span) in one batch (sgemm) against one
 * token at a time (gemv), measured per model; their perplexity bound likewise: max(2e-3, twice the CPU's
 * own move when the 8 windows run one token at a time). The greedy check (2.) keeps its bound.
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
#include "harp/tokenizer.h"
#include "model/kernels.h"
#include "model/model.h"
#include "ctx_compare.h"
#include "exact_sum_backend.h"
#include "test_util.h"
#include "wakv_exec_util.h"

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
    ctx_cmp noise = {0, 0, 0, -1, 0, 0, 0};
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

/* Whether m carries W/A/KV quantizers (activations or the KV cache). */
static int wakv_quantized(const harp_model *m) {
    const harp_wakv_exec e = harp_model_exec(m);
    return e.act.bits || e.kv.bits;
}

/* The CPU against itself under another summation order, over as many positions as ctx_compare covers
 * (its 16-token prompt and 64 decode steps): 80 tokens in one batch and one token at a time; max relative
 * L2 of the logits over the positions. With activation or KV quantizers the forward is a step function
 * of its inputs: orders that differ by a rounding leave the codes equal until one value sits on a
 * rounding boundary, and from that token on the two caches (and logits) differ by a whole code step --
 * on ref-llama W4A4KV4 the CPU's own two orders first part at position 30 (0.18 relative), W16A4 at 37.
 * So the noise is measured over the compared span, not over the prompt alone. */
static double cpu_order_noise(harp_model *m) {
    const int V = m->cfg.vocab_size, np = 16 + 64;
    harp_ctx *a = NULL, *b = NULL;
    CHECK_OK(ctx_on(m, NULL, HARP_QTYPE_F32, &a));
    CHECK_OK(ctx_on(m, NULL, HARP_QTYPE_F32, &b));
    float *la = malloc(sizeof(float) * (size_t)np * V), *lb = malloc(sizeof(float) * (size_t)V);
    int32_t ids[16 + 64];
    for (int i = 0; i < np; i++) ids[i] = (int32_t)((i * 7919 + 13) % V);   /* ctx_compare's prompt formula */
    double worst = 0;
    if (a && b) {
        CHECK_OK(harp_ctx_eval(a, ids, np, la, 1));
        for (int i = 0; i < np; i++) {
            CHECK_OK(harp_ctx_eval(b, ids + i, 1, lb, 0));
            worst = fmax(worst, cc_rel_l2(lb, la + (size_t)i * V, V));
        }
    }
    harp_ctx_free(a), harp_ctx_free(b);
    free(la), free(lb);
    return worst;
}

/* 1. and 2. for a W/A/KV model (its own KV-cache type on both backends), bound max(1e-3, 2·noise), noise
 * the larger of the CPU's batch-vs-one-token difference and the exactly summed forward's difference from
 * the CPU over the compared span itself (exact_sum_backend.h: the same 16-token prompt and 64 greedy
 * decode steps): on a folder whose two CPU orders happen not to part within the span (ref-llama W4A4KV4
 * RTN folder: 6.3e-7) the GPU's own rounding still may, as an exact summation does (0.173 on that
 * folder, from decode step ~50 on; measured on the 80-token batch prompt instead it had missed the decode
 * steps' boundary crossings). */
static void compare_wakv(harp_model *m, const char *name) {
    const int V = m->cfg.vocab_size;
    harp_backend *g = NULL;
    CHECK_OK(harp_backend_cuda_create(0, &g));
    if (!g) return;
    const double order = cpu_order_noise(m), exact = exact_sum_noise(m), noise = fmax(order, exact), tol = fmax(1e-3, 2 * noise);
    harp_ctx *cg = NULL, *cc = NULL;
    CHECK_OK(ctx_on(m, g, HARP_QTYPE_F32, &cg));
    CHECK_OK(ctx_on(m, NULL, HARP_QTYPE_F32, &cc));
    const struct harp_aquant *kq = NULL;
    const harp_qtype kvt = harp_model_kv_type(m, &kq);
    if (cg && cc) {
        const ctx_cmp r = ctx_compare(cc, cg, V, 16, 64, 128);
        printf("%s (KV cache %s): logits rel L2 gpu vs cpu: prompt %.3g, 64 decode steps max %.3g at step %d, first %.3g (bound %.3g; "
               "the CPU's batch vs one-token order: %.3g, exactly summed: %.3g); greedy 128: %d identical",
               name, harp_qtype_name(kvt), r.prompt, r.dec, r.dec_at, r.dec_first, tol, order, exact, r.same);
        if (r.div >= 0) printf(", first divergence at step %d, cpu top-2 gap %.3g relative", r.div, r.gap);
        printf("\n");
        CHECK_MSG(r.prompt <= tol && r.dec <= tol, "%s: logits differ (prompt %.3g, decode %.3g)", name, r.prompt, r.dec);
        CHECK_MSG(r.div < 0 || r.gap <= 1e-3, "%s: greedy decode diverges at %d with a top-2 gap of %.3g", name, r.div, r.gap);
    }
    harp_ctx_free(cg), harp_ctx_free(cc);
    harp_backend_free(g);
}

/* The CPU's perplexity of the same windows as harp_eval_ppl (BOS + the text, windows of ctx tokens,
 * positions 0 … ctx−2 scored) with every window fed one token at a time: the decode path's summation
 * order instead of the batch's. */
static double cpu_ppl_one_by_one(harp_model *m, const char *text, size_t len, int ctx, int windows) {
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(harp_tokenize(m->tok, text, len, 1, &ids, &n));
    harp_ctx_params cp = harp_ctx_default_params();
    cp.max_tokens = ctx;
    harp_ctx *c = NULL;
    CHECK_OK(harp_ctx_create_ex(m, &cp, &c));
    const int V = m->cfg.vocab_size;
    float *lg = malloc(sizeof(float) * (size_t)V);
    double nll = 0;
    int64_t cnt = 0;
    for (int w = 0; c && lg && w < windows && (size_t)(w + 1) * ctx <= n; w++) {
        const int32_t *t = ids + (size_t)w * ctx;
        harp_ctx_truncate(c, 0);
        for (int i = 0; i + 1 < ctx; i++) {
            CHECK_OK(harp_ctx_eval(c, t + i, 1, lg, 0));
            int am = 0;
            nll += harp_score_row(lg, V, t[i + 1], &am, NULL), cnt++;
        }
    }
    harp_ctx_free(c);
    free(lg);
    harp_free(ids);
    return cnt ? exp(nll / (double)cnt) : NAN;
}

/* Perplexity of the first 8 windows on both backends: within 2e-3 relative; for a model with activation
 * or KV quantizers within max(2e-3, twice what the CPU's own perplexity moves when the windows run one
 * token at a time) -- the logits bound's reasoning (compare_wakv) applied to the perplexity. */
static void compare_ppl(harp_model *m, const char *name, const char *text) {
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
    double tol = 2e-3, noise = 0;
    if (wakv_quantized(m)) {
        noise = fabs(cpu_ppl_one_by_one(m, buf, len, p.ctx, p.max_chunks) / c.ppl - 1);
        tol = fmax(tol, 2 * noise);
    }
    printf("%s: ppl 8 windows: cpu %.6f gpu %.6f rel %.3g (bound %.3g; the CPU one token at a time: %.3g)\n", name, c.ppl, g.ppl,
           fabs(g.ppl / c.ppl - 1), tol, noise);
    CHECK_MSG(fabs(g.ppl / c.ppl - 1) <= tol, "%s: ppl cpu %.6f gpu %.6f", name, c.ppl, g.ppl);
    harp_ppl_result_free(&c), harp_ppl_result_free(&g);
    free(buf);
}

/* HARP_TEST_ONLY=TEXT: only the cases whose name contains TEXT (a device run's bisection). */
static int skipped(const char *name) {
    const char *only = getenv("HARP_TEST_ONLY");
    return only && *only && !strstr(name, only);
}

/* ref-llama offline-rotated with W/A/KV execution slots (wakv_exec_util.h). */
static void check_wakv(const char *dir, const char *text, const char *name, const wx_cfg *c) {
    if (skipped(name)) return;
    harp_model *m = wx_open(dir, c);
    CHECK_MSG(m != NULL, "%s: could not be built", name);
    if (!m) return;
    if (wakv_quantized(m)) compare_wakv(m, name);
    else compare_backends(m, name, 1e-3);
    compare_ppl(m, name, text);
    harp_model_free(m);
}

static void check_model(const char *dir, const char *text_big, const char *text_small) {
    if (skipped(dir)) return;
    harp_model *m = NULL;
    CHECK_OK(harp_model_open(dir, NULL, &m));
    if (!m) return;
    const int V = m->cfg.vocab_size;
    const char *text = V <= 512 ? text_small : text_big;   /* stories260K-shaped folders: TinyStories */
    const harp_qtensor *t = harp_lgroup_qtensor(&m->layers[0].cfg.g[0]);
    if (wakv_quantized(m)) compare_wakv(m, dir);
    else compare_backends(m, dir, t && t->xf.rot_in && harp_rot_get_kind(t->xf.rot_in) == HARP_ROT_BUTTERFLY ? 1e-2 : 1e-3);
    compare_ppl(m, dir, text);
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
    if (skipped(name)) {
        harp_model_free(m);
        return;
    }
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
    const char *rl = t_shared("models/ref-llama");
    const wx_cfg rot_only = {HARP_WAKV_ROT_HADAMARD, 0, 1, 0, 0, 0, 1.0f}, a8kv8 = {HARP_WAKV_ROT_NONE, 0, 0, 0, 8, 8, 1.0f},
                 w4a4kv4 = {HARP_WAKV_ROT_HADAMARD, 0, 1, 4, 4, 4, 0.9f};
    check_wakv(rl, text, "ref-llama, Hadamard R1/R2 + online R3/R4/Ro, fp32 weights", &rot_only);
    check_wakv(rl, text, "ref-llama W16A8KV8, no rotation", &a8kv8);
    check_wakv(rl, text, "ref-llama W4A4KV4 (RTN), Hadamard + online R3/R4/Ro", &w4a4kv4);
    const char *env = getenv("HARP_GPU_PACKED_MODELS");
    char *list = env ? strdup(env) : NULL, *save = NULL;
    for (char *d = list ? strtok_r(list, " ", &save) : NULL; d; d = strtok_r(NULL, " ", &save)) check_model(d, text, small);
    free(list);
    return t_done();
#endif
}
