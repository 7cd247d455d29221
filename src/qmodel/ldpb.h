/* LDP fit (b) glue between the model and the fp64 block of quant/blockfit.h (module API of src/qmodel):
 * a decoder layer of a loaded model as an fp64 block. */
#ifndef HARP_QMODEL_LDPB_H
#define HARP_QMODEL_LDPB_H

#include "model/model.h"
#include "quant/blockfit.h"

/* Dims (T, nseq given; inv_freq points into *inv, which the caller frees with harp_free) and fp64
 * copies of layer l's weights (fp32 groups only; biases and W/A/KV slots refused: HARP_ERR_UNSUPPORTED). */
harp_status harp_ldpb_block_of(const harp_model *m, int l, int T, int nseq, harp_blk_dims *dm, double **inv, harp_blk_w *w);

#endif
