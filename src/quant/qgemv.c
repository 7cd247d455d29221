/* Lattice decode-GEMV (e8p2 / rvq3 / rvq4) on harp_e8p_view: the decode tables, the portable
 * kernel, run-time dispatch over the row blocks, and the int8-activation dispatch. The reference
 * twin and the traits rows are in qt_e8p.c. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "quant/e8p.h"
#include "quant/qgemv_q8.h"
#include "quant/qgemv_tab.h"

_Static_assert(sizeof(float) == 4, "fp32");
_Static_assert(sizeof(((qk_tables *)0)->absf) == 256 * 8 * 4, "abs table");

/* ---- tables -------------------------------------------------------------------------------- */

static qk_tables g_tab;
static pthread_once_t g_tab_once = PTHREAD_ONCE_INIT;

static void build_tab(void) {
    const uint32_t *P = e8p_packed();
    for (int a = 0; a < 256; a++)
        for (int i = 0; i < 8; i++) {
            int nib = (int)((P[a] >> (4 * e8p_sigma[i])) & 15u);
            g_tab.absf[a][i] = (float)(2 * (nib - 8));
        }
    for (int b = 0; b < 256; b++) {
        unsigned par = (unsigned)__builtin_popcount((unsigned)b) & 1u;
        unsigned e = (unsigned)b ^ par;
        for (int i = 0; i < 8; i++) g_tab.sgn[b][i] = ((e >> e8p_sigma[i]) & 1u) ? 0x80000000u : 0u;
        g_tab.shift[b] = par ? -1.0f : 1.0f;
    }
    const float *E = e81b_codebook();
    for (int c = 0; c < 256; c++)
        for (int i = 0; i < 8; i++) g_tab.e81b[c][i] = 4.0f * E[8 * c + i];
}

const qk_tables *qk_tables_get(void) {
    pthread_once(&g_tab_once, build_tab);
    return &g_tab;
}

/* ---- portable kernel ----------------------------------------------------------------------- */

/* Same order as the AVX2 kernel: 8 lane accumulators per plane over the codes of a row, then the
 * lanes are reduced as ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). Only FMA rounding differs. */
static float lane_sum(const float l[8]) {
    float a0 = l[0] + l[4], a1 = l[1] + l[5], a2 = l[2] + l[6], a3 = l[3] + l[7];
    return (a0 + a2) + (a1 + a3);
}

/* acc += 4 · E8P(code) ⊙ xv: the abs pattern's sign bits flipped, then the ±1/4 shift (times 4). */
static inline void e8p_acc8(const qk_tables *t, uint16_t code, const float xv[8], float acc[8]) {
    const unsigned a = code >> 8, b = code & 255u;
    for (int i = 0; i < 8; i++) {
        uint32_t u;
        float f;
        memcpy(&u, &t->absf[a][i], 4);
        u ^= t->sgn[b][i];
        memcpy(&f, &u, 4);
        acc[i] += (f + t->shift[b]) * xv[i];
    }
}

void qk_gemv_rows_portable(const harp_e8p_view *w, const qk_tables *t, const float *x, float *y,
                           int32_t r0, int32_t r1) {
    const int32_t nc = w->ncode, n = w->n;
    for (int32_t r = r0; r < r1; r++) {
        const uint16_t *c0 = w->codes0 + (size_t)r * nc;
        float acc0[8] = {0}, acc1[8] = {0};
        for (int32_t k = 0; k < nc; k++) {
            float xv[8];
            for (int i = 0; i < 8; i++) xv[i] = 8 * k + i < n ? x[8 * k + i] : 0.0f;
            e8p_acc8(t, c0[k], xv, acc0);
            if (w->type == HARP_QTYPE_RVQ4)
                e8p_acc8(t, ((const uint16_t *)w->codes1)[(size_t)r * nc + k], xv, acc1);
            else if (w->type == HARP_QTYPE_RVQ3) {
                uint8_t c = ((const uint8_t *)w->codes1)[(size_t)r * nc + k];
                for (int i = 0; i < 8; i++) acc1[i] += t->e81b[c][i] * xv[i];
            }
        }
        float s0 = lane_sum(acc0), s1 = lane_sum(acc1);
        y[r] = (w->scale0 * s0 + w->scale1 * s1) * 0.25f;
    }
}

/* ---- dispatch ------------------------------------------------------------------------------ */

static int g_small_tables;
static int g_max_isa = HARP_QISA_AVX2;

void harp_qgemv_force_portable(int on) { g_max_isa = on ? HARP_QISA_PORTABLE : HARP_QISA_AVX2; }
void harp_qgemv_small_tables(int on) { g_small_tables = on != 0; }
void harp_qgemv_max_isa(harp_qisa isa) { g_max_isa = isa; }

/* The variant the one-row product runs now: the best the CPU has, capped by harp_qgemv_max_isa. (An
 * AVX-512 variant, two codes per 16-lane FMA, measured no faster — 0.87 vs 0.88 ms for 4096×4096 —
 * because the decode is bound by the table loads, not by vector width; it was dropped.) */
harp_qisa qk_isa(void) {
    if (g_max_isa >= HARP_QISA_AVX2 && qk_have_avx2()) return HARP_QISA_AVX2;
    return HARP_QISA_PORTABLE;
}

const char *harp_qgemv_isa(void) {
    switch (qk_isa()) {
    case HARP_QISA_AVX2: return "avx2";
    default: return "portable";
    }
}

#define QK_ROW_BLOCK 16

void qk_gemv_run(const harp_e8p_view *w, const float *x, float *y, harp_qisa isa) {
    const qk_tables *t = qk_tables_get();
    /* NULL if the 512 KiB table could not be allocated: the small tables give the same bits. */
    const int8_t *full = isa != HARP_QISA_PORTABLE && !g_small_tables ? e8p_codebook_x4() : NULL;
    const int32_t nb = (w->m + QK_ROW_BLOCK - 1) / QK_ROW_BLOCK;
    /* Rows are independent and each is summed by one thread in a fixed order: deterministic for
     * any thread count and schedule. Dynamic chunks of 64 rows: on a shared machine one worker
     * may be descheduled, and a static split would make the whole GEMV wait for it. Small
     * matrices stay on one thread (fork/join costs more than the work). */
    const int par = (int64_t)w->m * w->ncode >= 32768;
#pragma omp parallel for schedule(dynamic, 4) if (par)
    for (int32_t bi = 0; bi < nb; bi++) {
        int32_t r0 = bi * QK_ROW_BLOCK, r1 = r0 + QK_ROW_BLOCK < w->m ? r0 + QK_ROW_BLOCK : w->m;
        if (isa == HARP_QISA_AVX2) qk_gemv_rows_avx2(w, t, full, x, y, r0, r1);
        else qk_gemv_rows_portable(w, t, x, y, r0, r1);
    }
}

/* ---- int8-activation path (qgemv_q8.c) ---------------------------------------------------- */

const char *harp_qgemv_q8_isa(void) { return qk_q8_simd() ? "avx512vnni" : "portable"; }

int qk_q8_simd(void) { return g_max_isa >= HARP_QISA_AVX2 && qk_have_avx512q8(); }

harp_status qk_q8_run(const harp_e8p_view *w, const float *x, float *y, int simd) {
    const int32_t nblk = (w->n + QK_Q8_BLOCK - 1) / QK_Q8_BLOCK;
    qk_xq8 q;
    void *buf = harp_aligned_alloc((size_t)nblk * (QK_Q8_BLOCK + 8), "int8 activations");
    if (!buf) return HARP_ERR_OOM;
    q.xt = buf;
    q.scale = (float *)(q.xt + (size_t)nblk * QK_Q8_BLOCK);
    q.sum = (int32_t *)(q.scale + nblk);
    qk_q8_quantize_x(x, w->n, &q);
    qk_q8_tables();
    const int32_t nb = (w->m + QK_ROW_BLOCK - 1) / QK_ROW_BLOCK;
    const int par = (int64_t)w->m * w->ncode >= 32768;
#pragma omp parallel for schedule(dynamic, 4) if (par)
    for (int32_t bi = 0; bi < nb; bi++) {
        int32_t r0 = bi * QK_ROW_BLOCK, r1 = r0 + QK_ROW_BLOCK < w->m ? r0 + QK_ROW_BLOCK : w->m;
        if (simd) qk_q8_rows_avx512(w, &q, y, r0, r1);
        else qk_q8_rows_portable(w, &q, y, r0, r1);
    }
    harp_free_aligned(buf);
    return HARP_OK;
}
