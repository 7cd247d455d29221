/* Parity of the import + forward paths with transformers on the tiny random fixtures made by
 * scripts/make_fixtures.py (tests/data/<name>/ref.json): Mistral (sliding window, head_dim ≠
 * hidden/heads, BF16, untied head), Qwen2 (q/k/v biases, F16, tied), Llama with llama3 and linear
 * RoPE scaling. Logits at all 24 positions within 1e-4, both batched (sgemm) and one token at a
 * time through the KV cache (gemv). */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "harp.h"
#include "test_json.h"
#include "test_util.h"

static void check_fixture(const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/ref.json", t_data(name));
    cJSON *ref = t_load_json(p);
    CHECK_MSG(ref != NULL, "%s: cannot read ref.json", name);
    if (!ref) return;
    harp_model_params mp = harp_model_default_params();
    mp.load_tokenizer = 0;
    harp_model *m = NULL;
    CHECK_OK(harp_model_open(t_data(name), &mp, &m));
    if (!m) {
        cJSON_Delete(ref);
        return;
    }
    harp_model_info info;
    harp_model_get_info(m, &info);
    int V = info.vocab_size;
    int32_t ids[64];
    int n = 0;
    for (const cJSON *e = cJSON_GetObjectItem(ref, "input_ids")->child; e && n < 64; e = e->next) ids[n++] = (int32_t)e->valuedouble;
    float *lg = malloc(sizeof(float) * (size_t)n * V), *one = malloc(sizeof(float) * (size_t)V);
    harp_ctx *c = NULL;
    CHECK_OK(harp_ctx_create(m, n, &c));
    CHECK_OK(harp_ctx_eval(c, ids, n, lg, 1));
    double maxd = 0, maxd_inc = 0;
    int pos = 0;
    for (const cJSON *row = cJSON_GetObjectItem(ref, "logits")->child; row && pos < n; row = row->next, pos++) {
        int j = 0;
        for (const cJSON *v = row->child; v && j < V; v = v->next, j++) {
            double d = fabs(lg[(size_t)pos * V + j] - v->valuedouble);
            if (d > maxd) maxd = d;
        }
    }
    /* Token by token through the cache must reproduce the batched logits. */
    harp_ctx_truncate(c, 0);
    for (int i = 0; i < n; i++) {
        CHECK_OK(harp_ctx_eval(c, ids + i, 1, one, 0));
        for (int j = 0; j < V; j++) {
            double d = fabs(one[j] - lg[(size_t)i * V + j]);
            if (d > maxd_inc) maxd_inc = d;
        }
    }
    printf("%-24s %-20s logits max |diff| vs transformers %.2e, incremental vs batched %.2e\n", name, info.arch, maxd, maxd_inc);
    CHECK(pos == n);
    CHECK_MSG(maxd <= 1e-4, "%s: logits differ from transformers by %.3g", name, maxd);
    CHECK_MSG(maxd_inc <= 1e-4, "%s: KV-cache path differs from batched by %.3g", name, maxd_inc);
    free(lg);
    free(one);
    harp_ctx_free(c);
    harp_model_free(m);
    cJSON_Delete(ref);
}

int main(void) {
    const char *fx[] = {"mistral-tiny", "qwen2-tiny", "llama3-rope-tiny", "llama-linear-rope-tiny"};
    for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++) check_fixture(fx[i]);
    return t_done();
}
