/* Trellis bit packing (§5.6.5), the tile ↔ sequence permutation (§5.6.6), one-tile encode and
 * decode, and the feedback-free quantization of many tiles (HARP's target, §4.12). */
#include <string.h>

#include "core/core.h"
#include "harp/quant.h"
#include "quant_internal.h"
#include "trellis_gpu.h"
#include "trellis_kern.h"

harp_status harp_trellis_pack(const harp_tcb *cb, const uint32_t *states, uint16_t *words) {
    const int L = cb->L, KV = cb->KV, S = cb->S, B = S * KV;
    const uint32_t gmask = (1u << (L - KV)) - 1u, jmask = (1u << KV) - 1u;
    if (B < L) return harp_err(HARP_ERR_INVALID_ARG, "trellis pack: %d bits cannot hold a %d-bit state", B, L);
    for (int t = 0; t < S; t++) {
        const uint32_t prev = states[(t + S - 1) % S];
        if (states[t] >> L || (states[t] >> KV) != (prev & gmask))
            return harp_err(HARP_ERR_INVALID_ARG, "trellis pack: state %d (0x%x) does not follow state %d (0x%x)%s", t,
                            (unsigned)states[t], (t + S - 1) % S, (unsigned)prev, t == 0 ? " (tail-biting wrap)" : "");
    }
    memset(words, 0, sizeof(uint16_t) * (size_t)harp_tcb_words(cb));
    int pos = 0;
    for (int t = 0; t < S && pos < B; t++) {
        const int nb = t == 0 ? L : KV;
        const uint32_t v = t == 0 ? states[0] : states[t] & jmask;
        for (int i = nb - 1; i >= 0 && pos < B; i--, pos++)
            if ((v >> i) & 1u) words[pos >> 4] |= (uint16_t)(0x8000u >> (pos & 15));
    }
    return HARP_OK;
}

/* The L-bit window at bit o of the circular B-bit stream (MSB first in each word). */
static inline uint32_t stream_window(const uint16_t *w, int B, int o, int L) {
    if ((B & 15) == 0) {
        const int q = o >> 4, nw = B >> 4;
        const uint32_t v = ((uint32_t)w[q] << 16) | w[(q + 1) % nw];
        return (v >> (32 - L - (o & 15))) & ((1u << L) - 1u);
    }
    uint32_t v = 0;
    for (int i = 0; i < L; i++) {
        const int b = (o + i) % B;
        v = (v << 1) | ((w[b >> 4] >> (15 - (b & 15))) & 1u);
    }
    return v;
}

static void unpack_states(int L, int KV, int S, const uint16_t *words, uint32_t *states) {
    for (int t = 0; t < S; t++) states[t] = stream_window(words, S * KV, t * KV, L);
}

void harp_trellis_unpack(const harp_tcb *cb, const uint16_t *words, uint32_t *states) {
    unpack_states(cb->L, cb->KV, cb->S, words, states);
}

void harp_tcode_value(harp_tcode code, const uint16_t *tlut, uint32_t s, float *out) {
    if (code == HARP_TCODE_1MAD) out[0] = harp_tcode_1mad(s);
    else if (code == HARP_TCODE_3INST) out[0] = harp_tcode_3inst(s);
    else harp_tcode_hyb(tlut, s, out);
}

void harp_trellis_decode_tile(harp_tcode code, int K, const uint16_t *tlut, const uint16_t *words, float *out,
                              int64_t ld) {
    const int V = harp_tcode_v(code), S = HARP_TRELLIS_T / V;
    uint32_t states[HARP_TRELLIS_T];
    unpack_states(HARP_TRELLIS_L, K * V, S, words, states);
    for (int t = 0; t < S; t++) {
        float v[2];
        harp_tcode_value(code, tlut, states[t], v);
        for (int d = 0; d < V; d++) {
            const int e = harp_trellis_perm(t * V + d);
            out[(e >> 4) * ld + (e & 15)] = v[d];
        }
    }
}

void trellis_tile_seq(const float *tile, int64_t ld, float *seq) {
    for (int p = 0; p < HARP_TRELLIS_T; p++) {
        const int e = harp_trellis_perm(p);
        seq[p] = tile[(e >> 4) * ld + (e & 15)];
    }
}

void trellis_tile_finish(const harp_tcb *cb, const uint32_t *states, uint16_t *words, float *recon, int64_t ldr) {
    /* a two-pass result is tail-biting by construction, so packing cannot fail */
    (void)harp_trellis_pack(cb, states, words);
    if (recon) {
        const size_t N = (size_t)1 << cb->L;
        for (int p = 0; p < HARP_TRELLIS_T; p++) {
            const int e = harp_trellis_perm(p);
            recon[(e >> 4) * ldr + (e & 15)] = cb->val[(size_t)(p % cb->V) * N + states[p / cb->V]];
        }
    }
}

float harp_trellis_quantize_tile(const harp_tcb *cb, const float *tile, int64_t ld, uint16_t *words, float *recon,
                                 int64_t ldr, harp_viterbi_ws *ws) {
    float seq[HARP_TRELLIS_T];
    uint32_t states[HARP_TRELLIS_T];
    trellis_tile_seq(tile, ld, seq);
    const float cost = harp_viterbi_tb(cb, seq, states, ws, 0);
    trellis_tile_finish(cb, states, words, recon, ldr);
    return cost;
}

/* Tile k of X (m × n) into t (16 × 16), boundary tiles zero-padded; returns its rows and columns. */
static void tile_k_get(int64_t m, int64_t n, const float *X, int64_t k, float *t, int *rows, int *cols) {
    const int64_t nt = (n + 15) / 16, i = k / nt, j = k % nt, o = i * 16 * n + j * 16;
    *rows = (int)(m - 16 * i < 16 ? m - 16 * i : 16), *cols = (int)(n - 16 * j < 16 ? n - 16 * j : 16);
    memset(t, 0, sizeof(float) * 256);
    for (int a = 0; a < *rows; a++) memcpy(t + 16 * a, X + o + a * n, sizeof(float) * (size_t)*cols);
}

/* The in-range part of a 16 × 16 reconstruction r of tile k into recon (m × n). */
static void tile_k_put(int64_t n, int64_t k, const float *r, int rows, int cols, float *recon) {
    const int64_t nt = (n + 15) / 16, o = (k / nt) * 16 * n + (k % nt) * 16;
    for (int a = 0; a < rows; a++) memcpy(recon + o + a * n, r + 16 * a, sizeof(float) * (size_t)cols);
}

/* Tile k of X (m × n): boundary tiles are zero-padded to 16 × 16 and only their in-range part of
 * recon is written. */
static void quantize_tile_k(const harp_tcb *cb, int64_t m, int64_t n, const float *X, int64_t k, uint16_t *words,
                            float *recon, harp_viterbi_ws *ws) {
    float t[256], r[256];
    int rows, cols;
    tile_k_get(m, n, X, k, t, &rows, &cols);
    harp_trellis_quantize_tile(cb, t, 16, words, r, 16, ws);
    if (recon) tile_k_put(n, k, r, rows, cols, recon);
}

typedef struct {
    const harp_tcb *cb;
    int64_t m, n;
    const float *X;
    int parts, part;
    uint16_t *codes;
    float *recon;
} tiles_job;

/* Tiles part + i·parts for i in [i0, i0 + count). */
static void tiles_run(const void *ctx, int64_t i0, int64_t count, void *ws) {
    const tiles_job *J = ctx;
    const int64_t nw = harp_tcb_words(J->cb);
    for (int64_t i = i0; i < i0 + count; i++) {
        const int64_t k = J->part + i * J->parts;
        quantize_tile_k(J->cb, J->m, J->n, J->X, k, J->codes + k * nw, J->recon, ws);
    }
}

static harp_status tiles_check(const harp_tcb *cb, int64_t m, int64_t n, const float *X, int parts, int part,
                               const char *what) {
    if (m <= 0 || n <= 0 || parts < 1 || part < 0 || part >= parts || cb->L != HARP_TRELLIS_L ||
        cb->S * cb->V != HARP_TRELLIS_T)
        return harp_err(HARP_ERR_INVALID_ARG, "%s: trellis tiles need m, n ≥ 1 (got %lld × %lld), 0 ≤ part < parts "
                        "and a format trellis", what, (long long)m, (long long)n);
    return harp_check_finite_f32(X, m * n, what);
}

harp_status harp_trellis_quantize_tiles(const harp_tcb *cb, int64_t m, int64_t n, const float *X, int parts,
                                        int part, uint16_t *codes, float *recon, const char *what) {
    HARP_TRY(tiles_check(cb, m, n, X, parts, part, what));
    const int64_t ntiles = ((m + 15) / 16) * ((n + 15) / 16);
    const tiles_job J = {cb, m, n, X, parts, part, codes, recon};
    const harp_rowchunks_spec s = {.m = (ntiles - part + parts - 1) / parts, .chunk = 4, .fn = tiles_run, .ctx = &J,
                                   .ws_new = harp_viterbi_ws_new_any, .ws_free = harp_viterbi_ws_free_any,
                                   .ws_arg = cb, .stage = "trellis", .what = what};
    return harp_rowchunks_spec_run(&s);
}

/* Tiles per batched call of harp_trellis_quantize_tiles_batched: bounds the host staging (2 KiB a tile). */
#define TILES_CHUNK 16384

harp_status harp_trellis_quantize_tiles_batched(const harp_tcb *cb, harp_tvit_gpu *gpu, int64_t m, int64_t n,
                                                const float *X, int parts, int part, uint16_t *codes, float *recon,
                                                const char *what) {
    HARP_TRY(tiles_check(cb, m, n, X, parts, part, what));
    const int64_t ntiles = ((m + 15) / 16) * ((n + 15) / 16), count = (ntiles - part + parts - 1) / parts;
    const int64_t nw = harp_tcb_words(cb), chunk = count < TILES_CHUNK ? count : TILES_CHUNK;
    float *x = harp_xmalloc(sizeof(float) * HARP_TRELLIS_T * (size_t)chunk, "trellis tiles");
    uint32_t *states = harp_xmalloc(sizeof(uint32_t) * HARP_TRELLIS_T * (size_t)chunk, "trellis tiles");
    harp_status st = x && states ? HARP_OK : HARP_ERR_OOM;
    for (int64_t c0 = 0; c0 < count && st == HARP_OK; c0 += chunk) {
        const int64_t nc = count - c0 < chunk ? count - c0 : chunk;
        for (int64_t i = 0; i < nc; i++) {
            float t[256];
            int rows, cols;
            tile_k_get(m, n, X, part + (c0 + i) * parts, t, &rows, &cols);
            trellis_tile_seq(t, 16, x + i * HARP_TRELLIS_T);
        }
        st = harp_tvit_run(cb, gpu, nc, x, states, NULL, 0, what);
        for (int64_t i = 0; i < nc && st == HARP_OK; i++) {
            const int64_t k = part + (c0 + i) * parts;
            float t[256], r[256];
            int rows, cols;
            tile_k_get(m, n, X, k, t, &rows, &cols);
            trellis_tile_finish(cb, states + i * cb->S, codes + k * nw, r, 16);
            if (recon) tile_k_put(n, k, r, rows, cols, recon);
        }
    }
    harp_free(x), harp_free(states);
    return st;
}

