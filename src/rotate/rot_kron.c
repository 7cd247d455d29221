/* Kind kron: P_out (A⊗B) P_in, QuIP's Kronecker baseline, dense (algorithms.md §2.3). Blob payload:
 * u32 p1, u32 p2 (p1·p2 = n), p1×p1 f64 A, p2×p2 f64 B, n × u32 input permutation, n × u32 output
 * permutation; R[i][j] = (A⊗B)[pout[i]][pin[j]]. */
#include <math.h>
#include <stdlib.h>

#include "rot_internal.h"

/* Haar-random orthogonal of order k (k = 2: a uniform Givens angle, as QuIP's kron mode). */
static harp_status haar(int k, harp_rng *g, double **out) {
    double *A = harp_xmalloc((size_t)k * k * sizeof(double), "Haar matrix");
    if (!A) return HARP_ERR_OOM;
    if (k == 2) {
        double a = 6.283185307179586476925 * harp_rng_uniform(g), c = cos(a), s = sin(a);
        A[0] = c, A[1] = -s, A[2] = s, A[3] = c;
    } else {
        for (size_t i = 0; i < (size_t)k * k; i++) A[i] = harp_rng_normal(g);
        orth_qr_signfix(A, k);
    }
    *out = A;
    return HARP_OK;
}

static harp_status random_perm(int64_t n, harp_rng *g, uint32_t **out) {
    uint32_t *p = harp_xmalloc((size_t)n * sizeof(uint32_t), "permutation");
    if (!p) return HARP_ERR_OOM;
    for (int64_t i = 0; i < n; i++) p[i] = (uint32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(harp_rng_u64(g) % (uint64_t)(i + 1));
        uint32_t t = p[i];
        p[i] = p[j], p[j] = t;
    }
    *out = p;
    return HARP_OK;
}

static harp_status kron_create(harp_rot *r, const harp_rot_params *p, harp_rng *g) {
    (void)p;
    int64_t n = r->n;
    if (n > ROT_DENSE_MAX) return harp_err(HARP_ERR_UNSUPPORTED, "kron: n=%lld too large for a dense rotation", (long long)n);
    /* prime factors ascending; p1 = product at even positions, p2 = at odd positions */
    int64_t v = n, p1 = 1, p2 = 1;
    int idx = 0;
    for (int64_t f = 2; v > 1; f++) {
        if (f * f > v) f = v;
        while (v % f == 0) {
            if (idx++ % 2 == 0) p1 *= f;
            else p2 *= f;
            v /= f;
        }
    }
    r->kron_p1 = (int)p1, r->kron_p2 = (int)p2;
    HARP_TRY(haar((int)p1, g, &r->kron_a));
    HARP_TRY(haar((int)p2, g, &r->kron_b));
    HARP_TRY(random_perm(n, g, &r->kron_pin));
    HARP_TRY(random_perm(n, g, &r->kron_pout));
    return HARP_OK;
}

static harp_status kron_finish(harp_rot *r) {
    int64_t n = r->n;
    int p2 = r->kron_p2;
    r->dense = harp_xmalloc((size_t)n * (size_t)n * sizeof(double), "kron matrix");
    if (!r->dense) return HARP_ERR_OOM;
    for (int64_t i = 0; i < n; i++) {
        int64_t a = r->kron_pout[i];
        for (int64_t j = 0; j < n; j++) {
            int64_t b = r->kron_pin[j];
            r->dense[i * n + j] = r->kron_a[(a / p2) * r->kron_p1 + b / p2] * r->kron_b[(a % p2) * p2 + b % p2];
        }
    }
    return rot_dense_finish(r);
}

static void kron_write(rot_wbuf *w, const harp_rot *r) {
    rot_w_u32(w, (uint32_t)r->kron_p1);
    rot_w_u32(w, (uint32_t)r->kron_p2);
    rot_w_f64s(w, r->kron_a, (size_t)r->kron_p1 * r->kron_p1);
    rot_w_f64s(w, r->kron_b, (size_t)r->kron_p2 * r->kron_p2);
    for (int64_t i = 0; i < r->n; i++) rot_w_u32(w, r->kron_pin[i]);
    for (int64_t i = 0; i < r->n; i++) rot_w_u32(w, r->kron_pout[i]);
}

static harp_status kron_read(rot_rbuf *rb, harp_rot *r, uint32_t ver) {
    (void)ver;
    int64_t n = r->n;
    if (n > ROT_DENSE_MAX) return rot_fmt_err(rb, "dense rotation dimension too large", (long long)n);
    uint32_t p1 = rot_r_u32(rb, "p1"), p2 = rot_r_u32(rb, "p2");
    if (rb->st) return rb->st;
    if (p1 == 0 || p2 == 0 || (uint64_t)p1 * p2 != (uint64_t)n) return rot_fmt_err(rb, "kron factors do not multiply to n", (long long)p1);
    r->kron_p1 = (int)p1, r->kron_p2 = (int)p2;
    r->kron_a = rot_r_f64s(rb, (size_t)p1 * p1, "kron A");
    r->kron_b = rot_r_f64s(rb, (size_t)p2 * p2, "kron B");
    r->kron_pin = rot_r_perm(rb, (size_t)n, "kron input permutation");
    r->kron_pout = rot_r_perm(rb, (size_t)n, "kron output permutation");
    if (rb->st) return rb->st;
    if (!rot_orthogonal(r->kron_a, (int)p1) || !rot_orthogonal(r->kron_b, (int)p2))
        return rot_fmt_err(rb, "stored kron factor is not orthogonal; p1", (long long)p1);
    return kron_finish(r);
}

const rot_kind_ops rot_kind_kron = {
    .name = "kron", .max_version = 1, .create = kron_create, .finish = kron_finish,
    .row_f32 = dense_row_f32, .row_f64 = dense_row_f64, .tile = 1, .gemm = 1, .materialize = rot_dense_materialize,
    .write = kron_write, .read = kron_read,
};
