/* Integer prefill GEMM of W/A/KV models (decode.h, "W/A/KV on the GPU").
 *
 * Without arguments (CPU, every build): the C twins against the CPU quantizer and the format —
 *  - dec_aq_rows_ref equals harp_aq_quantize (the CPU activation quantizer, symmetric, whole rows) code
 *    for code and scale for scale at A8 and A4, clip 1 and 0.85, k 172 / 1536 / 4100;
 *  - dec_iweights_from_qplanes · scale equals dec_qplanes_value exactly (int2/3/4/8 planes), and grouped
 *    rows or int8 codes − zero outside int8 are refused;
 *  - dec_igemm_ref + dec_iepi_ref against the double product of the dequantized operands: relative
 *    error ≤ 2^-22 per entry (two fp32 roundings of an exact integer sum).
 * With "gpu" (label gpu; exit 77 without a CUDA build or a device): the device kernels against the twins
 * at rows 1, 3, 17, 512 × (m, k) (13, 172), (64, 1536), (96, 4096), (40, 4100), (20, 1001) (odd widths and
 * m = 13 take the kernels' scalar paths, the others their vector loads / stores), A8 and A4, fp32 and fp16
 * inputs: quantized rows, scales, the int32 product and the epilogue (fp32 and fp16) must be
 * BIT-IDENTICAL (tolerance 0: the same IEEE operations on exact integer sums). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cuda/decode.h"
#include "harp/cuda_eval.h"
#include "quant/aq.h"
#include "test_util.h"

static void fill_rows(harp_rng *r, float *x, size_t n, int outliers) {
    for (size_t i = 0; i < n; i++) x[i] = (float)harp_rng_normal(r);
    for (int o = 0; o < outliers; o++) x[harp_rng_u64(r) % n] *= 20.0f;   /* activation outliers */
}

static void test_quant_twin(void) {
    static const int ks[] = {172, 1536, 4100}, qm[] = {127, 7};
    static const float clips[] = {1.0f, 0.85f};
    harp_rng r;
    harp_rng_seed(&r, 5);
    int compared = 0;
    for (int ki = 0; ki < 3; ki++)
        for (int qi = 0; qi < 2; qi++)
            for (int ci = 0; ci < 2; ci++) {
                const int k = ks[ki], rows = 17, ldq = dec_ikpad(k);
                float *x = malloc(sizeof(float) * (size_t)rows * k), sa[17];
                int8_t *q = malloc((size_t)rows * ldq);
                fill_rows(&r, x, (size_t)rows * k, 8);
                for (int c = 0; c < k; c++) x[3 * k + c] = 0.0f;   /* an all-zero row: scale 1 */
                CHECK_OK(dec_aq_rows_ref(x, rows, k, k, qm[qi], clips[ci], q, ldq, sa));
                const harp_aq_fmt f = {.bits = qm[qi] == 127 ? 8 : 4, .sym = 1, .group = 0, .clip = clips[ci], .scale_f16 = 0};
                harp_aq_planes p;
                CHECK_OK(harp_aq_planes_alloc(&f, rows, k, &p));
                CHECK_OK(harp_aq_quantize(&f, x, rows, k, k, &p));
                int bad = 0;
                for (int i = 0; i < rows; i++) {
                    bad += memcmp(&sa[i], &p.scale[i], sizeof(float)) != 0;
                    const harp_aq_planes pr = harp_aq_planes_row(&f, k, &p, i);
                    for (int c = 0; c < ldq; c++)
                        bad += q[(size_t)i * ldq + c] != (c < k ? harp_aq_code_get(pr.codes, c, f.bits, 1) : 0);
                }
                CHECK_MSG(!bad, "A%d clip %.2f k %d: %d codes / scales differ from harp_aq_quantize", f.bits, (double)clips[ci], k, bad);
                CHECK(sa[3] == 1.0f);
                compared += rows * k;
                harp_aq_planes_free(&p);
                free(x), free(q);
            }
    printf("activation twin: %d elements compared with harp_aq_quantize (A8, A4), tolerance 0\n", compared);
    int8_t q[32];
    float x[16] = {0}, s;
    CHECK(dec_aq_rows_ref(x, 1, 16, 16, 15, 1.0f, q, 16, &s) == HARP_ERR_INVALID_ARG);
    x[2] = NAN;
    CHECK(dec_aq_rows_ref(x, 1, 16, 16, 127, 1.0f, q, 16, &s) == HARP_ERR_NUMERIC);
}

/* Random INT planes (one group per row): codes LSB first, zeros < 2^bits. */
static void make_int_planes(harp_rng *r, int bits, int m, int n, dec_qplanes *q, uint8_t **codes, float **sc, uint8_t **zr) {
    static const int qt[9] = {0, 0, HARP_QTYPE_INT2, HARP_QTYPE_INT3, HARP_QTYPE_INT4, 0, 0, 0, HARP_QTYPE_INT8};
    const size_t rb = ((size_t)n * bits + 7) / 8;
    *codes = malloc(rb * m), *sc = malloc(sizeof(float) * m), *zr = malloc(m);
    for (size_t i = 0; i < rb * m; i++) (*codes)[i] = (uint8_t)harp_rng_u64(r);
    for (int i = 0; i < m; i++) {
        (*sc)[i] = (float)(0.001 + 0.01 * harp_rng_uniform(r));
        (*zr)[i] = (uint8_t)(bits == 8 ? 128 : harp_rng_u64(r) % (1u << bits));
    }
    memset(q, 0, sizeof *q);
    q->qtype = qt[bits], q->m = m, q->n = n, q->codes = *codes, q->scales = *sc, q->zeros = *zr;
}

static void test_weights_twin(void) {
    harp_rng r;
    harp_rng_seed(&r, 9);
    static const int bits[] = {2, 3, 4, 8};
    for (int bi = 0; bi < 4; bi++) {
        const int m = 7, n = 172, ldw = dec_ikpad(n);
        dec_qplanes q;
        uint8_t *codes, *zr;
        float *sc, sw[7];
        make_int_planes(&r, bits[bi], m, n, &q, &codes, &sc, &zr);
        int8_t *w = malloc((size_t)m * ldw);
        CHECK_OK(dec_iweights_from_qplanes(&q, "test", w, ldw, sw));
        int bad = 0;
        for (int i = 0; i < m; i++)
            for (int c = 0; c < ldw; c++)
                bad += c < n ? (float)((double)sw[i] * w[(size_t)i * ldw + c]) != dec_qplanes_value(&q, i, c) : w[(size_t)i * ldw + c] != 0;
        CHECK_MSG(!bad, "int%d weights: %d values differ from dec_qplanes_value", bits[bi], bad);
        if (bits[bi] == 8) {
            zr[2] = 0;   /* codes up to 255 − 0 do not fit int8 */
            CHECK(dec_iweights_from_qplanes(&q, "test", w, ldw, sw) == HARP_ERR_UNSUPPORTED);
        }
        q.group_size = 128;
        CHECK(dec_iweights_from_qplanes(&q, "test", w, ldw, sw) == HARP_ERR_UNSUPPORTED);
        free(w), free(codes), free(sc), free(zr);
    }
    printf("weight twin: int2/3/4/8 planes, 7x172, exact\n");
}

static void test_product_twin(void) {
    harp_rng r;
    harp_rng_seed(&r, 13);
    const int rows = 5, m = 9, k = 1539, kp = dec_ikpad(k), ldc = dec_ildc(m);
    float *x = malloc(sizeof(float) * rows * k), *wf = malloc(sizeof(float) * m * k), sa[5], sw[9], y[5 * 9];
    int8_t *q = malloc((size_t)rows * kp), *w = malloc((size_t)m * kp);
    int32_t c[5 * 12];
    uint16_t y16[5 * 9];
    fill_rows(&r, x, (size_t)rows * k, 4);
    fill_rows(&r, wf, (size_t)m * k, 0);
    CHECK_OK(dec_aq_rows_ref(x, rows, k, k, 127, 1.0f, q, kp, sa));
    CHECK_OK(dec_iweights_rtn(wf, m, k, 4, w, kp, sw));
    dec_igemm_ref(q, kp, rows, w, kp, m, kp, c, ldc);
    dec_iepi_ref(c, ldc, rows, m, sa, sw, NULL, NULL, y, NULL, m);
    dec_iepi_ref(c, ldc, rows, m, sa, sw, NULL, NULL, NULL, y16, m);
    int range_bad = 0;
    for (size_t t = 0; t < (size_t)m * kp; t++) range_bad += w[t] < -8 || w[t] > 7;
    CHECK_MSG(!range_bad, "4-bit weights: %d codes outside [-8, 7]", range_bad);
    double worst = 0, worst16 = 0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < m; j++) {
            double d = 0;
            for (int t = 0; t < k; t++) d += ((double)sa[i] * q[(size_t)i * kp + t]) * ((double)sw[j] * w[(size_t)j * kp + t]);
            const double e = fabs(y[i * m + j] - d) / fmax(fabs(d), 1e-30), e16 = fabs(harp_f16_to_f32(y16[i * m + j]) - d) / fmax(fabs(d), 1e-30);
            worst = fmax(worst, e), worst16 = fmax(worst16, e16);
        }
    CHECK_MSG(worst <= ldexp(1.0, -22), "int product twin: relative error %.3g > 2^-22", worst);
    CHECK_MSG(worst16 <= ldexp(1.0, -11) + ldexp(1.0, -22), "int product twin (fp16 out): relative error %.3g > 2^-11", worst16);
    printf("product twin: %dx%dx%d, worst relative error %.3g (fp32, tolerance 2^-22), %.3g (fp16, tolerance 2^-11)\n", rows, m, k,
           worst, worst16);
    free(x), free(wf), free(q), free(w);
}

/* dec_aq_int8_ref for whole-row formats (2–8 bits, symmetric and asymmetric, clips): every code fits
 * int8 and sa·(Q + corr) is the CPU's fake-quantized activation bit for bit; the epilogue's zero-point
 * term C + corr·rs equals the integer sum Σ (q − z)·w. */
static void test_int8_codes_twin(void) {
    harp_rng r;
    harp_rng_seed(&r, 17);
    const int rows = 6, k = 1001, kp = dec_ikpad(k), m = 5;
    float *x = malloc(sizeof(float) * rows * k), *fk = malloc(sizeof(float) * rows * k), sa[6];
    int8_t *q = malloc((size_t)rows * kp), *w = malloc((size_t)m * kp);
    int32_t corr[6], c[6 * 8], rs[5];
    fill_rows(&r, x, (size_t)rows * k, 3);
    for (int i = 0; i < m * kp; i++) w[i] = (int8_t)(i % kp < k ? (int)(harp_rng_u64(&r) % 15) - 7 : 0);
    for (int j = 0; j < m; j++) {
        rs[j] = 0;
        for (int t = 0; t < kp; t++) rs[j] += w[(size_t)j * kp + t];
    }
    static const int bits[] = {2, 3, 4, 7, 8};
    int cases = 0;
    for (int bi = 0; bi < 5; bi++)
        for (int sym = 0; sym < 2; sym++) {
            const harp_aq_fmt f = {.bits = bits[bi], .sym = sym, .group = 0, .clip = sym ? 0.9f : 0.95f, .scale_f16 = 0};
            memcpy(fk, x, sizeof(float) * rows * k);
            CHECK_OK(harp_aq_fake(&f, fk, rows, k, k));
            CHECK_OK(dec_aq_int8_ref(&f, x, rows, k, k, q, kp, sa, corr));
            int bad = 0, pad = 0;
            for (int i = 0; i < rows; i++) {
                for (int t = 0; t < k; t++) {
                    const float v = sa[i] * (float)(q[(size_t)i * kp + t] + corr[i]);
                    bad += memcmp(&v, &fk[(size_t)i * k + t], sizeof v) != 0;
                }
                for (int t = k; t < kp; t++) pad += q[(size_t)i * kp + t] != 0;
                if (sym || bits[bi] < 8) bad += corr[i] != 0;   /* the term exists for 8-bit asymmetric only */
            }
            dec_igemm_ref(q, kp, rows, w, kp, m, kp, c, 8);
            int sum_bad = 0;
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < m; j++) {
                    int64_t d = 0;   /* Σ (q − z)·w from the fake-quantized values */
                    for (int t = 0; t < k; t++) d += (int64_t)lrintf(fk[(size_t)i * k + t] / sa[i]) * w[(size_t)j * kp + t];
                    sum_bad += (int64_t)c[i * 8 + j] + (int64_t)corr[i] * rs[j] != d;
                }
            CHECK_MSG(!bad && !pad && !sum_bad, "int8 codes, %d bits %s: %d values differ from harp_aq_fake, %d padding codes, %d sums",
                      bits[bi], sym ? "sym" : "asym", bad, pad, sum_bad);
            cases++;
        }
    printf("int8 activation codes twin: %d formats (2/3/4/7/8 bits, sym and asym), %dx%d: sa*(Q + corr) = harp_aq_fake "
           "bit for bit, C + corr*rs = the integer sums\n", cases, rows, k);
    free(x), free(fk), free(q), free(w);
}

#ifdef HARP_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "cuda/cublas_dl.h"

#define CU(x) CHECK_MSG((x) == cudaSuccess, "%s failed", #x)

static void *dev_alloc(size_t bytes) {
    void *p = NULL;
    CU(cudaMalloc(&p, bytes));
    CU(cudaMemset(p, 0xFF, bytes));   /* poison: NaN in fp32 / fp16, −1 in int8 */
    return p;
}

static void *up(const void *h, size_t bytes) {
    void *d = dev_alloc(bytes);
    CU(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}

static int count_diff(const void *dev, const void *ref, size_t bytes) {
    unsigned char *h = malloc(bytes);
    CU(cudaMemcpy(h, dev, bytes, cudaMemcpyDeviceToHost));
    int n = 0;
    for (size_t i = 0; i < bytes; i++) n += h[i] != ((const unsigned char *)ref)[i];
    free(h);
    return n;
}

static void gpu_case(cublasHandle_t h, harp_rng *r, int rows, int m, int k, int qmax, int x_f16) {
    const int kp = dec_ikpad(k), ldc = dec_ildc(m);
    float *x = malloc(sizeof(float) * rows * k), *wf = malloc(sizeof(float) * m * k), *sa = malloc(sizeof(float) * rows);
    float *sw = malloc(sizeof(float) * m), *y = malloc(sizeof(float) * rows * m);
    uint16_t *xh = malloc(2 * (size_t)rows * k), *y16 = malloc(2 * (size_t)rows * m);
    int8_t *q = malloc((size_t)rows * kp), *w = malloc((size_t)m * kp);
    int32_t *c = malloc(sizeof(int32_t) * rows * ldc);
    fill_rows(r, x, (size_t)rows * k, rows);
    if (x_f16)   /* the fp16 input widened exactly is what both sides quantize */
        for (size_t i = 0; i < (size_t)rows * k; i++) xh[i] = harp_f32_to_f16(x[i]), x[i] = harp_f16_to_f32(xh[i]);
    fill_rows(r, wf, (size_t)m * k, 0);
    CHECK_OK(dec_iweights_rtn(wf, m, k, qmax == 7 ? 4 : 8, w, kp, sw));   /* W4A4 and W8A8 */
    CHECK_OK(dec_aq_rows_ref(x, rows, k, k, qmax, 0.9f, q, kp, sa));
    memset(c, 0, sizeof(int32_t) * rows * ldc);
    dec_igemm_ref(q, kp, rows, w, kp, m, kp, c, ldc);
    dec_iepi_ref(c, ldc, rows, m, sa, sw, NULL, NULL, y, NULL, m);
    dec_iepi_ref(c, ldc, rows, m, sa, sw, NULL, NULL, NULL, y16, m);
    void *dx = x_f16 ? up(xh, 2 * (size_t)rows * k) : up(x, sizeof(float) * rows * k);
    int8_t *dw = up(w, (size_t)m * kp), *dq = dev_alloc((size_t)rows * kp);
    float *dsw = up(sw, sizeof(float) * m), *dsa = dev_alloc(sizeof(float) * rows), *dy = dev_alloc(sizeof(float) * rows * m);
    int32_t *dc = dev_alloc(sizeof(int32_t) * rows * ldc);
    CU(cudaMemset(dc, 0, sizeof(int32_t) * rows * ldc));   /* columns m..ldc are not written */
    void *dy16 = dev_alloc(2 * (size_t)rows * m);
    CHECK_OK(dec_aq_rows(dx, x_f16, rows, k, k, qmax, 0.9f, dq, kp, dsa, NULL));
    CHECK_OK(dec_igemm(h, dq, kp, rows, dw, kp, m, kp, dc, ldc, NULL));
    CHECK_OK(dec_iepi(dc, ldc, rows, m, dsa, dsw, NULL, NULL, dy, 0, m, NULL));
    CHECK_OK(dec_iepi(dc, ldc, rows, m, dsa, dsw, NULL, NULL, dy16, 1, m, NULL));
    CU(cudaDeviceSynchronize());
    const int dq_bad = count_diff(dq, q, (size_t)rows * kp), ds_bad = count_diff(dsa, sa, sizeof(float) * rows);
    const int dc_bad = count_diff(dc, c, sizeof(int32_t) * rows * ldc), dy_bad = count_diff(dy, y, sizeof(float) * rows * m);
    const int dy16_bad = count_diff(dy16, y16, 2 * (size_t)rows * m);
    CU(cudaMemset(dy, 0xFF, sizeof(float) * rows * m));
    CHECK_OK(dec_ilinear(h, dw, dsw, m, k, dx, x_f16, k, rows, qmax, 0.9f, dy, m, dq, dsa, dc, NULL));
    CU(cudaDeviceSynchronize());
    const int lin_bad = count_diff(dy, y, sizeof(float) * rows * m);
    /* X in rows of ldx2 = k rounded up to 8, plus 8 (16-byte rows for fp16 and fp32: the quantizer's
     * register path, with a partial last chunk where k is not a multiple of 8) */
    const int ldx2 = (k + 7) / 8 * 8 + 8;
    size_t esz = x_f16 ? 2 : 4;
    unsigned char *x2 = calloc((size_t)rows * ldx2, esz);
    for (int i = 0; i < rows; i++) memcpy(x2 + (size_t)i * ldx2 * esz, x_f16 ? (const void *)(xh + (size_t)i * k) : (const void *)(x + (size_t)i * k), esz * k);
    void *dx2 = up(x2, esz * rows * ldx2);
    CU(cudaMemset(dq, 0xFF, (size_t)rows * kp));
    CHECK_OK(dec_aq_rows(dx2, x_f16, rows, k, ldx2, qmax, 0.9f, dq, kp, dsa, NULL));
    CU(cudaDeviceSynchronize());
    const int reg_bad = count_diff(dq, q, (size_t)rows * kp) + count_diff(dsa, sa, sizeof(float) * rows);
    CHECK_MSG(!reg_bad, "rows %d, k %d, %s in, ldx %d: %d bytes of codes / scales differ", rows, k, x_f16 ? "fp16" : "fp32", ldx2, reg_bad);
    cudaFree(dx2), free(x2);
    /* the fused kernel at every size, not only where dec_ilinear takes it; Y with wider rows, ldy = m + 3
     * and the next even width in turn (the epilogue's paired 8-byte stores need an even ldy) */
    int epi_bad = 0;
    const int epi = dec_igemm_epi_available();
    if (epi) {
        const int ldy_odd = m + 3, ldy_even = (m + 3 + 1) / 2 * 2;
        float *dye = dev_alloc(sizeof(float) * rows * ldy_even), *ye = malloc(sizeof(float) * rows * ldy_even);
        cudaStream_t stream;
        CU(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
        /* every cluster shape (operand tiles shared by multicast), one cluster per super-tile and persistent
         * (at most 3 clusters, so that each loops over many tiles through one ring), both tile orders, both
         * tile widths */
        static const int cfgs[][5] = {   /* cx, cy, rows first, persistent, output channels a tile */
            {1, 1, 1, 0, 128}, {1, 1, 0, 0, 128}, {1, 1, 1, 1, 128}, {1, 1, 0, 1, 128}, {2, 1, 1, 0, 128}, {1, 2, 1, 0, 128},
            {2, 2, 0, 0, 128}, {1, 4, 1, 0, 128}, {2, 4, 1, 0, 128}, {2, 1, 0, 1, 128}, {1, 2, 1, 1, 128}, {2, 2, 1, 1, 128},
            {1, 4, 1, 1, 128}, {2, 4, 0, 1, 128}, {1, 1, 1, 0, 256}, {1, 1, 0, 1, 256}, {2, 1, 1, 1, 256}, {1, 2, 0, 0, 256},
            {2, 2, 1, 1, 256}, {1, 4, 1, 1, 256}, {2, 4, 1, 0, 256}};
        for (size_t cl = 0; cl < sizeof cfgs / sizeof cfgs[0]; cl++) {
            const int ldy = cl % 2 ? ldy_even : ldy_odd;
            dec_set_igemm_cluster(cfgs[cl][0], cfgs[cl][1]);
            dec_set_igemm_raster(cfgs[cl][2]);
            dec_set_igemm_persistent(cfgs[cl][3], 3 * cfgs[cl][0] * cfgs[cl][1]);
            dec_set_igemm_tile(cfgs[cl][4]);
            CU(cudaMemset(dye, 0xFF, sizeof(float) * rows * ldy));
            if (cl % 2) {   /* on a stream, where the kernel is a programmatic dependent launch: the codes
                             * re-made by the kernel just before (poisoned first), then two calls back to back */
                CU(cudaMemsetAsync(dq, 0xFF, (size_t)rows * kp, stream));
                CU(cudaMemsetAsync(dsa, 0xFF, sizeof(float) * rows, stream));
                CHECK_OK(dec_aq_rows(dx, x_f16, rows, k, k, qmax, 0.9f, dq, kp, dsa, (dec_stream)stream));
                for (int twice = 0; twice < 2; twice++)
                    CHECK_OK(dec_igemm_epi(dq, kp, rows, dw, kp, m, kp, dsa, dsw, NULL, NULL, dye, ldy, (dec_stream)stream));
            } else
                CHECK_OK(dec_igemm_epi(dq, kp, rows, dw, kp, m, kp, dsa, dsw, NULL, NULL, dye, ldy, NULL));
            CU(cudaDeviceSynchronize());
            CU(cudaMemcpy(ye, dye, sizeof(float) * rows * ldy, cudaMemcpyDeviceToHost));
            for (int i = 0; i < rows; i++) {
                epi_bad += memcmp(ye + (size_t)i * ldy, y + (size_t)i * m, sizeof(float) * m) != 0;
                uint32_t pad[3];   /* the columns beyond m keep the poison */
                memcpy(pad, ye + (size_t)i * ldy + m, sizeof pad);
                epi_bad += pad[0] != 0xFFFFFFFFu || pad[1] != 0xFFFFFFFFu || pad[2] != 0xFFFFFFFFu;
            }
        }
        dec_set_igemm_cluster(0, 0);
        dec_set_igemm_raster(-1);
        dec_set_igemm_persistent(-1, 0);
        dec_set_igemm_tile(0);
        cudaStreamDestroy(stream);
        cudaFree(dye), free(ye);
    }
    CHECK_MSG(!dq_bad && !ds_bad && !dc_bad && !dy_bad && !dy16_bad && !lin_bad && !epi_bad,
              "rows %d, %dx%d, qmax %d, %s in: differing bytes: codes %d, scales %d, int32 %d, fp32 out %d, fp16 out %d, "
              "dec_ilinear %d; fused GEMM + epilogue: %d rows differ", rows, m, k, qmax, x_f16 ? "fp16" : "fp32", dq_bad, ds_bad, dc_bad,
              dy_bad, dy16_bad, lin_bad, epi_bad);
    printf("gpu rows %3d  %4dx%-5d (kpad %5d)  A%d  %s in: codes, scales, int32 C, fp32 / fp16 Y%s %s (tolerance 0)\n", rows, m, k,
           kp, qmax == 127 ? 8 : 4, x_f16 ? "fp16" : "fp32", epi ? ", fused wgmma Y (clusters 1x1 2x1 1x2 2x2 1x4 2x4, per super-tile and persistent, both orders, 128- and 256-wide tiles)" : "",
           dq_bad || ds_bad || dc_bad || dy_bad || dy16_bad || lin_bad || epi_bad ? "DIFFER" : "bit-identical");
    cudaFree(dx), cudaFree(dw), cudaFree(dq), cudaFree(dsw), cudaFree(dsa), cudaFree(dy), cudaFree(dc), cudaFree(dy16);
    free(x), free(wf), free(sa), free(sw), free(y), free(xh), free(y16), free(q), free(w), free(c);
}

/* W4A4 / W4A8 from stored INT4 planes: dec_iweights_upload + dec_ilinear against the twins on the
 * same planes (bit-identical). */
static void gpu_planes(cublasHandle_t h, harp_rng *r) {
    const int m = 40, n = 1000, rows = 17, kp = dec_ikpad(n), ldc = dec_ildc(m);
    dec_qplanes q;
    uint8_t *codes, *zr;
    float *sc;
    make_int_planes(r, 4, m, n, &q, &codes, &sc, &zr);
    int8_t *w = malloc((size_t)m * kp), *dw = NULL, *qa = malloc((size_t)rows * kp);
    float *sw = malloc(sizeof(float) * m), *dsw = NULL, *x = malloc(sizeof(float) * rows * n), sa[17];
    float *y = malloc(sizeof(float) * rows * m);
    int32_t *c = calloc((size_t)rows * ldc, sizeof(int32_t));
    fill_rows(r, x, (size_t)rows * n, 3);
    CHECK_OK(dec_iweights_from_qplanes(&q, "test", w, kp, sw));
    CHECK_OK(dec_iweights_upload(&q, "test", NULL, &dw, &dsw, NULL));
    for (int a = 0; a < 2; a++) {
        const int qmax = a ? 7 : 127;
        CHECK_OK(dec_aq_rows_ref(x, rows, n, n, qmax, 1.0f, qa, kp, sa));
        dec_igemm_ref(qa, kp, rows, w, kp, m, kp, c, ldc);
        dec_iepi_ref(c, ldc, rows, m, sa, sw, NULL, NULL, y, NULL, m);
        float *dx = up(x, sizeof(float) * rows * n), *dy = dev_alloc(sizeof(float) * rows * m), *dsa = dev_alloc(sizeof(float) * rows);
        int8_t *dq = dev_alloc((size_t)rows * kp);
        int32_t *dc = dev_alloc(sizeof(int32_t) * rows * ldc);
        CHECK_OK(dec_ilinear(h, dw, dsw, m, n, dx, 0, n, rows, qmax, 1.0f, dy, m, dq, dsa, dc, NULL));
        CU(cudaDeviceSynchronize());
        const int bad = count_diff(dy, y, sizeof(float) * rows * m);
        CHECK_MSG(!bad, "W4A%d from int4 planes (%dx%d, %d rows): %d bytes of Y differ", a ? 4 : 8, m, n, rows, bad);
        printf("gpu W4A%d from stored int4 planes %dx%d, %d rows: dec_iweights_upload + dec_ilinear %s (tolerance 0)\n", a ? 4 : 8, m,
               n, rows, bad ? "DIFFER" : "bit-identical");
        cudaFree(dx), cudaFree(dy), cudaFree(dsa), cudaFree(dq), cudaFree(dc);
    }
    cudaFree(dw), cudaFree(dsw);
    free(w), free(qa), free(sw), free(x), free(y), free(c), free(codes), free(sc), free(zr);
}

/* dec_aq_int8 against dec_aq_int8_ref (codes, scales, zero-point terms: tolerance 0), then
 * dec_igemm_scaled with the zero-point term (the fused kernel where dec_igemm_epi_pays, else cuBLAS +
 * epilogue) against dec_igemm_ref + dec_iepi_ref. */
static void gpu_int8_codes(cublasHandle_t h, harp_rng *r, int rows, int m, int k, int bits, int sym) {
    const harp_aq_fmt f = {.bits = bits, .sym = sym, .group = 0, .clip = 0.95f, .scale_f16 = 0};
    const int kp = dec_ikpad(k), ldc = dec_ildc(m);
    float *x = malloc(sizeof(float) * rows * k), *wf = malloc(sizeof(float) * m * k), *sa = malloc(sizeof(float) * rows);
    float *sw = malloc(sizeof(float) * m), *y = malloc(sizeof(float) * rows * m);
    int8_t *q = malloc((size_t)rows * kp), *w = malloc((size_t)m * kp);
    int32_t *c = calloc((size_t)rows * ldc, sizeof(int32_t)), *corr = malloc(sizeof(int32_t) * rows), *rs = malloc(sizeof(int32_t) * m);
    fill_rows(r, x, (size_t)rows * k, rows);
    fill_rows(r, wf, (size_t)m * k, 0);
    CHECK_OK(dec_iweights_rtn(wf, m, k, 4, w, kp, sw));
    for (int j = 0; j < m; j++) {
        rs[j] = 0;
        for (int t = 0; t < kp; t++) rs[j] += w[(size_t)j * kp + t];
    }
    CHECK_OK(dec_aq_int8_ref(&f, x, rows, k, k, q, kp, sa, corr));
    dec_igemm_ref(q, kp, rows, w, kp, m, kp, c, ldc);
    dec_iepi_ref(c, ldc, rows, m, sa, sw, corr, rs, y, NULL, m);
    float *dx = up(x, sizeof(float) * rows * k), *dsw = up(sw, sizeof(float) * m), *dsa = dev_alloc(sizeof(float) * rows);
    float *dy = dev_alloc(sizeof(float) * rows * m);
    int8_t *dw = up(w, (size_t)m * kp), *dq = dev_alloc((size_t)rows * kp);
    int32_t *dcorr = dev_alloc(sizeof(int32_t) * rows), *drs = up(rs, sizeof(int32_t) * m), *dc = dev_alloc(sizeof(int32_t) * rows * ldc);
    CHECK_OK(dec_aq_int8(&f, dx, rows, k, k, dq, kp, dsa, dcorr, NULL));
    CHECK_OK(dec_igemm_scaled(h, dq, kp, rows, dw, kp, m, kp, dsa, dsw, dcorr, drs, dy, m, dc, NULL));
    CU(cudaDeviceSynchronize());
    const int qb = count_diff(dq, q, (size_t)rows * kp), sb = count_diff(dsa, sa, sizeof(float) * rows);
    const int cb = count_diff(dcorr, corr, sizeof(int32_t) * rows), yb = count_diff(dy, y, sizeof(float) * rows * m);
    CHECK_MSG(!qb && !sb && !cb && !yb, "int8 codes %d-bit %s, rows %d, %dx%d: differing bytes: codes %d, scales %d, corr %d, Y %d", bits,
              sym ? "sym" : "asym", rows, m, k, qb, sb, cb, yb);
    printf("gpu int8 codes A%d %s rows %3d %4dx%-5d: dec_aq_int8 + dec_igemm_scaled (%s) %s (tolerance 0)\n", bits, sym ? "sym " : "asym",
           rows, m, k, dec_igemm_epi_pays(rows, m) ? "fused" : "cuBLAS",
           qb || sb || cb || yb ? "DIFFER" : "bit-identical");
    cudaFree(dx), cudaFree(dsw), cudaFree(dsa), cudaFree(dy), cudaFree(dw), cudaFree(dq), cudaFree(dcorr), cudaFree(drs), cudaFree(dc);
    free(x), free(wf), free(sa), free(sw), free(y), free(q), free(w), free(c), free(corr), free(rs);
}

static int gpu_run(void) {
    cublasHandle_t h;
    const cublasStatus_t st = harp_cublas_create(&h);
    if (st != CUBLAS_STATUS_SUCCESS) {
        printf("SKIP: cuBLAS: %s\n", harp_cublas_why(st));
        return 77;
    }
    harp_rng r;
    harp_rng_seed(&r, 21);
    static const int rows[] = {1, 3, 17, 512}, mk[][2] = {{13, 172}, {64, 1536}, {96, 4096}, {40, 4100}, {20, 1001}};
    for (int ri = 0; ri < 4; ri++)
        for (int si = 0; si < 5; si++)
            for (int a = 0; a < 2; a++) gpu_case(h, &r, rows[ri], mk[si][0], mk[si][1], a ? 7 : 127, (ri + si + a) & 1);
    /* the fused kernel's tile edges: rows and channels around its 128-tiles, k past several 128-byte blocks
     * and not a multiple of them, the Llama-2 widths */
    static const int big[][3] = {{65, 129, 4100}, {130, 300, 4096}, {257, 1000, 1536}, {128, 128, 128}, {3, 4096, 256},
                                 {64, 257, 11008}, {200, 11008, 16}};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) gpu_case(h, &r, big[i][0], big[i][1], big[i][2], i % 2 ? 7 : 127, (int)i & 1);
    if (dec_igemm_epi_available()) {   /* misaligned operands and bad leading dimensions: one line, nothing launched */
        CHECK(dec_igemm_epi(NULL, 176, 1, NULL, 176, 8, 172, NULL, NULL, NULL, NULL, NULL, 8, NULL) == HARP_ERR_SHAPE);
        CHECK(dec_igemm_epi((const int8_t *)16, 168, 1, (const int8_t *)16, 176, 8, 176, NULL, NULL, NULL, NULL, NULL, 8, NULL) == HARP_ERR_SHAPE);
        CHECK(dec_igemm_epi((const int8_t *)8, 176, 1, (const int8_t *)16, 176, 8, 176, NULL, NULL, NULL, NULL, NULL, 8, NULL) == HARP_ERR_SHAPE);
    } else
        printf("fused int8 GEMM + epilogue: not available on this device (sm_90 only); the cuBLAS path was tested\n");
    gpu_planes(h, &r);
    static const int ib[][2] = {{4, 0}, {8, 0}, {8, 1}, {3, 0}, {4, 1}};
    for (int i = 0; i < 5; i++) {
        gpu_int8_codes(h, &r, 5, 40, 1001, ib[i][0], ib[i][1]);
        gpu_int8_codes(h, &r, 130, 300, 4096, ib[i][0], ib[i][1]);
    }
    /* the layout rule: leading dimensions that are not multiples of 16 are refused with one line */
    CHECK(dec_igemm(h, NULL, 172, 1, NULL, 176, 8, 176, NULL, 8, NULL) == HARP_ERR_SHAPE);
    printf("cuBLAS refused %d of the int8 products (computed by the dp4a fallback instead)\n", dec_igemm_fallbacks());
    harp_cublas_destroy(h);
    return t_done();
}
#endif

static int cpu_run(void) {
    test_quant_twin();
    test_weights_twin();
    test_product_twin();
    test_int8_codes_twin();
    return t_done();
}

T_CPU_GPU_MAIN(cpu_run, gpu_run)
