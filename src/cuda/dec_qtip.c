/* QTIP trellis matrices in the GPU decode engine, host side: the stored harp_tmat tiles regrouped
 * into the lane segments of decode_layout.h (bits kept, only moved), the format's values through
 * the trellis decoder, and the packed values through the kernels' own helper (dl_qtip_frag), so
 * that the CPU tests check every bit of the layout the CUDA GEMV reads. */
#include <string.h>

#include "core/core.h"
#include "cuda/dec_qtip.h"
#include "quant/trellis.h"

DL_STATIC_ASSERT((int)DL_TCODE_1MAD == (int)HARP_TCODE_1MAD && (int)DL_TCODE_3INST == (int)HARP_TCODE_3INST &&
                     (int)DL_TCODE_HYB == (int)HARP_TCODE_HYB,
                 "decode codes are harp_tcode");
DL_STATIC_ASSERT(DL_HYB_ROWS == HARP_HYB_N && HARP_TRELLIS_L == 16 && HARP_TRELLIS_TD == 16, "QTIP layout: L = 16, 16 x 16 tiles");

void dec_qtip_tmat(const dec_qplanes *q, harp_tmat *out) {
    *out = (harp_tmat){.m = q->m, .n = q->n, .K = dl_qtip_bits(q->qtype), .code = (harp_tcode)dl_qtip_code(q->qtype),
                       .scale = q->wscale[0], .codes = q->codes, .ncodes = q->ncodes, .tlut = q->tlut};
}

harp_status dec_qtip_check(const dec_qplanes *q, dec_weights *w) {
    harp_tmat t;
    dec_qtip_tmat(q, &t);
    HARP_TRY(harp_tmat_check(&t, "decode pack: qtip matrix"));
    w->scale0 = q->wscale[0];
    w->scale1 = 0.0f;
    return HARP_OK;
}

void dec_qtip_tab(const uint16_t *tlut, uint32_t tab[DL_HYB_ROWS]) {
    for (int r = 0; r < DL_HYB_ROWS; r++) tab[r] = (uint32_t)tlut[2 * r] | (uint32_t)tlut[2 * r + 1] << 16;
}

/* nbits (≤ 32) of the tile stream from bit o, MSB first, as an integer. */
static uint32_t stream_bits(const uint16_t *words, int o, int nbits) {
    uint32_t v = 0;
    for (int i = o; i < o + nbits; i++) v = v << 1 | ((words[i >> 4] >> (15 - (i & 15))) & 1u);
    return v;
}

void dec_qtip_pack(const dec_qplanes *q, dec_weights *w) {
    const int K = dl_qtip_bits(q->qtype), L1 = dl_lane_bytes(q->qtype, 1);
    harp_tmat t;
    dec_qtip_tmat(q, &t);
    const int32_t nct = (q->n + 15) / 16;
    for (int32_t rt = 0; rt < w->nrt; rt++)
        for (int32_t st = 0; st < w->nst; st++)
            for (int lane = 0; lane < DL_LANES; lane++) {
                uint16_t p0[8] = {0}, p1w[8] = {0};
                uint8_t p1b[8] = {0};
                for (int j = 0; j < 8; j++) {
                    const int32_t jt = 8 * st + j;
                    if (jt >= nct) continue;   /* padding tile: a zero stream */
                    const uint16_t *words = t.codes + ((size_t)rt * (size_t)nct + (size_t)jt) * (size_t)(16 * K);
                    const uint32_t seg = stream_bits(words, 8 * K * lane, 8 * K);
                    p0[j] = (uint16_t)(seg >> (8 * K - 16));
                    if (K == 3) p1b[j] = (uint8_t)(seg & 255u);
                    if (K == 4) p1w[j] = (uint16_t)(seg & 0xFFFFu);
                }
                dec_put_chunk(w->plane[0], w, rt, st, lane, DL_QTIP_LANE, p0);
                if (L1) dec_put_chunk(w->plane[1], w, rt, st, lane, L1, K == 3 ? (const void *)p1b : (const void *)p1w);
            }
    if (w->tab) dec_qtip_tab(q->tlut, w->tab);
}

float dec_qtip_value(const dec_qplanes *q, int32_t r, int32_t c) {
    harp_tmat t;
    dec_qtip_tmat(q, &t);
    const int32_t nct = (q->n + 15) / 16;
    float tile[256];
    harp_trellis_decode_tile(t.code, t.K, t.tlut, t.codes + ((size_t)(r / 16) * (size_t)nct + (size_t)(c / 16)) * (size_t)(16 * t.K),
                             tile, 16);
    return t.scale * tile[16 * (r % 16) + c % 16];
}

void dec_qtip_rows(const dec_qplanes *q, int32_t r0, int32_t r1, float *out, size_t ld) {
    harp_tmat t;
    dec_qtip_tmat(q, &t);
    harp_tmat_dequant_rows(&t, r0, r1, out, ld);
}

float dec_qtip_packed_value(const dec_weights *w, int32_t r, int32_t c) {
    const int K = dl_qtip_bits(w->qtype), code = dl_qtip_code(w->qtype), L1 = dl_lane_bytes(w->qtype, 1);
    const int32_t rt = r / DL_TILE_ROWS, st = c / DL_TILE_COLS, rr = r % DL_TILE_ROWS, cc = c % DL_TILE_COLS;
    const int j = cc / 16, c16 = cc % 16, g = rr & 7, a = rr >> 3, d = c16 >> 3, e = (c16 >> 1) & 3, f = c16 & 1;
    const int lane = 4 * g + e;
    uint32_t w0[2][4] = {{0}}, w1[2][4] = {{0}};
    for (int i = 0; i < 2; i++) {   /* this lane's words and the next lane's (lane 31: lane 0, the wrap) */
        dec_get_chunk(w->plane[0], w, rt, st, (lane + i) & 31, DL_QTIP_LANE, w0[i]);
        if (L1) dec_get_chunk(w->plane[1], w, rt, st, (lane + i) & 31, L1, w1[i]);
    }
    uint32_t hi, lo, frag[4];
    dl_qtip_hilo(w0[0], w1[0], w0[1], w1[1], K, j, &hi, &lo);
    dl_qtip_frag(K, code, hi, lo, w->tab, 1, frag);
    const uint32_t pair = frag[2 * d + a];
    return w->scale0 * harp_f16_to_f32((uint16_t)(f ? pair >> 16 : pair & 0xFFFFu));
}
