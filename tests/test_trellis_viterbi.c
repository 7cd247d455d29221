/* Viterbi over the bitshift trellis: the reference search equals exhaustive search over every path
 * on small trellises (open and tail-biting-constrained), the SIMD kernels return exactly the
 * reference's states and cost (small L and every format configuration at L = 16), and the two-pass
 * tail-biting result is a valid tail-biting path no better than the exhaustive tail-biting optimum. */
#include <stdlib.h>

#include "core/core.h"
#include "quant/trellis.h"
#include "test_util.h"

static float dist(const harp_tcb *cb, uint32_t s, const float *x) {
    const float d0 = cb->val[s] - x[0];
    if (cb->V == 1) return d0 * d0;
    const float d1 = cb->val[((size_t)1 << cb->L) + s] - x[1];
    return d0 * d0 + d1 * d1;
}

/* Exhaustive search from step t in state s with accumulated cost c (the search's order:
 * c_t = dist_t + c_{t−1}). overlap < 0: any end. */
static void dfs(const harp_tcb *cb, const float *x, int32_t overlap, int t, uint32_t s, float c, float *best) {
    c = dist(cb, s, x + (size_t)t * cb->V) + c;
    if (t == cb->S - 1) {
        const uint32_t G = (1u << cb->L) >> cb->KV;
        if ((overlap < 0 || (s & (G - 1)) == (uint32_t)overlap) && c < *best) *best = c;
        return;
    }
    const uint32_t N = 1u << cb->L;
    for (uint32_t u = 0; u < (1u << cb->KV); u++) dfs(cb, x, overlap, t + 1, ((s << cb->KV) & (N - 1)) | u, c, best);
}

static float brute(const harp_tcb *cb, const float *x, int32_t overlap) {
    float best = INFINITY;
    for (uint32_t s = 0; s < (1u << cb->L); s++)
        if (overlap < 0 || (s >> cb->KV) == (uint32_t)overlap) dfs(cb, x, overlap, 0, s, 0.0f, &best);
    return best;
}

/* The path is a trellis path (and tail-biting-constrained for overlap ≥ 0); returns its cost. */
static float path_cost(const harp_tcb *cb, const float *x, int32_t overlap, const uint32_t *st, int *ok) {
    const uint32_t G = (1u << cb->L) >> cb->KV;
    float c = 0.0f;
    *ok = st[0] < (1u << cb->L);
    for (int t = 0; t < cb->S; t++) {
        if (t > 0) *ok &= (st[t] >> cb->KV) == (st[t - 1] & (G - 1)) && st[t] < (1u << cb->L);
        c = dist(cb, st[t], x + (size_t)t * cb->V) + c;
    }
    if (overlap >= 0) *ok &= (st[0] >> cb->KV) == (uint32_t)overlap && (st[cb->S - 1] & (G - 1)) == (uint32_t)overlap;
    return c;
}

static const harp_tisa isas[] = {HARP_TISA_REF, HARP_TISA_AVX2, HARP_TISA_AVX512, HARP_TISA_AVX512VBMI};

/* Every available kernel on x: same states and cost as the reference. */
static void check_kernels(const harp_tcb *cb, const float *x, int32_t overlap, const uint32_t *ref, float cref,
                          harp_viterbi_ws *ws, const char *what) {
    uint32_t st[256];
    for (int k = 1; k < 3; k++) { /* the Viterbi kernel is the same at both AVX-512 levels */
        harp_trellis_max_isa(isas[k]);
        if (harp_trellis_isa() != isas[k]) continue;
        const float c = harp_viterbi(cb, x, overlap, st, ws);
        CHECK_MSG(c == cref && memcmp(st, ref, sizeof(uint32_t) * (size_t)cb->S) == 0,
                  "%s: %s search differs from the reference (cost %.9g vs %.9g)", what, harp_tisa_name(isas[k]), c, cref);
    }
    harp_trellis_max_isa(HARP_TISA_AVX512VBMI);
}

static void small_case(harp_rng *rng, int L, int K, int V, int S, int reps) {
    const size_t N = (size_t)1 << L;
    float *val = malloc(sizeof(float) * N * V), x[64];
    for (size_t i = 0; i < N * V; i++) val[i] = (float)harp_rng_normal(rng);
    harp_tcb cb;
    CHECK_OK(harp_tcb_init_table(&cb, L, K, V, S, val));
    harp_viterbi_ws *ws = harp_viterbi_ws_new(&cb);
    char what[64];
    snprintf(what, sizeof what, "L=%d K=%d V=%d S=%d", L, K, V, S);
    int bad = 0, tb_opt = 0;
    for (int r = 0; r < reps; r++) {
        for (int i = 0; i < S * V; i++) x[i] = (float)harp_rng_normal(rng);
        const int32_t G = (int32_t)(N >> cb.KV), ov = (int32_t)(harp_rng_u64(rng) % (uint64_t)G);
        for (int mode = 0; mode < 2; mode++) {
            const int32_t o = mode ? ov : HARP_TB_OPEN;
            uint32_t st[64];
            int ok;
            const float c = harp_viterbi_ref(&cb, x, o, st, ws), b = brute(&cb, x, o);
            const float pc = path_cost(&cb, x, o, st, &ok);
            bad += !(ok && c == b && pc == c);
            check_kernels(&cb, x, o, st, c, ws, what);
        }
        /* two-pass tail-biting: valid, never below the exhaustive tail-biting optimum */
        if (S * cb.KV >= L) {
            uint32_t st[64];
            float best_tb = INFINITY;
            for (int32_t o = 0; o < G; o++) {
                const float b = brute(&cb, x, o);
                if (b < best_tb) best_tb = b;
            }
            const float c = harp_viterbi_tb(&cb, x, st, ws, 1);
            int ok;
            const float pc = path_cost(&cb, x, (int32_t)(st[0] >> cb.KV), st, &ok);
            uint16_t words[64];
            bad += !(ok && pc == c && c >= best_tb && harp_trellis_pack(&cb, st, words) == HARP_OK);
            tb_opt += c == best_tb;
        }
    }
    CHECK_MSG(bad == 0, "%s: %d of %d cases off the exhaustive optimum or invalid", what, bad, reps);
    if (S * cb.KV >= L) printf("%s: two-pass tail-biting hit the exhaustive optimum in %d of %d\n", what, tb_opt, reps);
    harp_viterbi_ws_free(ws);
    harp_tcb_free(&cb);
    free(val);
}

/* Format trellises (L = 16): every kernel equals the reference, open and tail-biting. */
static void format_case(harp_rng *rng, harp_tcode code, int K, const uint16_t *tlut) {
    harp_tcb cb;
    CHECK_OK(harp_tcb_init(&cb, code, K, tlut, "test"));
    harp_viterbi_ws *ws = harp_viterbi_ws_new(&cb);
    float x[256];
    uint32_t st[256], st2[256];
    char what[64];
    snprintf(what, sizeof what, "%s K=%d", harp_tcode_name(code), K);
    for (int r = 0; r < 2; r++) {
        for (int i = 0; i < 256; i++) x[i] = (float)(harp_rng_normal(rng) * cb.rms * 0.9);
        const int32_t o = r ? (int32_t)(harp_rng_u64(rng) % (1u << (16 - cb.KV))) : HARP_TB_OPEN;
        const float c = harp_viterbi_ref(&cb, x, o, st, ws);
        int ok;
        const float pc = path_cost(&cb, x, o, st, &ok);
        CHECK_MSG(ok && pc == c, "%s: reference path invalid or its cost %.9g != %.9g", what, pc, c);
        check_kernels(&cb, x, o, st, c, ws, what);
    }
    if (K == 2) {   /* the driver is shared; once per code is enough */
        const float c1 = harp_viterbi_tb(&cb, x, st, ws, 1), c2 = harp_viterbi_tb(&cb, x, st2, ws, 0);
        CHECK_MSG(c1 == c2 && memcmp(st, st2, sizeof st) == 0, "%s: two-pass tail-biting differs ref vs fast", what);
    }
    harp_viterbi_ws_free(ws);
    harp_tcb_free(&cb);
}

int main(void) {
    harp_rng rng;
    harp_rng_seed(&rng, 7);
    printf("trellis kernels: %s\n", harp_tisa_name(harp_trellis_isa()));
    small_case(&rng, 6, 1, 2, 5, 40);   /* the spec's example (§9.4 item 19)                      */
    small_case(&rng, 6, 2, 1, 6, 40);
    small_case(&rng, 8, 2, 1, 4, 20);   /* KV = 2: the SIMD expand path                           */
    small_case(&rng, 8, 1, 2, 4, 20);
    small_case(&rng, 8, 2, 2, 3, 20);   /* KV = 4: AVX2 broadcast path (G = 16)                    */
    small_case(&rng, 10, 2, 1, 4, 6);   /* G = 256: both SIMD kernels                             */
    small_case(&rng, 10, 3, 1, 4, 4);   /* KV = 3                                                 */
    small_case(&rng, 10, 2, 2, 3, 4);   /* KV = 4, G = 64                                         */
    uint16_t tlut[2 * HARP_HYB_N];
    CHECK_OK(harp_hyb_table_build_ex(1, 1 << 14, 8, tlut));
    for (int K = 2; K <= 4; K++) {
        format_case(&rng, HARP_TCODE_1MAD, K, NULL);
        format_case(&rng, HARP_TCODE_3INST, K, NULL);
        format_case(&rng, HARP_TCODE_HYB, K, tlut);
    }
    printf("%d passed, %d failed\n", t_pass_, t_fail_);
    return t_fail_ ? 1 : 0;
}
