/* ldp2 on the GPU (src/cuda/dec_ldp.h): device layout, twin and kernel.
 *
 * Without arguments (CPU, every build):
 *  - dec_ldp_pack + the readers against the stored planes value for value (every code, every fp16
 *    level bit pattern; padding rows / columns read code 0, level 0) at m 1, 5, 17, 33 × n 1, 9, 128,
 *    172, 1536, 4100 with per-channel groups and groups of 128 and 256 (ragged last group included);
 *    a group of 64 or 200 is refused with HARP_ERR_UNSUPPORTED;
 *  - the twin dec_ldp_gemv_ref against the CPU kernels' references BIT-EXACTLY (tolerance 0: the same
 *    double sums in the same column order): int4 activations from harp_aq's quantizer vs
 *    harp_ldp_gemv_a4_ref, fp16-representable activations vs the ldp2 gemv_ref; and the fast CPU
 *    kernels (harp_ldp_gemv_a4, the ldp2 gemv) within their float bound (n + 2)·2^-24·Σ|w x|;
 *  - the kernel's data path emulated on the host (dec_ldp_pair / dec_ldp_a4_pair, both shift variants,
 *    the mma.m16n8k16 fragment maps) equal to the twin on exact (integer) cases.
 * With "gpu" (label gpu; exit 77 without a CUDA build or a device): dec_ldp_gemv against the twin at
 * m 1, 17 × n 128, 172, 1536, 4100, 4864, 11008 and m 4096 × n 1536, 4864, 11008, batch 1, 3, 8, per
 * channel and group 128, int4 (codes −8…7 incl. −8) and fp16 activations: |y − twin| ≤ the bound
 * dec_ldp.h derives for each entry (worst error and tolerance printed per case); cases with integer
 * levels and integer activations are exact in fp32 and must be BIT-IDENTICAL; the other kernel variant
 * (ALU shifts, the other k-split warp count) is held to the same; a rerun on a PDL stream must be
 * bit-identical to the first launch, and so must the launch that reads its activations per super-tile
 * instead of from the CTA's shared copy (groups of 256 and 384 too). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/dec_ldp.h"
#include "harp/cuda_eval.h"
#include "quant/aq.h"
#include "quant/ldp.h"
#include "quant/qblocks.h"
#include "quant_testlib.h"
#include "test_util.h"

/* Stored ldp2 planes: random codes; per (row, group) random ordered levels (normal · 0.02) or, with
 * integer != 0, ordered integers in −6…6 (exact products and sums on the device). */
static void make_planes(harp_rng *r, int m, int n, int ng, int integer, uint8_t **qw, uint16_t **lv) {
    *qw = malloc((size_t)m * (size_t)harp_scalar_row_bytes(n, 2));
    *lv = malloc(sizeof(uint16_t) * 4 * (size_t)m * ng);
    dec_ldp_random_planes(r, m, n, ng, *qw, *lv);
    for (size_t k = 0; k < (size_t)m * ng; k++) {
        float v[4];
        for (int j = 0; j < 4; j++) v[j] = integer ? (float)((int)(harp_rng_u64(r) % 13) - 6) : (float)(0.02 * harp_rng_normal(r));
        for (int i = 1; i < 4; i++)   /* insertion sort: ordered, as the loader requires */
            for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
                const float t = v[j];
                v[j] = v[j - 1], v[j - 1] = t;
            }
        for (int j = 0; j < 4; j++) (*lv)[4 * k + (size_t)j] = harp_f32_to_f16(v[j]);
    }
}

/* Random activations: int4 codes −8…7 (xq, B rows of npad/2 bytes) with scales in [0.05, 0.15), or fp16
 * (x16 as bytes, B × npad): integers −8…7 when integer, else normal. */
static void make_act(harp_rng *r, const dec_ldp_layout *L, int B, int a4, int integer, uint8_t *xh, float *xs) {
    for (int b = 0; b < B; b++) {
        xs[b] = (float)(0.05 + 0.1 * harp_rng_uniform(r));
        for (int c = 0; c < L->n; c++) {
            const int q = (int)(harp_rng_u64(r) % 16) - 8;
            if (a4) xh[(size_t)b * L->npad / 2 + c / 2] |= (uint8_t)((q & 15) << (4 * (c & 1)));
            else {
                const uint16_t h = harp_f32_to_f16(integer ? (float)q : (float)harp_rng_normal(r));
                memcpy(xh + 2 * ((size_t)b * L->npad + c), &h, 2);
            }
        }
    }
}

static uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The kernel's data path on the host: every lane's 16-byte code chunk and level pools as dec_ldp.cu
 * loads them, decoded with its helpers (dec_ldp_pair, dec_ldp_a4_pair; shifts as shifts when alu, as
 * IMAD.HI otherwise) into mma.m16n8k16 fragments
 * (A: a0 = (g, 2t..), a1 = (g+8, 2t..), a2 = (g, 2t+8..), a3 = (g+8, 2t+8..); B: b0 = (2t.., col g),
 * b1 = (2t+8.., col g)), multiplied in double as the PTX mma defines it, scaled per row at the end. */
static void emulate(const dec_ldp_layout *L, const uint8_t *codes, const uint8_t *levels, const dec_ldp_act *x, int B, int alu, float *y) {
    for (int rt = 0; rt < L->nrt; rt++) {
        double D[16][8] = {{0}};
        for (int st = 0; st < L->nst; st++)
            for (int j = 0; j < 4; j++) {
                double A[2][16][16], Bm[2][16][8];
                for (int lane = 0; lane < 32; lane++) {
                    const int g = lane >> 2, t = lane & 3, b = g < B ? g : B - 1;
                    const int G0 = (int)((long)st * DEC_LDP_COLS / L->g), G = G0 < L->ng - 1 ? G0 : L->ng - 1;
                    const uint8_t *cp = codes + (((size_t)rt * L->nst + st) * 32 + lane) * 16, *lp = levels + (((size_t)rt * L->ng + G) * 8 + g) * 16;
                    const uint32_t pool[4] = {rd32(lp), rd32(lp + 4), rd32(lp + 8), rd32(lp + 12)};
                    uint32_t ag[4], ah[4], xv[4];
                    uint32_t ws = rd32(cp + 4 * j);
                    for (int i = 0; i < 4; i++) {   /* the kernel's two ways to shift */
                        if (i) ws = alu ? rd32(cp + 4 * j) >> (2 * i) : dec_ldp_umulhi(ws, 1u << 30);
                        dec_ldp_pair(ws, pool, alu, &ag[i], &ah[i]);
                    }
                    for (int p = 0; p < 4; p++)
                        xv[p] = x->xq ? dec_ldp_a4_pair(rd32(x->xq + (size_t)b * L->npad / 2 + (size_t)st * 64 + 4 * (t + 4 * j)), p)
                                      : rd32((const uint8_t *)(x->x16 + (size_t)b * L->npad + (size_t)st * 128 + 8 * (t + 4 * j) + 2 * p));
                    for (int mm = 0; mm < 2; mm++)
                        for (int h = 0; h < 2; h++) {
                            const int sh = 16 * h;
                            A[mm][g][2 * t + h] = harp_f16_to_f32((uint16_t)(ag[2 * mm] >> sh));
                            A[mm][g + 8][2 * t + h] = harp_f16_to_f32((uint16_t)(ah[2 * mm] >> sh));
                            A[mm][g][2 * t + 8 + h] = harp_f16_to_f32((uint16_t)(ag[2 * mm + 1] >> sh));
                            A[mm][g + 8][2 * t + 8 + h] = harp_f16_to_f32((uint16_t)(ah[2 * mm + 1] >> sh));
                            Bm[mm][2 * t + h][g] = harp_f16_to_f32((uint16_t)(xv[2 * mm] >> sh));
                            Bm[mm][2 * t + 8 + h][g] = harp_f16_to_f32((uint16_t)(xv[2 * mm + 1] >> sh));
                        }
                }
                for (int mm = 0; mm < 2; mm++)
                    for (int i = 0; i < 16; i++)
                        for (int c = 0; c < 8; c++)
                            for (int k = 0; k < 16; k++) D[i][c] += A[mm][i][k] * Bm[mm][k][c];
            }
        for (int i = 0; i < 16 && 16 * rt + i < L->m; i++)
            for (int b = 0; b < B; b++) y[(size_t)b * L->m + 16 * rt + i] = (float)((x->xq ? (double)x->xs[b] : 1.0) * D[i][b]);
    }
}

/* Integer levels and activations: the emulated kernel (double) and the twin are exact, so equal. */
static void test_emulation(void) {
    static const int shapes[][3] = {{1, 128, 0}, {17, 172, 0}, {17, 1536, 128}, {33, 4100, 256}, {5, 4100, 0}};
    harp_rng r;
    harp_rng_seed(&r, 99);
    int cases = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int a4 = 0; a4 < 2; a4++)
            for (int bi = 0; bi < 3; bi++) {
                const int B = bi ? 4 * bi : 1, m = shapes[si][0], n = shapes[si][1];
                dec_ldp_layout L;
                CHECK_OK(dec_ldp_layout_of(m, n, shapes[si][2], "test", &L));
                uint8_t *qw, *codes = malloc(dec_ldp_code_bytes(&L)), *levels = malloc(dec_ldp_level_bytes(&L));
                uint16_t *lv;
                make_planes(&r, m, n, L.ng, 1, &qw, &lv);
                dec_ldp_pack(&L, qw, lv, codes, levels);
                uint8_t *xh = calloc((size_t)B * L.npad * 2, 1);
                float xs[8], *y = malloc(sizeof(float) * B * m), *ye = malloc(sizeof(float) * B * m);
                make_act(&r, &L, B, a4, 1, xh, xs);
                const dec_ldp_act x = {a4 ? xh : NULL, xs, a4 ? NULL : (const uint16_t *)(void *)xh};
                CHECK_OK(dec_ldp_gemv_ref(&L, codes, levels, &x, B, y, NULL));
                int bad = 0;
                for (int alu = 0; alu < 2; alu++) {
                    emulate(&L, codes, levels, &x, B, alu, ye);
                    for (int k = 0; k < B * m; k++) bad += y[k] != ye[k];
                }
                CHECK_MSG(!bad, "emulated kernel %s %dx%d group %d B %d: %d entries differ from the twin", a4 ? "A4" : "A16", m, n, L.g, B, bad);
                cases++;
                free(qw), free(lv), free(codes), free(levels), free(xh), free(y), free(ye);
            }
    printf("emulated kernel data path (fragments, PRMT selectors, int4 → fp16; both shift variants): %d cases equal to the twin, exact\n",
           cases);
}

static void test_pack(void) {
    static const int ms[] = {1, 5, 17, 33}, ns[] = {1, 9, 128, 172, 1536, 4100}, gs[] = {0, 128, 256};
    harp_rng r;
    harp_rng_seed(&r, 77);
    long compared = 0;
    for (int mi = 0; mi < 4; mi++)
        for (int ni = 0; ni < 6; ni++)
            for (int gi = 0; gi < 3; gi++) {
                const int m = ms[mi], n = ns[ni];
                dec_ldp_layout L;
                CHECK_OK(dec_ldp_layout_of(m, n, gs[gi], "test", &L));
                uint8_t *qw, *codes = malloc(dec_ldp_code_bytes(&L)), *levels = malloc(dec_ldp_level_bytes(&L));
                uint16_t *lv;
                make_planes(&r, m, n, L.ng, 0, &qw, &lv);
                dec_ldp_pack(&L, qw, lv, codes, levels);
                const int64_t rb = harp_scalar_row_bytes(n, 2);
                int bad = 0;
                for (int64_t i = 0; i < (int64_t)L.nrt * DEC_LDP_ROWS; i++) {
                    for (int64_t c = 0; c < L.npad; c++)
                        bad += dec_ldp_code_at(&L, codes, i, c) != (i < m && c < n ? (int)harp_scalar_get(qw + i * rb, c, 2) : 0);
                    for (int64_t G = 0; G < L.ng; G++)
                        for (int k = 0; k < 4; k++)
                            bad += dec_ldp_level_at(&L, levels, i, G, k) != (i < m ? lv[4 * (i * L.ng + G) + k] : 0);
                }
                CHECK_MSG(!bad, "pack %dx%d group %d: %d codes / levels differ from the stored planes", m, n, gs[gi], bad);
                compared += (long)L.nrt * DEC_LDP_ROWS * (L.npad + 4 * L.ng);
                free(qw), free(lv), free(codes), free(levels);
            }
    dec_ldp_layout L;
    CHECK(dec_ldp_layout_of(8, 1024, 64, "test", &L) == HARP_ERR_UNSUPPORTED);
    CHECK(dec_ldp_layout_of(8, 1024, 200, "test", &L) == HARP_ERR_UNSUPPORTED);
    CHECK(dec_ldp_layout_of(8, 1024, 1024, "test", &L) == HARP_OK && L.ng == 1);
    printf("pack: %ld codes and levels compared with the stored planes (padding included), exact; groups 64 / 200 refused\n", compared);
}

/* Twin vs the CPU references (bit-exact) and the fast CPU kernels (float bound). */
static void twin_shape(harp_rng *r, int m, int n, int group) {
    harp_qtensor w;
    CHECK_OK(qt_random_tensor(r, HARP_QTYPE_LDP2, m, n, group, 0, &w));
    dec_ldp_layout L;
    CHECK_OK(dec_ldp_layout_of(m, n, w.group_size, "test", &L));
    uint8_t *codes = malloc(dec_ldp_code_bytes(&L)), *levels = malloc(dec_ldp_level_bytes(&L));
    dec_ldp_pack(&L, w.planes[QT_LDP_QWEIGHT].data, w.planes[QT_LDP_LEVELS].data, codes, levels);
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * m), *yr = malloc(sizeof(float) * m);
    float *yf = malloc(sizeof(float) * m), *W = malloc(sizeof(float) * m * n);
    uint16_t *x16 = calloc((size_t)L.npad, 2);
    uint8_t *xq = calloc((size_t)L.npad / 2, 1);
    for (int c = 0; c < n; c++) {
        x[c] = harp_f16_to_f32(harp_f32_to_f16((float)harp_rng_normal(r) * (c % 13 == 0 ? 8.0f : 1.0f)));
        x16[c] = harp_f32_to_f16(x[c]);
    }
    CHECK_OK(harp_qtensor_dequantize(&w, W));
    /* int4: harp_aq's per-token symmetric codes, as harp_ldp_gemv_a4_ref quantizes */
    const harp_aq_fmt f = {.bits = 4, .sym = 1, .group = 0, .clip = 1.0f, .scale_f16 = 0};
    harp_aq_planes p;
    CHECK_OK(harp_aq_planes_alloc(&f, 1, n, &p));
    CHECK_OK(harp_aq_quantize_ref(&f, x, 1, n, n, &p));
    memcpy(xq, p.codes, (size_t)harp_aq_row_bytes(&f, n));
    const dec_ldp_act a4 = {xq, p.scale, NULL}, a16 = {NULL, NULL, x16};
    CHECK_OK(dec_ldp_gemv_ref(&L, codes, levels, &a4, 1, y, NULL));
    CHECK_OK(harp_ldp_gemv_a4_ref(&w, x, yr));
    CHECK_MSG(!memcmp(y, yr, sizeof(float) * m), "twin A4 %dx%d group %d: differs from harp_ldp_gemv_a4_ref", m, n, group);
    CHECK_OK(harp_ldp_gemv_a4(&w, x, yf));
    int bad = 0;
    for (int i = 0; i < m; i++) {
        double mass = 0;
        for (int c = 0; c < n; c++) mass += fabs((double)W[(size_t)i * n + c]) * 8.0 * p.scale[0];
        bad += !(fabs((double)yf[i] - y[i]) <= (double)(n + 3) * 0x1p-24 * mass);
    }
    CHECK_MSG(!bad, "twin A4 %dx%d group %d: %d rows of harp_ldp_gemv_a4 off the twin", m, n, group, bad);
    const harp_qtype_traits *tr = harp_qtype_traits_of(HARP_QTYPE_LDP2);
    CHECK_OK(dec_ldp_gemv_ref(&L, codes, levels, &a16, 1, y, NULL));
    tr->gemv_ref(&w, x, yr);
    CHECK_MSG(!memcmp(y, yr, sizeof(float) * m), "twin A16 %dx%d group %d: differs from the ldp2 gemv_ref", m, n, group);
    CHECK_OK(tr->gemv(&w, x, yf, 0));
    bad = 0;
    for (int i = 0; i < m; i++) {
        double mass = 0;
        for (int c = 0; c < n; c++) mass += fabs((double)W[(size_t)i * n + c] * x[c]);
        bad += !(fabs((double)yf[i] - y[i]) <= (double)(n + 2) * 0x1p-24 * mass);
    }
    CHECK_MSG(!bad, "twin A16 %dx%d group %d: %d rows of the ldp2 gemv off the twin", m, n, group, bad);
    harp_aq_planes_free(&p);
    harp_qtensor_free(&w);
    free(codes), free(levels), free(x), free(y), free(yr), free(yf), free(W), free(x16), free(xq);
}

static void test_twin(void) {
    static const int shapes[][3] = {{1, 1, 0}, {7, 172, 0}, {7, 172, 128}, {17, 1536, 128}, {5, 1536, 256}, {3, 4100, 128}, {9, 4100, 0}};
    harp_rng r;
    harp_rng_seed(&r, 15);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) twin_shape(&r, shapes[i][0], shapes[i][1], shapes[i][2]);
    printf("twin: %zu shapes, A4 and A16, bit-identical to the CPU references; fast CPU kernels within (n + 2)·2^-24·Σ|w x|\n",
           sizeof shapes / sizeof shapes[0]);
}

#ifdef HARP_HAVE_CUDA
#include <cuda_runtime_api.h>

#define CU(x) CHECK_MSG((x) == cudaSuccess, "%s failed", #x)

/* Entries of y off the twin yr (tolerance tol, 0 when exact); prints the worst and the first misses. */
static int off_twin(const char *what, const char *variant, const float *y, const float *yr, const float *tol, int exact, int B, int m) {
    double worst = -1, wtol = 0;
    int wb = 0, wr = 0, bad = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < m; i++) {
            const size_t k = (size_t)b * m + i;
            const double e = fabs((double)y[k] - yr[k]), t = exact ? 0.0 : tol[k];
            const int off = !(e <= t);
            if (off && bad < 3)
                printf("  MISMATCH %s (%s): y[b %d][row %d] = %.9g, twin %.9g, |err| %.3g > tol %.3g\n", what, variant, b, i, (double)y[k],
                       (double)yr[k], e, t);
            bad += off;
            if (e > worst || (e == worst && t < wtol)) worst = e, wtol = t, wb = b, wr = i;
        }
    printf("%-40s %-16s worst |err| %.3g (tol %.3g) at b %d row %d, %d off\n", what, variant, worst, wtol, wb, wr, bad);
    return bad;
}

/* One GPU case: the default launch and the other variant (ALU shifts, the other warp count) vs the twin
 * (bound per entry; exact when integer), and a rerun of the default on a PDL stream bit-identical. */
static void gpu_case(harp_rng *r, int m, int n, int group, int B, int a4, int integer, cudaStream_t st) {
    dec_ldp_layout L;
    CHECK_OK(dec_ldp_layout_of(m, n, group, "test", &L));
    uint8_t *qw, *codes = malloc(dec_ldp_code_bytes(&L)), *levels = malloc(dec_ldp_level_bytes(&L));
    uint16_t *lv;
    make_planes(r, m, n, L.ng, integer, &qw, &lv);
    dec_ldp_pack(&L, qw, lv, codes, levels);
    const size_t xb = a4 ? (size_t)B * L.npad / 2 : (size_t)B * L.npad * 2;
    uint8_t *xh = calloc(xb, 1);
    float xs[8];
    make_act(r, &L, B, a4, integer, xh, xs);
    const dec_ldp_act ha = {a4 ? xh : NULL, xs, a4 ? NULL : (const uint16_t *)(void *)xh};
    float *yr = malloc(sizeof(float) * B * m), *tol = malloc(sizeof(float) * B * m), *y = malloc(sizeof(float) * B * m);
    float *y2 = malloc(sizeof(float) * B * m), *y3 = malloc(sizeof(float) * B * m), *y4 = malloc(sizeof(float) * B * m);
    float *y5 = malloc(sizeof(float) * B * m);
    CHECK_OK(dec_ldp_gemv_ref(&L, codes, levels, &ha, B, yr, tol));
    dec_ldp_dev w;
    CHECK_OK(dec_ldp_upload(&L, codes, levels, &w));
    void *dx;
    float *dxs, *dy;
    CU(cudaMalloc(&dx, xb));
    CU(cudaMalloc((void **)&dxs, sizeof xs));
    CU(cudaMalloc((void **)&dy, sizeof(float) * B * m));
    CU(cudaMemcpy(dx, xh, xb, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(dxs, xs, sizeof xs, cudaMemcpyHostToDevice));
    const dec_ldp_act da = {a4 ? dx : NULL, dxs, a4 ? NULL : dx};
    /* default launch (legacy stream), then on the PDL stream: the same, the other variant, x read from
     * global memory, x read from the CTA's shared copy */
    const dec_ldp_opts other = {.fma = 1, .warps = L.nrt <= 512 ? 8 : 16}, unstaged = {.xs = -1}, staged = {.xs = 1};
    float *out[5] = {y, y2, y3, y4, y5};
    const dec_ldp_opts *vo[5] = {NULL, NULL, &other, &unstaged, &staged};
    for (int v = 0; v < 5; v++) {
        CU(cudaMemset(dy, 0xff, sizeof(float) * B * m));   /* NaN: an unwritten entry fails */
        CHECK_OK(dec_ldp_gemv(&w, &da, B, dy, m, vo[v], v ? (dec_stream)st : NULL));
        CU(cudaStreamSynchronize(st));
        CU(cudaMemcpy(out[v], dy, sizeof(float) * B * m, cudaMemcpyDeviceToHost));
    }
    char what[96];
    snprintf(what, sizeof what, "%s m %d n %d group %d B %d%s", a4 ? "A4" : "A16", m, n, L.g, B, integer ? " integer" : "");
    const int bad = off_twin(what, "default", y, yr, tol, integer, B, m), bad3 = off_twin(what, "fma/other warps", y3, yr, tol, integer, B, m);
    const int same = !memcmp(y, y2, sizeof(float) * B * m);
    CHECK_MSG(!bad && !bad3, "%s: %d / %d entries off the twin (default / other variant)", what, bad, bad3);
    CHECK_MSG(same, "%s: a rerun on a PDL stream is not bit-identical", what);
    /* the same products in the same order: activations staged in shared memory or read per super-tile */
    CHECK_MSG(!memcmp(y, y4, sizeof(float) * B * m) && !memcmp(y, y5, sizeof(float) * B * m),
              "%s: activations read per super-tile and from the CTA's shared copy differ", what);
    dec_ldp_dev_free(&w);
    cudaFree(dx), cudaFree(dxs), cudaFree(dy);
    free(qw), free(lv), free(codes), free(levels), free(xh), free(yr), free(tol), free(y), free(y2), free(y3), free(y4), free(y5);
}

static int gpu_run(void) {
    harp_rng r;
    harp_rng_seed(&r, 151);
    cudaStream_t st;
    CU(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    static const int ns[] = {128, 172, 1536, 4100, 4864, 11008}, bs[] = {1, 3, 8};
    for (int mi = 0; mi < 2; mi++)
        for (int ni = 0; ni < 6; ni++)
            for (int gi = 0; gi < 2; gi++)
                for (int bi = 0; bi < 3; bi++)
                    for (int a4 = 0; a4 < 2; a4++) gpu_case(&r, mi ? 17 : 1, ns[ni], gi ? 128 : 0, bs[bi], a4, 0, st);
    for (int a4 = 0; a4 < 2; a4++) {
        gpu_case(&r, 4096, 1536, 128, 8, a4, 0, st);
        gpu_case(&r, 4096, 11008, a4 ? 128 : 0, a4 ? 1 : 3, a4, 0, st);
        gpu_case(&r, 17, 11008, 128, 8, a4, 1, st);    /* exact: integer levels and activations */
        gpu_case(&r, 4096, 4864, 0, 3, a4, 1, st);
        gpu_case(&r, 17, 4100, 256, 3, a4, 0, st);     /* group index by shift (256) and by division (384) */
        gpu_case(&r, 17, 1536, 384, 2, a4, 0, st);
        gpu_case(&r, 4096, 11008, 128, 2, a4, 0, st);   /* a 45 KiB shared copy beside the 9 KiB reduction buffer */
    }
    cudaStreamDestroy(st);
    return t_done();
}
#endif

static int cpu_run(void) {
    test_pack();
    test_twin();
    test_emulation();
    return t_done();
}

T_CPU_GPU_MAIN(cpu_run, gpu_run)
