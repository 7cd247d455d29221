/* ldp2 device layout (dec_ldp.h): packing from the stored planes, the reader, the twin of the GEMV.
 * Plain C, compiled in every build, so CI tests what the kernel reads. */
#include "cuda/dec_ldp.h"

#include <math.h>
#include <string.h>

#include "quant/qblocks.h"

harp_status dec_ldp_layout_of(int64_t m, int64_t n, int64_t group, const char *what, dec_ldp_layout *L) {
    if (m < 1 || n < 1 || m > (1 << 24) || n > (1 << 24))
        return harp_err(HARP_ERR_SHAPE, "%s: ldp2 on the GPU: shape %lld x %lld out of range", what, (long long)m, (long long)n);
    if (group <= 0 || group > n) group = n;
    if (group != n && group % DEC_LDP_COLS)
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: ldp2 on the GPU: group size %lld is neither a multiple of %d nor the whole row (n %lld)",
                        what, (long long)group, DEC_LDP_COLS, (long long)n);
    memset(L, 0, sizeof *L);
    L->m = (int32_t)m, L->n = (int32_t)n, L->g = (int32_t)group, L->ng = (int32_t)((n + group - 1) / group);
    L->npad = (int32_t)((n + DEC_LDP_COLS - 1) / DEC_LDP_COLS * DEC_LDP_COLS);
    L->nst = L->npad / DEC_LDP_COLS, L->nrt = (int32_t)((m + DEC_LDP_ROWS - 1) / DEC_LDP_ROWS);
    return HARP_OK;
}

size_t dec_ldp_code_bytes(const dec_ldp_layout *L) { return (size_t)L->nrt * L->nst * 32 * 16; }
size_t dec_ldp_level_bytes(const dec_ldp_layout *L) { return (size_t)L->nrt * L->ng * 8 * 16; }

/* Byte and bit of code (r, c) in the packed codes. */
static size_t code_pos(const dec_ldp_layout *L, int64_t r, int64_t c, int *shift) {
    const int64_t rr = r % DEC_LDP_ROWS, cc = c % DEC_LDP_COLS, u = cc / 8, e = cc % 8;
    const int64_t lane = 4 * (rr % 8) + u % 4, word = u / 4, hi = rr / 8;
    *shift = 2 * (int)(e >> 1);
    return ((((size_t)(r / DEC_LDP_ROWS) * L->nst + (size_t)(c / DEC_LDP_COLS)) * 32 + (size_t)lane) * 16) + 4 * (size_t)word +
           (size_t)(2 * hi + (e & 1));
}

/* Offset of X_r (Y_r = +4) of (r, G) in the packed levels. */
static size_t level_pos(const dec_ldp_layout *L, int64_t r, int64_t G) {
    const int64_t rr = r % DEC_LDP_ROWS;
    return (((size_t)(r / DEC_LDP_ROWS) * L->ng + (size_t)G) * 8 + (size_t)(rr % 8)) * 16 + 8 * (size_t)(rr / 8);
}

void dec_ldp_pack(const dec_ldp_layout *L, const uint8_t *qweight, const void *lv16, uint8_t *codes, uint8_t *levels) {
    memset(codes, 0, dec_ldp_code_bytes(L));
    memset(levels, 0, dec_ldp_level_bytes(L));
    const int64_t rb = harp_scalar_row_bytes(L->n, 2);
    for (int64_t r = 0; r < L->m; r++) {
        const uint8_t *row = qweight + r * rb;
        for (int64_t c = 0; c < L->n; c++) {
            int sh;
            const size_t b = code_pos(L, r, c, &sh);
            codes[b] |= (uint8_t)(harp_scalar_get(row, c, 2) << sh);
        }
        for (int64_t G = 0; G < L->ng; G++) {
            uint8_t *p = levels + level_pos(L, r, G);
            for (int k = 0; k < 4; k++) {
                uint16_t h;
                memcpy(&h, (const uint8_t *)lv16 + 2 * (size_t)(4 * (r * L->ng + G) + k), 2);
                p[k] = (uint8_t)(h & 255u), p[4 + k] = (uint8_t)(h >> 8);
            }
        }
    }
}

int dec_ldp_code_at(const dec_ldp_layout *L, const uint8_t *codes, int64_t r, int64_t c) {
    int sh;
    const size_t b = code_pos(L, r, c, &sh);
    return (codes[b] >> sh) & 3;
}

uint16_t dec_ldp_level_at(const dec_ldp_layout *L, const uint8_t *levels, int64_t r, int64_t G, int k) {
    const uint8_t *p = levels + level_pos(L, r, G);
    return (uint16_t)(p[k] | p[4 + k] << 8);
}

/* Activation c of row b as a double (int4 code or fp16 value). */
static double act_at(const dec_ldp_layout *L, const dec_ldp_act *x, int b, int64_t c) {
    if (!x->xq) return harp_f16_to_f32(x->x16[(size_t)b * L->npad + (size_t)c]);
    const unsigned v = (x->xq[(size_t)b * (L->npad / 2) + (size_t)(c / 2)] >> (4 * (c & 1))) & 15u;
    return (double)((int)v - (v >= 8 ? 16 : 0));
}

harp_status dec_ldp_gemv_ref(const dec_ldp_layout *L, const uint8_t *codes, const uint8_t *levels, const dec_ldp_act *x, int B,
                             float *y, float *tol) {
    double *w = harp_xmalloc(sizeof(double) * (size_t)L->n, "ldp2 GEMV twin row");
    if (!w) return HARP_ERR_OOM;
    const double steps = 8.0 * ((L->nst + 7) / 8) + 32.0;   /* dec_ldp.h: the kernel's roundings */
    for (int64_t r = 0; r < L->m; r++) {
        for (int64_t c = 0; c < L->n; c++)
            w[c] = harp_f16_to_f32(dec_ldp_level_at(L, levels, r, c / L->g, dec_ldp_code_at(L, codes, r, c)));
        for (int b = 0; b < B; b++) {
            const double s = x->xq ? (double)x->xs[b] : 1.0;
            double acc = 0, mag = 0;
            for (int64_t c = 0; c < L->n; c++) {
                const double a = act_at(L, x, b, c);
                acc += w[c] * a, mag += fabs(w[c] * a);
            }
            const float v = (float)(s * acc);
            y[(size_t)b * L->m + r] = v;
            if (tol) tol[(size_t)b * L->m + r] = (float)(fabs(s) * steps * ldexp(mag, -22) + ldexp(fabs((double)v), -23));
        }
    }
    harp_free(w);
    return HARP_OK;
}

void dec_ldp_random_planes(harp_rng *rng, int64_t m, int64_t n, int64_t ng, uint8_t *qweight, uint16_t *lv16) {
    const size_t cb = (size_t)m * (size_t)harp_scalar_row_bytes(n, 2);
    for (size_t i = 0; i < cb; i++) qweight[i] = (uint8_t)harp_rng_u64(rng);
    for (size_t k = 0; k < (size_t)(m * ng); k++)
        for (int j = 0; j < 4; j++) lv16[4 * k + (size_t)j] = harp_f32_to_f16(0.01f * (float)(2 * j - 3));
}
