/* Loss/gradient engine of the HARP fit, instantiated by hf_engine_f32.c / hf_engine_f64.c with
 *   R    element type (float / double)      SFX(x)  x##_f32 / x##_f64      KCAN(r, pt)  the blocks
 *   KPREP(r)  what a rotation must make before KCAN reads it (the fp64 blocks)
 * Every parallel loop writes disjoint outputs and every reduction is over a fixed partition in a
 * fixed order, so results are bit-identical for any thread count. */

typedef R SFX(vec) __attribute__((vector_size(32)));
#define VEC SFX(vec)
#define NV ((int64_t)(32 / sizeof(R)))
#define BVEC 64   /* radices up to this use the register/vector path; larger ones the scalar one */

struct SFX(hf_ctx) {
    harp_rot *U, *V;
    int64_t m, n;
    hf_opts o;
    int PU, PV;     /* passes × stages per side */
    R **bv;         /* PV+1 buffers n×m: Wᵀ, then each V stage's output (cm layout, batch m) */
    R **bu;         /* PU+1 buffers m×n: A = W R_V, ..., W̃ */
    R **bh1, **bh2; /* PV+1 buffers n×n each: H → Pᵀ; P → H̃ */
    R *gw, *gwt, *gh, *gh2; /* gradient scratch: m×n, n×m, n×n, n×n */
    R *target;      /* m×n, valid after the first refresh */
    double s;       /* cached proxy scale */
    int have_target;
    float *tx, *trec; /* QTIP: W̃ / s and its tile reconstruction (m×n; trec persists across partial refreshes) */
    uint16_t *tcodes; /* QTIP: the tiles' codes (scratch of harp_trellis_quantize_tiles) */
    int tparts, tpart; /* QTIP: the tiles of the next partial refresh */
    double *hw;     /* n diag weights */
    double *part;   /* per-row partial sums (max(m, n)) */
    double *dkU, *dkV; /* per-group dK accumulators (Σ D·b² per pass·stage) */
    int64_t ndkU, ndkV;
};

static inline int64_t SFX(grp_row)(int64_t c, int b, int64_t step, int i) {
    return (c / step) * b * step + (int64_t)i * step + c % step;
}

/* out rows of group c ← K·(in rows) (trans: Kᵀ), vectorised over the batch; in == out allowed. */
static inline HARP_ALWAYS_INLINE void SFX(grp_fwd_b)(const R *restrict K, const int b, int64_t step, int64_t L,
                                                     const R *in, R *out, int trans, int64_t c, VEC *x) {
    int64_t rows[BVEC];
    for (int i = 0; i < b; i++) rows[i] = SFX(grp_row)(c, b, step, i) * L;
    int64_t l = 0;
    for (; l + NV <= L; l += NV) {
        for (int j = 0; j < b; j++) memcpy(&x[j], in + rows[j] + l, sizeof(VEC));
        for (int i = 0; i < b; i++) {
            VEC acc = x[0] * (trans ? K[i] : K[(size_t)i * b]);
            for (int j = 1; j < b; j++) acc += x[j] * (trans ? K[(size_t)j * b + i] : K[(size_t)i * b + j]);
            memcpy(out + rows[i] + l, &acc, sizeof(VEC));
        }
    }
    for (; l < L; l++) {
        R *xs = (R *)x;
        for (int j = 0; j < b; j++) xs[j] = in[rows[j] + l];
        for (int i = 0; i < b; i++) {
            R acc = xs[0] * (trans ? K[i] : K[(size_t)i * b]);
            for (int j = 1; j < b; j++) acc += xs[j] * (trans ? K[(size_t)j * b + i] : K[(size_t)i * b + j]);
            out[rows[i] + l] = acc;
        }
    }
}

/* Backward of group c: dK[i][j] += Σ_batch g_i v_j (lane partial sums, then lanes in order) and,
 * if dx, g ← Kᵀ g in place. acc has b² vectors, x and y b each. */
static inline HARP_ALWAYS_INLINE void SFX(grp_bwd_b)(const R *restrict K, const int b, int64_t step, int64_t L,
                                                     const R *v, R *g, int dx, int64_t c, double *dK, VEC *acc,
                                                     VEC *gx, VEC *vx) {
    int64_t rows[BVEC];
    for (int i = 0; i < b; i++) rows[i] = SFX(grp_row)(c, b, step, i) * L;
    for (int k = 0; k < b * b; k++) acc[k] = (VEC){0};
    /* blocks of lanes small enough for L1: per output row i, the b lane sums of row i stay in registers
     * over the block (same summation order per lane as one pass over l), then g ← Kᵀ g on the block */
    const int64_t lend = L / NV * NV;
    int64_t l = 0;
    for (int64_t lb = 0; lb < lend; lb += 32 * NV) {
        const int64_t le = lb + 32 * NV < lend ? lb + 32 * NV : lend;
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < b; j++) vx[j] = acc[i * b + j];
            for (int64_t q = lb; q < le; q += NV) {
                VEC gi, vj;
                memcpy(&gi, g + rows[i] + q, sizeof(VEC));
                for (int j = 0; j < b; j++) {
                    memcpy(&vj, v + rows[j] + q, sizeof(VEC));
                    vx[j] += gi * vj;
                }
            }
            for (int j = 0; j < b; j++) acc[i * b + j] = vx[j];
        }
        if (dx)
            for (int64_t q = lb; q < le; q += NV) {
                for (int j = 0; j < b; j++) memcpy(&gx[j], g + rows[j] + q, sizeof(VEC));
                for (int j = 0; j < b; j++) {
                    VEC s = gx[0] * K[j];
                    for (int i = 1; i < b; i++) s += gx[i] * K[(size_t)i * b + j];
                    memcpy(g + rows[j] + q, &s, sizeof(VEC));
                }
            }
        l = le;
    }
    for (int k = 0; k < b * b; k++) {
        R lanes[32 / sizeof(R)];
        memcpy(lanes, &acc[k], sizeof lanes);
        double sum = 0;
        for (int q = 0; q < (int)NV; q++) sum += lanes[q];
        dK[k] += sum;
    }
    for (; l < L; l++) {
        R *gs = (R *)gx, *vs = (R *)vx;
        for (int j = 0; j < b; j++) gs[j] = g[rows[j] + l], vs[j] = v[rows[j] + l];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < b; j++) dK[i * b + j] += (double)(gs[i] * vs[j]);
        if (dx)
            for (int j = 0; j < b; j++) {
                R s = gs[0] * K[j];
                for (int i = 1; i < b; i++) s += gs[i] * K[(size_t)i * b + j];
                g[rows[j] + l] = s;
            }
    }
}

/* Radices above BVEC (leftover primes > 64): plain loops, tmp has 2b elements. */
static void SFX(grp_fwd_big)(const R *K, int b, int64_t step, int64_t L, const R *in, R *out, int trans, int64_t c,
                             R *tmp) {
    for (int64_t l = 0; l < L; l++) {
        for (int j = 0; j < b; j++) tmp[j] = in[SFX(grp_row)(c, b, step, j) * L + l];
        for (int i = 0; i < b; i++) {
            R acc = 0;
            for (int j = 0; j < b; j++) acc += tmp[j] * (trans ? K[(size_t)j * b + i] : K[(size_t)i * b + j]);
            out[SFX(grp_row)(c, b, step, i) * L + l] = acc;
        }
    }
}

static void SFX(grp_bwd_big)(const R *K, int b, int64_t step, int64_t L, const R *v, R *g, int dx, int64_t c,
                             double *dK, R *tmp) {
    for (int64_t l = 0; l < L; l++) {
        for (int j = 0; j < b; j++) {
            int64_t rj = SFX(grp_row)(c, b, step, j) * L + l;
            tmp[j] = g[rj], tmp[b + j] = v[rj];
        }
        for (int i = 0; i < b; i++)
            for (int j = 0; j < b; j++) dK[(size_t)i * b + j] += (double)(tmp[i] * tmp[b + j]);
        if (dx)
            for (int j = 0; j < b; j++) {
                R s = 0;
                for (int i = 0; i < b; i++) s += tmp[i] * K[(size_t)i * b + j];
                g[SFX(grp_row)(c, b, step, j) * L + l] = s;
            }
    }
}

/* One stage over groups [c0, c1); wk: BVEC² + 2·BVEC vectors (or 2b elements for big radices). */
HARP_TARGET_CLONES
static void SFX(stage_fwd)(const R *K, int b, int64_t step, int64_t L, const R *in, R *out, int trans, int64_t c0,
                           int64_t c1, VEC *wk) {
    for (int64_t c = c0; c < c1; c++) {
        const R *Kc = K + (size_t)c * b * b;
        if (b == 8) SFX(grp_fwd_b)(Kc, 8, step, L, in, out, trans, c, wk);
        else if (b <= BVEC) SFX(grp_fwd_b)(Kc, b, step, L, in, out, trans, c, wk);
        else SFX(grp_fwd_big)(Kc, b, step, L, in, out, trans, c, (R *)wk);
    }
}

HARP_TARGET_CLONES
static void SFX(stage_bwd)(const R *K, int b, int64_t step, int64_t L, const R *v, R *g, int dx, int64_t c0,
                           int64_t c1, double *dK, VEC *wk) {
    for (int64_t c = c0; c < c1; c++) {
        const R *Kc = K + (size_t)c * b * b;
        double *dKc = dK + (size_t)c * b * b;
        if (b == 8) SFX(grp_bwd_b)(Kc, 8, step, L, v, g, dx, c, dKc, wk, wk + 64, wk + 72);
        else if (b <= BVEC) SFX(grp_bwd_b)(Kc, b, step, L, v, g, dx, c, dKc, wk, wk + b * b, wk + b * b + b);
        else SFX(grp_bwd_big)(Kc, b, step, L, v, g, dx, c, dKc, (R *)wk);
    }
}

static size_t SFX(wk_vecs)(const harp_rot *r) {
    int bmax = 2;
    for (int pt = 0; pt < bf_num_stages(r); pt++) bmax = bf_stage_geom(r, pt).b > bmax ? bf_stage_geom(r, pt).b : bmax;
    if (bmax <= BVEC) return (size_t)bmax * bmax + 2 * (size_t)bmax + 1;
    return (2 * (size_t)bmax * sizeof(R) + sizeof(VEC) - 1) / sizeof(VEC) + 1;
}

/* buf[0] → buf[PT] through every stage of r (x ↦ x·R on the batch of L vectors). */
static harp_status SFX(side_fwd)(const harp_rot *r, R **buf, int64_t L) {
    size_t nw = SFX(wk_vecs)(r);
    int fail = 0;
#pragma omp parallel
    {
        VEC *wk = harp_aligned_alloc(nw * sizeof(VEC), "harp fit workspace");
        if (!wk) {
#pragma omp atomic write
            fail = 1;
        }
        for (int pt = 0; pt < bf_num_stages(r); pt++) {
            const bf_geom st = bf_stage_geom(r, pt);
#pragma omp for schedule(static)
            for (int64_t c = 0; c < st.D; c++)
                if (wk) SFX(stage_fwd)(KCAN(r, pt), st.b, st.step, L, buf[pt], buf[pt + 1], 0, c, c + 1, wk);
        }
        harp_free_aligned(wk);
    }
    return fail ? harp_err(HARP_ERR_OOM, "harp fit: out of memory for stage workspace") : HARP_OK;
}

/* Backward through every stage with upstream g (in place → dL/d buf[0] when dx_first); dK += per group. */
static harp_status SFX(side_bwd)(const harp_rot *r, R **buf, int64_t L, R *g, double *dk, int dx_first) {
    size_t nw = SFX(wk_vecs)(r);
    int fail = 0;
    int PT = bf_num_stages(r);
    int64_t dko[HARP_ROT_MAX_STAGES * 64 + 1];
    dko[0] = 0;
    for (int pt = 0; pt < PT; pt++) {
        const bf_geom st = bf_stage_geom(r, pt);
        dko[pt + 1] = dko[pt] + st.D * st.b * st.b;
    }
#pragma omp parallel
    {
        VEC *wk = harp_aligned_alloc(nw * sizeof(VEC), "harp fit workspace");
        if (!wk) {
#pragma omp atomic write
            fail = 1;
        }
        for (int pt = PT - 1; pt >= 0; pt--) {
            const bf_geom st = bf_stage_geom(r, pt);
#pragma omp for schedule(static)
            for (int64_t c = 0; c < st.D; c++)
                if (wk)
                    SFX(stage_bwd)(KCAN(r, pt), st.b, st.step, L, buf[pt], g, pt > 0 || dx_first, c, c + 1, dk + dko[pt],
                                   wk);
        }
        harp_free_aligned(wk);
    }
    return fail ? harp_err(HARP_ERR_OOM, "harp fit: out of memory for stage workspace") : HARP_OK;
}

/* dst (cols×rows) = srcᵀ (rows×cols), blocked (the fp32 engine uses hf_transpose_f32 instead). */
static inline void SFX(transpose_blocked)(const R *src, R *dst, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static)
    for (int64_t i0 = 0; i0 < rows; i0 += 32)
        for (int64_t j0 = 0; j0 < cols; j0 += 32)
            for (int64_t i = i0; i < i0 + 32 && i < rows; i++)
                for (int64_t j = j0; j < j0 + 32 && j < cols; j++) dst[j * rows + i] = src[i * cols + j];
}

static void SFX(transpose)(const R *src, R *dst, int64_t rows, int64_t cols) {
#ifdef TRANSPOSE
    TRANSPOSE(src, dst, rows, cols);
#else
    SFX(transpose_blocked)(src, dst, rows, cols);
#endif
}

static R **SFX(bufs)(int k, size_t elems) {
    R **b = harp_xcalloc((size_t)k, sizeof(R *), "harp fit buffers");
    if (!b) return NULL;
    for (int i = 0; i < k; i++)
        if (!(b[i] = harp_aligned_alloc(elems * sizeof(R) + sizeof(VEC), "harp fit buffers"))) {
            for (int j = 0; j < i; j++) harp_free_aligned(b[j]);
            free(b);
            harp_err(HARP_ERR_OOM, "harp fit: out of memory (%zu elements)", elems);
            return NULL;
        }
    return b;
}

static void SFX(bufs_free)(R **b, int k) {
    if (!b) return;
    for (int i = 0; i < k; i++) harp_free_aligned(b[i]);
    free(b);
}

void SFX(hf_ctx_destroy)(SFX(hf_ctx) *c) {
    if (!c) return;
    SFX(bufs_free)(c->bv, c->PV + 1);
    SFX(bufs_free)(c->bu, c->PU + 1);
    SFX(bufs_free)(c->bh1, c->PV + 1);
    SFX(bufs_free)(c->bh2, c->PV + 1);
    harp_free_aligned(c->gw);
    harp_free_aligned(c->gwt);
    harp_free_aligned(c->gh);
    harp_free_aligned(c->gh2);
    harp_free_aligned(c->target);
    free(c->tx), free(c->trec), free(c->tcodes);
    free(c->hw);
    free(c->part);
    free(c->dkU);
    free(c->dkV);
    free(c);
}

static int64_t SFX(dk_size)(const harp_rot *r) {
    int64_t s = 0;
    for (int pt = 0; pt < bf_num_stages(r); pt++) {
        const bf_geom st = bf_stage_geom(r, pt);
        s += st.D * st.b * st.b;
    }
    return s;
}

harp_status SFX(hf_ctx_create)(harp_rot *U, harp_rot *V, const float *W, const double *H, const hf_opts *o,
                               SFX(hf_ctx) **out) {
    *out = NULL;
    HARP_TRY(KPREP(U));
    HARP_TRY(KPREP(V));
    SFX(hf_ctx) *c = harp_xcalloc(1, sizeof *c, "harp fit context");
    if (!c) return HARP_ERR_OOM;
    c->U = U, c->V = V, c->o = *o;
    c->m = harp_rot_dim(U), c->n = harp_rot_dim(V);
    int64_t m = c->m, n = c->n;
    c->PU = bf_num_stages(U), c->PV = bf_num_stages(V);
    size_t mn = (size_t)m * (size_t)n, nn = (size_t)n * (size_t)n, mx = (size_t)(m > n ? m : n);
    c->bv = SFX(bufs)(c->PV + 1, mn);
    c->bu = SFX(bufs)(c->PU + 1, mn);
    c->bh1 = SFX(bufs)(c->PV + 1, nn);
    c->bh2 = SFX(bufs)(c->PV + 1, nn);
    c->gw = harp_aligned_alloc(mn * sizeof(R) + sizeof(VEC), "harp fit buffers");
    c->gwt = harp_aligned_alloc(mn * sizeof(R) + sizeof(VEC), "harp fit buffers");
    c->gh = harp_aligned_alloc(nn * sizeof(R) + sizeof(VEC), "harp fit buffers");
    c->gh2 = harp_aligned_alloc(nn * sizeof(R) + sizeof(VEC), "harp fit buffers");
    c->target = harp_aligned_alloc(mn * sizeof(R) + sizeof(VEC), "harp fit buffers");
    c->hw = harp_xmalloc((size_t)n * sizeof(double), "harp fit");
    c->part = harp_xmalloc(mx * sizeof(double), "harp fit");
    c->ndkU = SFX(dk_size)(U), c->ndkV = SFX(dk_size)(V);
    c->dkU = harp_xmalloc((size_t)c->ndkU * sizeof(double), "harp fit");
    c->dkV = harp_xmalloc((size_t)c->ndkV * sizeof(double), "harp fit");
    if (o->tcb) {
        c->tx = harp_xcalloc(mn, sizeof(float), "harp fit trellis target");
        c->trec = harp_xcalloc(mn, sizeof(float), "harp fit trellis target");
        c->tcodes = harp_xmalloc(harp_tmat_code_words((int32_t)m, (int32_t)n, o->tcb->K) * sizeof(uint16_t), "harp fit trellis target");
    }
    if (!c->bv || !c->bu || !c->bh1 || !c->bh2 || !c->gw || !c->gwt || !c->gh || !c->gh2 || !c->target || !c->hw ||
        !c->part || !c->dkU || !c->dkV || (o->tcb && (!c->tx || !c->trec || !c->tcodes))) {
        SFX(hf_ctx_destroy)(c);
        return harp_err(HARP_ERR_OOM, "harp fit: out of memory for a %lld×%lld problem", (long long)m, (long long)n);
    }
    /* touch every buffer once here, so that the first steps do not pay the page faults */
    for (int k = 0; k <= c->PV; k++) {
        memset(c->bv[k], 0, mn * sizeof(R));
        memset(c->bh1[k], 0, nn * sizeof(R));
        memset(c->bh2[k], 0, nn * sizeof(R));
    }
    for (int k = 0; k <= c->PU; k++) memset(c->bu[k], 0, mn * sizeof(R));
    memset(c->gw, 0, mn * sizeof(R)), memset(c->gwt, 0, mn * sizeof(R)), memset(c->target, 0, mn * sizeof(R));
    memset(c->gh, 0, nn * sizeof(R)), memset(c->gh2, 0, nn * sizeof(R));
    /* constant inputs: Wᵀ (cm layout for V, batch m) and H (symmetric, so already cm) */
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) c->bv[0][j * m + i] = (R)W[i * n + j];
    for (size_t k = 0; k < nn; k++) c->bh1[0][k] = (R)H[k];
    *out = c;
    return HARP_OK;
}

void SFX(hf_set_part)(SFX(hf_ctx) *c, int parts, int part) {
    c->tparts = parts, c->tpart = part;
}

/* QTIP target (§4.12): W̃ / s cut into 16 × 16 tiles, each quantized by the two-pass tail-biting
 * Viterbi without feedback; a partial refresh keeps s and the other tiles' values. ss = Σ W̃². */
static harp_status SFX(trellis_target)(SFX(hf_ctx) *c, double ss, int partial) {
    const int64_t m = c->m, n = c->n, mn = m * n;
    const R *Wt = c->bu[c->PU];
    if (!partial || !c->have_target) c->s = sqrt(ss / (double)mn) / (c->o.tcb->rms * c->o.so);
    const R sR = (R)c->s;
    for (int64_t k = 0; k < mn; k++) c->tx[k] = (float)(Wt[k] / sR);
    const int parts = partial && c->have_target ? c->tparts : 1, part = partial && c->have_target ? c->tpart : 0;
    if (c->o.tgpu)
        HARP_TRY(harp_trellis_quantize_tiles_batched(c->o.tcb, c->o.tgpu, m, n, c->tx, parts, part, c->tcodes, c->trec,
                                                     "harp trellis target"));
    else
        HARP_TRY(harp_trellis_quantize_tiles(c->o.tcb, m, n, c->tx, parts, part, c->tcodes, c->trec, "harp trellis target"));
    for (int64_t k = 0; k < mn; k++) c->target[k] = (R)c->trec[k];
    c->have_target = 1;
    return HARP_OK;
}

static void SFX(refresh_target)(SFX(hf_ctx) *c) {
    const int64_t m = c->m, n = c->n, nb = (n + 7) / 8;
    const R *Wt = c->bu[c->PU];
    double ss = 0;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < m; i++) {
        double a = 0;
        for (int64_t j = 0; j < n; j++) a += (double)Wt[i * n + j] * Wt[i * n + j];
        c->part[i] = a;
    }
    for (int64_t i = 0; i < m; i++) ss += c->part[i];
    c->s = (sqrt(ss / ((double)m * n)) + 1e-8) / c->o.so;
    const R sR = (R)c->s;
#pragma omp parallel for schedule(static)
    for (int64_t v = 0; v < m * nb; v++) {
        int64_t i = v / nb, j0 = (v % nb) * 8;
        double x[8], q[8];
        /* zero-padded to a multiple of 8 columns, as the reference pads Z */
        for (int k = 0; k < 8; k++) x[k] = j0 + k < n ? (double)((R)(Wt[i * n + j0 + k] / sR)) : 0.0;
        QUANT8(c->o.cb, c->o.resid, x, q);
        for (int k = 0; k < 8 && j0 + k < n; k++) c->target[i * n + j0 + k] = (R)q[k];
    }
    c->have_target = 1;
}

harp_status SFX(hf_eval)(SFX(hf_ctx) *c, int refresh, hf_terms *tm, double *dU, double *dV) {
    const int64_t m = c->m, n = c->n;
    const int grad = dU || dV;
    /* forward: W̃ = R_Uᵀ W R_V and H̃ = R_Vᵀ H R_V */
    HARP_TRY(SFX(side_fwd)(c->V, c->bv, m));
    SFX(transpose)(c->bv[c->PV], c->bu[0], n, m);
    HARP_TRY(SFX(side_fwd)(c->U, c->bu, n));
    HARP_TRY(SFX(side_fwd)(c->V, c->bh1, n));
    SFX(transpose)(c->bh1[c->PV], c->bh2[0], n, n);
    HARP_TRY(SFX(side_fwd)(c->V, c->bh2, n));
    const R *Wt = c->bu[c->PU], *Ht = c->bh2[c->PV];
    const int fresh = refresh || !c->have_target;
    if (fresh || !c->o.freeze_weights) {
        /* diagonal weights from H̃ (detached) */
        double dsum = 0;
        for (int64_t j = 0; j < n; j++) dsum += fabs((double)Ht[j * n + j]);
        const double dmean = dsum / (double)n;
        for (int64_t j = 0; j < n; j++) c->hw[j] = fabs((double)Ht[j * n + j]) / (dmean + 1e-8);
    }
    if (fresh && c->o.tcb) {
        double ss = 0;
        for (int64_t k = 0; k < m * n; k++) ss += (double)Wt[k] * Wt[k];
        HARP_TRY(SFX(trellis_target)(c, ss, refresh == HF_REFRESH_PART));
    } else if (fresh) {
        SFX(refresh_target)(c);
    }
    /* proxy */
    const double s = c->s, cg = 2.0 / ((double)m * (double)n) / s;
    const R sR = (R)s;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < m; i++) {
        double a = 0;
        for (int64_t j = 0; j < n; j++) {
            double e = (double)(Wt[i * n + j] / sR - c->target[i * n + j]);
            a += c->hw[j] * e * e;
            if (grad) c->gw[i * n + j] = (R)(cg * c->hw[j] * e);
        }
        c->part[i] = a;
    }
    double proxy = 0;
    for (int64_t i = 0; i < m; i++) proxy += c->part[i];
    proxy /= (double)m * (double)n;
    /* HBD: off-block mass of H̃ (off-diagonal if β does not divide n) */
    const int64_t beta = c->o.hbd_block > 0 && n % c->o.hbd_block == 0 ? c->o.hbd_block : 1;
    const int hgrad = grad && c->o.lambda > 0;
    const double ch = 2.0 * c->o.lambda / ((double)n * (double)n);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double a = 0;
        for (int64_t j = 0; j < n; j++) {
            int off = i / beta != j / beta;
            double h = (double)Ht[i * n + j];
            if (off) a += h * h;
            if (hgrad) c->gh[i * n + j] = off ? (R)(ch * h) : (R)0;
        }
        c->part[i] = a;
    }
    double hbd = 0;
    for (int64_t i = 0; i < n; i++) hbd += c->part[i];
    hbd /= (double)n * (double)n;
    tm->proxy = proxy, tm->hbd = hbd, tm->loss = proxy + c->o.lambda * hbd;
    if (!grad) return HARP_OK;
    /* backward */
    memset(c->dkU, 0, (size_t)c->ndkU * sizeof(double));
    memset(c->dkV, 0, (size_t)c->ndkV * sizeof(double));
    HARP_TRY(SFX(side_bwd)(c->U, c->bu, n, c->gw, c->dkU, 1));
    SFX(transpose)(c->gw, c->gwt, m, n);
    HARP_TRY(SFX(side_bwd)(c->V, c->bv, m, c->gwt, c->dkV, 0));
    if (hgrad) {
        HARP_TRY(SFX(side_bwd)(c->V, c->bh2, n, c->gh, c->dkV, 1));
        SFX(transpose)(c->gh, c->gh2, n, n);
        HARP_TRY(SFX(side_bwd)(c->V, c->bh1, n, c->gh2, c->dkV, 0));
    }
    if (dU) HARP_TRY(bf_dtheta_from_dk(c->U, c->dkU, dU));
    if (dV) HARP_TRY(bf_dtheta_from_dk(c->V, c->dkV, dV));
    return HARP_OK;
}

#undef VEC
#undef NV
#undef BVEC
#undef TRANSPOSE
