/* Reference twin of the activation / KV quantizer (aq.h): the §6.1 formulas written literally, one
 * element at a time, single-threaded, with a bit-by-bit packer. It defines the stored format; the
 * fast path (aq_quant.c) must reproduce it bit for bit. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "aq.h"
#include "core/core.h"

typedef struct ref_gp {
    float s;
    int z, maxq;
    uint16_t h;
} ref_gp;

/* Returns 0 if the group holds NaN or Inf. */
static int ref_fit(const harp_aq_fmt *f, const float *x, int64_t len, ref_gp *g) {
    float xmin = 0, xmax = 0;
    for (int64_t i = 0; i < len; i++) {
        if (!isfinite(x[i])) return 0;
        xmin = fminf(xmin, x[i]);
        xmax = fmaxf(xmax, x[i]);
    }
    xmin *= f->clip;
    xmax *= f->clip;
    float s;
    if (f->sym) {
        g->maxq = (1 << (f->bits - 1)) - 1;
        float a = fmaxf(-xmin, xmax);
        s = a == 0 ? 1.0f : a / (float)g->maxq;
    } else {
        g->maxq = (1 << f->bits) - 1;
        if (xmin == 0 && xmax == 0) xmin = -1, xmax = 1;
        s = (xmax - xmin) / (float)g->maxq;
    }
    if (s < FLT_MIN) s = FLT_MIN;
    g->h = 0;
    if (f->scale_f16) {
        g->h = harp_f32_to_f16(s);
        if (harp_f16_to_f32(g->h) == 0) g->h = 0x0001;         /* smallest subnormal */
        if (isinf(harp_f16_to_f32(g->h))) g->h = 0x7BFF;        /* 65504 */
        s = harp_f16_to_f32(g->h);
    }
    g->s = s;
    g->z = 0;
    if (!f->sym) {
        float z = nearbyintf(-xmin / s);
        g->z = z < 0 ? 0 : z > (float)g->maxq ? g->maxq : (int)z;
    }
    return 1;
}

static int ref_code(const harp_aq_fmt *f, const ref_gp *g, float x) {
    float lo = f->sym ? (float)(-g->maxq - 1) : 0.0f, hi = (float)g->maxq;
    float q = nearbyintf(x / g->s) + (float)g->z;
    return (int)fminf(fmaxf(q, lo), hi);
}

static void put_bits(uint8_t *c, int64_t i, int bits, int code) {
    unsigned v = (unsigned)code & ((1u << bits) - 1);
    for (int k = 0; k < bits; k++) {
        int64_t bit = i * bits + k;
        if (v >> k & 1) c[bit / 8] |= (uint8_t)(1u << (bit % 8));
        else c[bit / 8] &= (uint8_t)~(1u << (bit % 8));
    }
}

static int get_bits(const uint8_t *c, int64_t i, int bits, int sym) {
    int v = 0;
    for (int k = 0; k < bits; k++) {
        int64_t bit = i * bits + k;
        v |= (c[bit / 8] >> (bit % 8) & 1) << k;
    }
    return sym && v >= 1 << (bits - 1) ? v - (1 << bits) : v;
}

harp_status harp_aq_quantize_ref(const harp_aq_fmt *f, const float *X, int64_t rows, int64_t n, int64_t ldx,
                                 const harp_aq_planes *out) {
    HARP_TRY(harp_aq_check(f, n, "activation quantizer (ref)"));
    if (!ldx) ldx = n;
    const int64_t g = f->group ? f->group : n, ng = n / g, gb = (g * f->bits + 7) / 8;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t G = 0; G < ng; G++) {
            const float *x = X + r * ldx + G * g;
            uint8_t *c = out->codes + (r * ng + G) * gb;
            ref_gp p;
            if (!ref_fit(f, x, g, &p))
                return harp_err(HARP_ERR_NUMERIC, "activation quantizer (ref): row %lld holds NaN or Inf", (long long)r);
            for (int64_t b = 0; b < gb; b++) c[b] = 0;
            for (int64_t i = 0; i < g; i++) put_bits(c, i, f->bits, ref_code(f, &p, x[i]));
            if (f->scale_f16) out->scale16[r * ng + G] = p.h;
            else out->scale[r * ng + G] = p.s;
            if (!f->sym) out->zero[r * ng + G] = (uint8_t)p.z;
        }
    return HARP_OK;
}

harp_status harp_aq_dequantize_ref(const harp_aq_fmt *f, const harp_aq_planes *in, int64_t rows, int64_t n, float *Y,
                                   int64_t ldy) {
    HARP_TRY(harp_aq_check(f, n, "activation dequantizer (ref)"));
    if (!ldy) ldy = n;
    const int64_t g = f->group ? f->group : n, ng = n / g, gb = (g * f->bits + 7) / 8;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t G = 0; G < ng; G++) {
            float s = f->scale_f16 ? harp_f16_to_f32(in->scale16[r * ng + G]) : in->scale[r * ng + G];
            int z = f->sym ? 0 : in->zero[r * ng + G];
            for (int64_t i = 0; i < g; i++)
                Y[r * ldy + G * g + i] = s * (float)(get_bits(in->codes + (r * ng + G) * gb, i, f->bits, f->sym) - z);
        }
    return HARP_OK;
}
