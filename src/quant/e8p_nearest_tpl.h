/* E8P12 nearest-codeword search (algorithms.md §5.2.2), one source for both precisions: instantiated
 * in fp64 by src/quant/e8p_encode.c (the quantizer's exact encoder, harp_e8p_encode) and in fp32 by
 * src/harpfit/hf_e8p.c (the HARP fit's proxy target, which adds an orbit-pruned scan on top and checks
 * it against this full scan). For each ±¼ coset and each of the 256 abs vectors A[a] the best sign
 * pattern is the sign of y = x ∓ ¼, repaired for the lattice parity by flipping the cheapest
 * coordinate, so the squared distance is ‖A[a]‖² − 2·(A[a]·|y| − 2·flip·min_i A[a]_i|y_i|) + ‖y‖²;
 * ties go to the first (coset, abs index). The scan runs NL abs vectors per vector operation; lane
 * minima keep their lowest index, so the result is the sequential first minimum.
 *
 * Parameter: E8P_F32 (1: fp32, 0: fp64). It defines for the instantiation ELT (float / double), VEC
 * (a GNU vector of NL ELT), IVEC (NL integers of ELT's width), SFX(x) (suffix _f32 / _f64), ABS
 * (fabsf / fabs) and E8P_YY_IN_SCAN: fp64 adds ‖y‖² to every distance before the minimum over the
 * coset (the encoder's rounding), fp32 after it. The build has -ffp-contract=off, so every clone
 * performs the same IEEE operations. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "core/core.h"
#include "quant/e8p.h"

#if E8P_F32
#define ELT float
#define ABS fabsf
#define SFX(x) x##_f32
typedef int32_t e8p_ielt_f32;
#else
#define ELT double
#define ABS fabs
#define SFX(x) x##_f64
typedef int64_t e8p_ielt_f64;
#endif
#define E8P_YY_IN_SCAN (!E8P_F32)
typedef ELT SFX(e8p_vf) __attribute__((vector_size(32)));
typedef SFX(e8p_ielt) SFX(e8p_vi) __attribute__((vector_size(32)));
#define VEC SFX(e8p_vf)
#define IVEC SFX(e8p_vi)

/* The abs grid: A[a]_i coordinate-major, ‖A[a]‖², Σ_i A[a]_i odd (as lane integers). */
typedef struct SFX(e8p_tab) {
    ELT abs[8][256] __attribute__((aligned(64)));
    ELT n2[256] __attribute__((aligned(64)));
    __typeof__(((IVEC){0})[0]) odd[256] __attribute__((aligned(64)));
} SFX(e8p_tab);

static SFX(e8p_tab) SFX(e8p_t);
static pthread_once_t SFX(e8p_once) = PTHREAD_ONCE_INIT;

static void SFX(e8p_build)(void) {
    const uint8_t *A2 = e8p_abs2(), *asum = e8p_abs_sum(), *n2x4 = e8p_abs_norm2x4();
    for (int a = 0; a < E8P_NABS; a++) {
        for (int i = 0; i < 8; i++) SFX(e8p_t).abs[i][a] = (ELT)(0.5 * A2[8 * a + i]);
        SFX(e8p_t).n2[a] = (ELT)(0.25 * n2x4[a]);
        SFX(e8p_t).odd[a] = asum[a] & 1;
    }
}

static const SFX(e8p_tab) *SFX(e8p_tables)(void) {
    pthread_once(&SFX(e8p_once), SFX(e8p_build));
    return &SFX(e8p_t);
}

#define NL ((int)(sizeof(VEC) / sizeof(ELT)))
#define E8P_SEL(m, a, b) ((VEC)(((IVEC)(a) & (m)) | ((IVEC)(b) & ~(m))))

/* y = x − shift of coset p (+¼ for p = 0, −¼ for p = 1): |y|, its sign bits, and ‖y‖². */
static inline HARP_ALWAYS_INLINE ELT SFX(e8p_coset)(const ELT x[8], int p, ELT ay[8], unsigned *neg) {
    const ELT shift = p ? (ELT)-0.25 : (ELT)0.25;
    ELT yy = 0;
    unsigned ng = 0;
    for (int i = 0; i < 8; i++) {
        ELT y = x[i] - shift;
        ng |= (unsigned)(y < 0) << i;
        ay[i] = ABS(y);
        yy += y * y;
    }
    *neg = ng;
    return yy;
}

/* Minimum distance over the 256 abs vectors of one coset and its first index (yy is added to every
 * distance when E8P_YY_IN_SCAN, and ignored otherwise). */
static inline HARP_ALWAYS_INLINE void SFX(e8p_scan)(const SFX(e8p_tab) *tb, const ELT ay[8], int nodd, ELT yy, ELT *dmin,
                                                    int *amin) {
    VEC bd, t, dot, mn, ai, n2;
    IVEC bi = {0}, od, lane;
    for (int l = 0; l < NL; l++) bd[l] = (ELT)INFINITY, lane[l] = l;
    for (int a0 = 0; a0 < 256; a0 += NL) {
        memcpy(&ai, &tb->abs[0][a0], sizeof ai);
        dot = mn = ai * ay[0];
        for (int i = 1; i < 8; i++) {
            memcpy(&ai, &tb->abs[i][a0], sizeof ai);
            t = ai * ay[i];
            dot += t;
            mn = E8P_SEL(t < mn, t, mn);
        }
        memcpy(&od, &tb->odd[a0], sizeof od);
        memcpy(&n2, &tb->n2[a0], sizeof n2);
        VEC flip = E8P_SEL(od != nodd, mn, (VEC){0});
        VEC d = n2 - 2 * (dot - 2 * flip);
#if E8P_YY_IN_SCAN
        d += yy;
#else
        (void)yy;
#endif
        IVEC idx = lane + a0;
        IVEC lt = d < bd;
        bd = E8P_SEL(lt, d, bd);
        bi = (idx & lt) | (bi & ~lt);
    }
    ELT dm = bd[0];
    int am = (int)bi[0];
    for (int l = 1; l < NL; l++)
        if (bd[l] < dm || (bd[l] == dm && bi[l] < am)) dm = bd[l], am = (int)bi[l];
    *dmin = dm, *amin = am;
}

/* Sign bits of the codeword with abs vector a: those of y, with the parity repaired on the first
 * coordinate of least A[a]_i·|y_i|. */
static inline HARP_ALWAYS_INLINE unsigned SFX(e8p_signs)(const SFX(e8p_tab) *tb, int a, unsigned neg, const ELT ay[8]) {
    unsigned t = neg;
    if ((__builtin_popcount(neg) & 1) != tb->odd[a]) {
        int imn = 0;
        ELT mn = tb->abs[0][a] * ay[0];
        for (int i = 1; i < 8; i++) {
            ELT v = tb->abs[i][a] * ay[i];
            if (v < mn) mn = v, imn = i;
        }
        t ^= 1u << imn;
    }
    return t;
}

/* The nearest codeword of x: coset *bp, abs index *ba and sign bits *bt (first minimum over both
 * cosets; a non-finite x gives coset 0, abs 0, the parity-fixed zero sign pattern). */
static inline HARP_ALWAYS_INLINE void SFX(e8p_search)(const ELT x[8], int *bp, int *ba, unsigned *bt) {
    const SFX(e8p_tab) *tb = SFX(e8p_tables)();
    ELT best = (ELT)INFINITY, bay[8] = {0};
    int p0 = 0, a0 = 0;
    unsigned n0 = 0;
    for (int p = 0; p < 2; p++) {
        ELT ay[8], dmin;
        unsigned neg;
        int amin;
        ELT yy = SFX(e8p_coset)(x, p, ay, &neg);
        SFX(e8p_scan)(tb, ay, __builtin_popcount(neg) & 1, yy, &dmin, &amin);
#if !E8P_YY_IN_SCAN
        dmin += yy;
#endif
        if (dmin < best) {
            best = dmin, p0 = p, a0 = amin, n0 = neg;
            memcpy(bay, ay, sizeof bay);
        }
    }
    *bp = p0, *ba = a0;
    *bt = SFX(e8p_signs)(tb, a0, n0, bay);
}

#undef NL
#undef E8P_SEL
