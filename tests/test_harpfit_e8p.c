/* The pruned fp32 E8P search of the HARP proxy target (hf_e8p.c) against its full-scan twin: bit-identical
 * codewords on Gaussian vectors at several scales (including the 2-bit scale of W̃/s), on exact ties
 * (lattice points, half-way points), on special values, and through the RVQ codebooks. */
#include <math.h>
#include <string.h>

#include "harpfit/hf_internal.h"
#include "test_util.h"

static int same8(const float *a, const float *b) { return memcmp(a, b, 8 * sizeof(float)) == 0; }

static void gaussian(double scale, int count, uint64_t seed) {
    harp_rng g;
    harp_rng_seed(&g, seed);
    int bad = 0;
    for (int k = 0; k < count; k++) {
        float x[8], a[8], b[8];
        for (int i = 0; i < 8; i++) x[i] = (float)(harp_rng_normal(&g) * scale);
        hf_e8p_nearest_f32(x, a);
        hf_e8p_nearest_ref_f32(x, b);
        if (!same8(a, b) && bad++ < 3)
            printf("  scale %g vector %d: pruned (%g %g ...) vs full (%g %g ...)\n", scale, k, a[0], a[1], b[0], b[1]);
    }
    CHECK_MSG(bad == 0, "scale %g: %d of %d vectors differ", scale, bad, count);
}

/* Inputs on the lattice or half-way between quarter-integers: many exact distance ties. */
static void ties(int count, uint64_t seed) {
    harp_rng g;
    harp_rng_seed(&g, seed);
    int bad = 0;
    for (int k = 0; k < count; k++) {
        float x[8], a[8], b[8];
        for (int i = 0; i < 8; i++) x[i] = (float)((int)(harp_rng_u64(&g) % 17) - 8) * (k % 2 ? 0.25f : 0.125f);
        hf_e8p_nearest_f32(x, a);
        hf_e8p_nearest_ref_f32(x, b);
        bad += !same8(a, b);
    }
    CHECK_MSG(bad == 0, "tie inputs: %d of %d vectors differ", bad, count);
}

static void specials(void) {
    const float vals[] = {0.0f, -0.0f, 0.25f, -0.25f, 1e-30f, 3e4f, -3e4f, 1e20f, INFINITY, -INFINITY, NAN};
    int nv = (int)(sizeof vals / sizeof vals[0]), bad = 0;
    for (int u = 0; u < nv; u++)
        for (int w = 0; w < nv; w++) {
            float x[8] = {vals[u], vals[w], 0.3f, -0.7f, 1.1f, vals[u], -2.0f, 0.0f}, a[8], b[8];
            hf_e8p_nearest_f32(x, a);
            hf_e8p_nearest_ref_f32(x, b);
            bad += memcmp(a, b, sizeof a) != 0;
        }
    CHECK_MSG(bad == 0, "special values: %d pairs differ", bad);
}

/* Every codebook through the fast target: the result is a codeword no farther than the full scan's. */
static void rvq(harp_codebook cb, double scale, int count, uint64_t seed) {
    harp_rng g;
    harp_rng_seed(&g, seed);
    double resid = harp_codebook_opt_resid_scale(cb);
    int bad = 0;
    for (int k = 0; k < count; k++) {
        double x[8], q[8], qr[8];
        float xf[8], o[8];
        for (int i = 0; i < 8; i++) x[i] = harp_rng_normal(&g) * scale;
        hf_quantize8_fast(cb, resid, x, q);
        /* the same decomposition with the full scan */
        for (int i = 0; i < 8; i++) xf[i] = (float)x[i];
        hf_e8p_nearest_ref_f32(xf, o);
        for (int i = 0; i < 8; i++) qr[i] = o[i];
        if (cb == HARP_CODEBOOK_E8P12_RVQ4B) {
            for (int i = 0; i < 8; i++) xf[i] = (float)((x[i] - qr[i]) * resid);
            hf_e8p_nearest_ref_f32(xf, o);
            for (int i = 0; i < 8; i++) qr[i] += o[i] / resid;
        } else if (cb == HARP_CODEBOOK_E8P12_RVQ3B) {
            double res[8], d1[8];
            for (int i = 0; i < 8; i++) res[i] = (x[i] - qr[i]) * resid;
            harp_e81b_encode(res, d1);
            for (int i = 0; i < 8; i++) qr[i] += d1[i] / resid;
        }
        bad += memcmp(q, qr, sizeof q) != 0;
    }
    CHECK_MSG(bad == 0, "codebook %d scale %g: %d of %d differ", (int)cb, scale, bad, count);
}

int main(void) {
    CHECK(hf_e8p_orbits_ok());
    /* 2-bit W̃/s has rms ≈ 0.9 (scale override 0.9); also far inside and far outside the codebook */
    const double scales[] = {0.9, 0.05, 0.3, 1.5, 3.0, 10.0};
    for (int s = 0; s < 6; s++) gaussian(scales[s], s == 0 ? 100000 : 20000, 11 + (uint64_t)s);
    ties(20000, 5);
    specials();
    rvq(HARP_CODEBOOK_E8P12, 0.9, 10000, 21);
    rvq(HARP_CODEBOOK_E8P12_RVQ3B, 1.0, 10000, 22);
    rvq(HARP_CODEBOOK_E8P12_RVQ4B, 1.0, 10000, 23);
    return t_done();
}
