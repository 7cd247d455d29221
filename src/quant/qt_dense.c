/* Rows of the unquantized types f32 / f16 / bf16 in the traits table: one plane `weight` [m, n] in
 * the type's dtype. The GEMV keeps four fp32 accumulators per row (columns j ≡ 0..3 mod 4, added as
 * (s0 + s1) + (s2 + s3)), one thread per row: the same order for any thread count. */
#include <cblas.h>
#include <stdlib.h>

#include "core/core.h"
#include "quant/quant_internal.h"
#include "quant/qtype_traits.h"

static float dense_at(const harp_qtensor *w, size_t i) {
    switch (w->type) {
    case HARP_QTYPE_F16: return harp_f16_to_f32(((const uint16_t *)w->planes[0].data)[i]);
    case HARP_QTYPE_BF16: return harp_bf16_to_f32(((const uint16_t *)w->planes[0].data)[i]);
    default: return ((const float *)w->planes[0].data)[i];
    }
}

void qt_dense_dequant_rows(const harp_qtensor *w, int64_t r0, int64_t r1, float *out, size_t ld) {
    for (int64_t r = r0; r < r1; r++)
        for (int64_t c = 0; c < w->n; c++) out[(size_t)(r - r0) * ld + (size_t)c] = dense_at(w, (size_t)(r * w->n + c));
}

void qt_dense_gemv_ref(const harp_qtensor *w, const float *x, float *y) {
    for (int64_t r = 0; r < w->m; r++) {
        double s = 0;
        for (int64_t c = 0; c < w->n; c++) s += (double)dense_at(w, (size_t)(r * w->n + c)) * x[c];
        y[r] = (float)s;
    }
}

harp_status qt_dense_gemv(const harp_qtensor *w, const float *x, float *y, int act_q8) {
    (void)act_q8;
    const int64_t m = w->m, n = w->n;
    const int f32 = w->type == HARP_QTYPE_F32;
    int oom = 0;
#pragma omp parallel if (m * n >= 65536)
    {
        float *row = f32 ? NULL : malloc((size_t)n * sizeof(float));
        if (!f32 && !row) {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp for schedule(static)
        for (int64_t r = 0; r < m; r++) {
            if (f32) {
                y[r] = harp_dot4_f32((const float *)w->planes[0].data + r * n, x, n);
            } else if (row) {
                qt_dense_dequant_rows(w, r, r + 1, row, (size_t)n);
                y[r] = harp_dot4_f32(row, x, n);
            }
        }
        free(row);
    }
    return oom ? harp_err(HARP_ERR_OOM, "dense gemv: out of memory for a row buffer") : HARP_OK;
}

harp_status qt_dense_mm(const harp_qtensor *w, const float *X, int64_t rows, float *Y) {
    if (w->type != HARP_QTYPE_F32) return harp_qmm_tiles(w, X, rows, Y);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)w->m, (int)w->n, 1.0f, X, (int)w->n,
                (const float *)w->planes[0].data, (int)w->n, 0.0f, Y, (int)w->m);
    return HARP_OK;
}
