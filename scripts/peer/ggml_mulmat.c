/* Peer timing harness (not part of harp): batch-1 (or --batch B) ggml_mul_mat on ggml's CUDA backend
 * for f16, q4_0, q2_K, iq2_xxs and iq2_xs at the Llama-2-7B linear shapes, with cold weights (as
 * many distinct weight tensors as needed for ≥ --cold-mb MB, used in turn inside one ggml graph),
 * so its rows sit beside `harp bench gemv --gpu` in the same device run (docs/results/decode-gpu.md).
 * Built against a ggml snapshot by scripts/peer/build_ggml_peer.sh; uses only ggml's public API and
 * its block definitions (ggml-common.h) to fill blocks with random codes and valid fp16 scales.
 * Timing: wall clock around ggml_backend_graph_compute (synchronous; ggml replays its CUDA graph
 * after two warm-up calls), median of --reps, divided by the number of mul_mat nodes.
 * Output: one JSON object per line (type, m, n, batch, us, weight_bytes, gbps, copies, calls). */
#define _POSIX_C_SOURCE 200809L
#define GGML_COMMON_DECL_C
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-common.h"
#include "ggml-cuda.h"
#include "ggml.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    uint64_t x = rng_state += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* fp16 in ±[1/16, 1/8) (finite, never zero). */
static uint16_t rnd_half(void) { return (uint16_t)((rnd() & 0x83FFu) | 0x2C00u); }

static void fill_blocks(enum ggml_type t, uint8_t *p, size_t bytes) {
    for (size_t i = 0; i < bytes; i += 8) {
        uint64_t r = rnd();
        memcpy(p + i, &r, bytes - i < 8 ? bytes - i : 8);
    }
    const size_t bs = ggml_type_size(t);
    for (size_t off = 0; off + bs <= bytes; off += bs) {
        void *b = p + off;
        switch (t) {
        case GGML_TYPE_F16: {
            uint16_t *h = b;
            *h = rnd_half();
            break;
        }
        case GGML_TYPE_Q4_0: ((block_q4_0 *)b)->d = rnd_half(); break;
        case GGML_TYPE_Q2_K: ((block_q2_K *)b)->d = rnd_half(), ((block_q2_K *)b)->dmin = rnd_half(); break;
        case GGML_TYPE_IQ2_XXS: ((block_iq2_xxs *)b)->d = rnd_half(); break;
        case GGML_TYPE_IQ2_XS: ((block_iq2_xs *)b)->d = rnd_half(); break;
        default: break;
        }
    }
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void run(ggml_backend_t be, enum ggml_type t, int m, int n, int B, double cold_mb, int reps, int profile) {
    const size_t wbytes = ggml_row_size(t, n) * (size_t)m;
    int nc = (int)ceil(cold_mb * 1048576.0 / (double)wbytes);
    if (nc < 2) nc = 2;
    const int calls = nc < 16 ? (16 + nc - 1) / nc * nc : nc;
    struct ggml_init_params ip = {.mem_size = ggml_tensor_overhead() * (size_t)(nc + calls + 8) + ggml_graph_overhead_custom((size_t)calls + 8, false),
                                  .mem_buffer = NULL,
                                  .no_alloc = true};
    struct ggml_context *ctx = ggml_init(ip);
    struct ggml_tensor **W = calloc((size_t)nc, sizeof *W);
    for (int c = 0; c < nc; c++) W[c] = ggml_new_tensor_2d(ctx, t, n, m);
    struct ggml_tensor *x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, n, B);
    struct ggml_cgraph *gf = ggml_new_graph_custom(ctx, (size_t)calls + 8, false);
    for (int i = 0; i < calls; i++) ggml_build_forward_expand(gf, ggml_mul_mat(ctx, W[i % nc], x));
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(ctx, be);
    if (!buf) {
        fprintf(stderr, "ggml_mulmat: cannot allocate %zu x %d bytes\n", wbytes, nc);
        exit(1);
    }
    uint8_t *h = malloc(wbytes);
    fill_blocks(t, h, wbytes);
    for (int c = 0; c < nc; c++) ggml_backend_tensor_set(W[c], h, 0, wbytes);
    free(h);
    float *xv = malloc(sizeof(float) * (size_t)n * B);
    for (size_t i = 0; i < (size_t)n * B; i++) xv[i] = (float)((double)(rnd() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    ggml_backend_tensor_set(x, xv, 0, sizeof(float) * (size_t)n * B);
    free(xv);
    for (int w = 0; w < 3; w++) ggml_backend_graph_compute(be, gf);
    if (!profile) {
        double ts[256];
        if (reps > 256) reps = 256;
        for (int r = 0; r < reps; r++) {
            const double t0 = now_us();
            ggml_backend_graph_compute(be, gf);
            ts[r] = (now_us() - t0) / calls;
        }
        qsort(ts, (size_t)reps, sizeof ts[0], cmp_d);
        const double us = ts[reps / 2];
        printf("{\"bench\": \"ggml_mul_mat\", \"device\": \"gpu\", \"type\": \"%s\", \"shape\": \"%dx%d\", \"m\": %d, \"n\": %d, \"batch\": %d, "
               "\"us\": %.3f, \"weight_bytes\": %zu, \"gbps\": %.1f, \"copies\": %d, \"calls\": %d}\n",
               ggml_type_name(t), m, n, m, n, B, us, wbytes, (double)wbytes / (us * 1e-6) / 1e9, nc, calls);
        fflush(stdout);
    }
    ggml_backend_buffer_free(buf);
    ggml_free(ctx);
    free(W);
}

int main(int argc, char **argv) {
    const char *shapes = "4096x4096,11008x4096,4096x11008,12288x4096,22016x4096";
    const char *types = "f16,q4_0,q2_K,iq2_xxs,iq2_xs";
    int B = 1, reps = 30, profile = 0;
    double cold = 256;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--shapes") && i + 1 < argc) shapes = argv[++i];
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) types = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cold-mb") && i + 1 < argc) cold = atof(argv[++i]);
        else if (!strcmp(argv[i], "--profile")) profile = 1;
        else {
            fprintf(stderr, "usage: ggml_mulmat [--shapes MxN,...] [--types LIST] [--batch B] [--reps N] [--cold-mb MB] [--profile]\n");
            return 2;
        }
    }
    ggml_backend_t be = ggml_backend_cuda_init(0);
    if (!be) {
        fprintf(stderr, "ggml_mulmat: no CUDA backend\n");
        return 1;
    }
    char sbuf[512];
    snprintf(sbuf, sizeof sbuf, "%s", shapes);
    for (char *s = strtok(sbuf, ","); s; s = strtok(NULL, ",")) {
        int m = 0, n = 0;
        if (sscanf(s, "%dx%d", &m, &n) != 2) return 2;
        char tbuf[256];
        snprintf(tbuf, sizeof tbuf, "%s", types);
        char *save = NULL;
        for (char *tn = strtok_r(tbuf, ",", &save); tn; tn = strtok_r(NULL, ",", &save)) {
            enum ggml_type t = GGML_TYPE_COUNT;
            for (int k = 0; k < GGML_TYPE_COUNT; k++)
                if (ggml_type_name((enum ggml_type)k) && !strcmp(ggml_type_name((enum ggml_type)k), tn)) t = (enum ggml_type)k;
            if (t == GGML_TYPE_COUNT) {
                fprintf(stderr, "ggml_mulmat: unknown type %s\n", tn);
                return 2;
            }
            run(be, t, m, n, B, cold, reps, profile);
        }
    }
    ggml_backend_free(be);
    return 0;
}
