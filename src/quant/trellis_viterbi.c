/* Viterbi over the bitshift trellis (§5.6.4): the plain reference twin, the driver of the fused
 * SIMD passes, and the two-pass tail-biting approximation.
 *
 * The predecessors of s' are g + j·G (G = 2^{L−KV}, j < 2^KV) with g = s' >> KV, so one step is a
 * min over 2^KV contiguous slices of the previous costs followed by cost'(s') = dist(s') + best[g].
 * The SIMD kernels never store the cost row: they rebuild cost_{t−1}(s) = dist_{t−1}(s) +
 * best_{t−1}[s >> KV] while taking the min, so each step only streams the code values. Both forms do
 * the same fp32 operations in the same order (no FMA), which is why their paths are identical. */
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "trellis_kern.h"

harp_viterbi_ws *harp_viterbi_ws_new(const harp_tcb *cb) {
    harp_viterbi_ws *ws = harp_xcalloc(1, sizeof *ws, "Viterbi workspace");
    if (!ws) return NULL;
    const size_t N = (size_t)1 << cb->L, G = N >> cb->KV;
    ws->L = cb->L, ws->KV = cb->KV, ws->S = cb->S, ws->V = cb->V;
    ws->bp = harp_aligned_alloc((size_t)cb->S * G, "Viterbi back-pointers");
    ws->cost = harp_aligned_alloc(sizeof(float) * N, "Viterbi costs");
    ws->best[0] = harp_aligned_alloc(sizeof(float) * (G + TRELLIS_BEST_PAD), "Viterbi costs");
    ws->best[1] = harp_aligned_alloc(sizeof(float) * (G + TRELLIS_BEST_PAD), "Viterbi costs");
    ws->arg = harp_aligned_alloc(sizeof(int32_t) * G, "Viterbi back-pointers");
    ws->xrot = harp_aligned_alloc(sizeof(float) * (size_t)(cb->S * cb->V), "Viterbi sequence");
    ws->tmp = harp_aligned_alloc(sizeof(uint32_t) * (size_t)cb->S, "Viterbi states");
    if (!ws->bp || !ws->cost || !ws->best[0] || !ws->best[1] || !ws->arg || !ws->xrot || !ws->tmp) {
        harp_viterbi_ws_free(ws);
        return NULL;
    }
    for (int k = 0; k < 2; k++) memset(ws->best[k], 0, sizeof(float) * (G + TRELLIS_BEST_PAD));
    return ws;
}

void harp_viterbi_ws_free(harp_viterbi_ws *ws) {
    if (!ws) return;
    harp_free_aligned(ws->bp), harp_free_aligned(ws->cost), harp_free_aligned(ws->best[0]);
    harp_free_aligned(ws->best[1]), harp_free_aligned(ws->arg), harp_free_aligned(ws->xrot);
    harp_free_aligned(ws->tmp);
    harp_free(ws);
}

/* ‖val(s) − x‖², in the one order every search uses. */
static inline float state_dist(const harp_tcb *cb, uint32_t s, const float *x) {
    const float d0 = cb->val[s] - x[0];
    if (cb->V == 1) return d0 * d0;
    const float d1 = cb->val[((size_t)1 << cb->L) + s] - x[1];
    return d0 * d0 + d1 * d1;
}

/* Start-group costs: 0 everywhere, or +inf except the group `overlap` (the tail-biting start). */
static void init_best(float *best, size_t G, int32_t overlap) {
    for (size_t g = 0; g < G; g++) best[g] = overlap < 0 || (size_t)overlap == g ? 0.0f : INFINITY;
}

/* Final state: argmin over all states (open) or those with s mod G == overlap; first on ties.
 * cost(s) = dist_{S−1}(s) + best[s >> KV]. */
static uint32_t final_state(const harp_tcb *cb, const float *x, int32_t overlap, const float *best, float *cost) {
    const uint32_t N = 1u << cb->L, G = N >> cb->KV, J = 1u << cb->KV;
    const float *xt = x + (size_t)(cb->S - 1) * cb->V;
    const uint32_t n = overlap < 0 ? N : J;
    uint32_t arg = 0;
    float c0 = INFINITY;
    for (uint32_t k = 0; k < n; k++) {
        const uint32_t s = overlap < 0 ? k : (uint32_t)overlap + k * G;
        const float c = state_dist(cb, s, xt) + best[s >> cb->KV];
        if (k == 0 || c < c0) c0 = c, arg = s;
    }
    *cost = c0;
    return arg;
}

static void traceback(const harp_tcb *cb, const uint8_t *bp, uint32_t s, uint32_t *states) {
    const uint32_t G = (1u << cb->L) >> cb->KV;
    states[cb->S - 1] = s;
    for (int t = cb->S - 1; t > 0; t--) {
        const uint32_t g = s >> cb->KV;
        s = g + (uint32_t)bp[(size_t)t * G + g] * G;
        states[t - 1] = s;
    }
}

float harp_viterbi_ref(const harp_tcb *cb, const float *x, int32_t overlap, uint32_t *states, harp_viterbi_ws *ws) {
    const uint32_t N = 1u << cb->L, G = N >> cb->KV, J = 1u << cb->KV;
    float *cost = ws->cost, *best = ws->best[0];
    init_best(best, G, overlap);
    for (uint32_t s = 0; s < N; s++) cost[s] = state_dist(cb, s, x) + best[s >> cb->KV];
    for (int t = 1; t < cb->S; t++) {
        uint8_t *bp = ws->bp + (size_t)t * G;
        for (uint32_t g = 0; g < G; g++) {
            float b = cost[g];
            uint32_t arg = 0;
            for (uint32_t j = 1; j < J; j++)
                if (cost[g + j * G] < b) b = cost[g + j * G], arg = j;
            best[g] = b, bp[g] = (uint8_t)arg;
        }
        if (t == cb->S - 1) break;   /* the last row is formed by final_state */
        const float *xt = x + (size_t)t * cb->V;
        for (uint32_t s = 0; s < N; s++) cost[s] = state_dist(cb, s, xt) + best[s >> cb->KV];
    }
    float c;
    traceback(cb, ws->bp, final_state(cb, x, overlap, best, &c), states);
    return c;
}

/* ---- ISA selection ---------------------------------------------------------------------------- */

static harp_tisa g_max_isa = HARP_TISA_AVX512VBMI;

void harp_trellis_max_isa(harp_tisa isa) { g_max_isa = isa; }

harp_tisa harp_trellis_isa(void) {
    if (g_max_isa >= HARP_TISA_AVX512VBMI && trellis_cpu_avx512() && trellis_cpu_avx512vbmi())
        return HARP_TISA_AVX512VBMI;
    if (g_max_isa >= HARP_TISA_AVX512 && trellis_cpu_avx512()) return HARP_TISA_AVX512;
    if (g_max_isa >= HARP_TISA_AVX2 && trellis_cpu_avx2()) return HARP_TISA_AVX2;
    return HARP_TISA_REF;
}

const char *harp_tisa_name(harp_tisa isa) {
    return isa == HARP_TISA_AVX512VBMI ? "avx512vbmi"
           : isa == HARP_TISA_AVX512   ? "avx512"
           : isa == HARP_TISA_AVX2     ? "avx2"
                                       : "portable";
}

float harp_viterbi(const harp_tcb *cb, const float *x, int32_t overlap, uint32_t *states, harp_viterbi_ws *ws) {
    const uint32_t G = (1u << cb->L) >> cb->KV;
    const harp_tisa isa = harp_trellis_isa();
    trellis_steps_fn steps = isa >= HARP_TISA_AVX512 && G >= 32 ? trellis_steps_avx512
                             : isa >= HARP_TISA_AVX2 && G >= 16 ? trellis_steps_avx2
                                                                : NULL;
    if (!steps) return harp_viterbi_ref(cb, x, overlap, states, ws);
    init_best(ws->best[0], G, overlap);
    steps(cb, x, ws);
    float c;
    traceback(cb, ws->bp, final_state(cb, x, overlap, ws->best[0], &c), states);
    return c;
}

float harp_viterbi_tb(const harp_tcb *cb, const float *x, uint32_t *states, harp_viterbi_ws *ws, int use_ref) {
    const int S = cb->S, V = cb->V, half = S / 2;
    for (int t = 0; t < S; t++) memcpy(ws->xrot + (size_t)t * V, x + (size_t)((t + half) % S) * V, sizeof(float) * V);
    float (*search)(const harp_tcb *, const float *, int32_t, uint32_t *, harp_viterbi_ws *) =
        use_ref ? harp_viterbi_ref : harp_viterbi;
    search(cb, ws->xrot, HARP_TB_OPEN, ws->tmp, ws);
    return search(cb, x, (int32_t)(ws->tmp[S - half] >> cb->KV), states, ws);
}
