/* The HYB (quantlut_sym) table from a seed: 2-D k-means of N(0, I) samples (§5.6.3). The
 * reference starts scipy's k-means from an unseeded draw, so its table cannot be reproduced; this
 * one is a pure function of the seed (Lloyd with a fixed iteration count, fixed-order sums) and is
 * stored with every linear anyway.
 *
 * Nearest-centroid search: centroids sorted by x, scanned outwards from the point's x until the
 * x gap alone exceeds the best distance — exact, ~30 candidates instead of 512. */
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "trellis.h"

enum { HYB_SAMPLES_LOG2 = 20, HYB_ITERS = 16, HYB_CHUNKS = 64 };

typedef struct {
    double x, y;
    int id;
} centroid;

static int cmp_centroid(const void *a, const void *b) {
    const centroid *p = a, *q = b;
    if (p->x != q->x) return p->x < q->x ? -1 : 1;
    return p->id - q->id;
}

/* Index (original id) of the centroid nearest to (px, py); ties go to the smaller id. */
static int nearest(const centroid *c, int k, double px, double py) {
    int lo = 0, hi = k;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (c[mid].x < px) lo = mid + 1;
        else hi = mid;
    }
    double best = INFINITY;
    int bid = -1;
    for (int dir = 0; dir < 2; dir++)
        for (int i = dir ? lo : lo - 1; i >= 0 && i < k; i += dir ? 1 : -1) {
            const double dx = c[i].x - px, dx2 = dx * dx;
            if (dx2 > best) break;
            const double dy = c[i].y - py, d = dx2 + dy * dy;
            if (d < best || (d == best && c[i].id < bid)) best = d, bid = c[i].id;
        }
    return bid;
}

/* One Lloyd step: assignment in parallel, sums per fixed chunk, chunks added in order. */
static void lloyd_step(const float *pts, int64_t np, double (*cent)[2], centroid *sorted, double *acc) {
    const int k = HARP_HYB_N;
    for (int i = 0; i < k; i++) sorted[i] = (centroid){cent[i][0], cent[i][1], i};
    qsort(sorted, (size_t)k, sizeof *sorted, cmp_centroid);
    memset(acc, 0, sizeof(double) * 3 * k * HYB_CHUNKS);
#pragma omp parallel for schedule(dynamic, 1)
    for (int ch = 0; ch < HYB_CHUNKS; ch++) {
        double *a = acc + (size_t)3 * k * ch;
        const int64_t p0 = np * ch / HYB_CHUNKS, p1 = np * (ch + 1) / HYB_CHUNKS;
        for (int64_t p = p0; p < p1; p++) {
            const int id = nearest(sorted, k, pts[2 * p], pts[2 * p + 1]);
            a[3 * id] += pts[2 * p], a[3 * id + 1] += pts[2 * p + 1], a[3 * id + 2] += 1;
        }
    }
    for (int i = 0; i < k; i++) {
        double sx = 0, sy = 0, cnt = 0;
        for (int ch = 0; ch < HYB_CHUNKS; ch++) {
            const double *a = acc + (size_t)3 * k * ch + 3 * i;
            sx += a[0], sy += a[1], cnt += a[2];
        }
        if (cnt > 0) cent[i][0] = sx / cnt, cent[i][1] = sy / cnt;   /* an empty cluster stays put */
    }
}

harp_status harp_hyb_table_build_ex(uint64_t seed, int64_t samples, int iters, uint16_t tlut[2 * HARP_HYB_N]) {
    if (samples < HARP_HYB_N || iters < 0)
        return harp_err(HARP_ERR_INVALID_ARG, "HYB table: %lld samples, %d iterations", (long long)samples, iters);
    float *pts = harp_xmalloc(sizeof(float) * 2 * (size_t)samples, "HYB k-means samples");
    double(*cent)[2] = harp_xmalloc(sizeof(double) * 2 * HARP_HYB_N, "HYB k-means centroids");
    centroid *sorted = harp_xmalloc(sizeof(centroid) * HARP_HYB_N, "HYB k-means centroids");
    double *acc = harp_xmalloc(sizeof(double) * 3 * HARP_HYB_N * HYB_CHUNKS, "HYB k-means sums");
    harp_status st = HARP_OK;
    if (!pts || !cent || !sorted || !acc) {
        st = HARP_ERR_OOM;
        goto done;
    }
    harp_rng rng;
    harp_rng_seed(&rng, harp_seed_mix(seed, 0x485942u /* "HYB" */));
    for (int i = 0; i < HARP_HYB_N; i++) cent[i][0] = harp_rng_normal(&rng), cent[i][1] = harp_rng_normal(&rng);
    for (int64_t i = 0; i < 2 * samples; i++) pts[i] = (float)harp_rng_normal(&rng);
    for (int it = 0; it < iters; it++) lloyd_step(pts, samples, cent, sorted, acc);
    /* population std over all 1 024 numbers → √(15/16) */
    double mean = 0, var = 0;
    for (int i = 0; i < HARP_HYB_N; i++) mean += cent[i][0] + cent[i][1];
    mean /= 2.0 * HARP_HYB_N;
    for (int i = 0; i < HARP_HYB_N; i++)
        var += (cent[i][0] - mean) * (cent[i][0] - mean) + (cent[i][1] - mean) * (cent[i][1] - mean);
    const double sd = sqrt(var / (2.0 * HARP_HYB_N)), g = 0.9682458365518543 / sd;
    for (int i = 0; i < HARP_HYB_N; i++) {
        tlut[2 * i] = harp_f32_to_f16((float)(cent[i][0] * g));
        tlut[2 * i + 1] = harp_f32_to_f16((float)(cent[i][1] * g));
    }
done:
    harp_free(pts), harp_free(cent), harp_free(sorted), harp_free(acc);
    return st;
}

harp_status harp_hyb_table_build(uint64_t seed, uint16_t tlut[2 * HARP_HYB_N]) {
    return harp_hyb_table_build_ex(seed, (int64_t)1 << HYB_SAMPLES_LOG2, HYB_ITERS, tlut);
}

/* The table of the last seed asked for, built once per process (≈ 3 CPU s) and kept: every linear
 * of a run (and every HARP fit target) uses the same one. */
static pthread_mutex_t g_tab_mu = PTHREAD_MUTEX_INITIALIZER;
static uint16_t g_tab[2 * HARP_HYB_N];
static uint64_t g_tab_seed;
static int g_tab_ok;

harp_status harp_hyb_table_shared(uint64_t seed, uint16_t tlut[2 * HARP_HYB_N]) {
    pthread_mutex_lock(&g_tab_mu);
    harp_status st = HARP_OK;
    if (!g_tab_ok || g_tab_seed != seed) {
        g_tab_ok = 0;
        st = harp_hyb_table_build(seed, g_tab);
        g_tab_ok = st == HARP_OK, g_tab_seed = seed;
    }
    if (st == HARP_OK) memcpy(tlut, g_tab, sizeof g_tab);
    pthread_mutex_unlock(&g_tab_mu);
    return st;
}
