/* Transform descriptions for the GPU decode engine (decode.h): builders for Hadamard, HARP
 * butterfly, Kronecker and GSR as mixed-radix stage sequences, and their double-precision
 * reference application. Plain C, compiled in every build. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cuda/decode.h"
#include "harp/rotate.h"

/* Owned storage: one malloc'd list of blocks. */
typedef struct xf_store {
    size_t count;
    void *ptr[2 * DEC_MAX_STAGES + 4];
} xf_store;

static void *xf_alloc(dec_xform *xf, size_t bytes) {
    xf_store *s = xf->owned;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return NULL;
        xf->owned = s;
    }
    if (s->count >= sizeof s->ptr / sizeof s->ptr[0]) return NULL;
    void *p = calloc(1, bytes ? bytes : 1);
    if (p) s->ptr[s->count++] = p;
    return p;
}

void dec_xform_free(dec_xform *xf) {
    if (!xf) return;
    xf_store *s = xf->owned;
    if (s)
        for (size_t i = 0; i < s->count; i++) free(s->ptr[i]);
    free(s);
    memset(xf, 0, sizeof *xf);
}

void dec_xform_identity(int64_t n, dec_xform *xf) {
    memset(xf, 0, sizeof *xf);
    xf->n = n;
    xf->scale = 1.0;
}

harp_status dec_xform_adopt(dec_xform *xf, void *p) {
    xf_store *s = xf->owned;
    if (!s && !(s = xf->owned = calloc(1, sizeof *s))) {
        free(p);
        return HARP_ERR_OOM;
    }
    if (s->count >= sizeof s->ptr / sizeof s->ptr[0]) {
        free(p);
        return harp_err(HARP_ERR_UNSUPPORTED, "decode transform: too many blocks");
    }
    s->ptr[s->count++] = p;
    return HARP_OK;
}

harp_status dec_xform_append(dec_xform *xf, const dec_xform *b) {
    if (b->n != xf->n || b->gather || b->scatter || xf->scatter || xf->nstages + b->nstages > DEC_MAX_STAGES)
        return harp_err(HARP_ERR_UNSUPPORTED, "decode transform: cannot append %d stages of n = %lld", b->nstages, (long long)b->n);
    for (int s = 0; s < b->nstages; s++) {
        const dec_xstage *S = &b->st[s];
        const size_t cnt = S->shared ? (size_t)S->b * (size_t)S->b : (size_t)b->n * (size_t)S->b;
        float *M = xf_alloc(xf, cnt * sizeof(float));
        if (!M) return HARP_ERR_OOM;
        memcpy(M, S->mat, cnt * sizeof(float));
        xf->st[xf->nstages++] = (dec_xstage){.b = S->b, .step = S->step, .shared = S->shared, .mat = M};
    }
    xf->scale *= b->scale;
    return HARP_OK;
}

harp_status dec_xform_transpose(const dec_xform *xf, dec_xform *out) {
    const int64_t n = xf->n;
    dec_xform_identity(n, out);
    out->scale = xf->scale;
    /* T = scatter · stages · gather ⇒ Tᵀ = gatherᵀ · stagesᵀ (reversed, each block transposed) · scatterᵀ;
       a scatter's transpose is the gather with the same index list and vice versa */
    const int32_t *perm[2] = {xf->scatter, xf->gather};
    int32_t **dst[2] = {&out->gather, &out->scatter};
    for (int i = 0; i < 2; i++) {
        if (!perm[i]) continue;
        if (!(*dst[i] = xf_alloc(out, sizeof(int32_t) * (size_t)n))) goto oom;
        memcpy(*dst[i], perm[i], sizeof(int32_t) * (size_t)n);
    }
    for (int s = xf->nstages - 1; s >= 0; s--) {
        const dec_xstage *S = &xf->st[s];
        const int b = S->b;
        const int64_t G = S->shared ? 1 : n / b;
        float *M = xf_alloc(out, sizeof(float) * (size_t)G * (size_t)b * (size_t)b);
        if (!M) goto oom;
        for (int64_t c = 0; c < G; c++)
            for (int i = 0; i < b; i++)
                for (int j = 0; j < b; j++) M[((size_t)c * b + i) * b + j] = S->mat[((size_t)c * b + j) * b + i];
        out->st[out->nstages++] = (dec_xstage){.b = b, .step = S->step, .shared = S->shared, .mat = M};
    }
    return HARP_OK;
oom:
    dec_xform_free(out);
    return HARP_ERR_OOM;
}

static harp_status add_stage(dec_xform *xf, int b, int64_t step, int shared, const float *mat) {
    if (xf->nstages >= DEC_MAX_STAGES)
        return harp_err(HARP_ERR_UNSUPPORTED, "decode transform: more than %d stages for n = %lld", DEC_MAX_STAGES,
                        (long long)xf->n);
    xf->st[xf->nstages++] = (dec_xstage){.b = b, .step = step, .shared = shared, .mat = mat};
    return HARP_OK;
}

/* Unnormalised Sylvester H_b (natural order), b a power of two. */
static float *sylvester(dec_xform *xf, int b) {
    float *H = xf_alloc(xf, sizeof(float) * (size_t)b * (size_t)b);
    if (!H) return NULL;
    for (int i = 0; i < b; i++)
        for (int j = 0; j < b; j++) H[i * b + j] = (__builtin_popcount((unsigned)(i & j)) & 1) ? -1.0f : 1.0f;
    return H;
}

/* FWHT of length m = 2^k on the digits starting at step0, as radix-8 stages (then 4 or 2). */
static harp_status fwht_stages(dec_xform *xf, int64_t m, int64_t step0) {
    int64_t step = step0;
    while (m > 1) {
        int b = m % 8 == 0 ? 8 : m % 4 == 0 ? 4 : 2;
        const float *H = sylvester(xf, b);
        if (!H) return HARP_ERR_OOM;
        HARP_TRY(add_stage(xf, b, step, 1, H));
        step *= b;
        m /= b;
    }
    return HARP_OK;
}

harp_status dec_xform_hadamard(int64_t n, int transpose, dec_xform *xf) {
    dec_xform_identity(n, xf);
    int K = 1;
    HARP_TRY(harp_hadamard_choose_k(n, &K));
    const int64_t m = n / K;
    harp_status st = fwht_stages(xf, m, 1);
    if (st == HARP_OK && K > 1) {
        int8_t *H = malloc((size_t)K * (size_t)K);
        float *M = xf_alloc(xf, sizeof(float) * (size_t)K * (size_t)K);
        st = !H || !M ? HARP_ERR_OOM : harp_hadamard_matrix(K, H, NULL);
        /* forward out_c = Σ_j hadK[j][c]·x_j (M = hadKᵀ); transpose out_c = Σ_j hadK[c][j]·x_j */
        if (st == HARP_OK)
            for (int i = 0; i < K; i++)
                for (int j = 0; j < K; j++) M[i * K + j] = transpose ? H[i * K + j] : H[j * K + i];
        free(H);
        if (st == HARP_OK) st = add_stage(xf, K, m, 1, M);
    }
    xf->scale = 1.0 / sqrt((double)n);
    if (st != HARP_OK) dec_xform_free(xf);
    return st;
}

harp_status dec_xform_butterfly(int64_t n, int P, int T, const int *radices, const float *const *blocks, int transpose,
                                dec_xform *xf) {
    dec_xform_identity(n, xf);
    int64_t prod = 1;
    for (int t = 0; t < T; t++) prod *= radices[t];
    if (P < 1 || T < 1 || prod != n || (int64_t)P * T > DEC_MAX_STAGES)
        return harp_err(HARP_ERR_SHAPE, "decode transform: butterfly schedule does not fit n = %lld", (long long)n);
    harp_status st = HARP_OK;
    for (int pi = 0; pi < P && st == HARP_OK; pi++) {
        const int p = transpose ? P - 1 - pi : pi;
        for (int ti = 0; ti < T && st == HARP_OK; ti++) {
            const int t = transpose ? T - 1 - ti : ti;
            const int b = radices[t];
            int64_t step = 1;
            for (int u = 0; u < t; u++) step *= radices[u];
            const int64_t G = n / b;
            float *M = xf_alloc(xf, sizeof(float) * (size_t)n * (size_t)b);
            if (!M) {
                st = HARP_ERR_OOM;
                break;
            }
            const float *K = blocks[p * T + t];
            for (int64_t c = 0; c < G; c++)
                for (int i = 0; i < b; i++)
                    for (int j = 0; j < b; j++)
                        M[((size_t)c * b + i) * b + j] = transpose ? K[((size_t)c * b + j) * b + i] : K[((size_t)c * b + i) * b + j];
            st = add_stage(xf, b, step, 0, M);
        }
    }
    if (st != HARP_OK) dec_xform_free(xf);
    return st;
}

static int32_t *inverse_perm(dec_xform *xf, const uint32_t *p, int64_t n) {
    int32_t *inv = xf_alloc(xf, sizeof(int32_t) * (size_t)n);
    if (!inv) return NULL;
    for (int64_t i = 0; i < n; i++) inv[p[i]] = (int32_t)i;
    return inv;
}

harp_status dec_xform_kron(int p1, int p2, const double *A, const double *B, const uint32_t *pin, const uint32_t *pout,
                           int transpose, dec_xform *xf) {
    const int64_t n = (int64_t)p1 * p2;
    dec_xform_identity(n, xf);
    float *MB = xf_alloc(xf, sizeof(float) * (size_t)p2 * (size_t)p2), *MA = xf_alloc(xf, sizeof(float) * (size_t)p1 * (size_t)p1);
    /* forward: u[pout[i]] = x_i, z = u·(A⊗B), y_j = z[pin[j]]; transpose swaps the permutations and
     * uses Aᵀ, Bᵀ. Stage matrices act as v ← M v, so forward uses M = Bᵀ (low digit) and Aᵀ. */
    xf->gather = inverse_perm(xf, transpose ? pin : pout, n);
    xf->scatter = inverse_perm(xf, transpose ? pout : pin, n);
    if (!MA || !MB || !xf->gather || !xf->scatter) {
        dec_xform_free(xf);
        return HARP_ERR_OOM;
    }
    for (int i = 0; i < p2; i++)
        for (int j = 0; j < p2; j++) MB[i * p2 + j] = (float)(transpose ? B[i * p2 + j] : B[j * p2 + i]);
    for (int i = 0; i < p1; i++)
        for (int j = 0; j < p1; j++) MA[i * p1 + j] = (float)(transpose ? A[i * p1 + j] : A[j * p1 + i]);
    harp_status st = add_stage(xf, p2, 1, 1, MB);
    if (st == HARP_OK) st = add_stage(xf, p1, p2, 1, MA);
    if (st != HARP_OK) dec_xform_free(xf);
    return st;
}

harp_status dec_xform_gsr(int64_t n, int64_t G, const int64_t *perm, int transpose, dec_xform *xf) {
    dec_xform_identity(n, xf);
    if (G < 1 || n % G || (G & (G - 1))) return harp_err(HARP_ERR_SHAPE, "decode transform: GSR group %lld for n = %lld", (long long)G, (long long)n);
    int32_t *P = xf_alloc(xf, sizeof(int32_t) * (size_t)n);
    if (!P) return HARP_ERR_OOM;
    /* forward: y[o + j] = z[o + perm[j]] (scatter z[o+perm[j]] → o+j); transpose: u[o + perm[j]] = x[o + j]
     * (gather u[o+k] = x[o + perm⁻¹[k]]) */
    for (int64_t o = 0; o < n; o += G)
        for (int64_t j = 0; j < G; j++) P[o + perm[j]] = (int32_t)(o + j);
    if (transpose) xf->gather = P;
    else xf->scatter = P;
    harp_status st = fwht_stages(xf, G, 1);
    xf->scale = 1.0 / sqrt((double)G);
    if (st != HARP_OK) dec_xform_free(xf);
    return st;
}

/* A Sylvester FWHT (up to a scale) when every stage is one shared ±c·H_b block (b a power of two,
 * Sylvester order) and the stages' digits tile [0, n) without permutations: the composition is then
 * c·H_n whatever the digit order. The decode seam kernel (dec_linear_seam) runs such a transform as
 * register / shuffle butterflies instead of the stage engine. */
int dec_xform_fwht(const dec_xform *xf, double *scale) {
    const int64_t n = xf->n;
    if (n < 2 || (n & (n - 1)) || xf->gather || xf->scatter || xf->nstages < 1) return 0;
    int order[DEC_MAX_STAGES];
    for (int s = 0; s < xf->nstages; s++) order[s] = s;
    for (int i = 1; i < xf->nstages; i++)   /* by step (insertion sort of ≤ DEC_MAX_STAGES) */
        for (int j = i; j > 0 && xf->st[order[j]].step < xf->st[order[j - 1]].step; j--) {
            const int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    double c = xf->scale;
    int64_t step = 1;
    for (int k = 0; k < xf->nstages; k++) {
        const dec_xstage *S = &xf->st[order[k]];
        const int b = S->b;
        if (!S->shared || b < 2 || (b & (b - 1)) || S->step != step) return 0;
        const float c0 = S->mat[0];
        if (!(c0 > 0.0f)) return 0;
        for (int i = 0; i < b; i++)
            for (int j = 0; j < b; j++)
                if (S->mat[i * b + j] != ((__builtin_popcount((unsigned)(i & j)) & 1) ? -c0 : c0)) return 0;
        c *= c0;
        step *= b;
    }
    if (step != n) return 0;
    if (scale) *scale = c;
    int lg = 0;
    while (((int64_t)1 << lg) < n) lg++;
    return lg;
}

/* ---- reference application -------------------------------------------------------------------------- */

int dec_xstage_needs_f32(const dec_xstage *s, int64_t n) {
    const size_t cnt = (size_t)(s->shared ? 1 : n / s->b) * (size_t)s->b * (size_t)s->b;
    for (size_t i = 0; i < cnt; i++)
        if (harp_f16_to_f32(harp_f32_to_f16(s->mat[i])) != s->mat[i]) return 1;
    return 0;
}

void dec_xform_apply_ref(const dec_xform *xf, double *x, double *tmp) {
    const int64_t n = xf->n;
    if (xf->gather) {
        for (int64_t k = 0; k < n; k++) tmp[k] = x[xf->gather[k]];
        memcpy(x, tmp, sizeof(double) * (size_t)n);
    }
    for (int s = 0; s < xf->nstages; s++) {
        const dec_xstage *S = &xf->st[s];
        const int b = S->b;
        for (int64_t e = 0; e < n; e++) {
            const int64_t blk = e / (b * S->step), q = e % S->step, c = blk * S->step + q;
            const int i = (int)((e / S->step) % b);
            const float *Mi = S->mat + (S->shared ? 0 : (size_t)c * b * b) + (size_t)i * b;
            const int64_t base = blk * b * S->step + q;
            double acc = 0;
            for (int j = 0; j < b; j++) acc += (double)Mi[j] * x[base + j * S->step];
            tmp[e] = acc;
        }
        memcpy(x, tmp, sizeof(double) * (size_t)n);
    }
    for (int64_t k = 0; k < n; k++) x[k] *= xf->scale;
    if (xf->scatter) {
        for (int64_t k = 0; k < n; k++) tmp[xf->scatter[k]] = x[k];
        memcpy(x, tmp, sizeof(double) * (size_t)n);
    }
}
