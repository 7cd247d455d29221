/* The plain-C side of the batched Viterbi (trellis_gpu.h): device batch sizing and the batched call,
 * on the CPU (the twin the device is tested against) or handed to the device. */
#include "trellis_gpu.h"

#include <string.h>

#include "core/core.h"
#include "quant_internal.h"

size_t harp_tvit_seq_bytes(const harp_tcb *cb) {
    const size_t G = ((size_t)1 << cb->L) >> cb->KV, S = (size_t)cb->S;
    return S * harp_tvit_bp_words((uint32_t)G, cb->KV) * sizeof(uint32_t) + S * (size_t)cb->V * sizeof(float) +
           S * sizeof(uint32_t) + 3 * sizeof(uint32_t);
}

int64_t harp_tvit_plan_batch(size_t free_bytes, size_t seq_bytes, int64_t want) {
    if (seq_bytes == 0 || want < 1) return 0;
    const size_t fit = free_bytes / 2 / seq_bytes;
    return (uint64_t)want < fit ? want : (int64_t)fit;
}

size_t harp_tvit_smem_bytes(const harp_tcb *cb) {
    return 2 * sizeof(float) * (((size_t)1 << cb->L) >> cb->KV) + 32 * (sizeof(float) + sizeof(uint32_t));
}

void harp_tvit_bp_pack(const uint8_t *j, uint32_t G, int KV, uint32_t *step) {
    memset(step, 0, sizeof(uint32_t) * harp_tvit_bp_words(G, KV));
    for (uint32_t g = 0; g < G; g++)
        for (int k = 0; k < KV; k++) step[(g >> 5) * (uint32_t)KV + (uint32_t)k] |= (uint32_t)((j[g] >> k) & 1) << (g & 31);
}

typedef struct {
    const harp_tcb *cb;
    const float *x;
    uint32_t *states;
    float *cost;
    int use_ref;
} tvit_job;

static void tvit_rows(const void *ctx, int64_t i0, int64_t count, void *ws) {
    const tvit_job *J = ctx;
    const int64_t sv = (int64_t)J->cb->S * J->cb->V;
    for (int64_t i = i0; i < i0 + count; i++) {
        const float c = harp_viterbi_tb(J->cb, J->x + i * sv, J->states + i * J->cb->S, ws, J->use_ref);
        if (J->cost) J->cost[i] = c;
    }
}

harp_status harp_tvit_run(const harp_tcb *cb, harp_tvit_gpu *gpu, int64_t count, const float *x, uint32_t *states,
                          float *cost, int use_ref, const char *what) {
    if (count <= 0) return HARP_OK;
    if (gpu) return harp_tvit_gpu_run(gpu, count, x, states, cost);
    const tvit_job J = {cb, x, states, cost, use_ref};
    const harp_rowchunks_spec s = {.m = count, .chunk = 2, .fn = tvit_rows, .ctx = &J,
                                   .ws_new = harp_viterbi_ws_new_any, .ws_free = harp_viterbi_ws_free_any,
                                   .ws_arg = cb, .stage = "trellis", .what = what};
    return harp_rowchunks_spec_run(&s);
}
