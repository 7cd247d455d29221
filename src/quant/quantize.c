/* Per-linear entry point: argument and finiteness checks, dispatch, proxy loss, dequantization. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "quant/ldp.h"
#include "quant_internal.h"
#include "quant/qtype_traits.h"

harp_quant_params harp_quant_default_params(harp_qmethod method, int bits) {
    return (harp_quant_params){.method = method, .bits = bits, .group_size = 128, .percdamp = 0.01, .block_size = 128,
                               .regularize = 1, .sigma_reg = 0.01, .scale_override = bits == 2 ? 0.9 : -1.0,
                               .resid_scale_override = -1.0, .tune_iters = 10};
}

/* Packs the unpacked scalar codes q (m, n) into the qweight plane (qblocks.h layout; plane 0 of the
 * scalar types and of ldp2). */
static harp_status pack_scalar(harp_qtensor *out, const uint8_t *q) {
    HARP_TRY(harp_qtensor_alloc_plane(out, QT_SC_QWEIGHT));
    const int bits = (int)harp_qtype_bits(out->type);
    const int64_t n = out->n, rowbytes = harp_scalar_row_bytes(n, bits);
    uint8_t *pk = out->planes[QT_SC_QWEIGHT].owned;
    for (int64_t r = 0; r < out->m; r++)
        for (int64_t c = 0; c < n; c++) harp_scalar_put(pk + r * rowbytes, c, bits, q[r * n + c]);
    return HARP_OK;
}

static harp_status check_args(const harp_quant_params *p, int64_t m, int64_t n, const float *W, const double *H,
                              const char *what, harp_qtensor *out) {
    if (!p || !W || !out || m <= 0 || n <= 0)
        return harp_err(HARP_ERR_INVALID_ARG, "%s: bad arguments to quantize (m = %lld, n = %lld)", what, (long long)m,
                        (long long)n);
    memset(out, 0, sizeof *out);
    const int scalar = p->method == HARP_QMETHOD_RTN || p->method == HARP_QMETHOD_GPTQ;
    if (scalar && !(p->bits == 2 || p->bits == 3 || p->bits == 4 || p->bits == 8))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: %d bits not supported by RTN/GPTQ (2, 3, 4 or 8)", what, p->bits);
    if (p->method == HARP_QMETHOD_QUIP && !(p->bits >= 2 && p->bits <= 4))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: %d bits not supported by QuIP# (2, 3 or 4)", what, p->bits);
    if (p->method == HARP_QMETHOD_LDP && p->bits != 2)
        return harp_err(HARP_ERR_INVALID_ARG, "%s: %d bits not supported by LDP (2)", what, p->bits);
    if (p->method == HARP_QMETHOD_QTIP && !(p->bits >= 2 && p->bits <= 4))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: %d bits not supported by QTIP (2, 3 or 4)", what, p->bits);
    if (!scalar && p->method != HARP_QMETHOD_QUIP && p->method != HARP_QMETHOD_LDP && p->method != HARP_QMETHOD_QTIP)
        return harp_err(HARP_ERR_INVALID_ARG, "%s: unknown quantization method %d", what, (int)p->method);
    if (p->group_size < 0) return harp_err(HARP_ERR_INVALID_ARG, "%s: negative group size %d", what, p->group_size);
    if (p->method != HARP_QMETHOD_RTN && !H)
        return harp_err(HARP_ERR_INVALID_ARG, "%s: this method needs the input Hessian", what);
    char wname[256];
    snprintf(wname, sizeof wname, "%s: weight", what);
    HARP_TRY(harp_check_finite_f32(W, m * n, wname));
    if (H) {
        snprintf(wname, sizeof wname, "%s: Hessian", what);
        HARP_TRY(harp_check_finite_f64(H, n * n, wname));
    }
    return HARP_OK;
}

/* Runs the solver into out; Wh (m, n) receives the solver's reconstruction for the proxy loss. */
static harp_status solve(const harp_quant_params *p, int64_t m, int64_t n, const float *W, const double *H,
                         const char *what, harp_qtensor *out, float *Wh) {
    if (p->method == HARP_QMETHOD_QUIP) return harp_quip_quantize(p, m, n, W, H, what, out, Wh);
    if (p->method == HARP_QMETHOD_QTIP) return harp_qtip_quantize(p, m, n, W, H, what, out, Wh);
    uint8_t *q = harp_xmalloc((size_t)(m * n), "quantized codes");
    if (!q) return HARP_ERR_OOM;
    harp_status st = p->method == HARP_QMETHOD_RTN ? harp_rtn_quantize(p, m, n, W, out, q)
                     : p->method == HARP_QMETHOD_LDP ? harp_ldp_quantize(p, m, n, W, H, what, out, q)
                                                     : harp_gptq_quantize(p, m, n, W, H, what, out, q);
    if (!st) st = pack_scalar(out, q);
    harp_free(q);
    /* the stored format is exactly the solver's formula, so its dequantization is the reconstruction */
    if (!st) st = harp_qtensor_dequantize(out, Wh);
    return st;
}

harp_status harp_quantize_linear(const harp_quant_params *p, int64_t m, int64_t n, const float *W, const double *H,
                                 const char *what, harp_qtensor *out) {
    if (!what) what = "linear";
    HARP_TRY(check_args(p, m, n, W, H, what, out));
    double t0 = harp_time_s();
    HARP_TRY(harp_qtensor_init(out, harp_qtype_for(p->method, p->bits), m, n, p->group_size));
    float *Wh = harp_xmalloc((size_t)(m * n) * sizeof *Wh, "dequantized weights");
    harp_status st = Wh ? solve(p, m, n, W, H, what, out, Wh) : HARP_ERR_OOM;
    if (!st) st = harp_qtensor_derive(out);
    if (!st) out->proxy_loss = H ? harp_proxy_loss(m, n, W, Wh, H) : NAN;
    harp_free(Wh);
    if (st != HARP_OK) {
        harp_qtensor_free(out);
        return st;
    }
    out->seconds = harp_time_s() - t0;
    return HARP_OK;
}
