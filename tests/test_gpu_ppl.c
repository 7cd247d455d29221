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
    gp.kld_ref = r;
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
    ps.save_logits = path;
    CHECK_OK(harp_eval_ppl(r, buf, len, &ps, &c));
    harp_ppl_result_free(&c);
    harp_ppl_params pk = p;
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
    const char *st_model = t_shared("models/stories260K/stories260K.bin");
    const char *st_text = t_shared("data/tinystories/val_head.txt");
    const char *rl_model = t_shared("models/ref-llama");
    const char *rl_text = t_shared("data/ref-corpus/test.txt");
    compare(st_model, st_text, 256, 24, 5);   /* 5 windows per launch: a partial last batch */
    compare(rl_model, rl_text, 512, 4, 0);
    return t_done();
#endif
}
