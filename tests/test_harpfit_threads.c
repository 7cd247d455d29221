/* The optimized fit engine (tiled transposes, lane-blocked stage backward, pruned E8P target) gives
 * bit-identical θ for 1 and 2 threads at awkward shapes: batches over one lane block (> 256), batches
 * that are not whole vectors, non-power-of-two radices. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "harp.h"
#include "harp/harpfit.h"
#include "test_util.h"

static void fit(int m, int n, int threads, harp_codebook cb, double **thU, double **thV, int64_t *nu, int64_t *nv) {
    harp_rng g;
    harp_rng_seed(&g, 5);
    float *W = malloc(sizeof(float) * (size_t)m * n);
    double *H = malloc(sizeof(double) * (size_t)n * n), *A = malloc(sizeof(double) * (size_t)n * 2 * n);
    for (int i = 0; i < m * n; i++) W[i] = (float)harp_rng_normal(&g);
    for (int i = 0; i < 2 * n * n; i++) A[i] = harp_rng_normal(&g);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double a = 0;
            for (int u = 0; u < 2 * n; u++) a += A[i * 2 * n + u] * A[j * 2 * n + u];
            H[i * n + j] = a / (2 * n) + (i == j ? 0.01 : 0);
        }
    harp_fit_params p = harp_fit_default_params(2);
    p.steps = 3;
    p.codebook = cb;
    harp_rot *U = NULL, *V = NULL;
    harp_set_threads(threads);
    CHECK_OK(harp_fit(&p, m, n, W, H, 9, "threads", &U, &V, NULL));
    harp_set_threads(0);
    *nu = harp_rot_butterfly_num_params(U), *nv = harp_rot_butterfly_num_params(V);
    *thU = malloc(sizeof(double) * (size_t)*nu), *thV = malloc(sizeof(double) * (size_t)*nv);
    CHECK_OK(harp_rot_butterfly_get_theta(U, *thU));
    CHECK_OK(harp_rot_butterfly_get_theta(V, *thV));
    harp_rot_destroy(U), harp_rot_destroy(V);
    free(W), free(H), free(A);
}

int main(void) {
    const struct {
        int m, n;
        harp_codebook cb;
    } cs[] = {{344, 172, HARP_CODEBOOK_E8P12}, {172, 344, HARP_CODEBOOK_E8P12_RVQ4B}, {520, 24, HARP_CODEBOOK_E8P12_RVQ3B}};
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        double *u1, *v1, *u2, *v2;
        int64_t nu, nv, nu2, nv2;
        fit(cs[k].m, cs[k].n, 1, cs[k].cb, &u1, &v1, &nu, &nv);
        fit(cs[k].m, cs[k].n, 2, cs[k].cb, &u2, &v2, &nu2, &nv2);
        CHECK(nu == nu2 && nv == nv2);
        CHECK_MSG(memcmp(u1, u2, sizeof(double) * (size_t)nu) == 0 && memcmp(v1, v2, sizeof(double) * (size_t)nv) == 0,
                  "%d×%d: θ differs between 1 and 2 threads", cs[k].m, cs[k].n);
        double mx = 0;
        for (int64_t q = 0; q < nv; q++) mx = fmax(mx, fabs(v1[q]));
        CHECK_MSG(mx > 0, "%d×%d: θ did not move", cs[k].m, cs[k].n);
        free(u1), free(v1), free(u2), free(v2);
    }
    return t_done();
}
