/* A butterfly on a few rows (decode: fewer than the 8-row tile) splits each learned stage over the
 * threads from bf_par_work multiply-adds on: by blocks, or by stride positions in whole vectors
 * where a stage has fewer blocks than threads, the scalar tail to the last part. The result must be
 * the same bits for 1 … 5 threads and equal the reference twin, at awkward radices and steps (odd
 * strides take the scalar path), both directions, fp32 and fp64, with and without the fixed stage. */
#include <string.h>

#include "rot_test_util.h"
#include "rotate/rot_internal.h"
#include "test_util.h"

static void check(int64_t n, const int *stages, int ns, int schedule, int passes) {
    harp_rot *r = rt_butterfly(n, stages, ns, schedule, passes, 0, 0, 0.3, 17 + (uint64_t)n);
    CHECK_MSG(r != NULL, "butterfly n=%lld: %s", (long long)n, harp_last_error());
    if (!r) return;
    enum { MAXR = 7 };
    static const int rows_list[] = {1, 3, MAXR};
    const size_t tot = (size_t)MAXR * (size_t)n;
    float *x = malloc(tot * sizeof(float)), *y1 = malloc(tot * sizeof(float)), *y = malloc(tot * sizeof(float));
    double *xd = malloc(tot * sizeof(double)), *yd1 = malloc(tot * sizeof(double)), *yd = malloc(tot * sizeof(double));
    rt_fill_normal(x, tot, 3 + (uint64_t)n);
    for (size_t i = 0; i < tot; i++) xd[i] = x[i];
    for (size_t k = 0; k < sizeof rows_list / sizeof rows_list[0]; k++)
        for (int tr = 0; tr < 2; tr++) {
            const int64_t rows = rows_list[k];
            const size_t e = (size_t)rows * (size_t)n;
            /* one thread: the reference's bits (what test_rot_butterfly checks at every size) */
            harp_set_threads(1);
            memcpy(y1, x, e * sizeof(float));
            CHECK_OK(harp_rot_apply_ref(r, y1, rows, n, tr));
            memcpy(yd1, xd, e * sizeof(double));
            CHECK_OK(harp_rot_apply_ref_f64(r, yd1, rows, n, tr));
            const int64_t old = bf_par_work(0);   /* split from the first multiply-add */
            for (int th = 1; th <= 5; th++) {
                harp_set_threads(th);
                memcpy(y, x, e * sizeof(float));
                CHECK_OK(harp_rot_apply(r, y, rows, n, tr));
                CHECK_MSG(!memcmp(y, y1, e * sizeof(float)), "n=%lld rows=%lld tr=%d threads=%d schedule=%d: fp32 split != reference",
                          (long long)n, (long long)rows, tr, th, schedule);
                memcpy(yd, xd, e * sizeof(double));
                CHECK_OK(harp_rot_apply_f64(r, yd, rows, n, tr));
                CHECK_MSG(!memcmp(yd, yd1, e * sizeof(double)), "n=%lld rows=%lld tr=%d threads=%d schedule=%d: fp64 split != reference",
                          (long long)n, (long long)rows, tr, th, schedule);
            }
            bf_par_work(old);
        }
    free(x), free(y1), free(y), free(xd), free(yd1), free(yd);
    harp_rot_destroy(r);
}

int main(void) {
    harp_set_log_level(HARP_LOG_NONE);
    const int threads0 = harp_get_threads();
    static const int s840[] = {3, 5, 7, 8}, s96[] = {2, 3, 8, 2}, s6[] = {2, 3}, s1024[] = {8, 8, 8, 2};
    check(840, s840, 4, HARP_BF_SCHEDULE_GREEDY, 1);   /* last stage: step 105, one block */
    check(96, s96, 4, HARP_BF_SCHEDULE_GREEDY, 2);     /* steps 1, 2, 6, 48; two passes */
    check(6, s6, 2, HARP_BF_SCHEDULE_GREEDY, 1);       /* fewer positions than threads */
    check(1024, s1024, 4, HARP_BF_SCHEDULE_GREEDY, 1); /* radix 8 at step 1, 8, 64; radix 2 at 512 */
    check(11008, NULL, 0, HARP_BF_SCHEDULE_GREEDY, 1); /* 8, 8, 4, 43: the decode shape */
    check(1536, NULL, 0, HARP_BF_SCHEDULE_HADAMARD, 1); /* fixed Had_12 stage, then 8, 8, 8, 3 */
    check(172, NULL, 0, HARP_BF_SCHEDULE_HADAMARD, 1);  /* fixed Had_172 (m = 1), then 4, 43 */
    harp_set_threads(threads0);
    return t_done();
}
