/* Hessian layer files (docs/format/hessian.md): a fixed header tying the file to its model and
 * calibration run, then for each of the four statistics n, ct, μ_sum (fp64 n) and the lower
 * triangle of S = Σ x xᵀ (fp64, row-major i(i+1)/2 + j), then an FNV-1a 64 checksum of everything
 * before it. Stored as sums, not normalised, so a later tool can merge runs exactly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib_internal.h"

#define HESS_MAGIC "HARPHESS"
#define HESS_VERSION 1u

static const char *const k_names[HARP_HESS_COUNT] = {"qkv", "o", "up", "down"};

const char *harp_hess_name(int which) {
    return which >= 0 && which < HARP_HESS_COUNT ? k_names[which] : "?";
}

char *hess_layer_path(const char *dir, int layer) {
    char name[64];
    snprintf(name, sizeof name, "layer_%03d.hess", layer);
    return harp_path_join(dir, name);
}

static size_t tri(size_t n) { return n * (n + 1) / 2; }

harp_status hess_write_layer(const char *path, const hess_header *hdr, const hess_acc acc[HARP_HESS_COUNT]) {
    harp_atomic_file f;
    HARP_TRY(harp_atomic_open(&f, path));
    uint64_t h = 0;
    harp_status st = HARP_OK;
#define PUT(ptr, bytes)                                          \
    do {                                                         \
        if (st == HARP_OK) {                                     \
            st = harp_atomic_write(&f, (ptr), (bytes));          \
            h = harp_fnv1a64((ptr), (bytes), h);                 \
        }                                                        \
    } while (0)
    PUT(HESS_MAGIC, 8);
    uint32_t ver = HESS_VERSION;
    PUT(&ver, 4);
    PUT(hdr, sizeof *hdr);
    for (int w = 0; w < HARP_HESS_COUNT && st == HARP_OK; w++) {
        uint64_t n = (uint64_t)acc[w].n, ct = (uint64_t)acc[w].ct;
        PUT(&n, 8);
        PUT(&ct, 8);
        PUT(acc[w].mu_sum, sizeof(double) * acc[w].n);
        /* lower triangle row by row from the full symmetric accumulator (lower part valid) */
        for (int i = 0; i < acc[w].n && st == HARP_OK; i++) PUT(acc[w].S + (size_t)i * acc[w].n, sizeof(double) * (size_t)(i + 1));
    }
#undef PUT
    if (st == HARP_OK) st = harp_atomic_write(&f, &h, 8);
    if (st != HARP_OK) {
        harp_atomic_abort(&f);
        return st;
    }
    return harp_atomic_commit(&f);
}

struct harp_hess_layer {
    hess_header hdr;
    int n[HARP_HESS_COUNT];
    int64_t ct[HARP_HESS_COUNT];
    double *H[HARP_HESS_COUNT];   /* full n×n, S/ct */
    double *mu[HARP_HESS_COUNT];  /* μ_sum/ct */
};

void harp_hess_layer_free(harp_hess_layer *h) {
    if (!h) return;
    for (int w = 0; w < HARP_HESS_COUNT; w++) {
        free(h->H[w]);
        free(h->mu[w]);
    }
    free(h);
}

harp_status hess_read_header(const char *path, hess_header *hdr) {
    FILE *f = fopen(path, "rb");
    if (!f) return harp_err(HARP_ERR_IO, "%s: cannot open Hessian file", path);
    char magic[8];
    uint32_t ver = 0;
    int ok = fread(magic, 1, 8, f) == 8 && fread(&ver, 4, 1, f) == 1 && fread(hdr, sizeof *hdr, 1, f) == 1;
    fclose(f);
    if (!ok) return harp_err(HARP_ERR_FORMAT, "%s: truncated Hessian header", path);
    if (memcmp(magic, HESS_MAGIC, 8) != 0) return harp_err(HARP_ERR_FORMAT, "%s: not a harp Hessian file (bad magic)", path);
    if (ver != HESS_VERSION) return harp_err(HARP_ERR_UNSUPPORTED, "%s: Hessian file version %u, this build reads %u", path, ver, HESS_VERSION);
    return HARP_OK;
}

/* A second-moment matrix Σ x xᵀ / n is positive semi-definite, so its diagonal is >= 0 and each
 * entry obeys |H_ij| <= sqrt(H_ii H_jj). A file that breaks either was not written by a
 * calibration run (the quantizer's damping would hide it), so it is refused here. */
static harp_status hess_check_moment(const char *path, int w, int n, const double *H) {
    double *d = harp_xmalloc(sizeof(double) * (size_t)n, "Hessian check");
    if (!d) return HARP_ERR_OOM;
    harp_status st = HARP_OK;
    for (int i = 0; i < n && !st; i++) {
        double v = H[(size_t)i * n + i];
        if (v < 0)
            st = harp_err(HARP_ERR_NUMERIC, "%s: statistic %s is not positive semi-definite (diagonal entry %d is %g)", path, k_names[w], i, v);
        d[i] = sqrt(v);
    }
    /* relative slack for summation-order rounding between S_ij and S_ii, S_jj */
    for (int i = 0; i < n && !st; i++)
        for (int j = 0; j < i; j++)
            if (fabs(H[(size_t)i * n + j]) > d[i] * d[j] * (1 + 1e-6) + 1e-300) {
                st = harp_err(HARP_ERR_NUMERIC, "%s: statistic %s is not positive semi-definite (|H[%d][%d]| > sqrt(H[%d][%d] H[%d][%d]))",
                              path, k_names[w], i, j, i, i, j, j);
                break;
            }
    free(d);
    return st;
}

harp_status harp_hess_layer_load(const char *dir, int layer, const harp_model *m, harp_hess_layer **out) {
    *out = NULL;
    char *path = hess_layer_path(dir, layer);
    if (!path) return HARP_ERR_OOM;
    harp_mapped map;
    harp_status st = harp_map_file(path, &map);
    if (st != HARP_OK) {
        free(path);
        return st;
    }
    const uint8_t *p = map.data, *end = map.size ? map.data + map.size : map.data;   /* empty file: data is NULL */
    harp_hess_layer *h = NULL;
    size_t head = 8 + 4 + sizeof(hess_header);
    if (map.size < head + 8) { st = harp_err(HARP_ERR_FORMAT, "%s: truncated (%zu bytes)", path, map.size); goto done; }
    if (memcmp(p, HESS_MAGIC, 8) != 0) { st = harp_err(HARP_ERR_FORMAT, "%s: not a harp Hessian file (bad magic)", path); goto done; }
    uint32_t ver;
    memcpy(&ver, p + 8, 4);
    if (ver != HESS_VERSION) { st = harp_err(HARP_ERR_UNSUPPORTED, "%s: Hessian file version %u, this build reads %u", path, ver, HESS_VERSION); goto done; }
    uint64_t sum;
    memcpy(&sum, end - 8, 8);
    if (harp_fnv1a64(p, map.size - 8, 0) != sum) { st = harp_err(HARP_ERR_FORMAT, "%s: checksum mismatch (file corrupt or truncated)", path); goto done; }
    h = harp_xcalloc(1, sizeof *h, "Hessian layer");
    if (!h) { st = HARP_ERR_OOM; goto done; }
    memcpy(&h->hdr, p + 12, sizeof h->hdr);
    if (h->hdr.layer != (uint32_t)layer) { st = harp_err(HARP_ERR_FORMAT, "%s: holds layer %u, expected %d", path, h->hdr.layer, layer); goto done; }
    if (m && (st = hess_check_model(path, &h->hdr, m)) != HARP_OK) goto done;
    const uint8_t *q = p + head;
    for (int w = 0; w < HARP_HESS_COUNT; w++) {
        uint64_t n, ct;
        if ((size_t)(end - 8 - q) < 16) { st = harp_err(HARP_ERR_FORMAT, "%s: truncated in statistic %s", path, k_names[w]); goto done; }
        memcpy(&n, q, 8);
        memcpy(&ct, q + 8, 8);
        q += 16;
        if (n == 0 || n > (1u << 20) || ct == 0) { st = harp_err(HARP_ERR_FORMAT, "%s: statistic %s has n=%llu rows=%llu", path, k_names[w], (unsigned long long)n, (unsigned long long)ct); goto done; }
        size_t need = sizeof(double) * ((size_t)n + tri((size_t)n));
        if ((size_t)(end - 8 - q) < need) { st = harp_err(HARP_ERR_FORMAT, "%s: truncated in statistic %s", path, k_names[w]); goto done; }
        h->n[w] = (int)n;
        h->ct[w] = (int64_t)ct;
        h->mu[w] = harp_xmalloc(sizeof(double) * n, "Hessian mean");
        h->H[w] = harp_xmalloc(sizeof(double) * n * n, "Hessian");
        if (!h->mu[w] || !h->H[w]) { st = HARP_ERR_OOM; goto done; }
        double inv = 1.0 / (double)ct;
        for (size_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, q + 8 * i, 8);
            h->mu[w][i] = v * inv;
        }
        q += 8 * n;
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j <= i; j++) {
                double v;
                memcpy(&v, q + 8 * j, 8);
                v *= inv;
                if (!(v == v) || v > 1e300 || v < -1e300) { st = harp_err(HARP_ERR_NUMERIC, "%s: non-finite value in statistic %s", path, k_names[w]); goto done; }
                h->H[w][i * n + j] = v;
                h->H[w][j * n + i] = v;
            }
            q += 8 * (i + 1);
        }
    }
    if (q != end - 8) st = harp_err(HARP_ERR_FORMAT, "%s: %zu unexpected trailing bytes", path, (size_t)(end - 8 - q));
    for (int w = 0; w < HARP_HESS_COUNT && st == HARP_OK; w++) st = hess_check_moment(path, w, h->n[w], h->H[w]);
done:
    harp_unmap_file(&map);
    free(path);
    if (st != HARP_OK) {
        harp_hess_layer_free(h);
        return st;
    }
    *out = h;
    return HARP_OK;
}

const double *harp_hess_matrix(const harp_hess_layer *h, int which, int *n) {
    if (!h || which < 0 || which >= HARP_HESS_COUNT) return NULL;
    if (n) *n = h->n[which];
    return h->H[which];
}

const double *harp_hess_mean(const harp_hess_layer *h, int which) {
    return h && which >= 0 && which < HARP_HESS_COUNT ? h->mu[which] : NULL;
}

int64_t harp_hess_count(const harp_hess_layer *h, int which) {
    return h && which >= 0 && which < HARP_HESS_COUNT ? h->ct[which] : 0;
}
