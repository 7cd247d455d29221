/* Row application for every kind, instantiated for float and double by apply.c (ELT, SFX, GEMM). */

static void SFX(signs_mul)(const int8_t *s, ELT *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = s[i] < 0 ? -x[i] : x[i];
}

/* GSR: forward = (signs) → per block natural FWHT → output j takes entry perm[j] → 1/√G. */
static void SFX(gsr_row)(const harp_rot *r, ELT *x, ELT *tmp, int transpose, int ref) {
    int64_t n = r->n, G = r->group;
    ELT sc = (ELT)(1.0 / sqrt((double)G));
    if (!transpose && r->signs) SFX(signs_mul)(r->signs, x, n);
    for (int64_t o = 0; o < n; o += G) {
        ELT *xb = x + o;
        if (!transpose) {
            if (ref) SFX(fwht_ref)(xb, G);
            else SFX(fwht)(xb, G);
            for (int64_t j = 0; j < G; j++) tmp[j] = xb[r->walsh_perm[j]] * sc;
        } else {
            for (int64_t j = 0; j < G; j++) tmp[r->walsh_perm[j]] = xb[j];
            if (ref) SFX(fwht_ref)(tmp, G);
            else SFX(fwht)(tmp, G);
            for (int64_t j = 0; j < G; j++) tmp[j] *= sc;
        }
        memcpy(xb, tmp, (size_t)G * sizeof(ELT));
    }
    if (transpose && r->signs) SFX(signs_mul)(r->signs, x, n);
}

/* Dense reference: y_j = Σ_i x_i R[i][j] (forward) or Σ_i x_i R[j][i] (transpose). */
static void SFX(dense_row_ref)(const harp_rot *r, ELT *x, ELT *tmp, int transpose) {
    int64_t n = r->n;
    for (int64_t j = 0; j < n; j++) {
        ELT acc = 0;
        for (int64_t i = 0; i < n; i++) acc += x[i] * (ELT)(transpose ? r->dense[j * n + i] : r->dense[i * n + j]);
        tmp[j] = acc;
    }
    memcpy(x, tmp, (size_t)n * sizeof(ELT));
}

static void SFX(row)(const harp_rot *r, ELT *x, ELT *tmp, int transpose, int ref) {
    switch (r->kind) {
    case HARP_ROT_HADAMARD:
        if (ref) SFX(had_row_ref)(r, x, tmp, transpose);
        else SFX(had_row)(r, x, tmp, transpose);
        break;
    case HARP_ROT_RHT:
        if (!transpose) SFX(signs_mul)(r->signs, x, r->n);
        if (ref) SFX(had_row_ref)(r, x, tmp, transpose);
        else SFX(had_row)(r, x, tmp, transpose);
        if (transpose) SFX(signs_mul)(r->signs, x, r->n);
        break;
    case HARP_ROT_GSR: SFX(gsr_row)(r, x, tmp, transpose, ref); break;
    case HARP_ROT_BUTTERFLY:
        if (r->sylvester && ref) SFX(had_row_ref)(r, x, tmp, transpose);
        else if (r->sylvester) SFX(had_row)(r, x, tmp, transpose);
        else if (ref) SFX(bf_row_ref)(r, x, tmp, transpose);
        else SFX(bf_row)(r, x, tmp, transpose);
        break;
    default: SFX(dense_row_ref)(r, x, tmp, transpose); break;
    }
}

static harp_status SFX(apply_impl)(const harp_rot *r, ELT *X, int64_t rows, int64_t ld, int transpose, int ref) {
    if (!r || (!X && rows > 0)) return harp_err(HARP_ERR_INVALID_ARG, "rotation apply: NULL rotation or matrix");
    int64_t n = r->n;
    if (ld == 0) ld = n;
    if (rows < 0 || ld < n) return harp_err(HARP_ERR_SHAPE, "rotation apply: rows=%lld, ld=%lld < n=%lld", (long long)rows, (long long)ld, (long long)n);
    if (rows == 0) return HARP_OK;
    if (!ref && (r->kind == HARP_ROT_RANDOM_ORTHOGONAL || r->kind == HARP_ROT_KRON)) {
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
    int fail = 0;
    if (ref) {
        ELT *tmp = harp_xmalloc((size_t)(2 * n + 64) * sizeof(ELT), "rotation apply buffer");
        if (!tmp) return HARP_ERR_OOM;
        for (int64_t i = 0; i < rows; i++) SFX(row)(r, X + i * ld, tmp, transpose, 1);
        free(tmp);
        return HARP_OK;
    }
    /* (the butterfly work buffer size follows bf_tile8: 8·(2n + 2·FUSE_MAX), FUSE_MAX = 4096)
     * Below 2^19 elements (2 MiB fp32) one thread does it all: waking a team costs more than the work.
     * threads only when there is enough work to amortise waking them; butterfly rows go in tiles of
     * 8 so that each stage's blocks are reused from cache across the tile */
    const int bf = r->kind == HARP_ROT_BUTTERFLY && !r->sylvester;
    const int64_t tile = bf ? 8 : 1, ntiles = (rows + tile - 1) / tile;
#pragma omp parallel if (rows > 1 && rows * n >= (1 << 19))
    {
        ELT *tmp = harp_aligned_alloc((size_t)(tile * (2 * n + 2 * 4096) + 64) * sizeof(ELT), "rotation apply buffer");
        if (!tmp) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 4)
        for (int64_t ti = 0; ti < ntiles; ti++) {
            if (!tmp) continue;
            int64_t r0 = ti * tile, nr = rows - r0 < tile ? rows - r0 : tile;
            if (bf && nr == 8) SFX(bf_tile8)(r, X + r0 * ld, ld, (void *)tmp, transpose);
            else if (bf) SFX(bf_rows)(r, X + r0 * ld, nr, ld, tmp, transpose);
            else SFX(row)(r, X + r0 * ld, tmp, transpose, 0);
        }
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
