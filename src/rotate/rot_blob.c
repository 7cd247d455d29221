/* Versioned, checksummed rotation blob (docs/format/rotation.md). Little-endian throughout; every
 * stored parameter (signs, dense matrices, permutations, butterfly mixers and θ) round-trips bit-exactly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rot_internal.h"

#define BLOB_MAGIC "HARPROT"
#define BLOB_VERSION 3u   /* newest of any kind (rot_kind_ops.max_version) */
#define BLOB_HEADER 40
#define BLOB_MAX_N ((int64_t)1 << 26)

void rot_w_bytes(rot_wbuf *w, const void *d, size_t k) {
    if (w->oom) return;
    if (w->n + k > w->cap) {
        size_t c = w->cap ? w->cap : 256;
        while (c < w->n + k) c *= 2;
        uint8_t *p = realloc(w->p, c);
        if (!p) {
            w->oom = 1;
            return;
        }
        w->p = p, w->cap = c;
    }
    memcpy(w->p + w->n, d, k);
    w->n += k;
}
void rot_w_u32(rot_wbuf *w, uint32_t v) {
    uint8_t b[4];
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
    rot_w_bytes(w, b, 4);
}
void rot_w_u64(rot_wbuf *w, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    rot_w_bytes(w, b, 8);
}
static void w_f64(rot_wbuf *w, double d) {
    uint64_t v;
    memcpy(&v, &d, 8);
    rot_w_u64(w, v);
}
void rot_w_f64s(rot_wbuf *w, const double *d, size_t k) {
    for (size_t i = 0; i < k; i++) w_f64(w, d[i]);
}

static uint64_t ld_u64(const uint8_t *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}
static void st_u64(uint8_t *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}

harp_status harp_rot_serialize(const harp_rot *r, uint8_t **blob, size_t *size) {
    if (!r || !blob || !size) return harp_err(HARP_ERR_INVALID_ARG, "rotation serialize: NULL argument");
    rot_wbuf w = {0};
    rot_w_bytes(&w, BLOB_MAGIC, 8);   /* 7 characters + NUL */
    rot_w_u32(&w, r->ops->blob_version ? r->ops->blob_version(r) : 1u);
    rot_w_u32(&w, (uint32_t)r->kind);
    rot_w_u64(&w, (uint64_t)r->n);
    rot_w_u64(&w, r->seed);
    rot_w_u64(&w, 0);   /* payload size, patched below */
    r->ops->write(&w, r);
    rot_w_u64(&w, 0);   /* checksum slot */
    if (w.oom) {
        free(w.p);
        return harp_err(HARP_ERR_OOM, "rotation serialize: out of memory");
    }
    st_u64(w.p + 32, (uint64_t)(w.n - BLOB_HEADER - 8));
    st_u64(w.p + w.n - 8, harp_fnv1a64(w.p, w.n - 8, 0));
    *blob = w.p;
    *size = w.n;
    return HARP_OK;
}

/* ---- reader: a failed read sets rb->st once; later reads return 0 or NULL --------------------- */

int rot_r_need(rot_rbuf *r, size_t k, const char *what) {
    if (r->st != HARP_OK) return 0;
    if (k > r->n - r->off) {
        r->st = harp_err(HARP_ERR_FORMAT, "%s: rotation blob truncated reading %s (need %zu bytes at offset %zu, %zu left)",
                         r->name, what, k, r->off, r->n - r->off);
        return 0;
    }
    return 1;
}
uint32_t rot_r_u32(rot_rbuf *r, const char *what) {
    if (!rot_r_need(r, 4, what)) return 0;
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | r->p[r->off + i];
    r->off += 4;
    return v;
}
uint64_t rot_r_u64(rot_rbuf *r, const char *what) {
    if (!rot_r_need(r, 8, what)) return 0;
    uint64_t v = ld_u64(r->p + r->off);
    r->off += 8;
    return v;
}
double *rot_r_f64s(rot_rbuf *r, size_t k, const char *what) {
    if (r->st != HARP_OK) return NULL;
    if (k > (r->n - r->off) / 8) {
        r->st = harp_err(HARP_ERR_FORMAT, "%s: rotation blob truncated reading %s (%zu values at offset %zu, %zu bytes left)",
                         r->name, what, k, r->off, r->n - r->off);
        return NULL;
    }
    double *d = harp_xmalloc(k * sizeof(double) + 1, what);
    if (!d) {
        r->st = HARP_ERR_OOM;
        return NULL;
    }
    for (size_t i = 0; i < k; i++) {
        uint64_t v = ld_u64(r->p + r->off + 8 * i);
        memcpy(&d[i], &v, 8);
        if (!isfinite(d[i])) {
            r->st = harp_err(HARP_ERR_FORMAT, "%s: %s[%zu] is not finite", r->name, what, i);
            free(d);
            return NULL;
        }
    }
    r->off += k * 8;
    return d;
}
int8_t *rot_r_signs(rot_rbuf *r, size_t k) {
    if (!rot_r_need(r, k, "signs")) return NULL;
    int8_t *s = harp_xmalloc(k + 1, "rotation signs");
    if (!s) {
        r->st = HARP_ERR_OOM;
        return NULL;
    }
    memcpy(s, r->p + r->off, k);
    for (size_t i = 0; i < k; i++)
        if (s[i] != 1 && s[i] != -1) {
            r->st = harp_err(HARP_ERR_FORMAT, "%s: sign[%zu] = %d is not +1/-1", r->name, i, s[i]);
            free(s);
            return NULL;
        }
    r->off += k;
    return s;
}
uint32_t *rot_r_perm(rot_rbuf *r, size_t k, const char *what) {
    if (!rot_r_need(r, k * 4, what)) return NULL;
    uint32_t *p = harp_xmalloc(k * sizeof(uint32_t) + 1, what);
    uint8_t *seen = harp_xcalloc(k + 1, 1, what);
    if (!p || !seen) {
        free(p);
        free(seen);
        r->st = HARP_ERR_OOM;
        return NULL;
    }
    for (size_t i = 0; i < k; i++) {
        p[i] = rot_r_u32(r, what);
        if (p[i] >= k || seen[p[i]]++) {
            r->st = harp_err(HARP_ERR_FORMAT, "%s: %s is not a permutation (entry %zu = %u)", r->name, what, i, p[i]);
            free(p);
            free(seen);
            return NULL;
        }
    }
    free(seen);
    return p;
}

harp_status rot_fmt_err(const rot_rbuf *r, const char *msg, long long v) {
    return harp_err(HARP_ERR_FORMAT, "%s: %s (%lld)", r->name, msg, v);
}

int rot_orthogonal(const double *M, int b) {
    for (int i = 0; i < b; i++)
        for (int j = 0; j < b; j++) {
            double acc = 0;
            for (int u = 0; u < b; u++) acc += M[(size_t)i * b + u] * M[(size_t)j * b + u];
            if (fabs(acc - (i == j)) > 1e-9) return 0;
        }
    return 1;
}

harp_status harp_rot_deserialize(const uint8_t *blob, size_t size, const char *name, harp_rot **out) {
    if (!name) name = "rotation blob";
    if (!out) return harp_err(HARP_ERR_INVALID_ARG, "%s: NULL output", name);
    *out = NULL;
    if (!blob || size < BLOB_HEADER + 8)
        return harp_err(HARP_ERR_FORMAT, "%s: rotation blob truncated (%zu bytes, header needs %d)", name, size, BLOB_HEADER + 8);
    if (memcmp(blob, BLOB_MAGIC, 8)) return harp_err(HARP_ERR_FORMAT, "%s: not a harp rotation blob (bad magic)", name);
    rot_rbuf rb = {blob, size, 8, name, HARP_OK};
    uint32_t ver = rot_r_u32(&rb, "version"), kind = rot_r_u32(&rb, "kind");
    uint64_t n = rot_r_u64(&rb, "n"), seed = rot_r_u64(&rb, "seed"), psize = rot_r_u64(&rb, "payload size");
    if (ver < 1 || ver > BLOB_VERSION)
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: rotation blob version %u (this build reads 1..%u)", name, ver, BLOB_VERSION);
    if (psize != size - BLOB_HEADER - 8)
        return harp_err(HARP_ERR_FORMAT, "%s: rotation blob truncated or padded (payload %llu bytes declared, %zu present)", name,
                        (unsigned long long)psize, size - BLOB_HEADER - 8);
    uint64_t sum = ld_u64(blob + size - 8), want = harp_fnv1a64(blob, size - 8, 0);
    if (sum != want)
        return harp_err(HARP_ERR_FORMAT, "%s: rotation blob checksum mismatch (stored %016llx, computed %016llx)", name,
                        (unsigned long long)sum, (unsigned long long)want);
    if (!harp_rot_kind_name((harp_rot_kind)kind)) return harp_err(HARP_ERR_FORMAT, "%s: unknown rotation kind %u", name, kind);
    if (n < 1 || n > (uint64_t)BLOB_MAX_N) return harp_err(HARP_ERR_FORMAT, "%s: dimension %llu out of range", name, (unsigned long long)n);
    if (ver > rot_ops((harp_rot_kind)kind)->max_version)
        return harp_err(HARP_ERR_FORMAT, "%s: rotation blob version %u is not used for kind %u (%s)", name, ver, kind,
                        harp_rot_kind_name((harp_rot_kind)kind));
    harp_rot *r = rot_alloc((harp_rot_kind)kind, (int64_t)n, seed);
    if (!r) return HARP_ERR_OOM;
    rb.n = size - 8;   /* payload ends before the checksum */
    harp_status st = r->ops->read(&rb, r, ver);
    if (st == HARP_OK && rb.off != rb.n)
        st = harp_err(HARP_ERR_FORMAT, "%s: %zu unexpected trailing bytes in rotation payload", name, rb.n - rb.off);
    if (st != HARP_OK) {
        harp_rot_destroy(r);
        return st;
    }
    *out = r;
    return HARP_OK;
}

harp_status harp_rot_save(const harp_rot *r, const char *path) {
    uint8_t *b;
    size_t n;
    HARP_TRY(harp_rot_serialize(r, &b, &n));
    harp_status st = harp_write_file_atomic(path, b, n);
    free(b);
    return st;
}

harp_status harp_rot_load(const char *path, harp_rot **out) {
    char *d;
    size_t n;
    HARP_TRY(harp_read_file(path, &d, &n));
    harp_status st = harp_rot_deserialize((const uint8_t *)d, n, path, out);
    free(d);
    return st;
}
