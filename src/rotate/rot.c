/* harp_rot: creation of every kind from (kind, n, params, seed), derived tables, accessors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rot_internal.h"

static const char *const kind_names[] = {"hadamard", "rht", "gsr", "random_orthogonal", "kron", "butterfly"};

const char *harp_rot_kind_name(harp_rot_kind k) {
    return (unsigned)k < sizeof kind_names / sizeof kind_names[0] ? kind_names[k] : NULL;
}

harp_status harp_rot_kind_parse(const char *name, harp_rot_kind *out) {
    for (unsigned i = 0; name && i < sizeof kind_names / sizeof kind_names[0]; i++)
        if (!strcmp(name, kind_names[i])) {
            *out = (harp_rot_kind)i;
            return HARP_OK;
        }
    return harp_err(HARP_ERR_INVALID_ARG, "rotation: unknown kind '%s' (hadamard, rht, gsr, random_orthogonal, kron, butterfly)",
                    name ? name : "(null)");
}

void harp_rot_params_default(harp_rot_params *p) {
    memset(p, 0, sizeof *p);
    p->gsr_group = 128;
    p->base_b = 8;
    p->max_b = 8;
    p->n_passes = 1;
}

static int is_pow2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

harp_rot *rot_alloc(harp_rot_kind kind, int64_t n, uint64_t seed) {
    harp_rot *r = harp_xcalloc(1, sizeof *r, "rotation");
    if (!r) return NULL;
    r->kind = kind;
    r->n = n;
    r->seed = seed;
    harp_rot_params_default(&r->params);
    return r;
}

void harp_rot_destroy(harp_rot *r) {
    if (!r) return;
    if (r->kind == HARP_ROT_BUTTERFLY) bf_free(r);
    free(r->hadk);
    free(r->hadk_f);
    free(r->hadk_d);
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

static int8_t *random_signs(int64_t n, uint64_t seed) {
    int8_t *s = harp_xmalloc((size_t)n, "rotation signs");
    if (!s) return NULL;
    harp_rng g;
    harp_rng_seed(&g, harp_seed_mix(seed, 0x7369676e73ULL));
    for (int64_t i = 0; i < n; i++) s[i] = (harp_rng_u64(&g) >> 63) ? -1 : 1;
    return s;
}

/* Haar-random orthogonal of order k (k = 2: a uniform Givens angle, as QuIP's kron mode). */
static harp_status haar(int k, harp_rng *g, double **out) {
    double *A = harp_xmalloc((size_t)k * k * sizeof(double), "Haar matrix");
    if (!A) return HARP_ERR_OOM;
    if (k == 2) {
        double a = 6.283185307179586476925 * harp_rng_uniform(g), c = cos(a), s = sin(a);
        A[0] = c, A[1] = -s, A[2] = s, A[3] = c;
    } else {
        for (size_t i = 0; i < (size_t)k * k; i++) A[i] = harp_rng_normal(g);
        orth_qr_signfix(A, k);
    }
    *out = A;
    return HARP_OK;
}

static harp_status random_perm(int64_t n, harp_rng *g, uint32_t **out) {
    uint32_t *p = harp_xmalloc((size_t)n * sizeof(uint32_t), "permutation");
    if (!p) return HARP_ERR_OOM;
    for (int64_t i = 0; i < n; i++) p[i] = (uint32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(harp_rng_u64(g) % (uint64_t)(i + 1));
        uint32_t t = p[i];
        p[i] = p[j], p[j] = t;
    }
    *out = p;
    return HARP_OK;
}

harp_status rot_finish(harp_rot *r) {
    int64_t n = r->n;
    switch (r->kind) {
    case HARP_ROT_HADAMARD:
    case HARP_ROT_RHT: {
        HARP_TRY(harp_hadamard_choose_k(n, &r->K));
        r->pow2 = n / r->K;
        size_t kk = (size_t)r->K * r->K;
        r->hadk = harp_xmalloc(kk, "hadK");
        r->hadk_f = harp_xmalloc(kk * sizeof(float), "hadK");
        r->hadk_d = harp_xmalloc(kk * sizeof(double), "hadK");
        if (!r->hadk || !r->hadk_f || !r->hadk_d) return HARP_ERR_OOM;
        HARP_TRY(harp_hadamard_matrix(r->K, r->hadk, NULL));
        for (size_t i = 0; i < kk; i++) r->hadk_f[i] = r->hadk[i], r->hadk_d[i] = r->hadk[i];
        return HARP_OK;
    }
    case HARP_ROT_GSR: {
        int64_t G = r->group;
        int k = 0;
        while (((int64_t)1 << k) < G) k++;
        r->walsh_perm = harp_xmalloc((size_t)G * sizeof(int64_t), "walsh permutation");
        if (!r->walsh_perm) return HARP_ERR_OOM;
        for (int64_t j = 0; j < G; j++) {
            uint64_t gr = (uint64_t)j ^ ((uint64_t)j >> 1), rev = 0;
            for (int b = 0; b < k; b++) rev |= ((gr >> b) & 1) << (k - 1 - b);
            r->walsh_perm[j] = (int64_t)rev;
        }
        return HARP_OK;
    }
    case HARP_ROT_KRON: {
        int p2 = r->kron_p2;
        r->dense = harp_xmalloc((size_t)n * (size_t)n * sizeof(double), "kron matrix");
        if (!r->dense) return HARP_ERR_OOM;
        for (int64_t i = 0; i < n; i++) {
            int64_t a = r->kron_pout[i];
            for (int64_t j = 0; j < n; j++) {
                int64_t b = r->kron_pin[j];
                r->dense[i * n + j] = r->kron_a[(a / p2) * r->kron_p1 + b / p2] * r->kron_b[(a % p2) * p2 + b % p2];
            }
        }
    }
    /* fall through */
    case HARP_ROT_RANDOM_ORTHOGONAL:
        r->dense_f = harp_xmalloc((size_t)n * (size_t)n * sizeof(float), "dense rotation");
        if (!r->dense_f) return HARP_ERR_OOM;
        for (size_t i = 0; i < (size_t)n * (size_t)n; i++) r->dense_f[i] = (float)r->dense[i];
        return HARP_OK;
    case HARP_ROT_BUTTERFLY: return bf_refresh(r);
    }
    return harp_err(HARP_ERR_INTERNAL, "rotation: unknown kind %d", (int)r->kind);
}

static harp_status create_kind(harp_rot *r, const harp_rot_params *p) {
    int64_t n = r->n;
    harp_rng g;
    harp_rng_seed(&g, harp_seed_mix(r->seed, (uint64_t)r->kind + 1));
    switch (r->kind) {
    case HARP_ROT_HADAMARD: return HARP_OK;
    case HARP_ROT_RHT:
        r->signs = random_signs(n, r->seed);
        return r->signs ? HARP_OK : HARP_ERR_OOM;
    case HARP_ROT_GSR: {
        int64_t G = p->gsr_group == 0 ? 128 : p->gsr_group < 0 ? n : p->gsr_group;
        if (p->gsr_group == 0 && n < 128) G = n;
        if (!is_pow2(G) || n % G)
            return harp_err(HARP_ERR_INVALID_ARG, "gsr: group %lld must be a power of two dividing n=%lld", (long long)G,
                            (long long)n);
        r->group = G;
        r->params.gsr_group = (int)G;
        r->params.gsr_signs = p->gsr_signs != 0;
        if (p->gsr_signs) {
            r->signs = random_signs(n, r->seed);
            if (!r->signs) return HARP_ERR_OOM;
        }
        return HARP_OK;
    }
    case HARP_ROT_RANDOM_ORTHOGONAL:
        if (n > 16384) return harp_err(HARP_ERR_UNSUPPORTED, "random_orthogonal: n=%lld too large for a dense rotation", (long long)n);
        r->dense = harp_xmalloc((size_t)n * (size_t)n * sizeof(double), "random orthogonal");
        if (!r->dense) return HARP_ERR_OOM;
        for (size_t i = 0; i < (size_t)n * (size_t)n; i++) r->dense[i] = harp_rng_normal(&g);
        orth_qr_signfix(r->dense, (int)n);
        return HARP_OK;
    case HARP_ROT_KRON: {
        if (n > 16384) return harp_err(HARP_ERR_UNSUPPORTED, "kron: n=%lld too large for a dense rotation", (long long)n);
        /* prime factors ascending; p1 = product at even positions, p2 = at odd positions */
        int64_t v = n, p1 = 1, p2 = 1;
        int idx = 0;
        for (int64_t f = 2; v > 1; f++) {
            if (f * f > v) f = v;
            while (v % f == 0) {
                if (idx++ % 2 == 0) p1 *= f;
                else p2 *= f;
                v /= f;
            }
        }
        r->kron_p1 = (int)p1, r->kron_p2 = (int)p2;
        HARP_TRY(haar((int)p1, &g, &r->kron_a));
        HARP_TRY(haar((int)p2, &g, &r->kron_b));
        HARP_TRY(random_perm(n, &g, &r->kron_pin));
        HARP_TRY(random_perm(n, &g, &r->kron_pout));
        return HARP_OK;
    }
    case HARP_ROT_BUTTERFLY:
        r->params.givens_b2 = p->givens_b2 != 0;
        r->params.theta_clip = p->theta_clip;
        r->params.theta_init_scale = p->theta_init_scale;
        r->params.base_b = p->base_b;
        r->params.max_b = p->max_b;
        if (!(p->theta_clip >= 0) || !isfinite(p->theta_clip))
            return harp_err(HARP_ERR_INVALID_ARG, "butterfly: theta_clip %g must be >= 0", p->theta_clip);
        return bf_init(r, p, 0);
    }
    return harp_err(HARP_ERR_INVALID_ARG, "rotation: unknown kind %d", (int)r->kind);
}

harp_status harp_rot_create(harp_rot_kind kind, int64_t n, const harp_rot_params *params, uint64_t seed,
                            harp_rot **out) {
    if (!out) return harp_err(HARP_ERR_INVALID_ARG, "rotation create: NULL output");
    *out = NULL;
    if (!harp_rot_kind_name(kind)) return harp_err(HARP_ERR_INVALID_ARG, "rotation create: unknown kind %d", (int)kind);
    if (n < 1 || n > ((int64_t)1 << 26))
        return harp_err(HARP_ERR_INVALID_ARG, "rotation create: dimension %lld out of range", (long long)n);
    harp_rot_params def;
    if (!params) {
        harp_rot_params_default(&def);
        params = &def;
    }
    harp_rot *r = rot_alloc(kind, n, seed);
    if (!r) return HARP_ERR_OOM;
    harp_status st = create_kind(r, params);
    if (st == HARP_OK) st = rot_finish(r);
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
