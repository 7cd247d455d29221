/* The GPU decode engine's view of a model's linear groups (src/cuda/dec_linear.c), on the CPU: the
 * transforms built from harp_rot (with its signs as pre / post) reproduce harp_rot_apply_ref_f64 in
 * both directions for every kind the engine runs (RHT at widths with Had_K, the HARP butterfly in
 * both schedules, also with the fixed Hadamard stage and two passes, GSR with signs, Kronecker),
 * dense kinds are refused with one error; and the C twin of the whole packed product
 * (dec_linear_ref: split fp16 input, GEMV, output transform, scales) matches harp_qtensor_apply_ref for
 * E8P2 / RVQ3 / RVQ4 / INT2-8 / F16 / LDP2 / QTIP (every code) tensors with rotations, signs and fused slices. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cuda/decode.h"
#include "harp/qtensor.h"
#include "harp/quant.h"
#include "harp/rotate.h"
#include "dec_test_util.h"
#include "test_util.h"

static double rel_l2(const double *a, const double *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
    return sqrt(num / (den > 0 ? den : 1));
}

static void check_rot(harp_rot *r, const char *what) {
    const int64_t n = harp_rot_dim(r);
    harp_rng rng;
    harp_rng_seed(&rng, (uint64_t)n);
    double *x = malloc(sizeof(double) * n), *y = malloc(sizeof(double) * n), *tmp = malloc(sizeof(double) * 2 * n);
    for (int tr = 0; tr < 2; tr++) {
        dec_xform xf;
        const int8_t *s = NULL;
        CHECK_OK(dec_xform_from_rot(r, tr, &xf, &s));
        for (int64_t i = 0; i < n; i++) x[i] = y[i] = harp_rng_normal(&rng);
        CHECK_OK(harp_rot_apply_ref_f64(r, y, 1, n, tr));
        if (s && !tr)
            for (int64_t i = 0; i < n; i++) x[i] *= s[i];
        dec_xform_apply_ref(&xf, x, tmp);
        if (s && tr)
            for (int64_t i = 0; i < n; i++) x[i] *= s[i];
        const double e = rel_l2(x, y, n);
        CHECK_MSG(e < 2e-6, "%s n=%lld transpose %d: relative error %.3g", what, (long long)n, tr, e);
        dec_xform_free(&xf);
    }
    free(x), free(y), free(tmp);
}

/* check_rot on a fresh rotation of that kind. */
static void check_kind(harp_rot_kind kind, int64_t n, const harp_rot_params *p, uint64_t seed, const char *what) {
    harp_rot *r = NULL;
    CHECK_OK(harp_rot_create(kind, n, p, seed, &r));
    check_rot(r, what);
    harp_rot_destroy(r);
}

/* Which stages the device keeps in fp32: none of an RHT (±1 Hadamard blocks, fp16 exact); every learned
 * stage of a butterfly and none of its fixed Hadamard stage (hadamard schedule, 1536 = 128 · 12). */
static void check_stage_precision(void) {
    harp_rot *r = NULL;
    dec_xform xf;
    const int8_t *s = NULL;
    CHECK_OK(harp_rot_create(HARP_ROT_RHT, 1536, NULL, 3, &r));
    CHECK_OK(dec_xform_from_rot(r, 0, &xf, &s));
    int f32 = 0;
    for (int i = 0; i < xf.nstages; i++) f32 += dec_xstage_needs_f32(&xf.st[i], xf.n);
    CHECK_MSG(xf.nstages > 0 && f32 == 0, "rht 1536: %d of %d stages would be fp32", f32, xf.nstages);
    dec_xform_free(&xf);
    harp_rot_destroy(r);
    harp_rot_params p;
    harp_rot_params_default(&p);
    p.theta_init_scale = 0.3;
    p.schedule = HARP_BF_SCHEDULE_HADAMARD;
    CHECK_OK(harp_rot_create(HARP_ROT_BUTTERFLY, 1536, &p, 3, &r));
    CHECK_OK(dec_xform_from_rot(r, 0, &xf, &s));
    int shared16 = 0, learned32 = 0, learned = 0;
    for (int i = 0; i < xf.nstages; i++) {
        const int need = dec_xstage_needs_f32(&xf.st[i], xf.n);
        if (xf.st[i].shared) shared16 += !need;
        else learned++, learned32 += need;
    }
    CHECK_MSG(learned > 0 && learned32 == learned, "butterfly: %d of %d learned stages fp32", learned32, learned);
    CHECK_MSG(shared16 >= 1, "butterfly (hadamard schedule): the fixed Hadamard stage is not fp16-exact");
    dec_xform_free(&xf);
    harp_rot_destroy(r);
}

static void test_rotations(void) {
    static const int64_t had_n[] = {172, 1536, 688, 512};
    for (size_t i = 0; i < sizeof had_n / sizeof had_n[0]; i++) {
        check_kind(HARP_ROT_RHT, had_n[i], NULL, 5, "rht");
        for (int sched = 0; sched < 2; sched++)
            for (int passes = 1; passes <= 2; passes++) {
                harp_rot_params p;
                harp_rot_params_default(&p);
                p.theta_init_scale = 0.3;
                p.schedule = sched;
                p.n_passes = passes;
                check_kind(HARP_ROT_BUTTERFLY, had_n[i], &p, 7, sched ? "butterfly (hadamard schedule)" : "butterfly");
            }
    }
    harp_rot_params p;
    harp_rot_params_default(&p);
    p.gsr_signs = 1;
    check_kind(HARP_ROT_GSR, 1024, &p, 9, "gsr");
    check_stage_precision();
    check_kind(HARP_ROT_KRON, 96, NULL, 4, "kron");
    harp_rot *r = NULL;
    CHECK_OK(harp_rot_create(HARP_ROT_RANDOM_ORTHOGONAL, 64, NULL, 4, &r));
    dec_xform xf;
    const int8_t *s = NULL;
    CHECK(dec_xform_from_rot(r, 0, &xf, &s) == HARP_ERR_UNSUPPORTED);
    harp_rot_destroy(r);
}

/* dec_linear_ref (the engine's twin) vs harp_qtensor_apply_ref on one tensor. */
static void check_linear_twin(harp_qtype type, harp_tcode tcode, int64_t m, int64_t n, int rot, uint64_t seed) {
    harp_qtensor w;
    dec_linear L;
    harp_status st = make_linear(type, tcode, m, n, rot, seed, "test linear", &w, &L);
    if (st) return;
    const int rows = 3;
    harp_rng rng;
    harp_rng_seed(&rng, 7);
    float *X = malloc(sizeof(float) * rows * n), *Y = malloc(sizeof(float) * rows * m), *R = malloc(sizeof(float) * rows * m);
    double *a = malloc(sizeof(double) * rows * m), *b = malloc(sizeof(double) * rows * m);
    for (int64_t i = 0; i < rows * n; i++) X[i] = (float)harp_rng_normal(&rng);
    CHECK_OK(dec_linear_ref(&L, X, rows, Y));
    CHECK_OK(harp_qtensor_apply_ref(&w, X, rows, R));
    for (int64_t i = 0; i < rows * m; i++) a[i] = Y[i], b[i] = R[i];
    /* split fp16 activations (h + lo) carry the input to ~2^-22; the rest is fp32 vs double
       transforms (the reference rotates in fp32) */
    const double e = rel_l2(a, b, rows * m);
    CHECK_MSG(e < 1e-5, "%s (decode type %d) %lldx%lld rot %d: twin vs qtensor reference, relative L2 %.3g",
              harp_qtype_name(type), (int)L.q.qtype, (long long)m, (long long)n, rot, e);
    free(X), free(Y), free(R), free(a), free(b);
    dec_linear_free(&L);
    harp_qtensor_free(&w);
}

static void test_linear_twin(void) {
    static const harp_qtype types[] = {HARP_QTYPE_E8P2, HARP_QTYPE_RVQ3, HARP_QTYPE_RVQ4, HARP_QTYPE_INT2,
                                       HARP_QTYPE_INT3, HARP_QTYPE_INT4, HARP_QTYPE_INT8, HARP_QTYPE_F16, HARP_QTYPE_LDP2};
    static const int64_t shapes[][2] = {{96, 172}, {1536, 512}, {40, 256}};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int rot = 0; rot < 3; rot++)
                check_linear_twin(types[ti], HARP_TCODE_HYB, shapes[si][0], shapes[si][1], rot, 100 + ti * 10 + si);
    /* QTIP folders' tensors (trellis quantizer, every code; small: the Viterbi search is the cost) */
    static const struct { harp_qtype t; harp_tcode c; } qtip[] = {
        {HARP_QTYPE_QTIP2, HARP_TCODE_1MAD}, {HARP_QTYPE_QTIP2, HARP_TCODE_3INST}, {HARP_QTYPE_QTIP2, HARP_TCODE_HYB},
        {HARP_QTYPE_QTIP3, HARP_TCODE_HYB}, {HARP_QTYPE_QTIP4, HARP_TCODE_1MAD}};
    for (size_t i = 0; i < sizeof qtip / sizeof qtip[0]; i++)
        for (int rot = 0; rot < (qtip[i].c == HARP_TCODE_HYB && qtip[i].t == HARP_QTYPE_QTIP2 ? 3 : 1); rot++)
            check_linear_twin(qtip[i].t, qtip[i].c, 40, 48, rot, 500 + i);
    /* a type without a GPU kernel is refused naming the group */
    harp_qtensor w;
    CHECK_OK(harp_qtensor_init(&w, HARP_QTYPE_BF16, 8, 8, 0));
    dec_linear L;
    CHECK(dec_linear_from_qtensor(&w, "layers.0.qkv", &L) == HARP_ERR_UNSUPPORTED);
    CHECK(strstr(harp_last_error(), "layers.0.qkv") != NULL);
    harp_qtensor_free(&w);
}

int main(void) {
    harp_set_log_level(HARP_LOG_NONE);
    test_rotations();
    test_linear_twin();
    return t_done();
}
