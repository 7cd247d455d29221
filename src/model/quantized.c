/* A harp folder's quantized groups into the model: qformat's loader validates and builds one
 * harp_qtensor per (layer, group); each becomes that group's weights. */
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "model/model_internal.h"
#include "qformat/qformat.h"

_Static_assert((int)QF_QKV == (int)HARP_LG_QKV && (int)QF_O == (int)HARP_LG_O && (int)QF_UPGATE == (int)HARP_LG_UPGATE &&
                   (int)QF_DOWN == (int)HARP_LG_DOWN && (int)QF_NGROUPS == (int)HARP_LG_COUNT,
               "a folder's groups are the model's groups, in the same order");

harp_status harp_model_set_quantized(harp_model *m, const qf_config *qc, const qf_tensors *l) {
    const harp_model_config *c = &m->cfg;
    const int ng = c->n_layers * QF_NGROUPS;
    harp_qtensor *qt = NULL;
    HARP_TRY(qf_load_groups(c, qc, l, &qt));
    char kind[24];
    snprintf(kind, sizeof kind, "harp-%s", harp_qmethod_name(qc->method));
    harp_model_unload(m);   /* backend copies of the old weights */
    harp_status st = HARP_OK;
    for (int i = 0; i < ng && !st; i++) {
        char what[64];
        snprintf(what, sizeof what, "layer %d group %s", i / QF_NGROUPS, qf_group_short[i % QF_NGROUPS]);
        st = harp_lgroup_set_qtensor(&m->layers[i / QF_NGROUPS].cfg.g[i % QF_NGROUPS], &qt[i], kind, what);
    }
    qf_groups_free(qt, ng);
    if (!st) qf_describe(c, qc, l, &m->info, m->quant_desc, sizeof m->quant_desc);
    return st;
}
