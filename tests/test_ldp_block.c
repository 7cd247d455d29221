/* LDP fit (b) (quant/ldp_block.c) on a synthetic block: starting from fit (a) of every linear (its
 * Hessian from the block's own activations), the block loss goes down, the levels stay ordered and
 * fp16-exact, the returned state scores the reported loss, and the result is bit-identical across
 * runs and thread counts; with K = 0 the codes stay fit (a)'s; the loss gradient w.r.t. the LDP
 * parameters matches finite differences. */
#include <omp.h>
#include <stdint.h>

#include "core/core.h"
#include "harp/quant.h"
#include "quant/ldp.h"
#include "test_util.h"

static uint64_t rng = 0x243F6A8885A308D3ull;
static double urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 4503599627370496.0 - 1.0;
}

enum { G = 12 }; /* group size: ragged against the widths 32 and 44 */
static double inv[4];
/* slice scales: the folder's weight is scale · level (o and up scaled to exercise it) */
static const double scl[HARP_BLK_NLIN] = {1.0, 1.0, 1.0, 0.5, 1.0, 2.0, 1.0};
static const harp_blk_dims dm = {32, 4, 2, 8, 44, 11, 4, HARP_ROPE_HALF, 1e-5, inv};

typedef struct {
    uint8_t *q[HARP_BLK_NLIN];
    float *lv[HARP_BLK_NLIN];
} lstate;

/* Fit (a) of every linear on H = AᵀA / rows of its input activations in the FP block. */
static void fit_a(const harp_blk_w *w, const harp_blk_cache *c, lstate *s) {
    const double *act[HARP_BLK_NLIN] = {c->h1, c->h1, c->h1, c->ctx, c->h2, c->h2, c->a};
    const int64_t R = (int64_t)dm.T * dm.nseq;
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(&dm, i, &m, &n);
        double *H = calloc((size_t)(n * n), sizeof *H);
        float *W = malloc((size_t)(m * n) * sizeof *W);
        for (int64_t r = 0; r < R; r++)
            for (int64_t a = 0; a < n; a++)
                for (int64_t b = 0; b < n; b++) H[a * n + b] += act[i][r * n + a] * act[i][r * n + b] / (double)R;
        for (int64_t k = 0; k < m * n; k++) W[k] = (float)(w->lin[i][k] / scl[i]);
        harp_quant_params p = harp_quant_default_params(HARP_QMETHOD_LDP, 2);
        p.group_size = G;
        harp_qtensor t;
        CHECK_OK(harp_quantize_linear(&p, m, n, W, H, "synthetic", &t));
        s->q[i] = malloc((size_t)(m * n));
        s->lv[i] = malloc((size_t)(m * t.n_groups * 4) * sizeof(float));
        harp_ldp_unpack(n, t.n_groups, 0, m, t.planes[QT_LDP_QWEIGHT].data, t.planes[QT_LDP_LEVELS].data, s->q[i], s->lv[i]);
        harp_qtensor_free(&t);
        free(H), free(W);
    }
}

static void copy_state(const lstate *a, lstate *b, harp_ldpb_lin *lin) {
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(&dm, i, &m, &n);
        const size_t nl = (size_t)(m * ((n + G - 1) / G) * 4);
        b->q[i] = malloc((size_t)(m * n)), b->lv[i] = malloc(nl * sizeof(float));
        memcpy(b->q[i], a->q[i], (size_t)(m * n)), memcpy(b->lv[i], a->lv[i], nl * sizeof(float));
        lin[i] = (harp_ldpb_lin){G, scl[i], b->q[i], b->lv[i]};
    }
}

static void free_state(lstate *s) {
    for (int i = 0; i < HARP_BLK_NLIN; i++) free(s->q[i]), free(s->lv[i]);
}

/* Block loss of a state on the sequences of dims d, recomputed here from the dequantized weights. */
static double loss_on(const harp_blk_dims *d, const harp_blk_w *fp, const lstate *s, const double *X, const double *Y,
                      harp_blk_cache *c) {
    harp_blk_w w;
    CHECK_OK(harp_blk_w_alloc(&dm, &w));
    memcpy(w.attn_norm, fp->attn_norm, sizeof(double) * dm.d), memcpy(w.ffn_norm, fp->ffn_norm, sizeof(double) * dm.d);
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(&dm, i, &m, &n);
        const int64_t ng = (n + G - 1) / G;
        for (int64_t r = 0; r < m; r++)
            for (int64_t k = 0; k < n; k++) w.lin[i][r * n + k] = scl[i] * s->lv[i][4 * (r * ng + k / G) + s->q[i][r * n + k]];
    }
    harp_blk_forward(d, &w, X, c);
    double e = 0, nrm = 0;
    for (size_t k = 0; k < (size_t)d->T * d->nseq * d->d; k++)
        e += (c->y[k] - Y[k]) * (c->y[k] - Y[k]), nrm += (Y[k] - X[k]) * (Y[k] - X[k]);
    harp_blk_w_free(&w);
    return e / nrm;
}

static double loss_of(const harp_blk_w *fp, const lstate *s, const double *X, const double *Y, harp_blk_cache *c) {
    return loss_on(&dm, fp, s, X, Y, c);
}

static int ordered_f16(const lstate *s) {
    int ok = 1;
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(&dm, i, &m, &n);
        for (int64_t k = 0; k < m * ((n + G - 1) / G) * 4; k++) {
            const float v = s->lv[i][k];
            ok &= harp_f16_to_f32(harp_f32_to_f16(v)) == v && (k % 4 == 0 || v >= s->lv[i][k - 1]);
        }
    }
    return ok;
}

static int same_state(const lstate *a, const lstate *b) {
    int same = 1;
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(&dm, i, &m, &n);
        same &= !memcmp(a->q[i], b->q[i], (size_t)(m * n)) &&
                !memcmp(a->lv[i], b->lv[i], (size_t)(m * ((n + G - 1) / G) * 4) * sizeof(float));
    }
    return same;
}

/* dL/dθ of fit (b)'s loss (harp_ldpb_loss) against fourth-order central differences in fp64, every
 * 7th parameter of every linear (7 is prime to the 5 of a group: β, α and every φ are hit),
 * at θ off fit (a)'s levels (random φ), within 1e-6 relative (floor 1e-6 of the largest component). */
static void grad_test(const harp_blk_w *w, const lstate *a, const double *X, const double *Y) {
    lstate s;
    harp_ldpb_lin lin[HARP_BLK_NLIN];
    copy_state(a, &s, lin);
    double *th[HARP_BLK_NLIN], *gr[HARP_BLK_NLIN];
    int64_t np[HARP_BLK_NLIN];
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(&dm, i, &m, &n);
        np[i] = m * ((n + G - 1) / G) * HARP_LDP_NPARAM;
        th[i] = malloc((size_t)np[i] * sizeof(double)), gr[i] = malloc((size_t)np[i] * sizeof(double));
        for (int64_t k = 0; k < np[i]; k += HARP_LDP_NPARAM) {
            const float *lv = s.lv[i] + 4 * (k / HARP_LDP_NPARAM);
            th[i][k] = lv[0], th[i][k + 1] = lv[3];
            for (int j = 2; j < HARP_LDP_NPARAM; j++) th[i][k + j] = urand();
        }
    }
    double L, gmax = 0, worst = 0;
    CHECK_OK(harp_ldpb_loss(&dm, w, X, Y, lin, th, gr, &L));
    for (int i = 0; i < HARP_BLK_NLIN; i++)
        for (int64_t k = 0; k < np[i]; k++) gmax = fmax(gmax, fabs(gr[i][k]));
    int n_checked = 0;
    for (int i = 0; i < HARP_BLK_NLIN; i++)
        for (int64_t k = i; k < np[i]; k += 7, n_checked++) {
            const double p0 = th[i][k], h = 3e-3 * fmax(1.0, fabs(p0)); /* rounding noise ∝ 1/h, truncation ∝ h⁴ */
            double f[4];
            for (int j = 0; j < 4; j++) {
                th[i][k] = p0 + (j < 2 ? (2 - j) * h : -(j - 1) * h);
                CHECK_OK(harp_ldpb_loss(&dm, w, X, Y, lin, th, NULL, &f[j]));
            }
            th[i][k] = p0;
            const double fd = (8.0 * (f[1] - f[2]) - (f[0] - f[3])) / (12.0 * h);
            worst = fmax(worst, fabs(fd - gr[i][k]) / fmax(fabs(gr[i][k]), 1e-6 * gmax));
        }
    printf("fit (b) loss %.6g: dL/dtheta vs central differences, %d parameters, worst relative difference %.3g\n", L, n_checked,
           worst);
    CHECK_MSG(worst <= 1e-6 && gmax > 0, "dL/dtheta: worst relative difference %.3g", worst);
    for (int i = 0; i < HARP_BLK_NLIN; i++) free(th[i]), free(gr[i]);
    free_state(&s);
}

int main(void) {
    harp_set_log_level(HARP_LOG_NONE);
    for (int i = 0; i < 4; i++) inv[i] = pow(10000.0, -2.0 * i / 8.0);
    harp_blk_w w;
    harp_blk_cache c;
    CHECK_OK(harp_blk_w_alloc(&dm, &w));
    CHECK_OK(harp_blk_cache_alloc(&dm, &c));
    const size_t len = (size_t)dm.T * dm.nseq * dm.d;
    double *X = malloc(len * sizeof *X), *Y = malloc(len * sizeof *Y);
    for (size_t k = 0; k < len; k++) X[k] = urand() * (k % 7 == 0 ? 3.0 : 1.0);
    for (int j = 0; j < dm.d; j++) w.attn_norm[j] = 1.0 + 0.2 * urand(), w.ffn_norm[j] = 1.0 + 0.2 * urand();
    for (int i = 0; i < HARP_BLK_NLIN; i++) {
        int64_t m, n;
        harp_blk_lin_shape(&dm, i, &m, &n);
        for (int64_t k = 0; k < m * n; k++) w.lin[i][k] = urand() * urand() * 2.0 / sqrt((double)n);
    }
    harp_blk_forward(&dm, &w, X, &c);
    memcpy(Y, c.y, len * sizeof *Y);
    lstate a;
    fit_a(&w, &c, &a);
    const double La = loss_of(&w, &a, X, Y, &c);
    grad_test(&w, &a, X, Y);

    const harp_ldpb_params par[2] = {{60, 0.01, 0, 0, NULL, NULL, NULL, 0}, {60, 0.01, 20, 0, NULL, NULL, NULL, 0}};
    for (int v = 0; v < 2; v++) {
        lstate s1, s2, s3;
        harp_ldpb_lin l1[HARP_BLK_NLIN], l2[HARP_BLK_NLIN], l3[HARP_BLK_NLIN];
        copy_state(&a, &s1, l1), copy_state(&a, &s2, l2), copy_state(&a, &s3, l3);
        harp_ldpb_report r1, r2, r3;
        omp_set_num_threads(1);
        CHECK_OK(harp_ldpb_fit(&dm, &w, X, Y, l1, &par[v], &r1));
        CHECK_OK(harp_ldpb_fit(&dm, &w, X, Y, l2, &par[v], &r2));
        omp_set_num_threads(2);
        CHECK_OK(harp_ldpb_fit(&dm, &w, X, Y, l3, &par[v], &r3));
        const double L1 = loss_of(&w, &s1, X, Y, &c);
        printf("K %d: block loss fit (a) %.6g, fit (b) %.6g (best step %d), recomputed %.6g\n", par[v].reassign_every, r1.loss0,
               r1.loss_best, r1.best_step, L1);
        CHECK_MSG(fabs(r1.loss0 - La) <= 1e-12 * La, "entry loss %.17g vs %.17g", r1.loss0, La);
        CHECK_MSG(r1.loss_best < 0.8 * r1.loss0, "loss %.6g -> %.6g: not 20 %% lower", r1.loss0, r1.loss_best);
        CHECK_MSG(fabs(L1 - r1.loss_best) <= 1e-12 * L1, "returned state scores %.17g, report says %.17g", L1, r1.loss_best);
        CHECK(ordered_f16(&s1));
        CHECK(same_state(&s1, &s2) && r1.loss_best == r2.loss_best);
        CHECK(same_state(&s1, &s3) && r1.loss_best == r3.loss_best);
        if (v == 0) {
            int same = 1;
            for (int i = 0; i < HARP_BLK_NLIN; i++) {
                int64_t m, n;
                harp_blk_lin_shape(&dm, i, &m, &n);
                same &= !memcmp(s1.q[i], a.q[i], (size_t)(m * n));
            }
            CHECK_MSG(same, "K = 0 changed codes");
        }
        free_state(&s1), free_state(&s2), free_state(&s3);
    }
    /* one of the 4 sequences held out: candidates are chosen on it (the entry state is one) */
    {
        lstate s1, s2;
        harp_ldpb_lin l1[HARP_BLK_NLIN], l2[HARP_BLK_NLIN];
        copy_state(&a, &s1, l1), copy_state(&a, &s2, l2);
        const harp_ldpb_params pv = {60, 0.01, 0, 1, NULL, NULL, NULL, 0};
        harp_ldpb_report r1, r2;
        CHECK_OK(harp_ldpb_fit(&dm, &w, X, Y, l1, &pv, &r1));
        CHECK_OK(harp_ldpb_fit(&dm, &w, X, Y, l2, &pv, &r2));
        harp_blk_dims d1 = dm;
        d1.nseq = 1;
        harp_blk_cache c1;
        CHECK_OK(harp_blk_cache_alloc(&d1, &c1));
        const size_t off = (size_t)3 * dm.T * dm.d;
        const double L0 = loss_on(&d1, &w, &a, X + off, Y + off, &c1), L1 = loss_on(&d1, &w, &s1, X + off, Y + off, &c1);
        printf("held-out sequence: block loss fit (a) %.6g, fit (b) %.6g (best step %d)\n", r1.loss0, r1.loss_best, r1.best_step);
        CHECK_MSG(fabs(r1.loss0 - L0) <= 1e-12 * L0 && fabs(r1.loss_best - L1) <= 1e-12 * L1 && L1 <= L0,
                  "held-out losses %.17g -> %.17g, recomputed %.17g -> %.17g", r1.loss0, r1.loss_best, L0, L1);
        CHECK(ordered_f16(&s1) && same_state(&s1, &s2));
        const harp_ldpb_params bad = {60, 0.01, 0, 4, NULL, NULL, NULL, 0};
        CHECK(harp_ldpb_fit(&dm, &w, X, Y, l2, &bad, &r2) == HARP_ERR_INVALID_ARG);
        harp_blk_cache_free(&c1);
        free_state(&s1), free_state(&s2);
    }
    /* levels not in order are refused */
    lstate s;
    harp_ldpb_lin l[HARP_BLK_NLIN];
    copy_state(&a, &s, l);
    s.lv[HARP_BLK_O][1] = s.lv[HARP_BLK_O][3] + 1.0f;
    harp_ldpb_report r;
    CHECK(harp_ldpb_fit(&dm, &w, X, Y, l, &par[0], &r) == HARP_ERR_INVALID_ARG);
    free_state(&s), free_state(&a);
    free(X), free(Y);
    harp_blk_cache_free(&c), harp_blk_w_free(&w);
    return t_done();
}
