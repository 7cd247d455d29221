/* safetensors parsing with strict validation: every offset is checked against the file size and
 * against shape × dtype size, so later code can index the data region without further checks. */
#define _DEFAULT_SOURCE /* madvise */
#include "io/safetensors.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    harp_st_dtype dtype;
    size_t size;
} st_types[] = {
    {"F32", HARP_ST_F32, 4},   {"F16", HARP_ST_F16, 2},    {"BF16", HARP_ST_BF16, 2},
    {"F64", HARP_ST_F64, 8},   {"I64", HARP_ST_I64, 8},    {"I32", HARP_ST_I32, 4},
    {"I16", HARP_ST_I16, 2},   {"I8", HARP_ST_I8, 1},      {"U8", HARP_ST_U8, 1},
    {"BOOL", HARP_ST_BOOL, 1}, {"U16", HARP_ST_U16, 2},    {"U32", HARP_ST_U32, 4},
    {"U64", HARP_ST_U64, 8},   {"F8_E4M3", HARP_ST_F8_E4M3, 1}, {"F8_E5M2", HARP_ST_F8_E5M2, 1},
};
#define N_ST_TYPES (sizeof st_types / sizeof st_types[0])

const char *harp_st_dtype_name(harp_st_dtype d) {
    for (size_t i = 0; i < N_ST_TYPES; i++)
        if (st_types[i].dtype == d) return st_types[i].name;
    return "?";
}

size_t harp_st_dtype_size(harp_st_dtype d) {
    for (size_t i = 0; i < N_ST_TYPES; i++)
        if (st_types[i].dtype == d) return st_types[i].size;
    return 0;
}

static void st_free_tensors(harp_st_file *f) {
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    f->tensors = NULL;
    f->n_tensors = 0;
}

/* A JSON number that is a non-negative integer exactly representable in a double. */
static int st_get_u64(const cJSON *j, uint64_t *v) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d)) return 0;
    *v = (uint64_t)d;
    return 1;
}

static harp_status st_parse_entry(const cJSON *e, const char *name, uint64_t data_size,
                                  harp_st_tensor *t) {
    if (!cJSON_IsObject(e)) return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s' entry is not an object", name, e->string);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of))
        return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s' lacks dtype, shape or data_offsets", name, e->string);
    size_t k;
    for (k = 0; k < N_ST_TYPES; k++)
        if (!strcmp(dt->valuestring, st_types[k].name)) break;
    if (k == N_ST_TYPES)
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: tensor '%s' has unsupported dtype '%s'", name, e->string, dt->valuestring);
    t->dtype = st_types[k].dtype;
    int nd = cJSON_GetArraySize(sh);
    if (nd > HARP_ST_MAX_DIMS)
        return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s' has %d dimensions (max %d)", name, e->string, nd, HARP_ST_MAX_DIMS);
    t->ndim = nd;
    uint64_t numel = 1;
    for (int i = 0; i < nd; i++) {
        uint64_t d;
        if (!st_get_u64(cJSON_GetArrayItem(sh, i), &d) || d > ((uint64_t)1 << 40))
            return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s' has an invalid shape entry", name, e->string);
        t->shape[i] = (int64_t)d;
        if (d && numel > ((uint64_t)1 << 48) / d)
            return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s' shape is too large", name, e->string);
        numel *= d;
    }
    t->numel = (int64_t)numel;
    uint64_t b, en;
    if (cJSON_GetArraySize(of) != 2 || !st_get_u64(cJSON_GetArrayItem(of, 0), &b) ||
        !st_get_u64(cJSON_GetArrayItem(of, 1), &en) || en < b)
        return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s' has invalid data_offsets", name, e->string);
    if (en > data_size)
        return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s' data_offsets [%llu, %llu] past end of file (data region %llu bytes)",
                        name, e->string, (unsigned long long)b, (unsigned long long)en, (unsigned long long)data_size);
    if (en - b != numel * st_types[k].size)
        return harp_err(HARP_ERR_FORMAT, "%s: tensor '%s' spans %llu bytes but shape x %s needs %llu", name,
                        e->string, (unsigned long long)(en - b), st_types[k].name,
                        (unsigned long long)(numel * st_types[k].size));
    t->begin = b;
    t->end = en;
    return HARP_OK;
}

/* Upper bound on the JSON values in a header (each one after the first follows a ',', ':' or
 * '['), counted without parsing, so that the parse tree's size is known before it is built. */
static uint64_t st_count_values(const char *h, size_t n) {
    uint64_t k = 1;
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == ',' || c == ':' || c == '[') {
            k++;
        }
    }
    return k;
}

static int st_by_begin(const void *a, const void *b) {
    const harp_st_tensor *x = *(const harp_st_tensor *const *)a, *y = *(const harp_st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static int st_by_name(const void *a, const void *b) {
    return strcmp((*(const harp_st_tensor *const *)a)->name, (*(const harp_st_tensor *const *)b)->name);
}

/* Tensors may share neither names nor bytes (zero-size tensors excepted). */
static harp_status st_check_disjoint(const harp_st_file *f, const char *name) {
    if (f->n_tensors < 2) return HARP_OK;
    const harp_st_tensor **v = harp_xmalloc(sizeof *v * (size_t)f->n_tensors, "safetensors index");
    if (!v) return HARP_ERR_OOM;
    for (int i = 0; i < f->n_tensors; i++) v[i] = &f->tensors[i];
    harp_status st = HARP_OK;
    qsort(v, (size_t)f->n_tensors, sizeof *v, st_by_name);
    for (int i = 1; i < f->n_tensors && !st; i++)
        if (!strcmp(v[i - 1]->name, v[i]->name))
            st = harp_err(HARP_ERR_FORMAT, "%s: tensor '%s' is listed more than once", name, v[i]->name);
    qsort(v, (size_t)f->n_tensors, sizeof *v, st_by_begin);
    const harp_st_tensor *prev = NULL;
    for (int i = 0; i < f->n_tensors && !st; i++) {
        if (v[i]->end == v[i]->begin) continue;
        if (prev && v[i]->begin < prev->end)
            st = harp_err(HARP_ERR_FORMAT, "%s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap", name, prev->name,
                          (unsigned long long)prev->begin, (unsigned long long)prev->end, v[i]->name,
                          (unsigned long long)v[i]->begin, (unsigned long long)v[i]->end);
        prev = v[i];
    }
    free(v);
    return st;
}

static harp_status st_parse_header(cJSON *root, const char *name, harp_st_file *out) {
    if (!cJSON_IsObject(root)) return harp_err(HARP_ERR_FORMAT, "%s: header JSON is not an object", name);
    int cap = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!e->string) return harp_err(HARP_ERR_FORMAT, "%s: header entry without a name", name);
        if (!strcmp(e->string, "__metadata__")) continue;
        if (out->n_tensors == cap) {   /* grown as entries validate: the array never outgrows the header */
            cap = cap ? 2 * cap : 64;
            harp_st_tensor *nt = realloc(out->tensors, (size_t)cap * sizeof *nt);
            if (!nt) return harp_err(HARP_ERR_OOM, "%s: out of memory for the tensor index", name);
            out->tensors = nt;
        }
        harp_st_tensor *t = &out->tensors[out->n_tensors];
        memset(t, 0, sizeof *t);
        HARP_TRY(st_parse_entry(e, name, out->data_size, t));
        t->name = harp_strdup(e->string);
        if (!t->name) return HARP_ERR_OOM;
        out->n_tensors++;
    }
    return st_check_disjoint(out, name);
}

harp_status harp_st_parse(const uint8_t *buf, size_t size, const char *name, harp_st_file *out) {
    memset(out, 0, sizeof *out);
    if (size < 8) return harp_err(HARP_ERR_FORMAT, "%s: truncated safetensors file (%zu bytes, no header)", name, size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | buf[i];
    if (n > size - 8)
        return harp_err(HARP_ERR_FORMAT, "%s: header length %llu past end of file (size %zu)", name, (unsigned long long)n, size);
    if (n == 0 || n > HARP_ST_MAX_HEADER)
        return harp_err(HARP_ERR_FORMAT, "%s: header length %llu is outside 1..%d bytes", name, (unsigned long long)n, HARP_ST_MAX_HEADER);
    const char *h = (const char *)buf + 8;
    uint64_t values = st_count_values(h, (size_t)n);
    if (values > HARP_ST_MAX_VALUES)
        return harp_err(HARP_ERR_FORMAT, "%s: header holds about %llu JSON values, more than the %d a safetensors index needs", name,
                        (unsigned long long)values, HARP_ST_MAX_VALUES);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, (size_t)n, &end, 0);
    if (!root) return harp_err(HARP_ERR_FORMAT, "%s: header is not valid JSON", name);
    while (end && end < h + n && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
    harp_status st = HARP_OK;
    if (end != h + n)
        st = harp_err(HARP_ERR_FORMAT, "%s: header is not valid JSON (%zu bytes of trailing data)", name, (size_t)(h + n - end));
    out->data = buf + 8 + n;
    out->data_size = size - 8 - n;
    if (!st) st = st_parse_header(root, name, out);
    cJSON_Delete(root);
    if (st) st_free_tensors(out);
    return st;
}

harp_status harp_st_open(const char *path, harp_st_file *out) {
    harp_mapped m;
    memset(out, 0, sizeof *out);
    HARP_TRY(harp_map_file(path, &m));
    harp_status st = harp_st_parse(m.data, m.size, path, out);
    if (st) {
        harp_unmap_file(&m);
        return st;
    }
    out->map = m;
    out->path = harp_strdup(path);
    return HARP_OK;
}

void harp_st_close(harp_st_file *f) {
    if (!f) return;
    st_free_tensors(f);
    if (f->map.data || f->map.priv_) harp_unmap_file(&f->map);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const harp_st_tensor *harp_st_find(const harp_st_file *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

harp_status harp_st_to_f32(const harp_st_file *f, const harp_st_tensor *t, float *dst) {
    const uint8_t *p = f->data + t->begin;
    const char *fname = f->path ? f->path : "safetensors";
    int64_t n = t->numel;
    switch (t->dtype) {
    case HARP_ST_F32:
        memcpy(dst, p, (size_t)n * 4);
        break;
    case HARP_ST_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = harp_f16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        break;
    case HARP_ST_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = harp_bf16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        break;
    default:
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: tensor '%s' has unsupported dtype %s (need F32, F16 or BF16)",
                        fname, t->name, harp_st_dtype_name(t->dtype));
    }
    /* The source pages are not needed again: drop them from the resident set so that loading peaks
     * at the fp32 copy plus one tensor's file pages, not plus the whole file. */
    if (f->map.data && !f->map.heap_) {
        uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), b = (uintptr_t)p, e = b + (uintptr_t)(t->end - t->begin);
        uintptr_t lo = (b + pg - 1) & ~(pg - 1), hi = e & ~(pg - 1);
        if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(dst[i]))
            return harp_err(HARP_ERR_NUMERIC, "%s: tensor '%s' holds a non-finite value at element %lld", fname,
                            t->name, (long long)i);
    return HARP_OK;
}
