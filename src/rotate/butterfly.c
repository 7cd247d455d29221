/* HARP butterfly rotation (algorithms.md §4.2–§4.4, §4.8): greedy mixed-radix schedule, stride
 * tensorisation, per-group kernels K = Cay(S(θ))·M_b (or Givens·M_2), Cayley blocks computed once
 * per θ, and the hand-derived backward pass. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rot_internal.h"

static int is_pow2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

harp_status bf_init(harp_rot *r, const harp_rot_params *p, int load) {
    int stages[HARP_ROT_MAX_STAGES], T, K;
    HARP_TRY(bf_schedule(r->n, p, stages, &T, &K));
    r->params.schedule = p->schedule;
    if (K) {   /* the fixed stage, and the Hadamard kernels at θ = 0 */
        HARP_TRY(rot_hadk_init(r, K));
        HARP_TRY(bf_fixed_init(r));
    }
    else r->K = 1, r->pow2 = r->n;          /* used by the Hadamard kernels when r->had_exact */
    r->fixed = K != 0;
    r->T = T;
    r->P = p->n_passes > 0 ? p->n_passes : 1;
    if (r->P > 64) return harp_err(HARP_ERR_INVALID_ARG, "butterfly: %d passes (max 64)", r->P);
    r->params.n_stages = T;
    memcpy(r->params.stages, stages, sizeof stages);
    r->params.n_passes = r->P;
    int syl[HARP_ROT_MAX_STAGES];
    if (r->fixed) HARP_TRY(bf_chunk_split(stages, T, r->pow2, syl));
    int64_t step = 1;
    r->nparam = 0;
    for (int t = 0; t < T; t++) {
        bf_stage *s = &r->st[t];
        s->b = stages[t];
        s->step = step;
        s->D = r->n / s->b;
        s->givens = s->b == 2 && p->givens_b2;
        s->syl = r->fixed ? syl[t] : 0;
        s->nparam = s->givens ? 1 : (int64_t)s->b * (s->b - 1) / 2;
        step *= s->b;
        r->nparam += s->D * s->nparam * r->P;
        if (!is_pow2(s->b) && !r->fixed && !bf_mixer_of(r, s->b) && !load) {
            int k = r->n_mix;
            r->mix_b[k] = s->b;
            r->mix[k] = harp_xmalloc((size_t)s->b * s->b * sizeof(double), "butterfly mixer");
            if (!r->mix[k]) return HARP_ERR_OOM;
            r->n_mix++;
            HARP_TRY(bf_mixer(s->b, r->mix[k]));
        }
    }
    r->theta = harp_xcalloc((size_t)(r->nparam ? r->nparam : 1), sizeof(double), "butterfly theta");
    int PT = r->P * r->T;
    r->kf_fwd = harp_xcalloc((size_t)PT, sizeof(float *), "butterfly blocks");
    r->kf_can = harp_xcalloc((size_t)PT, sizeof(float *), "butterfly blocks");
    r->kd_fwd = harp_xcalloc((size_t)PT, sizeof(double *), "butterfly blocks");
    r->kd_can = harp_xcalloc((size_t)PT, sizeof(double *), "butterfly blocks");
    if (!r->theta || !r->kf_fwd || !r->kf_can || !r->kd_fwd || !r->kd_can) return HARP_ERR_OOM;
    for (int pt = 0; pt < PT; pt++) {
        size_t e = (size_t)r->n * (size_t)r->st[pt % T].b;
        r->kf_fwd[pt] = harp_xmalloc(e * sizeof(float), "butterfly blocks");
        r->kf_can[pt] = harp_xmalloc(e * sizeof(float), "butterfly blocks");
        if (!r->kf_fwd[pt] || !r->kf_can[pt]) return HARP_ERR_OOM;
    }
    if (!load && p->theta_init_scale > 0) {
        harp_rng g;
        harp_rng_seed(&g, harp_seed_mix(r->seed, 0x7468657461ULL));
        for (int64_t i = 0; i < r->nparam; i++) r->theta[i] = p->theta_init_scale * harp_rng_normal(&g);
    }
    return HARP_OK;
}

void bf_free(harp_rot *r) {
    int PT = r->P * r->T;
    for (int pt = 0; pt < PT; pt++) {
        if (r->kf_fwd) free(r->kf_fwd[pt]);
        if (r->kf_can) free(r->kf_can[pt]);
        if (r->kd_fwd) free(r->kd_fwd[pt]);
        if (r->kd_can) free(r->kd_can[pt]);
    }
    free(r->kf_fwd);
    free(r->kf_can);
    free(r->kd_fwd);
    free(r->kd_can);
    for (int i = 0; i < r->n_mix; i++) free(r->mix[i]);
    bf_fixed_free(r);
    free(r->theta);
    free(r->theta_q);
    free(r->theta_s);
    free(r->theta_h);
}

/* Solves A·X = B in place (B ← X) for b×b A (destroyed) and b right-hand-side columns, Gaussian
 * elimination without pivoting: I ± S with S skew has eigenvalues 1 ± iλ, so it is safe. */
static void solve_nopivot(double *A, double *B, int b) {
    for (int k = 0; k < b; k++) {
        double piv = A[(size_t)k * b + k];
        for (int i = k + 1; i < b; i++) {
            double f = A[(size_t)i * b + k] / piv;
            if (f == 0) continue;
            for (int j = k; j < b; j++) A[(size_t)i * b + j] -= f * A[(size_t)k * b + j];
            for (int j = 0; j < b; j++) B[(size_t)i * b + j] -= f * B[(size_t)k * b + j];
        }
    }
    for (int k = b - 1; k >= 0; k--) {
        double piv = A[(size_t)k * b + k];
        for (int j = 0; j < b; j++) {
            double v = B[(size_t)k * b + j];
            for (int u = k + 1; u < b; u++) v -= A[(size_t)k * b + u] * B[(size_t)u * b + j];
            B[(size_t)k * b + j] = v / piv;
        }
    }
}

static double clip_fn(double c, double v) { return c > 0 ? c * tanh(v) : v; }
static double clip_deriv(double c, double v) {
    if (c <= 0) return 1.0;
    double th = tanh(v);
    return c * (1.0 - th * th);
}

/* S (b×b, skew) from the group's strict-upper-triangle parameters. */
static void skew_of(const double *th, int b, double clip, double *S) {
    int64_t k = 0;
    for (int i = 0; i < b; i++) {
        S[(size_t)i * b + i] = 0;
        for (int j = i + 1; j < b; j++, k++) {
            double v = clip_fn(clip, th[k]);
            S[(size_t)i * b + j] = v;
            S[(size_t)j * b + i] = -v;
        }
    }
}

/* Q (b×b) of one group: Cayley (I+S)^{-1}(I−S) or a Givens rotation; work has 2b² doubles. */
static void group_q(const bf_stage *st, const double *th, double clip, double *Q, double *work) {
    int b = st->b;
    if (st->givens) {
        double a = clip_fn(clip, th[0]), c = cos(a), s = sin(a);
        Q[0] = c, Q[1] = -s, Q[2] = s, Q[3] = c;
        return;
    }
    double *S = work, *A = work + (size_t)b * b;
    skew_of(th, b, clip, S);
    for (int i = 0; i < b; i++)
        for (int j = 0; j < b; j++) {
            double d = i == j ? 1.0 : 0.0;
            A[(size_t)i * b + j] = d + S[(size_t)i * b + j];
            Q[(size_t)i * b + j] = d - S[(size_t)i * b + j];
        }
    solve_nopivot(A, Q, b);
}

static int64_t theta_offset(const harp_rot *r, int p, int t) {
    int64_t off = 0;
    for (int pp = 0; pp < r->P; pp++)
        for (int tt = 0; tt < r->T; tt++) {
            if (pp == p && tt == t) return off;
            off += r->st[tt].D * r->st[tt].nparam;
        }
    return off;
}

/* Expands θ into the blocks of every (pass, stage): the fp32 layouts (f32), the fp64 ones (f64) or
 * both, from the same fp64 K_c, so a late fp64 expansion holds what an early one would have. */
static harp_status bf_expand(harp_rot *r, const double *th, int f32, int f64) {
    for (int p = 0; p < r->P; p++)
        for (int t = 0; t < r->T; t++) {
            const bf_stage *st = &r->st[t];
            int b = st->b;
            int64_t step = st->step, off = theta_offset(r, p, t);
            double *M = harp_xmalloc((size_t)b * b * sizeof(double), "butterfly mixer");
            if (!M) return HARP_ERR_OOM;
            bf_mixer_fill(r, st, M);
            float *kf = r->kf_fwd[p * r->T + t], *kc = r->kf_can[p * r->T + t];
            double *df = r->kd_fwd[p * r->T + t], *dc = r->kd_can[p * r->T + t];
            int fail = 0;
#pragma omp parallel
            {
                double *w = malloc((size_t)b * b * 4 * sizeof(double));
                if (!w) {
#pragma omp atomic write
                    fail = 1;
                }
#pragma omp for schedule(static)
                for (int64_t c = 0; c < st->D; c++) {
                    if (!w) continue;
                    double *Q = w, *Kc = w + (size_t)b * b;
                    group_q(st, th + off + c * st->nparam, r->params.theta_clip, Q, w + 2 * (size_t)b * b);
                    for (int i = 0; i < b; i++)
                        for (int j = 0; j < b; j++) {
                            double acc = 0;
                            for (int u = 0; u < b; u++) acc += Q[(size_t)i * b + u] * M[(size_t)u * b + j];
                            Kc[(size_t)i * b + j] = acc;
                        }
                    int64_t blk = c / step, s = c % step;
                    for (int i = 0; i < b; i++)
                        for (int j = 0; j < b; j++) {
                            double v = Kc[(size_t)i * b + j];
                            int64_t fi = ((blk * b + j) * b + i) * step + s, ci = (c * b + i) * b + j;
                            if (f64) df[fi] = v, dc[ci] = v;
                            if (f32) kf[fi] = (float)v, kc[ci] = (float)v;
                        }
                }
                free(w);
            }
            free(M);
            if (fail) return harp_err(HARP_ERR_OOM, "butterfly: out of memory computing Cayley blocks");
        }
    return HARP_OK;
}

harp_status bf_refresh(harp_rot *r) {
    double *tmp;
    const double *th = bf_theta_view(r, &tmp);
    if (!th) return HARP_ERR_OOM;
    harp_status st = bf_expand(r, th, 1, __atomic_load_n(&r->has_f64, __ATOMIC_ACQUIRE));
    /* Cay(0) = I exactly and clip·tanh(0) = 0, so θ ≡ 0 makes every block exactly its mixer: Sylvester
     * (n a power of two) or Sylvester ⊗ identity behind F, and the rotation is Had_n */
    r->had_exact = is_pow2(r->n) || r->fixed;
    for (int64_t i = 0; i < r->nparam && r->had_exact; i++) r->had_exact = th[i] == 0.0;
    free(tmp);
    return st;
}

harp_status bf_use_f64(const harp_rot *cr) {
    if (!cr || cr->kind != HARP_ROT_BUTTERFLY || __atomic_load_n(&cr->has_f64, __ATOMIC_ACQUIRE)) return HARP_OK;
    harp_rot *r = (harp_rot *)cr;   /* the blocks are a cache of θ, which does not change here */
    harp_status st = HARP_OK;
#pragma omp critical(harp_bf_f64)
    if (!__atomic_load_n(&r->has_f64, __ATOMIC_ACQUIRE)) {
        for (int pt = 0; pt < r->P * r->T && !st; pt++) {
            size_t e = (size_t)r->n * (size_t)r->st[pt % r->T].b;
            if (!r->kd_fwd[pt]) r->kd_fwd[pt] = harp_xmalloc(e * sizeof(double), "butterfly blocks (fp64)");
            if (!r->kd_can[pt]) r->kd_can[pt] = harp_xmalloc(e * sizeof(double), "butterfly blocks (fp64)");
            if (!r->kd_fwd[pt] || !r->kd_can[pt]) st = HARP_ERR_OOM;
        }
        double *tmp = NULL;
        const double *th = st ? NULL : bf_theta_view(r, &tmp);
        if (!st && !th) st = HARP_ERR_OOM;
        if (!st) st = bf_expand(r, th, 0, 1);
        free(tmp);
        if (!st) __atomic_store_n(&r->has_f64, 1, __ATOMIC_RELEASE);
    }
    return st;
}

/* ---- public butterfly API ------------------------------------------------------------------------ */

harp_status bf_need(const harp_rot *r, const char *fn) {
    if (!r) return harp_err(HARP_ERR_INVALID_ARG, "%s: NULL rotation", fn);
    if (r->kind != HARP_ROT_BUTTERFLY)
        return harp_err(HARP_ERR_INVALID_ARG, "%s: rotation is %s, not butterfly", fn, harp_rot_kind_name(r->kind));
    return HARP_OK;
}

/* ---- module API for the fitting engines (butterfly.h) ---------------------------------------------- */

int bf_num_stages(const harp_rot *r) { return r && r->kind == HARP_ROT_BUTTERFLY ? r->P * r->T : 0; }

bf_geom bf_stage_geom(const harp_rot *r, int pt) {
    const bf_stage *s = &r->st[pt % r->T];
    return (bf_geom){s->b, s->step, s->D};
}

const float *bf_blocks_f32(const harp_rot *r, int pt) { return r->kf_can[pt]; }
const double *bf_blocks_f64(const harp_rot *r, int pt) { return r->kd_can[pt]; }

int64_t harp_rot_butterfly_num_params(const harp_rot *r) {
    return r && r->kind == HARP_ROT_BUTTERFLY ? r->nparam : 0;
}

harp_status harp_rot_butterfly_get_theta(const harp_rot *r, double *theta) {
    HARP_TRY(bf_need(r, "butterfly_get_theta"));
    double *tmp;
    const double *th = bf_theta_view(r, &tmp);
    if (!th) return HARP_ERR_OOM;
    memcpy(theta, th, (size_t)r->nparam * sizeof(double));
    free(tmp);
    return HARP_OK;
}

harp_status harp_rot_butterfly_set_theta(harp_rot *r, const double *theta) {
    HARP_TRY(bf_need(r, "butterfly_set_theta"));
    for (int64_t i = 0; i < r->nparam; i++)
        if (!isfinite(theta[i])) return harp_err(HARP_ERR_NUMERIC, "butterfly_set_theta: theta[%lld] is not finite", (long long)i);
    if (!r->theta) r->theta = harp_xmalloc((size_t)(r->nparam ? r->nparam : 1) * sizeof(double), "butterfly theta");
    if (!r->theta) return HARP_ERR_OOM;
    memcpy(r->theta, theta, (size_t)r->nparam * sizeof(double));
    bf_theta_enc_clear(r);
    return bf_refresh(r);
}

static void group_dtheta(const harp_rot *r, const bf_stage *st, const double *th, const double *M, const double *dK,
                         double *dth, double *w);

harp_status bf_dtheta_from_dk(const harp_rot *r, const double *dk, double *dtheta) {
    int fail = 0;
    const double *dkp = dk;
    double *tmp;
    const double *th = bf_theta_view(r, &tmp);
    if (!th) return HARP_ERR_OOM;
    for (int p = 0; p < r->P; p++)
        for (int t = 0; t < r->T; t++) {
            const bf_stage *st = &r->st[t];
            int b = st->b;
            double *M = harp_xmalloc((size_t)b * b * sizeof(double), "butterfly mixer");
            if (!M) {
                free(tmp);
                return HARP_ERR_OOM;
            }
            bf_mixer_fill(r, st, M);
            int64_t off = theta_offset(r, p, t);
#pragma omp parallel
            {
                double *w = malloc((size_t)b * b * 6 * sizeof(double));
                if (!w) {
#pragma omp atomic write
                    fail = 1;
                }
#pragma omp for schedule(static)
                for (int64_t c = 0; c < st->D; c++)
                    if (w)
                        group_dtheta(r, st, th + off + c * st->nparam, M, dkp + (size_t)c * b * b,
                                     dtheta + off + c * st->nparam, w);
                free(w);
            }
            free(M);
            dkp += (size_t)st->D * b * b;
        }
    free(tmp);
    if (fail) return harp_err(HARP_ERR_OOM, "butterfly: out of memory in the theta gradient");
    return HARP_OK;
}

struct harp_rot_cache {
    int64_t rows, n;
    const harp_rot *rot;
    double *y;     /* output of the forward; stage inputs are recomputed backwards from it */
    size_t cap;
};

harp_rot_cache *harp_rot_cache_create(void) { return harp_xcalloc(1, sizeof(harp_rot_cache), "rotation cache"); }

void harp_rot_cache_destroy(harp_rot_cache *c) {
    if (!c) return;
    free(c->y);
    free(c);
}

static harp_status cache_reserve(harp_rot_cache *c, int64_t rows, int64_t n) {
    size_t need = (size_t)rows * (size_t)n;
    if (need > c->cap) {
        double *y = realloc(c->y, need * sizeof(double));
        if (!y) return harp_err(HARP_ERR_OOM, "rotation cache: out of memory for %lld×%lld", (long long)rows, (long long)n);
        c->y = y, c->cap = need;
    }
    c->rows = rows, c->n = n;
    return HARP_OK;
}

harp_status harp_rot_butterfly_forward_batch(const harp_rot *r, const double *X, int64_t rows, double *Y,
                                             harp_rot_cache *cache) {
    HARP_TRY(bf_need(r, "butterfly_forward_batch"));
    if (rows < 0 || !X || !Y) return harp_err(HARP_ERR_INVALID_ARG, "butterfly_forward_batch: bad arguments");
    if (Y != X) memcpy(Y, X, (size_t)rows * (size_t)r->n * sizeof(double));
    HARP_TRY(harp_rot_apply_f64(r, Y, rows, r->n, 0));
    if (cache) {
        HARP_TRY(cache_reserve(cache, rows, r->n));
        memcpy(cache->y, Y, (size_t)rows * (size_t)r->n * sizeof(double));
        cache->rot = r;
    }
    return HARP_OK;
}

/* dθ of one group from dK = Σ_rows g vᵀ (§4.8 b–d); w has 6b² doubles. */
static void group_dtheta(const harp_rot *r, const bf_stage *st, const double *th, const double *M, const double *dK,
                         double *dth, double *w) {
    int b = st->b;
    double clip = r->params.theta_clip;
    double *GQ = w, *S = w + (size_t)b * b, *B = S + (size_t)b * b, *A = B + (size_t)b * b, *T1 = A + (size_t)b * b;
    /* G_Q = dK · Mᵀ */
    for (int i = 0; i < b; i++)
        for (int j = 0; j < b; j++) {
            double acc = 0;
            for (int u = 0; u < b; u++) acc += dK[(size_t)i * b + u] * M[(size_t)j * b + u];
            GQ[(size_t)i * b + j] = acc;
        }
    if (st->givens) {
        double a = clip_fn(clip, th[0]), c = cos(a), s = sin(a);
        double g = GQ[0] * -s + GQ[1] * -c + GQ[2] * c + GQ[3] * -s;
        dth[0] += g * clip_deriv(clip, th[0]);
        return;
    }
    /* G_S = −2 B G_Q B with B = (I − S)^{-1} */
    skew_of(th, b, clip, S);
    for (int i = 0; i < b; i++)
        for (int j = 0; j < b; j++) {
            A[(size_t)i * b + j] = (i == j) - S[(size_t)i * b + j];
            B[(size_t)i * b + j] = i == j;
        }
    solve_nopivot(A, B, b);
    for (int i = 0; i < b; i++)
        for (int j = 0; j < b; j++) {
            double acc = 0;
            for (int u = 0; u < b; u++) acc += B[(size_t)i * b + u] * GQ[(size_t)u * b + j];
            T1[(size_t)i * b + j] = acc;
        }
    int64_t k = 0;
    for (int i = 0; i < b; i++)
        for (int j = i + 1; j < b; j++, k++) {
            double gij = 0, gji = 0;
            for (int u = 0; u < b; u++) {
                gij += T1[(size_t)i * b + u] * B[(size_t)u * b + j];
                gji += T1[(size_t)j * b + u] * B[(size_t)u * b + i];
            }
            /* s_ij enters S at (i,j) with +1 and at (j,i) with −1 */
            dth[k] += -2.0 * (gij - gji) * clip_deriv(clip, th[k]);
        }
}

/* Rows of X (rows × n) ← X·K_{p,t}ᵀ (every group v ← Kᵀ v), threaded over rows; 0 or 1 = out of memory. */
static int stage_rows_inv(const harp_rot *r, int p, int t, double *X, int64_t rows) {
    int fail = 0;
    const int64_t n = r->n;
#pragma omp parallel
    {
        double *tmp = malloc((size_t)(n + 1) * sizeof(double));
#pragma omp for schedule(static)
        for (int64_t row = 0; row < rows; row++)
            if (tmp) bf_stage_f64(r, p, t, X + row * n, tmp, 1);
        if (!tmp) {
#pragma omp atomic write
            fail = 1;
        }
        free(tmp);
    }
    return fail;
}

/* dθ of (pass p, stage t) += from dK_c = Σ_rows g_c v_cᵀ (g: upstream, v: the stage input); 1 = OOM. */
static int stage_dtheta(const harp_rot *r, const double *th, int p, int t, const double *g, const double *v, int64_t rows,
                        double *dtheta) {
    const bf_stage *st = &r->st[t];
    const int b = st->b;
    const int64_t step = st->step, n = r->n, off = theta_offset(r, p, t);
    double *M = harp_xmalloc((size_t)b * b * sizeof(double), "butterfly mixer");
    if (!M) return 1;
    bf_mixer_fill(r, st, M);
    int fail = 0;
#pragma omp parallel
    {
        double *w = malloc((size_t)b * b * 7 * sizeof(double));
        if (!w) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(static)
        for (int64_t c = 0; c < st->D; c++) {
            if (!w) continue;
            double *dK = w + (size_t)b * b * 6;
            memset(dK, 0, (size_t)b * b * sizeof(double));
            int64_t blk = c / step, s = c % step, base = blk * b * step + s;
            for (int64_t row = 0; row < rows; row++) {
                const double *gr = g + row * n + base, *vr = v + row * n + base;
                for (int i = 0; i < b; i++) {
                    double gi = gr[i * step];
                    for (int j = 0; j < b; j++) dK[(size_t)i * b + j] += gi * vr[j * step];
                }
            }
            group_dtheta(r, st, th + off + c * st->nparam, M, dK, dtheta + off + c * st->nparam, w);
        }
        free(w);
    }
    free(M);
    return fail;
}

harp_status harp_rot_butterfly_backward(const harp_rot *r, const harp_rot_cache *cache, const double *dY,
                                        double *dX, double *dtheta) {
    HARP_TRY(bf_need(r, "butterfly_backward"));
    HARP_TRY(bf_use_f64(r));
    if (!cache || cache->rot != r || cache->n != r->n)
        return harp_err(HARP_ERR_INVALID_ARG, "butterfly_backward: cache does not hold a forward of this rotation");
    if (!dY) return harp_err(HARP_ERR_INVALID_ARG, "butterfly_backward: NULL dY");
    int64_t rows = cache->rows, n = r->n;
    size_t tot = (size_t)rows * (size_t)n;
    /* cur: also bf_fixed_rows' scratch at the end, 2n at least */
    double *cur = harp_xmalloc((tot + 2 * (size_t)n) * sizeof(double), "butterfly backward");
    double *g = harp_xmalloc(tot * sizeof(double) + 1, "butterfly backward");
    double *tmp = NULL;
    const double *th = dtheta ? bf_theta_view(r, &tmp) : NULL;
    if (!cur || !g || (dtheta && !th)) {
        free(cur);
        free(g);
        free(tmp);
        return HARP_ERR_OOM;
    }
    memcpy(cur, cache->y, tot * sizeof(double));
    memcpy(g, dY, tot * sizeof(double));
    int fail = 0;
    for (int p = r->P - 1; p >= 0 && !fail; p--)
        for (int t = r->T - 1; t >= 0 && !fail; t--) {
            /* stage input v = Kᵀ y, recomputed from the output (orthogonal, error ~1e−16) */
            fail |= stage_rows_inv(r, p, t, cur, rows);
            if (dtheta && !fail) fail |= stage_dtheta(r, th, p, t, g, cur, rows, dtheta);
            /* dL/dv = Kᵀ g */
            if (!fail) fail |= stage_rows_inv(r, p, t, g, rows);
        }
    /* through the fixed stage: y = (x·F)·B, so dL/dx = (dL/d(x·F))·Fᵀ; cur is free scratch by now */
    if (!fail && dX && r->fixed) bf_fixed_rows_f64(r, g, rows, n, cur, 1);
    if (!fail && dX) memcpy(dX, g, tot * sizeof(double));
    free(cur);
    free(g);
    free(tmp);
    if (fail) return harp_err(HARP_ERR_OOM, "butterfly_backward: out of memory");
    return HARP_OK;
}

harp_status harp_rot_butterfly_forward_batch_f32(const harp_rot *r, const float *X, int64_t rows, float *Y,
                                                 harp_rot_cache *cache) {
    HARP_TRY(bf_need(r, "butterfly_forward_batch_f32"));
    if (rows < 0 || !X || !Y) return harp_err(HARP_ERR_INVALID_ARG, "butterfly_forward_batch_f32: bad arguments");
    if (!cache) {
        if (Y != X) memcpy(Y, X, (size_t)rows * (size_t)r->n * sizeof(float));
        return harp_rot_apply(r, Y, rows, r->n, 0);
    }
    /* the cached path runs in fp64 so that forward and backward see the same numbers */
    size_t tot = (size_t)rows * (size_t)r->n;
    double *tmp = harp_xmalloc(tot * sizeof(double) + 1, "butterfly forward");
    if (!tmp) return HARP_ERR_OOM;
    for (size_t i = 0; i < tot; i++) tmp[i] = X[i];
    harp_status st = harp_rot_butterfly_forward_batch(r, tmp, rows, tmp, cache);
    if (st == HARP_OK)
        for (size_t i = 0; i < tot; i++) Y[i] = (float)tmp[i];
    free(tmp);
    return st;
}

harp_status harp_rot_butterfly_backward_f32(const harp_rot *r, const harp_rot_cache *cache, const float *dY,
                                            float *dX, double *dtheta) {
    HARP_TRY(bf_need(r, "butterfly_backward_f32"));
    if (!cache || !dY) return harp_err(HARP_ERR_INVALID_ARG, "butterfly_backward_f32: NULL cache or dY");
    size_t tot = (size_t)cache->rows * (size_t)cache->n;
    double *tmp = harp_xmalloc(tot * sizeof(double) + 1, "butterfly backward");
    if (!tmp) return HARP_ERR_OOM;
    for (size_t i = 0; i < tot; i++) tmp[i] = dY[i];
    harp_status st = harp_rot_butterfly_backward(r, cache, tmp, dX ? tmp : NULL, dtheta);
    if (st == HARP_OK && dX)
        for (size_t i = 0; i < tot; i++) dX[i] = (float)tmp[i];
    free(tmp);
    return st;
}
