/* Sequential calibration of the quantize pipeline (harp_qmodel_params.w_calib, module API of
 * src/qmodel): the Hessians of each layer taken from the model being quantized instead of the
 * Hessian folder. Two fp64 residual streams run through the layers as blocks (qmodel/ldpb.h): the
 * quantized model's (earlier layers quantized, every layer's activation / K/V slots on) and, for
 * HARP_WCALIB_ASYM, the unquantized model's (its rotations, no quantizers). */
#ifndef HARP_QMODEL_SEQCAL_H
#define HARP_QMODEL_SEQCAL_H

#include "harp/qmodel.h"
#include "model/model.h"
#include "qformat/qformat.h"

typedef struct qp_seq {
    int mode, T, nseq;
    double *Xq;            /* (nseq·T, dim): the quantized model's stream entering the current layer   */
    double *Xf;            /* the same for the unquantized model (ASYM only, else NULL)               */
    int xf_layer;          /* the layer Xf enters (qp_seq_stats moves it on as it reads it)          */
    int64_t n[QF_NGROUPS]; /* input width of each group                                                */
    double *H[QF_NGROUPS]; /* n×n: XᵀX/N, X the rows group g's linears see in the quantized stream      */
    double *Mt[QF_NGROUPS];/* ASYM: (H+λI)⁻¹(C+λI)ᵀ with C = X̃ᵀX/N, λ = 1 % of mean diag H: the group's
                              target is W·Mtᵀ (NULL: SEQ, or the solve failed and W stays the target) */
} qp_seq;

/* Xq (and Xf) = the embeddings of p->calib_nseq evenly spaced windows of p->calib_ctx tokens of
 * p->calib_text; nothing when p->w_calib is HARP_WCALIB_FILES. */
harp_status qp_seq_begin(const harp_model *m, const harp_qmodel_params *p, qp_seq *s);
/* H (and Mt) of layer `layer`, whose weights in m are still unquantized; ASYM's unquantized block pass
 * also moves Xf past the layer. */
harp_status qp_seq_stats(const harp_model *m, int layer, qp_seq *s);
/* Moves the streams past layer `layer`: Xq through it with its quantized groups (the folder tensors
 * in t, the layer's or all so far) and its slots, Xf through the unquantized layer. */
harp_status qp_seq_advance(const harp_model *m, int layer, const harp_qmodel_params *p, const qf_tensors *t, qp_seq *s);
void qp_seq_end(qp_seq *s);

#endif
