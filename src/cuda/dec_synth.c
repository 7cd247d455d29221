/* Synthetic decode workloads (seeded, in memory, no file): stored planes of any quant type with
 * random codes / scales / zeros, random sign vectors and random butterflies (per-group Householder
 * reflections, exactly orthogonal, with the HARP greedy schedule of harp_rot). Used by the tests and
 * by `harp bench gemv --gpu`. Plain C, compiled in every build. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cuda/dec_synth.h"
#include "quant/e8p.h"

void dec_synth_free(dec_synth *s) {
    if (!s) return;
    for (int i = 0; i < 4; i++) free(s->buf[i]);
    memset(s, 0, sizeof *s);
}

harp_status dec_synth_planes(int qtype, int32_t m, int32_t n, uint64_t seed, dec_synth *s) {
    memset(s, 0, sizeof *s);
    harp_rng rng;
    harp_rng_seed(&rng, seed);
    dec_qplanes *q = &s->q;
    q->qtype = qtype;
    q->m = m;
    q->n = n;
    const size_t nc = (size_t)m * (size_t)((n + 7) / 8);
    const int bits = dl_int_bits(qtype);
    if (qtype == HARP_QTYPE_F16) {
        uint16_t *w = s->buf[0] = harp_xmalloc((size_t)m * (size_t)n * 2, "synthetic fp16 weights");
        if (!w) return HARP_ERR_OOM;
        for (size_t i = 0; i < (size_t)m * (size_t)n; i++) w[i] = harp_f32_to_f16((float)(0.02 * harp_rng_normal(&rng)));
        q->codes = w;
    } else if (qtype == HARP_QTYPE_E8P2 || qtype == HARP_QTYPE_RVQ3 || qtype == HARP_QTYPE_RVQ4) {
        uint16_t *c = s->buf[0] = harp_xmalloc(nc * 2, "synthetic codes");
        if (!c) return HARP_ERR_OOM;
        for (size_t i = 0; i < nc; i++) c[i] = (uint16_t)harp_rng_u64(&rng);
        q->codes = c;
        q->wscale[0] = 0.02f;
        if (qtype == HARP_QTYPE_RVQ3) {
            uint8_t *c2 = s->buf[1] = harp_xmalloc(nc, "synthetic E81B codes");
            if (!c2) return HARP_ERR_OOM;
            for (size_t i = 0; i < nc; i++) c2[i] = (uint8_t)harp_rng_u64(&rng);
            q->codes2 = c2;
            q->wscale[1] = 0.02f / RVQ3_RESID_SCALE;
        } else if (qtype == HARP_QTYPE_RVQ4) {
            uint16_t *c2 = s->buf[1] = harp_xmalloc(nc * 2, "synthetic residual codes");
            if (!c2) return HARP_ERR_OOM;
            for (size_t i = 0; i < nc; i++) c2[i] = (uint16_t)harp_rng_u64(&rng);
            q->codes2 = c2;
            q->wscale[1] = 0.02f / RVQ4_RESID_SCALE;
        }
    } else if (bits) {
        const int64_t gs = 128 < n ? 128 : n, ng = (n + gs - 1) / gs, rowbytes = ((int64_t)n * bits + 7) / 8;
        uint8_t *pk = s->buf[0] = harp_xmalloc((size_t)(m * rowbytes), "synthetic qweight");
        float *sc = s->buf[1] = harp_xmalloc(sizeof(float) * (size_t)(m * ng), "synthetic scales");
        uint8_t *z = s->buf[2] = harp_xmalloc((size_t)(m * ng), "synthetic zeros");
        if (!pk || !sc || !z) return HARP_ERR_OOM;
        for (int64_t i = 0; i < m * rowbytes; i++) pk[i] = (uint8_t)harp_rng_u64(&rng);
        /* the last byte of a row may hold bits past n: keep them zero as the writer does */
        const int tail = (int)(((int64_t)n * bits) % 8);
        if (tail)
            for (int64_t r = 0; r < m; r++) pk[r * rowbytes + rowbytes - 1] &= (uint8_t)((1u << tail) - 1u);
        for (int64_t i = 0; i < m * ng; i++) {
            sc[i] = (float)(0.002 + 0.01 * harp_rng_uniform(&rng));
            z[i] = (uint8_t)(harp_rng_u64(&rng) & ((1u << bits) - 1u));
        }
        q->codes = pk;
        q->scales = sc;
        q->zeros = z;
        q->group_size = (int32_t)gs;
    } else if (qtype == HARP_QTYPE_LDP2) {
        /* random codes, four ordered fp16 levels per (row, group of 128 or the whole row) */
        const int64_t gs = 128 < n ? 128 : n, ng = (n + gs - 1) / gs, rowbytes = ((int64_t)n * 2 + 7) / 8;
        uint8_t *pk = s->buf[0] = harp_xmalloc((size_t)(m * rowbytes), "synthetic ldp2 codes");
        uint16_t *lv = s->buf[1] = harp_xmalloc(sizeof(uint16_t) * 4 * (size_t)(m * ng), "synthetic ldp2 levels");
        if (!pk || !lv) return HARP_ERR_OOM;
        for (int64_t i = 0; i < m * rowbytes; i++) pk[i] = (uint8_t)harp_rng_u64(&rng);
        const int tail = (int)(((int64_t)n * 2) % 8);
        if (tail)
            for (int64_t r = 0; r < m; r++) pk[r * rowbytes + rowbytes - 1] &= (uint8_t)((1u << tail) - 1u);
        for (int64_t i = 0; i < m * ng; i++) {
            float v = (float)(-0.03 + 0.01 * harp_rng_uniform(&rng));
            for (int k = 0; k < 4; k++, v += (float)(0.005 + 0.015 * harp_rng_uniform(&rng))) lv[4 * i + k] = harp_f32_to_f16(v);
        }
        q->codes = pk;
        q->levels = lv;
        q->group_size = (int32_t)gs;
    } else if (dl_qtip_bits(qtype)) {
        /* every bit stream is a valid tail-biting path: random words are random trellis codes */
        q->ncodes = (size_t)((m + 15) / 16) * (size_t)((n + 15) / 16) * (size_t)(16 * dl_qtip_bits(qtype));
        uint16_t *c = s->buf[0] = harp_xmalloc(q->ncodes * 2, "synthetic trellis codes");
        if (!c) return HARP_ERR_OOM;
        for (size_t i = 0; i < q->ncodes; i++) c[i] = (uint16_t)harp_rng_u64(&rng);
        q->codes = c;
        q->wscale[0] = 0.02f;
        if (dl_qtip_code(qtype) == DL_TCODE_HYB) {
            uint16_t *t = s->buf[1] = harp_xmalloc(2 * DL_HYB_ROWS * 2, "synthetic HYB table");
            if (!t) return HARP_ERR_OOM;
            for (int i = 0; i < 2 * DL_HYB_ROWS; i++) t[i] = harp_f32_to_f16((float)harp_rng_normal(&rng));
            q->tlut = t;
        }
    } else {
        return harp_err(HARP_ERR_UNSUPPORTED, "synthetic planes: quant type %d", qtype);
    }
    return HARP_OK;
}

float *dec_synth_signs(int64_t n, uint64_t seed) {
    harp_rng rng;
    harp_rng_seed(&rng, seed);
    float *s = harp_xmalloc(sizeof(float) * (size_t)n, "synthetic signs");
    if (s)
        for (int64_t i = 0; i < n; i++) s[i] = (harp_rng_u64(&rng) >> 63) ? -1.0f : 1.0f;
    return s;
}

/* Greedy mixed-radix schedule with base_b = max_b = 8 (algorithms.md §4.2). */
static int greedy(int64_t n, int *r) {
    int T = 0;
    int64_t rem = n;
    while (rem % 8 == 0 && rem > 1) r[T++] = 8, rem /= 8;
    for (int f = (int)(rem < 8 ? rem : 8); f >= 2; f--)
        while (rem % f == 0 && rem > 1) r[T++] = f, rem /= f;
    if (rem != 1) r[T++] = (int)rem;
    return T;
}

harp_status dec_synth_butterfly(int64_t n, uint64_t seed, int transpose, dec_xform *xf) {
    int radix[DEC_MAX_STAGES];
    const int T = greedy(n, radix);
    harp_rng rng;
    harp_rng_seed(&rng, seed);
    float *blocks[DEC_MAX_STAGES] = {0};
    harp_status st = HARP_OK;
    double v[1024];
    for (int t = 0; t < T && st == HARP_OK; t++) {
        const int b = radix[t];
        if (b > 1024) {
            st = harp_err(HARP_ERR_UNSUPPORTED, "synthetic butterfly: radix %d", b);
            break;
        }
        float *K = blocks[t] = harp_xmalloc(sizeof(float) * (size_t)n * (size_t)b, "synthetic butterfly blocks");
        if (!K) {
            st = HARP_ERR_OOM;
            break;
        }
        for (int64_t c = 0; c < n / b; c++) {   /* K = I − 2vvᵀ/‖v‖² */
            double nv = 0;
            for (int i = 0; i < b; i++) v[i] = harp_rng_normal(&rng), nv += v[i] * v[i];
            for (int i = 0; i < b; i++)
                for (int j = 0; j < b; j++) K[((size_t)c * b + i) * b + j] = (float)((i == j) - 2.0 * v[i] * v[j] / nv);
        }
    }
    if (st == HARP_OK) st = dec_xform_butterfly(n, 1, T, radix, (const float *const *)blocks, transpose, xf);
    for (int t = 0; t < T; t++) free(blocks[t]);
    return st;
}
