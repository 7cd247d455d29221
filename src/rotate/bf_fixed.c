/* The fixed first stage of the butterfly's hadamard schedule, F = (hadK ⊗ I_pow2)/√K (issue 18): the
 * class tables that apply it with K/4 + 4.5 adds per output instead of K multiply-adds (the kernels are
 * in kern_tpl.h), and F on the fitting engine's constant inputs (butterfly.h). Why classes work: rows
 * 4g … 4g+3 of a ±1 matrix split the inputs into 8 classes by the signs of rows 4g+1..3 relative to
 * row 4g; with the class sums S_p of σ_j·x_j (σ = row 4g) the 4 outputs are the Walsh sums of S. The
 * rows being orthogonal, every class has K/8 + O(1) inputs (K = 108: 12 … 15), so one loop over the
 * 8 classes at once runs a nearly fixed count: no branch per class to mispredict. */
#include <math.h>
#include <stdlib.h>

#include "rot_internal.h"

/* mixing matrix of direction d: forward output c = Σ_j hadK[j][c]·x_j, transpose Σ_j hadK[c][j]·x_j */
static int mix_sign(const harp_rot *r, int d, int c, int j) {
    return d ? r->hadk[(size_t)c * r->K + j] : r->hadk[(size_t)j * r->K + c];
}

/* the inputs of group g in 8 class lists (class p: bit q−1 set where row 4g+q differs from row 4g),
 * each in increasing j, entry j for σ_j = +1 and K + j for −1 (the chunk of −x in [x, −x]) */
static void group_classes(const harp_rot *r, int d, int g, uint8_t *key, uint16_t *idx, uint16_t *off) {
    const int K = r->K;
    int pos[9] = {0};
    for (int j = 0; j < K; j++) {
        int a = mix_sign(r, d, 4 * g, j), p = 0;
        for (int q = 1; q < 4; q++) p |= (mix_sign(r, d, 4 * g + q, j) != a) << (q - 1);
        key[j] = (uint8_t)p;
        pos[p + 1]++;
    }
    for (int p = 0; p < 8; p++) pos[p + 1] += pos[p];
    for (int p = 0; p <= 8; p++) off[p] = (uint16_t)pos[p];
    for (int j = 0; j < K; j++) idx[pos[key[j]]++] = (uint16_t)(j + (mix_sign(r, d, 4 * g, j) < 0 ? K : 0));
}

harp_status bf_fixed_init(harp_rot *r) {
    const int K = r->K;
    /* below 8 elements per chunk one row cannot fill the vector lanes with chunk positions, and the
     * dense vector sum (had_mix_c) is the faster one at batch 1 (measured at n = 172: 2.1 against
     * 3.2 µs); no Hadamard order > 2 misses 4 | K; entries up to 2K − 1 fit 16 bits */
    if (r->pow2 < 8 || K % 4 || K > 32767) return HARP_OK;
    uint8_t *key = harp_xmalloc((size_t)K, "fixed-stage classes");
    if (!key) return HARP_ERR_OOM;
    for (int d = 0; d < 2; d++) {
        r->fx_idx[d] = harp_xmalloc((size_t)(K / 4) * K * sizeof(uint16_t), "fixed-stage classes");
        r->fx_off[d] = harp_xmalloc((size_t)(K / 4) * 9 * sizeof(uint16_t), "fixed-stage classes");
        if (!r->fx_idx[d] || !r->fx_off[d]) {
            free(key);
            return HARP_ERR_OOM;
        }
        for (int g = 0; g < K / 4; g++) group_classes(r, d, g, key, r->fx_idx[d] + (size_t)g * K, r->fx_off[d] + (size_t)g * 9);
    }
    free(key);
    return HARP_OK;
}

void bf_fixed_free(harp_rot *r) {
    for (int d = 0; d < 2; d++) free(r->fx_idx[d]), free(r->fx_off[d]);
}

/* rows of X (rows × n) ← X·F of r's fixed stage, in blocks of 64 rows over the threads (rows are
 * independent, so the result does not depend on the thread count); tmp: rows·n */
static void fixed_rows(const harp_rot *r, double *X, int64_t rows, double *tmp) {
    if (!r || r->kind != HARP_ROT_BUTTERFLY || !r->fixed) return;
    const int64_t n = r->n, nb = (rows + 63) / 64;
    /* bf_fixed_rows takes max(nr, 2)·n of tmp: a last block of one row uses the 2n the caller adds */
#pragma omp parallel for schedule(dynamic, 1) if (rows * n >= (1 << 19))
    for (int64_t b = 0; b < nb; b++) {
        int64_t r0 = b * 64, nr = rows - r0 < 64 ? rows - r0 : 64;
        bf_fixed_rows_f64(r, X + r0 * n, nr, n, tmp + r0 * n, 0);
    }
}

harp_status bf_fixed_weight_f64(const harp_rot *U, const harp_rot *V, double *W, int64_t m, int64_t n) {
    if ((U && U->n != m) || (V && V->n != n))
        return harp_err(HARP_ERR_SHAPE, "butterfly fixed stage: rotation sizes do not match %lld×%lld", (long long)m, (long long)n);
    size_t tot = (size_t)m * (size_t)n;
    size_t big = (size_t)(m > n ? m : n);
    double *t = harp_xmalloc(tot * sizeof(double) + 1, "fixed stage"), *tmp = harp_xmalloc((tot + 2 * big) * sizeof(double), "fixed stage");
    if (!t || !tmp) {
        free(t), free(tmp);
        return HARP_ERR_OOM;
    }
    fixed_rows(V, W, m, tmp);
    /* F_Uᵀ W = (Wᵀ F_U)ᵀ */
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) t[j * m + i] = W[i * n + j];
    fixed_rows(U, t, n, tmp);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) W[i * n + j] = t[j * m + i];
    free(t), free(tmp);
    return HARP_OK;
}
