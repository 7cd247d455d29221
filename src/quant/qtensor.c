/* harp_qtensor: life cycle, derived members, validation, dequantization and THE CPU product with
 * transforms (harp_qtensor_apply) and its reference twin. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "quant/quant_internal.h"
#include "quant/qtype_traits.h"

harp_status harp_qtensor_init(harp_qtensor *w, harp_qtype type, int64_t m, int64_t n, int64_t group_size) {
    memset(w, 0, sizeof *w);
    const harp_qtype_traits *tr = harp_qtype_traits_of(type);
    if (!tr || m <= 0 || n <= 0 || m > INT32_MAX || n > INT32_MAX)
        return harp_err(HARP_ERR_INVALID_ARG, "qtensor: bad type %d or shape %lldx%lld", (int)type, (long long)m,
                        (long long)n);
    w->type = type;
    w->m = m;
    w->n = n;
    if (harp_qlayout_grouped(tr->layout)) {
        w->group_size = group_size > 0 && group_size < n ? group_size : n;
        w->n_groups = (n + w->group_size - 1) / w->group_size;
    }
    return HARP_OK;
}

void harp_qtensor_free(harp_qtensor *w) {
    if (!w) return;
    for (int i = 0; i < HARP_QT_MAX_PLANES; i++) harp_free(w->planes[i].owned);
    harp_free(w->xf.s_in);
    harp_free(w->xf.s_out);
    harp_rot_destroy(w->xf.rot_in);
    harp_rot_destroy(w->xf.rot_out);
    harp_free(w->xf.in_mul);
    harp_free(w->xf.out_mul);
    memset(w, 0, sizeof *w);
}

/* in_mul = s_in; out_mul[r] = (s_out ? s_out[r] : 1) · slice_scale[slice(r)] (float, as stored). */
static harp_status derive_xf(harp_qtensor *w) {
    harp_qxf *x = &w->xf;
    harp_free(x->in_mul);
    harp_free(x->out_mul);
    x->in_mul = x->out_mul = NULL;
    if (x->n_slices < 0 || x->n_slices > HARP_QXF_MAX_SLICES)
        return harp_err(HARP_ERR_INVALID_ARG, "qtensor: %d slices (at most %d)", x->n_slices, HARP_QXF_MAX_SLICES);
    int64_t rows = 0;
    for (int i = 0; i < x->n_slices; i++) rows += x->slice_len[i];
    if (x->n_slices && rows != w->m)
        return harp_err(HARP_ERR_INVALID_ARG, "qtensor: slices cover %lld rows, the tensor has %lld", (long long)rows,
                        (long long)w->m);
    if (x->s_in) {
        if (!(x->in_mul = harp_xmalloc((size_t)w->n * sizeof(float), "in_mul"))) return HARP_ERR_OOM;
        for (int64_t j = 0; j < w->n; j++) x->in_mul[j] = (float)x->s_in[j];
    }
    if (x->n_slices || x->s_out) {
        if (!(x->out_mul = harp_xmalloc((size_t)w->m * sizeof(float), "out_mul"))) return HARP_ERR_OOM;
        int64_t r = 0;
        for (int i = 0; i < (x->n_slices ? x->n_slices : 1); i++) {
            const int64_t len = x->n_slices ? x->slice_len[i] : w->m;
            const float s = x->n_slices ? x->slice_scale[i] : 1.0f;
            for (int64_t k = 0; k < len; k++, r++) x->out_mul[r] = (x->s_out ? (float)x->s_out[r] : 1.0f) * s;
        }
    }
    return HARP_OK;
}

harp_status harp_qtensor_derive(harp_qtensor *w) {
    const harp_qtype_traits *tr = harp_qtype_traits_of(w->type);
    if (!tr) return harp_err(HARP_ERR_INVALID_ARG, "qtensor: bad type %d", (int)w->type);
    for (int i = 0; i < tr->n_planes; i++)
        if (!tr->planes[i].optional && !w->planes[i].data)
            return harp_err(HARP_ERR_INVALID_ARG, "qtensor: missing code plane %d ('%s')", i, tr->planes[i].suffix);
    if (tr->decode) tr->decode(w);
    return derive_xf(w);
}

static harp_status check_xf(const harp_qtensor *w, const char *what) {
    const harp_qxf *x = &w->xf;
    for (int64_t j = 0; x->s_in && j < w->n; j++)
        if (x->s_in[j] != 1 && x->s_in[j] != -1)
            return harp_err(HARP_ERR_FORMAT, "%s: input sign %lld is %d, expected +1 or -1", what, (long long)j, x->s_in[j]);
    for (int64_t i = 0; x->s_out && i < w->m; i++)
        if (x->s_out[i] != 1 && x->s_out[i] != -1)
            return harp_err(HARP_ERR_FORMAT, "%s: output sign %lld is %d, expected +1 or -1", what, (long long)i, x->s_out[i]);
    if (x->rot_in && harp_rot_dim(x->rot_in) != w->n)
        return harp_err(HARP_ERR_SHAPE, "%s: input rotation has dimension %lld, expected %lld", what,
                        (long long)harp_rot_dim(x->rot_in), (long long)w->n);
    if (x->rot_out && harp_rot_dim(x->rot_out) != w->m)
        return harp_err(HARP_ERR_SHAPE, "%s: output rotation has dimension %lld, expected %lld", what,
                        (long long)harp_rot_dim(x->rot_out), (long long)w->m);
    int64_t rows = 0;
    for (int i = 0; i < x->n_slices; i++) {
        rows += x->slice_len[i];
        if (!isfinite(x->slice_scale[i])) return harp_err(HARP_ERR_NUMERIC, "%s: slice scale %d is not finite", what, i);
    }
    if (x->n_slices < 0 || x->n_slices > HARP_QXF_MAX_SLICES || (x->n_slices && rows != w->m))
        return harp_err(HARP_ERR_SHAPE, "%s: %d slices covering %lld rows, expected %lld", what, x->n_slices, (long long)rows,
                        (long long)w->m);
    if ((x->s_in != NULL) != (x->in_mul != NULL) || ((x->n_slices || x->s_out) != (x->out_mul != NULL)))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: transforms changed without harp_qtensor_derive", what);
    return HARP_OK;
}

harp_status harp_qtensor_check(const harp_qtensor *w, const char *what) {
    if (!what) what = "quantized tensor";
    if (!w) return harp_err(HARP_ERR_INVALID_ARG, "%s: NULL", what);
    const harp_qtype_traits *tr = harp_qtype_traits_of(w->type);
    if (!tr || w->m <= 0 || w->n <= 0 || w->m > INT32_MAX || w->n > INT32_MAX)
        return harp_err(HARP_ERR_FORMAT, "%s: bad type %d or shape %lldx%lld", what, (int)w->type, (long long)w->m,
                        (long long)w->n);
    if (harp_qlayout_grouped(tr->layout) &&
        (w->group_size <= 0 || w->group_size > w->n || w->n_groups != (w->n + w->group_size - 1) / w->group_size))
        return harp_err(HARP_ERR_FORMAT, "%s: group size %lld / %lld groups do not fit %lld columns", what,
                        (long long)w->group_size, (long long)w->n_groups, (long long)w->n);
    for (int i = 0; i < tr->n_planes; i++) {
        if (!w->planes[i].data) {
            if (tr->planes[i].optional) continue;
            return harp_err(HARP_ERR_INVALID_ARG, "%s: missing code plane %d ('%s')", what, i, tr->planes[i].suffix);
        }
        if (w->planes[i].nbytes != harp_qplane_bytes(w, i))
            return harp_err(HARP_ERR_SHAPE, "%s: plane '%s' has %zu bytes, expected %zu", what, tr->planes[i].suffix,
                            w->planes[i].nbytes, harp_qplane_bytes(w, i));
        HARP_TRY(harp_qplane_check_values(w, i, what, tr->name));
    }
    if (tr->layout == HARP_QLAYOUT_E8P) {
        float ws[2];
        memcpy(ws, w->planes[harp_qplane_index(w->type, "wscale")].data, sizeof ws);
        if (w->type == HARP_QTYPE_E8P2) ws[1] = 0.0f;
        if (memcmp(&w->scale0, &ws[0], sizeof(float)) || memcmp(&w->scale1, &ws[1], sizeof(float)))
            return harp_err(HARP_ERR_INVALID_ARG, "%s: scales differ from the wscale plane (call harp_qtensor_derive)", what);
    }
    if (tr->check) HARP_TRY(tr->check(w, what));
    return check_xf(w, what);
}

harp_status harp_qtensor_dequantize(const harp_qtensor *w, float *W) {
    const harp_qtype_traits *tr = harp_qtype_traits_of(w->type);
    if (!tr || !W) return harp_err(HARP_ERR_INVALID_ARG, "dequantize: bad type %d or NULL output", (int)w->type);
    for (int i = 0; i < tr->n_planes; i++)
        if (!tr->planes[i].optional && !w->planes[i].data)
            return harp_err(HARP_ERR_INVALID_ARG, "dequantize: %s plane '%s' missing", tr->name, tr->planes[i].suffix);
    tr->dequant_rows(w, 0, w->m, W, (size_t)w->n);
    return HARP_OK;
}

/* ---- many-row product ---------------------------------------------------------------------------- */

#define QT_TILE_ROWS 64

harp_status harp_qmm_tiles(const harp_qtensor *w, const float *X, int64_t rows, float *Y) {
    const harp_qtype_traits *tr = harp_qtype_traits_of(w->type);
    const int m = (int)w->m, n = (int)w->n;
    float *tile = harp_aligned_alloc((size_t)QT_TILE_ROWS * (size_t)n * sizeof(float), "dequant tile");
    if (!tile) return HARP_ERR_OOM;
    for (int r0 = 0; r0 < m; r0 += QT_TILE_ROWS) {
        const int r1 = r0 + QT_TILE_ROWS < m ? r0 + QT_TILE_ROWS : m;
        tr->dequant_rows(w, r0, r1, tile, (size_t)n);
        /* Y[:, r0:r1] = X · tileᵀ */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, r1 - r0, n, 1.0f, X, n, tile, n, 0.0f, Y + r0, m);
    }
    harp_free_aligned(tile);
    return HARP_OK;
}

/* ---- product with transforms ---------------------------------------------------------------------- */

/* T = (X ⊙ in_mul)·R_V into T (rows × n); returns X itself when there is no input transform. */
static harp_status apply_in(const harp_qtensor *w, const float *X, int64_t rows, float *T, int ref, const float **out) {
    const harp_qxf *x = &w->xf;
    *out = X;
    if (!x->in_mul && !x->rot_in) return HARP_OK;
    const int64_t n = w->n;
    if (x->in_mul) {
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < n; c++) T[r * n + c] = X[r * n + c] * x->in_mul[c];
    } else {
        memcpy(T, X, (size_t)(rows * n) * sizeof(float));
    }
    if (x->rot_in) HARP_TRY((ref ? harp_rot_apply_ref : harp_rot_apply)(x->rot_in, T, rows, n, 0));
    *out = T;
    return HARP_OK;
}

/* Y ← (Y·R_Uᵀ) ⊙ out_mul */
static harp_status apply_out(const harp_qtensor *w, float *Y, int64_t rows, int ref) {
    const harp_qxf *x = &w->xf;
    const int64_t m = w->m;
    if (x->rot_out) HARP_TRY((ref ? harp_rot_apply_ref : harp_rot_apply)(x->rot_out, Y, rows, m, 1));
    if (x->out_mul)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < m; i++) Y[r * m + i] *= x->out_mul[i];
    return HARP_OK;
}

static harp_status apply_any(const harp_qtensor *w, const float *X, int64_t rows, float *Y, int act_q8, int ref) {
    const harp_qtype_traits *tr = harp_qtype_traits_of(w->type);
    if (!tr || !X || !Y || rows <= 0)
        return harp_err(HARP_ERR_INVALID_ARG, "qtensor apply: bad type %d, NULL buffer or %lld rows", (int)w->type,
                        (long long)rows);
    /* the transformed input: on the stack for small products (one decode row of a small model) */
    float small[1024], *T = NULL;
    if (w->xf.in_mul || w->xf.rot_in) {
        const size_t need = (size_t)(rows * w->n);
        T = need <= sizeof small / sizeof small[0] ? small : harp_xmalloc(need * sizeof(float), "qtensor apply input");
        if (!T) return HARP_ERR_OOM;
    }
    const float *Xt = X;
    harp_status st = apply_in(w, X, rows, T, ref, &Xt);
    if (!st && ref) {
        for (int64_t r = 0; r < rows; r++) tr->gemv_ref(w, Xt + r * w->n, Y + r * w->m);
    } else if (!st) {
        st = rows == 1 ? tr->gemv(w, Xt, Y, act_q8) : tr->mm(w, Xt, rows, Y);
    }
    if (!st) st = apply_out(w, Y, rows, ref);
    if (T != small) harp_free(T);
    return st;
}

harp_status harp_qtensor_apply(const harp_qtensor *w, const float *X, int64_t rows, float *Y, int act_q8) {
    return apply_any(w, X, rows, Y, act_q8, 0);
}

harp_status harp_qtensor_apply_ref(const harp_qtensor *w, const float *X, int64_t rows, float *Y) {
    return apply_any(w, X, rows, Y, 0, 1);
}
