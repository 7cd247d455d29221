/* A model of a given shape with SYNTHETIC weights, built in host memory: every decoder group a
 * quantized tensor of the requested type with seeded random planes (every plane filled by the rule
 * its traits row states: any bits for codes, finite scales, zero points below 2^bits, finite fp16
 * for dense rows) and the requested transforms, random embeddings (tied head; fp16 values in fp32, as
 * a loaded fp16 checkpoint holds, like the dense weights of an F32 model), unit norms. For
 * benchmarks of model shapes no checkpoint here has (`harp bench decode` without --gpu): the numbers
 * it yields are speeds, never quality. The forward pass, backends and kernels are the ones a loaded
 * folder uses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model_internal.h"
#include "quant/qtype_traits.h"

static harp_status fill_plane(harp_qtensor *w, int i, harp_rng *rng) {
    const harp_qtype_traits *tr = harp_qtype_traits_of(w->type);
    const harp_qplane_desc *d = &tr->planes[i];
    HARP_TRY(harp_qtensor_alloc_plane(w, i));
    uint8_t *p = w->planes[i].owned;
    const size_t nb = w->planes[i].nbytes;
    switch (d->values) {
    case HARP_QV_ANY:
        if (d->dtype == HARP_ST_F16) {   /* dense rows: finite values of a trained layer's size */
            for (size_t k = 0; k + 1 < nb; k += 2) {
                const uint16_t h = harp_f32_to_f16((float)(0.02 * harp_rng_normal(rng)));
                memcpy(p + k, &h, 2);
            }
        } else {
            for (size_t k = 0; k < nb; k++) p[k] = (uint8_t)harp_rng_u64(rng);
        }
        return HARP_OK;
    case HARP_QV_FINITE:   /* lattice wscale (two entries) or per-group scales */
        for (size_t k = 0; k + 3 < nb; k += 4) {
            const float f = d->shape == HARP_QSHAPE_TWO ? (k ? 0.02f / 3.45f : 0.02f) : (float)(0.002 + 0.01 * harp_rng_uniform(rng));
            memcpy(p + k, &f, 4);
        }
        return HARP_OK;
    case HARP_QV_ZERO_POINT:
        for (size_t k = 0; k < nb; k++) p[k] = (uint8_t)(harp_rng_u64(rng) % (1u << (int)tr->bits));
        return HARP_OK;
    default:
        return harp_err(HARP_ERR_UNSUPPORTED, "synthetic model: quant type %s has no synthetic planes", harp_qtype_name(w->type));
    }
}

/* A transform of dimension n: RHT, or a butterfly at a random non-zero θ (as after fitting), held as
 * int8 codes as a folder holds it. */
static harp_status make_rot(int kind, int64_t n, harp_rng *rng, harp_rot **out) {
    *out = NULL;
    if (kind == HARP_SYNTH_ROT_RHT) return harp_rot_create(HARP_ROT_RHT, n, NULL, harp_rng_u64(rng), out);
    HARP_TRY(harp_rot_create(HARP_ROT_BUTTERFLY, n, NULL, harp_rng_u64(rng), out));
    const int64_t np = harp_rot_butterfly_num_params(*out);
    double *th = harp_xmalloc(sizeof(double) * (size_t)(np + 1), "synthetic butterfly");
    harp_status st = th ? HARP_OK : HARP_ERR_OOM;
    for (int64_t q = 0; !st && q < np; q++) th[q] = 0.05 * harp_rng_normal(rng);
    if (!st) st = harp_rot_butterfly_set_theta(*out, th);
    if (!st) st = harp_rot_butterfly_round_theta(*out, HARP_THETA_INT8);   /* as a folder stores it */
    free(th);
    if (st) {
        harp_rot_destroy(*out);
        *out = NULL;
    }
    return st;
}

static harp_status synth_group(harp_lgroup *g, harp_qtype type, int rot, harp_rng *rng, const char *what) {
    harp_qtensor w;
    HARP_TRY(harp_qtensor_init(&w, type, g->out_total, g->in, harp_qlayout_grouped(harp_qtype_traits_of(type)->layout) ? 128 : 0));
    const harp_qtype_traits *tr = harp_qtype_traits_of(type);
    harp_status st = HARP_OK;
    for (int i = 0; !st && i < tr->n_planes; i++)
        if (!tr->planes[i].optional) st = fill_plane(&w, i, rng);
    if (!st && rot != HARP_SYNTH_ROT_NONE) st = make_rot(rot, w.n, rng, &w.xf.rot_in);
    if (!st && rot != HARP_SYNTH_ROT_NONE) st = make_rot(rot, w.m, rng, &w.xf.rot_out);
    if (!st) st = harp_qtensor_derive(&w);
    if (!st) st = harp_qtensor_check(&w, what);
    if (!st) st = harp_lgroup_set_qtensor(g, &w, "synthetic", what);
    harp_qtensor_free(&w);
    return st;
}

/* Embeddings and dense weights hold fp16 values of 0.02·N(0, 1), as a checkpoint stored in fp16 does
 * once loaded: entries of a 4 096-value table drawn once, picked by the generator's top bits (a 7B
 * shape's 6.7e9 weights in seconds; these models measure speed, never quality). */
enum { NTAB = 4096 };
typedef struct { float v[NTAB]; } normal_tab;

static void tab_fill(normal_tab *t, harp_rng *rng) {
    for (int i = 0; i < NTAB; i++) t->v[i] = harp_f16_to_f32(harp_f32_to_f16((float)(0.02 * harp_rng_normal(rng))));
}

static float tab_draw(const normal_tab *t, harp_rng *rng) {
    return t->v[harp_rng_u64(rng) >> 52];
}

static harp_status ones(size_t n, const char *what, float **out) {
    *out = harp_model_falloc(n, what);
    if (!*out) return HARP_ERR_OOM;
    for (size_t i = 0; i < n; i++) (*out)[i] = 1.0f;
    return HARP_OK;
}

harp_status harp_model_synthetic(const harp_synth_params *p, harp_model **out) {
    *out = NULL;
    if (p->rotation < HARP_SYNTH_ROT_NONE || p->rotation > HARP_SYNTH_ROT_HARP || !harp_qtype_traits_of(p->qtype) ||
        (p->qtype == HARP_QTYPE_F32 && p->rotation != HARP_SYNTH_ROT_NONE))
        return harp_err(HARP_ERR_INVALID_ARG, "synthetic model: quant type %d with rotation %d", (int)p->qtype, p->rotation);
    harp_model_config c = {0};
    snprintf(c.arch, sizeof c.arch, "synthetic");
    c.dim = p->dim, c.hidden_dim = p->hidden, c.n_layers = p->n_layers, c.n_heads = p->n_heads, c.n_kv_heads = p->n_kv_heads;
    c.head_dim = p->n_heads > 0 ? p->dim / p->n_heads : 0;
    c.vocab_size = p->vocab, c.max_seq_len = p->max_seq_len;
    c.norm_eps = 1e-5f, c.rope_theta = 10000.0, c.rope_layout = HARP_ROPE_HALF, c.rope_factor = 1.0;
    c.tied = 1, c.bos_id = 1, c.eos_id = 2;
    HARP_TRY(harp_config_validate(&c, "synthetic model"));
    harp_model *m = NULL;
    HARP_TRY(harp_model_alloc(&c, &m));
    harp_rng rng;
    harp_rng_seed(&rng, p->seed);
    const size_t emb = (size_t)c.vocab_size * (size_t)c.dim;
    harp_status st = (m->tok_emb = harp_model_falloc(emb, "synthetic embeddings")) ? HARP_OK : HARP_ERR_OOM;
    normal_tab tab;
    tab_fill(&tab, &rng);
    for (size_t i = 0; !st && i < emb; i++) m->tok_emb[i] = tab_draw(&tab, &rng);
    if (!st) st = ones((size_t)c.dim, "final norm", &m->final_norm);
    m->head_g.w_borrowed = 1;
    m->head_g.w[0] = m->tok_emb;
    for (int l = 0; !st && l < c.n_layers; l++) {
        st = ones((size_t)c.dim, "attention norm", &m->layers[l].attn_norm);
        if (!st) st = ones((size_t)c.dim, "ffn norm", &m->layers[l].ffn_norm);
        for (int g = 0; !st && g < HARP_LG_COUNT; g++) {
            char what[48];
            snprintf(what, sizeof what, "synthetic layer %d group %d", l, g);
            if (p->qtype == HARP_QTYPE_F32) {   /* dense fp32 weights: the loaders' unquantized form */
                harp_lgroup *lg = &m->layers[l].cfg.g[g];
                for (int s = 0; !st && s < lg->n_slices; s++) {
                    const size_t n = (size_t)lg->out[s] * (size_t)lg->in;
                    if (!(lg->w[s] = harp_model_falloc(n, what))) st = HARP_ERR_OOM;
                    for (size_t k = 0; !st && k < n; k++) lg->w[s][k] = tab_draw(&tab, &rng);
                }
            } else {
                st = synth_group(&m->layers[l].cfg.g[g], p->qtype, p->rotation, &rng, what);
            }
        }
    }
    if (!st) st = harp_model_init_rope(m);
    if (!st) harp_model_fill_info(m, "synthetic", harp_qtype_name(p->qtype));
    if (st) {
        harp_model_free(m);
        return st;
    }
    *out = m;
    return HARP_OK;
}

harp_synth_params harp_synth_default_params(void) {
    harp_synth_params p;
    memset(&p, 0, sizeof p);
    p.dim = 4096, p.hidden = 11008, p.n_layers = 2, p.n_heads = 32, p.n_kv_heads = 32, p.vocab = 32000, p.max_seq_len = 4096;
    p.qtype = HARP_QTYPE_E8P2;
    p.rotation = HARP_SYNTH_ROT_RHT;
    p.seed = 1;
    return p;
}
