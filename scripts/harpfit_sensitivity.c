/* CPU-only sensitivity of the 50-step HARP fit (docs/gpu.md, tests/test_harpfit_gpu.c): the final
 * loss on the test problem vs the same with every W element moved by one ulp. Build against a
 * Release build of the library:
 *   gcc -O2 -std=c11 -fopenmp -Iinclude -Isrc scripts/harpfit_sensitivity.c build/libharp.a \
 *       -lopenblas -llapacke -lcjson -lpcre2-8 -lbz2 -lcrypto -lm -o /tmp/sens
 *   /tmp/sens 64 96 2 40; /tmp/sens 96 172 2 41; /tmp/sens 96 172 4 41 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "harp/harpfit.h"
#include "core/core.h"
#include "../tests/harpfit_problem.h"
int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: sens M N BITS SEED\n");
        return 2;
    }
    int m = atoi(argv[1]), n = atoi(argv[2]), bits = atoi(argv[3]);
    uint64_t seed = strtoull(argv[4], 0, 10);
    float *W = malloc(sizeof(float) * m * n);
    double *H = malloc(sizeof(double) * n * n);
    hft_problem(m, n, seed, W, H);
    harp_fit_params p = harp_fit_default_params(bits);
    p.steps = 50;
    harp_rot *U, *V;
    harp_fit_report r0, r1;
    if (harp_fit(&p, m, n, W, H, seed, "a", &U, &V, &r0)) return 1;
    harp_rot_destroy(U), harp_rot_destroy(V);
    for (int i = 0; i < m * n; i++) W[i] = nextafterf(W[i], INFINITY);
    if (harp_fit(&p, m, n, W, H, seed, "b", &U, &V, &r1)) return 1;
    harp_rot_destroy(U), harp_rot_destroy(V);
    free(W), free(H);
    printf("%dx%d %d-bit: CPU %.9g -> %.9g ; W+1ulp %.9g -> %.9g ; final rel diff %.2e\n", m, n, bits, r0.loss0,
           r0.loss_final, r1.loss0, r1.loss_final, fabs(r1.loss_final - r0.loss_final) / r0.loss_final);
    return 0;
}
