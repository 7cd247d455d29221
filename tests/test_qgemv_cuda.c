/* CUDA decode-GEMV vs the reference at awkward sizes (skipped without -DHARP_CUDA=ON or a GPU).
 * Tolerance 1e-5 · Σ|w x| per row, as for the CPU kernels (fp32 accumulation, other order). */
#include <math.h>
#include <stdlib.h>

#include "core/core.h"
#include "harp/qkernels.h"
#include "quant_testlib.h"
#include "test_util.h"

int main(void) {
#ifndef HARP_HAVE_CUDA
    printf("SKIP: built without -DHARP_CUDA=ON\n");
    return 77;
#else
    harp_rng rng;
    harp_rng_seed(&rng, 9);
    static const int shapes[][2] = {{1, 8}, {5, 172}, {17, 1376}, {33, 13}, {130, 520}, {69, 4096}};
    const harp_qtype fmts[3] = {HARP_QTYPE_E8P2, HARP_QTYPE_RVQ3, HARP_QTYPE_RVQ4};
    for (int f = 0; f < 3; f++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int m = shapes[s][0], n = shapes[s][1];
            harp_qtensor w;
            CHECK_OK(qt_random_tensor(&rng, fmts[f], m, n, 0, 0, &w));
            const harp_qtype_traits *tr = harp_qtype_traits_of(fmts[f]);
            float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * m),
                  *yr = malloc(sizeof(float) * m), *row = malloc(sizeof(float) * n);
            for (int j = 0; j < n; j++) x[j] = (float)harp_rng_normal(&rng);
            harp_status st = harp_qgemv_cuda_host(&w, x, y);
            if (st == HARP_ERR_NO_DEVICE) {
                printf("SKIP: no CUDA device\n");
                return 77;
            }
            CHECK_OK(st);
            tr->gemv_ref(&w, x, yr);
            int bad = 0;
            for (int r = 0; r < m; r++) {
                tr->dequant_rows(&w, r, r + 1, row, (size_t)n);
                double mass = 0;
                for (int j = 0; j < n; j++) mass += fabs((double)row[j] * x[j]);
                bad += fabs((double)y[r] - yr[r]) > 1e-5 * mass + 1e-30;
            }
            CHECK_MSG(!bad, "fmt %d %dx%d: %d rows off", fmts[f], m, n, bad);
            harp_qtensor_free(&w);
            free(x);
            free(y);
            free(yr);
            free(row);
        }
    return t_done();
#endif
}
