/* Adam with the reference's constants (β1 0.9, β2 0.999, ε 1e−8, bias correction, no weight decay). */
#include <math.h>
#include <stdlib.h>

#include "harpfit/hf_internal.h"

harp_status hf_adam_init(hf_adam *a, int64_t n) {
    a->n = n, a->t = 0;
    a->m = harp_xcalloc((size_t)(n ? n : 1), sizeof(double), "adam state");
    a->v = harp_xcalloc((size_t)(n ? n : 1), sizeof(double), "adam state");
    if (!a->m || !a->v) {
        hf_adam_free(a);
        return HARP_ERR_OOM;
    }
    return HARP_OK;
}

void hf_adam_free(hf_adam *a) {
    free(a->m);
    free(a->v);
    a->m = a->v = NULL;
}

void hf_adam_step(hf_adam *a, double lr, const double *g, double *theta) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    a->t++;
    const double c1 = 1.0 - pow(b1, (double)a->t), c2 = 1.0 - pow(b2, (double)a->t);
    for (int64_t i = 0; i < a->n; i++) {
        a->m[i] = b1 * a->m[i] + (1.0 - b1) * g[i];
        a->v[i] = b2 * a->v[i] + (1.0 - b2) * g[i] * g[i];
        theta[i] -= lr * (a->m[i] / c1) / (sqrt(a->v[i] / c2) + eps);
    }
}
