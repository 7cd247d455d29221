/* harp bench gemv: batch-1 GEMV of quantized matrices (E8P 2-bit, RVQ 3/4-bit, decoded on the
 * fly, with the fused input/output Hadamard transforms) against an fp32 sgemv (OpenBLAS) and an
 * fp16-stored GEMV (F16C), in a cache-resident and a streaming regime. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "harp/qkernels.h"
#include "harp/qtensor.h"
#include "harp/rotate.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define BG_HAVE_X86 1
#endif

/* ---- fp16 GEMV baseline ----------------------------------------------------------------------- */

static void f16_rows_scalar(const uint16_t *w, int n, const float *x, float *y, int r0, int r1) {
    for (int r = r0; r < r1; r++) {
        float s = 0;
        for (int j = 0; j < n; j++) s += harp_f16_to_f32(w[(size_t)r * n + j]) * x[j];
        y[r] = s;
    }
}

#ifdef BG_HAVE_X86
/* 4 rows × 16 columns per step: each x load feeds 8 FMAs, two accumulators per row hide the FMA
 * latency. The same shape of loop as the quantized kernel, so the comparison is about bytes and
 * decode, not loop structure. */
__attribute__((target("avx2,fma,f16c"))) static void f16_rows_avx2(const uint16_t *w, int n,
                                                                   const float *x, float *y,
                                                                   int r0, int r1) {
    const int n16 = n / 16 * 16;
    int r = r0;
    for (; r + 4 <= r1; r += 4) {
        const uint16_t *row[4] = {w + (size_t)r * n, w + (size_t)(r + 1) * n, w + (size_t)(r + 2) * n,
                                  w + (size_t)(r + 3) * n};
        __m256 acc[4][2];
        for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
        for (int j = 0; j < n16; j += 16) {
            const __m256 x0 = _mm256_loadu_ps(x + j), x1 = _mm256_loadu_ps(x + j + 8);
            for (int i = 0; i < 4; i++) {
                const __m256i h = _mm256_loadu_si256((const __m256i *)(row[i] + j));
                acc[i][0] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), x0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)), x1, acc[i][1]);
            }
        }
        for (int i = 0; i < 4; i++) {
            float s8[8], t = 0;
            _mm256_storeu_ps(s8, _mm256_add_ps(acc[i][0], acc[i][1]));
            for (int l = 0; l < 8; l++) t += s8[l];
            for (int j = n16; j < n; j++) t += harp_f16_to_f32(row[i][j]) * x[j];
            y[r + i] = t;
        }
    }
    if (r < r1) f16_rows_scalar(w, n, x, y, r, r1);
}

/* F16C from CPUID leaf 1 (ECX bit 29): not every compiler's __builtin_cpu_supports knows "f16c". */
static int have_f16c(void) {
    unsigned a, b, c, d;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c >> 29) & 1u;
}
#else
static int have_f16c(void) { return 0; }
static void f16_rows_avx2(const uint16_t *w, int n, const float *x, float *y, int r0, int r1) {
    f16_rows_scalar(w, n, x, y, r0, r1);
}
#endif

static void gemv_f16(const uint16_t *w, int m, int n, const float *x, float *y, int simd) {
#pragma omp parallel for schedule(dynamic, 4)
    for (int b = 0; b < (m + 15) / 16; b++) {
        int r0 = 16 * b, r1 = r0 + 16 < m ? r0 + 16 : m;
        if (simd) f16_rows_avx2(w, n, x, y, r0, r1);
        else f16_rows_scalar(w, n, x, y, r0, r1);
    }
}

/* ---- fused transforms: the rotation module's RHT ------------------------------------------------ */

/* Input side x ← x·V = (x ⊙ s_in)·Had_n, output side y ← ỹ·Uᵀ = (ỹ·Had_mᵀ) ⊙ s_out, exactly as a
 * QuIP# RHT linear does at inference (§2.2); Had_n = (hadK ⊗ H_2^k)/√n with QuIP#'s hadK (K = 172
 * for 11008). harp_qtensor_apply runs them (harp_rot_apply) around the GEMV. */

/* ---- benchmark driver ------------------------------------------------------------------------- */

enum { K_FP32, K_FP16, K_E8P2, K_E8P2_RAW, K_RVQ3, K_RVQ4, K_E8P2_Q8, K_RVQ3_Q8, K_RVQ4_Q8, K_E8P2_HARP,
       K_QTIP2, K_QTIP2_1MAD, K_LDP2, K_LDP2_A4, K_COUNT };
static const char *const kind_name[K_COUNT] = {"fp32",    "fp16",    "e8p2",    "e8p2_nohad", "rvq3",
                                               "rvq4",    "e8p2_q8", "rvq3_q8", "rvq4_q8",    "e8p2_harp",
                                               "qtip2",   "qtip2_1mad", "ldp2",  "ldp2_a4"};
/* ldp2 rows: RCP's non-uniform 2-bit type, group 128 (4 fp16 levels per group), no transforms;
 * ldp2_a4 quantizes x to int4 per token first (harp_ldp_gemv_a4). */
enum { BG_LDP_GROUP = 128 };
static int kind_ldp(int k) { return k == K_LDP2 || k == K_LDP2_A4; }
static size_t ldp_code_bytes(size_t m, size_t n) { return m * ((n + 3) / 4); }
/* QTIP 2-bit (trellis, docs/format/trellis.md) with the fused RHT transforms: random code words
 * (every bit string is a valid tail-biting stream) and, for hyb, a random fp16 table. */
static int kind_qtip(int k) { return k == K_QTIP2 || k == K_QTIP2_1MAD; }
/* The _q8 kinds run the same matrices with int8 activations (harp_qgemv_q8, fused transforms). */
static int kind_q8(int k) { return k == K_E8P2_Q8 || k == K_RVQ3_Q8 || k == K_RVQ4_Q8; }

typedef struct bench_ctx {
    int m, n, threads, json, simd16;
    unsigned kinds, regimes;   /* bit masks of what to run */
    int quick;
    double min_time;
    size_t stream_target;
    long long llc;
    const char *llc_source;
    float *x, *y, *oscale;
    harp_rot *rin, *rout;  /* RHT (QuIP#) */
    harp_rot *hin, *hout;  /* HARP butterflies with random θ (the same transform slots) */
    uint16_t tlut[1024];   /* qtip2: the HYB table (random fp16) */
} bench_ctx;

static size_t kind_bytes(int k, size_t m, size_t n) {
    size_t nc = (n + 7) / 8;
    switch (k) {
    case K_FP32: return 4 * m * n;
    case K_FP16: return 2 * m * n;
    case K_RVQ3: case K_RVQ3_Q8: return 3 * m * nc;
    case K_RVQ4: case K_RVQ4_Q8: return 4 * m * nc;
    case K_LDP2: case K_LDP2_A4: return ldp_code_bytes(m, n) + 8 * m * ((n + BG_LDP_GROUP - 1) / BG_LDP_GROUP);
    case K_QTIP2: case K_QTIP2_1MAD: return 2 * 32 * ((m + 15) / 16) * ((n + 15) / 16);
    default: return 2 * m * nc;
    }
}

/* One matrix-vector product of copy `c` of a kind's weights. */
static void run_once(bench_ctx *b, int k, const uint8_t *base, size_t bytes) {
    if (k == K_FP32) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, b->m, b->n, 1.0f, (const float *)base, b->n, b->x,
                    1, 0.0f, b->y, 1);
        return;
    }
    if (k == K_FP16) {
        gemv_f16((const uint16_t *)base, b->m, b->n, b->x, b->y, b->simd16);
        return;
    }
    if (kind_ldp(k)) {
        harp_qtensor w;
        harp_qtensor_init(&w, HARP_QTYPE_LDP2, b->m, b->n, BG_LDP_GROUP);
        const size_t codes = ldp_code_bytes((size_t)b->m, (size_t)b->n);
        w.planes[0].data = base, w.planes[0].nbytes = codes;
        w.planes[1].data = base + codes, w.planes[1].nbytes = bytes - codes;
        if (k == K_LDP2) harp_qtensor_apply(&w, b->x, 1, b->y, 0);
        else harp_ldp_gemv_a4(&w, b->x, b->y);
        return;
    }
    if (kind_qtip(k)) {
        static const float ws = 0.02f;
        const int32_t code = k == K_QTIP2 ? 3 : 1; /* harp_tcode: hyb, 1mad */
        harp_qtensor w;
        harp_qtensor_init(&w, HARP_QTYPE_QTIP2, b->m, b->n, 0);
        w.planes[0].data = base, w.planes[0].nbytes = bytes;
        if (k == K_QTIP2) w.planes[1].data = b->tlut, w.planes[1].nbytes = sizeof b->tlut;
        w.planes[2].data = &ws, w.planes[2].nbytes = sizeof ws;
        w.planes[3].data = &code, w.planes[3].nbytes = sizeof code;
        harp_qtensor_derive(&w);
        w.xf.rot_in = b->rin, w.xf.rot_out = b->rout, w.xf.out_mul = b->oscale;
        harp_qtensor_apply(&w, b->x, 1, b->y, 0);
        return;
    }
    /* a view of this copy's code planes; the transforms are the context's (borrowed, never freed) */
    const harp_qtype type = k == K_RVQ3 || k == K_RVQ3_Q8 ? HARP_QTYPE_RVQ3
                            : k == K_RVQ4 || k == K_RVQ4_Q8 ? HARP_QTYPE_RVQ4
                                                            : HARP_QTYPE_E8P2;
    static const float wscale[2] = {0.02f, 0.02f / 3.45f};
    harp_qtensor w;
    harp_qtensor_init(&w, type, b->m, b->n, 0);
    const size_t plane = 2 * (size_t)b->m * (size_t)((b->n + 7) / 8);
    w.planes[0].data = base;
    w.planes[0].nbytes = plane;
    if (type != HARP_QTYPE_E8P2) {
        w.planes[1].data = base + plane;
        w.planes[1].nbytes = bytes - plane;
    }
    w.planes[type == HARP_QTYPE_E8P2 ? 1 : 2].data = wscale;
    w.planes[type == HARP_QTYPE_E8P2 ? 1 : 2].nbytes = sizeof wscale;
    harp_qtensor_derive(&w);
    if (k != K_E8P2_RAW) {
        const int harp = k == K_E8P2_HARP;
        w.xf.rot_in = harp ? b->hin : b->rin;
        w.xf.rot_out = harp ? b->hout : b->rout;
        w.xf.out_mul = b->oscale;
    }
    harp_qtensor_apply(&w, b->x, 1, b->y, kind_q8(k));
}

/* Times `copies` distinct copies cycled in order; returns seconds per product: the best of
 * BG_WINDOWS timing windows (each ≥ min_time / BG_WINDOWS and ≥ one full cycle), so that a burst of
 * load from other processes on a shared machine does not decide the figure. Same rule for every
 * kind. */
#define BG_WINDOWS 5
static double time_kind(bench_ctx *b, int k, const uint8_t *buf, size_t bytes, size_t copies) {
    for (size_t c = 0; c < copies && c < 2; c++) run_once(b, k, buf + c * bytes, bytes);
    double best = INFINITY;
    for (int win = 0; win < BG_WINDOWS; win++) {
        size_t calls = 0;
        double t0 = harp_time_s(), t;
        do {
            for (size_t c = 0; c < copies; c++) run_once(b, k, buf + c * bytes, bytes);
            calls += copies;
            t = harp_time_s() - t0;
        } while (t < b->min_time / BG_WINDOWS || calls < 3);
        if (t / (double)calls < best) best = t / (double)calls;
    }
    return best;
}

static void fill_random(uint8_t *p, size_t n, harp_rng *rng, int k) {
    if (k == K_FP32) {
        float *f = (float *)p;
        for (size_t i = 0; i < n / 4; i++) f[i] = (float)harp_rng_normal(rng) * 0.02f;
    } else if (k == K_FP16) {
        uint16_t *h = (uint16_t *)p;
        for (size_t i = 0; i < n / 2; i++) h[i] = harp_f32_to_f16((float)harp_rng_normal(rng) * 0.02f);
    } else {
        for (size_t i = 0; i + 8 <= n; i += 8) {
            uint64_t u = harp_rng_u64(rng);
            memcpy(p + i, &u, 8);
        }
        for (size_t i = n / 8 * 8; i < n; i++) p[i] = (uint8_t)harp_rng_u64(rng);
    }
}

/* ldp2: random codes, then valid ordered fp16 levels (dec_ldp_random_planes, shared with the GPU bench). */
static void fill_ldp(uint8_t *p, size_t m, size_t n, harp_rng *rng) {
    dec_ldp_random_planes(rng, (int64_t)m, (int64_t)n, (int64_t)((n + BG_LDP_GROUP - 1) / BG_LDP_GROUP), p,
                          (uint16_t *)(void *)(p + ldp_code_bytes(m, n)));
}

static void emit(bench_ctx *b, int k, const char *regime, double sec, double fp32_sec,
                 double fp16_sec, size_t bytes, size_t copies) {
    double gbps = (double)bytes / sec / 1e9;
    /* a ratio whose baseline was not run this time is null (JSON) or "-" (text), never 0 */
    char r32[32] = "null", r16[32] = "null", t32[32] = "    -", t16[32] = "    -";
    if (fp32_sec > 0) snprintf(r32, sizeof r32, "%.4g", fp32_sec / sec), snprintf(t32, sizeof t32, "%5.2f", fp32_sec / sec);
    if (fp16_sec > 0) snprintf(r16, sizeof r16, "%.4g", fp16_sec / sec), snprintf(t16, sizeof t16, "%5.2f", fp16_sec / sec);
    if (b->json) {
        printf("{\"bench\":\"gemv\",\"kind\":\"%s\",\"m\":%d,\"n\":%d,\"regime\":\"%s\","
               "\"threads\":%d,\"seconds\":%.9g,\"gbps\":%.4g,\"speedup_vs_fp32\":%s,"
               "\"speedup_vs_fp16\":%s,\"stored_bytes\":%zu,\"working_set_bytes\":%zu,"
               "\"llc_bytes\":%lld,\"llc_source\":\"%s\",\"fused_transforms\":%s,\"isa\":\"%s\"}\n",
               kind_name[k], b->m, b->n, regime, b->threads, sec, gbps, r32, r16, bytes,
               bytes * copies, b->llc, b->llc_source,
               (k == K_E8P2 || k == K_RVQ3 || k == K_RVQ4 || k == K_E8P2_HARP || kind_q8(k) || kind_qtip(k)) ? "true" : "false",
               k == K_FP32   ? "openblas"
               : k == K_FP16 ? (b->simd16 ? "f16c" : "scalar")
               : kind_q8(k)  ? harp_qgemv_q8_isa()
               : kind_ldp(k) ? harp_ldp_gemv_isa(k == K_LDP2_A4)
               : kind_qtip(k) ? "trellis"
                             : harp_qgemv_isa());
    } else {
        printf("%-6s %5d x %-5d  %-10s %9.3f ms  %7.2f GB/s  x%s vs fp32  x%s vs fp16  (%zu copies, %.0f MB)\n",
               regime, b->m, b->n, kind_name[k], sec * 1e3, gbps, t32, t16, copies,
               (double)(bytes * copies) / 1e6);
    }
    fflush(stdout);
}

static int bench_shape(bench_ctx *b, harp_rng *rng) {
    int m = b->m, n = b->n;
    b->x = malloc(sizeof(float) * (size_t)n);
    b->y = malloc(sizeof(float) * (size_t)m);
    b->oscale = malloc(sizeof(float) * (size_t)m);
    if (!b->x || !b->y || !b->oscale) return -1;
    for (int j = 0; j < n; j++) b->x[j] = (float)harp_rng_normal(rng);
    for (int i = 0; i < 1024; i++) b->tlut[i] = harp_f32_to_f16((float)harp_rng_normal(rng));
    for (int i = 0; i < m; i++) b->oscale[i] = 0.9f + 0.1f * (float)harp_rng_uniform(rng);
    /* RHT for both sides; widths without a Hadamard construction are a usage error. */
    harp_rot_destroy(b->rin);
    harp_rot_destroy(b->rout);
    b->rin = b->rout = NULL;
    if (harp_rot_create(HARP_ROT_RHT, n, NULL, harp_rng_u64(rng), &b->rin) != HARP_OK ||
        harp_rot_create(HARP_ROT_RHT, m, NULL, harp_rng_u64(rng), &b->rout) != HARP_OK)
        cli_die(CLI_EXIT_USAGE, "--shapes %dx%d: %s", m, n, harp_last_error());
    /* HARP: the butterfly schedules of §4.2 at a random non-zero θ (as after fitting), blocks
     * precomputed as at load; same fused-transform slots as the RHT rows, so the ratio of the two
     * rows is the cost of the butterflies vs the Hadamard transforms. */
    harp_rot_destroy(b->hin);
    harp_rot_destroy(b->hout);
    b->hin = b->hout = NULL;
    if (harp_rot_create(HARP_ROT_BUTTERFLY, n, NULL, 1, &b->hin) != HARP_OK ||
        harp_rot_create(HARP_ROT_BUTTERFLY, m, NULL, 2, &b->hout) != HARP_OK)
        cli_die(CLI_EXIT_USAGE, "--shapes %dx%d: %s", m, n, harp_last_error());
    for (int side = 0; side < 2; side++) {
        harp_rot *r = side ? b->hout : b->hin;
        int64_t np = harp_rot_butterfly_num_params(r);
        double *th = malloc(sizeof(double) * (size_t)(np + 1));
        if (!th) return -1;
        for (int64_t q = 0; q < np; q++) th[q] = 0.05 * harp_rng_normal(rng);
        harp_status st = harp_rot_butterfly_set_theta(r, th);
        free(th);
        if (st != HARP_OK) cli_die(CLI_EXIT_FAIL, "harp rotation: %s", harp_last_error());
    }

    static const char *const regimes[2] = {"cache", "stream"};
    for (int g = 0; g < 2; g++) {
        double t32 = 0, t16 = 0;
        if (!(b->regimes & (1u << g))) continue;
        for (int k = 0; k < K_COUNT; k++) {
            if (!(b->kinds & (1u << k))) continue;
            size_t bytes = kind_bytes(k, (size_t)m, (size_t)n);
            size_t copies = g == 0 ? 1 : (b->stream_target + bytes - 1) / bytes;
            if (copies < 2 && g == 1) copies = 2;
            uint8_t *buf = harp_aligned_alloc(bytes * copies, "gemv benchmark weights");
            if (!buf) return -1;
            if (kind_ldp(k)) fill_ldp(buf, (size_t)m, (size_t)n, rng);
            else fill_random(buf, bytes, rng, k);
            /* Distinct addresses are what defeat the cache; the contents may repeat. */
            for (size_t c = 1; c < copies; c++) memcpy(buf + c * bytes, buf, bytes);
            double sec = time_kind(b, k, buf, bytes, copies);
            if (k == K_FP32) t32 = sec;
            if (k == K_FP16) t16 = sec;
            emit(b, k, regimes[g], sec, t32, t16, bytes, copies);
            harp_free_aligned(buf);
            if (!b->quick) usleep(200000);   /* let spinning BLAS / OpenMP workers go to sleep between kinds */
        }
    }
    harp_rot_destroy(b->rin);
    harp_rot_destroy(b->rout);
    harp_rot_destroy(b->hin);
    harp_rot_destroy(b->hout);
    b->rin = b->rout = b->hin = b->hout = NULL;
    free(b->x);
    free(b->y);
    free(b->oscale);
    return 0;
}

static long long llc_bytes(const char **source) {
    /* sysfs first (the cache the kernel reports for cpu0), then glibc's CPUID-derived figure. */
    for (int i = 0; i < 8; i++) {
        char path[128], buf[64];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        int level = 0;
        if (fscanf(f, "%d", &level) != 1) level = 0;
        fclose(f);
        if (level != 3) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        f = fopen(path, "r");
        if (!f) continue;
        long long v = 0;
        char unit = 0;
        if (fgets(buf, sizeof buf, f) && sscanf(buf, "%lld%c", &v, &unit) >= 1) {
            fclose(f);
            *source = "sysfs";
            return unit == 'K' ? v << 10 : unit == 'M' ? v << 20 : v;
        }
        fclose(f);
    }
#ifdef _SC_LEVEL3_CACHE_SIZE
    long v = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (v > 0) {
        *source = "sysconf";
        return v;
    }
#endif
    *source = "default";
    return 32ll << 20;
}

static unsigned parse_kinds(const char *list) {
    unsigned mask = 0;
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        int found = 0;
        for (int k = 0; k < K_COUNT; k++)
            if (strlen(kind_name[k]) == len && !strncmp(p, kind_name[k], len)) {
                mask |= 1u << k;
                found = 1;
            }
        if (!found) cli_die(CLI_EXIT_USAGE, "--kinds: unknown kind '%.*s'", (int)len, p);
        p += len;
        if (*p == ',') p++;
    }
    return mask;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: harp bench gemv [--json] [--threads N] [--shapes MxN,...] [--min-time S]\n"
            "                       [--llc-mb MB] [--max-stream-mb MB] [--quick]\n"
            "Batch-1 GEMV: fp32 sgemv (OpenBLAS), fp16 GEMV (F16C), E8P 2-bit with and without the\n"
            "fused Hadamard transforms (and with HARP butterflies), RVQ 3/4-bit (fused transforms), and the same with int8\n"
            "activations (_q8 kinds), cache-resident and streaming.\n"
            "  --json            one JSON object per line\n"
            "  --threads N       threads for every kernel (default 2)\n"
            "  --shapes LIST     default 4096x4096,11008x4096,4096x11008 (M rows x N cols)\n"
            "  --min-time S      seconds timed per measurement (default 0.5)\n"
            "  --llc-mb MB       last-level cache size (default: sysfs, else sysconf)\n"
            "  --max-stream-mb   cap on the streaming working set per kind (default 4096)\n"
            "  --kinds LIST      subset of fp32,fp16,e8p2,e8p2_nohad,rvq3,rvq4,e8p2_q8,rvq3_q8,\n"
            "                    rvq4_q8,e8p2_harp,qtip2,qtip2_1mad,ldp2,ldp2_a4 (_q8: int8 activations;\n"
            "                    e8p2_harp: E8P with HARP butterflies instead of RHT; qtip2: QTIP trellis\n"
            "                    2-bit, HYB / 1MAD code, with the RHT transforms; ldp2: RCP's non-uniform\n"
            "                    2-bit, group 128, no transforms; ldp2_a4: the same with int4\n"
            "                    activations per token; default all;\n"
            "                    speed-ups need fp32 / fp16 in the list)\n"
            "  --regime R        cache, stream or both (default both)\n"
            "  --isa I           cap the quantized kernel: avx2 or portable (default: best)\n"
            "  --quick           small shapes and working sets (smoke test)\n");
}

/* OpenMP threads that spin at barriers lose badly when the two cores are shared with other
 * processes (measured: 4x slower GEMVs), and libgomp reads OMP_WAIT_POLICY only at start-up, so
 * the benchmark re-executes itself once with OMP_WAIT_POLICY=passive unless the caller chose a
 * policy. OpenBLAS (its own pthreads) is unaffected. */
static void ensure_passive_wait(void) {
    if (getenv("OMP_WAIT_POLICY")) return;
    char *buf = NULL;
    size_t size = 0;
    if (harp_read_file("/proc/self/cmdline", &buf, &size) != HARP_OK) return;
    char *args[64];
    int na = 0;
    for (size_t i = 0; i < size && na < 63; i += strlen(buf + i) + 1) args[na++] = buf + i;
    args[na] = NULL;
    if (na > 0 && na < 63 && setenv("OMP_WAIT_POLICY", "passive", 1) == 0) {
        fflush(NULL);
        execv("/proc/self/exe", args);
    }
    free(buf);   /* exec failed: carry on with the default policy */
}

int bench_gemv(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--gpu")) return bench_gemv_gpu(argc, argv);
    ensure_passive_wait();
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"threads", required_argument, 0, 't'},
                                         {"shapes", required_argument, 0, 's'},
                                         {"min-time", required_argument, 0, 'T'},
                                         {"llc-mb", required_argument, 0, 'L'},
                                         {"max-stream-mb", required_argument, 0, 'X'},
                                         {"quick", no_argument, 0, 'q'},
                                         {"kinds", required_argument, 0, 'k'},
                                         {"regime", required_argument, 0, 'r'},
                                         {"isa", required_argument, 0, 'i'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    bench_ctx b;
    memset(&b, 0, sizeof b);
    b.threads = 2;
    b.min_time = 0.5;
    b.kinds = (1u << K_COUNT) - 1;
    b.regimes = 3;
    const char *shapes = "4096x4096,11008x4096,4096x11008";
    long long llc_override = 0, max_stream = 4096;
    int quick = 0, c;
    while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
        switch (c) {
        case 'j': b.json = 1; break;
        case 't': b.threads = (int)cli_parse_long("--threads", optarg, 1, 256); break;
        case 's': shapes = optarg; break;
        case 'T': b.min_time = cli_parse_double("--min-time", optarg, 0.0, 60.0); break;
        case 'L': llc_override = cli_parse_long("--llc-mb", optarg, 1, 1 << 20); break;
        case 'X': max_stream = cli_parse_long("--max-stream-mb", optarg, 1, 1 << 20); break;
        case 'q': quick = 1; break;
        case 'k': b.kinds = parse_kinds(optarg); break;
        case 'i':
            if (!strcmp(optarg, "avx2")) harp_qgemv_max_isa(HARP_QISA_AVX2);
            else if (!strcmp(optarg, "portable")) harp_qgemv_max_isa(HARP_QISA_PORTABLE);
            else cli_die(CLI_EXIT_USAGE, "--isa: expected avx2 or portable, got '%s'", optarg);
            break;
        case 'r':
            if (!strcmp(optarg, "cache")) b.regimes = 1;
            else if (!strcmp(optarg, "stream")) b.regimes = 2;
            else if (!strcmp(optarg, "both")) b.regimes = 3;
            else cli_die(CLI_EXIT_USAGE, "--regime: expected cache, stream or both, got '%s'", optarg);
            break;
        case 'h': usage(stdout); return 0;
        }
    }
    b.quick = quick;
    if (quick) {
        shapes = "256x512,172x344";
        b.min_time = 0.02;
        if (!llc_override) llc_override = 1;
    }
    b.llc = llc_override ? llc_override << 20 : llc_bytes(&b.llc_source);
    if (llc_override) b.llc_source = "flag";
    b.stream_target = (size_t)(4 * b.llc);
    if (b.stream_target > (size_t)max_stream << 20) {
        fprintf(stderr, "harp bench gemv: warning: streaming working set capped at %lld MB (< 4x LLC of %lld MB)\n",
                max_stream, b.llc >> 20);
        b.stream_target = (size_t)max_stream << 20;
    }
    harp_set_threads(b.threads);
    openblas_set_num_threads(b.threads);
    b.simd16 = have_f16c();
    if (!b.json)
        printf("harp bench gemv: %d threads, LLC %lld MB (%s), streaming working set >= %zu MB per kind, kernel %s, OMP_WAIT_POLICY=%s\n",
               b.threads, b.llc >> 20, b.llc_source, b.stream_target >> 20, harp_qgemv_isa(),
               getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "(default)");
    harp_rng rng;
    harp_rng_seed(&rng, 1234);
    const char *p = shapes;
    long m, n;
    while (bench_next_shape(&p, &m, &n)) {
        b.m = (int)m;
        b.n = (int)n;
        if (bench_shape(&b, &rng)) cli_die(CLI_EXIT_FAIL, "out of memory");
    }
    return 0;
}
