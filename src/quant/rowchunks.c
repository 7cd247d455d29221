/* Row-chunk driver of the GPTQ and LDLQ solvers (quant_internal.h): rows are independent given the
 * Hessian, so fixed chunks of rows run in parallel, each with single-threaded BLAS inside (the
 * caller wraps it in harp_blas_serial_begin / end). The chunking does not depend on the thread
 * count, so every chunk issues the same BLAS calls on the same data for any number of threads:
 * results are bit-identical for 1, 2, … threads. */
#include <omp.h>

#include "core/core.h"
#include "quant/quant_internal.h"

harp_status harp_rowchunks_run(int64_t m, int64_t chunk, size_t scratch_bytes, harp_rowchunk_fn fn, const void *ctx,
                               const char *stage, harp_progress_fn progress, void *progress_user, const char *what) {
    const int64_t nchunks = (m + chunk - 1) / chunk;
    int64_t rows_done = 0;
    int cancel = 0, oom = 0;
#pragma omp parallel
    {
        void *scratch = harp_aligned_alloc(scratch_bytes, "row-chunk scratch");
        if (!scratch) {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t ch = 0; ch < nchunks; ch++) {
            int stop;
#pragma omp atomic read
            stop = cancel;
            if (stop || !scratch) continue;
            const int64_t r0 = ch * chunk, rc = m - r0 < chunk ? m - r0 : chunk;
            fn(ctx, r0, rc, scratch);
            int64_t d;
#pragma omp atomic capture
            d = rows_done += rc;
            /* the callback only ever runs on the calling thread */
            if (progress && omp_get_thread_num() == 0 && progress(progress_user, stage, d, m)) {
#pragma omp atomic write
                cancel = 1;
            }
        }
        harp_free_aligned(scratch);
    }
    if (oom) return harp_err(HARP_ERR_OOM, "%s: out of memory for the %s scratch", what, stage);
    if (cancel) return harp_err(HARP_ERR_CANCELLED, "%s: cancelled", what);
    if (progress && progress(progress_user, stage, m, m)) return harp_err(HARP_ERR_CANCELLED, "%s: cancelled", what);
    return HARP_OK;
}
