/* A power-of-two butterfly whose θ is exactly 0 is Sylvester H/√n, and a butterfly of schedule hadamard
 * at θ = 0 is Had_n = (hadK ⊗ H_{n/K})/√n for any width with a Hadamard order (issue 18); both are
 * applied with the Hadamard kernels, so they must equal the Hadamard rotation bit for bit (fp32 and
 * fp64, forward and transpose, optimised and _ref, many rows, two-sided weight and Hessian), also after
 * int8 rounding and a serialise / deserialise round trip. Any non-zero θ goes back to the stage
 * kernels; θ = 0 again comes back to the Hadamard result. Greedy non-power-of-two widths never take
 * the Hadamard path. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "harp.h"
#include "test_util.h"

static harp_rot *mk(harp_rot_kind k, int64_t n, int givens, double clip, int schedule) {
    harp_rot_params p;
    harp_rot_params_default(&p);
    p.schedule = schedule;
    p.givens_b2 = givens;
    p.theta_clip = clip;
    harp_rot *r = NULL;
    CHECK_OK(harp_rot_create(k, n, &p, 9, &r));
    return r;
}

static void fill(float *x, double *d, int64_t cnt, uint64_t seed) {
    harp_rng g;
    harp_rng_seed(&g, seed);
    for (int64_t i = 0; i < cnt; i++) d[i] = harp_rng_normal(&g), x[i] = (float)d[i];
}

/* 1 if the butterfly b applies exactly as the Hadamard h on rows×n data in every entry point. */
static int same_as_hadamard(const harp_rot *b, const harp_rot *h, int64_t n) {
    const int64_t rows = 37;   /* not a multiple of the 8-row tile */
    size_t cnt = (size_t)(rows * n);
    size_t cap = cnt > (size_t)(n * n) ? cnt : (size_t)(n * n);
    float *x1 = malloc(cap * 4), *x2 = malloc(cap * 4);
    double *d1 = malloc(cap * 8), *d2 = malloc(cap * 8);
    int same = 1;
    typedef harp_status (*apply32)(const harp_rot *, float *, int64_t, int64_t, int);
    typedef harp_status (*apply64)(const harp_rot *, double *, int64_t, int64_t, int);
    const apply32 f32[2] = {harp_rot_apply, harp_rot_apply_ref};
    const apply64 f64[2] = {harp_rot_apply_f64, harp_rot_apply_ref_f64};
    for (int tr = 0; tr < 2; tr++)
        for (int ref = 0; ref < 2; ref++) {   /* optimized and reference entry points */
            fill(x1, d1, (int64_t)cnt, 5 + 2 * ref + tr);
            memcpy(x2, x1, cnt * 4), memcpy(d2, d1, cnt * 8);
            CHECK_OK(f32[ref](b, x1, rows, n, tr));
            CHECK_OK(f32[ref](h, x2, rows, n, tr));
            same &= !memcmp(x1, x2, cnt * 4);
            CHECK_OK(f64[ref](b, d1, rows, n, tr));
            CHECK_OK(f64[ref](h, d2, rows, n, tr));
            same &= !memcmp(d1, d2, cnt * 8);
        }
    /* two-sided, as the quantize pipeline uses them: W (n×n) ← Bᵀ W B and H ← Bᵀ H B */
    if (n > 1024) {   /* the row checks above cover the large widths (weight_impl applies the same rows) */
        free(x1), free(x2), free(d1), free(d2);
        return same;
    }
    fill(x1, d1, n * n, 11);
    memcpy(x2, x1, (size_t)(n * n) * 4), memcpy(d2, d1, (size_t)(n * n) * 8);
    CHECK_OK(harp_rot_weight(b, b, x1, n, n, 0));
    CHECK_OK(harp_rot_weight(h, h, x2, n, n, 0));
    same &= !memcmp(x1, x2, (size_t)(n * n) * 4);
    CHECK_OK(harp_rot_hessian_f64(b, d1, n, 0));
    CHECK_OK(harp_rot_hessian_f64(h, d2, n, 0));
    same &= !memcmp(d1, d2, (size_t)(n * n) * 8);
    free(x1), free(x2), free(d1), free(d2);
    return same;
}

int main(void) {
    /* greedy schedule at powers of two; schedule hadamard at the widths and small ones */
    static const int64_t ns[] = {2, 8, 64, 128, 512, 1024, 12, 20, 24, 172, 344, 1376, 1536, 1728, 3072, 4864, 11008, 14336};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        int64_t n = ns[k];
        const int sched = (n & (n - 1)) ? HARP_BF_SCHEDULE_HADAMARD : HARP_BF_SCHEDULE_GREEDY;
        harp_rot *h = mk(HARP_ROT_HADAMARD, n, 0, 0, 0);
        for (int v = 0; v < (n > 1024 ? 1 : 3); v++) {   /* plain, Givens b = 2 stages, clipped θ */
            harp_rot *b = mk(HARP_ROT_BUTTERFLY, n, v == 1, v == 2 ? 0.5 : 0, sched);
            if (!b || !h) return t_done();
            CHECK_MSG(same_as_hadamard(b, h, n), "n=%lld variant %d: θ=0 butterfly differs from Hadamard", (long long)n, v);
            int64_t np = harp_rot_butterfly_num_params(b);
            double *th = calloc((size_t)np + 1, sizeof(double));
            th[np / 2] = 1e-3;
            CHECK_OK(harp_rot_butterfly_set_theta(b, th));
            CHECK_MSG(!same_as_hadamard(b, h, n), "n=%lld variant %d: θ≠0 butterfly still equals Hadamard", (long long)n, v);
            th[np / 2] = 0;
            CHECK_OK(harp_rot_butterfly_set_theta(b, th));
            CHECK_OK(harp_rot_butterfly_round_theta(b, HARP_THETA_INT8));
            uint8_t *blob = NULL;
            size_t size = 0;
            harp_rot *b2 = NULL;
            CHECK_OK(harp_rot_serialize(b, &blob, &size));
            CHECK_OK(harp_rot_deserialize(blob, size, "test blob", &b2));
            CHECK_MSG(b2 && same_as_hadamard(b2, h, n), "n=%lld variant %d: θ back to 0 (int8, reloaded) differs from Hadamard",
                      (long long)n, v);
            free(blob);
            free(th);
            harp_rot_destroy(b2);
            harp_rot_destroy(b);
        }
        harp_rot_destroy(h);
    }
    /* greedy 172 = [4, 43]: a different rotation, never the Hadamard path (Had_172 is not a butterfly) */
    harp_rot *b = mk(HARP_ROT_BUTTERFLY, 172, 0, 0, 0), *h = mk(HARP_ROT_HADAMARD, 172, 0, 0, 0);
    if (b && h) CHECK_MSG(!same_as_hadamard(b, h, 172), "n=172: θ=0 butterfly unexpectedly equals Had_172");
    harp_rot_destroy(b);
    harp_rot_destroy(h);
    return t_done();
}
