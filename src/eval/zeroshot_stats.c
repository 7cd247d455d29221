/* Zero-shot metrics as lm-evaluation-harness computes them: argmax predictions (np.argmax: first
 * index on ties), length normalization by code points (Python len of the choice string), and the
 * sample standard error of the mean. Kept apart from scoring so it links without a model. */
#include <math.h>
#include <string.h>

#include "harp/zeroshot.h"

harp_zs_params harp_zs_default_params(void) {
    harp_zs_params p;
    memset(&p, 0, sizeof p);
    return p;
}

size_t harp_zs_utf8_len(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

int harp_zs_argmax(const double *ll, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (ll[i] > ll[best]) best = i;
    return best;
}

int harp_zs_argmax_norm(const harp_zs_item *it, const double *ll) {
    double v[HARP_ZS_MAX_CHOICES];
    for (int i = 0; i < it->n_choices; i++) {
        size_t len = harp_zs_utf8_len(it->choice[i]);
        /* numpy divides by 0.0 here (giving ±inf); an empty choice never wins unless all are */
        v[i] = len ? ll[i] / (double)len : -INFINITY;
    }
    return harp_zs_argmax(v, it->n_choices);
}

double harp_zs_stderr01(int64_t k, int64_t n) {
    if (n < 2) return 0.0;
    double p = (double)k / (double)n;
    /* sample variance of 0/1 values: n p (1-p) / (n-1); stderr = sqrt(var / n) */
    return sqrt(p * (1.0 - p) / (double)(n - 1));
}

