/* 4-bit KV cache of decode attention (decode.h, "W/A/KV on the GPU").
 *
 * Without arguments (CPU, every build): the twin's cache is the CPU KV quantizer's —
 *  - every row dec_rope_kv4_ref stores dequantizes to exactly harp_aq_fake (the CPU path's fake
 *    quantization: 4 bits, asymmetric, group head_dim, fp16 scales, clip) of the RoPE'd K / raw V;
 *  - dec_attn_kv4_ref equals dec_attn_f32_ref over those fake-quantized caches (bit for bit);
 *  - dec_kv4_layout: 16-byte aligned planes, no overlap.
 * With "gpu" (label gpu; exit 77 without a CUDA build or a device), head_dim 32 / 64 / 128, GQA
 * (32/8, 6/2, 16/2, 64/8), MHA 4/4 and 32/32, ctx 1, 63, 64, 65, 130, 4096 (and a window of 100 at ctx 300),
 * batch 1 (ctx 4096) and 3 (the other sequences at random positions):
 *  - the cache row dec_rope_kv4 writes against dec_rope_kv4_ref's: V planes bit-identical; K (after
 *    RoPE, CUDA vs libm sin/cos) scales within one fp16 ulp and codes within one step, at most 1 % of
 *    codes different; q within 2e-6·(1 + |q|);
 *  - dec_attn_kv4 against dec_attn_kv4_ref over the device's own cache, every kernel variant
 *    (dec_set_attn_kv4_variant 0 and 1): relative RMS ≤ 1e-5 (the fp16 cache's tolerance: both read
 *    the same exact dequantized values); the default run twice, bit-identical;
 *  - dec_attn_rope_kv4 (RoPE + the new row's store inside attention) on a copy of the old cache: the
 *    cache afterwards byte-identical to dec_rope_kv4's, the attention within the same 1e-5;
 *  - the generic device quantizer dec_aq_* against the CPU's (2–8 bits, sym / asym, groups, clip,
 *    fp16 / fp32 scales, 1–40 rows): every plane and value bit-identical. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cuda/decode.h"
#include "harp/cuda_eval.h"
#include "quant/aq.h"
#include "test_util.h"

static void rand_vec(harp_rng *r, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (float)harp_rng_normal(r) * (i % 7 == 3 ? 4.0f : 1.0f);
}

static void inv_freqs(int hd, float *f) {
    for (int i = 0; i < hd / 2; i++) f[i] = powf(10000.0f, -2.0f * (float)i / (float)hd);
}

static void test_twin(void) {
    static const dec_attn_shape shapes[] = {{6, 2, 64, 40, 0, NULL}, {4, 4, 128, 17, 0, NULL}, {8, 2, 32, 9, 5, NULL}};
    harp_rng r;
    harp_rng_seed(&r, 3);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const dec_attn_shape s = shapes[si];
        const int B = 2, hd = s.head_dim, qd = s.n_heads * hd, kvd = s.n_kv * hd, ld = qd + 2 * kvd;
        const float kclip = 0.9f, vclip = 1.0f;
        const dec_kv4_map m = dec_kv4_layout(&s);
        CHECK(m.scale_off % 16 == 0 && m.seq_bytes % 16 == 0 && m.scale_off >= (size_t)s.max_ctx * kvd / 2 &&
              m.zero_off >= m.scale_off + (size_t)s.max_ctx * s.n_kv * 2 && m.seq_bytes >= m.zero_off + (size_t)s.max_ctx * s.n_kv);
        uint8_t *kc = calloc((size_t)B * m.seq_bytes, 1), *vc = calloc((size_t)B * m.seq_bytes, 1);
        float *kf = calloc((size_t)B * s.max_ctx * kvd, sizeof(float)), *vf = calloc((size_t)B * s.max_ctx * kvd, sizeof(float));
        float *qkv = malloc(sizeof(float) * B * ld), *q = malloc(sizeof(float) * B * qd), *row = malloc(sizeof(float) * (qd + kvd));
        float inv[64], *out = malloc(sizeof(float) * B * qd), *out2 = malloc(sizeof(float) * B * qd);
        inv_freqs(hd, inv);
        const harp_aq_fmt kfm = {4, 0, hd, kclip, 1}, vfm = {4, 0, hd, vclip, 1};
        int32_t pos[2];
        for (int j = 0; j < s.max_ctx; j++) {
            rand_vec(&r, qkv, (size_t)B * ld);
            if (j == 3) memset(qkv + qd, 0, sizeof(float) * kvd);   /* an all-zero K row: the (−1, +1) range */
            for (int b = 0; b < B; b++) pos[b] = j;
            CHECK_OK(dec_rope_kv4_ref(&s, qkv, ld, B, pos, inv, 0, kclip, vclip, q, kc, vc));
            for (int b = 0; b < B; b++) {   /* the CPU path's fake-quantized K and V of this position */
                float *kk = kf + ((size_t)b * s.max_ctx + j) * kvd, *vv = vf + ((size_t)b * s.max_ctx + j) * kvd;
                dec_rope_row_ref(&s, qkv + (size_t)b * ld, j, inv, 0, row);
                memcpy(kk, row + qd, sizeof(float) * kvd);
                memcpy(vv, qkv + (size_t)b * ld + qd + kvd, sizeof(float) * kvd);
                CHECK_OK(harp_aq_fake(&kfm, kk, 1, kvd, kvd));
                CHECK_OK(harp_aq_fake(&vfm, vv, 1, kvd, kvd));
            }
        }
        rand_vec(&r, q, (size_t)B * qd);
        pos[0] = s.max_ctx - 1, pos[1] = s.max_ctx / 2;
        CHECK_OK(dec_attn_kv4_ref(&s, q, kc, vc, B, pos, out));
        dec_attn_f32_ref(&s, q, kf, vf, B, pos, out2);
        CHECK_MSG(!memcmp(out, out2, sizeof(float) * B * qd), "kv4 twin (heads %d/%d hd %d ctx %d): attention differs from the "
                  "fake-quantized CPU caches", s.n_heads, s.n_kv, hd, s.max_ctx);
        printf("kv4 twin: heads %d/%d hd %d ctx %d window %d: cache = harp_aq_fake of K/V, attention bit-identical\n", s.n_heads,
               s.n_kv, hd, s.max_ctx, s.window);
        free(kc), free(vc), free(kf), free(vf), free(qkv), free(q), free(row), free(out), free(out2);
    }
}

#ifdef HARP_HAVE_CUDA
#include <cuda_runtime_api.h>

#define CU(x) CHECK_MSG((x) == cudaSuccess, "%s failed", #x)

/* Fills positions 0 .. max_ctx − 1 of every sequence through the twin (random q|k|v rows). */
static void fill_cache(harp_rng *r, const dec_attn_shape *s, int B, float kclip, float vclip, const float *inv, uint8_t *kc, uint8_t *vc) {
    const int hd = s->head_dim, ld = (s->n_heads + 2 * s->n_kv) * hd;
    float *qkv = malloc(sizeof(float) * (size_t)B * ld), *q = malloc(sizeof(float) * (size_t)B * s->n_heads * hd);
    int32_t pos[3];
    for (int j = 0; j < s->max_ctx; j++) {
        rand_vec(r, qkv, (size_t)B * ld);
        for (int b = 0; b < B; b++) pos[b] = j;
        CHECK_OK(dec_rope_kv4_ref(s, qkv, ld, B, pos, inv, 0, kclip, vclip, q, kc, vc));
    }
    free(qkv), free(q);
}

static void *dev_alloc(size_t bytes) {
    void *p = NULL;
    CU(cudaMalloc(&p, bytes));
    CU(cudaMemset(p, 0xFF, bytes));
    return p;
}


/* Row p of sequence b: device cache vs twin. Returns differing codes; *bad counts violations. */
static int cmp_row(const dec_attn_shape *s, const dec_kv4_map *m, const uint8_t *g, const uint8_t *t, int b, int p, int exact, int *bad) {
    const int hd = s->head_dim, nkv = s->n_kv;
    const uint8_t *gs = g + (size_t)b * m->seq_bytes, *ts = t + (size_t)b * m->seq_bytes;
    int diff = 0;
    for (int h = 0; h < nkv; h++) {
        const size_t rr = (size_t)p * nkv + h;
        const uint16_t sg = ((const uint16_t *)(gs + m->scale_off))[rr], st = ((const uint16_t *)(ts + m->scale_off))[rr];
        const int zg = gs[m->zero_off + rr], zt = ts[m->zero_off + rr];
        *bad += exact ? sg != st || zg != zt : abs((int)sg - (int)st) > 1 || abs(zg - zt) > 1;
        const float fs = harp_f16_to_f32(st);
        for (int i = 0; i < hd; i++) {
            const uint8_t bg = gs[rr * (hd / 2) + i / 2], bt = ts[rr * (hd / 2) + i / 2];
            const int cg = i & 1 ? bg >> 4 : bg & 15, ct = i & 1 ? bt >> 4 : bt & 15;
            diff += cg != ct;
            const float vg = harp_f16_to_f32(sg) * (float)(cg - zg), vt = fs * (float)(ct - zt);
            *bad += exact ? cg != ct : !(fabsf(vg - vt) <= 1.01f * fs + 1e-6f);
        }
    }
    return diff;
}

static void gpu_case(harp_rng *r, const dec_attn_shape *sp, int B) {
    const dec_attn_shape s = *sp;
    const int hd = s.head_dim, qd = s.n_heads * hd, kvd = s.n_kv * hd, ld = qd + 2 * kvd;
    const float kclip = 0.95f, vclip = 0.9f;
    const dec_kv4_map m = dec_kv4_layout(&s);
    const size_t cb = (size_t)B * m.seq_bytes;
    uint8_t *kc = calloc(cb, 1), *vc = calloc(cb, 1), *gk = malloc(cb), *gv = malloc(cb);
    float inv[64];
    inv_freqs(hd, inv);
    fill_cache(r, &s, B, kclip, vclip, inv, kc, vc);
    int32_t pos[3];
    for (int b = 0; b < B; b++) pos[b] = b == 0 ? s.max_ctx - 1 : (int32_t)(harp_rng_u64(r) % (uint64_t)s.max_ctx);
    float *qkv = malloc(sizeof(float) * B * ld), *q = malloc(sizeof(float) * B * qd), *gq = malloc(sizeof(float) * B * qd);
    float *out = malloc(sizeof(float) * B * qd), *gout = malloc(sizeof(float) * B * qd);
    rand_vec(r, qkv, (size_t)B * ld);
    uint8_t *dk = dev_alloc(cb), *dv = dev_alloc(cb), *dk2 = dev_alloc(cb), *dv2 = dev_alloc(cb);
    float *dqkv = dev_alloc(sizeof(float) * B * ld), *dq = dev_alloc(sizeof(float) * B * qd), *dout = dev_alloc(sizeof(float) * B * qd);
    float *dinv = dev_alloc(sizeof(float) * hd / 2), *ws = dev_alloc(sizeof(float) * dec_attn_workspace_floats(&s, B));
    int32_t *dpos = dev_alloc(sizeof pos);
    CU(cudaMemcpy(dk, kc, cb, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(dv, vc, cb, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(dk2, kc, cb, cudaMemcpyHostToDevice));   /* the fused store's own copy of the cache */
    CU(cudaMemcpy(dv2, vc, cb, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(dqkv, qkv, sizeof(float) * B * ld, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(dinv, inv, sizeof(float) * hd / 2, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(dpos, pos, sizeof(int32_t) * B, cudaMemcpyHostToDevice));
    CHECK_OK(dec_rope_kv4(&s, dqkv, ld, B, dpos, dinv, 0, kclip, vclip, dq, dk, dv, NULL));
    /* every kernel variant over the same cache (twice for the default: reruns are bit-identical), then
     * the fused RoPE + store + attention on the copy */
    float *vout[3];
    for (int v = 0; v < 3; v++) {
        vout[v] = malloc(sizeof(float) * B * qd);
        dec_set_attn_kv4_variant(v == 1);
        CU(cudaMemset(dout, 0xFF, sizeof(float) * B * qd));
        CHECK_OK(dec_attn_kv4(&s, dq, dk, dv, B, dpos, dout, ws, NULL));
        CU(cudaMemcpy(vout[v], dout, sizeof(float) * B * qd, cudaMemcpyDeviceToHost));
    }
    dec_set_attn_kv4_variant(0);
    CHECK_MSG(!memcmp(vout[0], vout[2], sizeof(float) * B * qd), "kv4 attention (heads %d/%d hd %d ctx %d B %d): rerun differs",
              s.n_heads, s.n_kv, hd, s.max_ctx, B);
    CU(cudaMemset(dout, 0xFF, sizeof(float) * B * qd));
    CHECK_OK(dec_attn_rope_kv4(&s, dqkv, ld, B, dpos, dinv, 0, kclip, vclip, dk2, dv2, dout, ws, NULL));
    CU(cudaMemcpy(gq, dq, sizeof(float) * B * qd, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(gk, dk, cb, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(gv, dv, cb, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(gout, dout, sizeof(float) * B * qd, cudaMemcpyDeviceToHost));
    {   /* the fused store writes the bytes dec_rope_kv4 wrote (same RoPE and quantizer operations) */
        uint8_t *fk = malloc(cb), *fv = malloc(cb);
        CU(cudaMemcpy(fk, dk2, cb, cudaMemcpyDeviceToHost));
        CU(cudaMemcpy(fv, dv2, cb, cudaMemcpyDeviceToHost));
        CHECK_MSG(!memcmp(fk, gk, cb) && !memcmp(fv, gv, cb), "kv4 fused store (heads %d/%d hd %d ctx %d B %d): cache differs from "
                  "dec_rope_kv4's", s.n_heads, s.n_kv, hd, s.max_ctx, B);
        free(fk), free(fv);
    }
    CHECK_OK(dec_rope_kv4_ref(&s, qkv, ld, B, pos, inv, 0, kclip, vclip, q, kc, vc));
    int qbad = 0, kbad = 0, vbad = 0, kdiff = 0;
    for (int i = 0; i < B * qd; i++) qbad += !(fabsf(gq[i] - q[i]) <= 2e-6f * (1 + fabsf(q[i])));
    for (int b = 0; b < B; b++) {
        kdiff += cmp_row(&s, &m, gk, kc, b, pos[b], 0, &kbad);
        cmp_row(&s, &m, gv, vc, b, pos[b], 1, &vbad);
    }
    const int ncodes = B * kvd;
    CHECK_MSG(!qbad && !kbad && !vbad && kdiff <= ncodes / 100,
              "kv4 store (heads %d/%d hd %d ctx %d B %d): %d q values off, K %d violations (%d of %d codes differ), V %d differences",
              s.n_heads, s.n_kv, hd, s.max_ctx, B, qbad, kbad, kdiff, ncodes, vbad);
    CHECK_OK(dec_attn_kv4_ref(&s, gq, gk, gv, B, pos, out));
    const double e0 = t_rel_rms(vout[0], out, (size_t)B * qd), e1 = t_rel_rms(vout[1], out, (size_t)B * qd);
    const double ef = t_rel_rms(gout, out, (size_t)B * qd);
    CHECK_MSG(e0 <= 1e-5 && e1 <= 1e-5 && ef <= 1e-5,
              "kv4 attention (heads %d/%d hd %d ctx %d window %d B %d): relative RMS %.3g (variant 0), %.3g (variant 1), %.3g "
              "(fused store) > 1e-5", s.n_heads, s.n_kv, hd, s.max_ctx, s.window, B, e0, e1, ef);
    printf("gpu heads %2d/%-2d hd %3d ctx %4d window %3d B %d: store V exact %s, K codes differing %d of %d, fused store identical; "
           "attention rel RMS %.2e / %.2e / %.2e (variant 0 / 1 / fused; tolerance 1e-5)\n", s.n_heads, s.n_kv, hd, s.max_ctx, s.window,
           B, vbad ? "NO" : "yes", kdiff, ncodes, e0, e1, ef);
    cudaFree(dk), cudaFree(dv), cudaFree(dk2), cudaFree(dv2), cudaFree(dqkv), cudaFree(dq), cudaFree(dout), cudaFree(dinv);
    cudaFree(ws), cudaFree(dpos);
    for (int v = 0; v < 3; v++) free(vout[v]);
    free(kc), free(vc), free(gk), free(gv), free(qkv), free(q), free(gq), free(out), free(gout);
}

/* The generic device quantizer (dec_aq_*) against harp_aq_quantize_ref / _dequantize_ref / harp_aq_fake:
 * codes, scales and zero points byte for byte, dequantized and fake-quantized values bit for bit. */
static void gpu_aq(harp_rng *r) {
    static const struct { int n, group; } shapes[] = {{172, 0}, {1001, 0}, {384, 64}, {384, 128}, {4096, 128}};
    int cases = 0, bad_cases = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int bits = 2; bits <= 8; bits++)
            for (int v = 0; v < 4; v++) {
                const int n = shapes[si].n, rows = 1 + (int)(harp_rng_u64(r) % 40);
                const harp_aq_fmt f = {.bits = bits, .sym = v & 1, .group = shapes[si].group, .clip = v & 2 ? 0.9f : 1.0f,
                                       .scale_f16 = (int)((si + (size_t)bits) & 1)};
                const size_t cb = (size_t)rows * harp_aq_row_bytes(&f, n), ng = (size_t)rows * harp_aq_groups(&f, n);
                float *x = malloc(sizeof(float) * rows * n), *y = malloc(sizeof(float) * rows * n), *g = malloc(sizeof(float) * rows * n);
                rand_vec(r, x, (size_t)rows * n);
                for (int i = 0; i < n && shapes[si].group; i++) x[i] = 0.0f;   /* all-zero groups */
                harp_aq_planes p, dp = {0}, gp;
                CHECK_OK(harp_aq_planes_alloc(&f, rows, n, &p));
                CHECK_OK(harp_aq_planes_alloc(&f, rows, n, &gp));
                CHECK_OK(harp_aq_quantize_ref(&f, x, rows, n, n, &p));
                CHECK_OK(harp_aq_dequantize_ref(&f, &p, rows, n, y, n));
                float *dx = dev_alloc(sizeof(float) * rows * n), *dy = dev_alloc(sizeof(float) * rows * n);
                dp.codes = dev_alloc(cb);
                if (f.scale_f16) dp.scale16 = dev_alloc(ng * 2);
                else dp.scale = dev_alloc(ng * 4);
                if (!f.sym) dp.zero = dev_alloc(ng);
                CU(cudaMemcpy(dx, x, sizeof(float) * rows * n, cudaMemcpyHostToDevice));
                CHECK_OK(dec_aq_quantize(&f, dx, rows, n, 0, &dp, NULL));
                CHECK_OK(dec_aq_dequantize(&f, &dp, rows, n, dy, 0, NULL));
                CU(cudaMemcpy(gp.codes, dp.codes, cb, cudaMemcpyDeviceToHost));
                if (f.scale_f16) CU(cudaMemcpy(gp.scale16, dp.scale16, ng * 2, cudaMemcpyDeviceToHost));
                else CU(cudaMemcpy(gp.scale, dp.scale, ng * 4, cudaMemcpyDeviceToHost));
                if (!f.sym) CU(cudaMemcpy(gp.zero, dp.zero, ng, cudaMemcpyDeviceToHost));
                CU(cudaMemcpy(g, dy, sizeof(float) * rows * n, cudaMemcpyDeviceToHost));
                int bad = memcmp(gp.codes, p.codes, cb) != 0;
                bad += f.scale_f16 ? memcmp(gp.scale16, p.scale16, ng * 2) != 0 : memcmp(gp.scale, p.scale, ng * 4) != 0;
                bad += !f.sym && memcmp(gp.zero, p.zero, ng) != 0;
                bad += memcmp(g, y, sizeof(float) * rows * n) != 0;
                CHECK_OK(dec_aq_fake(&f, dx, rows, n, 0, NULL));   /* in place */
                CU(cudaMemcpy(g, dx, sizeof(float) * rows * n, cudaMemcpyDeviceToHost));
                CHECK_OK(harp_aq_fake(&f, x, rows, n, n));
                bad += memcmp(g, x, sizeof(float) * rows * n) != 0;
                CHECK_MSG(!bad, "dec_aq: %d bits %s group %d clip %.1f %s scales, %d x %d: %d planes differ from the CPU quantizer",
                          bits, f.sym ? "sym" : "asym", shapes[si].group, (double)f.clip, f.scale_f16 ? "fp16" : "fp32", rows, n, bad);
                cases++, bad_cases += bad != 0;
                cudaFree(dx), cudaFree(dy), cudaFree(dp.codes), cudaFree(dp.scale), cudaFree(dp.scale16), cudaFree(dp.zero);
                harp_aq_planes_free(&p), harp_aq_planes_free(&gp);
                free(x), free(y), free(g);
            }
    printf("gpu dec_aq: %d formats (2-8 bits, sym / asym, whole rows and groups 64 / 128, clip 1 / 0.9, fp16 / fp32 scales): "
           "codes, scales, zeros, dequantized and fake-quantized values %s (tolerance 0; %d differ)\n", cases,
           bad_cases ? "DIFFER" : "bit-identical", bad_cases);
}

static int gpu_run(void) {
    harp_rng r;
    harp_rng_seed(&r, 17);
    static const dec_attn_shape heads[] = {{32, 8, 128, 0, 0, NULL}, {6, 2, 64, 0, 0, NULL},  {4, 4, 32, 0, 0, NULL},
                                           {32, 32, 128, 0, 0, NULL}, {16, 2, 64, 0, 0, NULL}, {64, 8, 128, 0, 0, NULL}};
    static const int ctx[] = {1, 63, 64, 65, 130, 4096};
    for (int hi = 0; hi < 6; hi++)
        for (int ci = 0; ci < 6; ci++) {
            if (hi == 3 && ctx[ci] == 4096) continue;   /* MHA at 4096: the twin's fill alone would take most of the budget */
            dec_attn_shape s = heads[hi];
            s.max_ctx = ctx[ci];
            gpu_case(&r, &s, ctx[ci] == 4096 ? 1 : 3);
        }
    const dec_attn_shape w = {32, 8, 128, 300, 100, NULL};
    gpu_case(&r, &w, 3);
    gpu_aq(&r);
    return t_done();
}
#endif

static int cpu_run(void) {
    test_twin();
    return t_done();
}

T_CPU_GPU_MAIN(cpu_run, gpu_run)
