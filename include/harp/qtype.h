/* Quantization types of stored tensors (weights today; activation and KV-cache types will be
 * appended). Values are FIXED and only grow: a removed type keeps its number reserved.
 *
 * NOTE (helper "be", phase 1): only the enum is declared here, with the values the quant-type
 * table of helper "fmt" defines (include/harp/qtype.h there also has the names, parse, bits and
 * harp_qtype_for). On merge, take fmt's file: it is a superset of this one. */
#ifndef HARP_QTYPE_H
#define HARP_QTYPE_H
#ifdef __cplusplus
extern "C" {
#endif

typedef enum harp_qtype {
    HARP_QTYPE_F32 = 0,
    HARP_QTYPE_F16 = 1,
    HARP_QTYPE_BF16 = 2,
    HARP_QTYPE_INT2 = 3,  /* scalar group formats: f32 scale + u8 zero per group, bit-packed rows */
    HARP_QTYPE_INT3 = 4,
    HARP_QTYPE_INT4 = 5,
    HARP_QTYPE_INT8 = 6,
    HARP_QTYPE_E8P2 = 7,  /* E8P12 lattice codebook, 2 bits */
    HARP_QTYPE_RVQ3 = 8,  /* E8P + E81B residual */
    HARP_QTYPE_RVQ4 = 9,  /* E8P × 2 */
    HARP_QTYPE_COUNT
} harp_qtype;

#ifdef __cplusplus
}
#endif
#endif
