/* TEMPORARY adapter from quantized groups to the model's harp_linear slices (src/model/linear.h),
 * until the model holds linear groups on a backend (then this file goes, with its one include of
 * model/linear.h — the only place qformat/ reaches right of itself in the module order).
 *
 * One shared group per (layer, group) holds the harp_qtensor; every slice linear (q, k, v or up,
 * gate) computes the whole group with harp_qtensor_apply and copies its rows. The group result is
 * cached with an exact copy of its input (memcmp under a mutex), so q, k and v computed from the
 * same X cost one product. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/linear.h"
#include "qformat/qformat.h"

typedef struct qa_group {
    harp_qtensor w;
    pthread_mutex_t mu;
    float *xc, *yc;        /* cached input (rows × n) and group output (rows × m) */
    int64_t cache_rows, cap_rows;
    int refs;
    float bpw;
} qa_group;

typedef struct qa_slice {
    qa_group *g;
    int64_t off, len;
} qa_slice;

static void group_free(qa_group *g) {
    if (!g) return;
    harp_qtensor_free(&g->w);
    free(g->xc);
    free(g->yc);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static int group_reserve(qa_group *g, int64_t rows) {
    if (rows <= g->cap_rows) return 0;
    float *xc = realloc(g->xc, (size_t)(rows * g->w.n) * sizeof(float));
    if (xc) g->xc = xc;
    float *yc = realloc(g->yc, (size_t)(rows * g->w.m) * sizeof(float));
    if (yc) g->yc = yc;
    if (!xc || !yc) return -1;
    g->cap_rows = rows;
    return 0;
}

static void slice_run(const harp_linear *l, const float *X, int rows, float *Y) {
    const qa_slice *s = l->w;
    qa_group *g = s->g;
    pthread_mutex_lock(&g->mu);
    const size_t nn = (size_t)rows * (size_t)g->w.n;
    if (!(g->cache_rows == rows && !memcmp(g->xc, X, nn * sizeof(float)))) {
        g->cache_rows = 0;
        harp_status st = group_reserve(g, rows) ? harp_err(HARP_ERR_OOM, "quantized linear: out of memory") : HARP_OK;
        if (!st) st = harp_qtensor_apply(&g->w, X, rows, g->yc, 0);
        if (st) {
            /* The harp_linear contract has no error channel: NaN marks the failure loudly. */
            harp_log(HARP_LOG_ERROR, "quantized linear: forward failed (%s)", harp_last_error());
            for (size_t i = 0; i < (size_t)rows * (size_t)s->len; i++) Y[i] = NAN;
            pthread_mutex_unlock(&g->mu);
            return;
        }
        memcpy(g->xc, X, nn * sizeof(float));
        g->cache_rows = rows;
    }
    for (int r = 0; r < rows; r++)
        memcpy(Y + (size_t)r * (size_t)s->len, g->yc + (size_t)r * (size_t)g->w.m + s->off, (size_t)s->len * sizeof(float));
    pthread_mutex_unlock(&g->mu);
}

static void slice_gemv(const harp_linear *l, const float *x, float *y) { slice_run(l, x, 1, y); }

static void slice_free(harp_linear *l) {
    qa_slice *s = l->w;
    if (!s) return;
    if (--s->g->refs == 0) group_free(s->g);
    free(s);
    l->w = NULL;
    l->packed = NULL;
}

static void slice_init(harp_linear *lin, qa_group *g, qa_slice *s, int64_t off, int64_t len, const char *kind) {
    float *bias = lin->bias;
    memset(lin, 0, sizeof *lin);
    lin->bias = bias;
    lin->in = (int)g->w.n;
    lin->out = (int)len;
    s->g = g;
    s->off = off;
    s->len = len;
    lin->w = s;
    lin->matmul = slice_run;
    lin->gemv = slice_gemv;
    lin->free_w = slice_free;
    lin->kind = kind;
    lin->bits = g->bpw;
    lin->packed = &g->w;
    lin->packed_row0 = off;
    g->refs++;
}

/* Shared groups over the loaded qtensors (moved in), each with its stored bits per weight. */
static harp_status make_groups(const qf_tensors *l, harp_qtensor *qt, int ng, qa_group **gs) {
    for (int i = 0; i < ng; i++) {
        if (!(gs[i] = harp_xcalloc(1, sizeof **gs, "quantized group"))) return HARP_ERR_OOM;
        pthread_mutex_init(&gs[i]->mu, NULL);
        gs[i]->w = qt[i];
        memset(&qt[i], 0, sizeof qt[i]);
        char P[128];
        qf_group_prefix(P, sizeof P, i / QF_NGROUPS, i % QF_NGROUPS);
        const double wts = (double)gs[i]->w.m * (double)gs[i]->w.n;
        gs[i]->bpw = (float)(8.0 * (double)qf_tensors_bytes_with_prefix(l, P) / wts);
    }
    return HARP_OK;
}

harp_status qf_install_linears(const harp_model_config *c, const qf_config *qc, const qf_tensors *l,
                               struct harp_linear *const *lin) {
    const int ng = c->n_layers * QF_NGROUPS, nsl = c->n_layers * QF_NSLOTS;
    harp_qtensor *qt = NULL;
    HARP_TRY(qf_load_groups(c, qc, l, &qt));
    qa_group **gs = harp_xcalloc((size_t)ng + 1, sizeof *gs, "quantized groups");
    qa_slice **sl = harp_xcalloc((size_t)nsl + 1, sizeof *sl, "quantized slices");
    harp_status st = gs && sl ? make_groups(l, qt, ng, gs) : HARP_ERR_OOM;
    for (int i = 0; i < nsl && !st; i++)
        if (!(sl[i] = harp_xcalloc(1, sizeof **sl, "quantized slice"))) st = HARP_ERR_OOM;
    qf_groups_free(qt, ng);
    if (st) {
        for (int i = 0; gs && i < ng; i++) group_free(gs[i]);
        for (int i = 0; sl && i < nsl; i++) free(sl[i]);
        free(gs);
        free(sl);
        return st;
    }
    static const char *const kinds[] = {"harp-rtn", "harp-gptq", "harp-quip", "harp-qtip"};
    /* slots q, k, v, o, up, gate, down: their group and index inside it */
    static const int grp[QF_NSLOTS] = {QF_QKV, QF_QKV, QF_QKV, QF_O, QF_UPGATE, QF_UPGATE, QF_DOWN};
    static const int idx[QF_NSLOTS] = {0, 1, 2, 0, 0, 1, 0};
    for (int layer = 0; layer < c->n_layers; layer++) {
        int64_t off = 0;
        for (int i = 0; i < QF_NSLOTS; i++) {
            harp_linear *li = lin[layer * QF_NSLOTS + i];
            harp_linear_free(li);
            int64_t len[3], nin;
            qf_group_slices(c, grp[i], len, &nin);
            if (idx[i] == 0) off = 0;
            slice_init(li, gs[layer * QF_NGROUPS + grp[i]], sl[layer * QF_NSLOTS + i], off, len[idx[i]], kinds[qc->method]);
            off += len[idx[i]];
        }
    }
    free(sl);
    free(gs);
    return HARP_OK;
}
