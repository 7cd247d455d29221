/* Placeholder until the HARP fitting loop lands (issue #5): the pipeline can name --rotation harp
 * and gets a clear error instead of a link failure. */
#include "core/core.h"
#include "harp/harpfit.h"

harp_fit_params harp_fit_default_params(int bits) {
    harp_fit_params p = {0};
    p.steps = 1200;
    p.base_b = p.max_b = 8;
    p.passes = 1;
    p.lr_u = p.lr_v = 0.03;
    p.hbd_lambda = 0.1;
    p.hbd_block = 8;
    p.q_every = 1;
    p.early_stop_rel = 0.01;
    p.theta_int8 = 1;
    p.codebook = bits == 2 ? HARP_CODEBOOK_E8P12 : bits == 3 ? HARP_CODEBOOK_E8P12_RVQ3B : HARP_CODEBOOK_E8P12_RVQ4B;
    p.scale_override = bits == 2 ? 0.9 : -1.0;
    p.resid_scale_override = -1.0;
    return p;
}

harp_status harp_fit(const harp_fit_params *p, int64_t m, int64_t n, const float *W_r, const double *H_r,
                     uint64_t seed, const char *what, harp_rot **R_U, harp_rot **R_V, harp_fit_report *rep) {
    (void)p; (void)m; (void)n; (void)W_r; (void)H_r; (void)seed; (void)R_U; (void)R_V; (void)rep;
    return harp_err(HARP_ERR_UNSUPPORTED, "%s: HARP fitting is not implemented in this build", what ? what : "harp_fit");
}

int64_t harp_fit_storage_bits(const harp_rot *r, int theta_int8) {
    (void)r; (void)theta_int8;
    return 0;
}
