/* C twins of the 4-bit KV cache of decode attention (decode.h, "W/A/KV on the GPU"): the cache rows are
 * the CPU KV quantizer's planes (quant/aq.h: 4 bits, asymmetric, one group per (token, kv head), fp16
 * scales, uint8 zero points), written and read here with harp_aq_quantize_ref / harp_aq_dequantize_ref
 * themselves, so the GPU is tested against the CPU's own stored format and dequantized values. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cuda/decode.h"
#include "quant/aq.h"

dec_kv4_map dec_kv4_layout(const dec_attn_shape *s) {
    const size_t rows = (size_t)s->max_ctx * (size_t)s->n_kv;
    dec_kv4_map m;
    m.scale_off = (rows * (size_t)(s->head_dim / 2) + 15) / 16 * 16;
    m.zero_off = m.scale_off + rows * 2;
    m.seq_bytes = (m.zero_off + rows + 15) / 16 * 16;
    return m;
}

static harp_aq_fmt kv4_fmt(const dec_attn_shape *s, float clip) {
    return (harp_aq_fmt){.bits = 4, .sym = 0, .group = s->head_dim, .clip = clip, .scale_f16 = 1};
}

/* The planes of position j of sequence b inside a cache (one row of n_kv·hd elements). */
static harp_aq_planes kv4_row(const dec_attn_shape *s, const dec_kv4_map *m, const uint8_t *cache, int b, int32_t j) {
    uint8_t *seq = (uint8_t *)cache + (size_t)b * m->seq_bytes;
    const size_t r = (size_t)j * (size_t)s->n_kv;
    harp_aq_planes p = {0};
    p.codes = seq + r * (size_t)(s->head_dim / 2);
    p.scale16 = (uint16_t *)(seq + m->scale_off) + r;
    p.zero = seq + m->zero_off + r;
    return p;
}

harp_status dec_rope_kv4_ref(const dec_attn_shape *s, const float *qkv, int ldq, int B, const int32_t *pos,
                             const float *inv_freq, int interleaved, float kclip, float vclip, float *qout, uint8_t *kc,
                             uint8_t *vc) {
    const int hd = s->head_dim, qd = s->n_heads * hd, kvd = s->n_kv * hd;
    const harp_aq_fmt kf = kv4_fmt(s, kclip), vf = kv4_fmt(s, vclip);
    const dec_kv4_map m = dec_kv4_layout(s);
    float *row = malloc(sizeof(float) * (size_t)(qd + kvd));
    if (!row) return harp_err(HARP_ERR_OOM, "kv4 store (ref): out of memory");
    harp_status st = HARP_OK;
    for (int b = 0; b < B && st == HARP_OK; b++) {
        const float *src = qkv + (size_t)b * ldq;
        dec_rope_row_ref(s, src, pos[b], inv_freq, interleaved, row);
        memcpy(qout + (size_t)b * qd, row, sizeof(float) * (size_t)qd);
        const harp_aq_planes kp = kv4_row(s, &m, kc, b, pos[b]), vp = kv4_row(s, &m, vc, b, pos[b]);
        st = harp_aq_quantize_ref(&kf, row + qd, 1, kvd, kvd, &kp);
        if (st == HARP_OK) st = harp_aq_quantize_ref(&vf, src + qd + kvd, 1, kvd, kvd, &vp);
    }
    free(row);
    return st;
}

harp_status dec_attn_kv4_ref(const dec_attn_shape *s, const float *q, const uint8_t *kc, const uint8_t *vc, int B,
                             const int32_t *pos, float *out) {
    const int kvd = s->n_kv * s->head_dim;
    const harp_aq_fmt f = kv4_fmt(s, 1.0f);
    const dec_kv4_map m = dec_kv4_layout(s);
    const size_t n = (size_t)B * (size_t)s->max_ctx * (size_t)kvd;
    float *kf = calloc(n, sizeof(float)), *vf = calloc(n, sizeof(float));
    harp_status st = kf && vf ? HARP_OK : harp_err(HARP_ERR_OOM, "kv4 attention (ref): out of memory");
    for (int b = 0; b < B && st == HARP_OK; b++)
        for (int32_t j = 0; j <= pos[b] && st == HARP_OK; j++) {   /* the rows a query reads */
            const harp_aq_planes kp = kv4_row(s, &m, kc, b, j), vp = kv4_row(s, &m, vc, b, j);
            const size_t at = ((size_t)b * (size_t)s->max_ctx + (size_t)j) * (size_t)kvd;
            st = harp_aq_dequantize_ref(&f, &kp, 1, kvd, kf + at, kvd);
            if (st == HARP_OK) st = harp_aq_dequantize_ref(&f, &vp, 1, kvd, vf + at, kvd);
        }
    if (st == HARP_OK) dec_attn_f32_ref(s, q, kf, vf, B, pos, out);
    free(kf), free(vf);
    return st;
}
