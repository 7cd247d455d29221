/* Rows of the QTIP trellis types qtip2 / qtip3 / qtip4 in the traits table (docs/format/trellis.md):
 * planes trellis (the packed tiles), tlut (the HYB table, hyb only), wscale and tcode; the decoded
 * scale, the cross-plane check, dequantized rows, the reference GEMV (harp_tmat_gemv_ref: the
 * format's definition), the best CPU GEMV (harp_tmat_gemv: AVX-512 / AVX2 / portable), and the
 * solver that fills the planes (BlockLDLQ b = 16 + tail-biting trellis, trellis_ldlq.c). */
#include <string.h>

#include "core/core.h"
#include "quant/quant_internal.h"
#include "quant/qtype_traits.h"
#include "quant/trellis.h"

enum { QT_TR_CODES = 0, QT_TR_TLUT = 1, QT_TR_WSCALE = 2, QT_TR_TCODE = 3 };

void qt_trellis_decode(harp_qtensor *w) {
    memcpy(&w->scale0, w->planes[QT_TR_WSCALE].data, sizeof(float));
    w->scale1 = 0.0f;
}

static harp_tcode plane_code(const harp_qtensor *w) {
    int32_t c;
    memcpy(&c, w->planes[QT_TR_TCODE].data, sizeof c);
    return (harp_tcode)c;
}

/* The stored matrix the trellis kernels read, over the tensor's planes (no copy). */
static harp_tmat tmat_of(const harp_qtensor *w) {
    return (harp_tmat){.m = (int32_t)w->m, .n = (int32_t)w->n, .K = (int32_t)harp_qtype_bits(w->type),
                       .code = plane_code(w), .scale = w->scale0, .codes = w->planes[QT_TR_CODES].data,
                       .ncodes = w->planes[QT_TR_CODES].nbytes / sizeof(uint16_t), .tlut = w->planes[QT_TR_TLUT].data};
}

harp_status qt_trellis_check(const harp_qtensor *w, const char *what) {
    const harp_tcode code = plane_code(w);
    if ((code == HARP_TCODE_HYB) != (w->planes[QT_TR_TLUT].data != NULL))
        return harp_err(HARP_ERR_FORMAT, "%s: trellis code %s %s a HYB table (tlut)", what,
                        harp_tcode_name(code) ? harp_tcode_name(code) : "?", code == HARP_TCODE_HYB ? "needs" : "has no use for");
    float ws;
    memcpy(&ws, w->planes[QT_TR_WSCALE].data, sizeof ws);
    if (memcmp(&ws, &w->scale0, sizeof ws))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: scale differs from the wscale plane (call harp_qtensor_derive)", what);
    const harp_tmat t = tmat_of(w);
    return harp_tmat_check(&t, what);
}

void qt_trellis_dequant_rows(const harp_qtensor *w, int64_t r0, int64_t r1, float *out, size_t ld) {
    const harp_tmat t = tmat_of(w);
    harp_tmat_dequant_rows(&t, (int32_t)r0, (int32_t)r1, out, ld);
}

void qt_trellis_gemv_ref(const harp_qtensor *w, const float *x, float *y) {
    const harp_tmat t = tmat_of(w);
    harp_tmat_gemv_ref(&t, x, y);
}

harp_status qt_trellis_gemv(const harp_qtensor *w, const float *x, float *y, int act_q8) {
    (void)act_q8; /* no int8-activation kernel: the decode is the cost, not the activations */
    const harp_tmat t = tmat_of(w);
    return harp_tmat_gemv(&t, x, y);
}

/* ---- solver --------------------------------------------------------------------------------------- */

harp_status harp_qtip_quantize(const harp_quant_params *p, int64_t m, int64_t n, const float *W, const double *H,
                               const char *what, harp_qtensor *out, float *Wh) {
    const harp_tcode code = p->qtip_code ? p->qtip_code : HARP_TCODE_HYB;
    if (harp_tcode_v(code) == 0)
        return harp_err(HARP_ERR_INVALID_ARG, "%s: trellis code %d is not 1mad, 3inst or hyb", what, (int)code);
    uint16_t tlut[2 * HARP_HYB_N];
    if (code == HARP_TCODE_HYB) HARP_TRY(harp_hyb_table_shared(p->qtip_table_seed, tlut));
    harp_trellis_params tp = harp_trellis_default_params(p->bits, code, code == HARP_TCODE_HYB ? tlut : NULL);
    if (p->scale_override > 0) tp.scale_override = p->scale_override;
    tp.regularize = p->regularize, tp.sigma_reg = p->sigma_reg, tp.keep_w_hat = 1;
    tp.viterbi = p->qtip_gpu ? HARP_TVIT_GPU : HARP_TVIT_STRIPS;
    tp.progress = p->progress, tp.progress_user = p->progress_user;
    harp_trellis_linear q;
    HARP_TRY(harp_trellis_quantize_linear(&tp, m, n, W, H, what, &q));
    harp_status st = HARP_OK;
    for (int i = 0; i < harp_qtype_traits_of(out->type)->n_planes && !st; i++)
        if (i != QT_TR_TLUT || code == HARP_TCODE_HYB) st = harp_qtensor_alloc_plane(out, i);
    if (!st) {
        memcpy(out->planes[QT_TR_CODES].owned, q.codes, out->planes[QT_TR_CODES].nbytes);
        if (code == HARP_TCODE_HYB) memcpy(out->planes[QT_TR_TLUT].owned, q.tlut, sizeof q.tlut);
        const float ws = (float)q.wscale;
        const int32_t c = (int32_t)code;
        memcpy(out->planes[QT_TR_WSCALE].owned, &ws, sizeof ws);
        memcpy(out->planes[QT_TR_TCODE].owned, &c, sizeof c);
        memcpy(Wh, q.w_hat, (size_t)(m * n) * sizeof *Wh);
        out->chol_jitter_steps = q.chol_jitter_steps;
    }
    harp_trellis_linear_free(&q);
    return st;
}
