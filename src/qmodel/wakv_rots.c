/* Choice of the W/A/KV rotations (wakv.h): kinds, seeds, GSR block sizes and the refusals. */
#include <string.h>

#include "core/core.h"
#include "wakv.h"

static const char *const rkind_names[] = {"none", "random", "hadamard", "gsr"};

const char *harp_wakv_rkind_name(harp_wakv_rkind k) {
    return (unsigned)k < sizeof rkind_names / sizeof rkind_names[0] ? rkind_names[k] : NULL;
}

harp_status harp_wakv_rkind_parse(const char *s, harp_wakv_rkind *k) {
    for (unsigned i = 0; s && i < sizeof rkind_names / sizeof rkind_names[0]; i++)
        if (!strcmp(s, rkind_names[i])) {
            *k = (harp_wakv_rkind)i;
            return HARP_OK;
        }
    return harp_err(HARP_ERR_INVALID_ARG, "--rotation: unknown kind '%s' (none, random, hadamard, gsr)", s ? s : "(null)");
}

harp_wakv_rot_params harp_wakv_rot_params_default(void) {
    harp_wakv_rot_params p;
    memset(&p, 0, sizeof p);
    p.r1 = p.r2 = HARP_WAKV_ROT_HADAMARD;
    p.r3 = p.r4 = 1;
    p.r1_expand = 1;
    return p;
}

/* GSR block for width n: a given G must divide n (a G wider than n means the whole width); G = 0 → 128.
 * Either way the block is then lowered to the largest power of two dividing n. */
static harp_status gsr_block(int G, int64_t n, const char *what, int64_t *out) {
    if (G < 0 || (G > 0 && (G & (G - 1))))
        return harp_err(HARP_ERR_INVALID_ARG, "--gsr-block %d: must be a power of two", G);
    int64_t b = 1, cap = G ? G : 128;
    while (2 * b <= cap && 2 * b <= n) b *= 2;
    while (b > 1 && n % b) b /= 2;
    if (G && G <= n && n % G)
        return harp_err(HARP_ERR_INVALID_ARG, "%s: --gsr-block %d does not divide the width %lld (largest that does: %lld)",
                        what, G, (long long)n, (long long)b);
    if (b < 2)
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: width %lld has no power-of-two Walsh block (GSR needs an even width)",
                        what, (long long)n);
    *out = b;
    return HARP_OK;
}

/* One R1/R2 rotation of width n. pad: expansion allowed (Hadamard only). */
static harp_status make_rot(harp_wakv_rkind k, int64_t n, int gsr, int pad, uint64_t seed, const char *what,
                            harp_padrot **out) {
    *out = NULL;
    harp_rot *r = NULL;
    switch (k) {
    case HARP_WAKV_ROT_NONE: return HARP_OK;
    case HARP_WAKV_ROT_HADAMARD: return harp_padrot_hadamard(n, pad, 1, seed, what, out);
    case HARP_WAKV_ROT_RANDOM:
        if (n > 16384)
            return harp_err(HARP_ERR_UNSUPPORTED, "%s: a dense random rotation of width %lld is too large (max 16384)",
                            what, (long long)n);
        HARP_TRY(harp_rot_create(HARP_ROT_RANDOM_ORTHOGONAL, n, NULL, seed, &r));
        return harp_padrot_wrap(r, n, out);
    case HARP_WAKV_ROT_GSR: {
        harp_rot_params rp;
        harp_rot_params_default(&rp);
        int64_t G = 0;
        HARP_TRY(gsr_block(gsr, n, what, &G));
        if (G != gsr) harp_log(HARP_LOG_INFO, "%s: GSR with Walsh blocks of %lld", what, (long long)G);
        rp.gsr_group = (int)G;
        HARP_TRY(harp_rot_create(HARP_ROT_GSR, n, &rp, seed, &r));
        return harp_padrot_wrap(r, n, out);
    }
    }
    return harp_err(HARP_ERR_INVALID_ARG, "%s: unknown rotation kind %d", what, (int)k);
}

void harp_wakv_rots_free(harp_wakv_rots *r) {
    if (!r) return;
    harp_padrot_destroy(r->r1);
    harp_padrot_destroy(r->r3);
    harp_padrot_destroy(r->r4);
    harp_padrot_destroy(r->ro);
    for (int l = 0; r->r2 && l < r->n_layer; l++) harp_padrot_destroy(r->r2[l]);
    harp_free(r->r2);
    memset(r, 0, sizeof *r);
}

harp_status harp_wakv_rots_create(const harp_wakv_rot_params *p, const harp_wakv_dims *dm, harp_wakv_rots *out) {
    memset(out, 0, sizeof *out);
    if (!p || !dm || dm->n_layer < 0 || dm->d < 1 || dm->ffn < 1 || dm->head_dim < 1)
        return harp_err(HARP_ERR_INVALID_ARG, "wakv rotations: bad model dimensions");
    out->n_layer = dm->n_layer;
    harp_status st = make_rot(p->r1, dm->d, p->gsr_block, p->r1_expand, harp_seed_mix(p->seed, 1),
                              "R1 (residual-stream rotation)", &out->r1);
    if (st == HARP_OK && p->r2 != HARP_WAKV_ROT_NONE) {
        out->r2 = harp_xcalloc((size_t)(dm->n_layer > 0 ? dm->n_layer : 1), sizeof *out->r2, "R2 rotations");
        if (!out->r2) st = HARP_ERR_OOM;
        for (int l = 0; l < dm->n_layer && st == HARP_OK; l++)
            st = make_rot(p->r2, dm->head_dim, p->gsr_block, 0, harp_seed_mix(p->seed, 1000 + (uint64_t)l),
                          "R2 (per-head rotation of v and o)", &out->r2[l]);
    }
    if (st == HARP_OK && p->r3)
        st = harp_padrot_hadamard(dm->head_dim, 0, 0, 0, "R3 (online Hadamard on q and k per head)", &out->r3);
    if (st == HARP_OK && p->r4)
        st = harp_padrot_hadamard(dm->ffn, 1, 0, 0, "R4 (online Hadamard on the down-projection input)", &out->r4);
    if (st == HARP_OK && p->ro)
        st = harp_padrot_hadamard((int64_t)dm->n_head * dm->head_dim, 0, 0, 0,
                                  "R_o (online Hadamard on the o-projection input)", &out->ro);
    if (st != HARP_OK) harp_wakv_rots_free(out);
    return st;
}
