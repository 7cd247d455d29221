/* Fast fp32 nearest-E8P-codeword search for the proxy target (algorithms.md §5.2.2): the fp32
 * instantiation of quant/e8p_nearest_tpl.h (the search harp_e8p_encode runs in fp64, same algorithm
 * and tie rule — first coset, then lowest abs index; only the arithmetic is fp32, and ‖y‖² is added
 * after the per-coset minimum, so an exact near-tie may resolve the other way — harmless for a
 * stop-gradient target), plus a pruned scan.
 *
 * nearest_ref is the template's full scan of all 2×256 (coset, abs) pairs. nearest (the one used) gives
 * the same answer bit for bit while scanning few of them: the 256 abs vectors fall into 8 permutation
 * orbits (sorted values 2.5/1.5/0.5 patterns), and by the rearrangement inequality a·|y| ≤ â↓·|y|↓ for
 * every member a of an orbit with sorted values â↓, so ‖y‖² + ‖â‖² − 2 â↓·|y|↓ (+ 2·min|y| when the
 * orbit's parity forces a sign flip, since the flipped term a_i|y_i| ≥ ½·min|y|) bounds every member's
 * distance from below. Orbits are visited in bound order and the scan stops once the bound exceeds the
 * best distance found by more than the fp32 rounding of either side (tol below), so a skipped member
 * is strictly worse than the selection and ties resolve as in the full scan. Members are evaluated with
 * the very same fp32 expression as the full scan. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "harpfit/hf_internal.h"

#define E8P_F32 1
#include "quant/e8p_nearest_tpl.h"
typedef e8p_vf_f32 v8f;
typedef e8p_vi_f32 v8i;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Orbit-ordered copy of the table, each orbit padded to whole 8-vectors (padding: ‖a‖² = +∞). */
#define NORB 8
#define NPAD 288
static float g_pabs[8][NPAD] __attribute__((aligned(32)));
static float g_pn2[NPAD] __attribute__((aligned(32)));
static int32_t g_pidx[NPAD] __attribute__((aligned(32)));
static float g_osort[8][NORB] __attribute__((aligned(32))); /* [i][o]: i-th largest value of orbit o */
static float g_on2[NORB] __attribute__((aligned(32)));
static int32_t g_oodd[NORB] __attribute__((aligned(32)));
static int32_t g_o0[NORB], g_o1[NORB];        /* parity, first and end 8-vector */
static int g_norb;

static void build(void) {
    const e8p_tab_f32 *tb = e8p_tables_f32();
    /* orbits: abs vectors with the same sorted values, in order of first appearance */
    float key[256][8];
    int orb[256];
    for (int a = 0; a < 256; a++) {
        for (int i = 0; i < 8; i++) key[a][i] = tb->abs[i][a];
        for (int i = 1; i < 8; i++)
            for (int j = i; j > 0 && key[a][j] > key[a][j - 1]; j--) {
                float t = key[a][j];
                key[a][j] = key[a][j - 1], key[a][j - 1] = t;
            }
        orb[a] = -1;
        for (int o = 0; o < g_norb && orb[a] < 0; o++)
            if (memcmp(key[a], key[g_o0[o]], sizeof key[a]) == 0) orb[a] = o;
        if (orb[a] < 0 && g_norb < NORB) {
            orb[a] = g_norb;
            g_o0[g_norb++] = a; /* temporarily: a representative */
        }
    }
    int pos = 0;
    for (int o = 0; o < g_norb; o++) {
        int rep = g_o0[o];
        for (int i = 0; i < 8; i++) g_osort[i][o] = key[rep][i];
        g_on2[o] = tb->n2[rep];
        g_oodd[o] = tb->odd[rep];
        g_o0[o] = pos / 8;
        for (int a = 0; a < 256; a++)
            if (orb[a] == o && pos < NPAD) {
                for (int i = 0; i < 8; i++) g_pabs[i][pos] = tb->abs[i][a];
                g_pn2[pos] = tb->n2[a], g_pidx[pos++] = a;
            }
        while (pos % 8 && pos < NPAD) {
            for (int i = 0; i < 8; i++) g_pabs[i][pos] = 0;
            g_pn2[pos] = INFINITY, g_pidx[pos++] = 1 << 20;
        }
        g_o1[o] = pos / 8;
    }
}

/* 1 when the orbit tables cover all 256 abs vectors exactly once (checked by the tests). */
int hf_e8p_orbits_ok(void) {
    pthread_once(&g_once, build);
    int seen[256] = {0}, cnt = 0;
    for (int o = 0; o < g_norb; o++)
        for (int k = g_o0[o] * 8; k < g_o1[o] * 8; k++) {
            if (g_pidx[k] >= 256) continue;
            int a = g_pidx[k];
            if (seen[a]++ || e8p_tables_f32()->odd[a] != g_oodd[o]) return 0;
            cnt++;
        }
    return cnt == 256 && g_norb == NORB;
}

#define self(m, a, b) ((v8f)(((v8i)(a) & (m)) | ((v8i)(b) & ~(m))))

/* The codeword of coset bp, abs vector ba, signs of y (neg) with the parity fix on the smallest term. */
static inline HARP_ALWAYS_INLINE void emit(int bp, int ba, unsigned t, float *out) {
    const e8p_tab_f32 *tb = &e8p_t_f32;   /* built (pthread_once) before any search */
    const float shift = bp ? -0.25f : 0.25f;
    for (int i = 0; i < 8; i++) out[i] = ((t >> i) & 1 ? -tb->abs[i][ba] : tb->abs[i][ba]) + shift;
}

HARP_TARGET_CLONES
static void nearest_ref(const float *x, float *out) {
    int bp, ba;
    unsigned t;
    e8p_search_f32(x, &bp, &ba, &t);
    emit(bp, ba, t, out);
}

/* 8 floats sorted descending, branch-free (Batcher's 19-comparator network, unrolled to max/min). */
#define CAS(i, j)                                                                                            \
    do {                                                                                                     \
        float a_ = v##i, b_ = v##j;                                                                          \
        v##i = a_ > b_ ? a_ : b_;                                                                            \
        v##j = a_ > b_ ? b_ : a_;                                                                            \
    } while (0)
static inline HARP_ALWAYS_INLINE void sort8_desc(float *v) {
    float v0 = v[0], v1 = v[1], v2 = v[2], v3 = v[3], v4 = v[4], v5 = v[5], v6 = v[6], v7 = v[7];
    CAS(0, 1); CAS(2, 3); CAS(4, 5); CAS(6, 7); CAS(0, 2); CAS(1, 3); CAS(4, 6); CAS(5, 7); CAS(1, 2); CAS(5, 6);
    CAS(0, 4); CAS(3, 7); CAS(1, 5); CAS(2, 6); CAS(1, 4); CAS(3, 6); CAS(2, 4); CAS(3, 5); CAS(3, 4);
    v[0] = v0, v[1] = v1, v[2] = v2, v[3] = v3, v[4] = v4, v[5] = v5, v[6] = v6, v[7] = v7;
}
#undef CAS

/* The minimum over the lanes (min is exact, so the order does not matter); by pointer, as vector
 * returns change the ABI between the clones. */
static inline HARP_ALWAYS_INLINE float hmin8(const v8f *x) {
    v8f v = *x, w = HARP_SHUF8(v, v, 4, 5, 6, 7, 0, 1, 2, 3);
    v = self(w < v, w, v);
    w = HARP_SHUF8(v, v, 2, 3, 0, 1, 6, 7, 4, 5);
    v = self(w < v, w, v);
    w = HARP_SHUF8(v, v, 1, 0, 3, 2, 5, 4, 7, 6);
    v = self(w < v, w, v);
    return v[0];
}

static inline HARP_ALWAYS_INLINE int32_t hmin8i(const v8i *x) {
    v8i v = *x, w = HARP_SHUF8(v, v, 4, 5, 6, 7, 0, 1, 2, 3), lt = w < v;
    v = (w & lt) | (v & ~lt);
    w = HARP_SHUF8(v, v, 2, 3, 0, 1, 6, 7, 4, 5), lt = w < v;
    v = (w & lt) | (v & ~lt);
    w = HARP_SHUF8(v, v, 1, 0, 3, 2, 5, 4, 7, 6), lt = w < v;
    v = (w & lt) | (v & ~lt);
    return v[0];
}

/* Scan the members of orbit o in coset p into the running (distance, index) minimum of that coset. */
static inline HARP_ALWAYS_INLINE float scan_orbit(int o, const float *ay, int32_t nodd, v8f *bd, v8i *bi) {
    for (int c = g_o0[o]; c < g_o1[o]; c++) {
        const int a0 = c * 8;
        v8f t, dot, mn, ai;
        memcpy(&ai, &g_pabs[0][a0], 32);
        dot = mn = ai * ay[0];
        for (int i = 1; i < 8; i++) {
            memcpy(&ai, &g_pabs[i][a0], 32);
            t = ai * ay[i];
            dot += t;
            mn = self(t < mn, t, mn);
        }
        v8f n2;
        memcpy(&n2, &g_pn2[a0], 32);
        v8f flip = g_oodd[o] != nodd ? mn : (v8f){0};
        v8f d = n2 - 2 * (dot - 2 * flip);
        v8i idx;
        memcpy(&idx, &g_pidx[a0], 32);
        v8i lt = (d < *bd) | ((d == *bd) & (idx < *bi));
        *bd = self(lt, d, *bd);
        *bi = (idx & lt) | (*bi & ~lt);
    }
    return hmin8(bd);
}

HARP_TARGET_CLONES
static void nearest(const float *x, float *out) {
    float ay[2][8], yy[2], lb[2 * NORB], tol = 0;
    unsigned neg[2];
    int32_t nodd[2];
    for (int p = 0; p < 2; p++) {
        float srt[8], s = e8p_coset_f32(x, p, ay[p], &neg[p]);
        yy[p] = s;
        nodd[p] = __builtin_popcount(neg[p]) & 1;
        if (!(s <= 1e30f)) { /* NaN / overflow: no bound is safe */
            nearest_ref(x, out);
            return;
        }
        memcpy(srt, ay[p], sizeof srt);
        sort8_desc(srt);
        v8f bnd, col, on2, fl;
        memcpy(&col, g_osort[0], 32);
        bnd = col * srt[0];
        for (int i = 1; i < 8; i++) {
            memcpy(&col, g_osort[i], 32);
            bnd += col * srt[i];
        }
        v8i oodd;
        memcpy(&oodd, g_oodd, 32);
        memcpy(&on2, g_on2, 32);
        fl = self(oodd != nodd[p], (v8f){0} + 2 * srt[7], (v8f){0});
        v8f l = s + on2 - 2 * bnd + fl;
        memcpy(lb + p * NORB, &l, 32);
        tol = fmaxf(tol, 1e-5f * (25 + 2 * s));
    }
    int k = 0;
    for (int q = 1; q < 2 * NORB; q++) k = lb[q] < lb[k] ? q : k;
    const v8f inf8 = {INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY};
    v8f bd[2] = {inf8, inf8};
    v8i bi[2] = {{0}, {0}};
    float cmin[2] = {INFINITY, INFINITY};
    /* the most promising orbit first, then every other one whose bound does not exceed the best */
    cmin[k / NORB] = scan_orbit(k % NORB, ay[k / NORB], nodd[k / NORB], &bd[k / NORB], &bi[k / NORB]);
    float best = cmin[k / NORB] + yy[k / NORB];
    unsigned todo = 0;
    for (int q = 0; q < 2 * NORB; q++) todo |= (unsigned)(q != k && lb[q] <= best + tol) << q;
    while (todo) {
        const int q = __builtin_ctz(todo), p = q / NORB;
        todo &= todo - 1;
        if (!(lb[q] <= best + tol)) continue;
        float m = scan_orbit(q % NORB, ay[p], nodd[p], &bd[p], &bi[p]);
        cmin[p] = m < cmin[p] ? m : cmin[p];
        best = fminf(best, cmin[p] + yy[p]);
    }
    /* the same final selection as nearest_ref over what was scanned: per coset the lowest index among
     * the lanes holding the minimum (each lane holds its own lowest index for its value), then coset 1
     * only if strictly better */
    const v8i big = {1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30};
    float dmin[2];
    int amin[2];
    for (int p = 0; p < 2; p++) {
        const float m = hmin8(&bd[p]);
        v8i eq = bd[p] == m, cand = (bi[p] & eq) | (big & ~eq);
        amin[p] = hmin8i(&cand);
        dmin[p] = m + yy[p];
    }
    const int bp = dmin[1] < dmin[0], ba = amin[bp] & 255;
    emit(bp, ba, e8p_signs_f32(&e8p_t_f32, ba, neg[bp], ay[bp]), out);
}

void hf_e8p_nearest_f32(const float x[8], float out[8]) {
    pthread_once(&g_once, build);
    nearest(x, out);
}

void hf_e8p_nearest_ref_f32(const float x[8], float out[8]) {
    pthread_once(&g_once, build);
    nearest_ref(x, out);
}

void hf_e8p_tables(float abs_cm[8 * 256], float n2[256], int32_t odd[256]) {
    const e8p_tab_f32 *tb = e8p_tables_f32();
    memcpy(abs_cm, tb->abs, sizeof tb->abs);
    memcpy(n2, tb->n2, sizeof tb->n2);
    memcpy(odd, tb->odd, sizeof tb->odd);
}

void hf_quantize8_fast(harp_codebook cb, double resid, const double x[8], double q[8]) {
    pthread_once(&g_once, build);
    float xf[8], o[8];
    for (int i = 0; i < 8; i++) xf[i] = (float)x[i];
    nearest(xf, o);
    for (int i = 0; i < 8; i++) q[i] = o[i];
    if (cb == HARP_CODEBOOK_E8P12_RVQ4B) {
        for (int i = 0; i < 8; i++) xf[i] = (float)((x[i] - q[i]) * resid);
        nearest(xf, o);
        for (int i = 0; i < 8; i++) q[i] += o[i] / resid;
    } else if (cb == HARP_CODEBOOK_E8P12_RVQ3B) {
        double res[8], d1[8];
        for (int i = 0; i < 8; i++) res[i] = (x[i] - q[i]) * resid;
        harp_e81b_encode(res, d1);
        for (int i = 0; i < 8; i++) q[i] += d1[i] / resid;
    }
}
