/* Rows of the lattice types e8p2 / rvq3 / rvq4 in the traits table: decoded scales, dequantized
 * rows, the reference decode-GEMV (double accumulation: the format's definition) and the best CPU
 * GEMV (qgemv.c: AVX2 / portable, int8 activations on request). */
#include <string.h>

#include "core/core.h"
#include "quant/e8p.h"
#include "quant/qgemv_tab.h"
#include "quant/quant_internal.h"
#include "quant/qtype_traits.h"

/* planes: 0 codes, then codes2 (rvq3 / rvq4), then wscale */
void qt_e8p_decode(harp_qtensor *w) {
    float ws[2];
    memcpy(ws, w->planes[w->type == HARP_QTYPE_E8P2 ? 1 : 2].data, sizeof ws);
    w->scale0 = ws[0];
    w->scale1 = w->type == HARP_QTYPE_E8P2 ? 0.0f : ws[1];
}

void qt_e8p_view(const harp_qtensor *w, harp_e8p_view *v) {
    v->type = (int32_t)w->type;
    v->m = (int32_t)w->m;
    v->n = (int32_t)w->n;
    v->ncode = harp_e8p_ncode(w->n);
    v->scale0 = w->scale0;
    v->scale1 = w->scale1;
    v->codes0 = w->planes[0].data;
    v->codes1 = w->type == HARP_QTYPE_E8P2 ? NULL : w->planes[1].data;
}

/* second-stage decoder: E8P12 (rvq4), E81B (rvq3), none (e8p2) */
static void dec1(const harp_e8p_view *w, size_t idx, float out[8]) {
    if (w->type == HARP_QTYPE_RVQ4) e8p_decode(((const uint16_t *)w->codes1)[idx], out);
    else if (w->type == HARP_QTYPE_RVQ3) e81b_decode(((const uint8_t *)w->codes1)[idx], out);
    else memset(out, 0, 8 * sizeof(float));
}

void qt_e8p_gemv_ref(const harp_qtensor *t, const float *x, float *y) {
    harp_e8p_view v, *w = &v;
    qt_e8p_view(t, w);
    for (int32_t r = 0; r < w->m; r++) {
        double s0 = 0, s1 = 0;
        for (int32_t k = 0; k < w->ncode; k++) {
            size_t idx = (size_t)r * w->ncode + k;
            float a[8], b[8];
            e8p_decode(w->codes0[idx], a);
            dec1(w, idx, b);
            for (int i = 0; i < 8 && 8 * k + i < w->n; i++) {
                s0 += (double)a[i] * x[8 * k + i];
                s1 += (double)b[i] * x[8 * k + i];
            }
        }
        y[r] = (float)((double)w->scale0 * s0 + (double)w->scale1 * s1);
    }
}

void qt_e8p_dequant_rows(const harp_qtensor *t, int64_t r0, int64_t r1, float *out, size_t ld) {
    harp_e8p_view v, *w = &v;
    qt_e8p_view(t, w);
    for (int64_t r = r0; r < r1; r++) {
        float *o = out + (size_t)(r - r0) * ld;
        for (int32_t k = 0; k < w->ncode; k++) {
            size_t idx = (size_t)r * w->ncode + k;
            float a[8], b[8];
            e8p_decode(w->codes0[idx], a);
            dec1(w, idx, b);
            for (int i = 0; i < 8 && 8 * k + i < w->n; i++) o[8 * k + i] = w->scale0 * a[i] + w->scale1 * b[i];
        }
    }
}

harp_status qt_e8p_gemv(const harp_qtensor *t, const float *x, float *y, int act_q8) {
    harp_e8p_view v;
    qt_e8p_view(t, &v);
    if (act_q8 && qk_q8_run(&v, x, y, qk_q8_simd()) == HARP_OK) return HARP_OK;
    qk_gemv_run(&v, x, y, qk_isa());
    return HARP_OK;
}

/* ---- explicit variants (include/harp/qkernels.h) --------------------------------------------- */

static harp_status lattice_view(const harp_qtensor *t, const char *fn, harp_e8p_view *v) {
    const harp_qtype_traits *tr = harp_qtype_traits_of(t->type);
    if (!tr || tr->layout != HARP_QLAYOUT_E8P)
        return harp_err(HARP_ERR_INVALID_ARG, "%s: type %s is not a lattice type", fn, tr ? tr->name : "?");
    qt_e8p_view(t, v);
    return HARP_OK;
}

harp_status harp_qgemv_portable(const harp_qtensor *w, const float *x, float *y) {
    harp_e8p_view v;
    HARP_TRY(lattice_view(w, "harp_qgemv_portable", &v));
    qk_gemv_run(&v, x, y, HARP_QISA_PORTABLE);
    return HARP_OK;
}

harp_status harp_qgemv_q8(const harp_qtensor *w, const float *x, float *y) {
    harp_e8p_view v;
    HARP_TRY(lattice_view(w, "harp_qgemv_q8", &v));
    return qk_q8_run(&v, x, y, qk_q8_simd());
}

harp_status harp_qgemv_q8_portable(const harp_qtensor *w, const float *x, float *y) {
    harp_e8p_view v;
    HARP_TRY(lattice_view(w, "harp_qgemv_q8_portable", &v));
    return qk_q8_run(&v, x, y, 0);
}
