/* Offline rotation on real checkpoints (src/qmodel/wakv.h): Hugging Face folders read with the
 * safetensors reader into harp_wakv_weights, the plain fp64 forward of wakv_test_fwd.h checked against
 * the fixture's transformers logits (ref.json, ≤ 1e-4 as in test_model_fixtures), then the model rotated
 * with every R1 = R2 kind (R3, R4 online) must give the same logits within 5e-6·max|logit| (measured
 * worst: 9.2e-7, ref-llama with random orthogonal R1/R2, whose dense fp32 product rounds most).
 * Folders: tests/data/qwen2-tiny (hidden 64), tests/data/qwen2-h160-tiny (hidden 160: Paley I R1, and
 * FFN 152: Paley II order 76 for R4; made by scripts/make_fixtures.py --only qwen2-h160-tiny) and
 * ../shared/models/ref-llama; each missing one is reported and skipped (exit 77 when all are). */
#include "wakv_test_hf.h"

/* ids and logits of ref.json (NULL when the folder has none) */
static double *load_ref(const char *dir, int *ids, int *T, int64_t V) {
    char path[1024];
    snprintf(path, sizeof path, "%s/ref.json", dir);
    cJSON *ref = harp_file_exists(path) ? t_load_json(path) : NULL;
    if (!ref) return NULL;
    *T = 0;
    for (const cJSON *e = cJSON_GetObjectItem(ref, "input_ids")->child; e && *T < 32; e = e->next) ids[(*T)++] = e->valueint;
    double *lg = calloc((size_t)(*T * V), sizeof *lg);
    int pos = 0;
    for (const cJSON *row = cJSON_GetObjectItem(ref, "logits")->child; row && pos < *T; row = row->next, pos++) {
        int64_t j = 0;
        for (const cJSON *v = row->child; v && j < V; v = v->next, j++) lg[pos * V + j] = v->valuedouble;
    }
    cJSON_Delete(ref);
    return lg;
}

static int check_folder(const char *dir, const char *label) {
    harp_wakv_weights w;
    wt_arch ar;
    if (!wt_load_hf(dir, &w, &ar)) {
        printf("SKIP %s: %s/config.json is missing\n", label, dir);
        return 0;
    }
    const int64_t V = w.dims.vocab;
    int ids[32] = {1, 306, 4966, 304, 1074, 278, 6593, 310, 2834, 29889, 13, 29871};
    int T = 12;
    double *ref = load_ref(dir, ids, &T, V);
    if (T > 12 && !ref) T = 12;
    for (int t = 0; t < T; t++) ids[t] %= (int)V;
    double *a = malloc((size_t)(T * V) * sizeof *a), *b = malloc((size_t)(T * V) * sizeof *b);
    wt_forward(&w, &ar, NULL, NULL, NULL, ids, T, a);
    double e, mx;
    if (ref) {
        wt_diff(ref, a, T * V, &e, &mx);
        printf("%-18s fp64 loop forward vs transformers: max|diff| %.2e (max|logit| %.3g)\n", label, e, mx);
        CHECK_MSG(e <= 1e-4, "%s: the test's forward differs from transformers by %.3g", label, e);
    }
    const harp_wakv_rkind kinds[] = {HARP_WAKV_ROT_NONE, HARP_WAKV_ROT_RANDOM, HARP_WAKV_ROT_HADAMARD, HARP_WAKV_ROT_GSR};
    for (int k = 0; k < 4; k++) {
        harp_wakv_rot_params p = harp_wakv_rot_params_default();
        p.r1 = p.r2 = kinds[k];
        p.seed = 7;
        harp_wakv_rots R;
        harp_wakv_weights rw;
        CHECK_OK(harp_wakv_rots_create(&p, &w.dims, &R));
        CHECK_OK(harp_wakv_rotate(&w, &R, &rw));
        if (!rw.embed) continue;
        wt_forward(&rw, &ar, R.r3, R.r4, NULL, ids, T, b);
        wt_diff(a, b, T * V, &e, &mx);
        printf("%-18s R1 = R2 = %-8s (R1 order %lld, R4 order %lld): max|Δlogit| %.2e = %.2e·max|logit|\n", label,
               harp_wakv_rkind_name(kinds[k]), (long long)(R.r1 ? harp_padrot_n_pad(R.r1) : 0),
               (long long)harp_padrot_n_pad(R.r4), e, e / mx);
        CHECK_MSG(e <= 5e-6 * mx, "%s %s: rotated logits differ by %.3g", label, harp_wakv_rkind_name(kinds[k]), e);
        harp_wakv_weights_free(&rw);
        harp_wakv_rots_free(&R);
    }
    free(a), free(b), free(ref);
    wt_free(&w);
    return 1;
}

int main(void) {
    int ran = 0;
    ran += check_folder(t_data("qwen2-tiny"), "qwen2-tiny");
    ran += check_folder(t_data("qwen2-h160-tiny"), "qwen2-h160-tiny");
    const char *root = getenv("HARP_SHARED");
    char p[1024];
    snprintf(p, sizeof p, "%s/models/ref-llama", root && *root ? root : "../shared");
    ran += check_folder(p, "ref-llama");
    if (!ran) {
        printf("SKIP: no model folder found\n");
        return 77;
    }
    return t_done();
}
