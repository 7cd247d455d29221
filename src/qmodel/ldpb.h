/* LDP fit (b) glue between the model and the fp64 block of quant/blockfit.h (module API of src/qmodel):
 * a decoder layer of a loaded model as an fp64 block. */
#ifndef HARP_QMODEL_LDPB_H
#define HARP_QMODEL_LDPB_H

#include "harp/qmodel.h"
#include "model/model.h"
#include "qformat/qformat.h"
#include "quant/blockfit.h"

/* Dims (T, nseq given; inv_freq points into *inv, which the caller frees with harp_free) and fp64
 * copies of layer l's weights (fp32 groups only; biases refused: HARP_ERR_UNSUPPORTED). A layer with
 * W/A/KV slots runs them in the block only through harp_ldpb_block_wakv. */
harp_status harp_ldpb_block_of(const harp_model *m, int l, int T, int nseq, harp_blk_dims *dm, double **inv, harp_blk_w *w);
/* Layer l's W/A/KV slots (online rotations, activation and K/V quantizers with the layer's clip
 * ratios) as the block's; all NULL for a model without slots. Points into m. */
void harp_ldpb_block_wakv(const harp_model *m, int l, harp_blk_wakv *wk);

/* *X (harp_xmalloc'd, *nseq·T rows × dim, fp64) = the token embeddings of nseq_req evenly spaced windows
 * of T tokens of text (fewer, with a warning naming `what`, when the text is shorter; an error when
 * it has no whole window): the residual stream the fp64 blocks start from. */
harp_status harp_ldpb_embed_windows(const harp_model *m, const char *text, size_t len, int T, int nseq_req, const char *what,
                                    int *nseq, double **X);

/* The quantize pipeline's fit (b) state: calibration activations entering the current layer. */
typedef struct qp_ldpb {
    int T, nseq;
    double *X;     /* (nseq·T, dim): the quantized model's residual stream at the current layer */
    double loss0, loss1; /* block loss of the last fitted layer before / after fit (b)          */
} qp_ldpb;

/* X = the token embeddings of p->ldp_nseq evenly spaced windows of p->ldp_ctx tokens of p->ldp_text. */
harp_status qp_ldpb_begin(const harp_model *m, const harp_qmodel_params *p, qp_ldpb *s);
/* Layer `layer`, whose ldp2 group tensors are in t (a fresh layer's, or all tensors so far for a
 * resumed one): with fit, LDP fit (b) of its seven linears against the FP block on s->X, written back
 * into t's codes and levels; then s->X ← the quantized block's output. */
harp_status qp_ldpb_layer(const harp_model *m, int layer, const harp_qmodel_params *p, qf_tensors *t, int fit, qp_ldpb *s);
void qp_ldpb_end(qp_ldpb *s);

#endif
