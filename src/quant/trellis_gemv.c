/* The stored QTIP matrix: checks, dense decode, the reference GEMV (the format's definition) and
 * the fast decode-GEMV driver with its portable kernel.
 *
 * Fast kernels' summation order (shared by portable, AVX2 and AVX-512, hence bit-identical): per
 * row tile, 8 accumulators of 16 fp32 lanes, acc[R0] for tile rows R0 and R0 + 8; column tiles in
 * order; per tile 16 FMAs of a 16-weight vector with a 16-float x vector (xp, two per column tile,
 * X0 then X1), in the order below. With the kernel permutation (§5.6.6):
 *  - V = 2: vector (c, f) = coordinate f of states 16c … 16c+15, c = 0 … 7, f = 0 then 1, into
 *    acc[c] with X_f; lane k = 4e + 2d + a is row c + 8a, column 8d + 2e + f.
 *  - V = 1: vector c = states 16c … 16c+15, c = 0 … 15, into acc[c >> 1] with X_{c & 1}; lane
 *    l = 8e_lo + 4d + 2a + f is row (c >> 1) + 8a, column 8d + 4(c & 1) + 2e_lo + f.
 * At the end of a row tile, row R0 + 8a is the sum of acc[R0]'s 8 lanes with a = 0 / 1 (lane bit 0
 * for V = 2, bit 1 for V = 1) in the fixed tree of lane_sum. */
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "trellis_kern.h"

size_t harp_tmat_code_words(int32_t m, int32_t n, int K) {
    if (m <= 0 || n <= 0 || K < 1) return 0;
    return (size_t)((m + 15) / 16) * (size_t)((n + 15) / 16) * (size_t)(16 * K);
}

harp_status harp_tmat_check(const harp_tmat *w, const char *what) {
    if (!w) return harp_err(HARP_ERR_INVALID_ARG, "%s: no trellis matrix", what);
    if (w->m <= 0 || w->n <= 0)
        return harp_err(HARP_ERR_SHAPE, "%s: trellis matrix shape %d × %d", what, (int)w->m, (int)w->n);
    if (w->K < 2 || w->K > 4) return harp_err(HARP_ERR_FORMAT, "%s: trellis K = %d (2, 3 or 4)", what, (int)w->K);
    if (harp_tcode_v(w->code) == 0) return harp_err(HARP_ERR_FORMAT, "%s: unknown trellis code %d", what, (int)w->code);
    if (!isfinite(w->scale)) return harp_err(HARP_ERR_FORMAT, "%s: trellis scale is not finite", what);
    const size_t need = harp_tmat_code_words(w->m, w->n, w->K), tile = (size_t)(16 * w->K);
    if (!w->codes) return harp_err(HARP_ERR_FORMAT, "%s: the trellis code plane is missing", what);
    if (w->ncodes != need)
        return harp_err(HARP_ERR_FORMAT,
                        "%s: trellis code plane has %zu words = %.6g tiles of %zu; %d × %d at K = %d needs %zu tiles "
                        "(%zu words)%s",
                        what, w->ncodes, (double)w->ncodes / (double)tile, tile, (int)w->m, (int)w->n, (int)w->K,
                        need / tile, need, w->ncodes < need ? " (truncated)" : "");
    if (w->code == HARP_TCODE_HYB) return harp_hyb_table_check(w->tlut, what);
    return HARP_OK;
}

void harp_tmat_dequant_rows(const harp_tmat *w, int32_t r0, int32_t r1, float *out, size_t ld) {
    float t[256];
    const int32_t nt = (w->n + 15) / 16;
    for (int32_t i = r0 / 16; i * 16 < r1; i++)
        for (int32_t j = 0; j < nt; j++) {
            harp_trellis_decode_tile(w->code, w->K, w->tlut, trellis_tile_words(w, i, j), t, 16);
            for (int r = 0; r < 16; r++) {
                const int32_t row = 16 * i + r;
                if (row < r0 || row >= r1) continue;
                for (int c = 0; c < 16 && 16 * j + c < w->n; c++)
                    out[(size_t)(row - r0) * ld + 16 * j + c] = w->scale * t[16 * r + c];
            }
        }
}

void harp_tmat_gemv_ref(const harp_tmat *w, const float *x, float *y) {
    float t[256];
    const int32_t nt = (w->n + 15) / 16;
    for (int32_t i = 0; i * 16 < w->m; i++) {
        double acc[16] = {0};
        for (int32_t j = 0; j < nt; j++) {
            harp_trellis_decode_tile(w->code, w->K, w->tlut, trellis_tile_words(w, i, j), t, 16);
            for (int r = 0; r < 16; r++)
                for (int c = 0; c < 16 && 16 * j + c < w->n; c++) acc[r] += (double)t[16 * r + c] * x[16 * j + c];
        }
        for (int r = 0; r < 16 && 16 * i + r < w->m; r++) y[16 * i + r] = (float)((double)w->scale * acc[r]);
    }
}

/* ---- fast kernels ----------------------------------------------------------------------------- */

/* The 8 lanes of one accumulator whose bit `abit` equals a, in a fixed tree. */
static float lane_sum(const float *acc, int a, int abit) {
    float l[8];
    for (int k = 0, n = 0; k < 16; k++)
        if (((k >> abit) & 1) == a) l[n++] = acc[k];
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

void trellis_gemv_store(const harp_tmat *w, const float *acc, float *y, int32_t i) {
    const int abit = harp_tcode_v(w->code) == 2 ? 0 : 1;
    for (int r = 0; r < 16 && 16 * i + r < w->m; r++) y[16 * i + r] = w->scale * lane_sum(acc + 16 * (r & 7), r >> 3, abit);
}

void trellis_gemv_tiles_portable(const harp_tmat *w, const float *xp, float *y, int32_t i0, int32_t i1) {
    const int V = harp_tcode_v(w->code), S = HARP_TRELLIS_T / V;
    const int32_t nt = (w->n + 15) / 16;
    uint32_t st[HARP_TRELLIS_T];
    float val[HARP_TRELLIS_T];
    for (int32_t i = i0; i < i1; i++) {
        float acc[8][16] = {{0}};
        for (int32_t j = 0; j < nt; j++) {
            const uint16_t *wd = trellis_tile_words(w, i, j);
            for (int t = 0; t < S; t++) {
                const int o = t * w->K * V;
                const uint32_t v = ((uint32_t)wd[o >> 4] << 16) | wd[((o >> 4) + 1) % (16 * w->K)];
                st[t] = (v >> (16 - (o & 15))) & 0xFFFFu;
                harp_tcode_value(w->code, w->tlut, st[t], val + t * V);
            }
            const float *x = xp + (size_t)j * 32;
            for (int c = 0; c < 16; c++) { /* V = 2: (c >> 1, f = c & 1); V = 1: c */
                float *a = acc[c >> 1];
                const float *xe = x + 16 * (c & 1);
                for (int l = 0; l < 16; l++) {
                    const float wv = V == 2 ? val[2 * (16 * (c >> 1) + l) + (c & 1)] : val[16 * c + l];
                    a[l] = fmaf(wv, xe[l], a[l]);
                }
            }
        }
        trellis_gemv_store(w, &acc[0][0], y, i);
    }
}

/* xp[32j + 16e + l] = x at the column of lane l of the x vector X_e (layout above); 0 past n. */
static void permute_x(const harp_tmat *w, const float *x, float *xp) {
    const int32_t nt = (w->n + 15) / 16;
    const int V = harp_tcode_v(w->code);
    for (int32_t j = 0; j < nt; j++)
        for (int e = 0; e < 2; e++)
            for (int l = 0; l < 16; l++) {
                const int col = V == 2 ? 8 * ((l >> 1) & 1) + 2 * (l >> 2) + e : 8 * ((l >> 2) & 1) + 4 * e + 2 * (l >> 3) + (l & 1);
                const int32_t c = 16 * j + col;
                xp[32 * j + 16 * e + l] = c < w->n ? x[c] : 0.0f;
            }
}

harp_status harp_tmat_gemv(const harp_tmat *w, const float *x, float *y) {
    const int32_t nt = (w->n + 15) / 16, mt = (w->m + 15) / 16;
    float *xp = harp_aligned_alloc(sizeof(float) * 32 * (size_t)nt, "trellis GEMV input");
    if (!xp) return HARP_ERR_OOM;
    permute_x(w, x, xp);
    const harp_tisa isa = harp_trellis_isa();
    void (*kern)(const harp_tmat *, const float *, float *, int32_t, int32_t) =
        isa == HARP_TISA_AVX512VBMI ? trellis_gemv_tiles_avx512vbmi
        : isa == HARP_TISA_AVX512 ? trellis_gemv_tiles_avx512
        : isa == HARP_TISA_AVX2 ? trellis_gemv_tiles_avx2
                                : trellis_gemv_tiles_portable;
    /* blocks of row tiles handed out dynamically (a loaded core does not hold the others up); each
     * row tile is summed by one thread in the fixed order, so y does not depend on the schedule */
    enum { BLK = 4 };
    const int32_t nblk = (mt + BLK - 1) / BLK;
    const int nth = nblk < harp_get_threads() ? nblk : harp_get_threads();
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth > 0 ? nth : 1)
    for (int32_t b = 0; b < nblk; b++) kern(w, xp, y, b * BLK, b * BLK + BLK < mt ? b * BLK + BLK : mt);
    harp_free_aligned(xp);
    return HARP_OK;
}
