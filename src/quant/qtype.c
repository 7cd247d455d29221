/* The quant-type table: one row per harp_qtype (designated initialisers), the name / bits /
 * solver mappings, and the plane rules every reader and writer of a qtensor follows. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "quant/quant_internal.h"
#include "quant/qtype_traits.h"

#define PLANE(sfx, dt, shp, val, opt) {sfx, dt, shp, val, opt}
#define DENSE_ROW(NAME, BITS, DT)                                                                        \
    {.name = NAME, .bits = BITS, .block_rows = 1, .block_cols = 1, .layout = HARP_QLAYOUT_DENSE,        \
     .n_planes = 1, .planes = {PLANE("weight", DT, HARP_QSHAPE_MN, HARP_QV_ANY, 0)},                     \
     .legacy_codebook = NULL, .decode = NULL, .dequant_rows = qt_dense_dequant_rows,                     \
     .gemv_ref = qt_dense_gemv_ref, .gemv = qt_dense_gemv, .mm = qt_dense_mm}
/* qweight U8 [m, ceil(n·bits/8)], scales F32 [m, n_groups], zeros U8 [m, n_groups], g_idx I32 [n] */
#define SCALAR_ROW(NAME, BITS)                                                                           \
    {.name = NAME, .bits = BITS, .block_rows = 1, .block_cols = 1, .layout = HARP_QLAYOUT_SCALAR,       \
     .n_planes = 4,                                                                                      \
     .planes = {PLANE("qweight", HARP_ST_U8, HARP_QSHAPE_M_PACKED, HARP_QV_ANY, 0),                      \
                PLANE("scales", HARP_ST_F32, HARP_QSHAPE_M_GROUPS, HARP_QV_FINITE, 0),                   \
                PLANE("zeros", HARP_ST_U8, HARP_QSHAPE_M_GROUPS, HARP_QV_ZERO_POINT, 0),                 \
                PLANE("g_idx", HARP_ST_I32, HARP_QSHAPE_N, HARP_QV_GROUP_INDEX, 1)},                     \
     .legacy_codebook = "scalar", .decode = NULL, .dequant_rows = qt_scalar_dequant_rows,                \
     .gemv_ref = qt_scalar_gemv_ref, .gemv = qt_scalar_gemv, .mm = harp_qmm_tiles}
#define E8P_CODES PLANE("codes", HARP_ST_U16, HARP_QSHAPE_M_CODES8, HARP_QV_ANY, 0)
#define E8P_WSCALE PLANE("wscale", HARP_ST_F32, HARP_QSHAPE_TWO, HARP_QV_FINITE, 0)
#define E8P_KERNELS                                                                                      \
    .decode = qt_e8p_decode, .dequant_rows = qt_e8p_dequant_rows, .gemv_ref = qt_e8p_gemv_ref,         \
    .gemv = qt_e8p_gemv, .mm = harp_qmm_tiles

/* trellis U16 [tiles, 16·K], tlut F16 [512, 2] (hyb only), wscale F32 [1], tcode I32 [1] */
#define QTIP_ROW(NAME, BITS)                                                                             \
    {.name = NAME, .bits = BITS, .block_rows = 16, .block_cols = 16, .layout = HARP_QLAYOUT_TRELLIS,    \
     .n_planes = 4,                                                                                      \
     .planes = {PLANE("trellis", HARP_ST_U16, HARP_QSHAPE_TILES, HARP_QV_ANY, 0),                        \
                PLANE("tlut", HARP_ST_F16, HARP_QSHAPE_HYB, HARP_QV_ANY, 1),                             \
                PLANE("wscale", HARP_ST_F32, HARP_QSHAPE_ONE, HARP_QV_FINITE, 0),                        \
                PLANE("tcode", HARP_ST_I32, HARP_QSHAPE_ONE, HARP_QV_TCODE, 0)},                         \
     .legacy_codebook = NAME, .decode = qt_trellis_decode, .dequant_rows = qt_trellis_dequant_rows,      \
     .gemv_ref = qt_trellis_gemv_ref, .gemv = qt_trellis_gemv, .mm = harp_qmm_tiles, .check = qt_trellis_check}

static const harp_qtype_traits k_traits[HARP_QTYPE_COUNT] = {
    [HARP_QTYPE_F32] = DENSE_ROW("f32", 32, HARP_ST_F32),
    [HARP_QTYPE_F16] = DENSE_ROW("f16", 16, HARP_ST_F16),
    [HARP_QTYPE_BF16] = DENSE_ROW("bf16", 16, HARP_ST_BF16),
    [HARP_QTYPE_INT2] = SCALAR_ROW("int2", 2),
    [HARP_QTYPE_INT3] = SCALAR_ROW("int3", 3),
    [HARP_QTYPE_INT4] = SCALAR_ROW("int4", 4),
    [HARP_QTYPE_INT8] = SCALAR_ROW("int8", 8),
    /* codes U16 [m, ceil(n/8)], wscale F32 [2] = {Wscale, Wscale / resid_scale (0 for e8p2)} */
    [HARP_QTYPE_E8P2] = {.name = "e8p2", .bits = 2, .block_rows = 1, .block_cols = 8, .layout = HARP_QLAYOUT_E8P,
                         .n_planes = 2, .planes = {E8P_CODES, E8P_WSCALE}, .legacy_codebook = "e8p12", E8P_KERNELS},
    /* + codes2 U8 [m, ceil(n/8)]: E81B residual index */
    [HARP_QTYPE_RVQ3] = {.name = "rvq3", .bits = 3, .block_rows = 1, .block_cols = 8, .layout = HARP_QLAYOUT_E8P,
                         .n_planes = 3,
                         .planes = {E8P_CODES, PLANE("codes2", HARP_ST_U8, HARP_QSHAPE_M_CODES8, HARP_QV_ANY, 0),
                                    E8P_WSCALE},
                         .legacy_codebook = "e8p12_rvq3b", E8P_KERNELS},
    /* + codes2 U16 [m, ceil(n/8)]: E8P12 residual code */
    [HARP_QTYPE_RVQ4] = {.name = "rvq4", .bits = 4, .block_rows = 1, .block_cols = 8, .layout = HARP_QLAYOUT_E8P,
                         .n_planes = 3,
                         .planes = {E8P_CODES, PLANE("codes2", HARP_ST_U16, HARP_QSHAPE_M_CODES8, HARP_QV_ANY, 0),
                                    E8P_WSCALE},
                         .legacy_codebook = "e8p12_rvq4b", E8P_KERNELS},
    /* qweight U8 [m, ceil(n/4)] (2-bit codes), levels F16 [m, 4·n_groups] (qt_ldp.c) */
    [HARP_QTYPE_LDP2] = {.name = "ldp2", .bits = 2, .block_rows = 1, .block_cols = 1, .layout = HARP_QLAYOUT_LDP,
                         .n_planes = 2,
                         .planes = {PLANE("qweight", HARP_ST_U8, HARP_QSHAPE_M_PACKED, HARP_QV_ANY, 0),
                                    PLANE("levels", HARP_ST_F16, HARP_QSHAPE_M_GROUPS4, HARP_QV_LEVELS4, 0)},
                         .legacy_codebook = "ldp2", .decode = NULL, .dequant_rows = qt_ldp_dequant_rows,
                         .gemv_ref = qt_ldp_gemv_ref, .gemv = qt_ldp_gemv, .mm = harp_qmm_tiles},
    [HARP_QTYPE_QTIP2] = QTIP_ROW("qtip2", 2),
    [HARP_QTYPE_QTIP3] = QTIP_ROW("qtip3", 3),
    [HARP_QTYPE_QTIP4] = QTIP_ROW("qtip4", 4),
};

const harp_qtype_traits *harp_qtype_traits_of(harp_qtype t) {
    return (int)t >= 0 && (int)t < HARP_QTYPE_COUNT && k_traits[t].name ? &k_traits[t] : NULL;
}

const char *harp_qtype_name(harp_qtype t) {
    const harp_qtype_traits *tr = harp_qtype_traits_of(t);
    return tr ? tr->name : NULL;
}

harp_status harp_qtype_parse(const char *name, harp_qtype *out) {
    char known[256] = "";
    for (int t = 0; t < HARP_QTYPE_COUNT; t++) {
        if (!k_traits[t].name) continue; /* a number reserved for a type of another branch */
        if (name && !strcmp(name, k_traits[t].name)) {
            *out = (harp_qtype)t;
            return HARP_OK;
        }
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", known[0] ? ", " : "", k_traits[t].name);
    }
    return harp_err(HARP_ERR_INVALID_ARG, "unknown quant type '%s' (%s)", name ? name : "(null)", known);
}

double harp_qtype_bits(harp_qtype t) {
    const harp_qtype_traits *tr = harp_qtype_traits_of(t);
    return tr ? tr->bits : 0.0;
}

harp_qtype harp_qtype_for(harp_qmethod method, int bits) {
    switch (method) {
    case HARP_QMETHOD_RTN:
    case HARP_QMETHOD_GPTQ:
        return bits == 2 ? HARP_QTYPE_INT2 : bits == 3 ? HARP_QTYPE_INT3 : bits == 4 ? HARP_QTYPE_INT4
               : bits == 8 ? HARP_QTYPE_INT8 : HARP_QTYPE_NONE;
    case HARP_QMETHOD_QUIP:
        return bits == 2 ? HARP_QTYPE_E8P2 : bits == 3 ? HARP_QTYPE_RVQ3 : bits == 4 ? HARP_QTYPE_RVQ4 : HARP_QTYPE_NONE;
    case HARP_QMETHOD_LDP:
        return bits == 2 ? HARP_QTYPE_LDP2 : HARP_QTYPE_NONE;
    case HARP_QMETHOD_QTIP:
        return bits == 2 ? HARP_QTYPE_QTIP2 : bits == 3 ? HARP_QTYPE_QTIP3 : bits == 4 ? HARP_QTYPE_QTIP4 : HARP_QTYPE_NONE;
    }
    return HARP_QTYPE_NONE;
}

const char *harp_qmethod_name(harp_qmethod m) {
    static const char *const names[] = {[HARP_QMETHOD_RTN] = "rtn", [HARP_QMETHOD_GPTQ] = "gptq",
                                        [HARP_QMETHOD_QUIP] = "quip", [HARP_QMETHOD_QTIP] = "qtip",
                                        [HARP_QMETHOD_LDP] = "ldp"};
    return (unsigned)m < sizeof names / sizeof *names ? names[m] : NULL;
}

int harp_qtype_legacy_codebook_known(const char *s) {
    for (int t = 0; t < HARP_QTYPE_COUNT; t++)
        if (s && k_traits[t].legacy_codebook && !strcmp(s, k_traits[t].legacy_codebook)) return 1;
    return 0;
}

/* ---- planes ------------------------------------------------------------------------------------- */

int harp_qplane_index(harp_qtype t, const char *suffix) {
    const harp_qtype_traits *tr = harp_qtype_traits_of(t);
    for (int i = 0; tr && i < tr->n_planes; i++)
        if (!strcmp(tr->planes[i].suffix, suffix)) return i;
    return -1;
}

int harp_qplane_shape(const harp_qtensor *w, int i, int64_t shape[2]) {
    const harp_qtype_traits *tr = harp_qtype_traits_of(w->type);
    shape[1] = 0;
    switch (tr->planes[i].shape) {
    case HARP_QSHAPE_MN: shape[0] = w->m, shape[1] = w->n; return 2;
    case HARP_QSHAPE_M_CODES8: shape[0] = w->m, shape[1] = harp_e8p_ncode(w->n); return 2;
    case HARP_QSHAPE_M_PACKED: shape[0] = w->m, shape[1] = harp_scalar_row_bytes(w->n, (int)tr->bits); return 2;
    case HARP_QSHAPE_M_GROUPS: shape[0] = w->m, shape[1] = w->n_groups; return 2;
    case HARP_QSHAPE_N: shape[0] = w->n; return 1;
    case HARP_QSHAPE_TWO: shape[0] = 2; return 1;
    case HARP_QSHAPE_M_GROUPS4: shape[0] = w->m, shape[1] = 4 * w->n_groups; return 2;
    case HARP_QSHAPE_TILES: shape[0] = ((w->m + 15) / 16) * ((w->n + 15) / 16), shape[1] = 16 * (int64_t)tr->bits; return 2;
    case HARP_QSHAPE_HYB: shape[0] = 512, shape[1] = 2; return 2;
    case HARP_QSHAPE_ONE: shape[0] = 1; return 1;
    }
    return 0;
}

size_t harp_qplane_bytes(const harp_qtensor *w, int i) {
    int64_t s[2];
    int nd = harp_qplane_shape(w, i, s);
    size_t b = harp_st_dtype_size(harp_qtype_traits_of(w->type)->planes[i].dtype) * (size_t)s[0];
    return nd == 2 ? b * (size_t)s[1] : b;
}

/* Entries are loaded with memcpy: a plane may be a view into a file whose tensors are not aligned to
 * their element size (the reader does not require it). */
harp_status harp_qplane_check_values(const harp_qtensor *w, int i, const char *file, const char *prefix) {
    const harp_qtype_traits *tr = harp_qtype_traits_of(w->type);
    const harp_qplane_desc *d = &tr->planes[i];
    const void *p = w->planes[i].data;
    if (!p) return HARP_OK;
    const int64_t count = (int64_t)(w->planes[i].nbytes / harp_st_dtype_size(d->dtype));
    const int bits = (int)tr->bits;
    switch (d->values) {
    case HARP_QV_ANY: return HARP_OK;
    case HARP_QV_FINITE:
        for (int64_t k = 0; k < count; k++) {
            float f;
            memcpy(&f, (const uint8_t *)p + 4 * k, 4);
            if (!isfinite(f))
                return harp_err(HARP_ERR_NUMERIC, "%s: tensor '%s.%s' has a non-finite value at index %lld", file, prefix,
                                d->suffix, (long long)k);
        }
        return HARP_OK;
    case HARP_QV_ZERO_POINT:
        for (int64_t k = 0; k < count; k++) {
            const uint8_t z = ((const uint8_t *)p)[k];
            if (z >= (1u << bits))
                return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s.%s' entry %lld is %u, out of range for %d-bit codes", file,
                                prefix, d->suffix, (long long)k, z, bits);
        }
        return HARP_OK;
    case HARP_QV_GROUP_INDEX:
        for (int64_t k = 0; k < count; k++) {
            int32_t g;
            memcpy(&g, (const uint8_t *)p + 4 * k, 4);
            if (g < 0 || g >= w->n_groups)
                return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s.%s' entry %lld is %d, out of range [0, %lld)", file, prefix,
                                d->suffix, (long long)k, g, (long long)w->n_groups);
        }
        return HARP_OK;
    case HARP_QV_LEVELS4: return qt_ldp_check_levels(p, count, file, prefix, d->suffix);
    case HARP_QV_TCODE:
        for (int64_t k = 0; k < count; k++) {
            int32_t c;
            memcpy(&c, (const uint8_t *)p + 4 * k, 4);
            if (c != HARP_TCODE_1MAD && c != HARP_TCODE_3INST && c != HARP_TCODE_HYB)
                return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s.%s' is %d, not a trellis code (1 = 1mad, 2 = 3inst, 3 = hyb)",
                                file, prefix, d->suffix, c);
        }
        return HARP_OK;
    }
    return HARP_OK;
}

harp_status harp_qtensor_alloc_plane(harp_qtensor *w, int i) {
    const harp_qtype_traits *tr = harp_qtype_traits_of(w->type);
    if (!tr || i < 0 || i >= tr->n_planes || w->planes[i].data)
        return harp_err(HARP_ERR_INTERNAL, "qtensor: cannot allocate plane %d of type %d", i, (int)w->type);
    size_t nb = harp_qplane_bytes(w, i);
    void *p = harp_xcalloc(nb ? nb : 1, 1, tr->planes[i].suffix);
    if (!p) return HARP_ERR_OOM;
    w->planes[i].data = p;
    w->planes[i].owned = p;
    w->planes[i].nbytes = nb;
    return HARP_OK;
}
