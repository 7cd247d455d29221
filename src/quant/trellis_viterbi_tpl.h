/* The fused Viterbi pass, written once for any vector width. The including file defines the
 * vector helpers (tv_*) that differ by width, TV_MM(x) (the intrinsic prefix, _mm256_##x or
 * _mm512_##x), TV_W lanes, TV_INLINE (target + always_inline) and TV_NAME, then includes this file. Arithmetic per state is exactly the reference's: d0·d0 (+ d1·d1), then + best.
 *
 * The min over the 2^KV predecessor slices is a tree over blocks of up to 16 slices (short
 * dependency chains; each merge keeps the left operand unless the right one is strictly smaller),
 * the blocks then merged in order. Minimum value and first minimal index do not depend on the
 * reduction order, so the result equals the reference's sequential scan exactly. */

/* The helpers whose intrinsics differ only by the width prefix. */
TV_INLINE tv_f tv_load(const float *p) { return TV_MM(load_ps)(p); }
TV_INLINE void tv_store(float *p, tv_f v) { TV_MM(store_ps)(p, v); }
TV_INLINE tv_f tv_set1(float v) { return TV_MM(set1_ps)(v); }
TV_INLINE tv_i tv_seti(int v) { return TV_MM(set1_epi32)(v); }
TV_INLINE tv_f tv_sub(tv_f a, tv_f b) { return TV_MM(sub_ps)(a, b); }
TV_INLINE tv_f tv_mul(tv_f a, tv_f b) { return TV_MM(mul_ps)(a, b); }
TV_INLINE tv_f tv_add(tv_f a, tv_f b) { return TV_MM(add_ps)(a, b); }

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

/* (b, a) ← the right operand where it is strictly smaller: left wins ties. */
TV_INLINE void tv_merge(tv_f *b, tv_i *a, tv_f br, tv_i ar) {
    const tv_m m = tv_lt(br, *b);
    *b = tv_blend(m, *b, br), *a = tv_blendi(m, *a, ar);
}

/* Min and argmin over slices j0 … j0+JB−1 for the group vector at g: a tree, left wins ties. */
TV_INLINE void tv_block(const float *v0, const float *v1, tv_f x0, tv_f x1, const float *bprev, uint32_t g, uint32_t G,
                        uint32_t j0, int KV, int V, int bcast, int JB, tv_i eidx, tv_f *b, tv_i *a) {
    tv_f c[8];
    tv_i ai[8];
#pragma GCC unroll 8
    for (int k = 0; k < JB; k++) {
        c[k] = tv_cost(v0, v1, x0, x1, bprev, g + (j0 + (uint32_t)k) * G, KV, V, bcast, eidx);
        ai[k] = tv_seti((int)j0 + k);
    }
#pragma GCC unroll 3
    for (int w = 1; w < JB; w *= 2)
#pragma GCC unroll 4
        for (int k = 0; k < JB; k += 2 * w) tv_merge(&c[k], &ai[k], c[k + w], ai[k + w]);
    *b = c[0], *a = ai[0];
}

/* One step: per group vector, min and argmin over the J slices; back-pointers as bytes. Slices go
 * in blocks of JB ≤ 8 (J if smaller). With more than one block, the block loop is outermost and
 * the running minimum lives in bcur / ws->arg, so every pass streams JB contiguous slices (the
 * slices are 4·G bytes apart: walking all J of them per group would touch J pages at once). */
TV_INLINE void tv_step(const float *v0, const float *v1, const float *xt, const float *bprev, float *bcur,
                       int32_t *arg, uint8_t *bp, uint32_t G, int KV, int V, int bcast, int JB) {
    const tv_f x0 = tv_set1(xt[0]), x1 = tv_set1(V == 2 ? xt[1] : 0.0f);
    const uint32_t J = 1u << KV;
    const tv_i eidx = tv_expand_index(KV);
    for (uint32_t j0 = 0; j0 < J; j0 += (uint32_t)JB)
        for (uint32_t g = 0; g < G; g += TV_W) {
            tv_f b;
            tv_i a;
            tv_block(v0, v1, x0, x1, bprev, g, G, j0, KV, V, bcast, JB, eidx, &b, &a);
            if (j0 > 0) {
                tv_f B = tv_load(bcur + g);
                tv_i A = tv_loadi(arg + g);
                tv_merge(&B, &A, b, a);
                b = B, a = A;
            }
            tv_store(bcur + g, b);
            if (j0 + (uint32_t)JB < J) tv_storei(arg + g, a);
            else tv_store_bytes(bp + g, a);
        }
}

void TV_NAME(const harp_tcb *cb, const float *x, harp_viterbi_ws *ws) {
    const int KV = cb->KV, V = cb->V;
    const uint32_t N = 1u << cb->L, G = N >> KV;
    const float *v0 = cb->val, *v1 = cb->val + N;
    for (int t = 1; t < cb->S; t++) {
        const float *xt = x + (size_t)(t - 1) * V;
        float *bprev = ws->best[0], *bcur = ws->best[1];
        uint8_t *bp = ws->bp + (size_t)t * G;
        /* compile-time V, broadcast mode (2^KV ≥ W) and tree block for each shape */
        if (V == 2 && KV >= 4) tv_step(v0, v1, xt, bprev, bcur, ws->arg, bp, G, KV, 2, 1, 8);
        else if (V == 1 && KV >= 4) tv_step(v0, v1, xt, bprev, bcur, ws->arg, bp, G, KV, 1, 1, 8);
        else if (V == 1 && KV == 3) tv_step(v0, v1, xt, bprev, bcur, ws->arg, bp, G, 3, 1, 8 >= TV_W, 8);
        else if (V == 1 && KV == 2) tv_step(v0, v1, xt, bprev, bcur, ws->arg, bp, G, 2, 1, 4 >= TV_W, 4);
        else if (V == 2) tv_step(v0, v1, xt, bprev, bcur, ws->arg, bp, G, 2, 2, 4 >= TV_W, 4);
        else tv_step(v0, v1, xt, bprev, bcur, ws->arg, bp, G, 1, 1, 0, 2);
        ws->best[0] = bcur, ws->best[1] = bprev;
    }
}
