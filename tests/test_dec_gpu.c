/* GPU decode kernels vs their C twins (decode.h) at awkward shapes; exit 77 without a CUDA build or
 * a device. Every output buffer is poisoned (NaN) before the launch and guarded by sentinels after
 * its end; inputs are random (never zeros). Types: every harp quant type with a GPU layout and every
 * QTIP K (2, 3, 4) and code (1mad, 3inst, hyb) on random trellis streams; one line per type states
 * the worst errors against the tolerances below.
 *
 * Tolerances (per precision):
 *  - GEMV (fp16 x, exact fp16 weight values, fp32 tensor-core accumulation vs double):
 *    |y − y_ref| ≤ 3e-5 · Σ_c |W̃[r][c]·x[c]| per row; two runs bit-identical.
 *  - input transform (fp16 output): relative RMS error per row ≤ 6e-4 with ±1 blocks (Hadamard, GSR:
 *    exact in fp16, only fp32-vs-double sums can move a rounding), ≤ 2e-3 with fp16-rounded blocks
 *    (HARP, Kronecker: each block entry is rounded to fp16, 2^-11 relative).
 *  - output transform (fp32): relative RMS ≤ 2e-6 with ±1 blocks, ≤ 2e-3 with fp16 blocks.
 *  - RoPE: |Δ| ≤ 2e-6·(1 + |x|) (CUDA vs libm sin/cos); attention: relative RMS ≤ 1e-5.
 *  - prefill (W̃ rounded to fp16 tiles, cuBLAS fp32 accumulate): relative RMS ≤ 2e-3; the dequantized
 *    tile equals fp16(W̃) within one fp16 ulp. */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "cuda/dec_synth.h"
#include "cuda/decode.h"
#include "harp/rotate.h"
#include "rotate/rot_internal.h"
#include "test_util.h"

#ifdef HARP_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "cuda/cublas_dl.h"

#define CU(x) CHECK_MSG((x) == cudaSuccess, "%s failed", #x)

static void *dev_alloc(size_t bytes) {
    void *p = NULL;
    CU(cudaMalloc(&p, bytes));
    return p;
}

static void poison(void *d, size_t bytes) { CU(cudaMemset(d, 0xFF, bytes)); }   /* NaN in fp32 and fp16 */


/* ---- GEMV ------------------------------------------------------------------------------------- */

static void test_gemv(void) {
    static const int shapes[][2] = {{17, 172}, {33, 1536}, {40, 4864}, {7, 11008}, {130, 300}, {16, 128}, {1, 8}, {300, 4096}};
    static const int types[] = {HARP_QTYPE_F16, HARP_QTYPE_INT2, HARP_QTYPE_INT3, HARP_QTYPE_INT4, HARP_QTYPE_INT8, HARP_QTYPE_E8P2,
                                HARP_QTYPE_RVQ3, HARP_QTYPE_RVQ4, DL_QTIP2_1MAD, DL_QTIP2_3INST, DL_QTIP2_HYB, DL_QTIP3_1MAD,
                                DL_QTIP3_3INST, DL_QTIP3_HYB, DL_QTIP4_1MAD, DL_QTIP4_3INST, DL_QTIP4_HYB};
    static const int batches[] = {1, 3, 8};
    harp_rng rng;
    harp_rng_seed(&rng, 77);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        double type_worst = 0, type_prefill = 0;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int m = shapes[s][0], n = shapes[s][1], npad = dec_npad(n), guard = 64;
            dec_synth sy;
            dec_weights hw, dw;
            CHECK_OK(dec_synth_planes(types[t], m, n, 1000 + s, &sy));
            CHECK_OK(dec_pack(&sy.q, &hw));
            CHECK_OK(dec_weights_upload(&hw, &dw));
            uint16_t *x = calloc((size_t)8 * npad, 2);
            float *y = malloc(sizeof(float) * ((size_t)8 * m + guard)), *y2 = malloc(sizeof(float) * 8 * (size_t)m);
            float *yr = malloc(sizeof(float) * 8 * (size_t)m), *mass = calloc((size_t)8 * m, sizeof(float));
            for (int b = 0; b < 8; b++)
                for (int c = 0; c < n; c++) x[(size_t)b * npad + c] = harp_f32_to_f16((float)harp_rng_normal(&rng));
            float *W = malloc(sizeof(float) * (size_t)m * n);   /* W̃ as stored (QTIP: the trellis decoder) */
            dec_qplanes_rows(&sy.q, 0, m, W, (size_t)n);
            for (int r = 0; r < m; r++)
                for (int c = 0; c < n; c++) {
                    const float w = W[(size_t)r * n + c];
                    for (int b = 0; b < 8; b++) mass[(size_t)b * m + r] += fabsf(w * harp_f16_to_f32(x[(size_t)b * npad + c]));
                }
            void *dx = dev_alloc((size_t)8 * npad * 2);
            float *dy = dev_alloc(sizeof(float) * ((size_t)8 * m + guard));
            CU(cudaMemcpy(dx, x, (size_t)8 * npad * 2, cudaMemcpyHostToDevice));
            dec_gemv_ref(&sy.q, x, npad, 8, yr, m);   /* rows b < B of the 8-row product are the B-row product */
            float *yc = malloc(sizeof(float) * 8 * (size_t)m);
            for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++)
                for (int wc = 0; wc < 3 * 3; wc++) {   /* 4, 8, 16 warps × (QTIP HYB) 8, 16, 32 table copies */
                    const int warps = 4 << wc / 3, hc = 8 << wc % 3;
                    if (hc > 8 && !(dl_qtip_bits(types[t]) && dl_qtip_code(types[t]) == DL_TCODE_HYB)) continue;
                    const int B = batches[bi];
                    const dec_gemv_opts o = {.warps = warps, .hyb_copies = hc};
                    poison(dy, sizeof(float) * ((size_t)8 * m + guard));
                    CHECK_OK(dec_gemv(&dw, dx, npad, B, dy, m, &o, NULL));
                    CU(cudaDeviceSynchronize());
                    CU(cudaMemcpy(y, dy, sizeof(float) * ((size_t)8 * m + guard), cudaMemcpyDeviceToHost));
                    CHECK_OK(dec_gemv(&dw, dx, npad, B, dy, m, &o, NULL));
                    CU(cudaMemcpy(y2, dy, sizeof(float) * (size_t)B * m, cudaMemcpyDeviceToHost));
                    int bad = 0, guard_bad = 0;
                    double worst = 0;
                    for (int i = 0; i < B * m; i++) {
                        const double e = fabs((double)y[i] - yr[i]) / (mass[i] + 1e-30);
                        if (!(e <= 3e-5)) bad++;
                        if (e > worst) worst = e;
                    }
                    uint32_t pz;
                    for (size_t i = (size_t)B * m; i < (size_t)8 * m + guard; i++) memcpy(&pz, &y[i], 4), guard_bad += pz != 0xFFFFFFFFu;
                    type_worst = fmax(type_worst, worst);
                    CHECK_MSG(!bad && !guard_bad, "gemv qtype %d %dx%d B=%d warps=%d copies=%d: %d rows off (worst %.3g of mass), %d writes past the end",
                              types[t], m, n, B, warps, hc, bad, worst, guard_bad);
                    CHECK_MSG(!memcmp(y, y2, sizeof(float) * (size_t)B * m), "gemv qtype %d %dx%d B=%d: two runs differ", types[t], m, n, B);
                    /* the table's copies hold the same entries: the same bits for every count */
                    if (hc == 8) memcpy(yc, y, sizeof(float) * (size_t)B * m);
                    else CHECK_MSG(!memcmp(y, yc, sizeof(float) * (size_t)B * m), "gemv qtype %d %dx%d B=%d warps=%d: %d table copies differ from 8",
                                   types[t], m, n, B, warps, hc);
                }
            free(yc);
            /* fused epilogues (split activations): fold sums rows b and b + 4 of an 8-row product,
             * accumulate adds to y; both bit-identical to the unfused composition (fp32 adds) */
            {
                float *y8 = malloc(sizeof(float) * 8 * (size_t)m);
                CHECK_OK(dec_gemv(&dw, dx, npad, 8, dy, m, NULL, NULL));
                CU(cudaMemcpy(y8, dy, sizeof(float) * 8 * (size_t)m, cudaMemcpyDeviceToHost));
                const dec_gemv_opts of = {.fold = 4}, oa = {.accumulate = 1};
                poison(dy, sizeof(float) * ((size_t)8 * m + guard));
                CHECK_OK(dec_gemv(&dw, dx, npad, 8, dy, m, &of, NULL));
                CU(cudaMemcpy(y, dy, sizeof(float) * ((size_t)8 * m + guard), cudaMemcpyDeviceToHost));
                int bad = 0, guard_bad = 0;
                for (int i = 0; i < 4 * m; i++) {
                    const float want = y8[i] + y8[i + 4 * m];
                    bad += memcmp(&want, &y[i], 4) != 0;
                }
                uint32_t pz;
                for (size_t i = (size_t)4 * m; i < (size_t)8 * m + guard; i++) memcpy(&pz, &y[i], 4), guard_bad += pz != 0xFFFFFFFFu;
                CHECK_MSG(!bad && !guard_bad, "gemv fold qtype %d %dx%d: %d of %d values differ from hi + lo, %d writes past the end",
                          types[t], m, n, bad, 4 * m, guard_bad);
                CU(cudaMemcpy(dy, y8 + 3 * m, sizeof(float) * 3 * (size_t)m, cudaMemcpyHostToDevice));
                CHECK_OK(dec_gemv(&dw, dx, npad, 3, dy, m, &oa, NULL));
                CU(cudaMemcpy(y, dy, sizeof(float) * 3 * (size_t)m, cudaMemcpyDeviceToHost));
                bad = 0;
                for (int i = 0; i < 3 * m; i++) {
                    const float want = y8[3 * m + i] + y8[i];
                    bad += memcmp(&want, &y[i], 4) != 0;
                }
                CHECK_MSG(!bad, "gemv accumulate qtype %d %dx%d: %d of %d values differ from y + W̃x", types[t], m, n, bad, 3 * m);
                const dec_gemv_opts obad = {.fold = 3};
                CHECK(dec_gemv(&dw, dx, npad, 8, dy, m, &obad, NULL) == HARP_ERR_INVALID_ARG);
                free(y8);
            }
            /* prefill: dequantized tiles + cuBLAS vs the twin, 37 rows */
            {
                const int rows = 37, tile = 64;
                cublasHandle_t h;
                CHECK(harp_cublas_create(&h) == CUBLAS_STATUS_SUCCESS);
                uint16_t *X = calloc((size_t)rows * npad, 2);
                for (int r = 0; r < rows; r++)
                    for (int c = 0; c < n; c++) X[(size_t)r * npad + c] = harp_f32_to_f16((float)harp_rng_normal(&rng));
                void *dX = dev_alloc((size_t)rows * npad * 2), *ws = dev_alloc((size_t)tile * npad * 2);
                float *dY = dev_alloc(sizeof(float) * (size_t)rows * m), *Y = malloc(sizeof(float) * (size_t)rows * m),
                      *Yr = malloc(sizeof(float) * (size_t)rows * m);
                CU(cudaMemcpy(dX, X, (size_t)rows * npad * 2, cudaMemcpyHostToDevice));
                poison(dY, sizeof(float) * (size_t)rows * m);
                CHECK_OK(dec_prefill_gemm(h, &dw, dX, npad, rows, dY, m, ws, tile, NULL));
                CU(cudaMemcpy(Y, dY, sizeof(float) * (size_t)rows * m, cudaMemcpyDeviceToHost));
                dec_gemv_ref(&sy.q, X, npad, rows, Yr, m);
                const double e = t_rel_rms(Y, Yr, (int64_t)rows * m);
                type_prefill = fmax(type_prefill, e);
                CHECK_MSG(e <= 2e-3, "prefill qtype %d %dx%d: relative RMS %.3g", types[t], m, n, e);
                /* the tile itself */
                const int r1 = m < 19 ? m : 19;
                uint16_t *T = malloc((size_t)r1 * npad * 2);
                CHECK_OK(dec_dequant_f16(&dw, 0, r1, ws, npad, NULL));
                CU(cudaMemcpy(T, ws, (size_t)r1 * npad * 2, cudaMemcpyDeviceToHost));
                int off = 0;
                for (int r = 0; r < r1; r++)
                    for (int c = 0; c < n; c++) {
                        const float ref = W[(size_t)r * n + c], got = harp_f16_to_f32(T[(size_t)r * npad + c]);
                        const float ulp = fmaxf(ldexpf(1.0f, ilogbf(fmaxf(fabsf(ref), 6.1e-5f)) - 10), 6e-8f);
                        off += !(fabsf(got - ref) <= ulp);
                    }
                CHECK_MSG(!off, "dequant qtype %d %dx%d: %d values beyond one fp16 ulp", types[t], m, n, off);
                free(T), free(X), free(Y), free(Yr);
                cudaFree(dX), cudaFree(ws), cudaFree(dY);
                harp_cublas_destroy(h);
            }
            cudaFree(dx), cudaFree(dy);
            free(x), free(y), free(y2), free(yr), free(mass), free(W);
            dec_weights_free(&dw);
            dec_weights_free(&hw);
            dec_synth_free(&sy);
        }
        printf("gemv type %2d (%s): %zu shapes 1x8 .. 300x4096, B 1/3/8, 4, 8 and 16 warps (HYB: 8, 16, 32 table copies): worst |y - twin| %.3g of row mass "
               "(tol 3e-5), reruns bit-identical; prefill worst relative RMS %.3g (tol 2e-3)\n",
               types[t], dl_qtip_bits(types[t]) ? "qtip" : harp_qtype_name((harp_qtype)types[t]), sizeof shapes / sizeof shapes[0],
               type_worst, type_prefill);
    }
}

/* ---- transforms --------------------------------------------------------------------------------- */

static void check_xform(const dec_xform *xf, const char *what, double tol_in, double tol_out) {
    const int64_t n = xf->n;
    const int32_t npad = dec_npad((int32_t)n);
    static const int row_counts[] = {1, 3, 8, 9, 67};   /* > 8: the prefill plan (wide tiles) */
    harp_rng rng;
    harp_rng_seed(&rng, (uint64_t)n);
    for (size_t ri = 0; ri < sizeof row_counts / sizeof row_counts[0]; ri++) {
        const int rows = row_counts[ri];
        dec_xdev *xd = NULL;
        CHECK_OK(dec_xform_upload(xf, rows, &xd));
        if (!xd) return;
        float *x = malloc(sizeof(float) * (size_t)rows * n), *nw = malloc(sizeof(float) * n), *pre = malloc(sizeof(float) * n);
        for (int64_t i = 0; i < rows * n; i++) x[i] = (float)(3.0 * harp_rng_normal(&rng));
        for (int64_t i = 0; i < n; i++) nw[i] = (float)(0.5 + harp_rng_uniform(&rng)), pre[i] = (harp_rng_u64(&rng) >> 63) ? -1.0f : 1.0f;
        float *dxin = dev_alloc(sizeof(float) * rows * n), *dnw = dev_alloc(sizeof(float) * n), *dpre = dev_alloc(sizeof(float) * n);
        const size_t sf = dec_xform_scratch_floats(xd, rows);
        float *scr = sf ? dev_alloc(sizeof(float) * sf) : NULL;
        void *dout = dev_alloc((size_t)rows * npad * 2);
        CU(cudaMemcpy(dxin, x, sizeof(float) * rows * n, cudaMemcpyHostToDevice));
        CU(cudaMemcpy(dnw, nw, sizeof(float) * n, cudaMemcpyHostToDevice));
        CU(cudaMemcpy(dpre, pre, sizeof(float) * n, cudaMemcpyHostToDevice));
        /* input side: rmsnorm + pre + transform → fp16 */
        uint16_t *o16 = malloc((size_t)rows * npad * 2), *r16 = malloc((size_t)rows * npad * 2);
        poison(dout, (size_t)rows * npad * 2);
        CHECK_OK(dec_xin(xd, dxin, (int)n, rows, dnw, 1e-5f, dpre, dout, npad, npad, scr, NULL));
        CU(cudaMemcpy(o16, dout, (size_t)rows * npad * 2, cudaMemcpyDeviceToHost));
        dec_xin_ref(xf, x, (int)n, rows, nw, 1e-5f, pre, r16, npad, npad);
        float *a = malloc(sizeof(float) * npad), *b = malloc(sizeof(float) * npad);
        double worst = 0;
        int pad_bad = 0;
        for (int r = 0; r < rows; r++) {
            for (int32_t i = 0; i < npad; i++) a[i] = harp_f16_to_f32(o16[(size_t)r * npad + i]), b[i] = harp_f16_to_f32(r16[(size_t)r * npad + i]);
            worst = fmax(worst, t_rel_rms(a, b, n));
            for (int32_t i = (int32_t)n; i < npad; i++) pad_bad += o16[(size_t)r * npad + i] != 0;
        }
        CHECK_MSG(worst <= tol_in && !pad_bad, "%s n=%lld rows=%d input side: relative RMS %.3g (limit %.3g), %d pad entries nonzero",
                  what, (long long)n, rows, worst, tol_in, pad_bad);
        {   /* split activations: h identical to dec_xin's, h + lo as accurate as the fp32 output side */
            void *dlo = dev_alloc((size_t)rows * npad * 2), *dhi = dev_alloc((size_t)rows * npad * 2);
            poison(dlo, (size_t)rows * npad * 2);
            CHECK_OK(dec_xin_split(xd, dxin, (int)n, rows, dnw, 1e-5f, dpre, dhi, dlo, npad, npad, scr, NULL));
            uint16_t *h16 = malloc((size_t)rows * npad * 2), *l16 = malloc((size_t)rows * npad * 2);
            uint16_t *rl16 = malloc((size_t)rows * npad * 2);
            CU(cudaMemcpy(h16, dhi, (size_t)rows * npad * 2, cudaMemcpyDeviceToHost));
            CU(cudaMemcpy(l16, dlo, (size_t)rows * npad * 2, cudaMemcpyDeviceToHost));
            dec_xin_split_ref(xf, x, (int)n, rows, nw, 1e-5f, pre, r16, rl16, npad, npad);
            double ws = 0;
            int hi_diff = 0, lo_pad = 0;
            for (int r = 0; r < rows; r++) {
                for (int32_t i = 0; i < npad; i++) {
                    const size_t o = (size_t)r * npad + i;
                    hi_diff += h16[o] != o16[o];
                    a[i] = harp_f16_to_f32(h16[o]) + harp_f16_to_f32(l16[o]);
                    b[i] = harp_f16_to_f32(r16[o]) + harp_f16_to_f32(rl16[o]);
                }
                for (int32_t i = (int32_t)n; i < npad; i++) lo_pad += l16[(size_t)r * npad + i] != 0;
                ws = fmax(ws, t_rel_rms(a, b, n));
            }
            CHECK_MSG(!hi_diff && !lo_pad && ws <= tol_out, "%s n=%lld rows=%d split input: %d h differ from dec_xin, %d lo pad "
                      "nonzero, h + lo relative RMS %.3g (limit %.3g)", what, (long long)n, rows, hi_diff, lo_pad, ws, tol_out);
            cudaFree(dlo), cudaFree(dhi);
            free(h16), free(l16), free(rl16);
        }
        /* output side: transform + post, accumulate into a residual */
        float *dres = dev_alloc(sizeof(float) * rows * n), *res = malloc(sizeof(float) * rows * n), *got = malloc(sizeof(float) * rows * n);
        for (int64_t i = 0; i < rows * n; i++) res[i] = (float)harp_rng_normal(&rng);
        CU(cudaMemcpy(dres, res, sizeof(float) * rows * n, cudaMemcpyHostToDevice));
        float *res0 = malloc(sizeof(float) * rows * n);
        memcpy(res0, res, sizeof(float) * rows * n);
        CHECK_OK(dec_xout(xd, dxin, (int)n, rows, dpre, 1, dres, (int)n, scr, NULL));
        CU(cudaMemcpy(got, dres, sizeof(float) * rows * n, cudaMemcpyDeviceToHost));
        dec_xout_ref(xf, x, (int)n, rows, pre, 1, res, (int)n);
        const double eo = t_rel_rms(got, res, rows * n);
        CHECK_MSG(eo <= tol_out, "%s n=%lld rows=%d output side: relative RMS %.3g (limit %.3g)", what, (long long)n, rows, eo, tol_out);
        /* dec_set_xform_fast (identity passes over small tiles, decode rows one per CTA) and
         * dec_set_xform_stage (stage blocks, permutations and vectors fetched into shared memory before
         * the PDL wait): the results above against each switched off, bit for bit */
        static const struct {
            void (*set)(int);
            const char *name;
        } ab[] = {{dec_set_xform_fast, "fast vs planned launch shapes"}, {dec_set_xform_stage, "staged vs unstaged transform weights"}};
        for (size_t k = 0; k < sizeof ab / sizeof ab[0]; k++) {
            ab[k].set(0);
            uint16_t *s16 = malloc((size_t)rows * npad * 2);
            float *got2 = malloc(sizeof(float) * rows * n);
            poison(dout, (size_t)rows * npad * 2);
            CHECK_OK(dec_xin(xd, dxin, (int)n, rows, dnw, 1e-5f, dpre, dout, npad, npad, scr, NULL));
            CU(cudaMemcpy(s16, dout, (size_t)rows * npad * 2, cudaMemcpyDeviceToHost));
            CU(cudaMemcpy(dres, res0, sizeof(float) * rows * n, cudaMemcpyHostToDevice));
            CHECK_OK(dec_xout(xd, dxin, (int)n, rows, dpre, 1, dres, (int)n, scr, NULL));
            CU(cudaMemcpy(got2, dres, sizeof(float) * rows * n, cudaMemcpyDeviceToHost));
            ab[k].set(1);
            const int din = memcmp(s16, o16, (size_t)rows * npad * 2) != 0, dout_ = memcmp(got2, got, sizeof(float) * rows * n) != 0;
            CHECK_MSG(!din && !dout_, "%s n=%lld rows=%d %s: input side %s, output side %s", what, (long long)n, rows, ab[k].name,
                      din ? "differs" : "identical", dout_ ? "differs" : "identical");
            free(got2), free(s16);
        }
        if (rows > 8) {   /* the prefill plan against the decode plan (8 rows): the same bits */
            dec_xdev *xn = NULL;
            CHECK_OK(dec_xform_upload(xf, 8, &xn));
            const size_t sn = dec_xform_scratch_floats(xn, 8);
            float *scn = sn ? dev_alloc(sizeof(float) * sn) : NULL, *got8 = malloc(sizeof(float) * 8 * n);
            uint16_t *n16 = malloc((size_t)8 * npad * 2);
            poison(dout, (size_t)rows * npad * 2);
            CHECK_OK(dec_xin(xn, dxin, (int)n, 8, dnw, 1e-5f, dpre, dout, npad, npad, scn, NULL));
            CU(cudaMemcpy(n16, dout, (size_t)8 * npad * 2, cudaMemcpyDeviceToHost));
            CU(cudaMemcpy(dres, res0, sizeof(float) * 8 * n, cudaMemcpyHostToDevice));
            CHECK_OK(dec_xout(xn, dxin, (int)n, 8, dpre, 1, dres, (int)n, scn, NULL));
            CU(cudaMemcpy(got8, dres, sizeof(float) * 8 * n, cudaMemcpyDeviceToHost));
            const int din = memcmp(n16, o16, (size_t)8 * npad * 2) != 0, dout_ = memcmp(got8, got, sizeof(float) * 8 * n) != 0;
            CHECK_MSG(!din && !dout_, "%s n=%lld: prefill plan (%d rows) vs decode plan (8 rows): input side %s, output side %s", what,
                      (long long)n, rows, din ? "differs" : "identical", dout_ ? "differs" : "identical");
            cudaFree(scn);
            free(got8), free(n16);
            dec_xform_dev_free(xn);
        }
        {   /* dec_xout_sum(y, y2) against dec_add(y, y2) then dec_xout: the same bits */
            float *y2 = malloc(sizeof(float) * rows * n), *got2 = malloc(sizeof(float) * rows * n);
            for (int64_t i = 0; i < rows * n; i++) y2[i] = (float)harp_rng_normal(&rng);
            float *dy2 = dev_alloc(sizeof(float) * rows * n), *dsum = dev_alloc(sizeof(float) * rows * n);
            CU(cudaMemcpy(dy2, y2, sizeof(float) * rows * n, cudaMemcpyHostToDevice));
            CU(cudaMemcpy(dres, res0, sizeof(float) * rows * n, cudaMemcpyHostToDevice));
            CHECK_OK(dec_xout_sum(xd, dxin, dy2, (int)n, rows, dpre, 1, dres, (int)n, scr, NULL));
            CU(cudaMemcpy(got2, dres, sizeof(float) * rows * n, cudaMemcpyDeviceToHost));
            CU(cudaMemcpy(dsum, dxin, sizeof(float) * rows * n, cudaMemcpyDeviceToDevice));
            CHECK_OK(dec_add(dsum, dy2, (size_t)rows * n, NULL));
            CU(cudaMemcpy(dres, res0, sizeof(float) * rows * n, cudaMemcpyHostToDevice));
            CHECK_OK(dec_xout(xd, dsum, (int)n, rows, dpre, 1, dres, (int)n, scr, NULL));
            CU(cudaMemcpy(got, dres, sizeof(float) * rows * n, cudaMemcpyDeviceToHost));
            CHECK_MSG(!memcmp(got, got2, sizeof(float) * rows * n), "%s n=%lld rows=%d: dec_xout_sum differs from dec_add + dec_xout",
                      what, (long long)n, rows);
            cudaFree(dy2), cudaFree(dsum);
            free(y2), free(got2);
        }
        free(res0);
        cudaFree(dxin), cudaFree(dnw), cudaFree(dpre), cudaFree(scr), cudaFree(dout), cudaFree(dres);
        free(x), free(nw), free(pre), free(o16), free(r16), free(a), free(b), free(res), free(got);
        dec_xform_dev_free(xd);
    }
}

static void test_transforms(void) {
    static const int64_t had_n[] = {48, 172, 1536, 4096, 4864, 11008, 12288, 22016};
    for (size_t i = 0; i < sizeof had_n / sizeof had_n[0]; i++)
        for (int tr = 0; tr < 2; tr++) {
            dec_xform xf;
            CHECK_OK(dec_xform_hadamard(had_n[i], tr, &xf));
            check_xform(&xf, tr ? "hadamard^T" : "hadamard", 6e-4, 2e-6);
            dec_xform_free(&xf);
        }
    static const int64_t bf_n[] = {172, 1536, 4096, 4864, 11008, 22016};
    for (size_t i = 0; i < sizeof bf_n / sizeof bf_n[0]; i++)
        for (int tr = 0; tr < 2; tr++) {
            dec_xform xf;
            CHECK_OK(dec_synth_butterfly(bf_n[i], 5 + i, tr, &xf));
            check_xform(&xf, tr ? "butterfly^T" : "butterfly", 2e-3, 2e-3);
            dec_xform_free(&xf);
        }
    {   /* a two-pass butterfly from harp_rot (low and high stages interleave: four passes) */
        harp_rot_params p;
        harp_rot_params_default(&p);
        p.theta_init_scale = 0.3;
        p.n_passes = 2;
        harp_rot *r = NULL;
        CHECK_OK(harp_rot_create(HARP_ROT_BUTTERFLY, 1536, &p, 3, &r));
        const int *rad = NULL;
        const int T = harp_rot_butterfly_stages(r, &rad);
        dec_xform xf;
        CHECK_OK(dec_xform_butterfly(1536, 2, T, rad, (const float *const *)r->kf_can, 0, &xf));
        check_xform(&xf, "butterfly 2 passes", 2e-3, 2e-3);
        dec_xform_free(&xf);
        harp_rot_destroy(r);
    }
    for (int tr = 0; tr < 2; tr++) {
        harp_rot *r = NULL;
        CHECK_OK(harp_rot_create(HARP_ROT_KRON, 1536, NULL, 4, &r));
        dec_xform xf;
        CHECK_OK(dec_xform_kron(r->kron_p1, r->kron_p2, r->kron_a, r->kron_b, r->kron_pin, r->kron_pout, tr, &xf));
        check_xform(&xf, "kron", 2e-3, 2e-3);
        dec_xform_free(&xf);
        harp_rot_destroy(r);
        CHECK_OK(harp_rot_create(HARP_ROT_GSR, 4096, NULL, 9, &r));
        CHECK_OK(dec_xform_gsr(4096, r->group, r->walsh_perm, tr, &xf));
        check_xform(&xf, "gsr", 6e-4, 2e-6);
        dec_xform_free(&xf);
        harp_rot_destroy(r);
    }
    dec_xform id;
    dec_xform_identity(11008, &id);
    check_xform(&id, "identity", 6e-4, 2e-6);
}

/* ---- attention ------------------------------------------------------------------------------------ */

/* The o projection's input with the attention combine folded in (dec_xin_split_att on the partials ws)
 * against the combined output dout through dec_xin_split: bit-identical h and lo, for the identity and
 * the Hadamard input transform, small and wide identity tiles. */
static void check_att_fold(const dec_attn_shape *s, int B, const float *dout, const float *ws) {
    const int n = s->n_heads * s->head_dim, npad = dec_npad(n);
    const size_t hb = (size_t)B * npad * 2;
    void *h1 = dev_alloc(2 * hb), *h2 = dev_alloc(2 * hb);
    unsigned char *a = malloc(2 * hb), *b = malloc(2 * hb);
    for (int kind = 0; kind < 2; kind++)
        for (int fast = 0; fast < 2; fast++) {
            dec_xform xf;
            if (kind) CHECK_OK(dec_xform_hadamard(n, 0, &xf));
            else dec_xform_identity(n, &xf);
            dec_xdev *xd = NULL;
            CHECK_OK(dec_xform_upload(&xf, B, &xd));
            dec_xform_free(&xf);
            if (!xd) break;
            const size_t sf = dec_xform_scratch_floats(xd, B);
            float *scr = sf ? dev_alloc(sizeof(float) * sf) : NULL;
            dec_set_xform_fast(fast);
            poison(h1, 2 * hb), poison(h2, 2 * hb);
            CHECK_OK(dec_xin_split_att(xd, s, ws, B, NULL, h1, (char *)h1 + hb, npad, npad, scr, NULL));
            CHECK_OK(dec_xin_split(xd, dout, n, B, NULL, 0.0f, NULL, h2, (char *)h2 + hb, npad, npad, scr, NULL));
            CU(cudaMemcpy(a, h1, 2 * hb, cudaMemcpyDeviceToHost));
            CU(cudaMemcpy(b, h2, 2 * hb, cudaMemcpyDeviceToHost));
            size_t diff = 0;
            for (size_t i = 0; i < 2 * hb; i++) diff += a[i] != b[i];
            CHECK_MSG(!diff, "combine-folded o input (heads %d hd %d ctx %d, %d key chunks, B %d, %s, fast %d): %zu of %zu bytes differ",
                      s->n_heads, s->head_dim, s->max_ctx, dec_attn_chunks(s), B, kind ? "hadamard" : "identity", fast, diff, 2 * hb);
            cudaFree(scr);
            dec_xform_dev_free(xd);
        }
    dec_set_xform_fast(1);
    cudaFree(h1), cudaFree(h2);
    free(a), free(b);
}

/* Every check for both kernels of dec_set_attn_variant; the awkward shapes: contexts 1, 63, 65 and 513
 * (a partial last chunk, a chunk of one key), groups 1, 2, 3 (the G = 4 kernel with a zero q row), 4
 * and 8, head_dim 32, 64 and 128, sliding windows not multiples of the chunk. */
static void test_attention(void) {
    static const dec_attn_shape shapes[] = {{32, 8, 128, 300, 0, NULL},  {32, 8, 128, 700, 100, NULL}, {6, 2, 64, 40, 0, NULL},
                                            {32, 32, 128, 520, 0, NULL}, {32, 8, 128, 1100, 0, NULL},  {8, 8, 64, 1, 0, NULL},
                                            {16, 4, 64, 63, 0, NULL},    {8, 1, 128, 65, 0, NULL},     {32, 4, 128, 513, 0, NULL},
                                            {12, 4, 32, 513, 100, NULL}, {16, 2, 64, 65, 17, NULL},    {4, 4, 32, 63, 0, NULL},
                                            {8, 4, 32, 130, 50, NULL}};
    harp_rng rng;
    harp_rng_seed(&rng, 31);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int k = 0; k < 4; k++)   /* variant k / 2, B 1 or 3 */
            for (int il = 0; il < 2; il++) {
                const int av = k / 2, B = k % 2 ? 3 : 1;
                dec_set_attn_variant(av);
                const dec_attn_shape s = shapes[si];
                const int hd = s.head_dim, qd = s.n_heads * hd, kvd = s.n_kv * hd, ld = qd + 2 * kvd;
                const size_t cache = (size_t)B * s.max_ctx * kvd;
                uint16_t *kc = malloc(cache * 2), *vc = malloc(cache * 2), *gk = malloc(cache * 2), *gv = malloc(cache * 2);
                for (size_t i = 0; i < cache; i++)
                    kc[i] = harp_f32_to_f16((float)harp_rng_normal(&rng)), vc[i] = harp_f32_to_f16((float)harp_rng_normal(&rng));
                float *qkv = malloc(sizeof(float) * B * ld), *q = malloc(sizeof(float) * B * qd), *gq = malloc(sizeof(float) * B * qd);
                float *out = malloc(sizeof(float) * B * qd), *gout = malloc(sizeof(float) * B * qd), inv_freq[128];
                for (int i = 0; i < B * ld; i++) qkv[i] = (float)harp_rng_normal(&rng);
                for (int i = 0; i < hd / 2; i++) inv_freq[i] = powf(10000.0f, -2.0f * i / hd);
                int32_t pos[3];
                for (int b = 0; b < B; b++) pos[b] = b == 0 ? s.max_ctx - 1 : (int32_t)(harp_rng_u64(&rng) % (uint64_t)s.max_ctx);
                void *dkc = dev_alloc(cache * 2), *dvc = dev_alloc(cache * 2);
                float *dqkv = dev_alloc(sizeof(float) * B * ld), *dq = dev_alloc(sizeof(float) * B * qd), *dout = dev_alloc(sizeof(float) * B * qd);
                float *dinv = dev_alloc(sizeof(float) * hd / 2), *ws = dev_alloc(sizeof(float) * dec_attn_workspace_floats(&s, B));
                int32_t *dpos = dev_alloc(sizeof pos);
                CU(cudaMemcpy(dkc, kc, cache * 2, cudaMemcpyHostToDevice));
                CU(cudaMemcpy(dvc, vc, cache * 2, cudaMemcpyHostToDevice));
                CU(cudaMemcpy(dqkv, qkv, sizeof(float) * B * ld, cudaMemcpyHostToDevice));
                CU(cudaMemcpy(dinv, inv_freq, sizeof(float) * hd / 2, cudaMemcpyHostToDevice));
                CU(cudaMemcpy(dpos, pos, sizeof(int32_t) * B, cudaMemcpyHostToDevice));
                poison(dq, sizeof(float) * B * qd);
                poison(dout, sizeof(float) * B * qd);
                CHECK_OK(dec_rope_kv(&s, dqkv, ld, B, dpos, dinv, il, dq, dkc, dvc, NULL));
                CHECK_OK(dec_attn(&s, dq, dkc, dvc, B, dpos, dout, ws, NULL));
                CU(cudaMemcpy(gq, dq, sizeof(float) * B * qd, cudaMemcpyDeviceToHost));
                CU(cudaMemcpy(gk, dkc, cache * 2, cudaMemcpyDeviceToHost));
                CU(cudaMemcpy(gv, dvc, cache * 2, cudaMemcpyDeviceToHost));
                CU(cudaMemcpy(gout, dout, sizeof(float) * B * qd, cudaMemcpyDeviceToHost));
                dec_rope_kv_ref(&s, qkv, ld, B, pos, inv_freq, il, q, kc, vc);
                int rb = 0, kb = 0;
                for (int i = 0; i < B * qd; i++) rb += !(fabsf(gq[i] - q[i]) <= 2e-6f * (1 + fabsf(q[i])));
                /* K: the fp16 of a rotated value that passes the q check (|Δ| ≤ 2e-6·(1 + |k|) before rounding)
                 * is within that plus one fp16 ulp -- the absolute part matters where the rotation cancels
                 * to near 0, there the sin / cos of CUDA and libm can round the value across fp16 steps */
                for (size_t i = 0; i < cache; i++) {
                    const float a = harp_f16_to_f32(gk[i]), b = harp_f16_to_f32(kc[i]);
                    const float tol = ldexpf(1.0f, ilogbf(fmaxf(fabsf(b), 6.1e-5f)) - 10) + 2e-6f * (1 + fabsf(b));
                    kb += !(fabsf(a - b) <= tol) || gv[i] != vc[i];
                }
                CHECK_MSG(!rb && !kb, "rope/kv (heads %d/%d hd %d B %d il %d): %d q values, %d cache entries off", s.n_heads, s.n_kv,
                          hd, B, il, rb, kb);
                dec_attn_ref(&s, gq, gk, gv, B, pos, out);
                const double e = t_rel_rms(gout, out, B * qd);
                CHECK_MSG(e <= 1e-5, "attention (variant %d, heads %d/%d hd %d ctx %d window %d B %d): relative RMS %.3g", av, s.n_heads,
                          s.n_kv, hd, s.max_ctx, s.window, B, e);
                {   /* a rerun gives the same bits */
                    float *gout3 = malloc(sizeof(float) * B * qd);
                    poison(dout, sizeof(float) * B * qd);
                    CHECK_OK(dec_attn(&s, dq, dkc, dvc, B, dpos, dout, ws, NULL));
                    CU(cudaMemcpy(gout3, dout, sizeof(float) * B * qd, cudaMemcpyDeviceToHost));
                    CHECK_MSG(!memcmp(gout3, gout, sizeof(float) * B * qd), "attention rerun (variant %d, heads %d/%d hd %d ctx %d B %d) "
                              "differs", av, s.n_heads, s.n_kv, hd, s.max_ctx, B);
                    free(gout3);
                }
                if (!il) check_att_fold(&s, B, dout, ws);
                {   /* RoPE + KV store inside the attention launch: the same output and cache bits */
                    uint16_t *gk2 = malloc(cache * 2), *gv2 = malloc(cache * 2);
                    float *gout2 = malloc(sizeof(float) * B * qd);
                    CU(cudaMemcpy(dkc, kc, cache * 2, cudaMemcpyHostToDevice));   /* rows pos[b] get overwritten */
                    CU(cudaMemcpy(dvc, vc, cache * 2, cudaMemcpyHostToDevice));
                    poison(dout, sizeof(float) * B * qd);
                    CHECK_OK(dec_attn_rope(&s, dqkv, ld, B, dpos, dinv, il, dkc, dvc, dout, ws, NULL));
                    CU(cudaMemcpy(gout2, dout, sizeof(float) * B * qd, cudaMemcpyDeviceToHost));
                    CU(cudaMemcpy(gk2, dkc, cache * 2, cudaMemcpyDeviceToHost));
                    CU(cudaMemcpy(gv2, dvc, cache * 2, cudaMemcpyDeviceToHost));
                    const int dout_ = memcmp(gout2, gout, sizeof(float) * B * qd) != 0;
                    const int dk = memcmp(gk2, gk, cache * 2) != 0, dv = memcmp(gv2, gv, cache * 2) != 0;
                    CHECK_MSG(!dout_ && !dk && !dv, "attention with RoPE fused (variant %d, heads %d/%d hd %d ctx %d window %d B %d il %d): "
                              "output %s, K cache %s, V cache %s", av, s.n_heads, s.n_kv, hd, s.max_ctx, s.window, B, il,
                              dout_ ? "differs" : "same", dk ? "differs" : "same", dv ? "differs" : "same");
                    free(gk2), free(gv2), free(gout2);
                }
                cudaFree(dkc), cudaFree(dvc), cudaFree(dqkv), cudaFree(dq), cudaFree(dout), cudaFree(dinv), cudaFree(ws), cudaFree(dpos);
                free(kc), free(vc), free(gk), free(gv), free(qkv), free(q), free(gq), free(out), free(gout);
            }
    dec_set_attn_variant(0);
}

/* ---- launch overlap (programmatic dependent launch) ---------------------------------------------
 * A dependent chain like a decode step — RMSNorm + input transform into split fp16 activations, the
 * folded GEMV, the output transform accumulated into the residual x, RoPE + KV store, attention,
 * SwiGLU — repeated 12 times on one non-default stream, so every buffer is read after written and
 * rewritten after read. With PDL a kernel that touched a buffer before its wait would race; the
 * result must be bit-identical to the serialized launches, in stream order and in a CUDA graph. */
static void pdl_chain(const dec_weights *w, const dec_xdev *xi, const dec_xdev *xo, float *x, const float *x0, const float *ones,
                      uint16_t *hi, float *y, float *scr, const dec_attn_shape *as, float *qkv, float *q, void *kc, void *vc,
                      const int32_t *pos, const float *inv, float *att, float *aws, float *act, cudaStream_t st) {
    const int n = (int)w->n, npad = dec_npad(w->n);
    const dec_gemv_opts fold = {.fold = 1};
    CU(cudaMemcpyAsync(x, x0, sizeof(float) * n, cudaMemcpyDeviceToDevice, st));
    for (int it = 0; it < 12; it++) {
        CHECK_OK(dec_xin_split(xi, x, n, 1, ones, 1e-5f, NULL, hi, hi + npad, npad, npad, scr, st));
        CHECK_OK(dec_gemv(w, hi, npad, 2, y, (int)w->m, &fold, st));
        CHECK_OK(dec_xout(xo, y, (int)w->m, 1, NULL, 1, x, n, scr, st));
        CHECK_OK(dec_add(qkv, x, (size_t)n, st));   /* qkv (3n wide) picks up x: the attention depends on the chain */
        CHECK_OK(dec_rope_kv(as, qkv, 3 * n, 1, pos, inv, 0, q, kc, vc, st));
        CHECK_OK(dec_attn(as, q, kc, vc, 1, pos, att, aws, st));
        CHECK_OK(dec_swiglu(att, n, 1, n / 2, act, n, st));
        CHECK_OK(dec_add(x, act, (size_t)n / 2, st));
    }
}

static void test_pdl(void) {
    const int n = 1536, npad = dec_npad(n);
    const dec_attn_shape as = {12, 12, 128, 64, 0, NULL};
    dec_synth sy;
    dec_weights hw, dw;
    CHECK_OK(dec_synth_planes(HARP_QTYPE_E8P2, n, n, 4242, &sy));
    CHECK_OK(dec_pack(&sy.q, &hw));
    CHECK_OK(dec_weights_upload(&hw, &dw));
    dec_xform hx, ho;
    dec_xdev *xi = NULL, *xo = NULL;
    CHECK_OK(dec_xform_hadamard(n, 0, &hx));
    CHECK_OK(dec_xform_hadamard(n, 1, &ho));
    CHECK_OK(dec_xform_upload(&hx, 1, &xi));
    CHECK_OK(dec_xform_upload(&ho, 1, &xo));
    harp_rng rng;
    harp_rng_seed(&rng, 5);
    float *h0 = malloc(sizeof(float) * 3 * n), *ho1 = malloc(sizeof(float) * n), *inv = malloc(sizeof(float) * 64);
    for (int i = 0; i < 3 * n; i++) h0[i] = (float)harp_rng_normal(&rng);
    for (int i = 0; i < 64; i++) inv[i] = powf(10000.0f, -2.0f * i / 128);
    float *x0 = dev_alloc(sizeof(float) * n), *x = dev_alloc(sizeof(float) * n), *ones = dev_alloc(sizeof(float) * n);
    float *y = dev_alloc(sizeof(float) * n), *scr = dev_alloc(sizeof(float) * (dec_xform_scratch_floats(xi, 1) + 2 * (size_t)n));
    float *qkv = dev_alloc(sizeof(float) * 3 * n), *qkv0 = dev_alloc(sizeof(float) * 3 * n), *q = dev_alloc(sizeof(float) * n);
    float *att = dev_alloc(sizeof(float) * n), *act = dev_alloc(sizeof(float) * n), *dinv = dev_alloc(sizeof(float) * 64);
    float *aws = dev_alloc(sizeof(float) * dec_attn_workspace_floats(&as, 1));
    void *kc = dev_alloc((size_t)as.max_ctx * n * 2), *vc = dev_alloc((size_t)as.max_ctx * n * 2);
    uint16_t *hi = dev_alloc(2 * sizeof(uint16_t) * (size_t)npad);
    int32_t p = as.max_ctx - 1, *dpos = dev_alloc(sizeof p);
    for (int i = 0; i < n; i++) ho1[i] = 1.0f;
    CU(cudaMemcpy(ones, ho1, sizeof(float) * n, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(x0, h0, sizeof(float) * n, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(qkv0, h0, sizeof(float) * 3 * n, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(dinv, inv, sizeof(float) * 64, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(dpos, &p, sizeof p, cudaMemcpyHostToDevice));
    cudaStream_t st;
    CU(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    float *res[3];
    for (int v = 0; v < 3; v++) {   /* 0: serialized, 1: PDL on the stream, 2: PDL in a graph */
        dec_set_pdl(v > 0);
        CU(cudaMemset(kc, 0, (size_t)as.max_ctx * n * 2));
        CU(cudaMemset(vc, 0, (size_t)as.max_ctx * n * 2));
        CU(cudaMemcpy(qkv, qkv0, sizeof(float) * 3 * n, cudaMemcpyDeviceToDevice));
        if (v < 2) {
            pdl_chain(&dw, xi, xo, x, x0, ones, hi, y, scr, &as, qkv, q, kc, vc, dpos, dinv, att, aws, act, st);
        } else {
            cudaGraph_t g;
            cudaGraphExec_t ge;
            CU(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
            pdl_chain(&dw, xi, xo, x, x0, ones, hi, y, scr, &as, qkv, q, kc, vc, dpos, dinv, att, aws, act, st);
            CU(cudaStreamEndCapture(st, &g));
            CU(cudaGraphInstantiate(&ge, g, 0));
            CU(cudaGraphLaunch(ge, st));
            CU(cudaStreamSynchronize(st));
            cudaGraphExecDestroy(ge), cudaGraphDestroy(g);
        }
        CU(cudaStreamSynchronize(st));
        res[v] = malloc(sizeof(float) * n);
        CU(cudaMemcpy(res[v], x, sizeof(float) * n, cudaMemcpyDeviceToHost));
    }
    dec_set_pdl(1);
    int finite = 1;
    for (int i = 0; i < n; i++) finite &= isfinite(res[0][i]) != 0;
    CHECK_MSG(finite, "pdl chain: the serialized result is not finite");
    CHECK_MSG(!memcmp(res[0], res[1], sizeof(float) * n), "pdl chain: PDL launches on a stream differ from serialized ones");
    CHECK_MSG(!memcmp(res[0], res[2], sizeof(float) * n), "pdl chain: PDL launches in a CUDA graph differ from serialized ones");
    printf("pdl chain (12 steps, 8 kernels each): serialized, PDL stream, PDL graph bit-identical: %s\n",
           !memcmp(res[0], res[1], sizeof(float) * n) && !memcmp(res[0], res[2], sizeof(float) * n) ? "yes" : "NO");
    for (int v = 0; v < 3; v++) free(res[v]);
    cudaStreamDestroy(st);
    cudaFree(x0), cudaFree(x), cudaFree(ones), cudaFree(y), cudaFree(scr), cudaFree(qkv), cudaFree(qkv0), cudaFree(q);
    cudaFree(att), cudaFree(act), cudaFree(dinv), cudaFree(aws), cudaFree(kc), cudaFree(vc), cudaFree(hi), cudaFree(dpos);
    free(h0), free(ho1), free(inv);
    dec_xform_dev_free(xi), dec_xform_dev_free(xo);
    dec_xform_free(&hx), dec_xform_free(&ho);
    dec_weights_free(&dw), dec_weights_free(&hw);
    dec_synth_free(&sy);
}

/* SwiGLU folded into the input transform (dec_xin_split_glu) against dec_swiglu then dec_xin_split:
 * bit-identical h and lo, for one- and two-pass Hadamard plans and the identity (small and wide tiles). */
static void test_glu(void) {
    static const int64_t widths[] = {172, 1536, 4864, 11008};
    static const int row_counts[] = {1, 3, 8};
    harp_rng rng;
    harp_rng_seed(&rng, 77);
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
        for (size_t ri = 0; ri < sizeof row_counts / sizeof row_counts[0]; ri++)
            for (int kind = 0; kind < 3; kind++) {   /* Hadamard; identity spread; identity wide */
                const int64_t n = widths[wi];
                const int rows = row_counts[ri];
                const int32_t npad = dec_npad((int32_t)n);
                dec_xform xf;
                if (kind) dec_xform_identity(n, &xf);
                else CHECK_OK(dec_xform_hadamard(n, 0, &xf));
                dec_xdev *xd = NULL;
                CHECK_OK(dec_xform_upload(&xf, rows, &xd));
                dec_xform_free(&xf);
                if (!xd) return;
                dec_set_xform_fast(kind != 2);
                float *ug = malloc(sizeof(float) * rows * 2 * n);
                for (int64_t i = 0; i < rows * 2 * n; i++) ug[i] = (float)(2.0 * harp_rng_normal(&rng));
                float *dug = dev_alloc(sizeof(float) * rows * 2 * n), *dact = dev_alloc(sizeof(float) * rows * n);
                const size_t sf = dec_xform_scratch_floats(xd, rows);
                float *scr = sf ? dev_alloc(sizeof(float) * sf) : NULL;
                const size_t hb = (size_t)rows * npad * 2;
                void *h1 = dev_alloc(2 * hb), *h2 = dev_alloc(2 * hb);
                CU(cudaMemcpy(dug, ug, sizeof(float) * rows * 2 * n, cudaMemcpyHostToDevice));
                poison(h1, 2 * hb), poison(h2, 2 * hb);
                CHECK_OK(dec_xin_split_glu(xd, dug, (int)(2 * n), rows, NULL, h1, (char *)h1 + hb, npad, npad, scr, NULL));
                CHECK_OK(dec_swiglu(dug, (int)(2 * n), rows, (int)n, dact, (int)n, NULL));
                CHECK_OK(dec_xin_split(xd, dact, (int)n, rows, NULL, 0.0f, NULL, h2, (char *)h2 + hb, npad, npad, scr, NULL));
                unsigned char *a = malloc(2 * hb), *b = malloc(2 * hb);
                CU(cudaMemcpy(a, h1, 2 * hb, cudaMemcpyDeviceToHost));
                CU(cudaMemcpy(b, h2, 2 * hb, cudaMemcpyDeviceToHost));
                size_t diff = 0;
                for (size_t i = 0; i < 2 * hb; i++) diff += a[i] != b[i];
                CHECK_MSG(!diff, "SwiGLU-folded input n=%lld rows=%d %s: %zu of %zu bytes differ from swiglu + transform", (long long)n,
                          rows, kind == 0 ? "hadamard" : kind == 1 ? "identity, small tiles" : "identity, wide tiles", diff, 2 * hb);
                cudaFree(dug), cudaFree(dact), cudaFree(scr), cudaFree(h1), cudaFree(h2);
                free(ug), free(a), free(b);
                dec_xform_dev_free(xd);
            }
    dec_set_xform_fast(1);
}

/* dec_linear_run with an identity output side: written by the GEMV's epilogue (fast) or by a separate
 * dec_xout pass — bit-identical, with and without a post vector, = and +=, 1–4 rows (awkward m). */
static void test_epilogue(void) {
    const int m = 1000, n = 1536, npad = dec_npad(n);
    harp_rng rng;
    harp_rng_seed(&rng, 91);
    dec_linear_dev L;
    memset(&L, 0, sizeof L);
    CHECK_OK(dec_weights_random(HARP_QTYPE_F16, m, n, 1.0f, 0.0f, 5, &L.w));
    dec_xform xi, xo;
    dec_xform_identity(n, &xi), dec_xform_identity(m, &xo);
    dec_xdev *dxi = NULL, *dxo = NULL;
    CHECK_OK(dec_xform_upload(&xi, 4, &dxi));
    CHECK_OK(dec_xform_upload(&xo, 4, &dxo));
    if (!dxi || !dxo) return;
    CHECK_MSG(dec_xform_dev_identity(dxo, NULL), "identity transform not recognised as one");
    L.xin = dxi, L.xout = dxo;
    float *hx = malloc(sizeof(float) * 4 * n), *hp = malloc(sizeof(float) * m), *hy = malloc(sizeof(float) * 4 * m);
    for (int i = 0; i < 4 * n; i++) hx[i] = (float)harp_rng_normal(&rng);
    for (int i = 0; i < m; i++) hp[i] = (float)(0.5 + harp_rng_uniform(&rng));
    for (int i = 0; i < 4 * m; i++) hy[i] = (float)harp_rng_normal(&rng);
    float *x = dev_alloc(sizeof(float) * 4 * n), *post = dev_alloc(sizeof(float) * m), *y = dev_alloc(sizeof(float) * 4 * m);
    float *yt = dev_alloc(sizeof(float) * 8 * m), *scr = dev_alloc(sizeof(float) * 8 * (m > n ? m : n));
    void *xh = dev_alloc((size_t)8 * npad * 2);
    CU(cudaMemcpy(x, hx, sizeof(float) * 4 * n, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(post, hp, sizeof(float) * m, cudaMemcpyHostToDevice));
    const dec_linear_ws ws = {.max_rows = 4, .xh = xh, .yt = yt, .scr = scr};
    float *got[2] = {malloc(sizeof(float) * 4 * m), malloc(sizeof(float) * 4 * m)};
    int bad = 0, cases = 0;
    for (int rows = 1; rows <= 4; rows++)
        for (int withpost = 0; withpost < 2; withpost++)
            for (int acc = 0; acc < 2; acc++) {
                L.post = withpost ? post : NULL;
                for (int fast = 0; fast < 2; fast++) {
                    dec_set_xform_fast(fast);
                    CU(cudaMemcpy(y, hy, sizeof(float) * 4 * m, cudaMemcpyHostToDevice));
                    CHECK_OK(dec_linear_run(&L, x, n, rows, NULL, 0.0f, y, m, acc, &ws, NULL));
                    CU(cudaMemcpy(got[fast], y, sizeof(float) * 4 * m, cudaMemcpyDeviceToHost));
                }
                const int d = memcmp(got[0], got[1], sizeof(float) * (size_t)rows * m) != 0;
                bad += d, cases++;
                CHECK_MSG(!d, "identity output side by the GEMV epilogue: rows %d, post %d, accumulate %d differ from dec_xout", rows,
                          withpost, acc);
            }
    dec_set_xform_fast(1);
    printf("GEMV epilogue (identity output side, %dx%d F16): %d of %d cases bit-identical to the separate pass\n", m, n,
           cases - bad, cases);
    cudaFree(x), cudaFree(post), cudaFree(y), cudaFree(yt), cudaFree(scr), cudaFree(xh);
    free(hx), free(hp), free(hy), free(got[0]), free(got[1]);
    dec_xform_dev_free(dxi), dec_xform_dev_free(dxo);
    dec_xform_free(&xi), dec_xform_free(&xo);
    dec_weights_free(&L.w);
}

/* ---- seam ----------------------------------------------------------------------------------------- */

/* One dec_linear_seam case: prev's output side xo, next's input side xi (uploaded for `rows`), random ỹ,
 * residual (row stride ldx), signs and norm. Checks the residual and h + lo against the twins
 * (dec_xout_ref then dec_xin_split_ref, double) and against the four-pass device path (dec_xout then
 * dec_xin_split) within relative RMS tol, two runs and the runs with dec_set_xform_stage /
 * dec_set_xform_fast off (switches of the pass engine the seam must not depend on) bit-identical, zero
 * padding. Returns 0 when dec_seam_ok refuses the pair (nothing
 * checked), 1 otherwise. */
static int seam_case(const dec_xform *xo, const dec_xform *xi, int rows, int ldx, double tol, const char *what, harp_rng *rng) {
    const int n = (int)xo->n, npad = dec_npad(n);
    dec_linear_dev P, N;
    memset(&P, 0, sizeof P), memset(&N, 0, sizeof N);
    P.w.m = n, P.w.n = 3 * n;   /* the seam reads neither linear's weights */
    N.w.m = 5, N.w.n = n;
    CHECK_OK(dec_xform_upload(xo, rows, (dec_xdev **)&P.xout));
    CHECK_OK(dec_xform_upload(xi, rows, (dec_xdev **)&N.xin));
    float *y = malloc(sizeof(float) * rows * n), *x = malloc(sizeof(float) * rows * ldx), *post = malloc(sizeof(float) * n);
    float *pre = malloc(sizeof(float) * n), *nw = malloc(sizeof(float) * n);
    for (int i = 0; i < rows * n; i++) y[i] = (float)harp_rng_normal(rng);
    for (int i = 0; i < rows * ldx; i++) x[i] = (float)harp_rng_normal(rng);
    for (int i = 0; i < n; i++) {
        post[i] = (harp_rng_u64(rng) >> 63) ? -1.0f : 1.0f, pre[i] = (harp_rng_u64(rng) >> 63) ? -1.0f : 1.0f;
        nw[i] = (float)(0.5 + harp_rng_uniform(rng));
    }
    float *dyt = dev_alloc(sizeof(float) * 2 * rows * n), *dx = dev_alloc(sizeof(float) * rows * ldx);
    float *dpost = dev_alloc(sizeof(float) * n), *dpre = dev_alloc(sizeof(float) * n), *dnw = dev_alloc(sizeof(float) * n);
    void *dxh = dev_alloc((size_t)2 * rows * npad * 2), *dph = dev_alloc((size_t)2 * rows * npad * 2);
    float *scr = dev_alloc(sizeof(float) * 2 * rows * n);
    CU(cudaMemcpy(dpost, post, sizeof(float) * n, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(dpre, pre, sizeof(float) * n, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(dnw, nw, sizeof(float) * n, cudaMemcpyHostToDevice));
    P.post = dpost, N.pre = dpre;
    const dec_linear_ws ws = {.max_rows = rows, .xh = dxh, .yt = dyt, .scr = scr};
    const int ok = dec_seam_ok(&P, &N, dx, ldx, rows, dnw, &ws);
    const size_t hb = (size_t)rows * npad * 2;
    uint16_t *h[2] = {malloc(hb), malloc(hb)}, *lo[2] = {malloc(hb), malloc(hb)}, *ph = malloc(2 * hb);
    float *xg[2] = {malloc(sizeof(float) * rows * ldx), malloc(sizeof(float) * rows * ldx)}, *xp = malloc(sizeof(float) * rows * ldx);
    /* run 0: the default; 1: again; 2: dec_set_xform_stage off; 3: dec_set_xform_fast off — all the same bits */
    void (*const sw[4])(int) = {NULL, NULL, dec_set_xform_stage, dec_set_xform_fast};
    int same = 1;
    for (int run = 0; ok && run < 4; run++) {
        const int k = run ? 1 : 0;
        CU(cudaMemcpy(dyt, y, sizeof(float) * rows * n, cudaMemcpyHostToDevice));
        CU(cudaMemcpy(dx, x, sizeof(float) * rows * ldx, cudaMemcpyHostToDevice));
        poison(dxh, 2 * hb);
        if (sw[run]) sw[run](0);
        CHECK_OK(dec_linear_seam(&P, &N, dx, ldx, rows, dnw, 1e-5f, &ws, NULL));
        if (sw[run]) sw[run](1);
        CU(cudaMemcpy(h[k], dxh, hb, cudaMemcpyDeviceToHost));
        CU(cudaMemcpy(lo[k], (uint16_t *)dxh + (size_t)rows * npad, hb, cudaMemcpyDeviceToHost));
        CU(cudaMemcpy(xg[k], dx, sizeof(float) * rows * ldx, cudaMemcpyDeviceToHost));
        if (k) same &= !memcmp(h[0], h[1], hb) && !memcmp(lo[0], lo[1], hb) && !memcmp(xg[0], xg[1], sizeof(float) * rows * ldx);
    }
    if (ok) {
        float *xr = malloc(sizeof(float) * rows * ldx);
        memcpy(xr, x, sizeof(float) * rows * ldx);
        dec_xout_ref(xo, y, n, rows, post, 1, xr, ldx);
        uint16_t *rh = malloc(hb), *rl = malloc(hb);
        dec_xin_split_ref(xi, xr, ldx, rows, nw, 1e-5f, pre, rh, rl, npad, npad);
        CU(cudaMemcpy(dyt, y, sizeof(float) * rows * n, cudaMemcpyHostToDevice));
        CU(cudaMemcpy(dx, x, sizeof(float) * rows * ldx, cudaMemcpyHostToDevice));
        CHECK_OK(dec_xout(P.xout, dyt, n, rows, dpost, 1, dx, ldx, scr, NULL));
        CHECK_OK(dec_xin_split(N.xin, dx, ldx, rows, dnw, 1e-5f, dpre, dph, (uint16_t *)dph + (size_t)rows * npad, npad, npad, scr, NULL));
        CU(cudaMemcpy(xp, dx, sizeof(float) * rows * ldx, cudaMemcpyDeviceToHost));
        CU(cudaMemcpy(ph, dph, 2 * hb, cudaMemcpyDeviceToHost));
        double ex = 0, exp_ = 0, ev = 0, evp = 0;
        int pad_bad = 0;
        float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n), *c = malloc(sizeof(float) * n);
        for (int r = 0; r < rows; r++) {
            ex = fmax(ex, t_rel_rms(xg[0] + (size_t)r * ldx, xr + (size_t)r * ldx, n));
            exp_ = fmax(exp_, t_rel_rms(xg[0] + (size_t)r * ldx, xp + (size_t)r * ldx, n));
            for (int i = 0; i < n; i++) {
                const size_t o = (size_t)r * npad + i;
                a[i] = harp_f16_to_f32(h[0][o]) + harp_f16_to_f32(lo[0][o]);
                b[i] = harp_f16_to_f32(rh[o]) + harp_f16_to_f32(rl[o]);
                c[i] = harp_f16_to_f32(ph[o]) + harp_f16_to_f32(ph[(size_t)rows * npad + o]);
            }
            ev = fmax(ev, t_rel_rms(a, b, n));
            evp = fmax(evp, t_rel_rms(a, c, n));
            for (int i = n; i < npad; i++) pad_bad += h[0][(size_t)r * npad + i] != 0 || lo[0][(size_t)r * npad + i] != 0;
        }
        CHECK_MSG(same && ex <= tol && exp_ <= tol && ev <= tol && evp <= tol && !pad_bad,
                  "seam %s n=%d rows=%d: residual vs twin %.3g, vs passes %.3g; h + lo vs twin %.3g, vs passes %.3g (limit %.3g); %s; "
                  "%d pad entries nonzero", what, n, rows, ex, exp_, ev, evp, tol,
                  same ? "reruns and switches identical" : "reruns or switches differ", pad_bad);
        free(a), free(b), free(c), free(rh), free(rl), free(xr);
    }
    free(h[0]), free(h[1]), free(lo[0]), free(lo[1]), free(ph), free(xg[0]), free(xg[1]), free(xp);
    cudaFree(dyt), cudaFree(dx), cudaFree(dpost), cudaFree(dpre), cudaFree(dnw), cudaFree(dxh), cudaFree(dph), cudaFree(scr);
    free(y), free(x), free(post), free(pre), free(nw);
    dec_xform_dev_free((dec_xdev *)P.xout), dec_xform_dev_free((dec_xdev *)N.xin);
    return ok != 0;
}

/* The FWHT seam kernel: Hadamard output side, Hadamard or identity input side, n 1 024 – 8 192, rows 1 /
 * 3 / 8, within the output side's tolerance for ±1 blocks (2e-6); and what it refuses. */
static void test_seam(void) {
    static const int widths[] = {1024, 2048, 4096, 8192};
    static const int row_counts[] = {1, 3, 8};
    harp_rng rng;
    harp_rng_seed(&rng, 77);
    int cases = 0;
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
        for (int ident = 0; ident < 2; ident++)
            for (size_t ri = 0; ri < sizeof row_counts / sizeof row_counts[0]; ri++) {
                const int n = widths[wi], rows = row_counts[ri];
                dec_xform xo, xi;
                CHECK_OK(dec_xform_hadamard(n, 1, &xo));
                if (ident) dec_xform_identity(n, &xi);
                else CHECK_OK(dec_xform_hadamard(n, 0, &xi));
                const int ok = seam_case(&xo, &xi, rows, n + 4, 2e-6, ident ? "hadamard → identity" : "hadamard", &rng);
                CHECK_MSG(ok, "seam n=%d rows=%d %s: dec_seam_ok refuses", n, rows, ident ? "identity" : "hadamard");
                cases += ok;
                dec_xform_free(&xo), dec_xform_free(&xi);
            }
    /* refused: a butterfly output side (HARP's learned blocks), and n = 11 008 (Had_172 ⊗ H_64) */
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        const int n = widths[wi];
        dec_xform bf, xi;
        dec_xdev *db = NULL, *di = NULL;
        CHECK_OK(dec_synth_butterfly(n, 3, 1, &bf));
        CHECK_OK(dec_xform_hadamard(n, 0, &xi));
        CHECK_OK(dec_xform_upload(&bf, 1, &db));
        CHECK_OK(dec_xform_upload(&xi, 1, &di));
        dec_linear_dev P, N;
        memset(&P, 0, sizeof P), memset(&N, 0, sizeof N);
        P.w.m = n, N.w.n = n, P.xout = db, N.xin = di;
        float *buf = dev_alloc(sizeof(float) * 2 * n);
        const dec_linear_ws ws = {.max_rows = 1, .xh = buf, .yt = buf, .scr = NULL};
        CHECK_MSG(!dec_seam_ok(&P, &N, buf, n, 1, buf, &ws), "seam n=%d: a butterfly output side accepted", n);
        CHECK_MSG(dec_linear_seam(&P, &N, buf, n, 1, buf, 1e-5f, &ws, NULL) == HARP_ERR_UNSUPPORTED,
                  "seam n=%d: a butterfly output side not refused", n);
        cudaFree(buf);
        dec_xform_dev_free(db), dec_xform_dev_free(di);
        dec_xform_free(&bf), dec_xform_free(&xi);
    }
    {
        dec_xform x11;
        dec_xdev *d11 = NULL;
        CHECK_OK(dec_xform_hadamard(11008, 1, &x11));
        CHECK_OK(dec_xform_upload(&x11, 1, &d11));
        dec_linear_dev P, N;
        memset(&P, 0, sizeof P), memset(&N, 0, sizeof N);
        P.w.m = 11008, N.w.n = 11008, P.xout = d11, N.xin = d11;
        float *buf = dev_alloc(sizeof(float) * 11008);
        const dec_linear_ws ws = {.max_rows = 1, .xh = buf, .yt = buf, .scr = NULL};
        CHECK_MSG(!dec_seam_ok(&P, &N, buf, 11008, 1, buf, &ws), "seam: n = 11008 (Had_172) accepted");
        cudaFree(buf);
        dec_xform_dev_free(d11);
        dec_xform_free(&x11);
    }
    printf("seam: %d cases (widths 1024–8192, Hadamard / identity input side, rows 1 / 3 / 8)\n", cases);
}

/* Two E8P2 linears joined by the seam as the decode token joins them: dec_linear_run_mode(prev, YT_ONLY),
 * dec_linear_seam, dec_linear_run_mode(next, XH_READY) against dec_linear_run(prev, accumulate into the
 * residual) then dec_linear_run(next, RMSNorm): residual and next's output within relative RMS 1e-5
 * (the seam's fp32 order moves h / lo by ~1e-7; the GEMVs are exact on equal inputs). */
static void test_seam_chain(void) {
    const int n = 2048, mid = 1536, mo = 700, npad = dec_npad(n);
    harp_rng rng;
    harp_rng_seed(&rng, 93);
    dec_linear_dev P, N;
    memset(&P, 0, sizeof P), memset(&N, 0, sizeof N);
    CHECK_OK(dec_weights_random(HARP_QTYPE_E8P2, n, mid, 0.02f, 0.005f, 11, &P.w));
    CHECK_OK(dec_weights_random(HARP_QTYPE_E8P2, mo, n, 0.02f, 0.005f, 12, &N.w));
    dec_xform x1, x2, x3, x4;
    CHECK_OK(dec_xform_hadamard(mid, 0, &x1));
    CHECK_OK(dec_xform_hadamard(n, 1, &x2));
    CHECK_OK(dec_xform_hadamard(n, 0, &x3));
    CHECK_OK(dec_xform_hadamard(mo, 1, &x4));
    dec_xdev *d[4] = {NULL};
    const dec_xform *xs[4] = {&x1, &x2, &x3, &x4};
    for (int i = 0; i < 4; i++) CHECK_OK(dec_xform_upload(xs[i], 8, &d[i]));
    P.xin = d[0], P.xout = d[1], N.xin = d[2], N.xout = d[3];
    const int wmax = 4096;
    float *hs = malloc(sizeof(float) * wmax), *hx = malloc(sizeof(float) * 8 * n), *hin = malloc(sizeof(float) * 8 * mid);
    float *hnw = malloc(sizeof(float) * n);
    for (int i = 0; i < wmax; i++) hs[i] = (harp_rng_u64(&rng) >> 63) ? -1.0f : 1.0f;
    for (int i = 0; i < 8 * n; i++) hx[i] = (float)harp_rng_normal(&rng);
    for (int i = 0; i < 8 * mid; i++) hin[i] = (float)harp_rng_normal(&rng);
    for (int i = 0; i < n; i++) hnw[i] = (float)(0.5 + harp_rng_uniform(&rng));
    float *signs = dev_alloc(sizeof(float) * wmax), *x = dev_alloc(sizeof(float) * 8 * n), *in = dev_alloc(sizeof(float) * 8 * mid);
    float *nw = dev_alloc(sizeof(float) * n), *out = dev_alloc(sizeof(float) * 8 * mo);
    float *yt = dev_alloc(sizeof(float) * 16 * wmax), *scr = dev_alloc(sizeof(float) * 16 * wmax);
    void *xh = dev_alloc((size_t)16 * npad * 2);
    CU(cudaMemcpy(signs, hs, sizeof(float) * wmax, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(in, hin, sizeof(float) * 8 * mid, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(nw, hnw, sizeof(float) * n, cudaMemcpyHostToDevice));
    P.pre = P.post = N.pre = N.post = signs;
    const dec_linear_ws ws = {.max_rows = 8, .xh = xh, .yt = yt, .scr = scr};
    float *gx[2] = {malloc(sizeof(float) * 8 * n), malloc(sizeof(float) * 8 * n)};
    float *go[2] = {malloc(sizeof(float) * 8 * mo), malloc(sizeof(float) * 8 * mo)};
    static const int row_counts[] = {1, 2, 5, 8};
    for (size_t ri = 0; ri < sizeof row_counts / sizeof row_counts[0]; ri++) {
        const int rows = row_counts[ri];
        for (int seam = 0; seam < 2; seam++) {
            CU(cudaMemcpy(x, hx, sizeof(float) * 8 * n, cudaMemcpyHostToDevice));
            poison(out, sizeof(float) * 8 * mo);
            if (seam) {
                CHECK_MSG(dec_seam_ok(&P, &N, x, n, rows, nw, &ws), "seam chain: dec_seam_ok refuses %d rows", rows);
                CHECK_OK(dec_linear_run_mode(&P, DEC_LIN_YT_ONLY, in, mid, rows, NULL, 0.0f, 0, NULL, x, n, 1, &ws, NULL));
                CHECK_OK(dec_linear_seam(&P, &N, x, n, rows, nw, 1e-5f, &ws, NULL));
                CHECK_OK(dec_linear_run_mode(&N, DEC_LIN_XH_READY, NULL, 0, rows, NULL, 0.0f, 0, NULL, out, mo, 0, &ws, NULL));
            } else {
                CHECK_OK(dec_linear_run(&P, in, mid, rows, NULL, 0.0f, x, n, 1, &ws, NULL));
                CHECK_OK(dec_linear_run(&N, x, n, rows, nw, 1e-5f, out, mo, 0, &ws, NULL));
            }
            CU(cudaMemcpy(gx[seam], x, sizeof(float) * rows * n, cudaMemcpyDeviceToHost));
            CU(cudaMemcpy(go[seam], out, sizeof(float) * rows * mo, cudaMemcpyDeviceToHost));
        }
        const double ex = t_rel_rms(gx[1], gx[0], (int64_t)rows * n), eo = t_rel_rms(go[1], go[0], (int64_t)rows * mo);
        CHECK_MSG(ex <= 1e-5 && eo <= 1e-5, "seam chain, %d rows: residual %.3g, next's output %.3g relative RMS from the plain runs "
                  "(limit 1e-5)", rows, ex, eo);
        printf("seam chain E8P2 %d→%d→%d, %d rows: residual %.2g, output %.2g relative RMS from the plain runs\n", mid, n, mo, rows, ex, eo);
    }
    for (int i = 0; i < 2; i++) free(gx[i]), free(go[i]);
    free(hs), free(hx), free(hin), free(hnw);
    cudaFree(signs), cudaFree(x), cudaFree(in), cudaFree(nw), cudaFree(out), cudaFree(yt), cudaFree(scr), cudaFree(xh);
    for (int i = 0; i < 4; i++) dec_xform_dev_free(d[i]);
    dec_xform_free(&x1), dec_xform_free(&x2), dec_xform_free(&x3), dec_xform_free(&x4);
    dec_weights_free(&P.w), dec_weights_free(&N.w);
}

int main(void) {
    if (!dec_cuda_available()) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    test_gemv();
    test_transforms();
    test_glu();
    test_epilogue();
    test_attention();
    test_pdl();
    test_seam();
    test_seam_chain();
    return t_done();
}
#else
int main(void) {
    printf("SKIP: built without -DHARP_CUDA=ON\n");
    return 77;
}
#endif
