/* The traits table of the quant types (module API of src/quant for qformat/, the tests and the
 * benchmarks): one row per harp_qtype, in src/quant/qtype.c. To add a type: one enum value in
 * include/harp/qtype.h, one row there, its kernels in src/quant/qt_<family>.c. */
#ifndef HARP_QUANT_QTYPE_TRAITS_H
#define HARP_QUANT_QTYPE_TRAITS_H

#include <stddef.h>
#include <stdint.h>

#include "harp/qtensor.h"
#include "io/safetensors.h"

/* How the codes are laid out (decides which kernels and device packings apply). */
typedef enum harp_qlayout {
    HARP_QLAYOUT_DENSE = 0,   /* one stored value per weight (f32 / f16 / bf16)                      */
    HARP_QLAYOUT_SCALAR = 1,  /* bit-packed scalar codes per row + per-group scale and zero point   */
    HARP_QLAYOUT_E8P = 2,     /* 16-bit E8P12 codes per 8 weights (+ a residual code plane)         */
    HARP_QLAYOUT_TRELLIS = 3, /* a tail-biting bitstream per 16×16 tile (QTIP, trellis.h)           */
    HARP_QLAYOUT_LDP = 4      /* bit-packed 2-bit codes per row + 4 fp16 levels per group (qt_ldp.c) */
} harp_qlayout;

/* Layouts with column groups (group_size / n_groups of the qtensor are meaningful). */
static inline int harp_qlayout_grouped(harp_qlayout l) { return l == HARP_QLAYOUT_SCALAR || l == HARP_QLAYOUT_LDP; }

/* Stored shape of a plane as a function of the tensor. */
typedef enum harp_qshape {
    HARP_QSHAPE_MN = 0,       /* [m, n]                                 */
    HARP_QSHAPE_M_CODES8 = 1, /* [m, ceil(n / 8)]                       */
    HARP_QSHAPE_M_PACKED = 2, /* [m, ceil(n · bits / 8)]  (bytes)       */
    HARP_QSHAPE_M_GROUPS = 3, /* [m, n_groups]                          */
    HARP_QSHAPE_N = 4,        /* [n]                                    */
    HARP_QSHAPE_TWO = 5,      /* [2]                                    */
    HARP_QSHAPE_TILES = 6,    /* [ceil(m/16)·ceil(n/16), 16·bits] (u16 words of each tile) */
    HARP_QSHAPE_HYB = 7,      /* [512, 2] (the HYB trellis table)       */
    HARP_QSHAPE_ONE = 8,      /* [1]                                    */
    HARP_QSHAPE_M_GROUPS4 = 9 /* [m, 4 · n_groups]                      */
} harp_qshape;

/* Value rule checked on load (harp_qplane_check_values). */
typedef enum harp_qvalues {
    HARP_QV_ANY = 0,          /* every bit pattern is a valid code                                  */
    HARP_QV_FINITE = 1,       /* f32, no NaN / Inf                                                  */
    HARP_QV_ZERO_POINT = 2,   /* u8 < 2^bits                                                        */
    HARP_QV_GROUP_INDEX = 3,  /* i32 in [0, n_groups)                                               */
    HARP_QV_TCODE = 4,        /* i32 harp_tcode of a format code: 1mad, 3inst or hyb                */
    HARP_QV_LEVELS4 = 9       /* f16, finite, each run of 4 non-decreasing (LDP levels)             */
} harp_qvalues;

typedef struct harp_qplane_desc {
    const char *suffix;       /* folder tensor name after the group prefix: "codes", "scales", …    */
    harp_st_dtype dtype;
    harp_qshape shape;
    harp_qvalues values;
    int optional;             /* may be absent (g_idx: only with GPTQ act-order)                    */
} harp_qplane_desc;

typedef struct harp_qtype_traits {
    const char *name;                 /* harp_qtype_name                                             */
    double bits;                      /* nominal code bits per weight                                */
    int block_rows, block_cols;       /* weights sharing one code (E8P 1×8, scalar and f32 1×1)      */
    harp_qlayout layout;
    int n_planes;
    harp_qplane_desc planes[HARP_QT_MAX_PLANES];  /* folder order                                    */
    const char *legacy_codebook;      /* quantization_config.codebook of format v1, NULL if none     */
    /* derived parameters from the planes (NULL: none) */
    void (*decode)(harp_qtensor *w);
    /* dense rows [r0, r1) of W̃ into out (row stride ld ≥ n floats): the values of gemv_ref */
    void (*dequant_rows)(const harp_qtensor *w, int64_t r0, int64_t r1, float *out, size_t ld);
    /* y = W̃ x, double accumulation, single thread: the definition of the format */
    void (*gemv_ref)(const harp_qtensor *w, const float *x, float *y);
    /* best CPU y = W̃ x (act_q8: int8 activations where the type has such a kernel) */
    harp_status (*gemv)(const harp_qtensor *w, const float *x, float *y, int act_q8);
    /* Y (rows × m) = X · W̃ᵀ for many rows */
    harp_status (*mm)(const harp_qtensor *w, const float *X, int64_t rows, float *Y);
    /* rules across planes beyond the per-plane ones (NULL: none); one error line naming `what` */
    harp_status (*check)(const harp_qtensor *w, const char *what);
} harp_qtype_traits;

/* Row of type t, NULL if t is not a type. */
const harp_qtype_traits *harp_qtype_traits_of(harp_qtype t);
/* 1 if s is the format-v1 quantization_config.codebook string of some type ("scalar", "e8p12", …). */
int harp_qtype_legacy_codebook_known(const char *s);

/* Index of the plane called suffix in t's list, −1 if none. */
int harp_qplane_index(harp_qtype t, const char *suffix);
/* Stored shape (ndim 1 or 2) and byte size of plane i of w. */
int harp_qplane_shape(const harp_qtensor *w, int i, int64_t shape[2]);
size_t harp_qplane_bytes(const harp_qtensor *w, int i);
/* Value rule of plane i; errors read "FILE: tensor 'PREFIX.SUFFIX' …" (file and prefix name the
 * folder tensor; any labels for in-memory tensors). */
harp_status harp_qplane_check_values(const harp_qtensor *w, int i, const char *file, const char *prefix);
/* Allocates plane i zeroed, owned by w (replacing nothing: the plane must be empty). */
harp_status harp_qtensor_alloc_plane(harp_qtensor *w, int i);

/* The generic many-row product every quantized type uses: 64-row tiles of W̃ dequantized into a
 * small buffer, one sgemm per tile (never the whole dense matrix). */
harp_status harp_qmm_tiles(const harp_qtensor *w, const float *X, int64_t rows, float *Y);

#endif
