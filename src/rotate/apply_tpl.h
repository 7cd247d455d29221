/* Row application through the kinds table, instantiated for float and double by apply.c (ELT, SFX, GEMM,
 * PREPARE: what the rotation must make before an apply in this precision). */

/* Elements of the work buffer for nr rows at once (the kinds table's contract, rot_internal.h): a full
 * tile of a kind with a rows function takes tile·(3n + 2·4096) + 64, fewer rows (nr + 2)·n + 64. */
static size_t SFX(apply_tmp_elems)(const rot_kind_ops *k, int64_t nr, int64_t n) {
    if (k->SFX(rows) && nr == k->tile) return (size_t)(k->tile * (3 * n + 2 * 4096) + 64);
    return (size_t)((nr + 2) * n + 64);
}

/* rows r0 … r0 + tile − 1 of X (fewer at the end) through the kind's rows function, or row by row */
static void SFX(apply_tile)(const harp_rot *r, ELT *X, int64_t rows, int64_t ld, int64_t r0, int64_t tile, ELT *tmp, int transpose) {
    const rot_kind_ops *k = r->ops;
    int64_t nr = rows - r0 < tile ? rows - r0 : tile;
    if (k->SFX(rows)) k->SFX(rows)(r, X + r0 * ld, nr, ld, tmp, transpose);
    else k->SFX(row)(r, X + r0 * ld, tmp, transpose, 0);
}

/* The rows of X through r: the reference row function on one thread, one BLAS product for the dense
 * kinds, or the kind's tiles of rows, threaded only when there is enough work to amortise waking the
 * team (below 2^19 elements — 2 MiB fp32 — one thread does it all). */
static harp_status SFX(apply_impl)(const harp_rot *r, ELT *X, int64_t rows, int64_t ld, int transpose, int ref) {
    if (!r || (!X && rows > 0)) return harp_err(HARP_ERR_INVALID_ARG, "rotation apply: NULL rotation or matrix");
    HARP_TRY(PREPARE(r));   /* fp64: the butterfly's fp64 blocks, made on first use */
    int64_t n = r->n;
    if (ld == 0) ld = n;
    if (rows < 0 || ld < n) return harp_err(HARP_ERR_SHAPE, "rotation apply: rows=%lld, ld=%lld < n=%lld", (long long)rows, (long long)ld, (long long)n);
    if (rows == 0) return HARP_OK;
    const rot_kind_ops *k = r->ops;
    if (!ref && k->gemm) {
        const int64_t chunk = 256;
        int64_t cr = rows < chunk ? rows : chunk;
        ELT *tmp = harp_xmalloc((size_t)cr * (size_t)n * sizeof(ELT), "rotation apply buffer");
        if (!tmp) return HARP_ERR_OOM;
        for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
            int64_t nr = rows - r0 < chunk ? rows - r0 : chunk;
            GEMM(CblasRowMajor, CblasNoTrans, transpose ? CblasTrans : CblasNoTrans, (int)nr, (int)n, (int)n, 1, X + r0 * ld,
                 (int)ld, SFX(dense_of)(r), (int)n, 0, tmp, (int)n);
            for (int64_t i = 0; i < nr; i++) memcpy(X + (r0 + i) * ld, tmp + i * n, (size_t)n * sizeof(ELT));
        }
        free(tmp);
        return HARP_OK;
    }
    if (ref) {
        ELT *tmp = harp_xmalloc((size_t)(2 * n + 64) * sizeof(ELT), "rotation apply buffer");
        if (!tmp) return HARP_ERR_OOM;
        for (int64_t i = 0; i < rows; i++) k->SFX(row)(r, X + i * ld, tmp, transpose, 1);
        free(tmp);
        return HARP_OK;
    }
    const int64_t tile = k->SFX(rows) ? k->tile : 1, ntiles = (rows + tile - 1) / tile;
    /* Below the threading threshold no OpenMP construct is entered at all: an inactive parallel
     * region plus a dynamic loop cost ≈ 2.3 µs per call (measured at one thread), as much as a
     * whole 1728-wide butterfly row. A call of fewer rows than a tile gets a buffer of its size. */
    if (rows == 1 || rows * n < (1 << 19)) {
        ELT *tmp = harp_aligned_alloc(SFX(apply_tmp_elems)(k, rows < tile ? rows : tile, n) * sizeof(ELT), "rotation apply buffer");
        if (!tmp) return HARP_ERR_OOM;
        for (int64_t ti = 0; ti < ntiles; ti++) SFX(apply_tile)(r, X, rows, ld, ti * tile, tile, tmp, transpose);
        harp_free_aligned(tmp);
        return HARP_OK;
    }
    int fail = 0;
#pragma omp parallel
    {
        ELT *tmp = harp_aligned_alloc(SFX(apply_tmp_elems)(k, tile, n) * sizeof(ELT), "rotation apply buffer");
        if (!tmp) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 4)
        for (int64_t ti = 0; ti < ntiles; ti++)
            if (tmp) SFX(apply_tile)(r, X, rows, ld, ti * tile, tile, tmp, transpose);
        harp_free_aligned(tmp);
    }
    if (fail) return harp_err(HARP_ERR_OOM, "rotation apply: out of memory for row buffers");
    return HARP_OK;
}

/* Two-sided: W (m×n) ← Uᵀ W V, or U W Vᵀ when inverse. Column side via an explicit transpose. */
static harp_status SFX(weight_impl)(const harp_rot *U, const harp_rot *V, ELT *W, int64_t m, int64_t n, int inverse) {
    if (!W || m <= 0 || n <= 0) return harp_err(HARP_ERR_INVALID_ARG, "rotation weight: bad matrix %lld×%lld", (long long)m, (long long)n);
    if (V && V->n != n) return harp_err(HARP_ERR_SHAPE, "rotation weight: V has n=%lld, matrix has %lld columns", (long long)V->n, (long long)n);
    if (U && U->n != m) return harp_err(HARP_ERR_SHAPE, "rotation weight: U has n=%lld, matrix has %lld rows", (long long)U->n, (long long)m);
    if (V) HARP_TRY(SFX(apply_impl)(V, W, m, n, inverse, 0));
    if (!U) return HARP_OK;
    ELT *t = harp_xmalloc((size_t)m * (size_t)n * sizeof(ELT), "rotation transpose buffer");
    if (!t) return HARP_ERR_OOM;
    /* Uᵀ A = (Aᵀ U)ᵀ and U A = (Aᵀ Uᵀ)ᵀ */
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) t[j * m + i] = W[i * n + j];
    harp_status st = SFX(apply_impl)(U, t, n, m, inverse, 0);
    if (st == HARP_OK)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) W[i * n + j] = t[j * m + i];
    free(t);
    return st;
}
