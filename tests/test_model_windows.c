/* The forward pass's windows entry (harp_ctx_eval_windows + harp_ctx_score, the route of the GPU
 * perplexity) on the CPU backend: the logits it keeps are bit-identical to harp_ctx_eval_seqs over
 * the same roots (same plan, same calls), its scores equal harp_score_row on them exactly, KL of a
 * model against a second context of itself is exactly 0 with full top-1 agreement; plus the
 * context parameter checks (harp_ctx_create_ex), the score argument checks and the fp16 KV cache
 * against the fp32 one. Tiny fixtures
 * (sliding window, GQA, biases) and stories260K when ../shared is present. */
#include <math.h>
#include <stdlib.h>

#include "harp.h"
#include "model/kernels.h"
#include "model/model.h"
#include "test_util.h"

static void check_model(harp_model *m, const char *name, int len, int nw) {
    int V = m->cfg.vocab_size, rows = len * nw, n = nw * (len - 1);
    harp_ctx_params p = harp_ctx_default_params();
    p.max_tokens = len;
    p.max_rows = rows;
    harp_ctx *c = NULL, *r = NULL, *s = NULL;
    CHECK_OK(harp_ctx_create_ex(m, &p, &c));
    CHECK_OK(harp_ctx_create_ex(m, &p, &r));
    CHECK_OK(harp_ctx_create_ex(m, &p, &s));
    if (!c || !r || !s) return;
    CHECK(harp_ctx_backend(c) == harp_backend_cpu() && harp_ctx_max_rows(c) == rows);
    int32_t *tok = malloc(sizeof *tok * (size_t)rows), *lr = malloc(sizeof *lr * (size_t)rows);
    int32_t *sr = malloc(sizeof *sr * (size_t)n), *tg = malloc(sizeof *tg * (size_t)n);
    uint32_t seed = 99;
    for (int i = 0; i < rows; i++) {
        seed = seed * 1664525u + 1013904223u;
        tok[i] = (int32_t)((seed >> 8) % (uint32_t)V);
        lr[i] = i;
    }
    for (int w = 0; w < nw; w++)
        for (int i = 0; i < len - 1; i++) {
            sr[w * (len - 1) + i] = w * len + i;
            tg[w * (len - 1) + i] = tok[w * len + i + 1];
        }
    harp_seq seqs[8];
    for (int w = 0; w < nw; w++) seqs[w] = (harp_seq){len, -1};
    float *lg = malloc(sizeof(float) * (size_t)rows * V);
    CHECK_OK(harp_ctx_eval_seqs(s, tok, seqs, nw, lr, rows, lg));
    CHECK_OK(harp_ctx_eval_windows(c, tok, nw, len));
    CHECK_OK(harp_ctx_eval_windows(r, tok, nw, len));
    double *nll = malloc(sizeof(double) * (size_t)n), *kld = malloc(sizeof(double) * (size_t)n);
    int *ag = malloc(sizeof(int) * (size_t)n);
    CHECK_OK(harp_ctx_score(c, r, sr, tg, n, nll, kld, ag));
    int bad = 0, nz = 0;
    for (int j = 0; j < n; j++) {
        int am;
        bad += nll[j] != harp_score_row(lg + (size_t)sr[j] * V, V, tg[j], &am, NULL);
        nz += kld[j] != 0.0 || ag[j] != 1;
    }
    printf("%-24s %d windows of %d: %d scores differ from harp_score_row on eval_seqs logits, %d self-KL rows != 0\n",
           name, nw, len, bad, nz);
    CHECK(!bad && !nz);
    CHECK(harp_ctx_pos(c) == 0);
    int32_t out_row = rows, out_tok = V;
    CHECK(harp_ctx_score(c, NULL, &out_row, tg, 1, nll, NULL, NULL) == HARP_ERR_INVALID_ARG);
    CHECK(harp_ctx_score(c, NULL, sr, &out_tok, 1, nll, NULL, NULL) == HARP_ERR_INVALID_ARG);
    CHECK(harp_ctx_eval_windows(c, tok, nw + 1, len) == HARP_ERR_INVALID_ARG);
    CHECK(harp_ctx_eval_windows(c, tok, 1, len + 1) == HARP_ERR_INVALID_ARG);
    free(tok), free(lr), free(sr), free(tg), free(lg), free(nll), free(kld), free(ag);
    harp_ctx_free(c);
    harp_ctx_free(r);
    harp_ctx_free(s);
}

static void check_params(harp_model *m) {
    harp_ctx *c = NULL;
    harp_ctx_params p = harp_ctx_default_params();
    CHECK(p.max_tokens == 512 && p.max_rows == 0 && p.backend == NULL && p.kv_qtype == HARP_KV_DEFAULT);
    p.max_tokens = 8;
    p.kv_qtype = HARP_QTYPE_INT8;
    CHECK(harp_ctx_create_ex(m, &p, &c) == HARP_ERR_UNSUPPORTED && c == NULL);
    p.kv_qtype = HARP_QTYPE_F32;
    p.max_rows = -1;
    CHECK(harp_ctx_create_ex(m, &p, &c) == HARP_ERR_INVALID_ARG);
    p.max_rows = 0;
    p.max_tokens = 0;
    CHECK(harp_ctx_create_ex(m, &p, &c) == HARP_ERR_INVALID_ARG);
    p.max_tokens = 8;
    CHECK_OK(harp_ctx_create_ex(m, &p, &c));
    CHECK(harp_ctx_max_rows(c) == 8);
    CHECK(!strcmp(harp_backend_name(harp_ctx_backend(c)), "cpu"));
    /* memory: no weights of its own on the CPU (the model's arrays); K and V of 8 rows per layer */
    const harp_model_config *mc = &m->cfg;
    const size_t kv_elems = 2 * (size_t)mc->n_layers * 8 * (size_t)mc->n_kv_heads * mc->head_dim;
    harp_ctx_memory mem;
    CHECK(harp_ctx_memory_get(c, NULL) == HARP_ERR_INVALID_ARG && harp_ctx_memory_get(NULL, &mem) == HARP_ERR_INVALID_ARG);
    CHECK_OK(harp_ctx_memory_get(c, &mem));
    CHECK_MSG(mem.weights == 0 && mem.kv_cache == kv_elems * sizeof(float) && mem.workspace >= 8 * (size_t)mc->dim * sizeof(float),
              "memory: weights %zu, KV %zu (want %zu), workspace %zu", mem.weights, mem.kv_cache, kv_elems * sizeof(float),
              mem.workspace);
    harp_ctx_free(c);
    p.kv_qtype = HARP_QTYPE_F16;
    CHECK_OK(harp_ctx_create_ex(m, &p, &c));
    CHECK_OK(harp_ctx_memory_get(c, &mem));
    CHECK_MSG(mem.kv_cache == kv_elems * 2, "fp16 cache: %zu bytes, want %zu", mem.kv_cache, kv_elems * 2);
    harp_ctx_free(c);
    harp_backend *g = NULL;
    harp_status st = harp_backend_cuda_create(0, &g);
    CHECK(st == HARP_OK || st == HARP_ERR_NO_DEVICE);
    harp_backend_free(g);
}

/* The fp16 cache (kv_qtype F16): the prompt and then one token at a time, against the fp32 cache of
 * the same model. K / V rounded to fp16 move the logits a little (not at all would mean no rounding),
 * and a second fp16 context gives the same bits. */
static void check_f16_cache(harp_model *m, const char *name) {
    enum { N = 12 };
    const int V = m->cfg.vocab_size;
    harp_ctx *c[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        harp_ctx_params p = harp_ctx_default_params();
        p.max_tokens = 32;
        p.kv_qtype = i ? HARP_QTYPE_F16 : HARP_QTYPE_F32;
        CHECK_OK(harp_ctx_create_ex(m, &p, &c[i]));
        if (!c[i]) goto done;
    }
    int32_t tok[N];
    uint32_t seed = 7;
    for (int i = 0; i < N; i++) seed = seed * 1664525u + 1013904223u, tok[i] = (int32_t)((seed >> 8) % (uint32_t)V);
    float *lg = malloc(sizeof(float) * 3 * (size_t)V);
    double worst = 0.0;
    int moved = 0, same = 1;
    for (int step = 0; step < 4; step++) {   /* a prompt of N − 3 tokens, then 3 single tokens */
        const int at = step ? N - 4 + step : 0, n = step ? 1 : N - 3;
        for (int i = 0; i < 3; i++) CHECK_OK(harp_ctx_eval(c[i], tok + at, n, lg + (size_t)i * V, 0));
        double num = 0.0, den = 0.0;
        for (int j = 0; j < V; j++) {
            const double d = (double)lg[V + j] - lg[j];
            num += d * d, den += (double)lg[j] * lg[j];
            moved += lg[V + j] != lg[j];
            same &= lg[V + j] == lg[2 * V + j];
        }
        const double rel = sqrt(num / (den > 0 ? den : 1));
        worst = rel > worst ? rel : worst;
    }
    printf("%-24s fp16 cache: logits rel. RMS %.2e from the fp32 cache's, %d values moved, second run %s\n", name, worst, moved,
           same ? "bit-identical" : "DIFFERENT");
    CHECK(worst < 1e-2 && moved > 0 && same);
    free(lg);
done:
    for (int i = 0; i < 3; i++) harp_ctx_free(c[i]);
}

int main(void) {
    const char *fx[] = {"mistral-tiny", "qwen2-tiny", "llama3-rope-tiny"};
    harp_model_params mp = harp_model_default_params();
    mp.load_tokenizer = 0;
    for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++) {
        harp_model *m = NULL;
        CHECK_OK(harp_model_open(t_data(fx[i]), &mp, &m));
        if (!m) continue;
        check_model(m, fx[i], 11, 3);
        if (i == 0) check_params(m);
        check_f16_cache(m, fx[i]);
        harp_model_free(m);
    }
    harp_model *m = NULL;
    CHECK_OK(harp_model_open(t_shared("models/stories260K/stories260K.bin"), &mp, &m));
    if (m) check_model(m, "stories260K", 37, 4);
    if (m) check_f16_cache(m, "stories260K");
    harp_model_free(m);
    return t_done();
}
