/* Host side of the GPU decode engine: stored planes → device layouts (decode_layout.h), the stored
 * value of a weight (the formats' definition, used by the twins) and the packed value decoded with
 * the device helpers (used by the tests). Plain C, compiled in every build. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cuda/dec_ldp.h"
#include "cuda/dec_qtip.h"
#include "cuda/decode.h"
#include "quant/e8p.h"
#include "quant/qblocks.h"

#ifdef HARP_HAVE_CUDA
void dec_device_free(void *p); /* dec_gemv.cu */
#endif

/* ---- tables --------------------------------------------------------------------------------------- */

static uint32_t g_e8p_tab[DL_E8P_TABLE];
static uint16_t g_e81b_f16[256 * 8];
static pthread_once_t g_tab_once = PTHREAD_ONCE_INIT;

static void build_tables(void) {
    dl_e8p_table(e8p_packed(), g_e8p_tab);
    const float *E = e81b_codebook();
    for (int i = 0; i < 256 * 8; i++) g_e81b_f16[i] = harp_f32_to_f16(E[i]); /* 0, ±1/2, ±1, ±2: exact */
}

static void ensure_tables(void) { pthread_once(&g_tab_once, build_tables); }
const uint32_t *dec_e8p_table(void) { ensure_tables(); return g_e8p_tab; }
const uint16_t *dec_e81b_table_f16(void) { ensure_tables(); return g_e81b_f16; }

/* ---- stored values -------------------------------------------------------------------------------- */

static int32_t ncode_of(int32_t n) { return (n + 7) / 8; }
static int64_t group_of(const dec_qplanes *q) {
    return q->group_size > 0 && q->group_size < q->n ? q->group_size : q->n;
}

static unsigned int_code(const dec_qplanes *q, int bits, int32_t r, int32_t c) {
    const int64_t rowbytes = ((int64_t)q->n * bits + 7) / 8;
    const uint8_t *row = (const uint8_t *)q->codes + (size_t)r * (size_t)rowbytes;
    const int64_t b0 = (int64_t)c * bits;
    unsigned v = 0;
    for (int b = 0; b < bits; b++) v |= (unsigned)((row[(b0 + b) >> 3] >> ((b0 + b) & 7)) & 1u) << b;
    return v;
}

/* LDP2: level (code of (r, c)) of (r, c's group), the stored planes read as quant/ldp.h does. */
static float ldp_value(const dec_qplanes *q, int32_t r, int32_t c) {
    const int64_t gs = group_of(q), ng = (q->n + gs - 1) / gs;
    const uint8_t *row = (const uint8_t *)q->codes + (size_t)r * (size_t)harp_scalar_row_bytes(q->n, 2);
    const unsigned code = harp_scalar_get(row, c, 2);
    uint16_t h;
    memcpy(&h, (const uint8_t *)q->levels + 2 * (size_t)(4 * ((int64_t)r * ng + c / gs) + code), 2);
    return harp_f16_to_f32(h);
}

float dec_qplanes_value(const dec_qplanes *q, int32_t r, int32_t c) {
    if (dl_qtip_bits(q->qtype)) return dec_qtip_value(q, r, c);
    if (q->qtype == HARP_QTYPE_LDP2) return ldp_value(q, r, c);
    const int32_t nc = ncode_of(q->n);
    const size_t idx = (size_t)r * (size_t)nc + (size_t)(c / 8);
    float a[8], b[8];
    switch (q->qtype) {
    case HARP_QTYPE_F16: return harp_f16_to_f32(((const uint16_t *)q->codes)[(size_t)r * (size_t)q->n + (size_t)c]);
    case HARP_QTYPE_E8P2:
        e8p_decode(((const uint16_t *)q->codes)[idx], a);
        return q->wscale[0] * a[c % 8];
    case HARP_QTYPE_RVQ3:
    case HARP_QTYPE_RVQ4:
        e8p_decode(((const uint16_t *)q->codes)[idx], a);
        if (q->qtype == HARP_QTYPE_RVQ4) e8p_decode(((const uint16_t *)q->codes2)[idx], b);
        else e81b_decode(((const uint8_t *)q->codes2)[idx], b);
        return q->wscale[0] * a[c % 8] + q->wscale[1] * b[c % 8];
    default: {
        const int bits = dl_int_bits(q->qtype);
        const int64_t gs = group_of(q), ng = (q->n + gs - 1) / gs, G = c / gs;
        const float s = q->scales[(size_t)r * (size_t)ng + (size_t)G];
        const int z = q->zeros[(size_t)r * (size_t)ng + (size_t)G];
        return (float)((double)s * ((int)int_code(q, bits, r, c) - z));
    }
    }
}

void dec_qplanes_rows(const dec_qplanes *q, int32_t r0, int32_t r1, float *out, size_t ld) {
    if (dl_qtip_bits(q->qtype)) {
        dec_qtip_rows(q, r0, r1, out, ld);
        return;
    }
    for (int32_t r = r0; r < r1; r++)
        for (int32_t c = 0; c < q->n; c++) out[(size_t)(r - r0) * ld + (size_t)c] = dec_qplanes_value(q, r, c);
}

/* ---- shape and validation -------------------------------------------------------------------------- */

/* LDP2 weights laid out as L (dec_ldp.h: the codes, and the levels per (row tile, group)). */
static void ldp_shape(const dec_ldp_layout *L, dec_weights *w) {
    memset(w, 0, sizeof *w);
    w->qtype = HARP_QTYPE_LDP2, w->m = L->m, w->n = L->n, w->nrt = L->nrt, w->nst = L->nst, w->group = L->g;
    w->plane_bytes[0] = dec_ldp_code_bytes(L), w->plane_bytes[1] = dec_ldp_level_bytes(L);
}

harp_status dec_pack_shape(const dec_qplanes *q, dec_weights *w) {
    memset(w, 0, sizeof *w);
    if (!q || !q->codes) return harp_err(HARP_ERR_INVALID_ARG, "decode pack: NULL planes");
    if (q->m <= 0 || q->n <= 0) return harp_err(HARP_ERR_SHAPE, "decode pack: bad shape %dx%d", (int)q->m, (int)q->n);
    const int t = q->qtype;
    if (t == HARP_QTYPE_LDP2) {   /* dec_ldp.h's layout: codes, and levels per (row tile, group) */
        if (!q->levels) return harp_err(HARP_ERR_INVALID_ARG, "decode pack: ldp2 without its levels");
        dec_ldp_layout L;
        HARP_TRY(dec_ldp_layout_of(q->m, q->n, q->group_size, "decode pack", &L));
        for (int64_t i = 0; i < (int64_t)q->m * L.ng * 4; i++) {
            uint16_t h;
            memcpy(&h, (const uint8_t *)q->levels + 2 * (size_t)i, 2);
            if ((h & 0x7C00u) == 0x7C00u) return harp_err(HARP_ERR_NUMERIC, "decode pack: non-finite ldp2 level at %lld", (long long)i);
        }
        ldp_shape(&L, w);
        return HARP_OK;
    }
    if (dl_lane_bytes(t, 0) == 0) return harp_err(HARP_ERR_UNSUPPORTED, "decode pack: quant type %d has no GPU layout", t);
    if ((t == HARP_QTYPE_RVQ3 || t == HARP_QTYPE_RVQ4) && !q->codes2)
        return harp_err(HARP_ERR_INVALID_ARG, "decode pack: %s without its second code plane", t == HARP_QTYPE_RVQ3 ? "rvq3" : "rvq4");
    if (t == HARP_QTYPE_E8P2 || t == HARP_QTYPE_RVQ3 || t == HARP_QTYPE_RVQ4) {
        if (!isfinite(q->wscale[0]) || !isfinite(q->wscale[1]))
            return harp_err(HARP_ERR_NUMERIC, "decode pack: non-finite wscale");
        w->scale0 = q->wscale[0];
        w->scale1 = t == HARP_QTYPE_E8P2 ? 0.0f : q->wscale[1];
    }
    if (dl_qtip_bits(t)) HARP_TRY(dec_qtip_check(q, w));
    const int bits = dl_int_bits(t);
    if (bits) {
        if (!q->scales || !q->zeros) return harp_err(HARP_ERR_INVALID_ARG, "decode pack: int%d without scales/zeros", bits);
        const int64_t gs = group_of(q), ng = (q->n + gs - 1) / gs;
        if (gs != q->n && gs % DL_TILE_COLS != 0)
            return harp_err(HARP_ERR_UNSUPPORTED, "decode pack: group size %d (the GPU layout needs 128·k or whole rows)",
                            (int)q->group_size);
        for (int64_t i = 0; i < (int64_t)q->m * ng; i++) {
            if (q->zeros[i] >> bits) return harp_err(HARP_ERR_FORMAT, "decode pack: zero point %u out of range for int%d", q->zeros[i], bits);
            if (!isfinite(q->scales[i])) return harp_err(HARP_ERR_NUMERIC, "decode pack: non-finite scale at %lld", (long long)i);
        }
    }
    const float s0 = w->scale0, s1 = w->scale1;
    HARP_TRY(dec_layout_shape(t, q->m, q->n, w));
    w->scale0 = s0;
    w->scale1 = s1;
    return HARP_OK;
}

harp_status dec_layout_shape(int qtype, int32_t m, int32_t n, dec_weights *w) {
    memset(w, 0, sizeof *w);
    if (qtype == HARP_QTYPE_LDP2) {
        dec_ldp_layout L;
        HARP_TRY(dec_ldp_layout_of(m, n, 0, "decode layout", &L));
        ldp_shape(&L, w);
        return HARP_OK;
    }
    if (dl_lane_bytes(qtype, 0) == 0 || m <= 0 || n <= 0)
        return harp_err(HARP_ERR_UNSUPPORTED, "decode layout: quant type %d, shape %dx%d", qtype, (int)m, (int)n);
    w->qtype = qtype;
    w->m = m;
    w->n = n;
    w->nrt = (m + DL_TILE_ROWS - 1) / DL_TILE_ROWS;
    w->nst = (n + DL_TILE_COLS - 1) / DL_TILE_COLS;
    const size_t tiles = (size_t)w->nrt * (size_t)w->nst;
    for (int p = 0; p < 2; p++) w->plane_bytes[p] = tiles * DL_LANES * (size_t)dl_lane_bytes(qtype, p);
    if (dl_int_bits(qtype)) w->meta_bytes = tiles * sizeof(dl_meta_tile);
    if (dl_qtip_code(qtype) == DL_TCODE_HYB) w->tab_bytes = DL_HYB_ROWS * sizeof(uint32_t);
    return HARP_OK;
}

size_t dec_weights_bytes(const dec_weights *w) { return w->plane_bytes[0] + w->plane_bytes[1] + w->meta_bytes + w->tab_bytes; }

void dec_weights_free(dec_weights *w) {
    if (!w) return;
    void *ps[4] = {w->plane[0], w->plane[1], w->meta, w->tab};
    for (int i = 0; i < 4; i++) {
        if (!ps[i]) continue;
#ifdef HARP_HAVE_CUDA
        if (w->on_device) {
            dec_device_free(ps[i]);
            continue;
        }
#endif
        free(ps[i]);
    }
    w->plane[0] = w->plane[1] = NULL;
    w->meta = NULL;
    w->tab = NULL;
}

/* ---- packing -------------------------------------------------------------------------------------- */

/* A lane chunk of L bytes is stored as 16-byte pieces interleaved by lane (decode_layout.h). */
void dec_put_chunk(uint8_t *plane, const dec_weights *w, int32_t rt, int32_t st, int lane, int L, const void *chunk) {
    for (int i = 0; i < (L < 16 ? 1 : L / 16); i++)
        memcpy(plane + dl_piece_offset(rt, st, w->nst, lane, L, i), (const uint8_t *)chunk + 16 * i, L < 16 ? (size_t)L : 16);
}

void dec_get_chunk(const uint8_t *plane, const dec_weights *w, int32_t rt, int32_t st, int lane, int L, void *chunk) {
    for (int i = 0; i < (L < 16 ? 1 : L / 16); i++)
        memcpy((uint8_t *)chunk + 16 * i, plane + dl_piece_offset(rt, st, w->nst, lane, L, i), L < 16 ? (size_t)L : 16);
}

static uint16_t code_at(const uint16_t *codes, const dec_weights *w, int32_t r, int32_t kc) {
    return r < w->m && kc < ncode_of(w->n) ? codes[(size_t)r * (size_t)ncode_of(w->n) + (size_t)kc] : 0;
}

static void pack_e8p_plane(const uint16_t *codes, const dec_weights *w, uint8_t *dst) {
    for (int32_t rt = 0; rt < w->nrt; rt++)
        for (int32_t st = 0; st < w->nst; st++)
            for (int lane = 0; lane < DL_LANES; lane++) {
                uint64_t words[2];
                for (int wd = 0; wd < 2; wd++) {
                    uint16_t c4[4];
                    for (int i = 0; i < 4; i++) {
                        const int k = 4 * wd + i;
                        c4[i] = code_at(codes, w, dl_unit_row(rt, lane, k), dl_unit_col(st, lane, k) / 8);
                    }
                    words[wd] = dl_e8p_pack_word(c4);
                }
                dec_put_chunk(dst, w, rt, st, lane, DL_E8P_LANE, words);
            }
}

static void pack_e81b_plane(const uint8_t *codes, const dec_weights *w, uint8_t *dst) {
    const int32_t nc = ncode_of(w->n);
    for (int32_t rt = 0; rt < w->nrt; rt++)
        for (int32_t st = 0; st < w->nst; st++)
            for (int lane = 0; lane < DL_LANES; lane++) {
                uint8_t o[DL_E81B_LANE];
                for (int k = 0; k < 8; k++) {
                    const int32_t r = dl_unit_row(rt, lane, k), kc = dl_unit_col(st, lane, k) / 8;
                    o[k] = r < w->m && kc < nc ? codes[(size_t)r * (size_t)nc + (size_t)kc] : E81B_ORIGIN;
                }
                dec_put_chunk(dst, w, rt, st, lane, DL_E81B_LANE, o);
            }
}

static void pack_f16_plane(const uint16_t *v, const dec_weights *w, uint8_t *dst) {
    for (int32_t rt = 0; rt < w->nrt; rt++)
        for (int32_t st = 0; st < w->nst; st++)
            for (int lane = 0; lane < DL_LANES; lane++) {
                uint16_t o[DL_F16_LANE / 2];
                for (int k = 0; k < 8; k++) {
                    const int32_t r = dl_unit_row(rt, lane, k), c0 = dl_unit_col(st, lane, k);
                    for (int j = 0; j < 8; j++)
                        o[8 * k + j] = r < w->m && c0 + j < w->n ? v[(size_t)r * (size_t)w->n + (size_t)(c0 + j)] : 0;
                }
                dec_put_chunk(dst, w, rt, st, lane, DL_F16_LANE, o);
            }
}

static void pack_int_planes(const dec_qplanes *q, const dec_weights *w, uint8_t *p0, uint8_t *p1, dl_meta_tile *meta) {
    const int bits = dl_int_bits(q->qtype);
    const int64_t gs = group_of(q), ng = (q->n + gs - 1) / gs;
    for (int32_t rt = 0; rt < w->nrt; rt++)
        for (int32_t st = 0; st < w->nst; st++) {
            dl_meta_tile *mt = meta + (size_t)rt * (size_t)w->nst + (size_t)st;
            memset(mt, 0, sizeof *mt);
            const int64_t G = (int64_t)st * DL_TILE_COLS / gs;   /* group of this column tile */
            for (int rr = 0; rr < DL_TILE_ROWS; rr++) {
                const int32_t r = DL_TILE_ROWS * rt + rr;
                if (r >= w->m || G >= ng) continue;
                mt->sc[rr & 7][rr >> 3] = q->scales[(size_t)r * (size_t)ng + (size_t)G];
                mt->z[rr & 7][rr >> 3] = q->zeros[(size_t)r * (size_t)ng + (size_t)G];
            }
            for (int lane = 0; lane < DL_LANES; lane++) {
                uint32_t lo[16] = {0}, hi[2] = {0};
                for (int k = 0; k < 8; k++) {
                    const int32_t r = dl_unit_row(rt, lane, k), c0 = dl_unit_col(st, lane, k);
                    const unsigned zpad = r < w->m ? mt->z[(r % 16) & 7][(r % 16) >> 3] : 0;
                    for (int v = 0; v < 8; v++) {
                        const int32_t c = c0 + v;
                        const unsigned qv = r < w->m && c < w->n ? int_code(q, bits, r, c) : zpad;
                        dl_int_put(lo, hi, bits, k, v, qv);
                    }
                }
                dec_put_chunk(p0, w, rt, st, lane, dl_lane_bytes(q->qtype, 0), lo);
                if (bits == 3) dec_put_chunk(p1, w, rt, st, lane, DL_INT3HI_LANE, hi);
            }
        }
}

harp_status dec_pack(const dec_qplanes *q, dec_weights *w) {
    HARP_TRY(dec_pack_shape(q, w));
    for (int p = 0; p < 2; p++)
        if (w->plane_bytes[p] && !(w->plane[p] = harp_xmalloc(w->plane_bytes[p], "packed weight plane"))) goto oom;
    if (w->meta_bytes && !(w->meta = harp_xmalloc(w->meta_bytes, "packed weight scales"))) goto oom;
    if (w->tab_bytes && !(w->tab = harp_xmalloc(w->tab_bytes, "packed HYB table"))) goto oom;
    if (dl_qtip_bits(q->qtype)) {
        dec_qtip_pack(q, w);
        return HARP_OK;
    }
    if (q->qtype == HARP_QTYPE_LDP2) {
        dec_ldp_layout L;
        HARP_TRY(dec_ldp_layout_of(q->m, q->n, w->group, "decode pack", &L));
        dec_ldp_pack(&L, q->codes, q->levels, w->plane[0], w->plane[1]);
        return HARP_OK;
    }
    switch (q->qtype) {
    case HARP_QTYPE_F16: pack_f16_plane(q->codes, w, w->plane[0]); break;
    case HARP_QTYPE_E8P2: pack_e8p_plane(q->codes, w, w->plane[0]); break;
    case HARP_QTYPE_RVQ3:
        pack_e8p_plane(q->codes, w, w->plane[0]);
        pack_e81b_plane(q->codes2, w, w->plane[1]);
        break;
    case HARP_QTYPE_RVQ4:
        pack_e8p_plane(q->codes, w, w->plane[0]);
        pack_e8p_plane(q->codes2, w, w->plane[1]);
        break;
    default: pack_int_planes(q, w, w->plane[0], w->plane[1], w->meta); break;
    }
    return HARP_OK;
oom:
    dec_weights_free(w);
    return HARP_ERR_OOM;
}

/* ---- packed value through the device helpers -------------------------------------------------------- */

static float half_bits(uint32_t pair, int hi) { return harp_f16_to_f32((uint16_t)(hi ? pair >> 16 : pair & 0xFFFFu)); }

float dec_packed_value(const dec_weights *w, const uint32_t *tab, int32_t r, int32_t c) {
    if (dl_qtip_bits(w->qtype)) return dec_qtip_packed_value(w, r, c);
    if (w->qtype == HARP_QTYPE_LDP2) {   /* padding reads as 0, as dec_ldp_dequant_f16 writes it */
        dec_ldp_layout L;
        if (r >= w->m || c >= w->n) return 0.0f;
        if (dec_ldp_layout_of(w->m, w->n, w->group, "decode value", &L)) return NAN;
        return harp_f16_to_f32(dec_ldp_level_at(&L, w->plane[1], r, c / L.g, dec_ldp_code_at(&L, w->plane[0], r, c)));
    }
    const int32_t rt = r / DL_TILE_ROWS, st = c / DL_TILE_COLS, rr = r % DL_TILE_ROWS, cc = c % DL_TILE_COLS;
    const int g = rr & 7, h = rr >> 3, ucol = cc / 8, t = ucol & 3, j = ucol >> 2, v = cc % 8;
    const int lane = 4 * g + t, k = 2 * j + h, p = v >> 1, half = v & 1;
    uint32_t u[32], c0w[32];
    dec_get_chunk(w->plane[0], w, rt, st, lane, dl_lane_bytes(w->qtype, 0), c0w);
    const uint8_t *c0 = (const uint8_t *)c0w;
    switch (w->qtype) {
    case HARP_QTYPE_F16: {
        uint16_t hv;
        memcpy(&hv, c0 + 16 * k + 2 * v, 2);
        return harp_f16_to_f32(hv);
    }
    case HARP_QTYPE_E8P2:
    case HARP_QTYPE_RVQ3:
    case HARP_QTYPE_RVQ4: {
        uint32_t lohi[4], out[16];
        memcpy(lohi, c0, 16);
        dl_e8p_word(lohi[2 * (k >> 2)], lohi[2 * (k >> 2) + 1], tab, out);
        float val = w->scale0 * (half_bits(out[4 * (k & 3) + p], half) - DL_E8P_BIAS);
        if (w->qtype == HARP_QTYPE_RVQ4) {
            dec_get_chunk(w->plane[1], w, rt, st, lane, DL_E8P_LANE, lohi);
            dl_e8p_word(lohi[2 * (k >> 2)], lohi[2 * (k >> 2) + 1], tab, out);
            val += w->scale1 * (half_bits(out[4 * (k & 3) + p], half) - DL_E8P_BIAS);
        } else if (w->qtype == HARP_QTYPE_RVQ3) {
            uint8_t c1[DL_E81B_LANE];
            dec_get_chunk(w->plane[1], w, rt, st, lane, DL_E81B_LANE, c1);
            val += w->scale1 * harp_f16_to_f32(dec_e81b_table_f16()[8 * c1[k] + v]);
        }
        return val;
    }
    default: {
        const int bits = dl_int_bits(w->qtype);
        uint32_t hi[2] = {0, 0}, pair;
        memcpy(u, c0, (size_t)dl_lane_bytes(w->qtype, 0));
        if (bits == 3) {
            dec_get_chunk(w->plane[1], w, rt, st, lane, DL_INT3HI_LANE, hi);
            pair = dl_int3_pair(u, hi, k, p);
        } else {
            pair = bits == 2 ? dl_int2_pair(u, k, p) : bits == 4 ? dl_int4_pair(u, k, p) : dl_int8_pair(u, k, p);
        }
        const dl_meta_tile *mt = w->meta + (size_t)rt * (size_t)w->nst + (size_t)st;
        const float qz = half_bits(pair, half) - (1024.0f + (float)mt->z[g][h]);
        return mt->sc[g][h] * qz;
    }
    }
}
