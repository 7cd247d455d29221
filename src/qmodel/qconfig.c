/* Defaults, seeds and the report of the quantize pipeline (the folder's quantization_config is
 * src/qformat/qf_config.c). */
#include <string.h>

#include "core/core.h"
#include "qmodel/qmodel_internal.h"

harp_qmodel_params harp_qmodel_default_params(harp_qmethod method, int bits) {
    const int hb = bits >= 2 && bits <= 4 ? bits : 2;
    const harp_tcode tc = method == HARP_QMETHOD_QTIP ? HARP_TCODE_HYB : (harp_tcode)0;
    return (harp_qmodel_params){.method = method, .bits = bits, .group_size = harp_quant_default_params(method, bits).group_size,
                                .rotation = method == HARP_QMETHOD_QUIP || method == HARP_QMETHOD_QTIP ? HARP_QROT_RHT
                                                                                                     : HARP_QROT_NONE,
                                .qtip_code = tc,
                                .harp = method == HARP_QMETHOD_QTIP ? harp_fit_default_params_qtip(hb, tc)
                                                                    : harp_fit_default_params(hb),
                                .resume = 1, .abort_after_layer = -1, .ldp_ctx = 128, .ldp_nseq = 32,
                                .ldp_steps = 100, .ldp_lr = 0.01, .calib_ctx = 512, .calib_nseq = 32};
}

const char *harp_wcalib_name(int mode) {
    static const char *const names[] = {"files", "seq", "asym"};
    return mode >= HARP_WCALIB_FILES && mode <= HARP_WCALIB_ASYM ? names[mode] : NULL;
}

uint64_t harp_qmodel_layer_seed(uint64_t seed, int layer, int group) {
    return harp_seed_mix(harp_seed_mix(seed, 0x5149u + (uint64_t)layer), (uint64_t)group);
}

void harp_qmodel_report_free(harp_qmodel_report *r) {
    if (!r) return;
    harp_free(r->rows);
    r->rows = NULL;
    r->n_rows = 0;
}

const char *harp_model_quant_desc(const harp_model *m) { return m ? m->quant_desc : ""; }
