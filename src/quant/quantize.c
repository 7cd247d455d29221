/* Per-linear entry point: argument and finiteness checks, dispatch, proxy loss, dequantization. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "quant_internal.h"

harp_quant_params harp_quant_default_params(harp_qmethod method, int bits) {
    harp_quant_params p;
    memset(&p, 0, sizeof p);
    p.method = method;
    p.bits = bits;
    p.group_size = 128;
    p.symmetric = 0;
    p.percdamp = 0.01;
    p.block_size = 128;
    p.regularize = 1;
    p.sigma_reg = 0.01;
    p.scale_override = bits == 2 ? 0.9 : -1.0;
    p.resid_scale_override = -1.0;
    p.tune_iters = 10;
    return p;
}

void harp_qlinear_free(harp_qlinear *q) {
    if (!q) return;
    harp_free(q->q), harp_free(q->scale), harp_free(q->zero), harp_free(q->g_idx);
    harp_free(q->codes), harp_free(q->codes2);
    q->q = NULL, q->scale = NULL, q->zero = NULL, q->g_idx = NULL, q->codes = NULL, q->codes2 = NULL;
}

harp_status harp_qlinear_dequantize(const harp_qlinear *q, float *Wh) {
    const int64_t m = q->m, n = q->n;
    if (q->method == HARP_QMETHOD_QUIP) {
        if (!q->codes) return harp_err(HARP_ERR_INVALID_ARG, "dequantize: lattice codes missing");
        const int64_t nb = q->n_pad / 8;
        for (int64_t r = 0; r < m; r++)
            for (int64_t k = 0; k < nb; k++) {
                double v[8];
                harp_cb_decode8(q->codebook, q->resid_scale, q->codes[r * nb + k], q->codes2 ? q->codes2[r * nb + k] : 0,
                                v);
                for (int j = 0; j < 8 && 8 * k + j < n; j++) Wh[r * n + 8 * k + j] = (float)(q->wscale * v[j]);
            }
        return HARP_OK;
    }
    if (!q->q || !q->scale || !q->zero) return harp_err(HARP_ERR_INVALID_ARG, "dequantize: scalar codes missing");
    for (int64_t r = 0; r < m; r++)
        for (int64_t c = 0; c < n; c++) {
            int64_t G = q->g_idx ? q->g_idx[c] : c / q->group_size;
            int64_t k = r * q->n_groups + G;
            Wh[r * n + c] = (float)harp_scalar_value(q->scale[k], q->q[r * n + c], q->zero[k]);
        }
    return HARP_OK;
}

harp_status harp_quantize_linear(const harp_quant_params *p, int64_t m, int64_t n, const float *W, const double *H,
                                 const char *what, harp_qlinear *out) {
    if (!what) what = "linear";
    if (!p || !W || !out || m <= 0 || n <= 0)
        return harp_err(HARP_ERR_INVALID_ARG, "%s: bad arguments to quantize (m = %lld, n = %lld)", what, (long long)m,
                        (long long)n);
    memset(out, 0, sizeof *out);
    const int scalar = p->method == HARP_QMETHOD_RTN || p->method == HARP_QMETHOD_GPTQ;
    if (scalar && !(p->bits == 2 || p->bits == 3 || p->bits == 4 || p->bits == 8))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: %d bits not supported by RTN/GPTQ (2, 3, 4 or 8)", what, p->bits);
    if (p->method == HARP_QMETHOD_QUIP && !(p->bits >= 2 && p->bits <= 4))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: %d bits not supported by QuIP# (2, 3 or 4)", what, p->bits);
    if (!scalar && p->method != HARP_QMETHOD_QUIP)
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
    double t0 = harp_time_s();
    harp_status st;
    out->method = p->method;
    out->bits = p->bits;
    out->codebook = HARP_CODEBOOK_SCALAR;
    switch (p->method) {
    case HARP_QMETHOD_RTN: st = harp_rtn_quantize(p, m, n, W, out); break;
    case HARP_QMETHOD_GPTQ: st = harp_gptq_quantize(p, m, n, W, H, what, out); break;
    default: st = harp_quip_quantize(p, m, n, W, H, what, out); break;
    }
    if (st != HARP_OK) {
        harp_qlinear_free(out);
        return st;
    }
    out->method = p->method;
    out->bits = p->bits;
    out->m = m, out->n = n;
    out->proxy_loss = NAN;
    if (H) {
        float *Wh = harp_xmalloc((size_t)(m * n) * sizeof *Wh, "dequantized weights");
        if (!Wh) {
            harp_qlinear_free(out);
            return HARP_ERR_OOM;
        }
        st = harp_qlinear_dequantize(out, Wh);
        if (st == HARP_OK) out->proxy_loss = harp_proxy_loss(m, n, W, Wh, H);
        harp_free(Wh);
        if (st != HARP_OK) {
            harp_qlinear_free(out);
            return st;
        }
    }
    out->seconds = harp_time_s() - t0;
    return HARP_OK;
}
