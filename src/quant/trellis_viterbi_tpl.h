/* The fused Viterbi pass, written once for any vector width. The including file defines the
 * vector helpers (tv_*), TV_W lanes, TV_INLINE (target + always_inline) and TV_NAME, then includes
 * this file. Arithmetic per state is exactly the reference's: d0·d0 (+ d1·d1), then + best. */

/* Lanes s0 … s0+W−1 of the previous step's cost: dist(s) + best[s >> KV]. */
TV_INLINE tv_f tv_cost(const float *v0, const float *v1, tv_f x0, tv_f x1, const float *best, uint32_t s0, int KV,
                       int V, int bcast, tv_i eidx) {
    const tv_f d0 = tv_sub(tv_load(v0 + s0), x0);
    tv_f d = tv_mul(d0, d0);
    if (V == 2) {
        const tv_f d1 = tv_sub(tv_load(v1 + s0), x1);
        d = tv_add(d, tv_mul(d1, d1));
    }
    return tv_add(d, bcast ? tv_bcast(best + (s0 >> KV)) : tv_expand(best + (s0 >> KV), eidx));
}

/* One step: min over the J slices for every group, back-pointers as bytes. Two group vectors are
 * interleaved so the compare/blend chains of independent groups overlap. */
TV_INLINE void tv_step(const float *v0, const float *v1, const float *xt, const float *bprev, float *bcur,
                       uint8_t *bp, uint32_t G, int KV, int V, int bcast) {
    const tv_f x0 = tv_set1(xt[0]), x1 = tv_set1(V == 2 ? xt[1] : 0.0f);
    const uint32_t J = 1u << KV;
    const tv_i eidx = tv_expand_index(KV);
    for (uint32_t g = 0; g < G; g += 2 * TV_W) {
        tv_f b0 = tv_cost(v0, v1, x0, x1, bprev, g, KV, V, bcast, eidx);
        tv_f b1 = tv_cost(v0, v1, x0, x1, bprev, g + TV_W, KV, V, bcast, eidx);
        tv_i a0 = tv_seti(0), a1 = tv_seti(0);
        for (uint32_t j = 1; j < J; j++) {
            const tv_i jj = tv_seti((int)j);
            const tv_f c0 = tv_cost(v0, v1, x0, x1, bprev, g + j * G, KV, V, bcast, eidx);
            const tv_f c1 = tv_cost(v0, v1, x0, x1, bprev, g + j * G + TV_W, KV, V, bcast, eidx);
            const tv_m m0 = tv_lt(c0, b0), m1 = tv_lt(c1, b1);
            b0 = tv_blend(m0, b0, c0), a0 = tv_blendi(m0, a0, jj);
            b1 = tv_blend(m1, b1, c1), a1 = tv_blendi(m1, a1, jj);
        }
        tv_store(bcur + g, b0), tv_store(bcur + g + TV_W, b1);
        tv_store_bytes(bp + g, a0), tv_store_bytes(bp + g + TV_W, a1);
    }
}

void TV_NAME(const harp_tcb *cb, const float *x, harp_viterbi_ws *ws) {
    const int KV = cb->KV, V = cb->V;
    const uint32_t N = 1u << cb->L, G = N >> KV;
    const float *v0 = cb->val, *v1 = cb->val + N;
    /* groups come in pairs of vectors: the caller guarantees G ≥ 2W (G is a power of two) */
    for (int t = 1; t < cb->S; t++) {
        const float *xt = x + (size_t)(t - 1) * V;
        float *bprev = ws->best[0], *bcur = ws->best[1];
        uint8_t *bp = ws->bp + (size_t)t * G;
        const int bcast = (1u << KV) >= TV_W;
        if (V == 1 && bcast) tv_step(v0, v1, xt, bprev, bcur, bp, G, KV, 1, 1);
        else if (V == 1) tv_step(v0, v1, xt, bprev, bcur, bp, G, KV, 1, 0);
        else if (bcast) tv_step(v0, v1, xt, bprev, bcur, bp, G, KV, 2, 1);
        else tv_step(v0, v1, xt, bprev, bcur, bp, G, KV, 2, 0);
        ws->best[0] = bcur, ws->best[1] = bprev;
    }
}
