/* A folder's named tensors: owned copies (pipeline results) or views into a mapped safetensors file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "qformat/qformat.h"

void qf_tensors_free(qf_tensors *l) {
    for (int i = 0; i < l->n; i++) free(l->t[i].owned);
    free(l->t);
    l->t = NULL;
    l->n = l->cap = 0;
}

static qf_tensor *push(qf_tensors *l, const char *name) {
    if (strlen(name) >= sizeof l->t[0].name) {
        harp_err(HARP_ERR_INVALID_ARG, "tensor name too long: %s", name);
        return NULL;
    }
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        qf_tensor *t = realloc(l->t, (size_t)cap * sizeof *t);
        if (!t) {
            harp_err(HARP_ERR_OOM, "tensor list: out of memory");
            return NULL;
        }
        l->t = t;
        l->cap = cap;
    }
    qf_tensor *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

harp_status qf_tensors_add(qf_tensors *l, const char *name, harp_st_dtype dt, const int64_t *shape, int ndim, const void *data) {
    size_t nb = harp_st_dtype_size(dt);
    for (int i = 0; i < ndim; i++) nb *= (size_t)shape[i];
    void *copy = harp_xmalloc(nb ? nb : 1, name);
    if (!copy) return HARP_ERR_OOM;
    if (nb) memcpy(copy, data, nb);
    qf_tensor *t = push(l, name);
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

const qf_tensor *qf_tensors_find(const qf_tensors *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->t[i].name, name)) return &l->t[i];
    return NULL;
}

harp_status qf_tensors_from_st(const harp_st_file *f, qf_tensors *l) {
    l->origin = f->path;
    for (int i = 0; i < f->n_tensors; i++) {
        const harp_st_tensor *s = &f->tensors[i];
        if (s->ndim > 4) return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s' has %d dimensions", f->path, s->name, s->ndim);
        qf_tensor *t = push(l, s->name);
        if (!t) return HARP_ERR_OOM;
        t->dtype = s->dtype;
        t->ndim = s->ndim;
        for (int d = 0; d < s->ndim; d++) t->shape[d] = s->shape[d];
        t->data = f->data + s->begin;
        t->nbytes = (size_t)(s->end - s->begin);
    }
    return HARP_OK;
}

harp_status qf_tensors_copy(const qf_tensors *src, qf_tensors *dst, const char *skip_prefix) {
    size_t k = skip_prefix ? strlen(skip_prefix) : 0;
    for (int i = 0; i < src->n; i++) {
        const qf_tensor *t = &src->t[i];
        if (k && !strncmp(t->name, skip_prefix, k)) continue;
        HARP_TRY(qf_tensors_add(dst, t->name, t->dtype, t->shape, t->ndim, t->data));
    }
    return HARP_OK;
}

harp_status qf_tensors_to_writer(const qf_tensors *l, const char *prefix, st_writer *w) {
    const size_t k = prefix ? strlen(prefix) : 0;
    for (int i = 0; i < l->n; i++) {
        const qf_tensor *t = &l->t[i];
        if (k && strncmp(t->name, prefix, k)) continue;
        HARP_TRY(st_writer_add(w, t->name, t->dtype, t->shape, t->ndim, t->data));
    }
    return HARP_OK;
}

int64_t qf_tensors_bytes_with_prefix(const qf_tensors *l, const char *prefix) {
    size_t k = strlen(prefix);
    int64_t s = 0;
    for (int i = 0; i < l->n; i++)
        if (!strncmp(l->t[i].name, prefix, k)) s += (int64_t)l->t[i].nbytes;
    return s;
}
