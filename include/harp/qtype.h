/* Quant types: the one list of weight (and, later, activation / KV-cache) storage formats.
 *
 * enum harp_qtype only grows: values are fixed forever (they may be stored or sent to a device), a
 * removed type keeps its number reserved. Every type has one row in the traits table
 * (src/quant/qtype.c): name, nominal bits, block shape, the planes it stores in a folder, value
 * check, dequantization, the reference GEMV that defines it, the best CPU GEMV and the many-row
 * product. Every mapping — name ↔ type, solver + bits → type, type → stored planes — exists there
 * once. */
#ifndef HARP_QTYPE_H
#define HARP_QTYPE_H

#include "harp/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum harp_qtype {
    HARP_QTYPE_NONE = -1, /* "no type" (returned for an unknown combination; never stored)         */
    HARP_QTYPE_F32 = 0,
    HARP_QTYPE_F16 = 1,
    HARP_QTYPE_BF16 = 2,
    /* scalar group formats: codes bit-packed along each row, one f32 scale and one u8 zero point
     * per (row, group); w = scale · (q − zero) */
    HARP_QTYPE_INT2 = 3,
    HARP_QTYPE_INT3 = 4,
    HARP_QTYPE_INT4 = 5,
    HARP_QTYPE_INT8 = 6,
    /* QuIP# lattice formats, 8 weights per code (algorithms.md §5.2, §5.3) */
    HARP_QTYPE_E8P2 = 7,  /* E8P12: one 16-bit code per 8 weights                                  */
    HARP_QTYPE_RVQ3 = 8,  /* E8P12 + E81B residual (8-bit code)                                   */
    HARP_QTYPE_RVQ4 = 9,  /* E8P12 + E8P12 residual                                               */
    /* QTIP bitshift-trellis formats (algorithms.md §5.6, docs/format/trellis.md): one tail-biting
     * 256·K-bit code stream per 16×16 tile, exactly K bits per weight, code 1mad / 3inst / hyb */
    HARP_QTYPE_QTIP2 = 10,
    HARP_QTYPE_QTIP3 = 11,
    HARP_QTYPE_QTIP4 = 12,
    /* 13 … 19: reserved for activation / KV-cache types */
    /* non-uniform 2-bit scalar (RCP's LDP, algorithms.md §6.6): 2-bit codes bit-packed per row and 4
     * ordered fp16 levels per (row, group); w = levels[q] */
    HARP_QTYPE_LDP2 = 20,
    /* Appended next (do not renumber the above): activation / KV-cache types. */
    HARP_QTYPE_COUNT
} harp_qtype;

/* Solver (rounding algorithm). A solver writes a harp_qtensor of some qtype; see harp/quant.h. */
typedef enum harp_qmethod {
    HARP_QMETHOD_RTN = 0,
    HARP_QMETHOD_GPTQ = 1,
    HARP_QMETHOD_QUIP = 2,
    HARP_QMETHOD_QTIP = 3, /* trellis (QTIP) with BlockLDLQ b = 16 */
    HARP_QMETHOD_LDP = 4   /* learnable non-uniform levels fitted with GPTQ error feedback (§6.6) */
} harp_qmethod;

/* "f32", "f16", "bf16", "int2", "int3", "int4", "int8", "e8p2", "rvq3", "rvq4", "qtip2", "qtip3",
 * "qtip4", "ldp2"; NULL if unknown. */
const char *harp_qtype_name(harp_qtype t);
/* Inverse of harp_qtype_name; HARP_ERR_INVALID_ARG (naming the known types) if unknown. */
harp_status harp_qtype_parse(const char *name, harp_qtype *out);
/* Nominal bits per weight of the codes alone (2 for int2 and e8p2, 32 for f32); scales, zero
 * points and transforms come on top. 0 for an unknown type. */
double harp_qtype_bits(harp_qtype t);
/* THE solver + bit width → type mapping: rtn / gptq 2, 3, 4, 8 → int2 … int8; quip 2, 3, 4 →
 * e8p2, rvq3, rvq4; qtip 2, 3, 4 → qtip2, qtip3, qtip4; ldp 2 → ldp2. HARP_QTYPE_NONE for any other
 * combination. */
harp_qtype harp_qtype_for(harp_qmethod method, int bits);
/* "rtn", "gptq", "quip", "qtip", "ldp"; NULL if unknown. */
const char *harp_qmethod_name(harp_qmethod m);

#ifdef __cplusplus
}
#endif
#endif
