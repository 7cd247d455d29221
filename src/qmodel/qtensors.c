/* Named tensor list: owned copies (pipeline results) or views into a mapped safetensors file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qformat/st_writer.h"
#include "qmodel/qmodel_internal.h"

void qt_list_free(qt_list *l) {
    for (int i = 0; i < l->n; i++) free(l->t[i].owned);
    free(l->t);
    l->t = NULL;
    l->n = l->cap = 0;
}

static qt_tensor *qt_push(qt_list *l, const char *name) {
    if (strlen(name) >= sizeof l->t[0].name) {
        harp_err(HARP_ERR_INVALID_ARG, "tensor name too long: %s", name);
        return NULL;
    }
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        qt_tensor *t = realloc(l->t, (size_t)cap * sizeof *t);
        if (!t) {
            harp_err(HARP_ERR_OOM, "tensor list: out of memory");
            return NULL;
        }
        l->t = t;
        l->cap = cap;
    }
    qt_tensor *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

harp_status qt_add(qt_list *l, const char *name, harp_st_dtype dt, const int64_t *shape, int ndim, const void *data) {
    size_t nb = harp_st_dtype_size(dt);
    for (int i = 0; i < ndim; i++) nb *= (size_t)shape[i];
    void *copy = harp_xmalloc(nb ? nb : 1, name);
    if (!copy) return HARP_ERR_OOM;
    if (nb) memcpy(copy, data, nb);
    qt_tensor *t = qt_push(l, name);
    if (!t) {
        free(copy);
        return HARP_ERR_OOM;
    }
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = copy;
    t->owned = copy;
    t->nbytes = nb;
    return HARP_OK;
}

const qt_tensor *qt_find(const qt_list *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->t[i].name, name)) return &l->t[i];
    return NULL;
}

harp_status qt_from_st(const harp_st_file *f, qt_list *l) {
    l->origin = f->path;
    for (int i = 0; i < f->n_tensors; i++) {
        const harp_st_tensor *s = &f->tensors[i];
        if (s->ndim > 4) return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s' has %d dimensions", f->path, s->name, s->ndim);
        qt_tensor *t = qt_push(l, s->name);
        if (!t) return HARP_ERR_OOM;
        t->dtype = s->dtype;
        t->ndim = s->ndim;
        for (int d = 0; d < s->ndim; d++) t->shape[d] = s->shape[d];
        t->data = f->data + s->begin;
        t->nbytes = (size_t)(s->end - s->begin);
    }
    return HARP_OK;
}

harp_status qt_copy_all(const qt_list *src, qt_list *dst, const char *skip_prefix) {
    size_t k = skip_prefix ? strlen(skip_prefix) : 0;
    for (int i = 0; i < src->n; i++) {
        const qt_tensor *t = &src->t[i];
        if (k && !strncmp(t->name, skip_prefix, k)) continue;
        HARP_TRY(qt_add(dst, t->name, t->dtype, t->shape, t->ndim, t->data));
    }
    return HARP_OK;
}

static harp_status qt_st_dtype(harp_st_dtype d, st_dtype *out) {
    switch (d) {
    case HARP_ST_F32: *out = ST_F32; return HARP_OK;
    case HARP_ST_F16: *out = ST_F16; return HARP_OK;
    case HARP_ST_BF16: *out = ST_BF16; return HARP_OK;
    case HARP_ST_I8: *out = ST_I8; return HARP_OK;
    case HARP_ST_U8: *out = ST_U8; return HARP_OK;
    case HARP_ST_I16: *out = ST_I16; return HARP_OK;
    case HARP_ST_U16: *out = ST_U16; return HARP_OK;
    case HARP_ST_I32: *out = ST_I32; return HARP_OK;
    case HARP_ST_I64: *out = ST_I64; return HARP_OK;
    case HARP_ST_U64: *out = ST_U64; return HARP_OK;
    case HARP_ST_F64: *out = ST_F64; return HARP_OK;
    default: return harp_err(HARP_ERR_UNSUPPORTED, "safetensors writer: dtype %s not supported", harp_st_dtype_name(d));
    }
}

harp_status qt_to_writer(const qt_list *l, st_writer *w) {
    for (int i = 0; i < l->n; i++) {
        const qt_tensor *t = &l->t[i];
        st_dtype d = ST_U8;
        HARP_TRY(qt_st_dtype(t->dtype, &d));
        HARP_TRY(st_writer_add(w, t->name, d, t->shape, t->ndim, t->data));
    }
    return HARP_OK;
}

int64_t qt_bytes_with_prefix(const qt_list *l, const char *prefix) {
    size_t k = strlen(prefix);
    int64_t s = 0;
    for (int i = 0; i < l->n; i++)
        if (!strncmp(l->t[i].name, prefix, k)) s += (int64_t)l->t[i].nbytes;
    return s;
}
