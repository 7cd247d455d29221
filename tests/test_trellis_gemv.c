/* QTIP decode-GEMV: the portable, AVX2 and AVX-512 kernels are bit-identical to each other and do
 * not depend on the thread count; each is within fp32 summation error of the double-accumulating
 * reference (harp_tmat_gemv_ref, the format's definition) at awkward shapes; the computed codes'
 * SIMD decoders agree with the scalar definition on every one of the 2^16 states; dense decode
 * agrees with the reference. Any bit string is a valid tail-biting code stream, so random words
 * are a fair test matrix. */
#include <omp.h>
#include <stdlib.h>

#include "core/core.h"
#include "quant/trellis.h"
#include "test_util.h"

#define REL_TOL 4e-6

static const harp_tisa isas[] = {HARP_TISA_REF, HARP_TISA_AVX2, HARP_TISA_AVX512, HARP_TISA_AVX512VBMI};

/* Kernels at every ISA (and 1 / 2 threads) vs each other (bit-exact) and vs the reference. */
static void check_mat(const harp_tmat *w, const float *x, const char *what) {
    const int m = w->m, n = w->n;
    float *yr = malloc(sizeof(float) * m), *y0 = malloc(sizeof(float) * m), *y = malloc(sizeof(float) * m);
    float *Wd = malloc(sizeof(float) * (size_t)m * n);
    harp_tmat_gemv_ref(w, x, yr);
    harp_tmat_dequant_rows(w, 0, m, Wd, (size_t)n);
    int bad_ref = 0, bad_dense = 0;
    for (int r = 0; r < m; r++) {
        double mass = 0, s = 0;
        for (int c = 0; c < n; c++) mass += fabs((double)Wd[(size_t)r * n + c] * x[c]), s += (double)Wd[(size_t)r * n + c] * x[c];
        /* Wd already carries the scale: compare to the reference's scale · Σ */
        bad_dense += fabs(s - yr[r]) > 1e-6 * mass + 1e-30;
    }
    harp_trellis_max_isa(HARP_TISA_REF);
    omp_set_num_threads(1);
    CHECK_OK(harp_tmat_gemv(w, x, y0));
    for (int k = 0; k < 4; k++) {
        harp_trellis_max_isa(isas[k]);
        if (harp_trellis_isa() != isas[k]) continue;
        for (int th = 1; th <= 2; th++) {
            omp_set_num_threads(th);
            memset(y, 0xFF, sizeof(float) * m);
            CHECK_OK(harp_tmat_gemv(w, x, y));
            CHECK_MSG(memcmp(y, y0, sizeof(float) * m) == 0, "%s: %s kernel, %d threads, not bit-identical to portable",
                      what, harp_tisa_name(isas[k]), th);
        }
    }
    for (int r = 0; r < m; r++) {
        double mass = 0;
        for (int c = 0; c < n; c++) mass += fabs((double)Wd[(size_t)r * n + c] * x[c]);
        bad_ref += fabs((double)y0[r] - yr[r]) > REL_TOL * mass + 1e-30;
    }
    CHECK_MSG(bad_ref == 0, "%s: %d rows of the fast GEMV off the reference", what, bad_ref);
    CHECK_MSG(bad_dense == 0, "%s: %d rows of the dense decode off the reference", what, bad_dense);
    harp_trellis_max_isa(HARP_TISA_AVX512VBMI);
    omp_set_num_threads(2);
    free(yr), free(y0), free(y), free(Wd);
}

static void random_case(harp_rng *rng, harp_tcode code, int K, int m, int n, const uint16_t *tlut) {
    const size_t nw = harp_tmat_code_words(m, n, K);
    uint16_t *codes = malloc(nw * sizeof *codes);
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < nw; i++) codes[i] = (uint16_t)harp_rng_u64(rng);
    for (int i = 0; i < n; i++) x[i] = (float)harp_rng_normal(rng);
    const harp_tmat w = {m, n, K, code, 0.37f, codes, nw, code == HARP_TCODE_HYB ? tlut : NULL};
    CHECK_OK(harp_tmat_check(&w, "random"));
    char what[96];
    snprintf(what, sizeof what, "%s K=%d %dx%d", harp_tcode_name(code), K, m, n);
    check_mat(&w, x, what);
    free(codes), free(x);
}

/* K = 4, V = 1: the state at step 4k is exactly code word k, so 1 024 tiles carrying the words
 * 0 … 65 535 put every state through the SIMD decoder; a single differing value moves its row. */
static void all_states(harp_rng *rng, harp_tcode code) {
    const int m = 16 * 32, n = 16 * 32;
    const size_t nw = harp_tmat_code_words(m, n, 4);
    uint16_t *codes = malloc(nw * sizeof *codes);
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < nw; i++) codes[i] = (uint16_t)i;
    for (int i = 0; i < n; i++) x[i] = (float)harp_rng_normal(rng);
    const harp_tmat w = {m, n, 4, code, 1.0f, codes, nw, NULL};
    check_mat(&w, x, code == HARP_TCODE_1MAD ? "1mad all states" : "3inst all states");
    free(codes), free(x);
}

int main(void) {
    harp_rng rng;
    harp_rng_seed(&rng, 5);
    printf("trellis kernels: %s\n", harp_tisa_name(harp_trellis_isa()));
    uint16_t tlut[2 * HARP_HYB_N];
    CHECK_OK(harp_hyb_table_build_ex(9, 1 << 14, 8, tlut));
    const int shapes[][2] = {{1, 1}, {15, 17}, {16, 16}, {17, 31}, {33, 48}, {100, 200}, {48, 1}, {7, 130}};
    const harp_tcode codes[] = {HARP_TCODE_1MAD, HARP_TCODE_3INST, HARP_TCODE_HYB};
    for (int c = 0; c < 3; c++)
        for (int K = 2; K <= 4; K++)
            for (int s = 0; s < 8; s++) random_case(&rng, codes[c], K, shapes[s][0], shapes[s][1], tlut);
    all_states(&rng, HARP_TCODE_1MAD);
    all_states(&rng, HARP_TCODE_3INST);
    printf("%d passed, %d failed\n", t_pass_, t_fail_);
    return t_fail_ ? 1 : 0;
}
