/* Trellis codes (§5.6.3): the state → value functions that define the format, and the codebook
 * object the search and the decoders read (every state's values, expanded once). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "trellis.h"

static const char *const tcode_names[] = {NULL, "1mad", "3inst", "hyb", "table"};

const char *harp_tcode_name(harp_tcode c) {
    return c >= HARP_TCODE_1MAD && c <= HARP_TCODE_TABLE ? tcode_names[c] : NULL;
}

harp_status harp_tcode_parse(const char *s, harp_tcode *out) {
    for (int c = HARP_TCODE_1MAD; c <= HARP_TCODE_HYB; c++)
        if (s && strcmp(s, tcode_names[c]) == 0) {
            *out = (harp_tcode)c;
            return HARP_OK;
        }
    return harp_err(HARP_ERR_INVALID_ARG, "trellis code '%s' is not one of 1mad, 3inst, hyb", s ? s : "(null)");
}

int harp_tcode_v(harp_tcode c) {
    return c == HARP_TCODE_1MAD || c == HARP_TCODE_3INST ? 1 : c == HARP_TCODE_HYB ? 2 : 0;
}

static float f16_round(float v) { return harp_f16_to_f32(harp_f32_to_f16(v)); }

float harp_tcode_1mad(uint32_t s) {
    const uint32_t x = s * 34038481u + 76625530u;
    const int y = (int)((x & 255u) + ((x >> 8) & 255u) + ((x >> 16) & 255u) + (x >> 24)) - 510;
    return f16_round((float)y / 147.800537109375f);
}

float harp_tcode_3inst(uint32_t s) {
    const uint32_t x = s * 89226354u + 64248484u;
    const uint32_t r = (x & 0x8FFF8FFFu) ^ 0x3B603B60u;
    /* both halves have exponents in [12, 15], so their fp32 sum is exact; rounding it once to
     * fp16 is what a half-precision add returns */
    return f16_round(harp_f16_to_f32((uint16_t)(r >> 16)) + harp_f16_to_f32((uint16_t)(r & 0xFFFFu)));
}

void harp_tcode_hyb(const uint16_t *tlut, uint32_t s, float out[2]) {
    const uint32_t h = harp_hyb_hash(s), row = (h >> 6) & (HARP_HYB_N - 1);
    out[0] = harp_f16_to_f32((uint16_t)(tlut[2 * row] ^ (h & 0x8000u)));
    out[1] = harp_f16_to_f32(tlut[2 * row + 1]);
}

harp_status harp_hyb_table_check(const uint16_t *tlut, const char *what) {
    if (!tlut) return harp_err(HARP_ERR_FORMAT, "%s: the HYB trellis table (512 × 2 fp16) is missing", what);
    int nonzero = 0;
    for (int i = 0; i < 2 * HARP_HYB_N; i++) {
        if ((tlut[i] & 0x7C00u) == 0x7C00u)
            return harp_err(HARP_ERR_FORMAT, "%s: HYB trellis table entry %d is not finite", what, i);
        nonzero |= (tlut[i] & 0x7FFFu) != 0;
    }
    if (!nonzero) return harp_err(HARP_ERR_FORMAT, "%s: the HYB trellis table is all zero", what);
    return HARP_OK;
}

/* ---- codebook --------------------------------------------------------------------------------- */

static harp_status tcb_alloc(harp_tcb *cb, int L, int K, int V, int S, harp_tcode code) {
    memset(cb, 0, sizeof *cb);
    cb->L = L, cb->K = K, cb->V = V, cb->KV = K * V, cb->S = S, cb->code = code;
    cb->val = harp_aligned_alloc(sizeof(float) * (size_t)V << L, "trellis codebook");
    return cb->val ? HARP_OK : HARP_ERR_OOM;
}

static void tcb_rms(harp_tcb *cb) {
    const size_t n = (size_t)cb->V << cb->L;
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)cb->val[i] * cb->val[i];
    cb->rms = sqrt(ss / (double)n);
}

harp_status harp_tcb_init(harp_tcb *cb, harp_tcode code, int K, const uint16_t *tlut, const char *what) {
    const int V = harp_tcode_v(code);
    if (V == 0) return harp_err(HARP_ERR_INVALID_ARG, "%s: trellis code %d is not a format code", what, (int)code);
    if (K < 2 || K > 4) return harp_err(HARP_ERR_INVALID_ARG, "%s: trellis K = %d (2, 3 or 4 bits)", what, K);
    if (code == HARP_TCODE_HYB) HARP_TRY(harp_hyb_table_check(tlut, what));
    HARP_TRY(tcb_alloc(cb, HARP_TRELLIS_L, K, V, HARP_TRELLIS_T / V, code));
    const uint32_t N = 1u << HARP_TRELLIS_L;
    if (code == HARP_TCODE_HYB) memcpy(cb->tlut, tlut, sizeof cb->tlut);
    for (uint32_t s = 0; s < N; s++) {
        if (code == HARP_TCODE_1MAD) cb->val[s] = harp_tcode_1mad(s);
        else if (code == HARP_TCODE_3INST) cb->val[s] = harp_tcode_3inst(s);
        else {
            float v[2];
            harp_tcode_hyb(tlut, s, v);
            cb->val[s] = v[0], cb->val[N + s] = v[1];
        }
    }
    tcb_rms(cb);
    return HARP_OK;
}

harp_status harp_tcb_init_table(harp_tcb *cb, int L, int K, int V, int S, const float *val) {
    if (L < 2 || L > 16 || K < 1 || V < 1 || V > 2 || K * V >= L || K * V > 8 || S < 2 || !val)
        return harp_err(HARP_ERR_INVALID_ARG, "trellis table: L = %d, K = %d, V = %d, S = %d out of range", L, K, V, S);
    HARP_TRY(tcb_alloc(cb, L, K, V, S, HARP_TCODE_TABLE));
    memcpy(cb->val, val, sizeof(float) * (size_t)V << L);
    tcb_rms(cb);
    return HARP_OK;
}

void harp_tcb_free(harp_tcb *cb) {
    if (!cb) return;
    harp_free_aligned(cb->val);
    cb->val = NULL;
}
