/* Sampling (greedy / temperature + nucleus) and the generation loop over the KV cache. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model_internal.h"

harp_sampler_params harp_sampler_default_params(void) {
    harp_sampler_params p = {0.0f, 1.0f, 0};
    return p;
}

typedef struct prob_idx {
    float p;
    int id;
} prob_idx;

static int cmp_prob_desc(const void *a, const void *b) {
    const prob_idx *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id - y->id;
}

/* Greedy: argmax with the lowest id on ties. Otherwise softmax(logits / T), keep the smallest
 * prefix of the descending order whose mass reaches top_p, draw from it. */
static int sample(const float *logits, int V, const harp_sampler_params *sp, harp_rng *rng, prob_idx *work) {
    if (sp->temperature <= 0) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    float mx = logits[0];
    for (int i = 1; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < V; i++) {
        work[i].p = expf((logits[i] - mx) / sp->temperature);
        work[i].id = i;
        sum += work[i].p;
    }
    qsort(work, (size_t)V, sizeof *work, cmp_prob_desc);
    int n = V;
    if (sp->top_p > 0 && sp->top_p < 1) {
        double acc = 0;
        for (int i = 0; i < V; i++) {
            acc += work[i].p / sum;
            if (acc >= sp->top_p) {
                n = i + 1;
                break;
            }
        }
    }
    double mass = 0;
    for (int i = 0; i < n; i++) mass += work[i].p;
    double r = harp_rng_uniform(rng) * mass, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += work[i].p;
        if (r < acc) return work[i].id;
    }
    return work[n - 1].id;
}

harp_status harp_generate(harp_model *m, const int32_t *prompt, int n_prompt, int n_new,
                          const harp_sampler_params *sp, int32_t *out_ids, int *n_out, harp_token_fn on_token,
                          void *user) {
    return harp_generate_ex(m, NULL, prompt, n_prompt, n_new, sp, out_ids, n_out, on_token, user);
}

/* The one sampling loop: the prompt in one pass from c's position, then one token per decode step. */
harp_status harp_generate_ctx(harp_ctx *c, const int32_t *prompt, int n_prompt, int n_new, const harp_sampler_params *sp,
                              int32_t *out_ids, int *n_out, harp_token_fn on_token, void *user) {
    harp_sampler_params dsp = harp_sampler_default_params();
    if (!sp) sp = &dsp;
    if (!c || !prompt || n_prompt <= 0 || n_new < 0 || (!out_ids && n_new > 0) || !n_out)
        return harp_err(HARP_ERR_INVALID_ARG, "harp_generate: bad argument (prompt must hold at least one token)");
    if (!(sp->temperature >= 0) || !(sp->top_p > 0 && sp->top_p <= 1))
        return harp_err(HARP_ERR_INVALID_ARG, "harp_generate: temperature must be >= 0 and top_p in (0, 1]");
    *n_out = 0;
    if ((int64_t)c->pos + n_prompt + n_new > c->d.max_tokens)
        return harp_err(HARP_ERR_INVALID_ARG, "generate: %d cached + %d prompt + %d new tokens exceed the context's %d",
                        c->pos, n_prompt, n_new, c->d.max_tokens);
    const harp_model *m = c->m;
    int V = m->cfg.vocab_size;
    float *logits = harp_model_falloc((size_t)V, "logits");
    prob_idx *work = harp_xmalloc((size_t)V * sizeof *work, "sampler");
    harp_status st = (!logits || !work) ? HARP_ERR_OOM : HARP_OK;
    harp_rng rng;
    harp_rng_seed(&rng, sp->seed);
    if (!st) st = harp_ctx_eval(c, prompt, n_prompt, logits, 0);
    for (int i = 0; i < n_new && !st; i++) {
        int32_t id = sample(logits, V, sp, &rng, work);
        if (id == m->cfg.eos_id || id == m->cfg.bos_id) break;
        out_ids[(*n_out)++] = id;
        if (on_token && on_token(user, id)) break;
        if (i + 1 < n_new) st = harp_ctx_eval(c, &id, 1, logits, 0);
    }
    free(logits);
    free(work);
    return st;
}

harp_status harp_generate_ex(harp_model *m, const harp_ctx_params *p, const int32_t *prompt, int n_prompt, int n_new,
                             const harp_sampler_params *sp, int32_t *out_ids, int *n_out, harp_token_fn on_token,
                             void *user) {
    if (!m || !prompt || n_prompt <= 0 || n_new < 0 || !n_out)
        return harp_err(HARP_ERR_INVALID_ARG, "harp_generate: bad argument (prompt must hold at least one token)");
    *n_out = 0;
    int64_t want = (int64_t)n_prompt + n_new;
    if (want > m->cfg.max_seq_len)
        return harp_err(HARP_ERR_INVALID_ARG, "generate: %d prompt + %d new tokens exceed the model's maximum of %d",
                        n_prompt, n_new, m->cfg.max_seq_len);
    harp_ctx *c;
    harp_ctx_params cp = p ? *p : harp_ctx_default_params();
    cp.max_tokens = (int)want;
    HARP_TRY(harp_ctx_create_ex(m, &cp, &c));
    harp_status st = harp_generate_ctx(c, prompt, n_prompt, n_new, sp, out_ids, n_out, on_token, user);
    harp_ctx_free(c);
    return st;
}
