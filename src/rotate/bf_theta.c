/* Butterfly θ storage encodings (algorithms.md §4.9): int8 codes with one fp16 scale per group, or
 * fp16 values. The codes are kept next to θ so that a serialised rotation reloads to the very θ the
 * quantizer used (no re-derivation of scales from rounded values). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rot_internal.h"

int64_t bf_group_count(const harp_rot *r) {
    int64_t g = 0;
    for (int t = 0; t < r->T; t++) g += r->st[t].D;
    return g * r->P;
}

void bf_theta_enc_clear(harp_rot *r) {
    free(r->theta_q);
    free(r->theta_s);
    free(r->theta_h);
    r->theta_q = NULL, r->theta_s = NULL, r->theta_h = NULL;
    r->theta_enc = HARP_THETA_F64;
}

int64_t harp_rot_butterfly_num_groups(const harp_rot *r) {
    return r && r->kind == HARP_ROT_BUTTERFLY ? bf_group_count(r) : 0;
}

harp_status harp_rot_butterfly_group_sizes(const harp_rot *r, int *sizes) {
    HARP_TRY(bf_need(r, "butterfly_group_sizes"));
    int64_t g = 0;
    for (int p = 0; p < r->P; p++)
        for (int t = 0; t < r->T; t++)
            for (int64_t c = 0; c < r->st[t].D; c++) sizes[g++] = (int)r->st[t].nparam;
    return HARP_OK;
}

harp_theta_enc harp_rot_butterfly_theta_enc(const harp_rot *r) {
    return r && r->kind == HARP_ROT_BUTTERFLY ? (harp_theta_enc)r->theta_enc : HARP_THETA_F64;
}

/* θ (nparam values) from the codes the rotation keeps (theta_enc int8 or fp16). */
static void theta_from_codes(const harp_rot *r, double *out) {
    if (r->theta_enc == HARP_THETA_INT8) {
        int64_t k = 0, g = 0;
        for (int p = 0; p < r->P; p++)
            for (int t = 0; t < r->T; t++)
                for (int64_t c = 0; c < r->st[t].D; c++, g++) {
                    double sc = harp_f16_to_f32(r->theta_s[g]);
                    for (int64_t i = 0; i < r->st[t].nparam; i++, k++) out[k] = (double)r->theta_q[k] * sc;
                }
    } else {
        for (int64_t k = 0; k < r->nparam; k++) out[k] = harp_f16_to_f32(r->theta_h[k]);
    }
}

const double *bf_theta_view(const harp_rot *r, double **tmp) {
    *tmp = NULL;
    if (r->theta) return r->theta;
    *tmp = harp_xmalloc((size_t)(r->nparam ? r->nparam : 1) * sizeof(double), "butterfly theta");
    if (*tmp) theta_from_codes(r, *tmp);
    return *tmp;
}

/* the fp64 copy back, for paths that change θ */
static harp_status bf_theta_keep(harp_rot *r) {
    if (r->theta) return HARP_OK;
    double *tmp;
    if (!bf_theta_view(r, &tmp)) return HARP_ERR_OOM;
    r->theta = tmp;
    return HARP_OK;
}

static void bf_theta_drop(harp_rot *r) {
    if (r->theta_enc == HARP_THETA_INT8 || r->theta_enc == HARP_THETA_FP16) {
        free(r->theta);
        r->theta = NULL;
    }
}

/* θ from codes (used by rounding and by the blob reader); takes ownership of nothing. The fp64 copy
 * is dropped: every reader of θ goes through bf_theta_view. */
harp_status bf_theta_decode(harp_rot *r, int enc, const int8_t *q, const uint16_t *scales, const uint16_t *h) {
    int64_t np = r->nparam, G = bf_group_count(r);
    if (enc != HARP_THETA_INT8 && enc != HARP_THETA_FP16) return harp_err(HARP_ERR_INVALID_ARG, "butterfly: unknown theta encoding %d", enc);
    bf_theta_enc_clear(r);
    if (enc == HARP_THETA_INT8) {
        r->theta_q = harp_xmalloc((size_t)np + 1, "butterfly int8 theta");
        r->theta_s = harp_xmalloc((size_t)G * sizeof(uint16_t) + 1, "butterfly theta scales");
        if (!r->theta_q || !r->theta_s) return HARP_ERR_OOM;
        memcpy(r->theta_q, q, (size_t)np);
        memcpy(r->theta_s, scales, (size_t)G * sizeof(uint16_t));
    } else {
        r->theta_h = harp_xmalloc((size_t)np * sizeof(uint16_t) + 1, "butterfly fp16 theta");
        if (!r->theta_h) return HARP_ERR_OOM;
        memcpy(r->theta_h, h, (size_t)np * sizeof(uint16_t));
    }
    r->theta_enc = enc;
    bf_theta_drop(r);   /* from here θ lives in its codes (a third of a running butterfly's memory) */
    return bf_refresh(r);
}

harp_status harp_rot_butterfly_round_theta(harp_rot *r, harp_theta_enc enc) {
    HARP_TRY(bf_need(r, "butterfly_round_theta"));
    HARP_TRY(bf_theta_keep(r));
    if (enc == HARP_THETA_F64) {
        bf_theta_enc_clear(r);
        return HARP_OK;
    }
    if (enc != HARP_THETA_INT8 && enc != HARP_THETA_FP16)
        return harp_err(HARP_ERR_INVALID_ARG, "butterfly_round_theta: unknown encoding %d", (int)enc);
    int64_t np = r->nparam, G = bf_group_count(r);
    for (int64_t k = 0; k < np; k++)
        if (!isfinite(r->theta[k]))
            return harp_err(HARP_ERR_NUMERIC, "butterfly_round_theta: theta[%lld] is not finite", (long long)k);
    int8_t *q = harp_xmalloc((size_t)np + 1, "butterfly int8 theta");
    uint16_t *s = harp_xmalloc((size_t)(G + np) * sizeof(uint16_t) + 1, "butterfly theta scales");
    if (!q || !s) {
        free(q);
        free(s);
        return HARP_ERR_OOM;
    }
    uint16_t *h = s + G;
    if (enc == HARP_THETA_FP16) {
        for (int64_t k = 0; k < np; k++) {
            h[k] = harp_f32_to_f16((float)r->theta[k]);
            if (!isfinite(harp_f16_to_f32(h[k]))) {
                free(q);
                free(s);
                return harp_err(HARP_ERR_NUMERIC, "butterfly_round_theta: theta[%lld] = %g overflows fp16", (long long)k,
                                r->theta[k]);
            }
        }
    } else {
        int64_t k0 = 0, g = 0;
        for (int p = 0; p < r->P; p++)
            for (int t = 0; t < r->T; t++)
                for (int64_t c = 0; c < r->st[t].D; c++, g++) {
                    int64_t cnt = r->st[t].nparam;
                    double mx = 0;
                    for (int64_t i = 0; i < cnt; i++) mx = fmax(mx, fabs(r->theta[k0 + i]));
                    uint16_t sh = harp_f32_to_f16((float)(mx / 127.0));
                    double sc = harp_f16_to_f32(sh);
                    /* all-zero group, or a scale below fp16's range: the reference's 1.0 (q = 0) */
                    if (!(sc > 0) || !isfinite(sc)) sh = harp_f32_to_f16(1.0f), sc = 1.0;
                    s[g] = sh;
                    for (int64_t i = 0; i < cnt; i++) {
                        double v = nearbyint(r->theta[k0 + i] / sc);
                        q[k0 + i] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
                    }
                    k0 += cnt;
                }
    }
    harp_status st = bf_theta_decode(r, enc, q, s, h);
    free(q);
    free(s);
    return st;
}
