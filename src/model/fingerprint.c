/* harp_model_fingerprint: a 64-bit hash of the shapes and every fp32 weight as loaded, so files
 * derived from a model (Hessians, saved logits) can be checked against the model they are used
 * with. Word-at-a-time mixing keeps it to a fraction of a second for small models. */
#include <string.h>

#include "core/core.h"
#include "model/model_internal.h"

static uint64_t mix_words(uint64_t h, const void *data, size_t bytes) {
    const uint8_t *p = data;
    size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    return harp_fnv1a64(p + i, bytes - i, h ? h : 1);
}

/* Slice s of g: its shape, then its fp32 weights, or the group's kind for a quantized group. */
static uint64_t mix_linear(uint64_t h, const harp_lgroup *g, int s) {
    int32_t dims[2] = {g->out[s], g->in};
    h = mix_words(h, dims, sizeof dims);
    if (!g->qt) h = mix_words(h, g->w[s], sizeof(float) * (size_t)g->out[s] * (size_t)g->in);
    else h = harp_fnv1a64(g->kind, strlen(g->kind), h);
    if (g->bias[s]) h = mix_words(h, g->bias[s], sizeof(float) * (size_t)g->out[s]);
    return h;
}

uint64_t harp_model_fingerprint(const harp_model *m) {
    const harp_model_info *mi = &m->info;
    int32_t dims[8] = {mi->dim, mi->hidden_dim, mi->n_layers, mi->n_heads, mi->n_kv_heads, mi->head_dim, mi->vocab_size, mi->max_seq_len};
    uint64_t h = mix_words(0x6861727066700000ULL, dims, sizeof dims);
    h = mix_words(h, m->tok_emb, sizeof(float) * (size_t)mi->vocab_size * (size_t)mi->dim);
    h = mix_words(h, m->final_norm, sizeof(float) * (size_t)mi->dim);
    for (int l = 0; l < mi->n_layers; l++) {
        const harp_layer *L = &m->layers[l];
        h = mix_words(h, L->attn_norm, sizeof(float) * (size_t)mi->dim);
        h = mix_words(h, L->ffn_norm, sizeof(float) * (size_t)mi->dim);
        for (int k = 0; k < HARP_LIN_COUNT; k++) {
            int s;
            const harp_lgroup *g = harp_model_lin_c(m, l, k, &s);
            h = mix_linear(h, g, s);
        }
    }
    if (!mi->tied_embeddings) h = mix_linear(h, &m->head_g, 0);
    return h;
}
