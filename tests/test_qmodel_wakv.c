/* Offline rotation of a model (src/qmodel/wakv.h): a tiny random Llama/Qwen2 model (GQA, RoPE, SwiGLU,
 * optional q/k/v biases, tied embedding) written here with plain loops, run before and after
 * harp_wakv_rotate for every R1/R2 kind with R3 and R4 online, at hidden widths 64, 96, 160, 172 and 92
 * (92 has no Hadamard matrix: R1 expands it to 96, and the 46-wide FFN to 48). The forward pass is fp64
 * over the fp32 weights, so the only error is the fp32 rounding of the rotated weights and of the
 * online transforms: the logits must agree within 2e-6·max|logit| (the measured worst case is printed).
 * Also: the online R3 / R4 and the per-head R2 fusions equal their dense-matrix twins, expansion needs
 * the RMSNorm divisor of the original width, and the refusals (R3 / Hadamard R2 without a Hadamard of
 * head_dim, GSR blocks, unknown kinds). */
#include "wakv_test_fwd.h"

typedef struct cfg {
    int64_t d, ffn, vocab, hd;
    int n_layer, n_head, n_kv, bias;
} cfg;

static float *rnd(harp_rng *g, int64_t count, double mean, double sd) {
    float *p = malloc((size_t)count * sizeof *p);
    for (int64_t i = 0; i < count; i++) p[i] = (float)(mean + sd * harp_rng_normal(g));
    return p;
}

static void make_model(const cfg *c, uint64_t seed, harp_wakv_weights *w) {
    harp_rng g;
    harp_rng_seed(&g, seed);
    memset(w, 0, sizeof *w);
    w->dims = (harp_wakv_dims){c->d, c->ffn, c->vocab, c->hd, c->n_layer, c->n_head, c->n_kv};
    const int64_t qm = c->n_head * c->hd, kvm = c->n_kv * c->hd;
    const double sd = 1.0 / sqrt((double)c->d), sdf = 1.0 / sqrt((double)c->ffn), sdo = 1.0 / sqrt((double)qm);
    w->embed = rnd(&g, c->vocab * c->d, 0, 1);
    w->final_norm = rnd(&g, c->d, 1, 0.2);
    w->layers = calloc((size_t)c->n_layer, sizeof *w->layers);
    for (int l = 0; l < c->n_layer; l++) {
        harp_wakv_layer *L = &w->layers[l];
        L->attn_norm = rnd(&g, c->d, 1, 0.2);
        L->ffn_norm = rnd(&g, c->d, 1, 0.2);
        L->wq = rnd(&g, qm * c->d, 0, sd);
        L->wk = rnd(&g, kvm * c->d, 0, sd);
        L->wv = rnd(&g, kvm * c->d, 0, sd);
        L->wo = rnd(&g, c->d * qm, 0, sdo);
        if (c->bias) L->bq = rnd(&g, qm, 0, 0.1), L->bk = rnd(&g, kvm, 0, 0.1), L->bv = rnd(&g, kvm, 0, 0.1);
        L->w_gate = rnd(&g, c->ffn * c->d, 0, sd);
        L->w_up = rnd(&g, c->ffn * c->d, 0, sd);
        L->w_down = rnd(&g, c->d * c->ffn, 0, sdf);
    }
}

/* ---- exactness ---------------------------------------------------------------------------------------- */

static double worst_rel;

static void check_exact(const cfg *c, harp_wakv_rkind r1, harp_wakv_rkind r2, int r3, int r4, int gsr, uint64_t seed) {
    harp_wakv_weights w, rw;
    make_model(c, seed, &w);
    harp_wakv_rot_params p = harp_wakv_rot_params_default();
    p.r1 = r1, p.r2 = r2, p.r3 = r3, p.r4 = r4, p.gsr_block = gsr, p.seed = seed;
    harp_wakv_rots R;
    CHECK_OK(harp_wakv_rots_create(&p, &w.dims, &R));
    CHECK_OK(harp_wakv_rotate(&w, &R, &rw));
    enum { T = 7 };
    const int ids[T] = {3, 1, 4, 1, 5, 9, 2};
    double *a = malloc((size_t)(T * c->vocab) * sizeof *a), *b = malloc((size_t)(T * c->vocab) * sizeof *b);
    const wt_arch ar = {10000.0, 1e-5};
    wt_forward(&w, &ar, NULL, NULL, NULL, ids, T, a);
    if (rw.embed) wt_forward(&rw, &ar, R.r3, R.r4, NULL, ids, T, b);
    double mx = 0, e = 0;
    wt_diff(a, b, T * c->vocab, &e, &mx);
    worst_rel = fmax(worst_rel, e / mx);
    CHECK_MSG(rw.embed && e <= 2e-6 * mx, "d=%lld r1=%s r2=%s r3=%d r4=%d: max|Δlogit| %.3g (max|logit| %.3g)", (long long)c->d,
              harp_wakv_rkind_name(r1), harp_wakv_rkind_name(r2), r3, r4, e, mx);
    if (R.r1 && harp_padrot_n_pad(R.r1) != c->d) {
        /* expanded: the RMSNorm must keep the original divisor (with d' the function changes) */
        CHECK(rw.dims.d == harp_padrot_n_pad(R.r1) && rw.norm_div == c->d);
        rw.norm_div = rw.dims.d;
        wt_forward(&rw, &ar, R.r3, R.r4, NULL, ids, T, b);
        double e2 = 0, m2;
        wt_diff(a, b, T * c->vocab, &e2, &m2);
        CHECK_MSG(e2 > 1e3 * e, "expanded model with divisor d' should differ (%.3g vs %.3g)", e2, e);
    }
    if (rw.embed && c->n_layer > 1) {   /* the streaming per-layer entry point gives the same arrays */
        harp_wakv_layer L;
        CHECK_OK(harp_wakv_rotate_layer(&w.dims, &R, 1, &w.layers[1], &L));
        const int64_t d2 = rw.dims.d, qm = c->n_head * c->hd, kvm = c->n_kv * c->hd, I2 = rw.down_in;
        CHECK(L.wq && !memcmp(L.wq, rw.layers[1].wq, (size_t)(qm * d2) * 4) &&
              !memcmp(L.wv, rw.layers[1].wv, (size_t)(kvm * d2) * 4) && !memcmp(L.wo, rw.layers[1].wo, (size_t)(d2 * qm) * 4) &&
              !memcmp(L.w_down, rw.layers[1].w_down, (size_t)(d2 * I2) * 4) &&
              (!c->bias || !memcmp(L.bv, rw.layers[1].bv, (size_t)kvm * 4)));
        harp_wakv_layer_free(&L);
    }
    free(a), free(b);
    harp_wakv_weights_free(&rw);
    harp_wakv_rots_free(&R);
    wt_free(&w);
}

static void test_exactness(void) {
    static const cfg A = {96, 160, 67, 32, 2, 3, 1, 0};     /* R1 had12⊗H8, R4 had20⊗H8, MQA */
    static const cfg B = {160, 172, 61, 32, 2, 5, 5, 1};    /* R1 had20⊗H8, R4 Williamson 172, q/k/v biases */
    static const cfg C = {172, 96, 53, 43, 1, 4, 2, 0};     /* R1 Williamson 172, head_dim 43 (no R3) */
    static const cfg D = {92, 46, 50, 4, 2, 23, 1, 1};      /* R1 92 → 96, R4 46 → 48 (expansion) */
    static const cfg E = {64, 172, 40, 16, 2, 4, 2, 0};     /* powers of two, stories260K-like FFN */
    const harp_wakv_rkind kinds[] = {HARP_WAKV_ROT_NONE, HARP_WAKV_ROT_RANDOM, HARP_WAKV_ROT_HADAMARD, HARP_WAKV_ROT_GSR};
    uint64_t seed = 10;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            check_exact(&A, kinds[i], kinds[j], 1, 1, 0, seed++);
            check_exact(&B, kinds[i], kinds[j], 1, 1, 0, seed++);
            check_exact(&E, kinds[i], kinds[j], 1, 1, 16, seed++);
        }
    for (int i = 0; i < 4; i++) {
        check_exact(&C, kinds[i], HARP_WAKV_ROT_RANDOM, 0, 1, 0, seed++);
        check_exact(&D, kinds[i], HARP_WAKV_ROT_HADAMARD, 1, 1, 0, seed++);
    }
    check_exact(&B, HARP_WAKV_ROT_HADAMARD, HARP_WAKV_ROT_HADAMARD, 0, 0, 0, seed++);   /* offline only */
    printf("worst max|Δlogit| / max|logit| over all configurations: %.3g\n", worst_rel);
}

/* ---- online transforms and per-head fusions against dense twins ---------------------------------------- */

static void test_online_twins(void) {
    static const int64_t hds[] = {16, 32, 64, 128, 96}, ffns[] = {172, 160, 96, 640, 896, 3584, 46, 1536};
    for (size_t i = 0; i < sizeof hds / sizeof hds[0]; i++) {
        harp_padrot *R3 = NULL;
        CHECK_OK(harp_padrot_hadamard(hds[i], 0, 0, 0, "R3", &R3));
        const int heads = 3, rows = 4;
        const int64_t ld = heads * hds[i] + 5;
        float *X = malloc((size_t)(rows * ld) * sizeof *X), *Y = malloc((size_t)(rows * ld) * sizeof *Y);
        harp_rng g;
        harp_rng_seed(&g, (uint64_t)i);
        for (int64_t k = 0; k < rows * ld; k++) X[k] = (float)harp_rng_normal(&g);
        memcpy(Y, X, (size_t)(rows * ld) * sizeof *X);
        CHECK_OK(harp_wakv_r3_apply(R3, X, rows, ld, heads));
        float *ref = malloc((size_t)hds[i] * sizeof *ref);
        double e = 0;
        for (int r = 0; r < rows; r++)
            for (int h = 0; h < heads; h++) {
                CHECK_OK(harp_padrot_fwd_ref(R3, Y + r * ld + h * hds[i], hds[i], ref, hds[i], 1));
                for (int64_t k = 0; k < hds[i]; k++) e = fmax(e, fabs((double)ref[k] - X[r * ld + h * hds[i] + k]));
            }
        CHECK_MSG(e < 2e-5, "R3 hd=%lld vs dense twin: %.3g", (long long)hds[i], e);
        free(X), free(Y), free(ref);
        harp_padrot_destroy(R3);
    }
    for (size_t i = 0; i < sizeof ffns / sizeof ffns[0]; i++) {
        harp_padrot *R4 = NULL;
        CHECK_OK(harp_padrot_hadamard(ffns[i], 1, 0, 0, "R4", &R4));
        const int64_t n = ffns[i], np = harp_padrot_n_pad(R4), rows = 3;
        float *X = malloc((size_t)(rows * n) * sizeof *X), *Y = malloc((size_t)(rows * np) * sizeof *Y);
        float *Z = malloc((size_t)(rows * np) * sizeof *Z);
        harp_rng g;
        harp_rng_seed(&g, 100 + i);
        for (int64_t k = 0; k < rows * n; k++) X[k] = (float)harp_rng_normal(&g);
        CHECK_OK(harp_wakv_r4_apply(R4, X, n, Y, np, rows));
        CHECK_OK(harp_padrot_fwd_ref(R4, X, n, Z, np, rows));
        double e = 0;
        for (int64_t k = 0; k < rows * np; k++) e = fmax(e, fabs((double)Y[k] - Z[k]));
        CHECK_MSG(e < 4e-5, "R4 I=%lld vs dense twin: %.3g", (long long)n, e);
        free(X), free(Y), free(Z);
        harp_padrot_destroy(R4);
    }
    /* per-head R2 fusions against explicit dense products */
    const int heads = 3;
    const int64_t hd = 12, k = 5, m = 4;
    harp_padrot *R2 = NULL;
    CHECK_OK(harp_padrot_hadamard(hd, 0, 1, 3, "R2", &R2));
    double R[144];
    CHECK_OK(harp_padrot_dense(R2, R));
    float Wv[36 * 5], Wv0[36 * 5], bv[36], bv0[36], Wo[4 * 36], Wo0[4 * 36];
    harp_rng g;
    harp_rng_seed(&g, 5);
    for (int i = 0; i < 36 * 5; i++) Wv[i] = Wv0[i] = (float)harp_rng_normal(&g);
    for (int i = 0; i < 36; i++) bv[i] = bv0[i] = (float)harp_rng_normal(&g);
    for (int i = 0; i < 4 * 36; i++) Wo[i] = Wo0[i] = (float)harp_rng_normal(&g);
    CHECK_OK(harp_wakv_rot_heads_out(R2, Wv, bv, heads, k));
    CHECK_OK(harp_wakv_rot_heads_in(R2, Wo, m, heads));
    double ev = 0, eb = 0, eo = 0;
    for (int h = 0; h < heads; h++) {
        for (int64_t i = 0; i < hd; i++) {
            for (int64_t j = 0; j < k; j++) {   /* (R2ᵀ W_h)[i][j] = Σ_a R[a][i] W_h[a][j] */
                double s = 0;
                for (int64_t a = 0; a < hd; a++) s += R[a * hd + i] * Wv0[(h * hd + a) * k + j];
                ev = fmax(ev, fabs(s - Wv[(h * hd + i) * k + j]));
            }
            double s = 0;
            for (int64_t a = 0; a < hd; a++) s += bv0[h * hd + a] * R[a * hd + i];
            eb = fmax(eb, fabs(s - bv[h * hd + i]));
        }
        for (int64_t r = 0; r < m; r++)
            for (int64_t i = 0; i < hd; i++) {   /* (W_h R2)[r][i] */
                double s = 0;
                for (int64_t a = 0; a < hd; a++) s += Wo0[r * heads * hd + h * hd + a] * R[a * hd + i];
                eo = fmax(eo, fabs(s - Wo[r * heads * hd + h * hd + i]));
            }
    }
    CHECK_MSG(ev < 1e-5 && eb < 1e-5 && eo < 1e-5, "R2 fusions vs dense: v %.3g, bias %.3g, o %.3g", ev, eb, eo);
    harp_padrot_destroy(R2);
}

static void test_refusals(void) {
    harp_set_log_level(HARP_LOG_NONE);
    harp_wakv_dims dm = {172, 96, 53, 43, 1, 4, 2};
    harp_wakv_rot_params p = harp_wakv_rot_params_default();
    harp_wakv_rots R;
    p.r2 = HARP_WAKV_ROT_RANDOM;   /* R3 on a 43-wide head */
    CHECK(harp_wakv_rots_create(&p, &dm, &R) == HARP_ERR_UNSUPPORTED && strstr(harp_last_error(), "R3"));
    p.r3 = 0, p.r2 = HARP_WAKV_ROT_HADAMARD;   /* Hadamard R2 on a 43-wide head */
    CHECK(harp_wakv_rots_create(&p, &dm, &R) == HARP_ERR_UNSUPPORTED && strstr(harp_last_error(), "R2"));
    p.r2 = HARP_WAKV_ROT_GSR;   /* no Walsh block for an odd head */
    CHECK(harp_wakv_rots_create(&p, &dm, &R) == HARP_ERR_UNSUPPORTED && strstr(harp_last_error(), "R2"));
    p.r2 = HARP_WAKV_ROT_NONE, p.r1 = HARP_WAKV_ROT_GSR, p.gsr_block = 128;   /* 128 does not divide 172 */
    CHECK(harp_wakv_rots_create(&p, &dm, &R) == HARP_ERR_INVALID_ARG && strstr(harp_last_error(), "gsr-block 128"));
    p.gsr_block = 24;
    CHECK(harp_wakv_rots_create(&p, &dm, &R) == HARP_ERR_INVALID_ARG);
    p.gsr_block = 0;   /* default: largest power of two ≤ 128 dividing 172 = 4 */
    CHECK_OK(harp_wakv_rots_create(&p, &dm, &R));
    harp_wakv_rots_free(&R);
    harp_wakv_dims dx = {92, 46, 10, 4, 1, 23, 1};
    p = harp_wakv_rot_params_default();
    p.r1_expand = 0;   /* 92 has no Hadamard: refused without expansion, 96 with it */
    CHECK(harp_wakv_rots_create(&p, &dx, &R) == HARP_ERR_UNSUPPORTED && strstr(harp_last_error(), "R1"));
    p.r1_expand = 1;
    CHECK_OK(harp_wakv_rots_create(&p, &dx, &R));
    CHECK(harp_padrot_n_pad(R.r1) == 96 && harp_padrot_n_pad(R.r4) == 48);
    harp_wakv_rots_free(&R);
    harp_wakv_rkind k;
    CHECK(harp_wakv_rkind_parse("hadamard", &k) == HARP_OK && k == HARP_WAKV_ROT_HADAMARD);
    CHECK(harp_wakv_rkind_parse("butterfly", &k) == HARP_ERR_INVALID_ARG && strstr(harp_last_error(), "butterfly"));
    harp_clear_error();
    harp_set_log_level(HARP_LOG_WARN);
}

int main(void) {
    test_refusals();
    test_online_twins();
    test_exactness();
    return t_done();
}
