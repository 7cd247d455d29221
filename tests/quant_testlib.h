/* Random problems shared by the quantizer tests: Gaussian weights and a correlated SPD Hessian
 * H = XᵀX/N with low-rank structure plus outlier columns (like real activations). */
#ifndef HARP_QUANT_TESTLIB_H
#define HARP_QUANT_TESTLIB_H

#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "harp/quant.h"
#include "quant/qtype_traits.h"

static inline void qt_weights(harp_rng *rng, int64_t m, int64_t n, float *W) {
    for (int64_t i = 0; i < m * n; i++) W[i] = (float)(0.02 * harp_rng_normal(rng));
}

/* H (n, n) fp64 from N samples with a shared factor, so columns are correlated. */
static inline void qt_hessian(harp_rng *rng, int64_t n, int64_t N, double *H) {
    double *x = malloc(sizeof(double) * (size_t)n);
    double *scale = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) scale[i] = (i % 7 == 0) ? 4.0 : 1.0;
    for (int64_t i = 0; i < n * n; i++) H[i] = 0;
    for (int64_t s = 0; s < N; s++) {
        double f1 = harp_rng_normal(rng), f2 = harp_rng_normal(rng);
        for (int64_t i = 0; i < n; i++)
            x[i] = scale[i] * (harp_rng_normal(rng) + 1.5 * f1 * ((i & 1) ? 1 : -1) + f2 * (double)(i % 5) / 5.0);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) H[i * n + j] += x[i] * x[j];
    }
    for (int64_t i = 0; i < n * n; i++) H[i] /= (double)N;
    free(x);
    free(scale);
}

/* The problem of a seed: W (m × n, qt_weights) and H (n × n from N samples, qt_hessian), malloc'd. */
static inline void qt_problem(uint64_t seed, int64_t m, int64_t n, int64_t N, float **W, double **H) {
    harp_rng rng;
    harp_rng_seed(&rng, seed);
    *W = malloc(sizeof(float) * (size_t)(m * n));
    *H = malloc(sizeof(double) * (size_t)(n * n));
    qt_weights(&rng, m, n, *W);
    qt_hessian(&rng, n, N, *H);
}

/* A random tensor of any type with valid stored values: random code bits, scales in [0.01, 0.03),
 * zero points < 2^bits, group indices < n_groups (with_gidx: a g_idx plane for scalar types),
 * wscale {s, s / r}, dense weights ~ 0.02·N(0, 1). Planes owned; derived members set. */
static inline harp_status qt_random_tensor(harp_rng *rng, harp_qtype type, int64_t m, int64_t n, int64_t group,
                                           int with_gidx, harp_qtensor *w) {
    harp_status st = harp_qtensor_init(w, type, m, n, group);
    if (st) return st;
    const harp_qtype_traits *tr = harp_qtype_traits_of(type);
    const int bits = (int)tr->bits;
    for (int i = 0; i < tr->n_planes; i++) {
        const harp_qplane_desc *d = &tr->planes[i];
        /* the trellis types' optional plane is the HYB table: present for about half the tensors */
        if (d->optional && (tr->layout == HARP_QLAYOUT_TRELLIS ? !(harp_rng_u64(rng) & 1) : !with_gidx)) continue;
        if ((st = harp_qtensor_alloc_plane(w, i))) return st;
        uint8_t *p = w->planes[i].owned;
        const size_t nb = w->planes[i].nbytes;
        if (d->values == HARP_QV_FINITE) {
            float *f = (float *)(void *)p;
            for (size_t k = 0; k < nb / 4; k++) f[k] = 0.01f + 0.02f * (float)harp_rng_uniform(rng);
            if (tr->layout == HARP_QLAYOUT_E8P && !strcmp(d->suffix, "wscale")) f[1] = type == HARP_QTYPE_E8P2 ? 0.0f : f[0] / 3.45f;
        } else if (d->values == HARP_QV_ZERO_POINT) {
            for (size_t k = 0; k < nb; k++) p[k] = (uint8_t)(harp_rng_u64(rng) % (1u << bits));
        } else if (d->values == HARP_QV_TCODE) { /* hyb with the table, else 1mad or 3inst */
            const int32_t c = w->planes[harp_qplane_index(type, "tlut")].data ? HARP_TCODE_HYB
                              : (harp_rng_u64(rng) & 1)                         ? HARP_TCODE_1MAD
                                                                                 : HARP_TCODE_3INST;
            memcpy(p, &c, sizeof c);
        } else if (d->values == HARP_QV_GROUP_INDEX) {
            int32_t *g = (int32_t *)(void *)p;
            for (size_t k = 0; k < nb / 4; k++) g[k] = (int32_t)(harp_rng_u64(rng) % (uint64_t)w->n_groups);
        } else if (d->values == HARP_QV_LEVELS4) { /* 4 non-decreasing levels per group */
            uint16_t *h = (uint16_t *)(void *)p;
            for (size_t k = 0; k < nb / 2; k += 4) {
                float f = (float)(0.02 * harp_rng_normal(rng));
                for (int j = 0; j < 4; j++, f += (float)(0.02 * harp_rng_uniform(rng))) h[k + (size_t)j] = harp_f32_to_f16(f);
            }
        } else if (d->dtype == HARP_ST_F32) {
            float *f = (float *)(void *)p;
            for (size_t k = 0; k < nb / 4; k++) f[k] = (float)(0.02 * harp_rng_normal(rng));
        } else if (d->dtype == HARP_ST_F16 || d->dtype == HARP_ST_BF16) {
            uint16_t *h = (uint16_t *)(void *)p;
            for (size_t k = 0; k < nb / 2; k++) {
                float f = (float)(0.02 * harp_rng_normal(rng));
                uint32_t u;
                memcpy(&u, &f, 4);
                h[k] = d->dtype == HARP_ST_F16 ? harp_f32_to_f16(f) : (uint16_t)(u >> 16);
            }
        } else {
            for (size_t k = 0; k < nb; k++) p[k] = (uint8_t)harp_rng_u64(rng);
        }
    }
    return harp_qtensor_derive(w);
}

#endif
