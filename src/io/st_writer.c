/* Safetensors writer (see st_writer.h). */
#include "io/st_writer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

typedef struct st_tensor {
    char *name;
    harp_st_dtype dt;
    int ndim;
    int64_t shape[4];
    size_t bytes;
    void *data;
} st_tensor;

struct st_writer {
    st_tensor *t;
    int n, cap;
    cJSON *meta;
};


st_writer *st_writer_new(void) { return harp_xcalloc(1, sizeof(st_writer), "safetensors writer"); }

void st_writer_free(st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->t);
    cJSON_Delete(w->meta);
    free(w);
}

harp_status st_writer_add(st_writer *w, const char *name, harp_st_dtype dt, const int64_t *shape, int ndim, const void *data) {
    if (ndim < 0 || ndim > 4) return harp_err(HARP_ERR_INVALID_ARG, "safetensors writer: tensor %s has %d dimensions", name, ndim);
    const size_t esz = harp_st_dtype_size(dt);
    if (esz != 1 && esz != 2 && esz != 4 && esz != 8)
        return harp_err(HARP_ERR_UNSUPPORTED, "safetensors writer: tensor %s has dtype %s", name, harp_st_dtype_name(dt));
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name)) return harp_err(HARP_ERR_INVALID_ARG, "safetensors writer: duplicate tensor %s", name);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return harp_err(HARP_ERR_INVALID_ARG, "safetensors writer: tensor %s has a negative dimension", name);
        numel *= (size_t)shape[i];
    }
    if (w->n == w->cap) {
        int nc = w->cap ? w->cap * 2 : 64;
        st_tensor *nt = realloc(w->t, sizeof *nt * (size_t)nc);
        if (!nt) return harp_err(HARP_ERR_OOM, "safetensors writer: out of memory");
        w->t = nt;
        w->cap = nc;
    }
    st_tensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = harp_strdup(name);
    t->dt = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->bytes = numel * esz;
    t->data = harp_xmalloc(t->bytes, name);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return HARP_ERR_OOM;
    }
    if (t->bytes) memcpy(t->data, data, t->bytes);
    w->n++;
    return HARP_OK;
}

harp_status st_writer_meta(st_writer *w, const char *key, const char *value) {
    if (!w->meta) w->meta = cJSON_CreateObject();
    if (!w->meta) return HARP_ERR_OOM;
    cJSON_DeleteItemFromObjectCaseSensitive(w->meta, key);
    cJSON_AddStringToObject(w->meta, key, value);
    return HARP_OK;
}

harp_status st_writer_save(st_writer *w, const char *path) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return HARP_ERR_OOM;
    if (w->meta) cJSON_AddItemToObject(root, "__metadata__", cJSON_Duplicate(w->meta, 1));
    /* Data laid out by decreasing element size (stable), so that with the 8-aligned header every
     * tensor starts at a multiple of its element size and mmapped readers may load it in place
     * (a 60-byte rotation blob before an F32 tensor would misalign it). Header order stays. */
    size_t *offs_of = harp_xcalloc((size_t)w->n + 1, sizeof(size_t), "safetensors offsets");
    if (!offs_of) {
        cJSON_Delete(root);
        return HARP_ERR_OOM;
    }
    size_t off = 0;
    for (size_t sz = 8; sz >= 1; sz /= 2)
        for (int i = 0; i < w->n; i++)
            if (harp_st_dtype_size(w->t[i].dt) == sz) offs_of[i] = off, off += w->t[i].bytes;
    for (int i = 0; i < w->n; i++) {
        st_tensor *t = &w->t[i];
        off = offs_of[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dtype", harp_st_dtype_name(t->dt));
        cJSON *sh = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(o, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + t->bytes)));
        cJSON_AddItemToObject(root, t->name, o);
    }
    free(offs_of);
    char *js = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!js) return harp_err(HARP_ERR_OOM, "%s: out of memory building the header", path);
    size_t hl = strlen(js), padded = (hl + 7) & ~(size_t)7;
    char *hdr = harp_xmalloc(padded, "safetensors header");
    if (!hdr) {
        free(js);
        return HARP_ERR_OOM;
    }
    memcpy(hdr, js, hl);
    memset(hdr + hl, ' ', padded - hl);
    free(js);
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    harp_atomic_file f;
    harp_status st = harp_atomic_open(&f, path);
    if (st == HARP_OK) st = harp_atomic_write(&f, len8, 8);
    if (st == HARP_OK) st = harp_atomic_write(&f, hdr, padded);
    for (size_t sz = 8; sz >= 1; sz /= 2)
        for (int i = 0; i < w->n && st == HARP_OK; i++)
            if (harp_st_dtype_size(w->t[i].dt) == sz) st = harp_atomic_write(&f, w->t[i].data, w->t[i].bytes);
    free(hdr);
    if (st != HARP_OK) {
        harp_atomic_abort(&f);
        return st;
    }
    return harp_atomic_commit(&f);
}
