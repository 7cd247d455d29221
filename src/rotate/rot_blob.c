/* Versioned, checksummed rotation blob (docs/format/rotation.md). Little-endian throughout; every
 * stored parameter (signs, dense matrices, permutations, butterfly mixers and θ) round-trips bit-exactly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rot_internal.h"

#define BLOB_MAGIC "HARPROT"
#define BLOB_VERSION 2u   /* 2: butterfly θ encoding (int8 + fp16 scales, fp16); 1 still read and written for f64 θ */
#define BLOB_HEADER 40
#define BLOB_MAX_N ((int64_t)1 << 26)
#define BLOB_MAX_DENSE 16384

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
    int oom;
} wbuf;

static void w_bytes(wbuf *w, const void *d, size_t k) {
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
static void w_u32(wbuf *w, uint32_t v) {
    uint8_t b[4];
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
    w_bytes(w, b, 4);
}
static void w_u64(wbuf *w, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    w_bytes(w, b, 8);
}
static void w_f64(wbuf *w, double d) {
    uint64_t v;
    memcpy(&v, &d, 8);
    w_u64(w, v);
}
static void w_f64s(wbuf *w, const double *d, size_t k) {
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
    wbuf w = {0};
    w_bytes(&w, BLOB_MAGIC, 8);   /* 7 characters + NUL */
    /* version 1 unless the butterfly carries encoded θ, so f64 blobs stay readable by older builds */
    int enc = r->kind == HARP_ROT_BUTTERFLY ? r->theta_enc : 0;
    w_u32(&w, enc ? 2u : 1u);
    w_u32(&w, (uint32_t)r->kind);
    w_u64(&w, (uint64_t)r->n);
    w_u64(&w, r->seed);
    w_u64(&w, 0);   /* payload size, patched below */
    int64_t n = r->n;
    switch (r->kind) {
    case HARP_ROT_HADAMARD:
    case HARP_ROT_RHT:
        w_u32(&w, (uint32_t)r->K);
        w_u64(&w, harp_fnv1a64(r->hadk, (size_t)r->K * r->K, 0));
        if (r->kind == HARP_ROT_RHT) w_bytes(&w, r->signs, (size_t)n);
        break;
    case HARP_ROT_GSR:
        w_u32(&w, (uint32_t)r->group);
        w_u32(&w, r->signs ? 1u : 0u);
        if (r->signs) w_bytes(&w, r->signs, (size_t)n);
        break;
    case HARP_ROT_RANDOM_ORTHOGONAL: w_f64s(&w, r->dense, (size_t)n * (size_t)n); break;
    case HARP_ROT_KRON:
        w_u32(&w, (uint32_t)r->kron_p1);
        w_u32(&w, (uint32_t)r->kron_p2);
        w_f64s(&w, r->kron_a, (size_t)r->kron_p1 * r->kron_p1);
        w_f64s(&w, r->kron_b, (size_t)r->kron_p2 * r->kron_p2);
        for (int64_t i = 0; i < n; i++) w_u32(&w, r->kron_pin[i]);
        for (int64_t i = 0; i < n; i++) w_u32(&w, r->kron_pout[i]);
        break;
    case HARP_ROT_BUTTERFLY:
        w_u32(&w, (uint32_t)r->P);
        w_u32(&w, (uint32_t)r->T);
        w_u32(&w, r->params.givens_b2 ? 1u : 0u);
        w_u32(&w, (uint32_t)r->n_mix);
        w_f64(&w, r->params.theta_clip);
        for (int t = 0; t < r->T; t++) w_u32(&w, (uint32_t)r->st[t].b);
        for (int i = 0; i < r->n_mix; i++) {
            w_u32(&w, (uint32_t)r->mix_b[i]);
            w_f64s(&w, r->mix[i], (size_t)r->mix_b[i] * r->mix_b[i]);
        }
        w_u64(&w, (uint64_t)r->nparam);
        if (enc) w_u32(&w, (uint32_t)enc);
        if (enc == HARP_THETA_INT8) {
            w_bytes(&w, r->theta_q, (size_t)r->nparam);
            int64_t G = bf_group_count(r);
            for (int64_t g = 0; g < G; g++) w_bytes(&w, (uint8_t[2]){(uint8_t)r->theta_s[g], (uint8_t)(r->theta_s[g] >> 8)}, 2);
        } else if (enc == HARP_THETA_FP16) {
            for (int64_t k = 0; k < r->nparam; k++)
                w_bytes(&w, (uint8_t[2]){(uint8_t)r->theta_h[k], (uint8_t)(r->theta_h[k] >> 8)}, 2);
        } else {
            w_f64s(&w, r->theta, (size_t)r->nparam);
        }
        break;
    }
    w_u64(&w, 0);   /* checksum slot */
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

/* ---- reader ----------------------------------------------------------------------------------- */

typedef struct rbuf {
    const uint8_t *p;
    size_t n, off;
    const char *name;
    harp_status st;
} rbuf;

static int r_need(rbuf *r, size_t k, const char *what) {
    if (r->st != HARP_OK) return 0;
    if (k > r->n - r->off) {
        r->st = harp_err(HARP_ERR_FORMAT, "%s: rotation blob truncated reading %s (need %zu bytes at offset %zu, %zu left)",
                         r->name, what, k, r->off, r->n - r->off);
        return 0;
    }
    return 1;
}
static uint32_t r_u32(rbuf *r, const char *what) {
    if (!r_need(r, 4, what)) return 0;
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | r->p[r->off + i];
    r->off += 4;
    return v;
}
static uint64_t r_u64(rbuf *r, const char *what) {
    if (!r_need(r, 8, what)) return 0;
    uint64_t v = ld_u64(r->p + r->off);
    r->off += 8;
    return v;
}
static double *r_f64s(rbuf *r, size_t k, const char *what) {
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
static int8_t *r_signs(rbuf *r, size_t k) {
    if (!r_need(r, k, "signs")) return NULL;
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
static uint32_t *r_perm(rbuf *r, size_t k, const char *what) {
    if (!r_need(r, k * 4, what)) return NULL;
    uint32_t *p = harp_xmalloc(k * sizeof(uint32_t) + 1, what);
    uint8_t *seen = harp_xcalloc(k + 1, 1, what);
    if (!p || !seen) {
        free(p);
        free(seen);
        r->st = HARP_ERR_OOM;
        return NULL;
    }
    for (size_t i = 0; i < k; i++) {
        p[i] = r_u32(r, what);
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

static harp_status fmt_err(const rbuf *r, const char *msg, long long v) {
    return harp_err(HARP_ERR_FORMAT, "%s: %s (%lld)", r->name, msg, v);
}

static int orthogonal(const double *M, int b) {
    for (int i = 0; i < b; i++)
        for (int j = 0; j < b; j++) {
            double acc = 0;
            for (int u = 0; u < b; u++) acc += M[(size_t)i * b + u] * M[(size_t)j * b + u];
            if (fabs(acc - (i == j)) > 1e-9) return 0;
        }
    return 1;
}

/* θ of a version-2 butterfly: u32 encoding, then the codes (docs/format/rotation.md). */
static harp_status read_theta_v2(rbuf *rb, harp_rot *r, uint64_t np) {
    uint32_t enc = r_u32(rb, "theta encoding");
    if (rb->st) return rb->st;
    /* f64 θ is always written as version 1: one byte layout per rotation keeps re-serialisation exact */
    if (enc == HARP_THETA_F64) return fmt_err(rb, "version-2 blob with f64 theta (written as version 1)", 0);
    int64_t G = bf_group_count(r);
    size_t need = enc == HARP_THETA_INT8 ? (size_t)np + 2 * (size_t)G : enc == HARP_THETA_FP16 ? 2 * (size_t)np : 0;
    if (!need) return fmt_err(rb, "unknown theta encoding", (long long)enc);
    if (!r_need(rb, need, "encoded theta")) return rb->st;
    const uint8_t *p = rb->p + rb->off;
    uint16_t *h = harp_xmalloc((size_t)(enc == HARP_THETA_INT8 ? G : (int64_t)np) * sizeof(uint16_t) + 1, "theta codes");
    if (!h) return HARP_ERR_OOM;
    harp_status st = HARP_OK;
    if (enc == HARP_THETA_INT8) {
        for (uint64_t k = 0; k < np && st == HARP_OK; k++)
            if ((int8_t)p[k] == -128) st = fmt_err(rb, "int8 theta code -128 at index", (long long)k);
        for (int64_t g = 0; g < G && st == HARP_OK; g++) {
            h[g] = (uint16_t)(p[np + 2 * g] | p[np + 2 * g + 1] << 8);
            float sc = harp_f16_to_f32(h[g]);
            if (!(sc > 0) || !isfinite(sc)) st = fmt_err(rb, "theta group scale is not a positive finite fp16; group", (long long)g);
        }
        if (st == HARP_OK) st = bf_theta_decode(r, HARP_THETA_INT8, (const int8_t *)p, h, NULL);
    } else {
        for (uint64_t k = 0; k < np && st == HARP_OK; k++) {
            h[k] = (uint16_t)(p[2 * k] | p[2 * k + 1] << 8);
            if (!isfinite(harp_f16_to_f32(h[k]))) st = fmt_err(rb, "fp16 theta is not finite at index", (long long)k);
        }
        if (st == HARP_OK) st = bf_theta_decode(r, HARP_THETA_FP16, NULL, NULL, h);
    }
    free(h);
    rb->off += need;
    return st;
}

static harp_status read_payload(rbuf *rb, harp_rot *r, uint32_t ver) {
    int64_t n = r->n;
    switch (r->kind) {
    case HARP_ROT_HADAMARD:
    case HARP_ROT_RHT: {
        uint32_t K = r_u32(rb, "K");
        uint64_t h = r_u64(rb, "hadK hash");
        if (rb->st) return rb->st;
        HARP_TRY(rot_finish(r));
        if ((uint32_t)r->K != K) return fmt_err(rb, "stored K differs from this build's choice for n", (long long)K);
        if (harp_fnv1a64(r->hadk, (size_t)r->K * r->K, 0) != h)
            return fmt_err(rb, "stored hadK hash differs from this build's construction for K", (long long)K);
        if (r->kind == HARP_ROT_RHT) r->signs = r_signs(rb, (size_t)n);
        return rb->st;
    }
    case HARP_ROT_GSR: {
        uint32_t G = r_u32(rb, "group"), hs = r_u32(rb, "has_signs");
        if (rb->st) return rb->st;
        if (G == 0 || (G & (G - 1)) || n % G || G > (1u << 20)) return fmt_err(rb, "bad GSR group size", (long long)G);
        if (hs > 1) return fmt_err(rb, "bad GSR has_signs flag", (long long)hs);
        r->group = G;
        r->params.gsr_group = (int)G;
        r->params.gsr_signs = (int)hs;
        if (hs) r->signs = r_signs(rb, (size_t)n);
        if (rb->st) return rb->st;
        return rot_finish(r);
    }
    case HARP_ROT_RANDOM_ORTHOGONAL:
        if (n > BLOB_MAX_DENSE) return fmt_err(rb, "dense rotation dimension too large", (long long)n);
        r->dense = r_f64s(rb, (size_t)n * (size_t)n, "dense matrix");
        if (rb->st) return rb->st;
        /* sampled check (three rows, O(n)): catches a tampered matrix without an O(n³) product */
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) {
                const double *ra = r->dense + (size_t)(a * (n - 1) / 2) * (size_t)n, *rb2 = r->dense + (size_t)(b * (n - 1) / 2) * (size_t)n;
                double d = 0;
                for (int64_t k = 0; k < n; k++) d += ra[k] * rb2[k];
                if (fabs(d - (ra == rb2)) > 1e-9) return fmt_err(rb, "stored dense rotation is not orthogonal; dimension", (long long)n);
            }
        return rot_finish(r);
    case HARP_ROT_KRON: {
        if (n > BLOB_MAX_DENSE) return fmt_err(rb, "dense rotation dimension too large", (long long)n);
        uint32_t p1 = r_u32(rb, "p1"), p2 = r_u32(rb, "p2");
        if (rb->st) return rb->st;
        if (p1 == 0 || p2 == 0 || (uint64_t)p1 * p2 != (uint64_t)n) return fmt_err(rb, "kron factors do not multiply to n", (long long)p1);
        r->kron_p1 = (int)p1, r->kron_p2 = (int)p2;
        r->kron_a = r_f64s(rb, (size_t)p1 * p1, "kron A");
        r->kron_b = r_f64s(rb, (size_t)p2 * p2, "kron B");
        r->kron_pin = r_perm(rb, (size_t)n, "kron input permutation");
        r->kron_pout = r_perm(rb, (size_t)n, "kron output permutation");
        if (rb->st) return rb->st;
        if (!orthogonal(r->kron_a, (int)p1) || !orthogonal(r->kron_b, (int)p2))
            return fmt_err(rb, "stored kron factor is not orthogonal; p1", (long long)p1);
        return rot_finish(r);
    }
    case HARP_ROT_BUTTERFLY: {
        harp_rot_params p;
        harp_rot_params_default(&p);
        uint32_t P = r_u32(rb, "passes"), T = r_u32(rb, "stages"), gv = r_u32(rb, "givens flag"), nm = r_u32(rb, "mixer count");
        uint64_t clip = r_u64(rb, "theta_clip");
        if (rb->st) return rb->st;
        if (P < 1 || P > 64) return fmt_err(rb, "bad pass count", (long long)P);
        if (T < 1 || T > HARP_ROT_MAX_STAGES) return fmt_err(rb, "bad stage count", (long long)T);
        if (gv > 1) return fmt_err(rb, "bad givens flag", (long long)gv);
        if (nm > T) return fmt_err(rb, "more mixers than stages", (long long)nm);
        memcpy(&p.theta_clip, &clip, 8);
        if (!isfinite(p.theta_clip) || p.theta_clip < 0) return fmt_err(rb, "bad theta_clip", 0);
        p.n_passes = (int)P;
        p.givens_b2 = (int)gv;
        p.n_stages = (int)T;
        int64_t prod = 1;
        for (uint32_t t = 0; t < T; t++) {
            uint32_t b = r_u32(rb, "stage radix");
            if (rb->st) return rb->st;
            if (b < 2 || b > 65536 || prod * b > n) return fmt_err(rb, "bad stage radix", (long long)b);
            prod *= b;
            p.stages[t] = (int)b;
        }
        if (prod != n) return fmt_err(rb, "stage radices do not multiply to n", (long long)prod);
        r->params.givens_b2 = p.givens_b2;
        r->params.theta_clip = p.theta_clip;
        for (uint32_t i = 0; i < nm; i++) {
            uint32_t b = r_u32(rb, "mixer radix");
            if (rb->st) return rb->st;
            int used = 0;
            for (uint32_t t = 0; t < T; t++) used |= (uint32_t)p.stages[t] == b;
            for (int k = 0; k < r->n_mix; k++)
                if ((uint32_t)r->mix_b[k] == b) used = 0;
            if (!used || (b & (b - 1)) == 0) return fmt_err(rb, "mixer radix is not a distinct non-power-of-two stage radix", (long long)b);
            r->mix_b[r->n_mix] = (int)b;
            r->mix[r->n_mix] = r_f64s(rb, (size_t)b * b, "mixer");
            if (rb->st) return rb->st;
            r->n_mix++;
            if (!orthogonal(r->mix[r->n_mix - 1], (int)b)) return fmt_err(rb, "stored mixer is not orthogonal; radix", (long long)b);
        }
        for (uint32_t t = 0; t < T; t++) {
            uint32_t b = (uint32_t)p.stages[t];
            int have = (b & (b - 1)) == 0;
            for (int k = 0; k < r->n_mix; k++) have |= (uint32_t)r->mix_b[k] == b;
            if (!have) return fmt_err(rb, "no stored mixer for radix", (long long)b);
        }
        uint64_t np = r_u64(rb, "parameter count");
        if (rb->st) return rb->st;
        int64_t expect = 0;
        for (uint32_t t = 0; t < T; t++) {
            int64_t b = p.stages[t];
            expect += (n / b) * ((b == 2 && gv) ? 1 : b * (b - 1) / 2);
        }
        expect *= P;
        if ((int64_t)np != expect) return fmt_err(rb, "parameter count does not match the schedule", (long long)np);
        if (np > (rb->n - rb->off) / (ver >= 2 ? 1 : 8))
            return harp_err(HARP_ERR_FORMAT, "%s: rotation blob truncated reading theta (%llu values, %zu bytes left)", rb->name,
                            (unsigned long long)np, rb->n - rb->off);
        HARP_TRY(bf_init(r, &p, 1));
        if (ver >= 2) {
            HARP_TRY(read_theta_v2(rb, r, np));
            return rot_finish(r);
        }
        double *th = r_f64s(rb, (size_t)np, "theta");
        if (rb->st) return rb->st;
        memcpy(r->theta, th, (size_t)np * sizeof(double));
        free(th);
        return rot_finish(r);
    }
    }
    return fmt_err(rb, "unknown rotation kind", (long long)r->kind);
}

harp_status harp_rot_deserialize(const uint8_t *blob, size_t size, const char *name, harp_rot **out) {
    if (!name) name = "rotation blob";
    if (!out) return harp_err(HARP_ERR_INVALID_ARG, "%s: NULL output", name);
    *out = NULL;
    if (!blob || size < BLOB_HEADER + 8)
        return harp_err(HARP_ERR_FORMAT, "%s: rotation blob truncated (%zu bytes, header needs %d)", name, size, BLOB_HEADER + 8);
    if (memcmp(blob, BLOB_MAGIC, 8)) return harp_err(HARP_ERR_FORMAT, "%s: not a harp rotation blob (bad magic)", name);
    rbuf rb = {blob, size, 8, name, HARP_OK};
    uint32_t ver = r_u32(&rb, "version"), kind = r_u32(&rb, "kind");
    uint64_t n = r_u64(&rb, "n"), seed = r_u64(&rb, "seed"), psize = r_u64(&rb, "payload size");
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
    if (ver == 2 && kind != HARP_ROT_BUTTERFLY)
        return harp_err(HARP_ERR_FORMAT, "%s: rotation blob version 2 is only used for butterflies (kind %u)", name, kind);
    harp_rot *r = rot_alloc((harp_rot_kind)kind, (int64_t)n, seed);
    if (!r) return HARP_ERR_OOM;
    rb.n = size - 8;   /* payload ends before the checksum */
    harp_status st = read_payload(&rb, r, ver);
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
