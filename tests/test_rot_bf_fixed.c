/* The butterfly's fixed Had_K stage by classes (src/rotate/bf_fixed.c, issue 18): the class tables
 * cover every input of every group once with the sign of its first row; the class sum (scalar twin)
 * equals the dense K×K sum of had_mix to rounding, in fp32 and fp64, forward and transpose; the
 * vector kernels (one row: chunk positions in the lanes; the 8-row tile: rows in the lanes) equal the
 * twin bit for bit at awkward sizes (K = 12 … 172, chunk length 8 … 512, 1 … 11 rows). */
#include <math.h>
#include <string.h>

#include "rot_test_util.h"
#include "rotate/rot_internal.h"
#include "test_util.h"

static harp_rot *make(int64_t n, double init) {
    harp_rot_params p;
    harp_rot_params_default(&p);
    p.schedule = HARP_BF_SCHEDULE_HADAMARD;
    p.theta_init_scale = init;
    harp_rot *r = NULL;
    CHECK_OK(harp_rot_create(HARP_ROT_BUTTERFLY, n, &p, 3, &r));
    return r;
}

/* every j once per group, in class p exactly when rows 4g+1..3 agree with row 4g as p says */
static void check_tables(const harp_rot *r) {
    const int K = r->K;
    for (int d = 0; d < 2; d++)
        for (int g = 0; g < K / 4; g++) {
            const uint16_t *idx = r->fx_idx[d] + (size_t)g * K, *off = r->fx_off[d] + (size_t)g * 9;
            int seen[65536 / 4] = {0}, bad = 0;
            CHECK_MSG(off[0] == 0 && off[8] == K, "K=%d g=%d: class offsets %d..%d", K, g, off[0], off[8]);
            for (int p = 0; p < 8; p++)
                for (int q = off[p]; q < off[p + 1]; q++) {
                    int j = idx[q] % K, neg = idx[q] >= K;
                    seen[j]++;
                    int a = d ? r->hadk[(size_t)(4 * g) * K + j] : r->hadk[(size_t)j * K + 4 * g];
                    bad |= neg != (a < 0);
                    for (int u = 1; u < 4; u++) {
                        int b = d ? r->hadk[(size_t)(4 * g + u) * K + j] : r->hadk[(size_t)j * K + 4 * g + u];
                        bad |= ((p >> (u - 1)) & 1) != (b != a);
                    }
                }
            for (int j = 0; j < K; j++) bad |= seen[j] != 1;
            CHECK_MSG(!bad, "K=%d d=%d group %d: class table wrong", K, d, g);
        }
}

static void check_width(int64_t n) {
    harp_rot *r = make(n, 0.2);
    if (!r) return;
    CHECK_MSG(r->fixed && r->fx_idx[0] && r->fx_idx[1], "n=%lld: hadamard schedule without class tables", (long long)n);
    if (!r->fx_idx[0]) {
        harp_rot_destroy(r);
        return;
    }
    check_tables(r);
    enum { V = 11 };   /* one 8-row tile and 3 single rows */
    size_t tot = (size_t)V * (size_t)n;
    float *x = malloc(tot * sizeof(float)), *a = malloc(tot * sizeof(float)), *b = malloc(tot * sizeof(float));
    float *tmp = harp_aligned_alloc((size_t)(8 * (3 * n + 2 * 4096) + 64) * sizeof(float), "test");
    double *xd = malloc(tot * sizeof(double)), *ad = malloc(tot * sizeof(double)), *bd = malloc(tot * sizeof(double));
    double *tmpd = harp_aligned_alloc((size_t)(8 * (3 * n + 2 * 4096) + 64) * sizeof(double), "test");
    rt_fill_normal(x, tot, 17 + (uint64_t)n);
    for (size_t i = 0; i < tot; i++) xd[i] = x[i];
    for (int tr = 0; tr < 2; tr++) {
        /* scalar twin against the dense sum */
        memcpy(a, x, tot * sizeof(float));
        memcpy(b, x, tot * sizeof(float));
        memcpy(ad, xd, tot * sizeof(double));
        memcpy(bd, xd, tot * sizeof(double));
        float s = (float)(1.0 / sqrt((double)r->K));
        for (int i = 0; i < V; i++) {
            bf_fixed_ref_f32(r, a + (size_t)i * n, tmp, tr);
            had_mix_ref_f32(r, b + (size_t)i * n, tmp, tr, s);
            bf_fixed_ref_f64(r, ad + (size_t)i * n, tmpd, tr);
            had_mix_ref_f64(r, bd + (size_t)i * n, tmpd, tr, 1.0 / sqrt((double)r->K));
        }
        double e32 = rt_rel_err(a, b, tot), e64 = 0, nn = 0;
        for (size_t i = 0; i < tot; i++) e64 += (ad[i] - bd[i]) * (ad[i] - bd[i]), nn += bd[i] * bd[i];
        e64 = sqrt(e64 / nn);
        /* two orders of K terms: rounding grows like √K·ε (measured ≤ 2.6e-7 in fp32 at K = 172); a
         * wrong class or sign is an O(1) error */
        double tol = 2.0 * sqrt((double)r->K);
        CHECK_MSG(e32 <= tol * 0x1p-24, "n=%lld tr=%d: class sum vs dense Had_K, fp32 rel err %.3g", (long long)n, tr, e32);
        CHECK_MSG(e64 <= tol * 0x1p-53, "n=%lld tr=%d: class sum vs dense Had_K, fp64 rel err %.3g", (long long)n, tr, e64);
        /* the vector kernel on single rows equals the twin bit for bit */
        memcpy(b, x, tot * sizeof(float));
        memcpy(bd, xd, tot * sizeof(double));
        bf_fixed_rows_f32(r, b, V, n, tmp, tr);
        bf_fixed_rows_f64(r, bd, V, n, tmpd, tr);
        CHECK_MSG(!memcmp(a, b, tot * sizeof(float)), "n=%lld tr=%d: fp32 row kernel != twin", (long long)n, tr);
        CHECK_MSG(!memcmp(ad, bd, tot * sizeof(double)), "n=%lld tr=%d: fp64 row kernel != twin", (long long)n, tr);
    }
    /* the whole rotation: tile and rows (with the fixed stage in the tile) against the reference */
    for (int tr = 0; tr < 2; tr++) CHECK_MSG(!rt_apply_vs_ref(r, x, V, tr), "n=%lld tr=%d: apply != apply_ref", (long long)n, tr);
    free(x), free(a), free(b), free(xd), free(ad), free(bd);
    harp_free_aligned(tmp);
    harp_free_aligned(tmpd);
    harp_rot_destroy(r);
}

int main(void) {
    /* K: 12 (m = 8, 128), 20, 28 (m = 512), 36, 76, 100, 108, 172 (m = 8, 64) */
    static const int64_t ns[] = {96, 1536, 2560, 14336, 288, 4864, 1600, 1728, 1376, 11008};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) check_width(ns[i]);
    /* below 8 elements per chunk the dense sum stays (no tables) */
    harp_rot *r = make(172, 0.2);
    if (r) CHECK_MSG(!r->fx_idx[0], "n=172: class tables built for chunk length 1");
    harp_rot_destroy(r);
    return t_done();
}
