/* C twins of the integer prefill GEMM of W/A/KV models (decode.h, "W/A/KV on the GPU"): per-token
 * int8 activation quantization (the CPU quantizer's formulas, quant/aq.h, for symmetric whole rows),
 * per-channel int8 weights, the exact int32 product and the fp32 / fp16 epilogue. The device kernels
 * (dec_igemm.cu) reproduce them bit for bit. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cuda/decode.h"
#include "cuda/decode_layout.h"
#include "quant/aq.h"

harp_status dec_aq_rows_ref(const float *X, int rows, int k, int ldx, int qmax, float clip, int8_t *Q, int ldq, float *sa) {
    if ((qmax != 127 && qmax != 7) || !(clip > 0.0f && clip <= 1.0f) || k < 1 || ldx < k || ldq < k || rows < 0)
        return harp_err(HARP_ERR_INVALID_ARG, "int8 activations (ref): qmax %d, clip %g, k %d, ldx %d, ldq %d", qmax, (double)clip,
                        k, ldx, ldq);
    for (int r = 0; r < rows; r++) {
        const float *x = X + (size_t)r * ldx;
        float mn = 0, mx = 0;
        for (int c = 0; c < k; c++) {
            if (!isfinite(x[c])) return harp_err(HARP_ERR_NUMERIC, "int8 activations (ref): row %d holds NaN or Inf", r);
            mn = fminf(mn, x[c]), mx = fmaxf(mx, x[c]);
        }
        const float a = fmaxf(-(mn * clip), mx * clip);
        float s = a == 0.0f ? 1.0f : a / (float)qmax;
        if (s < FLT_MIN) s = FLT_MIN;
        sa[r] = s;
        int8_t *q = Q + (size_t)r * ldq;
        for (int c = 0; c < k; c++) q[c] = (int8_t)fminf(fmaxf(nearbyintf(x[c] / s), (float)(-qmax - 1)), (float)qmax);
        memset(q + k, 0, (size_t)(ldq - k));
    }
    return HARP_OK;
}

harp_status dec_iweights_from_qplanes(const dec_qplanes *q, const char *what, int8_t *W, int ldw, float *sw) {
    if (!what) what = "int8 weights";
    const int bits = dl_int_bits(q->qtype);
    if (!bits || dl_qtip_bits(q->qtype))
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: quant type %d is not a scalar int type (the int8 GEMM takes int2/3/4/8)", what,
                        (int)q->qtype);
    if (q->group_size > 0 && q->group_size < q->n)
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: group size %d < %d columns (the int8 GEMM takes one scale per output channel)",
                        what, (int)q->group_size, (int)q->n);
    if (ldw < q->n || !q->scales || !q->zeros) return harp_err(HARP_ERR_INVALID_ARG, "%s: ldw %d for %d columns, or no scales", what, ldw, (int)q->n);
    const size_t rb = ((size_t)q->n * (size_t)bits + 7) / 8;
    for (int32_t r = 0; r < q->m; r++) {
        const uint8_t *codes = (const uint8_t *)q->codes + (size_t)r * rb;
        const int z = q->zeros[r];
        int8_t *w = W + (size_t)r * ldw;
        for (int32_t c = 0; c < q->n; c++) {
            const int v = harp_aq_code_get(codes, c, bits, 0) - z;
            if (v < -128 || v > 127)
                return harp_err(HARP_ERR_UNSUPPORTED, "%s: row %d, column %d: code − zero = %d does not fit int8", what, (int)r, (int)c, v);
            w[c] = (int8_t)v;
        }
        memset(w + q->n, 0, (size_t)(ldw - q->n));
        sw[r] = q->scales[r];
    }
    return HARP_OK;
}

harp_status dec_iweights_rtn(const float *Wf, int m, int k, int bits, int8_t *W, int ldw, float *sw) {
    if (bits < 2 || bits > 8 || ldw < k) return harp_err(HARP_ERR_INVALID_ARG, "int8 weights (rtn): %d bits, ldw %d < k %d", bits, ldw, k);
    const harp_aq_fmt f = {.bits = bits, .sym = 1, .group = 0, .clip = 1.0f, .scale_f16 = 0};
    harp_aq_planes p;
    HARP_TRY(harp_aq_planes_alloc(&f, 1, k, &p));
    harp_status st = HARP_OK;
    for (int r = 0; r < m && st == HARP_OK; r++) {
        st = harp_aq_quantize_ref(&f, Wf + (size_t)r * k, 1, k, k, &p);
        for (int c = 0; c < k && st == HARP_OK; c++) W[(size_t)r * ldw + c] = (int8_t)harp_aq_code_get(p.codes, c, bits, 1);
        if (st == HARP_OK) memset(W + (size_t)r * ldw + k, 0, (size_t)(ldw - k)), sw[r] = p.scale[0];
    }
    harp_aq_planes_free(&p);
    return st;
}

void dec_igemm_ref(const int8_t *Q, int ldq, int rows, const int8_t *W, int ldw, int m, int kpad, int32_t *C, int ldc) {
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < m; j++) {
            int64_t acc = 0;
            const int8_t *a = Q + (size_t)r * ldq, *w = W + (size_t)j * ldw;
            for (int c = 0; c < kpad; c++) acc += (int64_t)a[c] * w[c];
            C[(size_t)r * ldc + j] = acc > INT32_MAX ? INT32_MAX : acc < INT32_MIN ? INT32_MIN : (int32_t)acc;
        }
}

void dec_iepi_ref(const int32_t *C, int ldc, int rows, int m, const float *sa, const float *sw, const int32_t *corr, const int32_t *rs,
                  float *Y, uint16_t *Y16, int ldy) {
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < m; j++) {
            const int32_t c = C[(size_t)r * ldc + j] + (corr ? corr[r] * rs[j] : 0);
            const float y = ((float)c * sa[r]) * sw[j];
            if (Y16) Y16[(size_t)r * ldy + j] = harp_f32_to_f16(y);
            else Y[(size_t)r * ldy + j] = y;
        }
}

harp_status dec_aq_int8_ref(const harp_aq_fmt *f, const float *X, int rows, int k, int ldx, int8_t *Q, int ldq, float *sa,
                            int32_t *corr) {
    if (f->bits < 2 || f->bits > 8 || (f->group && f->group != k) || f->scale_f16 || ldq < k || ldx < k || rows < 0)
        return harp_err(HARP_ERR_INVALID_ARG, "int8 activation codes (ref): %d bits, group %lld, fp16 scales %d, k %d, ldx %d, ldq %d",
                        f->bits, (long long)f->group, f->scale_f16, k, ldx, ldq);
    harp_aq_planes p;
    HARP_TRY(harp_aq_planes_alloc(f, 1, k, &p));
    harp_status st = HARP_OK;
    for (int r = 0; r < rows && st == HARP_OK; r++) {
        st = harp_aq_quantize_ref(f, X + (size_t)r * ldx, 1, k, k, &p);
        if (st) break;
        const int z = f->sym ? 0 : p.zero[0], off = DEC_AQ_INT8_OFFSET(f->bits, f->sym, z);
        int8_t *q = Q + (size_t)r * ldq;
        for (int c = 0; c < k; c++) q[c] = (int8_t)(harp_aq_code_get(p.codes, c, f->bits, f->sym) - off);
        memset(q + k, 0, (size_t)(ldq - k));
        sa[r] = p.scale[0];
        if (corr) corr[r] = off - z;
    }
    harp_aq_planes_free(&p);
    return st;
}
