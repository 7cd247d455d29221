/* Prefill's weight fold (decode.h, dec_fold_weights; src/cuda/dec_fold.cu).
 *
 * CPU (CI): dec_xform_transpose is the adjoint of its transform (⟨T x, y⟩ = ⟨x, Tᵀ y⟩ to 1e-12 relative)
 * and transposing twice gives T back bit for bit, for RHT at widths with Had_K (172, 1536), the HARP
 * butterfly (both schedules), GSR and Kronecker (gather and scatter); the twin dec_fold_ref's
 * W_eff·x equals dec_linear_ref(x) (relative L2 ≤ 1e-5: the twin's split fp16 input) for E8P2, RVQ3,
 * INT4, F16 and LDP2 tensors with RHT / butterfly transforms, signs and slice scales.
 *
 * With "gpu" (label gpu; exit 77 without a CUDA build or a device): dec_rows_split against the identity
 * pass of the stage engine (plain, SwiGLU and attention-combine rows bit-identical, RMSNorm rows within 1e-6);
 * dec_fold_weights' W_eff (h + lo, rows [h | h | lo])
 * against dec_fold_ref with fp16-rounded W̃ (relative RMS ≤ 1e-4: the dequantized rows are fp16(W̃)
 * within one fp16 ulp, the rest is fp32 against double), bit-identical on a rerun; dec_linear_run with
 * the fold forced against the unfolded device path (relative RMS ≤ 1e-5: both carry input and weights
 * to ~2^-22 from the same fp16 W̃) and against the twin W_eff·x (W_eff of dec_fold_ref, exact W̃; ≤ 2e-3,
 * the prefill tolerance of test_dec_gpu), with RMSNorm input, = and +=, at 9, 37 and 300 rows (and 1, 3, 5: the decode GEMV, which
 * folds nothing), a DEC_LIN_FOLD_READY run (weights folded before the call) bit-identical to the folding one; types E8P2, RVQ4,
 * INT4 and LDP2 (its own GEMV and dequantizer, dec_ldp.cu); and the default rule
 * (rows·(m + n) > 2·m·n). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cuda/decode.h"
#include "dec_test_util.h"
#include "harp/cuda_eval.h"
#include "test_util.h"

static double dot(const double *a, const double *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}


static void check_transpose_rot(harp_rot_kind kind, int64_t n, const harp_rot_params *p, uint64_t seed, const char *what) {
    harp_rot *r = NULL;
    CHECK_OK(harp_rot_create(kind, n, p, seed, &r));
    if (!r) return;
    harp_rng rng;
    harp_rng_seed(&rng, seed);
    double *x = malloc(sizeof(double) * n), *y = malloc(sizeof(double) * n), *tx = malloc(sizeof(double) * n),
           *ty = malloc(sizeof(double) * n), *tmp = malloc(sizeof(double) * 2 * n);
    for (int tr = 0; tr < 2; tr++) {
        dec_xform xf, xt, xtt;
        const int8_t *s = NULL;
        CHECK_OK(dec_xform_from_rot(r, tr, &xf, &s));
        CHECK_OK(dec_xform_transpose(&xf, &xt));
        CHECK_OK(dec_xform_transpose(&xt, &xtt));
        for (int64_t i = 0; i < n; i++) x[i] = tx[i] = harp_rng_normal(&rng), y[i] = ty[i] = harp_rng_normal(&rng);
        dec_xform_apply_ref(&xf, tx, tmp);
        dec_xform_apply_ref(&xt, ty, tmp);
        const double a = dot(tx, y, n), b = dot(x, ty, n);
        CHECK_MSG(fabs(a - b) <= 1e-12 * sqrt(dot(x, x, n) * dot(y, y, n)), "%s n=%lld transpose %d: <Tx,y> %.17g vs <x,T'y> %.17g",
                  what, (long long)n, tr, a, b);
        /* twice transposed: the same transform */
        memcpy(ty, x, sizeof(double) * n);
        dec_xform_apply_ref(&xtt, ty, tmp);
        CHECK_MSG(!memcmp(tx, ty, sizeof(double) * n), "%s n=%lld transpose %d: (T')' differs from T", what, (long long)n, tr);
        dec_xform_free(&xf), dec_xform_free(&xt), dec_xform_free(&xtt);
    }
    free(x), free(y), free(tx), free(ty), free(tmp);
    harp_rot_destroy(r);
}

static void test_transpose(void) {
    static const int64_t widths[] = {172, 1536, 512};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        check_transpose_rot(HARP_ROT_RHT, widths[i], NULL, 5, "rht");
        for (int sched = 0; sched < 2; sched++) {
            harp_rot_params p;
            harp_rot_params_default(&p);
            p.theta_init_scale = 0.3;
            p.schedule = sched ? HARP_BF_SCHEDULE_HADAMARD : HARP_BF_SCHEDULE_GREEDY;
            check_transpose_rot(HARP_ROT_BUTTERFLY, widths[i], &p, 7, sched ? "butterfly (hadamard schedule)" : "butterfly");
        }
    }
    harp_rot_params p;
    harp_rot_params_default(&p);
    p.gsr_signs = 1;
    check_transpose_rot(HARP_ROT_GSR, 1024, &p, 9, "gsr");
    check_transpose_rot(HARP_ROT_KRON, 96, NULL, 4, "kron");
}

/* W_eff·x (dec_fold_ref) against dec_linear_ref. */
static void test_twin(void) {
    static const harp_qtype types[] = {HARP_QTYPE_E8P2, HARP_QTYPE_RVQ3, HARP_QTYPE_INT4, HARP_QTYPE_F16, HARP_QTYPE_LDP2};
    static const int64_t shapes[][2] = {{96, 172}, {40, 256}};
    double worst = 0;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (size_t si = 0; si < 2; si++)
            for (int rot = 0; rot < 3; rot++) {
                const int64_t m = shapes[si][0], n = shapes[si][1];
                harp_qtensor t;
                dec_linear L;
                if (make_linear(types[ti], HARP_TCODE_HYB, m, n, rot, 300 + ti * 10 + si, "fold twin", &t, &L)) continue;
                const int rows = 3;
                harp_rng rng;
                harp_rng_seed(&rng, 11);
                float *X = malloc(sizeof(float) * rows * n), *Y = malloc(sizeof(float) * rows * m), *Yf = malloc(sizeof(float) * rows * m),
                      *W = malloc(sizeof(float) * m * n);
                for (int64_t i = 0; i < rows * n; i++) X[i] = (float)harp_rng_normal(&rng);
                CHECK_OK(dec_linear_ref(&L, X, rows, Y));
                CHECK_OK(dec_fold_ref(&L, 0, W));
                for (int r = 0; r < rows; r++)
                    for (int64_t i = 0; i < m; i++) {
                        double acc = 0;
                        for (int64_t k = 0; k < n; k++) acc += (double)W[i * n + k] * X[r * n + k];
                        Yf[r * m + i] = (float)acc;
                    }
                const double e = t_rel_rms(Yf, Y, rows * m);
                worst = fmax(worst, e);
                CHECK_MSG(e < 1e-5, "%s %lldx%lld rot %d: folded W_eff·x vs dec_linear_ref, relative L2 %.3g", harp_qtype_name(types[ti]),
                          (long long)m, (long long)n, rot, e);
                free(X), free(Y), free(Yf), free(W);
                dec_linear_free(&L);
                harp_qtensor_free(&t);
            }
    printf("fold twin: W_eff·x vs dec_linear_ref, worst relative L2 %.3g (tol 1e-5)\n", worst);
}

static int cpu_run(void) {
    harp_set_log_level(HARP_LOG_NONE);
    test_transpose();
    test_twin();
    return t_done();
}

#ifdef HARP_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "cuda/cublas_dl.h"

#define CU(x) CHECK_MSG((x) == cudaSuccess, "%s failed", #x)

static void *dev_put(const void *h, size_t bytes) {
    void *p = NULL;
    CU(cudaMalloc(&p, bytes ? bytes : 1));
    if (h && p) CU(cudaMemcpy(p, h, bytes, cudaMemcpyHostToDevice));
    return p;
}

/* A packed linear on the device, planned for max_rows, with the fold's plans. */
typedef struct {
    dec_linear_dev d;
    dec_xdev *x[3];
} dev_linear;

static harp_status dev_linear_load(const dec_linear *L, int max_rows, dev_linear *D) {
    memset(D, 0, sizeof *D);
    dec_weights host;
    memset(&host, 0, sizeof host);
    dec_xform t;
    HARP_TRY(dec_pack(&L->q, &host));
    harp_status st = dec_weights_upload(&host, &D->d.w);
    dec_weights_free(&host);
    if (!st) st = dec_xform_upload(&L->xin, max_rows, &D->x[0]);
    if (!st) st = dec_xform_upload(&L->xout, max_rows, &D->x[1]);
    if (!st) st = dec_xform_transpose(&L->xin, &t);
    if (!st) {
        st = dec_xform_upload(&t, max_rows, &D->x[2]);
        dec_xform_free(&t);
    }
    D->d.xin = D->x[0], D->d.xout = D->x[1], D->d.xin_t = D->x[2];
    D->d.pre = L->pre ? dev_put(L->pre, sizeof(float) * L->q.n) : NULL;
    D->d.post = L->post ? dev_put(L->post, sizeof(float) * L->q.m) : NULL;
    return st;
}

static void dev_linear_free(dev_linear *D) {
    for (int i = 0; i < 3; i++) dec_xform_dev_free(D->x[i]);
    cudaFree((void *)D->d.pre), cudaFree((void *)D->d.post);
    dec_weights_free(&D->d.w);
}

static double g_wf, g_vs_unfolded, g_vs_twin;

static void gpu_case(harp_qtype type, int64_t m, int64_t n, int rot, uint64_t seed, void *blas) {
    harp_qtensor t;
    dec_linear L;
    harp_status st = make_linear(type, HARP_TCODE_HYB, m, n, rot, seed, "fold gpu", &t, &L);
    if (st) return;
    const int R = 300, npad = dec_npad((int32_t)n), wide = (int)(m > n ? m : n);
    dev_linear D;
    CHECK_OK(st = dev_linear_load(&L, R, &D));
    const size_t fe = (size_t)m * npad;   /* the fold's fp32 buffer; 6·fe bytes of [h | h | lo] rows */
    void *xh = dev_put(NULL, (size_t)2 * R * npad * 2), *tile = dev_put(NULL, (size_t)64 * npad * 2), *fold_w = dev_put(NULL, fe * 6);
    float *yt = dev_put(NULL, sizeof(float) * 2 * R * m), *scr = dev_put(NULL, sizeof(float) * 2 * R * wide), *fold = dev_put(NULL, fe * 4);
    const dec_linear_ws ws = {.max_rows = R, .xh = xh, .yt = yt, .scr = scr, .tile = tile, .tile_rows = 64, .blas = blas,
                              .fold = fold, .fold_w = fold_w, .fold_elems = fe};
    /* W_eff against the twin, and a rerun */
    float *Wr = malloc(sizeof(float) * m * n), *Wg = malloc(sizeof(float) * m * n);
    uint16_t *hl = malloc(fe * 6), *hl2 = malloc(fe * 6);
    if (!st) {
        CU(cudaMemset(fold_w, 0xFF, fe * 6));
        CHECK_OK(dec_fold_weights(&D.d, &ws, NULL));
        CU(cudaMemcpy(hl, fold_w, fe * 6, cudaMemcpyDeviceToHost));
        CHECK_OK(dec_fold_weights(&D.d, &ws, NULL));
        CU(cudaMemcpy(hl2, fold_w, fe * 6, cudaMemcpyDeviceToHost));
        CHECK_MSG(!memcmp(hl, hl2, fe * 6), "%s %lldx%lld rot %d: fold rerun differs", harp_qtype_name(type), (long long)m, (long long)n, rot);
        int pad = 0, copy = 0;   /* rows [h | h | lo], zero padded */
        for (int64_t i = 0; i < m; i++) {
            const uint16_t *h = hl + i * 3 * npad;
            for (int64_t k = 0; k < n; k++) Wg[i * n + k] = harp_f16_to_f32(h[k]) + harp_f16_to_f32(h[2 * npad + k]);
            for (int64_t k = n; k < npad; k++) pad += h[k] != 0 || h[2 * npad + k] != 0;
            copy += memcmp(h, h + npad, (size_t)npad * 2) != 0;
        }
        CHECK_MSG(!copy, "%s %lldx%lld rot %d: %d rows whose two h copies differ", harp_qtype_name(type), (long long)m, (long long)n, rot, copy);
        CHECK_OK(dec_fold_ref(&L, 1, Wr));
        const double e = t_rel_rms(Wg, Wr, m * n);
        g_wf = fmax(g_wf, e);
        CHECK_MSG(e <= 1e-4 && !pad, "%s %lldx%lld rot %d: folded weights vs twin relative RMS %.3g, %d padding entries not zero",
                  harp_qtype_name(type), (long long)m, (long long)n, rot, e, pad);
    }
    /* dec_linear_run folded vs unfolded vs the twin */
    harp_rng rng;
    harp_rng_seed(&rng, seed + 3);
    float *X = malloc(sizeof(float) * R * n), *Y0 = malloc(sizeof(float) * R * m), *nw = malloc(sizeof(float) * n),
          *Yr = malloc(sizeof(float) * R * m), *Ya = malloc(sizeof(float) * R * m), *Yb = malloc(sizeof(float) * R * m),
          *Xn = malloc(sizeof(float) * R * n);
    for (int64_t i = 0; i < R * n; i++) X[i] = (float)harp_rng_normal(&rng);
    for (int64_t i = 0; i < R * m; i++) Y0[i] = (float)harp_rng_normal(&rng);
    for (int64_t i = 0; i < n; i++) nw[i] = (float)(0.5 + harp_rng_uniform(&rng));
    float *dX = dev_put(X, sizeof(float) * R * n), *dY = dev_put(NULL, sizeof(float) * R * m), *dnw = dev_put(nw, sizeof(float) * n);
    /* the twin of all R rows, with and without RMSNorm (double, harp_rmsnorm's formula): W_eff·x with W_eff
       from dec_fold_ref (exact W̃), which the CPU half checks against dec_linear_ref; the row counts below
       are prefixes */
    float *Wx = malloc(sizeof(float) * m * n), *Yt[2] = {malloc(sizeof(float) * R * m), malloc(sizeof(float) * R * m)};
    CHECK_OK(dec_fold_ref(&L, 0, Wx));
    for (int norm = 0; norm < 2; norm++)
        for (int r = 0; r < R; r++) {
            double ss = 0;
            for (int64_t k = 0; k < n; k++) ss += (double)X[r * n + k] * X[r * n + k];
            const double inv = 1.0 / sqrt(ss / (double)n + 1e-5);
            for (int64_t k = 0; k < n; k++) Xn[r * n + k] = norm ? (float)(X[r * n + k] * inv) * nw[k] : X[r * n + k];
            for (int64_t i = 0; i < m; i++) {
                double acc = 0;
                for (int64_t k = 0; k < n; k++) acc += (double)Wx[i * n + k] * Xn[r * n + k];
                Yt[norm][r * m + i] = (float)acc;
            }
        }
    static const int row_counts[] = {1, 3, 5, 9, 37, 300};   /* decode GEMV (≤ 8 rows: nothing to fold) and prefill */
    for (int ri = 0; !st && ri < 6; ri++)
        for (int norm = 0; norm < 2; norm++)
            for (int acc = 0; acc < 2; acc++) {
                const int rows = row_counts[ri];
                float *out[2] = {Ya, Yb};
                for (int f = 0; f < 2; f++) {
                    dec_set_prefill_fold(f ? 2 : 0);
                    CU(cudaMemcpy(dY, Y0, sizeof(float) * R * m, cudaMemcpyHostToDevice));
                    CHECK_OK(dec_linear_run(&D.d, dX, (int)n, rows, norm ? dnw : NULL, 1e-5f, dY, (int)m, acc, &ws, NULL));
                    CU(cudaMemcpy(out[f], dY, sizeof(float) * rows * m, cudaMemcpyDeviceToHost));
                }
                /* a caller that folded once (DEC_LIN_FOLD_READY): folded even where the default rule
                   would not fold this many rows (the caller weighed all of its rows) -- the forced-fold
                   run's bits above 8 rows; at ≤ 8 rows that run took the GEMV (dec_fold_pays never folds
                   there), so the folded product is held to the twin's bound instead (the GEMV and the
                   folded GEMM round the fp16 transforms differently: 1.4e-4 … 1.8e-4 apart at 96 × 172 on an H100) */
                dec_set_prefill_fold(1);
                CU(cudaMemcpy(dY, Y0, sizeof(float) * R * m, cudaMemcpyHostToDevice));
                CHECK_OK(dec_linear_run_mode(&D.d, DEC_LIN_FOLD_READY, dX, (int)n, rows, norm ? dnw : NULL, 1e-5f, 0, NULL, dY, (int)m, acc,
                                             &ws, NULL));
                CU(cudaMemcpy(Yr, dY, sizeof(float) * rows * m, cudaMemcpyDeviceToHost));
                if (rows > 8)
                    CHECK_MSG(!memcmp(Yr, Yb, sizeof(float) * rows * m), "%s %lldx%lld rot %d, %d rows: DEC_LIN_FOLD_READY run differs",
                              harp_qtype_name(type), (long long)m, (long long)n, rot, rows);
                if (rows <= 8) {
                    double num = 0, den = 0;
                    for (int64_t i = 0; i < rows * m; i++) {
                        const float tw = Yt[norm][i] + (acc ? Y0[i] : 0.0f);
                        num += ((double)Yr[i] - tw) * ((double)Yr[i] - tw), den += (double)tw * tw;
                    }
                    const double e3 = sqrt(num / (den > 0 ? den : 1));
                    g_vs_twin = fmax(g_vs_twin, e3);
                    CHECK_MSG(e3 <= 2e-3, "%s %lldx%lld rot %d, %d rows: DEC_LIN_FOLD_READY vs twin %.3g", harp_qtype_name(type), (long long)m,
                              (long long)n, rot, rows, e3);
                }
                for (int64_t i = 0; i < rows * m; i++) Yr[i] = Yt[norm][i] + (acc ? Y0[i] : 0.0f);
                const double e1 = t_rel_rms(Yb, Ya, rows * m), e2 = t_rel_rms(Yb, Yr, rows * m);
                g_vs_unfolded = fmax(g_vs_unfolded, e1), g_vs_twin = fmax(g_vs_twin, e2);
                CHECK_MSG(e1 <= 1e-5 && e2 <= 2e-3, "%s %lldx%lld rot %d, %d rows, norm %d, acc %d: folded vs unfolded %.3g, vs twin %.3g",
                          harp_qtype_name(type), (long long)m, (long long)n, rot, rows, norm, acc, e1, e2);
            }
    /* the default rule */
    dec_set_prefill_fold(1);
    static const int probe[] = {1, 8, 9, 100, 300, 2000, 5000};
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++)
        CHECK(dec_fold_pays(&D.d, probe[i]) == (probe[i] > 8 && (double)probe[i] * (double)(m + n) > 2.0 * (double)m * (double)n));
    free(X), free(Y0), free(nw), free(Yr), free(Ya), free(Yb), free(Xn), free(Wr), free(Wg), free(hl), free(hl2), free(Wx), free(Yt[0]), free(Yt[1]);
    cudaFree(dX), cudaFree(dY), cudaFree(dnw), cudaFree(xh), cudaFree(tile), cudaFree(fold_w), cudaFree(yt), cudaFree(scr), cudaFree(fold);
    dev_linear_free(&D);
    dec_linear_free(&L);
    harp_qtensor_free(&t);
}

/* dec_rows_split against dec_xin_split over an identity plan: plain, SwiGLU and attention-combine rows
 * bit-identical, RMSNorm rows within 1e-6 relative (h + lo; the sum of squares in another order). */
static void test_rows_split(void) {
    static const int widths[] = {172, 512, 1536}, row_counts[] = {9, 300};
    harp_rng rng;
    harp_rng_seed(&rng, 31);
    int cases = 0;
    double worst = 0;
    for (int wi = 0; wi < 3; wi++)
        for (int ri = 0; ri < 2; ri++) {
            const int n = widths[wi], rows = row_counts[ri], npad = dec_npad(n);
            const dec_attn_shape as = {n / 4 >= 64 && n % 64 == 0 ? n / 64 : 4, 1, n / 4 >= 64 && n % 64 == 0 ? 64 : n / 4, 700, 0, NULL};
            const int att_ok = as.head_dim == 64;   /* widths with a 64-wide head split */
            const size_t pf = att_ok ? (size_t)rows * as.n_heads * dec_attn_chunks(&as) * (as.head_dim + 2) : 0;
            const size_t xn = (size_t)rows * 2 * n > pf ? (size_t)rows * 2 * n : pf;
            float *hx = malloc(sizeof(float) * xn), *hn = malloc(sizeof(float) * n);
            for (size_t i = 0; i < xn; i++) hx[i] = (float)harp_rng_normal(&rng);
            for (int i = 0; i < n; i++) hn[i] = (float)(0.5 + harp_rng_uniform(&rng));
            if (att_ok)   /* partials: [m, l, o…] per chunk, l > 0 */
                for (size_t c = 0; c < pf; c += (size_t)as.head_dim + 2) hx[c + 1] = (float)(0.5 + harp_rng_uniform(&rng));
            float *dx = dev_put(hx, sizeof(float) * xn), *dn = dev_put(hn, sizeof(float) * n);
            void *o1 = dev_put(NULL, (size_t)rows * 2 * npad * 2), *o2 = dev_put(NULL, (size_t)rows * 2 * npad * 2);
            uint16_t *g1 = malloc((size_t)rows * 2 * npad * 2), *g2 = malloc((size_t)rows * 2 * npad * 2);
            dec_xform id;
            dec_xform_identity(n, &id);
            dec_xdev *xi = NULL;
            CHECK_OK(dec_xform_upload(&id, rows, &xi));
            float *scr = dev_put(NULL, sizeof(float) * 2 * rows * n);
            for (int mode = 0; xi && mode < 4; mode++) {   /* plain, norm, glu, att */
                if (mode == 3 && !att_ok) continue;
                const size_t half = (size_t)rows * npad;
                uint16_t *a1 = (uint16_t *)o1, *a2 = (uint16_t *)o2;
                CU(cudaMemset(o1, 0xFF, half * 4));
                CU(cudaMemset(o2, 0xFF, half * 4));
                if (mode == 3) {
                    CHECK_OK(dec_rows_split(dx, 0, rows, n, NULL, 0.0f, 0, &as, a1, a1 + half, npad, npad, NULL));
                    CHECK_OK(dec_xin_split_att(xi, &as, dx, rows, NULL, a2, a2 + half, npad, npad, scr, NULL));
                } else if (mode == 2) {
                    CHECK_OK(dec_rows_split(dx, 2 * n, rows, n, NULL, 0.0f, 1, NULL, a1, a1 + half, npad, npad, NULL));
                    CHECK_OK(dec_xin_split_glu(xi, dx, 2 * n, rows, NULL, a2, a2 + half, npad, npad, scr, NULL));
                } else {
                    const float *nw = mode ? dn : NULL;
                    CHECK_OK(dec_rows_split(dx, n, rows, n, nw, 1e-5f, 0, NULL, a1, a1 + half, npad, npad, NULL));
                    CHECK_OK(dec_xin_split(xi, dx, n, rows, nw, 1e-5f, NULL, a2, a2 + half, npad, npad, scr, NULL));
                }
                CU(cudaMemcpy(g1, o1, half * 4, cudaMemcpyDeviceToHost));
                CU(cudaMemcpy(g2, o2, half * 4, cudaMemcpyDeviceToHost));
                if (mode != 1) {
                    CHECK_MSG(!memcmp(g1, g2, half * 4), "rows split n %d, %d rows, mode %d: differs from the identity pass", n, rows, mode);
                } else {
                    double e = 0, r = 0;
                    for (size_t i = 0; i < half; i++) {
                        const double v1 = (double)harp_f16_to_f32(g1[i]) + harp_f16_to_f32(g1[half + i]);
                        const double v2 = (double)harp_f16_to_f32(g2[i]) + harp_f16_to_f32(g2[half + i]);
                        e += (v1 - v2) * (v1 - v2), r += v2 * v2;
                    }
                    const double rel = sqrt(e / (r > 0 ? r : 1));
                    worst = fmax(worst, rel);
                    CHECK_MSG(rel <= 1e-6, "rows split n %d, %d rows, RMSNorm: relative %.3g from the identity pass", n, rows, rel);
                }
                cases++;
            }
            dec_xform_dev_free(xi);
            dec_xform_free(&id);
            cudaFree(dx), cudaFree(dn), cudaFree(o1), cudaFree(o2), cudaFree(scr);
            free(hx), free(hn), free(g1), free(g2);
        }
    printf("rows split: %d cases vs the identity pass (plain, SwiGLU, attention combine bit-identical; RMSNorm worst %.3g, tol 1e-6)\n",
           cases, worst);
}

static int gpu_run(void) {
    test_rows_split();
    harp_set_log_level(HARP_LOG_NONE);
    cublasHandle_t h;
    CHECK(harp_cublas_create(&h) == CUBLAS_STATUS_SUCCESS);
    static const harp_qtype types[] = {HARP_QTYPE_E8P2, HARP_QTYPE_RVQ4, HARP_QTYPE_INT4, HARP_QTYPE_LDP2};
    static const int64_t shapes[][2] = {{96, 172}, {1536, 512}, {40, 256}, {512, 1536}};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int rot = 1; rot < 3; rot++) gpu_case(types[ti], shapes[si][0], shapes[si][1], rot, 700 + ti * 10 + si, h);
    dec_set_prefill_fold(1);
    harp_cublas_destroy(h);
    printf("fold on the device: W_eff vs twin worst relative RMS %.3g (tol 1e-4); dec_linear_run folded vs unfolded %.3g (tol 1e-5), "
           "vs twin %.3g (tol 2e-3)\n",
           g_wf, g_vs_unfolded, g_vs_twin);
    return t_done();
}
#endif

T_CPU_GPU_MAIN(cpu_run, gpu_run)
