/* Kind butterfly (HARP, algorithms.md §4.2–§4.4): creation from the schedule parameters, the row
 * transforms (the Hadamard kernels while θ is exactly Had_n, else the stage kernels), and the blob
 * payload (docs/format/rotation.md): u32 passes, u32 stages, u32 givens_b2, u32 mixer count, f64
 * theta_clip, [version 3: u32 K and u64 hash of hadK of the fixed stage], the stage radices, the
 * non-power-of-two mixers (none in version 3), u64 parameter count, then θ — f64 (version 1), or u32 encoding + int8 /
 * fp16 codes (version 2), or u32 encoding + f64 / int8 / fp16 (version 3). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rot_internal.h"

static harp_status bfk_create(harp_rot *r, const harp_rot_params *p, harp_rng *g) {
    (void)g;
    r->params.givens_b2 = p->givens_b2 != 0;
    r->params.theta_clip = p->theta_clip;
    r->params.theta_init_scale = p->theta_init_scale;
    r->params.base_b = p->base_b;
    r->params.max_b = p->max_b;
    if (!(p->theta_clip >= 0) || !isfinite(p->theta_clip))
        return harp_err(HARP_ERR_INVALID_ARG, "butterfly: theta_clip %g must be >= 0", p->theta_clip);
    return bf_init(r, p, 0);
}

/* version 1 unless θ is stored encoded (2) or there is a fixed Hadamard stage (3), so the blobs of the
 * greedy schedule stay byte-identical to and readable by older builds */
static uint32_t bfk_version(const harp_rot *r) { return r->fixed ? 3u : r->theta_enc ? 2u : 1u; }

static void bfk_write(rot_wbuf *w, const harp_rot *r) {
    int enc = r->theta_enc;
    rot_w_u32(w, (uint32_t)r->P);
    rot_w_u32(w, (uint32_t)r->T);
    rot_w_u32(w, r->params.givens_b2 ? 1u : 0u);
    rot_w_u32(w, (uint32_t)r->n_mix);
    rot_w_f64s(w, &r->params.theta_clip, 1);
    if (r->fixed) {
        rot_w_u32(w, (uint32_t)r->K);
        rot_w_u64(w, harp_fnv1a64(r->hadk, (size_t)r->K * r->K, 0));
    }
    for (int t = 0; t < r->T; t++) rot_w_u32(w, (uint32_t)r->st[t].b);
    for (int i = 0; i < r->n_mix; i++) {
        rot_w_u32(w, (uint32_t)r->mix_b[i]);
        rot_w_f64s(w, r->mix[i], (size_t)r->mix_b[i] * r->mix_b[i]);
    }
    rot_w_u64(w, (uint64_t)r->nparam);
    if (enc || r->fixed) rot_w_u32(w, (uint32_t)enc);
    if (enc == HARP_THETA_INT8) {
        rot_w_bytes(w, r->theta_q, (size_t)r->nparam);
        int64_t G = bf_group_count(r);
        for (int64_t g = 0; g < G; g++) rot_w_bytes(w, (uint8_t[2]){(uint8_t)r->theta_s[g], (uint8_t)(r->theta_s[g] >> 8)}, 2);
    } else if (enc == HARP_THETA_FP16) {
        for (int64_t k = 0; k < r->nparam; k++) rot_w_bytes(w, (uint8_t[2]){(uint8_t)r->theta_h[k], (uint8_t)(r->theta_h[k] >> 8)}, 2);
    } else {
        rot_w_f64s(w, r->theta, (size_t)r->nparam);
    }
}

/* Version 3: the fixed stage's order K and hadK hash must be this build's for n; *m = n/K. */
static harp_status read_fixed(rot_rbuf *rb, harp_rot *r, harp_rot_params *p, int64_t *m) {
    uint32_t K = rot_r_u32(rb, "fixed K");
    uint64_t h = rot_r_u64(rb, "fixed hadK hash");
    if (rb->st) return rb->st;
    int Kc = 0;
    if (harp_hadamard_choose_k(r->n, &Kc) != HARP_OK || Kc < 2 || (uint32_t)Kc != K)
        return rot_fmt_err(rb, "stored fixed-stage K differs from this build's choice for n", (long long)K);
    int8_t *H = harp_xmalloc((size_t)K * K, "hadK");
    if (!H) return HARP_ERR_OOM;
    harp_status st = harp_hadamard_matrix((int)K, H, NULL);
    if (st == HARP_OK && harp_fnv1a64(H, (size_t)K * K, 0) != h)
        st = rot_fmt_err(rb, "stored hadK hash differs from this build's construction for K", (long long)K);
    free(H);
    p->schedule = HARP_BF_SCHEDULE_HADAMARD;
    *m = r->n / K;
    return st;
}

/* passes, stages, flags, θ clip, the fixed stage (version 3; *m = n/K, else n) and the stage radices
 * into p (n_stages = T) */
static harp_status read_schedule(rot_rbuf *rb, harp_rot *r, harp_rot_params *p, uint32_t *nm, uint32_t ver, int64_t *m) {
    uint32_t P = rot_r_u32(rb, "passes"), T = rot_r_u32(rb, "stages"), gv = rot_r_u32(rb, "givens flag");
    *nm = rot_r_u32(rb, "mixer count");
    uint64_t clip = rot_r_u64(rb, "theta_clip");
    if (rb->st) return rb->st;
    *m = r->n;
    if (ver >= 3) HARP_TRY(read_fixed(rb, r, p, m));
    if (P < 1 || P > 64) return rot_fmt_err(rb, "bad pass count", (long long)P);
    if (T < 1 || T > HARP_ROT_MAX_STAGES) return rot_fmt_err(rb, "bad stage count", (long long)T);
    if (gv > 1) return rot_fmt_err(rb, "bad givens flag", (long long)gv);
    if (*nm > T) return rot_fmt_err(rb, "more mixers than stages", (long long)*nm);
    memcpy(&p->theta_clip, &clip, 8);
    if (!isfinite(p->theta_clip) || p->theta_clip < 0) return rot_fmt_err(rb, "bad theta_clip", 0);
    p->n_passes = (int)P;
    p->givens_b2 = (int)gv;
    p->n_stages = (int)T;
    int64_t prod = 1;
    for (uint32_t t = 0; t < T; t++) {
        uint32_t b = rot_r_u32(rb, "stage radix");
        if (rb->st) return rb->st;
        if (b < 2 || b > 65536 || prod * b > r->n) return rot_fmt_err(rb, "bad stage radix", (long long)b);
        prod *= b;
        p->stages[t] = (int)b;
    }
    if (prod != r->n) return rot_fmt_err(rb, "stage radices do not multiply to n", (long long)prod);
    int syl[HARP_ROT_MAX_STAGES];
    if (ver >= 3 && bf_chunk_split(p->stages, (int)T, *m, syl) != HARP_OK)
        return rot_fmt_err(rb, "a stage does not split at the chunk length", (long long)*m);
    r->params.givens_b2 = p->givens_b2;
    r->params.theta_clip = p->theta_clip;
    return HARP_OK;
}

/* one stored orthogonal mixer per distinct non-power-of-two radix, and none missing; with the fixed
 * stage (version 3) every mixer follows from the schedule and none is stored */
static harp_status read_mixers(rot_rbuf *rb, harp_rot *r, const harp_rot_params *p, uint32_t nm, int fixed) {
    int T = p->n_stages;
    if (fixed && nm) return rot_fmt_err(rb, "stored mixers in a blob with a fixed Hadamard stage; count", (long long)nm);
    for (uint32_t i = 0; i < nm; i++) {
        uint32_t b = rot_r_u32(rb, "mixer radix");
        if (rb->st) return rb->st;
        int used = 0;
        for (int t = 0; t < T; t++) used |= (uint32_t)p->stages[t] == b;
        for (int k = 0; k < r->n_mix; k++)
            if ((uint32_t)r->mix_b[k] == b) used = 0;
        if (!used || (b & (b - 1)) == 0) return rot_fmt_err(rb, "mixer radix is not a distinct non-power-of-two stage radix", (long long)b);
        r->mix_b[r->n_mix] = (int)b;
        r->mix[r->n_mix] = rot_r_f64s(rb, (size_t)b * b, "mixer");
        if (rb->st) return rb->st;
        r->n_mix++;
        if (!rot_orthogonal(r->mix[r->n_mix - 1], (int)b)) return rot_fmt_err(rb, "stored mixer is not orthogonal; radix", (long long)b);
    }
    for (int t = 0; t < T && !fixed; t++) {
        uint32_t b = (uint32_t)p->stages[t];
        int have = (b & (b - 1)) == 0;
        for (int k = 0; k < r->n_mix; k++) have |= (uint32_t)r->mix_b[k] == b;
        if (!have) return rot_fmt_err(rb, "no stored mixer for radix", (long long)b);
    }
    return HARP_OK;
}

static harp_status read_theta_f64(rot_rbuf *rb, harp_rot *r, uint64_t np) {
    double *th = rot_r_f64s(rb, (size_t)np, "theta");
    if (rb->st) return rb->st;
    memcpy(r->theta, th, (size_t)np * sizeof(double));
    free(th);
    return HARP_OK;
}

/* θ of a version-2/3 butterfly: u32 encoding, then the codes (docs/format/rotation.md). */
static harp_status read_theta_enc(rot_rbuf *rb, harp_rot *r, uint64_t np, uint32_t ver) {
    uint32_t enc = rot_r_u32(rb, "theta encoding");
    if (rb->st) return rb->st;
    if (enc == HARP_THETA_F64 && ver >= 3) return read_theta_f64(rb, r, np);
    /* f64 θ of a version-2 layout is written as version 1: one byte layout per rotation keeps
     * re-serialisation exact */
    if (enc == HARP_THETA_F64) return rot_fmt_err(rb, "version-2 blob with f64 theta (written as version 1)", 0);
    int64_t G = bf_group_count(r);
    size_t need = enc == HARP_THETA_INT8 ? (size_t)np + 2 * (size_t)G : enc == HARP_THETA_FP16 ? 2 * (size_t)np : 0;
    if (!need) return rot_fmt_err(rb, "unknown theta encoding", (long long)enc);
    if (!rot_r_need(rb, need, "encoded theta")) return rb->st;
    const uint8_t *p = rb->p + rb->off;
    uint16_t *h = harp_xmalloc((size_t)(enc == HARP_THETA_INT8 ? G : (int64_t)np) * sizeof(uint16_t) + 1, "theta codes");
    if (!h) return HARP_ERR_OOM;
    harp_status st = HARP_OK;
    if (enc == HARP_THETA_INT8) {
        for (uint64_t k = 0; k < np && st == HARP_OK; k++)
            if ((int8_t)p[k] == -128) st = rot_fmt_err(rb, "int8 theta code -128 at index", (long long)k);
        for (int64_t g = 0; g < G && st == HARP_OK; g++) {
            h[g] = (uint16_t)(p[np + 2 * g] | p[np + 2 * g + 1] << 8);
            float sc = harp_f16_to_f32(h[g]);
            if (!(sc > 0) || !isfinite(sc)) st = rot_fmt_err(rb, "theta group scale is not a positive finite fp16; group", (long long)g);
        }
        if (st == HARP_OK) st = bf_theta_decode(r, HARP_THETA_INT8, (const int8_t *)p, h, NULL);
    } else {
        for (uint64_t k = 0; k < np && st == HARP_OK; k++) {
            h[k] = (uint16_t)(p[2 * k] | p[2 * k + 1] << 8);
            if (!isfinite(harp_f16_to_f32(h[k]))) st = rot_fmt_err(rb, "fp16 theta is not finite at index", (long long)k);
        }
        if (st == HARP_OK) st = bf_theta_decode(r, HARP_THETA_FP16, NULL, NULL, h);
    }
    free(h);
    rb->off += need;
    return st;
}

static harp_status bfk_read(rot_rbuf *rb, harp_rot *r, uint32_t ver) {
    harp_rot_params p;
    harp_rot_params_default(&p);
    uint32_t nm;
    int64_t m;
    HARP_TRY(read_schedule(rb, r, &p, &nm, ver, &m));
    HARP_TRY(read_mixers(rb, r, &p, nm, ver >= 3));
    uint64_t np = rot_r_u64(rb, "parameter count");
    if (rb->st) return rb->st;
    int64_t expect = 0;
    for (int t = 0; t < p.n_stages; t++) {
        int64_t b = p.stages[t];
        expect += (r->n / b) * ((b == 2 && p.givens_b2) ? 1 : b * (b - 1) / 2);
    }
    expect *= p.n_passes;
    if ((int64_t)np != expect) return rot_fmt_err(rb, "parameter count does not match the schedule", (long long)np);
    if (np > (rb->n - rb->off) / (ver >= 2 ? 1 : 8))
        return harp_err(HARP_ERR_FORMAT, "%s: rotation blob truncated reading theta (%llu values, %zu bytes left)", rb->name,
                        (unsigned long long)np, rb->n - rb->off);
    HARP_TRY(bf_init(r, &p, 1));
    HARP_TRY(ver >= 2 ? read_theta_enc(rb, r, np, ver) : read_theta_f64(rb, r, np));
    return bf_refresh(r);
}

const rot_kind_ops rot_kind_butterfly = {
    .name = "butterfly", .max_version = 3, .create = bfk_create, .finish = bf_refresh,
    .row_f32 = bf_kind_row_f32, .row_f64 = bf_kind_row_f64, .rows_f32 = bf_kind_rows_f32, .rows_f64 = bf_kind_rows_f64, .tile = 8,
    .blob_version = bfk_version, .write = bfk_write, .read = bfk_read, .destroy = bf_free,
};
