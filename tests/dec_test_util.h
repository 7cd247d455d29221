/* A packed linear with transforms for the GPU engine's CPU and device tests (test_dec_linear,
 * test_dec_fold). */
#ifndef HARP_TESTS_DEC_TEST_UTIL_H
#define HARP_TESTS_DEC_TEST_UTIL_H
#include <stdlib.h>

#include "core/core.h"
#include "cuda/decode.h"
#include "harp/qtensor.h"
#include "harp/quant.h"
#include "harp/rotate.h"
#include "test_util.h"

/* A quantized tensor of type t (m × n) with transforms: RHT / butterfly on both sides, signs, slices. */
/* QTIP types use trellis code tcode (ignored otherwise). */
static inline harp_status make_tensor(harp_qtype t, harp_tcode tcode, int64_t m, int64_t n, int rot, uint64_t seed, harp_qtensor *w) {
    harp_rng rng;
    harp_rng_seed(&rng, seed);
    float *W = malloc(sizeof(float) * m * n);
    double *H = calloc((size_t)(n * n), sizeof(double));
    for (int64_t i = 0; i < m * n; i++) W[i] = (float)harp_rng_normal(&rng);
    for (int64_t i = 0; i < n; i++) H[i * n + i] = 1.0;
    harp_status st;
    if (t == HARP_QTYPE_F16) {
        st = harp_qtensor_init(w, t, m, n, 0);
        uint16_t *h = malloc(sizeof(uint16_t) * m * n);
        for (int64_t i = 0; i < m * n; i++) h[i] = harp_f32_to_f16(W[i]);
        w->planes[0].data = w->planes[0].owned = h;
        w->planes[0].nbytes = sizeof(uint16_t) * m * n;
    } else if (t == HARP_QTYPE_QTIP2 || t == HARP_QTYPE_QTIP3 || t == HARP_QTYPE_QTIP4) {
        harp_quant_params p = harp_quant_default_params(HARP_QMETHOD_QTIP, (int)harp_qtype_bits(t));
        p.qtip_code = tcode;
        st = harp_quantize_linear(&p, m, n, W, H, "dec_linear test", w);
    } else {
        const int bits = t == HARP_QTYPE_INT2 || t == HARP_QTYPE_E8P2 ? 2 : t == HARP_QTYPE_INT3 || t == HARP_QTYPE_RVQ3 ? 3
                       : t == HARP_QTYPE_INT8 ? 8 : 4;
        harp_quant_params p = t == HARP_QTYPE_LDP2 ? harp_quant_default_params(HARP_QMETHOD_LDP, 2)
                              : harp_quant_default_params(t >= HARP_QTYPE_E8P2 ? HARP_QMETHOD_QUIP : HARP_QMETHOD_RTN, bits);
        p.tune_iters = 0;
        st = harp_quantize_linear(&p, m, n, W, H, "dec_linear test", w);
    }
    harp_qxf *x = &w->xf;
    if (st == HARP_OK && rot) {
        harp_rot_params rp;
        harp_rot_params_default(&rp);
        rp.theta_init_scale = 0.2;
        rp.schedule = HARP_BF_SCHEDULE_HADAMARD;
        const harp_rot_kind k = rot == 1 ? HARP_ROT_RHT : HARP_ROT_BUTTERFLY;
        st = harp_rot_create(k, n, &rp, seed + 1, &x->rot_in);
        if (st == HARP_OK) st = harp_rot_create(k, m, &rp, seed + 2, &x->rot_out);
        x->s_in = malloc((size_t)n);
        x->s_out = malloc((size_t)m);
        for (int64_t i = 0; i < n; i++) x->s_in[i] = (harp_rng_u64(&rng) >> 63) ? -1 : 1;
        for (int64_t i = 0; i < m; i++) x->s_out[i] = (harp_rng_u64(&rng) >> 63) ? -1 : 1;
        x->n_slices = 2;
        x->slice_len[0] = m / 3, x->slice_len[1] = m - m / 3;
        x->slice_scale[0] = 0.7f, x->slice_scale[1] = 1.3f;
    }
    if (st == HARP_OK) st = harp_qtensor_derive(w);
    free(W), free(H);
    return st;
}

/* make_tensor, then its engine form L (dec_linear_from_qtensor, named what); each step CHECKed. Where
 * the second fails, w is freed; where the first fails, nothing was made to free. */
static inline harp_status make_linear(harp_qtype t, harp_tcode tcode, int64_t m, int64_t n, int rot, uint64_t seed, const char *what,
                                      harp_qtensor *w, dec_linear *L) {
    harp_status st = make_tensor(t, tcode, m, n, rot, seed, w);
    CHECK_OK(st);
    if (st) return st;
    CHECK_OK(st = dec_linear_from_qtensor(w, what, L));
    if (st) harp_qtensor_free(w);
    return st;
}

#endif
