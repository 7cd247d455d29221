/* Row-chunk driver of the row-parallel solvers (quant_internal.h): rows are independent given the
 * Hessian, so fixed chunks of rows run in parallel, each with single-threaded BLAS inside (the
 * caller wraps it in harp_blas_serial_begin / end). The chunking does not depend on the thread
 * count, so every chunk issues the same BLAS calls on the same data for any number of threads:
 * results are bit-identical for 1, 2, … threads. */
#include <omp.h>

#include "core/core.h"
#include "quant/quant_internal.h"

harp_status harp_rowchunks_spec_run(const harp_rowchunks_spec *s) {
    const int64_t m = s->m, chunk = s->chunk, unit = s->unit > 0 ? s->unit : 1, nchunks = (m + chunk - 1) / chunk;
    int64_t done = 0;
    int cancel = 0, oom = 0;
#pragma omp parallel
    {
        void *ws = s->ws_new(s->ws_arg);
        if (!ws) {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t ch = 0; ch < nchunks; ch++) {
            int stop;
#pragma omp atomic read
            stop = cancel;
            if (stop || !ws) continue;
            const int64_t r0 = ch * chunk, rc = m - r0 < chunk ? m - r0 : chunk;
            s->fn(s->ctx, r0, rc, ws);
            int64_t d;
#pragma omp atomic capture
            d = done += rc * unit;
            /* the callback only ever runs on the calling thread */
            if (s->progress && omp_get_thread_num() == 0 && s->progress(s->progress_user, s->stage, d, m * unit)) {
#pragma omp atomic write
                cancel = 1;
            }
        }
        if (ws) s->ws_free(ws);
    }
    if (oom) return harp_err(HARP_ERR_OOM, "%s: out of memory for the %s workspaces", s->what, s->stage);
    if (cancel) return harp_err(HARP_ERR_CANCELLED, "%s: cancelled", s->what);
    if (s->progress && s->progress(s->progress_user, s->stage, m * unit, m * unit))
        return harp_err(HARP_ERR_CANCELLED, "%s: cancelled", s->what);
    return HARP_OK;
}

static void *scratch_new(const void *bytes) { return harp_aligned_alloc(*(const size_t *)bytes, "row-chunk scratch"); }
static void scratch_free(void *p) { harp_free_aligned(p); }

harp_status harp_rowchunks_run(int64_t m, int64_t chunk, size_t scratch_bytes, harp_rowchunk_fn fn, const void *ctx,
                               const char *stage, harp_progress_fn progress, void *progress_user, const char *what) {
    const harp_rowchunks_spec s = {.m = m, .chunk = chunk, .unit = 1, .fn = fn, .ctx = ctx, .ws_new = scratch_new,
                                   .ws_free = scratch_free, .ws_arg = &scratch_bytes, .stage = stage,
                                   .progress = progress, .progress_user = progress_user, .what = what};
    return harp_rowchunks_spec_run(&s);
}
