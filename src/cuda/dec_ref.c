/* Reference twins of the GPU decode kernels (decode.h): plain loops, double accumulation, the
 * formats' own decoders. They define what the kernels compute; tests compare the two at awkward
 * shapes. Compiled in every build. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cuda/decode.h"

void dec_gemv_ref(const dec_qplanes *q, const uint16_t *x, int ldx, int B, float *y, int ldy) {
    enum { STRIP = 16 };   /* rows decoded at a time (one trellis tile row) */
    double *acc = calloc((size_t)B, sizeof(double));
    float *w = malloc(sizeof(float) * STRIP * (size_t)q->n);
    if (!acc || !w) goto done;
    for (int32_t r0 = 0; r0 < q->m; r0 += STRIP) {
        const int32_t r1 = r0 + STRIP < q->m ? r0 + STRIP : q->m;
        dec_qplanes_rows(q, r0, r1, w, (size_t)q->n);
        for (int32_t r = r0; r < r1; r++) {
            memset(acc, 0, sizeof(double) * (size_t)B);
            for (int32_t c = 0; c < q->n; c++) {
                const double v = w[(size_t)(r - r0) * (size_t)q->n + (size_t)c];
                for (int b = 0; b < B; b++) acc[b] += v * harp_f16_to_f32(x[(size_t)b * ldx + (size_t)c]);
            }
            for (int b = 0; b < B; b++) y[(size_t)b * ldy + (size_t)r] = (float)acc[b];
        }
    }
done:
    free(acc);
    free(w);
}

void dec_xin_ref(const dec_xform *xf, const float *x, int ldx, int B, const float *norm_w, float eps, const float *pre,
                 uint16_t *out, int ldo, int32_t npad) {
    dec_xin_split_ref(xf, x, ldx, B, norm_w, eps, pre, out, NULL, ldo, npad);
}

void dec_xin_split_ref(const dec_xform *xf, const float *x, int ldx, int B, const float *norm_w, float eps,
                       const float *pre, uint16_t *out, uint16_t *out_lo, int ldo, int32_t npad) {
    const int64_t n = xf->n;
    double *v = malloc(sizeof(double) * (size_t)n * 3);
    if (!v) return;
    for (int b = 0; b < B; b++) {
        const float *xr = x + (size_t)b * ldx;
        double s = 1.0;
        if (norm_w) {
            double ss = 0;
            for (int64_t i = 0; i < n; i++) ss += (double)xr[i] * xr[i];
            s = 1.0 / sqrt(ss / (double)n + eps);
        }
        for (int64_t i = 0; i < n; i++) {
            double u = xr[i];
            if (norm_w) u = norm_w[i] * (u * s);
            if (pre) u *= pre[i];
            v[i] = u;
        }
        dec_xform_apply_ref(xf, v, v + n);
        uint16_t *o = out + (size_t)b * ldo, *ol = out_lo ? out_lo + (size_t)b * ldo : NULL;
        for (int64_t i = 0; i < n; i++) {
            const float f = (float)v[i];
            o[i] = harp_f32_to_f16(f);
            if (ol) ol[i] = harp_f32_to_f16(f - harp_f16_to_f32(o[i]));
        }
        for (int64_t i = n; i < npad; i++) {
            o[i] = 0;
            if (ol) ol[i] = 0;
        }
    }
    free(v);
}

void dec_xout_ref(const dec_xform *xf, const float *y, int ldy, int B, const float *post, int accumulate, float *out,
                  int ldo) {
    const int64_t n = xf->n;
    double *v = malloc(sizeof(double) * (size_t)n * 3);
    if (!v) return;
    for (int b = 0; b < B; b++) {
        for (int64_t i = 0; i < n; i++) v[i] = y[(size_t)b * ldy + (size_t)i];
        dec_xform_apply_ref(xf, v, v + n);
        float *o = out + (size_t)b * ldo;
        for (int64_t i = 0; i < n; i++) {
            const double z = post ? v[i] * post[i] : v[i];
            o[i] = (float)(accumulate ? o[i] + z : z);
        }
    }
    free(v);
}

void dec_rope_row_ref(const dec_attn_shape *s, const float *row, int32_t p, const float *inv_freq, int interleaved,
                      float *out) {
    const int hd = s->head_dim, half = hd / 2;
    memcpy(out, row, sizeof(float) * (size_t)(s->n_heads + s->n_kv) * (size_t)hd);
    const float pf = (float)p;
    for (int h = 0; h < s->n_heads + s->n_kv; h++) {
        float *v = out + (size_t)h * hd;
        for (int i = 0; i < half; i++) {
            const float a = pf * inv_freq[i], cs = cosf(a), sn = sinf(a);
            const int i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
            const float x0 = v[i0], x1 = v[i1];
            v[i0] = x0 * cs - x1 * sn;
            v[i1] = x1 * cs + x0 * sn;
        }
    }
}

void dec_rope_kv_ref(const dec_attn_shape *s, const float *qkv, int ldq, int B, const int32_t *pos, const float *inv_freq,
                     int interleaved, float *qout, uint16_t *kc, uint16_t *vc) {
    const int hd = s->head_dim, qd = s->n_heads * hd, kvd = s->n_kv * hd;
    float *row = malloc(sizeof(float) * (size_t)(qd + kvd));
    if (!row) return;
    for (int b = 0; b < B; b++) {
        const float *src = qkv + (size_t)b * ldq;
        dec_rope_row_ref(s, src, pos[b], inv_freq, interleaved, row);
        memcpy(qout + (size_t)b * qd, row, sizeof(float) * (size_t)qd);
        const size_t cache = (size_t)s->max_ctx * (size_t)kvd, at = (size_t)b * cache + (size_t)pos[b] * (size_t)kvd;
        for (int i = 0; i < kvd; i++) {
            kc[at + (size_t)i] = harp_f32_to_f16(row[qd + i]);
            vc[at + (size_t)i] = harp_f32_to_f16(src[qd + kvd + i]);
        }
    }
    free(row);
}

void dec_attn_f32_ref(const dec_attn_shape *s, const float *q, const float *kc, const float *vc, int B, const int32_t *pos,
                      float *out) {
    const int hd = s->head_dim, qd = s->n_heads * hd, kvd = s->n_kv * hd, grp = s->n_heads / s->n_kv;
    const size_t cache = (size_t)s->max_ctx * (size_t)kvd;
    double *sc = malloc(sizeof(double) * ((size_t)s->max_ctx + (size_t)hd));
    if (!sc) return;
    double *acc = sc + s->max_ctx;
    for (int b = 0; b < B; b++) {
        const int hi = pos[b] + 1, lo = s->window > 0 && hi > s->window ? hi - s->window : 0;
        for (int h = 0; h < s->n_heads; h++) {
            const float *qh = q + (size_t)b * qd + (size_t)h * hd;
            const size_t koff = (size_t)b * cache + (size_t)(h / grp) * hd;
            double mx = -INFINITY, sum = 0;
            for (int j = lo; j < hi; j++) {
                double d = 0;
                for (int t = 0; t < hd; t++) d += (double)qh[t] * kc[koff + (size_t)j * kvd + t];
                sc[j] = d / sqrt((double)hd);
                if (sc[j] > mx) mx = sc[j];
            }
            for (int t = 0; t < hd; t++) acc[t] = 0;
            for (int j = lo; j < hi; j++) {
                const double e = exp(sc[j] - mx);
                sum += e;
                for (int t = 0; t < hd; t++) acc[t] += e * vc[koff + (size_t)j * kvd + t];
            }
            for (int t = 0; t < hd; t++) out[(size_t)b * qd + (size_t)h * hd + t] = (float)(acc[t] / sum);
        }
    }
    free(sc);
}

void dec_attn_ref(const dec_attn_shape *s, const float *q, const uint16_t *kc, const uint16_t *vc, int B,
                  const int32_t *pos, float *out) {
    const size_t n = (size_t)B * (size_t)s->max_ctx * (size_t)s->n_kv * (size_t)s->head_dim;
    float *kf = malloc(sizeof(float) * n), *vf = malloc(sizeof(float) * n);
    if (kf && vf) {
        for (size_t i = 0; i < n; i++) kf[i] = harp_f16_to_f32(kc[i]), vf[i] = harp_f16_to_f32(vc[i]);
        dec_attn_f32_ref(s, q, kf, vf, B, pos, out);
    }
    free(kf), free(vf);
}

void dec_swiglu_ref(const float *ug, int ld, int B, int hidden, float *out, int ldo) {
    for (int b = 0; b < B; b++)
        for (int i = 0; i < hidden; i++) {
            const double g = ug[(size_t)b * ld + (size_t)hidden + (size_t)i], u = ug[(size_t)b * ld + (size_t)i];
            out[(size_t)b * ldo + (size_t)i] = (float)(g / (1.0 + exp(-g)) * u);
        }
}
