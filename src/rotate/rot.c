/* harp_rot: the table of rotation kinds, creation from (kind, n, params, seed), accessors. */
#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

#include "rot_internal.h"

/* one row per harp_rot_kind, in enum order */
static const rot_kind_ops *const kinds[] = {&rot_kind_hadamard, &rot_kind_rht,  &rot_kind_gsr,
                                            &rot_kind_random,   &rot_kind_kron, &rot_kind_butterfly};
#define NKINDS (sizeof kinds / sizeof kinds[0])

const rot_kind_ops *rot_ops(harp_rot_kind kind) { return (unsigned)kind < NKINDS ? kinds[kind] : NULL; }

const char *harp_rot_kind_name(harp_rot_kind k) { return rot_ops(k) ? rot_ops(k)->name : NULL; }

harp_status harp_rot_kind_parse(const char *name, harp_rot_kind *out) {
    for (unsigned i = 0; name && i < NKINDS; i++)
        if (!strcmp(name, kinds[i]->name)) {
            *out = (harp_rot_kind)i;
            return HARP_OK;
        }
    return harp_err(HARP_ERR_INVALID_ARG, "rotation: unknown kind '%s' (hadamard, rht, gsr, random_orthogonal, kron, butterfly)",
                    name ? name : "(null)");
}

void harp_rot_params_default(harp_rot_params *p) {
    memset(p, 0, sizeof *p);
    p->base_b = 8;
    p->max_b = 8;
    p->n_passes = 1;
}

harp_rot *rot_alloc(harp_rot_kind kind, int64_t n, uint64_t seed) {
    harp_rot *r = harp_xcalloc(1, sizeof *r, "rotation");
    if (!r) return NULL;
    r->kind = kind;
    r->ops = rot_ops(kind);
    r->n = n;
    r->seed = seed;
    harp_rot_params_default(&r->params);
    return r;
}

void harp_rot_destroy(harp_rot *r) {
    if (!r) return;
    if (r->ops && r->ops->destroy) r->ops->destroy(r);
    free(r->hadk);
    free(r->hadk_f);
    free(r->hadk_d);
    for (int t = 0; t < 2; t++) free(r->hkmix_f[t]), free(r->hkmix_d[t]);
    free(r->signs);
    free(r->walsh_perm);
    free(r->dense);
    free(r->dense_f);
    free(r->kron_a);
    free(r->kron_b);
    free(r->kron_pin);
    free(r->kron_pout);
    free(r);
}

int8_t *rot_random_signs(int64_t n, uint64_t seed) {
    int8_t *s = harp_xmalloc((size_t)n, "rotation signs");
    if (!s) return NULL;
    harp_rng g;
    harp_rng_seed(&g, harp_seed_mix(seed, 0x7369676e73ULL));
    for (int64_t i = 0; i < n; i++) s[i] = (harp_rng_u64(&g) >> 63) ? -1 : 1;
    return s;
}

void orth_qr_signfix(double *A, int n) {
    double *tau = malloc((size_t)n * sizeof *tau);
    int *sg = malloc((size_t)n * sizeof *sg);
    if (!tau || !sg) {
        free(tau);
        free(sg);
        return;
    }
    LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, n, n, A, n, tau);
    for (int i = 0; i < n; i++) sg[i] = A[(size_t)i * n + i] < 0 ? -1 : 1;
    LAPACKE_dorgqr(LAPACK_ROW_MAJOR, n, n, n, A, n, tau);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) A[(size_t)i * n + j] *= sg[j];
    free(tau);
    free(sg);
}

harp_status harp_rot_create(harp_rot_kind kind, int64_t n, const harp_rot_params *params, uint64_t seed,
                            harp_rot **out) {
    if (!out) return harp_err(HARP_ERR_INVALID_ARG, "rotation create: NULL output");
    *out = NULL;
    if (!rot_ops(kind)) return harp_err(HARP_ERR_INVALID_ARG, "rotation create: unknown kind %d", (int)kind);
    if (n < 1 || n > ((int64_t)1 << 26))
        return harp_err(HARP_ERR_INVALID_ARG, "rotation create: dimension %lld out of range", (long long)n);
    harp_rot_params def;
    if (!params) {
        harp_rot_params_default(&def);
        params = &def;
    }
    harp_rot *r = rot_alloc(kind, n, seed);
    if (!r) return HARP_ERR_OOM;
    harp_rng g;
    harp_rng_seed(&g, harp_seed_mix(seed, (uint64_t)kind + 1));
    harp_status st = r->ops->create(r, params, &g);
    if (st == HARP_OK) st = r->ops->finish(r);
    if (st != HARP_OK) {
        harp_rot_destroy(r);
        return st;
    }
    *out = r;
    return HARP_OK;
}

harp_rot_kind harp_rot_get_kind(const harp_rot *r) { return r->kind; }
int64_t harp_rot_dim(const harp_rot *r) { return r ? r->n : 0; }
int harp_rot_hadamard_k(const harp_rot *r) {
    return r && (r->kind == HARP_ROT_HADAMARD || r->kind == HARP_ROT_RHT) ? r->K : 0;
}
int harp_rot_butterfly_stages(const harp_rot *r, const int **stages) {
    if (!r || r->kind != HARP_ROT_BUTTERFLY) {
        if (stages) *stages = NULL;
        return 0;
    }
    if (stages) *stages = r->params.stages;
    return r->T;
}
int harp_rot_butterfly_passes(const harp_rot *r) { return r && r->kind == HARP_ROT_BUTTERFLY ? r->P : 0; }
int harp_rot_butterfly_fixed_k(const harp_rot *r) { return r && r->kind == HARP_ROT_BUTTERFLY && r->fixed ? r->K : 0; }
