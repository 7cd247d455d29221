/* GPU perplexity against the CPU path (the CPU forward is the reference for the whole pass), on
 * stories260K (interleaved RoPE, llama2.c) and the first 4 windows of ref-llama (HF half-split RoPE,
 * tied head), plus KLD. Skipped (77) without a CUDA build or a device, or without ../shared.
 * Tolerance: |ppl_gpu / ppl_cpu - 1| ≤ 1e-5 and per-window mean NLL |Δ| ≤ 1e-5. Both sides are fp32
 * with identical formulas; only the summation order inside the sgemms (cuBLAS vs OpenBLAS) and
 * the libm (expf/cosf within 2 ulp) differ, which moves logits by ~1e-6 relative. KLD of a model
 * against a second, separately loaded copy of itself must be < 1e-7 (it is exactly 0: the forward
 * is deterministic), with top-1 agreement 1. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "harp/cuda_eval.h"
#include "harp/eval.h"
#include "model/model.h"
#include "test_util.h"

#ifdef HARP_HAVE_CUDA
static void compare(const char *model, const char *text, int ctx, int max_chunks, int batch) {
    harp_model *m = NULL;
    CHECK_OK(harp_model_open(model, NULL, &m));
    if (!m) return;
    char *buf = NULL;
    size_t len = 0;
    CHECK_OK(harp_read_file(text, &buf, &len));
    harp_ppl_params p = harp_ppl_default_params();
    p.ctx = ctx;
    p.max_chunks = max_chunks;
    harp_gpu_ppl_params gp = harp_gpu_ppl_default_params();
    gp.windows_per_batch = batch;
    harp_ppl_result c, g, g2;
    CHECK_OK(harp_eval_ppl(m, buf, len, &p, &c));
    CHECK_OK(harp_eval_ppl_gpu(m, buf, len, &p, &gp, &g));
    CHECK_OK(harp_eval_ppl_gpu(m, buf, len, &p, &gp, &g2));
    printf("%s: ctx %d, %d windows: cpu ppl %.8f, gpu ppl %.8f, rel diff %.3g\n", model, ctx, c.n_chunks, c.ppl, g.ppl,
           fabs(g.ppl / c.ppl - 1));
    CHECK(g.n_chunks == c.n_chunks && g.n_tokens_scored == c.n_tokens_scored);
    CHECK_MSG(fabs(g.ppl / c.ppl - 1) <= 1e-5, "ppl cpu %.8f gpu %.8f", c.ppl, g.ppl);
    CHECK_MSG(g.ppl == g2.ppl && g.chunk_nll[0] == g2.chunk_nll[0], "two GPU runs differ");
    double worst = 0;
    for (int i = 0; i < c.n_chunks && i < g.n_chunks; i++) {
        double d = fabs(c.chunk_nll[i] - g.chunk_nll[i]);
        worst = d > worst || d != d ? d : worst;
    }
    CHECK_MSG(worst <= 1e-5, "per-window NLL differs by up to %.3g", worst);
    harp_ppl_result_free(&c);
    harp_ppl_result_free(&g);
    harp_ppl_result_free(&g2);

    /* KLD against a second copy of the same model. */
    harp_model *r = NULL;
    harp_model_params mp = harp_model_default_params();
    mp.load_tokenizer = 0;
    CHECK_OK(harp_model_open(model, &mp, &r));
    p.kld_ref = r;
    CHECK_OK(harp_eval_ppl_gpu(m, buf, len, &p, &gp, &g));
    CHECK(g.has_kld);
    CHECK_MSG(g.kld_mean < 1e-7 && g.kld_mean >= 0, "self KLD %.3g", g.kld_mean);
    CHECK_NEAR(g.top1_agree, 1.0, 0);
    harp_ppl_result_free(&g);

    /* A different reference (final norm scaled: a temperature change) must show KL > 0, equal to the
     * KLD the CPU computes from logits saved by that reference (fp16-coded there: 1% tolerance). */
    for (int i = 0; i < r->cfg.dim; i++) r->final_norm[i] *= 1.25f;
    harp_model_unload(r);   /* its weights on the GPU are a copy made before the change */
    p.max_chunks = 2;
    CHECK_OK(harp_eval_ppl_gpu(m, buf, len, &p, &gp, &g));
    char path[4096];
    snprintf(path, sizeof path, "%s/gpu_kld_base.bin", getenv("HARP_TMP") ? getenv("HARP_TMP") : "/tmp");
    harp_model_free(r);
    CHECK_OK(harp_model_open(model, NULL, &r));
    for (int i = 0; i < r->cfg.dim; i++) r->final_norm[i] *= 1.25f;
    harp_ppl_params ps = p;
    ps.kld_ref = NULL;   /* the old reference is gone; the CPU side reads saved logits */
    ps.save_logits = path;
    CHECK_OK(harp_eval_ppl(r, buf, len, &ps, &c));
    harp_ppl_result_free(&c);
    harp_ppl_params pk = p;
    pk.kld_ref = NULL;
    pk.kld_base = path;
    CHECK_OK(harp_eval_ppl(m, buf, len, &pk, &c));
    printf("  KLD vs scaled-norm copy: gpu %.6g (top-1 %.4f), cpu from saved logits %.6g (top-1 %.4f)\n", g.kld_mean,
           g.top1_agree, c.kld_mean, c.top1_agree);
    CHECK_MSG(g.kld_mean > 1e-4, "KLD against a changed model should be clearly positive: %.3g", g.kld_mean);
    CHECK_MSG(fabs(g.kld_mean / c.kld_mean - 1) <= 0.01, "gpu KLD %.6g vs cpu %.6g", g.kld_mean, c.kld_mean);
    CHECK_MSG(fabs(g.top1_agree - c.top1_agree) <= 0.01, "top-1 agreement gpu %.4f cpu %.4f", g.top1_agree,
              c.top1_agree);
    remove(path);
    harp_ppl_result_free(&g);
    harp_ppl_result_free(&c);
    harp_model_free(r);
    free(buf);
    harp_model_free(m);
}

/* The one forward pass on a CUDA context against a CPU context: a prompt in sub-batches of 16
 * rows, then decode one token at a time through the KV cache, then a batch of root sequences
 * (harp_ctx_eval_seqs). Logits within 1e-4·(1+|cpu|) (fp32 both sides; cuBLAS vs OpenBLAS
 * summation order, like the incremental-vs-batched bound of test_model_fixtures). Prefix trees and
 * the activation hook are refused on CUDA with HARP_ERR_UNSUPPORTED. */
static double max_rel(const float *a, const float *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (1 + fabs(b[i]));
        w = e > w || e != e ? e : w;
    }
    return w;
}

static void hook(void *u, int l, int w, const float *x, int r, int n) {
    (void)u, (void)l, (void)w, (void)x, (void)r, (void)n;
}

static void compare_ctx(const char *model) {
    harp_model_params mp = harp_model_default_params();
    mp.load_tokenizer = 0;
    harp_model *m = NULL;
    CHECK_OK(harp_model_open(model, &mp, &m));
    harp_backend *g = NULL;
    CHECK_OK(harp_backend_cuda_create(0, &g));
    if (!m || !g) return;
    harp_ctx_params p = harp_ctx_default_params();
    p.max_tokens = 64;
    p.max_rows = 16;
    p.backend = g;
    p.kv_qtype = HARP_QTYPE_F32;   /* the CPU context's default: like with like (fp16 caches: test_gpu_packed) */
    harp_ctx *cg = NULL, *cc = NULL;
    CHECK_OK(harp_ctx_create_ex(m, &p, &cg));
    CHECK_OK(harp_ctx_create(m, 64, &cc));
    harp_backend_free(g);   /* the context and the model's weights keep it alive */
    if (!cg || !cc) return;
    int V = m->cfg.vocab_size, n = 40;
    int32_t ids[40];
    for (int i = 0; i < n; i++) ids[i] = (int32_t)((i * 7919 + 13) % V);
    float *lc = malloc(sizeof(float) * (size_t)n * V), *lg = malloc(sizeof(float) * (size_t)n * V);
    CHECK_OK(harp_ctx_eval(cc, ids, 37, lc, 1));
    CHECK_OK(harp_ctx_eval(cg, ids, 37, lg, 1));
    double prompt = max_rel(lg, lc, (size_t)37 * V), dec = 0;
    for (int i = 37; i < n; i++) {
        CHECK_OK(harp_ctx_eval(cc, ids + i, 1, lc, 0));
        CHECK_OK(harp_ctx_eval(cg, ids + i, 1, lg, 0));
        double e = max_rel(lg, lc, (size_t)V);
        dec = e > dec ? e : dec;
    }
    CHECK(harp_ctx_pos(cg) == n && harp_ctx_pos(cc) == n);
    /* memory: the GPU holds the linears (fp16 planes of an fp16 checkpoint, fp32 otherwise) and the
     * head, never the token embeddings; the fp32 cache of 64 rows per layer; the CPU holds no weights */
    const harp_model_config *mc = &m->cfg;
    size_t lin = 0;
    for (int l = 0; l < mc->n_layers; l++)
        for (int gi = 0; gi < HARP_LG_COUNT; gi++) lin += (size_t)m->layers[l].cfg.g[gi].in * m->layers[l].cfg.g[gi].out_total;
    const size_t head = (size_t)mc->vocab_size * mc->dim, kv = 2 * (size_t)mc->n_layers * 64 * mc->n_kv_heads * mc->head_dim * 4;
    harp_ctx_memory mg, mcpu;
    CHECK_OK(harp_ctx_memory_get(cg, &mg));
    CHECK_OK(harp_ctx_memory_get(cc, &mcpu));
    printf("%s: cuda context memory: weights %zu (linears %zu + head %zu weights), KV %zu, workspace %zu bytes\n", model,
           mg.weights, lin, head, mg.kv_cache, mg.workspace);
    CHECK_MSG(mg.weights >= 2 * (lin + head) && mg.weights < 4 * (lin + head) + 4 * (size_t)mc->dim * (2 + 2 * mc->n_layers) + 65536 &&
                  mg.kv_cache == kv && mg.workspace > 0 && mcpu.weights == 0,
              "memory report: weights %zu, KV %zu (want %zu), workspace %zu, cpu weights %zu", mg.weights, mg.kv_cache, kv,
              mg.workspace, mcpu.weights);
    harp_seq roots[3] = {{5, -1}, {9, -1}, {2, -1}};
    int32_t lr[4] = {15, 0, 4, 13};
    CHECK_OK(harp_ctx_eval_seqs(cc, ids, roots, 3, lr, 4, lc));
    CHECK_OK(harp_ctx_eval_seqs(cg, ids, roots, 3, lr, 4, lg));
    double seqs = max_rel(lg, lc, (size_t)4 * V);
    printf("%s: cuda vs cpu context, max rel logit diff: prompt %.3g, decode %.3g, root batch %.3g\n", model, prompt, dec,
           seqs);
    CHECK_MSG(prompt <= 1e-4 && dec <= 1e-4 && seqs <= 1e-4, "cuda context differs from the cpu one");
    harp_seq tree[2] = {{5, -1}, {3, 0}};
    const int32_t lt[1] = {7};   /* a valid row of the 8-token tree: only the tree itself is unsupported */
    CHECK(harp_ctx_eval_seqs(cg, ids, tree, 2, lt, 1, lg) == HARP_ERR_UNSUPPORTED);
    CHECK(harp_ctx_set_hook(cg, hook, NULL) == HARP_ERR_UNSUPPORTED);
    CHECK_OK(harp_ctx_set_hook(cc, hook, NULL));
    free(lc);
    free(lg);
    harp_ctx_free(cg);
    harp_ctx_free(cc);
    harp_model_free(m);
}
#endif

int main(void) {
    T_REQUIRE_CUDA();
#ifdef HARP_HAVE_CUDA
    const char *st_model = t_shared("models/stories260K/stories260K.bin");
    const char *st_text = t_shared("data/tinystories/val_head.txt");
    const char *rl_model = t_shared("models/ref-llama");
    const char *rl_text = t_shared("data/ref-corpus/test.txt");
    compare(st_model, st_text, 256, 24, 5);   /* 5 windows per launch: a partial last batch */
    compare(rl_model, rl_text, 512, 4, 0);
    compare_ctx(st_model);
    compare_ctx(rl_model);
    return t_done();
#endif
}
