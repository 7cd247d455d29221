/* Kind random_orthogonal: a Haar-random dense n×n matrix (quality baseline). Blob payload: the n×n
 * fp64 matrix, row-major (forward = X·R). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rot_internal.h"

static harp_status random_create(harp_rot *r, const harp_rot_params *p, harp_rng *g) {
    (void)p;
    int64_t n = r->n;
    if (n > ROT_DENSE_MAX) return harp_err(HARP_ERR_UNSUPPORTED, "random_orthogonal: n=%lld too large for a dense rotation", (long long)n);
    r->dense = harp_xmalloc((size_t)n * (size_t)n * sizeof(double), "random orthogonal");
    if (!r->dense) return HARP_ERR_OOM;
    for (size_t i = 0; i < (size_t)n * (size_t)n; i++) r->dense[i] = harp_rng_normal(g);
    orth_qr_signfix(r->dense, (int)n);
    return HARP_OK;
}

harp_status rot_dense_finish(harp_rot *r) {
    size_t nn = (size_t)r->n * (size_t)r->n;
    r->dense_f = harp_xmalloc(nn * sizeof(float), "dense rotation");
    if (!r->dense_f) return HARP_ERR_OOM;
    for (size_t i = 0; i < nn; i++) r->dense_f[i] = (float)r->dense[i];
    return HARP_OK;
}

harp_status rot_dense_materialize(const harp_rot *r, double *R) {
    memcpy(R, r->dense, (size_t)r->n * (size_t)r->n * sizeof(double));
    return HARP_OK;
}

static void random_write(rot_wbuf *w, const harp_rot *r) { rot_w_f64s(w, r->dense, (size_t)r->n * (size_t)r->n); }

static harp_status random_read(rot_rbuf *rb, harp_rot *r, uint32_t ver) {
    (void)ver;
    int64_t n = r->n;
    if (n > ROT_DENSE_MAX) return rot_fmt_err(rb, "dense rotation dimension too large", (long long)n);
    r->dense = rot_r_f64s(rb, (size_t)n * (size_t)n, "dense matrix");
    if (rb->st) return rb->st;
    /* sampled check (three rows, O(n)): catches a tampered matrix without an O(n³) product */
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            const double *ra = r->dense + (size_t)(a * (n - 1) / 2) * (size_t)n, *rb2 = r->dense + (size_t)(b * (n - 1) / 2) * (size_t)n;
            double d = 0;
            for (int64_t k = 0; k < n; k++) d += ra[k] * rb2[k];
            if (fabs(d - (ra == rb2)) > 1e-9) return rot_fmt_err(rb, "stored dense rotation is not orthogonal; dimension", (long long)n);
        }
    return rot_dense_finish(r);
}

const rot_kind_ops rot_kind_random = {
    .name = "random_orthogonal", .max_version = 1, .create = random_create, .finish = rot_dense_finish,
    .row_f32 = dense_row_f32, .row_f64 = dense_row_f64, .tile = 1, .gemm = 1, .materialize = rot_dense_materialize,
    .write = random_write, .read = random_read,
};

