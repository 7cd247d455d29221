/* Padded rotations (had_pad.h): Hadamard of any width by zero-padding to the nearest width that has a
 * construction ("dimension expansion"), and the padded forward / inverse of any rotation kind. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "had_pad.h"
#include "rot_internal.h"

struct harp_padrot {
    int64_t n, n_pad;
    harp_rot *r;     /* dimension n_pad; NULL = identity */
    int8_t *signs;   /* n_pad ±1, applied before r (Hadamard with signs) */
};

/* K of width n by the rule of harp_hadamard_choose_k, without logging (0: none). Kept in step with it:
 * the tests compare the two on every width they build. */
static int had_k_quiet(int64_t n) {
    int64_t r = n;
    while (r % 2 == 0) r /= 2;
    if (r == 1) return 1;
    for (int64_t k = 4 * r; k <= 2048 && n % k == 0; k *= 2)
        if (hadk_constructible((int)k)) return (int)k;
    return 0;
}

harp_status harp_had_pad_dim(int64_t n, int64_t *n_pad, int *K) {
    if (n < 1 || n > ((int64_t)1 << 26))
        return harp_err(HARP_ERR_INVALID_ARG, "hadamard padding: width %lld out of range", (long long)n);
    for (int64_t m = n;; m++) {
        int k = had_k_quiet(m);
        if (k) {
            if (n_pad) *n_pad = m;
            if (K) *K = k;
            return HARP_OK;
        }
    }
}

harp_status harp_padrot_wrap(harp_rot *r, int64_t n, harp_padrot **out) {
    *out = NULL;
    if (n < 1 || (r && harp_rot_dim(r) < n)) {
        harp_status st = harp_err(HARP_ERR_SHAPE, "padded rotation: rotation of dimension %lld for width %lld",
                                  (long long)harp_rot_dim(r), (long long)n);
        harp_rot_destroy(r);
        return st;
    }
    harp_padrot *p = harp_xcalloc(1, sizeof *p, "padded rotation");
    if (!p) {
        harp_rot_destroy(r);
        return HARP_ERR_OOM;
    }
    p->n = n;
    p->n_pad = r ? harp_rot_dim(r) : n;
    p->r = r;
    *out = p;
    return HARP_OK;
}

harp_status harp_padrot_hadamard(int64_t n, int pad, int signs, uint64_t seed, const char *what, harp_padrot **out) {
    if (!what) what = "hadamard";
    *out = NULL;
    int64_t np;
    HARP_TRY(harp_had_pad_dim(n, &np, NULL));
    if (np != n && !pad)
        return harp_err(HARP_ERR_UNSUPPORTED,
                        "%s: no Hadamard matrix of order %lld exists here (the nearest width with one is %lld; "
                        "zero-padding is not possible at this place)",
                        what, (long long)n, (long long)np);
    harp_rot *r = NULL;
    HARP_TRY(harp_rot_create(HARP_ROT_HADAMARD, np, NULL, 0, &r));
    HARP_TRY(harp_padrot_wrap(r, n, out));
    if (!signs) return HARP_OK;
    harp_padrot *p = *out;
    p->signs = harp_xmalloc((size_t)np, "hadamard signs");
    if (!p->signs) {
        harp_padrot_destroy(p);
        *out = NULL;
        return HARP_ERR_OOM;
    }
    harp_rng g;
    harp_rng_seed(&g, harp_seed_mix(seed, 0x686164706164ULL));
    for (int64_t i = 0; i < np; i++) p->signs[i] = (harp_rng_u64(&g) >> 63) ? -1 : 1;
    return HARP_OK;
}

void harp_padrot_destroy(harp_padrot *p) {
    if (!p) return;
    harp_rot_destroy(p->r);
    free(p->signs);
    free(p);
}

int64_t harp_padrot_n(const harp_padrot *p) { return p ? p->n : 0; }
int64_t harp_padrot_n_pad(const harp_padrot *p) { return p ? p->n_pad : 0; }
const harp_rot *harp_padrot_rot(const harp_padrot *p) { return p ? p->r : NULL; }
const int8_t *harp_padrot_signs(const harp_padrot *p) { return p ? p->signs : NULL; }

static harp_status check_args(const harp_padrot *p, const void *A, int64_t lda, int64_t wa, const void *B,
                              int64_t ldb, int64_t wb, int64_t rows, const char *what) {
    if (!p || rows < 0 || (rows > 0 && (!A || !B)))
        return harp_err(HARP_ERR_INVALID_ARG, "%s: NULL rotation or matrix", what);
    if (lda < wa || ldb < wb)
        return harp_err(HARP_ERR_SHAPE, "%s: leading dimensions %lld, %lld below widths %lld, %lld", what,
                        (long long)lda, (long long)ldb, (long long)wa, (long long)wb);
    return HARP_OK;
}

harp_status harp_padrot_fwd(const harp_padrot *p, const float *X, int64_t ldx, float *Y, int64_t ldy, int64_t rows) {
    HARP_TRY(check_args(p, X, ldx, p ? p->n : 0, Y, ldy, p ? p->n_pad : 0, rows, "padded rotation"));
    const int64_t n = p->n, np = p->n_pad;
    /* backwards, so that Y == X with ld ≥ n' never overwrites a row before it is read */
    for (int64_t i = rows - 1; i >= 0; i--) {
        const float *x = X + i * ldx;
        float *y = Y + i * ldy;
        if (y != x) memmove(y, x, (size_t)n * sizeof *y);
        memset(y + n, 0, (size_t)(np - n) * sizeof *y);
        if (p->signs)
            for (int64_t j = 0; j < n; j++) y[j] = p->signs[j] < 0 ? -y[j] : y[j];
    }
    return p->r ? harp_rot_apply(p->r, Y, rows, ldy, 0) : HARP_OK;
}

harp_status harp_padrot_inv(const harp_padrot *p, const float *Y, int64_t ldy, float *X, int64_t ldx, int64_t rows) {
    HARP_TRY(check_args(p, Y, ldy, p ? p->n_pad : 0, X, ldx, p ? p->n : 0, rows, "padded rotation inverse"));
    const int64_t n = p->n, np = p->n_pad, chunk = 64;
    float *t = harp_xmalloc((size_t)(chunk * np) * sizeof *t, "padded rotation buffer");
    if (!t) return HARP_ERR_OOM;
    harp_status st = HARP_OK;
    for (int64_t r0 = 0; r0 < rows && st == HARP_OK; r0 += chunk) {
        const int64_t nr = rows - r0 < chunk ? rows - r0 : chunk;
        for (int64_t i = 0; i < nr; i++) memcpy(t + i * np, Y + (r0 + i) * ldy, (size_t)np * sizeof *t);
        if (p->r) st = harp_rot_apply(p->r, t, nr, np, 1);
        for (int64_t i = 0; i < nr && st == HARP_OK; i++) {
            float *x = X + (r0 + i) * ldx;
            for (int64_t j = 0; j < n; j++) x[j] = p->signs && p->signs[j] < 0 ? -t[i * np + j] : t[i * np + j];
        }
    }
    free(t);
    return st;
}

harp_status harp_padrot_dense(const harp_padrot *p, double *R) {
    if (!p || !R) return harp_err(HARP_ERR_INVALID_ARG, "padded rotation dense: NULL argument");
    const int64_t np = p->n_pad;
    if (!p->r) {
        memset(R, 0, (size_t)(np * np) * sizeof *R);
        for (int64_t i = 0; i < np; i++) R[i * np + i] = 1;
        return HARP_OK;
    }
    if (harp_rot_get_kind(p->r) != HARP_ROT_HADAMARD) return harp_rot_materialize(p->r, R);
    /* R[i][j] = s_i · hadK[i / m][j / m] · H[i % m][j % m] / √n',  m = n'/K, H Sylvester */
    const int K = harp_rot_hadamard_k(p->r);
    const int64_t m = np / K;
    int8_t *hk = harp_xmalloc((size_t)K * (size_t)K, "hadK");
    if (!hk) return HARP_ERR_OOM;
    harp_status st = harp_hadamard_matrix(K, hk, NULL);
    const double sc = 1.0 / sqrt((double)np);
    for (int64_t i = 0; i < np && st == HARP_OK; i++)
        for (int64_t j = 0; j < np; j++) {
            int h = hk[(i / m) * K + j / m] * (__builtin_popcountll((unsigned long long)((i % m) & (j % m))) & 1 ? -1 : 1);
            R[i * np + j] = (p->signs ? p->signs[i] : 1) * h * sc;
        }
    free(hk);
    return st;
}

harp_status harp_padrot_fwd_ref(const harp_padrot *p, const float *X, int64_t ldx, float *Y, int64_t ldy,
                                int64_t rows) {
    HARP_TRY(check_args(p, X, ldx, p ? p->n : 0, Y, ldy, p ? p->n_pad : 0, rows, "padded rotation (ref)"));
    const int64_t n = p->n, np = p->n_pad;
    double *R = harp_xmalloc((size_t)(np * np) * sizeof *R, "dense rotation");
    double *acc = harp_xmalloc((size_t)np * sizeof *acc, "dense rotation row");
    harp_status st = R && acc ? harp_padrot_dense(p, R) : HARP_ERR_OOM;
    for (int64_t i = 0; i < rows && st == HARP_OK; i++) {
        for (int64_t j = 0; j < np; j++) acc[j] = 0;
        for (int64_t k = 0; k < n; k++) {
            const double xk = X[i * ldx + k];
            for (int64_t j = 0; j < np; j++) acc[j] += xk * R[k * np + j];
        }
        for (int64_t j = 0; j < np; j++) Y[i * ldy + j] = (float)acc[j];
    }
    free(R);
    free(acc);
    return st;
}
