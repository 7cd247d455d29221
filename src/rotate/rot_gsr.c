/* Kind gsr: R = [diag(s)·] blockdiag(W_Gᵀ/√G), W_G the sequency-ordered Walsh matrix (algorithms.md
 * §6.4). Blob payload: u32 group G, u32 has_signs, then n signs if has_signs. */
#include <stdlib.h>

#include "rot_internal.h"

static int is_pow2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

static harp_status gsr_create(harp_rot *r, const harp_rot_params *p, harp_rng *g) {
    (void)g;
    int64_t n = r->n;
    int64_t G = p->gsr_group == 0 ? 128 : p->gsr_group < 0 ? n : p->gsr_group;
    if (p->gsr_group == 0 && n < 128) G = n;
    if (!is_pow2(G) || n % G)
        return harp_err(HARP_ERR_INVALID_ARG, "gsr: group %lld must be a power of two dividing n=%lld", (long long)G,
                        (long long)n);
    r->group = G;
    r->params.gsr_group = (int)G;
    r->params.gsr_signs = p->gsr_signs != 0;
    if (p->gsr_signs) {
        r->signs = rot_random_signs(n, r->seed);
        if (!r->signs) return HARP_ERR_OOM;
    }
    return HARP_OK;
}

/* output j of a block = natural-order FWHT entry walsh_perm[j] (Gray code, bit-reversed) */
static harp_status gsr_finish(harp_rot *r) {
    int64_t G = r->group;
    int k = 0;
    while (((int64_t)1 << k) < G) k++;
    r->walsh_perm = harp_xmalloc((size_t)G * sizeof(int64_t), "walsh permutation");
    if (!r->walsh_perm) return HARP_ERR_OOM;
    for (int64_t j = 0; j < G; j++) {
        uint64_t gr = (uint64_t)j ^ ((uint64_t)j >> 1), rev = 0;
        for (int b = 0; b < k; b++) rev |= ((gr >> b) & 1) << (k - 1 - b);
        r->walsh_perm[j] = (int64_t)rev;
    }
    return HARP_OK;
}

static void gsr_write(rot_wbuf *w, const harp_rot *r) {
    rot_w_u32(w, (uint32_t)r->group);
    rot_w_u32(w, r->signs ? 1u : 0u);
    if (r->signs) rot_w_bytes(w, r->signs, (size_t)r->n);
}

static harp_status gsr_read(rot_rbuf *rb, harp_rot *r, uint32_t ver) {
    (void)ver;
    int64_t n = r->n;
    uint32_t G = rot_r_u32(rb, "group"), hs = rot_r_u32(rb, "has_signs");
    if (rb->st) return rb->st;
    if (G == 0 || (G & (G - 1)) || n % G || G > (1u << 20)) return rot_fmt_err(rb, "bad GSR group size", (long long)G);
    if (hs > 1) return rot_fmt_err(rb, "bad GSR has_signs flag", (long long)hs);
    r->group = G;
    r->params.gsr_group = (int)G;
    r->params.gsr_signs = (int)hs;
    if (hs) r->signs = rot_r_signs(rb, (size_t)n);
    if (rb->st) return rb->st;
    return gsr_finish(r);
}

const rot_kind_ops rot_kind_gsr = {
    .name = "gsr", .max_version = 1, .create = gsr_create, .finish = gsr_finish,
    .row_f32 = gsr_row_f32, .row_f64 = gsr_row_f64, .tile = 1,
    .write = gsr_write, .read = gsr_read,
};
