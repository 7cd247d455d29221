/* Forward-pass parity with the golden references, from golden token ids (no tokenizer needed):
 * stories260K (llama2.c, interleaved RoPE): top-5 logits at the last prompt position within 1e-4
 * and 100 greedy tokens exactly; ref-llama (HF, rotate-half RoPE, fp16 weights): logits[pos, 0:8]
 * at every prompt-0 position and the last-position top-5 within 1e-4, and the 64 greedy tokens of
 * all three prompts exactly (on divergence the top-2 gap at that position is printed). */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "harp.h"
#include "test_json.h"
#include "test_util.h"

static int ids_from(const cJSON *arr, int32_t *ids, int cap) {
    int n = 0;
    for (const cJSON *e = arr ? arr->child : NULL; e && n < cap; e = e->next) ids[n++] = (int32_t)e->valuedouble;
    return n;
}

/* A shared model folder's golden file, the model and its info. */
typedef struct golden {
    cJSON *g;
    harp_model *m;
    harp_model_info info;
} golden;

/* Opens both (shared paths); 0 when either is missing (counted as a failed check). */
static int open_golden(golden *G, const char *json, const char *path) {
    G->g = t_load_json(t_shared(json));
    CHECK(G->g != NULL);
    if (!G->g) return 0;
    harp_model_params p = harp_model_default_params();
    p.load_tokenizer = 0;
    G->m = NULL;
    CHECK_OK(harp_model_open(t_shared(path), &p, &G->m));
    if (G->m) CHECK_OK(harp_model_get_info(G->m, &G->info));
    else cJSON_Delete(G->g);
    return G->m != NULL;
}

static void close_golden(golden *G) {
    harp_model_free(G->m);
    cJSON_Delete(G->g);
}

/* Greedy ids must match; at the first divergence report the top-2 logit gap of harp. */
static void check_greedy(harp_model *m, const int32_t *prompt, int np, const int32_t *want, int n_want, const char *label) {
    int32_t *all = malloc(sizeof(int32_t) * (size_t)(np + n_want));
    int32_t got[256];
    int n_got = 0;
    harp_sampler_params sp = harp_sampler_default_params();
    CHECK_OK(harp_generate(m, prompt, np, n_want, &sp, got, &n_got, NULL, NULL));
    int same = n_got == n_want;
    int first = -1;
    for (int i = 0; i < n_want && i < n_got; i++)
        if (got[i] != want[i]) {
            first = i;
            same = 0;
            break;
        }
    if (!same && first >= 0) {
        harp_model_info info;
        harp_model_get_info(m, &info);
        memcpy(all, prompt, sizeof(int32_t) * (size_t)np);
        memcpy(all + np, want, sizeof(int32_t) * (size_t)first);
        harp_ctx *c;
        float *lg = malloc(sizeof(float) * (size_t)info.vocab_size);
        harp_ctx_create(m, np + first + 1, &c);
        harp_ctx_eval(c, all, np + first, lg, 0);
        fprintf(stderr, "%s: diverges at new token %d: golden %d (logit %.6f), harp %d (logit %.6f)\n", label, first,
                want[first], lg[want[first]], got[first], lg[got[first]]);
        harp_ctx_free(c);
        free(lg);
    }
    CHECK_MSG(same, "%s: greedy ids differ from golden (%d generated, %d expected)", label, n_got, n_want);
    /* harp_generate_ctx in two calls on one context (the second continues from the first's last id)
     * gives the same ids; a third that does not fit is refused */
    const int k = n_want / 2;
    int32_t part[256];
    int n1 = 0, n2 = 0;
    harp_ctx *c = NULL;
    CHECK_OK(harp_ctx_create(m, np + n_want, &c));
    if (c && k > 0 && n_got == n_want) {
        CHECK_OK(harp_generate_ctx(c, prompt, np, k, &sp, part, &n1, NULL, NULL));
        CHECK_OK(harp_generate_ctx(c, part + n1 - 1, 1, n_want - k, &sp, part + n1, &n2, NULL, NULL));
        CHECK_MSG(n1 == k && n2 == n_want - k && !memcmp(part, got, sizeof(int32_t) * (size_t)n_want),
                  "%s: generate in two calls on one context differs from one call (%d + %d ids)", label, n1, n2);
        CHECK(harp_generate_ctx(c, got, 1, 2, &sp, part, &n1, NULL, NULL) == HARP_ERR_INVALID_ARG);
    }
    harp_ctx_free(c);
    free(all);
}

static void test_stories(void) {
    golden G;
    if (!open_golden(&G, "models/stories260K/golden.json", "models/stories260K/stories260K.bin")) return;
    CHECK(G.info.rope_layout == HARP_ROPE_INTERLEAVED && G.info.dim == 64 && G.info.vocab_size == 512);
    int32_t prompt[16], want[128];
    int np = ids_from(cJSON_GetObjectItem(G.g, "prompt_tokens"), prompt, 16);
    int nw = ids_from(cJSON_GetObjectItem(G.g, "greedy_tokens_after_prompt"), want, 128);
    CHECK(np == 5 && nw == 100);
    harp_ctx *c;
    CHECK_OK(harp_ctx_create(G.m, 256, &c));
    float lg[512];
    CHECK_OK(harp_ctx_eval(c, prompt, np, lg, 0));
    for (const cJSON *e = cJSON_GetObjectItem(G.g, "logits_last_prompt_pos_top5")->child; e; e = e->next) {
        int id = (int)cJSON_GetArrayItem(e, 0)->valuedouble;
        CHECK_NEAR(lg[id], cJSON_GetArrayItem(e, 1)->valuedouble, 1e-4);
    }
    harp_ctx_free(c);
    check_greedy(G.m, prompt, np, want, nw, "stories260K");
    close_golden(&G);
}

static void test_ref_llama(void) {
    golden G;
    if (!open_golden(&G, "models/ref-llama/golden.json", "models/ref-llama")) return;
    CHECK(G.info.rope_layout == HARP_ROPE_HALF && G.info.n_params == 16781824 && !strcmp(G.info.weight_dtype, "F16"));
    const cJSON *prompts = cJSON_GetObjectItem(G.g, "prompts");
    int k = 0;
    for (const cJSON *p = prompts->child; p; p = p->next, k++) {
        int32_t prompt[64], want[64];
        int np = ids_from(cJSON_GetObjectItem(p, "ids"), prompt, 64);
        int nw = ids_from(cJSON_GetObjectItem(p, "greedy64_ids"), want, 64);
        if (k == 0) {
            float *lg = malloc(sizeof(float) * (size_t)np * 8192);
            harp_ctx *c;
            CHECK_OK(harp_ctx_create(G.m, 512, &c));
            CHECK_OK(harp_ctx_eval(c, prompt, np, lg, 1));
            double maxd = 0;
            int pos = 0;
            for (const cJSON *row = cJSON_GetObjectItem(p, "logits_first8_per_position")->child; row; row = row->next, pos++) {
                int j = 0;
                for (const cJSON *v = row->child; v; v = v->next, j++) {
                    double d = fabs(lg[(size_t)pos * 8192 + j] - v->valuedouble);
                    if (d > maxd) maxd = d;
                }
            }
            CHECK(pos == np);
            CHECK_MSG(maxd <= 1e-4, "ref-llama prompt-0 logits: max |diff| %.3g > 1e-4", maxd);
            printf("ref-llama prompt-0 logits[pos, 0:8]: max |diff| = %.3g\n", maxd);
            for (const cJSON *e = cJSON_GetObjectItem(p, "last_position_top5")->child; e; e = e->next) {
                int id = (int)cJSON_GetArrayItem(e, 0)->valuedouble;
                CHECK_NEAR(lg[(size_t)(np - 1) * 8192 + id], cJSON_GetArrayItem(e, 1)->valuedouble, 1e-4);
            }
            harp_ctx_free(c);
            free(lg);
        }
        char label[32];
        snprintf(label, sizeof label, "ref-llama prompt %d", k);
        check_greedy(G.m, prompt, np, want, nw, label);
    }
    close_golden(&G);
}

int main(void) {
    test_stories();
    test_ref_llama();
    return t_done();
}
