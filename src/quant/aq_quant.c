/* Activation / KV-cache quantizer (aq.h): the fast CPU path. Rows run in parallel; inside a group the
 * loops are branch-free so that the AVX2 clone vectorises them. Codes are bit-identical to the
 * reference twin (aq_ref.c): the same IEEE operations in the same order (clamp before rounding gives
 * the same integer as rounding before clamping because the bounds are integers). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aq.h"
#include "core/core.h"

harp_status harp_aq_check(const harp_aq_fmt *f, int64_t n, const char *what) {
    if (!what) what = "quantizer";
    if (!f) return harp_err(HARP_ERR_INVALID_ARG, "%s: NULL format", what);
    if (f->bits < 2 || f->bits > 8)
        return harp_err(HARP_ERR_INVALID_ARG, "%s: %d bits (activation/KV quantizers take 2 to 8)", what, f->bits);
    if (!(f->clip > 0.0f && f->clip <= 1.0f))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: clip ratio %g outside (0, 1]", what, (double)f->clip);
    if (n < 1) return harp_err(HARP_ERR_INVALID_ARG, "%s: row length %lld", what, (long long)n);
    if (f->group < 0 || (f->group > 0 && n % f->group))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: group %lld does not divide the row length %lld", what,
                        (long long)f->group, (long long)n);
    return HARP_OK;
}

static int64_t grp(const harp_aq_fmt *f, int64_t n) { return f->group > 0 ? f->group : n; }
int64_t harp_aq_groups(const harp_aq_fmt *f, int64_t n) { return n / grp(f, n); }
int64_t harp_aq_group_bytes(const harp_aq_fmt *f, int64_t n) { return (grp(f, n) * f->bits + 7) / 8; }
int64_t harp_aq_row_bytes(const harp_aq_fmt *f, int64_t n) { return harp_aq_groups(f, n) * harp_aq_group_bytes(f, n); }

harp_status harp_aq_planes_alloc(const harp_aq_fmt *f, int64_t rows, int64_t n, harp_aq_planes *p) {
    memset(p, 0, sizeof *p);
    HARP_TRY(harp_aq_check(f, n, "quantizer planes"));
    size_t ng = (size_t)(rows * harp_aq_groups(f, n));
    p->codes = harp_xmalloc((size_t)(rows * harp_aq_row_bytes(f, n)) + 1, "quantized codes");
    if (f->scale_f16) p->scale16 = harp_xmalloc(ng * sizeof(uint16_t) + 1, "quantizer scales");
    else p->scale = harp_xmalloc(ng * sizeof(float) + 1, "quantizer scales");
    if (!f->sym) p->zero = harp_xmalloc(ng + 1, "quantizer zero points");
    if (!p->codes || (!p->scale && !p->scale16) || (!f->sym && !p->zero)) {
        harp_aq_planes_free(p);
        return HARP_ERR_OOM;
    }
    return HARP_OK;
}

void harp_aq_planes_free(harp_aq_planes *p) {
    if (!p) return;
    free(p->codes), free(p->scale), free(p->scale16), free(p->zero);
    memset(p, 0, sizeof *p);
}

harp_aq_planes harp_aq_planes_row(const harp_aq_fmt *f, int64_t n, const harp_aq_planes *p, int64_t row) {
    harp_aq_planes r = {0};
    int64_t ng = harp_aq_groups(f, n);
    r.codes = p->codes ? p->codes + row * harp_aq_row_bytes(f, n) : NULL;
    r.scale = p->scale ? p->scale + row * ng : NULL;
    r.scale16 = p->scale16 ? p->scale16 + row * ng : NULL;
    r.zero = p->zero ? p->zero + row * ng : NULL;
    return r;
}

int harp_aq_code_get(const uint8_t *c, int64_t i, int bits, int sym) {
    int64_t o = i * bits;
    unsigned v = c[o >> 3] >> (o & 7);
    if ((o & 7) + bits > 8) v |= (unsigned)c[(o >> 3) + 1] << (8 - (o & 7));
    v &= (1u << bits) - 1;
    return sym && v >> (bits - 1) ? (int)v - (1 << bits) : (int)v;
}

/* ---- one group ----------------------------------------------------------------------------------- */

typedef struct aq_gp {
    float s, lo, hi;  /* scale and the clamp bounds of round(x/s) */
    int z;
    uint16_t h;       /* fp16 bits of s when scale_f16 */
} aq_gp;

/* mn = min(min x, 0), mx = max(max x, 0). */
static void aq_params(const harp_aq_fmt *f, float mn, float mx, aq_gp *g) {
    const int b = f->bits;
    const float xmin = mn * f->clip, xmax = mx * f->clip;
    float s, lo = 0, hi = 0;
    int maxq, z = 0;
    if (f->sym) {
        maxq = (1 << (b - 1)) - 1;
        float a = -xmin > xmax ? -xmin : xmax;
        s = a == 0.0f ? 1.0f : a / (float)maxq;
    } else {
        maxq = (1 << b) - 1;
        float lo0 = xmin, hi0 = xmax;
        if (lo0 == 0.0f && hi0 == 0.0f) lo0 = -1.0f, hi0 = 1.0f;
        s = (hi0 - lo0) / (float)maxq;
        lo = lo0;  /* reused below for the zero point */
    }
    if (!(s >= FLT_MIN)) s = FLT_MIN;
    g->h = 0;
    if (f->scale_f16) {
        uint16_t h = harp_f32_to_f16(s);
        if ((h & 0x7FFF) == 0) h = 1;
        if ((h & 0x7FFF) >= 0x7C00) h = 0x7BFF;
        g->h = h;
        s = harp_f16_to_f32(h);
    }
    if (f->sym) {
        lo = (float)(-maxq - 1), hi = (float)maxq;
    } else {
        float zf = nearbyintf(-lo / s);
        z = zf < 0 ? 0 : zf > (float)maxq ? maxq : (int)zf;
        lo = (float)-z, hi = (float)(maxq - z);
    }
    g->s = s, g->z = z, g->lo = lo, g->hi = hi;
}

/* min(min x, 0), max(max x, 0) and whether every element is finite. */
HARP_ALWAYS_INLINE static inline int aq_range(const float *x, int64_t len, float *mn, float *mx) {
    float a = 0, b = 0, chk = 0;
    for (int64_t i = 0; i < len; i++) {
        float v = x[i];
        a = v < a ? v : a;
        b = v > b ? v : b;
        chk += v - v;   /* 0 for finite v, NaN once any element is NaN or ±Inf */
    }
    *mn = a, *mx = b;
    return chk == 0.0f;
}

/* Integer codes of a group, clamped in float first (exact: the bounds are integers). */
HARP_ALWAYS_INLINE static inline void aq_codes(const float *x, int64_t len, const aq_gp *g, int32_t *q) {
    const float s = g->s, lo = g->lo, hi = g->hi, magic = 12582912.0f;   /* 1.5·2^23: v + M − M = rint(v) */
    for (int64_t i = 0; i < len; i++) {
        float v = x[i] / s;
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        q[i] = (int32_t)((v + magic) - magic);
    }
}

HARP_ALWAYS_INLINE static inline void aq_pack(const int32_t *q, int64_t len, int bits, uint8_t *out, int64_t nbytes) {
    if (bits == 8) {
        for (int64_t i = 0; i < len; i++) out[i] = (uint8_t)q[i];
        return;
    }
    if (bits == 4) {
        const int64_t h = len / 2;
        for (int64_t i = 0; i < h; i++) out[i] = (uint8_t)((q[2 * i] & 0xF) | (q[2 * i + 1] & 0xF) << 4);
        if (len & 1) out[h] = (uint8_t)(q[len - 1] & 0xF);
        return;
    }
    memset(out, 0, (size_t)nbytes);
    uint32_t acc = 0, mask = (1u << bits) - 1;
    int have = 0;
    int64_t o = 0;
    for (int64_t i = 0; i < len; i++) {
        acc |= ((uint32_t)q[i] & mask) << have;
        have += bits;
        while (have >= 8) out[o++] = (uint8_t)acc, acc >>= 8, have -= 8;
    }
    if (have) out[o] = (uint8_t)acc;
}

/* b-bit field → integer; symmetric fields are sign-extended with (v ^ m) − m, m = 2^(b−1). */
HARP_ALWAYS_INLINE static inline void aq_unpack(const uint8_t *c, int64_t len, int bits, int sym, int32_t *q) {
    const int32_t m = sym ? 1 << (bits - 1) : 0;
    if (bits == 8) {
        for (int64_t i = 0; i < len; i++) q[i] = ((int32_t)c[i] ^ m) - m;
        return;
    }
    if (bits == 4) {
        const int64_t h = len / 2;
        for (int64_t i = 0; i < h; i++) {
            q[2 * i] = ((c[i] & 0xF) ^ m) - m;
            q[2 * i + 1] = ((c[i] >> 4) ^ m) - m;
        }
        if (len & 1) q[len - 1] = ((c[h] & 0xF) ^ m) - m;
        return;
    }
    for (int64_t i = 0; i < len; i++) q[i] = harp_aq_code_get(c, i, bits, sym);
}

/* ---- rows ------------------------------------------------------------------------------------------ */

enum { AQ_ENCODE = 0, AQ_DECODE = 1, AQ_FAKE = 2 };

typedef struct aq_job {
    const harp_aq_fmt *f;
    int64_t n, g, ng, gbytes, rbytes;
    const harp_aq_planes *pl;
    const float *in;  /* encode, fake */
    float *out;       /* decode, fake (== in) */
    int64_t ld;
    int mode;
} aq_job;

/* One row; q is scratch for one group. Returns 0 on a non-finite input. */
HARP_TARGET_CLONES
static int aq_row(const aq_job *J, int64_t r, int32_t *q) {
    const harp_aq_fmt *f = J->f;
    for (int64_t G = 0; G < J->ng; G++) {
        const int64_t off = r * J->ld + G * J->g;
        const float *xg = J->in ? J->in + off : NULL;
        float *yg = J->out ? J->out + off : NULL;
        const int64_t gi = r * J->ng + G;
        uint8_t *cg = J->mode == AQ_FAKE ? NULL : J->pl->codes + r * J->rbytes + G * J->gbytes;
        aq_gp p;
        if (J->mode == AQ_DECODE) {
            p.s = f->scale_f16 ? harp_f16_to_f32(J->pl->scale16[gi]) : J->pl->scale[gi];
            p.z = f->sym ? 0 : J->pl->zero[gi];
            aq_unpack(cg, J->g, f->bits, f->sym, q);
        } else {
            float mn, mx;
            if (!aq_range(xg, J->g, &mn, &mx)) return 0;
            aq_params(f, mn, mx, &p);
            aq_codes(xg, J->g, &p, q);
            if (J->mode == AQ_ENCODE) {
                for (int64_t i = 0; i < J->g; i++) q[i] += p.z;
                aq_pack(q, J->g, f->bits, cg, J->gbytes);
                if (f->scale_f16) J->pl->scale16[gi] = p.h;
                else J->pl->scale[gi] = p.s;
                if (!f->sym) J->pl->zero[gi] = (uint8_t)p.z;
                continue;
            }
            /* fake: q holds round(x/s) clamped to [−z, maxq − z], i.e. the stored code minus z */
            for (int64_t i = 0; i < J->g; i++) yg[i] = p.s * (float)q[i];
            continue;
        }
        for (int64_t i = 0; i < J->g; i++) yg[i] = p.s * (float)(q[i] - p.z);
    }
    return 1;
}

static harp_status aq_run(const harp_aq_fmt *f, const float *in, float *out, int64_t rows, int64_t n, int64_t ld,
                          const harp_aq_planes *pl, int mode, const char *what) {
    HARP_TRY(harp_aq_check(f, n, what));
    if (rows < 0 || (rows > 0 && !in && !out) || ld < n) return harp_err(HARP_ERR_INVALID_ARG, "%s: bad matrix arguments", what);
    if (mode != AQ_FAKE && (!pl || !pl->codes || (f->scale_f16 ? !pl->scale16 : !pl->scale) || (!f->sym && !pl->zero)))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: missing planes for this format", what);
    aq_job J = {f, n, grp(f, n), harp_aq_groups(f, n), harp_aq_group_bytes(f, n), harp_aq_row_bytes(f, n), pl, in, out, ld, mode};
    int64_t bad_row = -1;
    int oom = 0;
#pragma omp parallel if (rows > 1 && rows * n >= (1 << 16))
    {
        int32_t *q = malloc((size_t)J.g * sizeof *q);
        if (!q) {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            if (!q || aq_row(&J, r, q)) continue;
#pragma omp critical(aq_bad_row)
            if (bad_row < 0 || r < bad_row) bad_row = r;
        }
        free(q);
    }
    if (oom) return harp_err(HARP_ERR_OOM, "%s: out of memory", what);
    if (bad_row >= 0) return harp_err(HARP_ERR_NUMERIC, "%s: row %lld holds NaN or Inf", what, (long long)bad_row);
    return HARP_OK;
}

harp_status harp_aq_quantize(const harp_aq_fmt *f, const float *X, int64_t rows, int64_t n, int64_t ldx,
                             const harp_aq_planes *out) {
    return aq_run(f, X, NULL, rows, n, ldx ? ldx : n, out, AQ_ENCODE, "activation quantizer");
}

harp_status harp_aq_dequantize(const harp_aq_fmt *f, const harp_aq_planes *in, int64_t rows, int64_t n, float *Y,
                               int64_t ldy) {
    return aq_run(f, NULL, Y, rows, n, ldy ? ldy : n, in, AQ_DECODE, "activation dequantizer");
}

harp_status harp_aq_fake(const harp_aq_fmt *f, float *X, int64_t rows, int64_t n, int64_t ldx) {
    return aq_run(f, X, X, rows, n, ldx ? ldx : n, NULL, AQ_FAKE, "activation fake quantizer");
}
