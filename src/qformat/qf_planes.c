/* harp_qtensor ↔ the folder tensors of one linear group, generic over the quant-type traits (each
 * type lists its planes: suffix, dtype, shape rule, value rule). Format v1 order under a group
 * prefix P: the type's planes, P.slice_scales, then with a rotation P.su, P.sv, P.rot_in, P.rot_out.
 * Loading validates every tensor and names the file and tensor in the one-line error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "qformat/qformat.h"
#include "quant/qtype_traits.h"

static harp_status put(qf_tensors *l, const char *P, const char *suffix, harp_st_dtype dt, int ndim,
                       const int64_t *shape, const void *data, int64_t *bytes) {
    char name[160];
    snprintf(name, sizeof name, "%s.%s", P, suffix);
    HARP_TRY(qf_tensors_add(l, name, dt, shape, ndim, data));
    *bytes += (int64_t)l->t[l->n - 1].nbytes;
    return HARP_OK;
}

static harp_status put_rot(qf_tensors *l, const char *P, const char *suffix, const harp_rot *r, int64_t *bytes) {
    uint8_t *blob = NULL;
    size_t size = 0;
    HARP_TRY(harp_rot_serialize(r, &blob, &size));
    int64_t shape[1] = {(int64_t)size};
    harp_status st = put(l, P, suffix, HARP_ST_U8, 1, shape, blob, bytes);
    harp_free(blob);
    return st;
}

harp_status qf_put_qtensor(qf_tensors *l, const char *P, const harp_qtensor *w, int64_t *code_bytes,
                           int64_t *xf_bytes) {
    const harp_qtype_traits *tr = harp_qtype_traits_of(w->type);
    if (!tr) return harp_err(HARP_ERR_INTERNAL, "%s: bad quant type %d", P, (int)w->type);
    int64_t cb = 0, xb = 0, shape[2];
    for (int i = 0; i < tr->n_planes; i++) {
        if (!w->planes[i].data) continue; /* absent optional plane */
        int nd = harp_qplane_shape(w, i, shape);
        HARP_TRY(put(l, P, tr->planes[i].suffix, tr->planes[i].dtype, nd, shape, w->planes[i].data, &cb));
    }
    const harp_qxf *x = &w->xf;
    shape[0] = x->n_slices;
    HARP_TRY(put(l, P, "slice_scales", HARP_ST_F32, 1, shape, x->slice_scale, &cb));
    if (x->s_in || x->s_out || x->rot_in || x->rot_out) {
        if (!x->s_in || !x->s_out || !x->rot_in || !x->rot_out)
            return harp_err(HARP_ERR_INTERNAL, "%s: format v1 stores signs and rotations on both sides or none", P);
        shape[0] = w->n;
        HARP_TRY(put(l, P, "su", HARP_ST_I8, 1, shape, x->s_in, &xb));
        shape[0] = w->m;
        HARP_TRY(put(l, P, "sv", HARP_ST_I8, 1, shape, x->s_out, &xb));
        HARP_TRY(put_rot(l, P, "rot_in", x->rot_in, &xb));
        HARP_TRY(put_rot(l, P, "rot_out", x->rot_out, &xb));
    }
    if (code_bytes) *code_bytes = cb;
    if (xf_bytes) *xf_bytes = xb;
    return HARP_OK;
}

/* ---- loading ---------------------------------------------------------------------------------- */

/* The tensor P.suffix with dtype dt and shape [d0] (ndim 1) or [d0, d1]. */
static harp_status get(const qf_tensors *l, const char *P, const char *suffix, harp_st_dtype dt, int ndim, int64_t d0,
                       int64_t d1, const qf_tensor **out) {
    char name[160];
    snprintf(name, sizeof name, "%s.%s", P, suffix);
    const qf_tensor *t = qf_tensors_find(l, name);
    if (!t) return harp_err(HARP_ERR_NOT_FOUND, "%s: missing tensor '%s'", l->origin, name);
    if (t->dtype != dt)
        return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected %s", l->origin, name,
                        harp_st_dtype_name(t->dtype), harp_st_dtype_name(dt));
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        if (ndim == 2)
            return harp_err(HARP_ERR_SHAPE, "%s: tensor '%s' has shape [%lld%s%lld], expected [%lld, %lld]", l->origin,
                            name, (long long)t->shape[0], t->ndim > 1 ? ", " : " ndim ",
                            (long long)(t->ndim > 1 ? t->shape[1] : t->ndim), (long long)d0, (long long)d1);
        return harp_err(HARP_ERR_SHAPE, "%s: tensor '%s' has %d dims / first dim %lld, expected [%lld]", l->origin, name,
                        t->ndim, (long long)t->shape[0], (long long)d0);
    }
    *out = t;
    return HARP_OK;
}

static void *copy_of(const qf_tensor *t) {
    void *p = harp_xmalloc(t->nbytes ? t->nbytes : 1, t->name);
    if (p) memcpy(p, t->data, t->nbytes);
    return p;
}

/* Planes of w's type, each checked (presence, dtype, shape, values) and copied. */
static harp_status get_planes(const qf_tensors *l, const char *P, harp_qtensor *w) {
    const harp_qtype_traits *tr = harp_qtype_traits_of(w->type);
    for (int i = 0; i < tr->n_planes; i++) {
        const harp_qplane_desc *d = &tr->planes[i];
        char name[160];
        snprintf(name, sizeof name, "%s.%s", P, d->suffix);
        if (d->optional && !qf_tensors_find(l, name)) continue;
        int64_t shape[2];
        const int nd = harp_qplane_shape(w, i, shape);
        const qf_tensor *t;
        HARP_TRY(get(l, P, d->suffix, d->dtype, nd, shape[0], shape[1], &t));
        w->planes[i].data = t->data; /* a view for the value check, replaced by the copy below */
        w->planes[i].nbytes = t->nbytes;
        harp_status st = harp_qplane_check_values(w, i, l->origin, P);
        void *own = st ? NULL : copy_of(t);
        w->planes[i].data = own;
        w->planes[i].owned = own;
        HARP_TRY(st);
        if (!own) return HARP_ERR_OOM;
    }
    return HARP_OK;
}

static harp_status get_signs(const qf_tensors *l, const char *P, const char *suffix, int64_t n, int8_t **out) {
    const qf_tensor *t;
    HARP_TRY(get(l, P, suffix, HARP_ST_I8, 1, n, 0, &t));
    const int8_t *s = t->data;
    for (int64_t i = 0; i < n; i++)
        if (s[i] != 1 && s[i] != -1)
            return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s.%s' entry %lld is %d, expected +1 or -1", l->origin, P, suffix,
                            (long long)i, s[i]);
    return (*out = copy_of(t)) ? HARP_OK : HARP_ERR_OOM;
}

static harp_status get_rot(const qf_tensors *l, const char *P, const char *suffix, int64_t dim, harp_rot **out) {
    char name[160];
    snprintf(name, sizeof name, "%s.%s", P, suffix);
    const qf_tensor *t = qf_tensors_find(l, name);
    if (!t) return harp_err(HARP_ERR_NOT_FOUND, "%s: missing tensor '%s'", l->origin, name);
    if (t->dtype != HARP_ST_U8 || t->ndim != 1)
        return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s' must be a 1-D U8 rotation blob", l->origin, name);
    char what[400];
    snprintf(what, sizeof what, "%s: tensor '%s'", l->origin, name);
    HARP_TRY(harp_rot_deserialize(t->data, t->nbytes, what, out));
    if (harp_rot_dim(*out) != dim) {
        int64_t d = harp_rot_dim(*out);
        harp_rot_destroy(*out);
        *out = NULL;
        return harp_err(HARP_ERR_SHAPE, "%s: rotation dimension %lld, expected %lld", what, (long long)d, (long long)dim);
    }
    return HARP_OK;
}

static harp_status get_xf(const qf_tensors *l, const char *P, const qf_layer_config *lc, int n_slices,
                          const int64_t *slice_len, harp_qtensor *w) {
    harp_qxf *x = &w->xf;
    const qf_tensor *t;
    HARP_TRY(get(l, P, "slice_scales", HARP_ST_F32, 1, n_slices, 0, &t));
    memcpy(x->slice_scale, t->data, (size_t)n_slices * sizeof(float)); /* the file may not align it */
    for (int i = 0; i < n_slices; i++)
        if (!isfinite(x->slice_scale[i]))
            return harp_err(HARP_ERR_NUMERIC, "%s: tensor '%s.slice_scales' has a non-finite value at index %d", l->origin, P, i);
    x->n_slices = n_slices;
    for (int i = 0; i < n_slices; i++) x->slice_len[i] = slice_len[i];
    if (lc->rotation != HARP_QROT_NONE) {
        HARP_TRY(get_signs(l, P, "su", w->n, &x->s_in));
        HARP_TRY(get_signs(l, P, "sv", w->m, &x->s_out));
        HARP_TRY(get_rot(l, P, "rot_in", w->n, &x->rot_in));
        HARP_TRY(get_rot(l, P, "rot_out", w->m, &x->rot_out));
    }
    return HARP_OK;
}

harp_status qf_get_qtensor(const qf_tensors *l, const char *P, const qf_layer_config *lc, int64_t n, int n_slices,
                           const int64_t *slice_len, harp_qtensor *w) {
    int64_t m = 0;
    for (int i = 0; i < n_slices; i++) m += slice_len[i];
    HARP_TRY(harp_qtensor_init(w, lc->wtype, m, n, lc->group_size));
    harp_status st = get_planes(l, P, w);
    if (!st) st = get_xf(l, P, lc, n_slices, slice_len, w);
    if (!st) st = harp_qtensor_derive(w);
    if (!st) {
        char what[300];
        snprintf(what, sizeof what, "%s: %s", l->origin, P);
        st = harp_qtensor_check(w, what);
    }
    if (st) harp_qtensor_free(w);
    return st;
}

void qf_groups_free(harp_qtensor *g, int count) {
    for (int i = 0; g && i < count; i++) harp_qtensor_free(&g[i]);
    free(g);
}

/* The code kind is stored twice, by design: quantization_config.qtip_code (what the folder says it
 * is: description, resume fingerprint) and each group's tcode plane (what its bytes are): they must
 * agree. */
static harp_status check_tcode(const qf_tensors *l, const char *P, const qf_config *qc, const harp_qtensor *w) {
    const int t = harp_qplane_index(w->type, "tcode");
    if (t < 0) return HARP_OK;
    int32_t c;
    memcpy(&c, w->planes[t].data, sizeof c);
    if (c == (int32_t)qc->qtip_code) return HARP_OK;
    return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s.tcode' is %s, quantization_config.qtip_code says %s", l->origin, P,
                    harp_tcode_name((harp_tcode)c), harp_tcode_name(qc->qtip_code) ? harp_tcode_name(qc->qtip_code) : "none");
}

harp_status qf_load_groups(const harp_model_config *c, const qf_config *qc, const qf_tensors *l, harp_qtensor **out) {
    *out = NULL;
    const int ng = c->n_layers * QF_NGROUPS;
    if (qc->n_layers != c->n_layers)
        return harp_err(HARP_ERR_INTERNAL, "%s: configuration for %d layers, model has %d", l->origin, qc->n_layers,
                        c->n_layers);
    harp_qtensor *g = harp_xcalloc((size_t)(ng > 0 ? ng : 1), sizeof *g, "quantized groups");
    if (!g) return HARP_ERR_OOM;
    harp_status st = HARP_OK;
    for (int i = 0; i < ng && !st; i++) {
        int64_t len[3], n;
        const int ns = qf_group_slices(c, i % QF_NGROUPS, len, &n);
        char P[128];
        qf_group_prefix(P, sizeof P, i / QF_NGROUPS, i % QF_NGROUPS);
        st = qf_get_qtensor(l, P, &qc->layers[i / QF_NGROUPS], n, ns, len, &g[i]);
        if (!st) st = check_tcode(l, P, qc, &g[i]);
    }
    if (st) {
        qf_groups_free(g, ng);
        return st;
    }
    *out = g;
    return HARP_OK;
}
