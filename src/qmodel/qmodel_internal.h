/* Internals of the quantize pipeline (pipeline.c: layers, resume state, report; qgroup.c: one linear
 * group) and the folder writer (qwrite.c). The folder format itself is src/qformat. */
#ifndef HARP_QMODEL_INTERNAL_H
#define HARP_QMODEL_INTERNAL_H

#include "harp/calib.h"
#include "harp/qmodel.h"
#include "model/model.h"
#include "qformat/qformat.h"
#include "qmodel/seqcal.h"

/* Per-group report columns, also stored in each .partial layer file (run.report F64 [4, RPT_NCOL]). */
enum {
    RPT_LOSS,       /* proxy loss                                      */
    RPT_SEC,        /* seconds of the group                            */
    RPT_BITS,       /* stored bits (code + xf)                         */
    RPT_HARP_BITS,  /* harp_fit_storage_bits of both sides (HARP only) */
    RPT_ROT_BITS,   /* rotation blob bits as stored                    */
    RPT_HL0,        /* HARP loss at step 0                             */
    RPT_HL1,        /* HARP loss after the last step                   */
    RPT_FIT_SEC,    /* HARP fit seconds                                */
    RPT_Q_SEC,      /* harp_quantize_linear seconds                    */
    RPT_CODE_BITS,  /* codes, scales, zeros, g_idx, slice scales        */
    RPT_XF_BITS,    /* signs + rotation blobs as stored                 */
    RPT_XF_PAPER,   /* transforms as the HARP paper counts them (qgroup.c) */
    RPT_NCOL
};

/* Quantizes group gi of layer `layer` of mdl with the layer's Hessians — hl's, or seq's when seq is
 * not NULL (with its ASYM target) — and appends its folder tensors to out; rpt receives the report
 * columns. */
harp_status qp_group_run(const harp_model *mdl, int layer, int gi, const harp_hess_layer *hl, const qp_seq *seq,
                         const harp_qmodel_params *p, qf_tensors *out, double *rpt);

struct cJSON;
/* Writes config.json (source config + qcfg as quantization_config), model.safetensors (unquantized
 * tensors in the source dtype and the quantized group tensors q, in the fixed order of
 * docs/format/qmodel.md) and the tokenizer files into out_dir. */
harp_status qm_write_folder(const harp_model *m, const char *model_path, const char *out_dir, const struct cJSON *qcfg,
                            const qf_tensors *q);

#endif
