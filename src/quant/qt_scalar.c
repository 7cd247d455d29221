/* Rows of the scalar group types int2 / int3 / int4 / int8 in the traits table. Planes: qweight
 * (codes bit-packed per row, qblocks.h), scales F32 and zeros U8 per (row, group), optional g_idx
 * (group of each column, GPTQ act-order). The value of a code is (float)((double)scale · (q − zero))
 * (harp_scalar_value, the quantizer's formula); the GEMV sums (double)w · x over the columns in order
 * in double precision — the definition of the format, and what every scalar kernel computes. The fast
 * GEMV keeps those bits: codes of ≤ 4 bits are looked up in their group's 2^bits values (computed by the
 * same formula), and eight rows' sums run side by side, each still in column order. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "quant/quant_internal.h"
#include "quant/qtype_traits.h"

/* Row r of W̃ into o[0..n). */
static void scalar_row(const harp_qtensor *w, int64_t r, float *o) {
    const int bits = (int)harp_qtype_bits(w->type);
    const int64_t n = w->n, ng = w->n_groups, g = w->group_size;
    const uint8_t *row = (const uint8_t *)w->planes[0].data + r * harp_scalar_row_bytes(n, bits);
    const float *scale = (const float *)w->planes[1].data + r * ng;
    const uint8_t *zero = (const uint8_t *)w->planes[2].data + r * ng;
    const int32_t *g_idx = w->planes[3].data;
    if (g_idx) {
        for (int64_t c = 0; c < n; c++) {
            const int32_t G = g_idx[c];
            o[c] = (float)harp_scalar_value(scale[G], (int)harp_scalar_get(row, c, bits), zero[G]);
        }
        return;
    }
    for (int64_t G = 0, c0 = 0; G < ng; G++, c0 += g) {
        const int64_t c1 = c0 + g < n ? c0 + g : n;
        if (bits == 8) {
            for (int64_t c = c0; c < c1; c++) o[c] = (float)harp_scalar_value(scale[G], row[c], zero[G]);
            continue;
        }
        float lut[16];   /* the group's 2^bits values once, then a lookup per code */
        harp_scalar_lut(scale[G], zero[G], bits, lut);
        int64_t c = c0;
        if (bits == 4 && !(c0 & 1))   /* a byte holds two codes, low nibble first */
            for (; c + 2 <= c1; c += 2) {
                const unsigned b = row[c >> 1];
                o[c] = lut[b & 15], o[c + 1] = lut[b >> 4];
            }
        for (; c < c1; c++) o[c] = lut[harp_scalar_get(row, c, bits)];
    }
}

void qt_scalar_dequant_rows(const harp_qtensor *w, int64_t r0, int64_t r1, float *out, size_t ld) {
    for (int64_t r = r0; r < r1; r++) scalar_row(w, r, out + (size_t)(r - r0) * ld);
}

/* Rows interleaved per column: each row's sum is still the double sum over its columns in order (the
 * product of two floats is exact in double, so each step rounds once, as in the reference), but kRows
 * independent chains run side by side instead of one serial chain of double additions per row, which
 * had made the scalar types 5× slower than the f32 GEMV on the CPU. */
enum { kRows = 8 };

static void rows_dot(const float *wr, int nr, const float *x, int64_t n, double *out) {
    double acc[kRows] = {0};
    if (nr == kRows) {   /* a fixed count: the compiler keeps the chains in registers */
        for (int64_t c = 0; c < n; c++) {
            const double xc = x[c];
            for (int r = 0; r < kRows; r++) acc[r] += (double)wr[r * n + c] * xc;
        }
    } else {
        for (int64_t c = 0; c < n; c++)
            for (int r = 0; r < nr; r++) acc[r] += (double)wr[r * n + c] * x[c];
    }
    for (int r = 0; r < nr; r++) out[r] = acc[r];
}

/* Plain twin: every weight decoded on its own with the generic unpacker. */
void qt_scalar_gemv_ref(const harp_qtensor *w, const float *x, float *y) {
    const int bits = (int)harp_qtype_bits(w->type);
    const int64_t n = w->n, ng = w->n_groups;
    const float *scale = w->planes[1].data;
    const uint8_t *zero = w->planes[2].data;
    const int32_t *g_idx = w->planes[3].data;
    for (int64_t r = 0; r < w->m; r++) {
        const uint8_t *row = (const uint8_t *)w->planes[0].data + r * harp_scalar_row_bytes(n, bits);
        double s = 0;
        for (int64_t c = 0; c < n; c++) {
            const int64_t k = r * ng + (g_idx ? g_idx[c] : c / w->group_size);
            s += (double)(float)harp_scalar_value(scale[k], (int)harp_scalar_get(row, c, bits), zero[k]) * x[c];
        }
        y[r] = (float)s;
    }
}

/* The same fixed-order double dot per row (bit-identical to the reference), blocks of kRows rows over
 * threads. */
harp_status qt_scalar_gemv(const harp_qtensor *w, const float *x, float *y, int act_q8) {
    (void)act_q8; /* no int8-activation kernel for scalar codes */
    const int64_t m = w->m, n = w->n, nblk = (m + kRows - 1) / kRows;
    const int par = m * n >= 65536, avx2 = qt_scalar4_avx2_applies(w);
    int oom = 0;
#pragma omp parallel if (par)
    {
        float *buf = malloc((size_t)kRows * (size_t)n * sizeof(float));
        if (!buf) {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp for schedule(static)
        for (int64_t b = 0; b < nblk; b++) {
            if (!buf) continue;
            const int64_t r0 = b * kRows;
            const int nr = (int)(m - r0 < kRows ? m - r0 : kRows);
            double d[kRows];
            if (avx2 && nr == kRows) {
                qt_scalar4_rows8_avx2(w, r0, x, d);
            } else {
                for (int r = 0; r < nr; r++) scalar_row(w, r0 + r, buf + (size_t)r * (size_t)n);
                rows_dot(buf, nr, x, n, d);
            }
            for (int r = 0; r < nr; r++) y[r0 + r] = (float)d[r];
        }
        free(buf);
    }
    return oom ? harp_err(HARP_ERR_OOM, "scalar gemv: out of memory for a row buffer") : HARP_OK;
}
