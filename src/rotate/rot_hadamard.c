/* Kinds hadamard (Had_n = (hadK ⊗ H_{n/K})/√n, QuIP# chunk-major, algorithms.md §3.4) and rht
 * (diag(s)·Had_n, §2.1). Blob payload: u32 K, u64 hash of hadK, and for rht the n signs. */
#include <stdlib.h>

#include "rot_internal.h"

harp_status rot_hadk_init(harp_rot *r, int K) {
    r->K = K;
    r->pow2 = r->n / K;
    size_t kk = (size_t)K * K;
    r->hadk = harp_xmalloc(kk, "hadK");
    r->hadk_f = harp_xmalloc(kk * sizeof(float), "hadK");
    r->hadk_d = harp_xmalloc(kk * sizeof(double), "hadK");
    if (!r->hadk || !r->hadk_f || !r->hadk_d) return HARP_ERR_OOM;
    HARP_TRY(harp_hadamard_matrix(K, r->hadk, NULL));
    for (size_t i = 0; i < kk; i++) r->hadk_f[i] = r->hadk[i], r->hadk_d[i] = r->hadk[i];
    r->Kp = (K + 7) / 8 * 8;
    for (int t = 0; t < 2; t++) {
        r->hkmix_f[t] = harp_xcalloc((size_t)K * r->Kp, sizeof(float), "hadK");
        r->hkmix_d[t] = harp_xcalloc((size_t)K * r->Kp, sizeof(double), "hadK");
        if (!r->hkmix_f[t] || !r->hkmix_d[t]) return HARP_ERR_OOM;
    }
    for (int j = 0; j < K; j++)
        for (int c = 0; c < K; c++) {
            size_t o = (size_t)j * r->Kp + c;
            r->hkmix_f[0][o] = r->hkmix_d[0][o] = r->hadk[(size_t)j * K + c];
            r->hkmix_f[1][o] = r->hkmix_d[1][o] = r->hadk[(size_t)c * K + j];
        }
    return HARP_OK;
}

static harp_status had_create(harp_rot *r, const harp_rot_params *p, harp_rng *g) {
    (void)r, (void)p, (void)g;
    return HARP_OK;
}

static harp_status rht_create(harp_rot *r, const harp_rot_params *p, harp_rng *g) {
    (void)p, (void)g;
    r->signs = rot_random_signs(r->n, r->seed);
    return r->signs ? HARP_OK : HARP_ERR_OOM;
}

static harp_status had_finish(harp_rot *r) {
    int K;
    HARP_TRY(harp_hadamard_choose_k(r->n, &K));
    return rot_hadk_init(r, K);
}

static void had_write(rot_wbuf *w, const harp_rot *r) {
    rot_w_u32(w, (uint32_t)r->K);
    rot_w_u64(w, harp_fnv1a64(r->hadk, (size_t)r->K * r->K, 0));
    if (r->kind == HARP_ROT_RHT) rot_w_bytes(w, r->signs, (size_t)r->n);
}

static harp_status had_read(rot_rbuf *rb, harp_rot *r, uint32_t ver) {
    (void)ver;
    uint32_t K = rot_r_u32(rb, "K");
    uint64_t h = rot_r_u64(rb, "hadK hash");
    if (rb->st) return rb->st;
    HARP_TRY(had_finish(r));
    if ((uint32_t)r->K != K) return rot_fmt_err(rb, "stored K differs from this build's choice for n", (long long)K);
    if (harp_fnv1a64(r->hadk, (size_t)r->K * r->K, 0) != h)
        return rot_fmt_err(rb, "stored hadK hash differs from this build's construction for K", (long long)K);
    if (r->kind == HARP_ROT_RHT) r->signs = rot_r_signs(rb, (size_t)r->n);
    return rb->st;
}

const rot_kind_ops rot_kind_hadamard = {
    .name = "hadamard", .max_version = 1, .create = had_create, .finish = had_finish,
    .row_f32 = had_kind_row_f32, .row_f64 = had_kind_row_f64, .rows_f32 = had_rows_f32, .rows_f64 = had_rows_f64, .tile = 8,
    .write = had_write, .read = had_read,
};

const rot_kind_ops rot_kind_rht = {
    .name = "rht", .max_version = 1, .create = rht_create, .finish = had_finish,
    .row_f32 = rht_kind_row_f32, .row_f64 = rht_kind_row_f64, .rows_f32 = rht_kind_rows_f32, .rows_f64 = rht_kind_rows_f64, .tile = 8,
    .write = had_write, .read = had_read,
};
