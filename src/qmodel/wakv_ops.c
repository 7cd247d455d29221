/* Array-level rotation operations of the W/A/KV path (wakv.h): norm folding, input- and output-side
 * fusion of a (padded) rotation, the per-head R2 fusion and the online R3 / R4 transforms. Every one
 * goes through harp_padrot_fwd, so the offline and online halves of a rotation are the same function
 * (algorithms.md §9.1, "same function offline and online"). */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "wakv.h"

void harp_wakv_fold_norm(const float *gamma, int64_t n, float *W, int64_t m) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) W[i * n + j] *= gamma[j];
}

harp_status harp_wakv_rot_in(const harp_padrot *R, const float *W, int64_t m, float *Wout) {
    if (!R) return harp_err(HARP_ERR_INVALID_ARG, "rotation (input side): NULL rotation");
    return harp_padrot_fwd(R, W, harp_padrot_n(R), Wout, harp_padrot_n_pad(R), m);
}

/* T (cols × rows, leading dimension ldt) = Aᵀ for A (rows × cols). */
static void transpose(const float *A, int64_t rows, int64_t cols, float *T, int64_t ldt) {
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) T[j * ldt + i] = A[i * cols + j];
}

/* Rᵀ·[A; 0] = ([Aᵀ, 0]·R)ᵀ for A (n × k) → out (n' × k). */
harp_status harp_wakv_rot_out(const harp_padrot *R, const float *W, int64_t k, float *Wout) {
    if (!R || !W || !Wout || k < 1) return harp_err(HARP_ERR_INVALID_ARG, "rotation (output side): bad arguments");
    const int64_t n = harp_padrot_n(R), np = harp_padrot_n_pad(R);
    float *t = harp_xmalloc((size_t)(k * np) * sizeof *t, "rotation transpose buffer");
    if (!t) return HARP_ERR_OOM;
    transpose(W, n, k, t, np);
    harp_status st = harp_padrot_fwd(R, t, np, t, np, k);
    if (st == HARP_OK) transpose(t, k, np, Wout, k);
    free(t);
    return st;
}

static harp_status check_head_rot(const harp_padrot *R, const char *what) {
    if (!R) return harp_err(HARP_ERR_INVALID_ARG, "%s: NULL rotation", what);
    if (harp_padrot_n(R) != harp_padrot_n_pad(R))
        return harp_err(HARP_ERR_SHAPE, "%s: a per-head rotation cannot expand the head width (%lld → %lld)", what,
                        (long long)harp_padrot_n(R), (long long)harp_padrot_n_pad(R));
    return HARP_OK;
}

harp_status harp_wakv_rot_heads_out(const harp_padrot *R2, float *W, float *b, int n_heads, int64_t k) {
    HARP_TRY(check_head_rot(R2, "R2 (output side)"));
    const int64_t hd = harp_padrot_n(R2);
    harp_status st = HARP_OK;
    for (int h = 0; h < n_heads && st == HARP_OK; h++) {
        st = harp_wakv_rot_out(R2, W + (int64_t)h * hd * k, k, W + (int64_t)h * hd * k);
        if (st == HARP_OK && b) st = harp_padrot_fwd(R2, b + (int64_t)h * hd, hd, b + (int64_t)h * hd, hd, 1);
    }
    return st;
}

harp_status harp_wakv_rot_heads_in(const harp_padrot *R2, float *W, int64_t m, int n_heads) {
    HARP_TRY(check_head_rot(R2, "R2 (input side)"));
    const int64_t hd = harp_padrot_n(R2);
    return harp_padrot_fwd(R2, W, hd, W, hd, m * n_heads);
}

harp_status harp_wakv_r3_apply(const harp_padrot *R3, float *X, int64_t rows, int64_t ld, int n_heads) {
    HARP_TRY(check_head_rot(R3, "R3"));
    const int64_t hd = harp_padrot_n(R3);
    if (ld < hd * n_heads) return harp_err(HARP_ERR_SHAPE, "R3: leading dimension %lld below %d heads of %lld", (long long)ld, n_heads, (long long)hd);
    if (ld == hd * n_heads) return harp_padrot_fwd(R3, X, hd, X, hd, rows * n_heads);
    for (int64_t r = 0; r < rows; r++) HARP_TRY(harp_padrot_fwd(R3, X + r * ld, hd, X + r * ld, hd, n_heads));
    return HARP_OK;
}

harp_status harp_wakv_r4_apply(const harp_padrot *R4, const float *X, int64_t ldx, float *Y, int64_t ldy, int64_t rows) {
    if (!R4) return harp_err(HARP_ERR_INVALID_ARG, "R4: NULL rotation");
    return harp_padrot_fwd(R4, X, ldx, Y, ldy, rows);
}
