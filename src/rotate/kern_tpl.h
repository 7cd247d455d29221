/* Row kernels, instantiated for float and double by kernels.c (T = element type, SFX = suffix).
 * Optimised and _ref versions perform the same floating-point operations in the same order on
 * every element (fp-contract is off), so they agree bit-exactly; the optimised ones only change the
 * loop structure (fused radix-4 FWHT passes, contiguous vector-friendly inner loops). */

/* ---- Walsh–Hadamard, natural (Sylvester) order, unnormalised ---------------------------------- */

void SFX(fwht_ref)(ELT *x, int64_t n) {
    for (int64_t h = 1; h < n; h *= 2)
        for (int64_t i = 0; i < n; i += 2 * h)
            for (int64_t j = i; j < i + h; j++) {
                ELT a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
}

/* First three stages (h = 1, 2, 4) on one block of 8, in the reference's operation order. */
static inline void SFX(fwht8)(ELT *x) {
    ELT a0 = x[0] + x[1], a1 = x[0] - x[1], a2 = x[2] + x[3], a3 = x[2] - x[3];
    ELT a4 = x[4] + x[5], a5 = x[4] - x[5], a6 = x[6] + x[7], a7 = x[6] - x[7];
    ELT b0 = a0 + a2, b2 = a0 - a2, b1 = a1 + a3, b3 = a1 - a3;
    ELT b4 = a4 + a6, b6 = a4 - a6, b5 = a5 + a7, b7 = a5 - a7;
    x[0] = b0 + b4, x[4] = b0 - b4, x[1] = b1 + b5, x[5] = b1 - b5;
    x[2] = b2 + b6, x[6] = b2 - b6, x[3] = b3 + b7, x[7] = b3 - b7;
}

#if HARP_HAVE_SHUFFLE
/* The same three stages on one 8-vector with lane shuffles: lane i gets x_i + x_{i^h} (low half of
 * each pair) or x_{i^h} − x_i (high half) — the reference's a + b and a − b exactly. */
static inline HARP_ALWAYS_INLINE void SFX(fwht8v)(ELT *x) {
    VEC8 v, a, sm, df;
    memcpy(&v, x, sizeof v);
    a = __builtin_shuffle(v, (IVEC8){1, 0, 3, 2, 5, 4, 7, 6});
    sm = v + a, df = a - v;
    v = __builtin_shuffle(sm, df, (IVEC8){0, 9, 2, 11, 4, 13, 6, 15});
    a = __builtin_shuffle(v, (IVEC8){2, 3, 0, 1, 6, 7, 4, 5});
    sm = v + a, df = a - v;
    v = __builtin_shuffle(sm, df, (IVEC8){0, 1, 10, 11, 4, 5, 14, 15});
    a = __builtin_shuffle(v, (IVEC8){4, 5, 6, 7, 0, 1, 2, 3});
    sm = v + a, df = a - v;
    v = __builtin_shuffle(sm, df, (IVEC8){0, 1, 2, 3, 12, 13, 14, 15});
    memcpy(x, &v, sizeof v);
}
#define FWHT8 SFX(fwht8v)
#else
#define FWHT8 SFX(fwht8)
#endif

HARP_TARGET_CLONES
void SFX(fwht)(ELT *restrict x, int64_t n) {
    if (n < 8) {
        SFX(fwht_ref)(x, n);
        return;
    }
    for (int64_t i = 0; i < n; i += 8) FWHT8(x + i);
    int64_t h = 8;
    /* two stages (h, 2h) per pass over the data */
    for (; 4 * h <= n; h *= 4)
        for (int64_t i = 0; i < n; i += 4 * h) {
            ELT *restrict p0 = x + i, *restrict p1 = p0 + h, *restrict p2 = p1 + h, *restrict p3 = p2 + h;
            for (int64_t j = 0; j < h; j++) {
                ELT a = p0[j] + p1[j], b = p0[j] - p1[j], c = p2[j] + p3[j], d = p2[j] - p3[j];
                p0[j] = a + c;
                p2[j] = a - c;
                p1[j] = b + d;
                p3[j] = b - d;
            }
        }
    if (h < n)
        for (int64_t i = 0; i < n; i += 2 * h) {
            ELT *restrict p0 = x + i, *restrict p1 = p0 + h;
            for (int64_t j = 0; j < h; j++) {
                ELT a = p0[j], b = p1[j];
                p0[j] = a + b;
                p1[j] = a - b;
            }
        }
}

/* ---- Had_n row transform: FWHT inside each of the K chunks (length m = n/K), then the K×K chunk mix,
 * then the scale. forward (x·Had_n): out_c = Σ_j hadK[j][c]·x_j; transpose (x·Had_nᵀ): out_c =
 * Σ_j hadK[c][j]·x_j. Every path sums each output as 0 + h_0·x_0 + h_1·x_1 + … in j order and then
 * multiplies it by the scale once, so the optimised, many-row and reference paths agree bit for bit. */

void SFX(had_mix_ref)(const harp_rot *r, ELT *x, ELT *tmp, int transpose, ELT s) {
    int64_t n = r->n, m = r->pow2;
    int K = r->K;
    const ELT *hk = SFX(hadk_of)(r);
    for (int c = 0; c < K; c++)
        for (int64_t v = 0; v < m; v++) {
            ELT acc = 0;
            for (int j = 0; j < K; j++) {
                ELT h = transpose ? hk[(size_t)c * K + j] : hk[(size_t)j * K + c];
                acc += h * x[j * m + v];
            }
            tmp[c * m + v] = acc;
        }
    for (int64_t i = 0; i < n; i++) x[i] = tmp[i] * s;
}

void SFX(had_row_ref)(const harp_rot *r, ELT *x, ELT *tmp, int transpose) {
    int64_t n = r->n, m = r->pow2;
    for (int c = 0; c < r->K; c++) SFX(fwht_ref)(x + c * m, m);
    ELT s = (ELT)(1.0 / sqrt((double)n));
    if (r->K > 1) SFX(had_mix_ref)(r, x, tmp, transpose, s);
    else
        for (int64_t i = 0; i < n; i++) x[i] *= s;
}

/* m ≥ 8, one row: outputs vectorised along the chunk, 4 output chunks × W = 8 or 16 columns in registers. */
static inline HARP_ALWAYS_INLINE void SFX(had_mix_v)(const harp_rot *r, const ELT *restrict x, ELT *restrict tmp,
                                                     int transpose, const int W) {
    int64_t m = r->pow2;
    int K = r->K, c = 0;
    const ELT *hk = SFX(hadk_of)(r);
    for (; c + 4 <= K; c += 4)
        for (int64_t v0 = 0; v0 < m; v0 += 8 * W) {
            VEC8 acc[4][2] = {{{0}}}, xv[2];
            for (int j = 0; j < K; j++) {
                for (int w = 0; w < W; w++) memcpy(&xv[w], x + j * m + v0 + 8 * w, sizeof xv[w]);
                for (int q = 0; q < 4; q++) {
                    ELT h = transpose ? hk[(size_t)(c + q) * K + j] : hk[(size_t)j * K + c + q];
                    for (int w = 0; w < W; w++) acc[q][w] += h * xv[w];
                }
            }
            for (int q = 0; q < 4; q++)
                for (int w = 0; w < W; w++) memcpy(tmp + (c + q) * m + v0 + 8 * w, &acc[q][w], sizeof xv[w]);
        }
    for (; c < K; c++) {   /* K not a multiple of 4 (never for a Hadamard order > 2) */
        ELT *restrict y = tmp + c * m;
        ELT h0 = transpose ? hk[(size_t)c * K] : hk[c];
        for (int64_t v = 0; v < m; v++) y[v] = (ELT)0 + h0 * x[v];
        for (int j = 1; j < K; j++) {
            ELT h = transpose ? hk[(size_t)c * K + j] : hk[(size_t)j * K + c];
            const ELT *restrict xj = x + j * m;
            for (int64_t v = 0; v < m; v++) y[v] += h * xj[v];
        }
    }
}

/* m < 8: vectorised across 8 outputs c (hadK, or hadKᵀ, with rows padded to Kp columns), R ≤ 4 rows
 * at a time sharing every load of the matrix, B blocks of 8 outputs at a time (R·B independent sums, so
 * one row is not bound by the latency of a single chain of K adds); the outputs of row q go to tmp + q·n. */
static inline HARP_ALWAYS_INLINE void SFX(had_mix_c)(const harp_rot *r, const ELT *X, int64_t ld, ELT *tmp, int transpose,
                                                     const int R, const int B) {
    int64_t n = r->n, m = r->pow2;
    int K = r->K, Kp = r->Kp;
    const ELT *H = SFX(hkmix_of)(r, transpose);
    for (int64_t v = 0; v < m; v++)
        for (int c0 = 0; c0 < K; c0 += 8 * B) {
            const int nb = (K - c0 + 7) / 8 < B ? (K - c0 + 7) / 8 : B;
            VEC8 acc[4][4] = {{{0}}}, h;
            for (int j = 0; j < K; j++)
                for (int b = 0; b < nb; b++) {
                    memcpy(&h, H + (size_t)j * Kp + c0 + 8 * b, sizeof h);
                    for (int q = 0; q < R; q++) acc[b][q] += h * X[q * ld + j * m + v];
                }
            for (int b = 0; b < nb; b++)
                for (int q = 0; q < R; q++) {
                    int cb = c0 + 8 * b;
                    if (m == 1 && cb + 8 <= K) memcpy(tmp + q * n + cb, &acc[b][q], sizeof h);
                    else
                        for (int l = 0; l < 8 && cb + l < K; l++) tmp[q * n + (cb + l) * m + v] = acc[b][q][l];
                }
        }
}

/* The chunk mix of nr rows (K > 1), scaled by s; tmp holds nr·n elements. */
HARP_TARGET_CLONES
void SFX(had_mix_rows)(const harp_rot *r, ELT *X, int64_t nr, int64_t ld, ELT *tmp, int transpose, ELT s) {
    int64_t n = r->n;
    if (r->pow2 >= 8) {
        for (int64_t i = 0; i < nr; i++) {
            if (r->pow2 >= 16) SFX(had_mix_v)(r, X + i * ld, tmp, transpose, 2);
            else SFX(had_mix_v)(r, X + i * ld, tmp, transpose, 1);
            for (int64_t k = 0; k < n; k++) X[i * ld + k] = tmp[k] * s;
        }
        return;
    }
    int64_t i = 0;
    for (; i + 4 <= nr; i += 4) SFX(had_mix_c)(r, X + i * ld, ld, tmp + i * n, transpose, 4, 1);
    for (; i < nr; i++) SFX(had_mix_c)(r, X + i * ld, ld, tmp + i * n, transpose, 1, 4);
    for (i = 0; i < nr; i++)
        for (int64_t k = 0; k < n; k++) X[i * ld + k] = tmp[i * n + k] * s;
}

/* nr rows in place; tmp holds nr·n elements. */
void SFX(had_rows)(const harp_rot *r, ELT *X, int64_t nr, int64_t ld, ELT *tmp, int transpose) {
    int64_t n = r->n, m = r->pow2;
    ELT s = (ELT)(1.0 / sqrt((double)n));
    for (int64_t i = 0; i < nr; i++)
        for (int c = 0; c < r->K; c++) SFX(fwht)(X + i * ld + c * m, m);
    if (r->K > 1) SFX(had_mix_rows)(r, X, nr, ld, tmp, transpose, s);
    else
        for (int64_t i = 0; i < nr; i++)
            for (int64_t k = 0; k < n; k++) X[i * ld + k] *= s;
}

void SFX(had_row)(const harp_rot *r, ELT *x, ELT *tmp, int transpose) { SFX(had_rows)(r, x, 1, r->n, tmp, transpose); }

/* ---- the butterfly's fixed stage F = (hadK ⊗ I_m)/√K by classes (bf_fixed.c, issue 18) --------------
 * Outputs 4g … 4g+3 at one chunk position: class sums S_p = 0 + σx_a + σx_b + … over the list of class p
 * (σx = ±x exactly: entry j ≥ K reads chunk j − K of −x), then the Walsh sums of S (FX_WALSH) times
 * 1/√K. Every element sees these operations in this order in every path (one row with 8 consecutive
 * positions in the vector lanes, 8 rows in the lanes, or the scalar twin), so they agree bit for bit;
 * against the dense sum of had_mix they agree to rounding (tests/test_rot_butterfly.c). */
#ifndef FX_WALSH
#define FX_WALSH(T, S, o)                                                                            \
    do {                                                                                             \
        T e0_ = S[0] + S[1], e1_ = S[2] + S[3], e2_ = S[4] + S[5], e3_ = S[6] + S[7];                \
        T d0_ = S[0] - S[1], d1_ = S[2] - S[3], d2_ = S[4] - S[5], d3_ = S[6] - S[7];                \
        T f0_ = e0_ + e1_, f1_ = e2_ + e3_;                                                          \
        (o)[0] = f0_ + f1_;                                                                          \
        (o)[1] = (d0_ + d1_) + (d2_ + d3_);                                                          \
        (o)[2] = (e0_ - e1_) + (e2_ - e3_);                                                          \
        (o)[3] = f0_ - f1_;                                                                          \
    } while (0)
#endif

void SFX(bf_fixed_ref)(const harp_rot *r, ELT *x, ELT *tmp, int transpose) {
    const ELT s = (ELT)(1.0 / sqrt((double)r->K));
    if (!r->fx_idx[0]) {
        SFX(had_mix_ref)(r, x, tmp, transpose, s);
        return;
    }
    const int K = r->K;
    const int64_t m = r->pow2;
    for (int g = 0; g < K / 4; g++) {
        const uint16_t *idx = r->fx_idx[transpose] + (size_t)g * K, *off = r->fx_off[transpose] + (size_t)g * 9;
        for (int64_t v = 0; v < m; v++) {
            ELT S[8], o[4];
            for (int p = 0; p < 8; p++) {
                ELT a = 0;
                for (int q = off[p]; q < off[p + 1]; q++) a += idx[q] < K ? x[idx[q] * m + v] : -x[(idx[q] - K) * m + v];
                S[p] = a;
            }
            FX_WALSH(ELT, S, o);
            for (int q = 0; q < 4; q++) tmp[(4 * g + q) * m + v] = o[q] * s;
        }
    }
    memcpy(x, tmp, (size_t)r->n * sizeof(ELT));
}

/* y = x·F (or x·Fᵀ) for xx = [x, −x] in units of 8 elements: unit u of chunk j (j < 2K) at xx + 8·(j·L + u),
 * of the output at y + 8·(c·L + u) (L = m/8 for one row, L = m for 8 rows transposed into the lanes);
 * W | L units at a time share each index load; two inputs per iteration, in order. */
static inline HARP_ALWAYS_INLINE void SFX(fx_mix8)(const harp_rot *r, const ELT *restrict xx, ELT *restrict y, int64_t L, int transpose,
                                                   const int W) {
    const ELT s = (ELT)(1.0 / sqrt((double)r->K));
    const int K = r->K;
    const int64_t st = 8 * L;
    /* u outside g: the K·W units one block of u reads stay in L1 across the K/4 groups (the 8-row tile
     * is 3n units, far beyond it: g outside ran from L2 at twice the time) */
    for (int64_t u0 = 0; u0 < L; u0 += W)
        for (int g = 0; g < K / 4; g++) {
            const uint16_t *restrict idx = r->fx_idx[transpose] + (size_t)g * K, *restrict off = r->fx_off[transpose] + (size_t)g * 9;
            const ELT *restrict xu = xx + 8 * u0;
            VEC8 S[8][4], t, o[4];
            for (int p = 0; p < 8; p++) {
                VEC8 a[4] = {{0}};
                int q = off[p];
                for (; q + 2 <= off[p + 1]; q += 2) {
                    const ELT *x0 = xu + st * idx[q], *x1 = xu + st * idx[q + 1];
                    for (int w = 0; w < W; w++) {
                        memcpy(&t, x0 + 8 * w, sizeof t);
                        a[w] += t;
                    }
                    for (int w = 0; w < W; w++) {
                        memcpy(&t, x1 + 8 * w, sizeof t);
                        a[w] += t;
                    }
                }
                if (q < off[p + 1])
                    for (int w = 0; w < W; w++) {
                        memcpy(&t, xu + st * idx[q] + 8 * w, sizeof t);
                        a[w] += t;
                    }
                for (int w = 0; w < W; w++) S[p][w] = a[w];
            }
            for (int w = 0; w < W; w++) {
                VEC8 Sw[8];
                for (int p = 0; p < 8; p++) Sw[p] = S[p][w];
                FX_WALSH(VEC8, Sw, o);
                for (int q = 0; q < 4; q++) {
                    VEC8 z = o[q] * s;
                    memcpy(y + 8 * ((int64_t)(4 * g + q) * L + u0 + w), &z, sizeof z);
                }
            }
        }
}

static inline HARP_ALWAYS_INLINE void SFX(fx_mix8_any)(const harp_rot *r, const ELT *xx, ELT *y, int64_t L, int transpose) {
    if (L % 4 == 0) SFX(fx_mix8)(r, xx, y, L, transpose, 4);
    else if (L % 2 == 0) SFX(fx_mix8)(r, xx, y, L, transpose, 2);
    else SFX(fx_mix8)(r, xx, y, L, transpose, 1);
}

/* xx[0 … n) = x, xx[n … 2n) = −x in one pass (x = xx: only the negation) */
static inline void SFX(fx_negate)(ELT *xx, const ELT *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        ELT v = x[i];
        xx[i] = v;
        xx[n + i] = -v;
    }
}

HARP_TARGET_CLONES
void SFX(bf_fixed_rows)(const harp_rot *r, ELT *X, int64_t nr, int64_t ld, ELT *tmp, int transpose) {
    const int64_t n = r->n;
    if (!r->fx_idx[0]) {
        SFX(had_mix_rows)(r, X, nr, ld, tmp, transpose, (ELT)(1.0 / sqrt((double)r->K)));
        return;
    }
    for (int64_t i = 0; i < nr; i++) {
        SFX(fx_negate)(tmp, X + i * ld, n);
        SFX(fx_mix8_any)(r, tmp, X + i * ld, r->pow2 / 8, transpose);
    }
}

/* ---- signs, GSR and the dense reference --------------------------------------------------------- */

void SFX(signs_mul)(const int8_t *s, ELT *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = s[i] < 0 ? -x[i] : x[i];
}

/* GSR: forward = (signs) → per block natural FWHT → output j takes entry perm[j] → 1/√G. */
void SFX(gsr_row)(const harp_rot *r, ELT *x, ELT *tmp, int transpose, int ref) {
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

/* Dense reference: y_j = Σ_i x_i R[i][j] (forward) or Σ_i x_i R[j][i] (transpose). The optimised path
 * of the dense kinds is one BLAS product (apply_tpl.h), so ref is not consulted. */
void SFX(dense_row)(const harp_rot *r, ELT *x, ELT *tmp, int transpose, int ref) {
    (void)ref;
    int64_t n = r->n;
    for (int64_t j = 0; j < n; j++) {
        ELT acc = 0;
        for (int64_t i = 0; i < n; i++) acc += x[i] * (ELT)(transpose ? r->dense[j * n + i] : r->dense[i * n + j]);
        tmp[j] = acc;
    }
    memcpy(x, tmp, (size_t)n * sizeof(ELT));
}

/* ---- butterfly stage rows (§4.3): group c = blk·step + s, members blk·b·step + i·step + s ------- */

void SFX(bf_row_ref)(const harp_rot *r, ELT *x, ELT *tmp, int transpose) {
    int P = r->P, Tn = r->T;
    for (int pi = 0; pi < P; pi++) {
        int p = transpose ? P - 1 - pi : pi;
        for (int ti = 0; ti < Tn; ti++) {
            int t = transpose ? Tn - 1 - ti : ti;
            const bf_stage *st = &r->st[t];
            const ELT *Kc = SFX(kfwd_of)(r, p, t);   /* [blk][j][i][s] = K_c[i][j] */
            int b = st->b;
            int64_t step = st->step;
            for (int64_t c = 0; c < st->D; c++) {
                int64_t blk = c / step, s = c % step, base = blk * b * step + s;
                for (int i = 0; i < b; i++) tmp[i] = x[base + i * step];
                for (int i = 0; i < b; i++) {
                    ELT acc = 0;
                    for (int j = 0; j < b; j++) {
                        /* forward v ← K v, inverse v ← Kᵀ v */
                        int64_t kij = transpose ? ((blk * b + i) * b + j) * step + s : ((blk * b + j) * b + i) * step + s;
                        acc += Kc[kij] * tmp[j];
                    }
                    tmp[b + i] = acc;
                }
                for (int i = 0; i < b; i++) x[base + i * step] = tmp[b + i];
            }
        }
    }
}

/* One stage on one row; tmp holds b·step elements. The vector paths keep each output's
 * accumulator in a register (VL lanes of consecutive s) and add the terms in the reference's j
 * order, so results stay bit-identical to bf_row_ref. The term of (output i, input j) is K_c[i][j]
 * forward and K_c[j][i] transposed: in the fwd layout [j][i][s] at (i·si + j·sj)·step + s with
 * (si, sj) = (1, b) forward and (b, 1) transposed. */
static inline HARP_ALWAYS_INLINE void SFX(bf_blk_vec)(int b, int64_t step, int64_t sa, int64_t sb, int64_t si, int64_t sj,
                                                      const ELT *restrict Kb, const ELT *restrict xb, ELT *restrict tmp) {
    for (int64_t s0 = sa; s0 + VL <= sb; s0 += VL) {
        if (b == 8) {
            VEC acc[8] = {{0}}, k, xv;
            for (int j = 0; j < 8; j++) {
                memcpy(&xv, xb + (int64_t)j * step + s0, sizeof(VEC));
                for (int i = 0; i < 8; i++) {
                    memcpy(&k, Kb + (i * si + j * sj) * step + s0, sizeof(VEC));
                    acc[i] += k * xv;
                }
            }
            for (int i = 0; i < 8; i++) memcpy(tmp + (int64_t)i * step + s0, &acc[i], sizeof(VEC));
        } else {
            for (int i = 0; i < b; i++) {
                VEC acc = {0}, k, xv;
                for (int j = 0; j < b; j++) {
                    memcpy(&k, Kb + (i * si + j * sj) * step + s0, sizeof(VEC));
                    memcpy(&xv, xb + (int64_t)j * step + s0, sizeof(VEC));
                    acc += k * xv;
                }
                memcpy(tmp + (int64_t)i * step + s0, &acc, sizeof(VEC));
            }
        }
    }
}

/* Reads the row x, writes the stage output to out (a different buffer). Kf: the fwd layout; Kc: the
 * canonical one, which for step 1 is the fwd layout of the transpose (contiguous over i for each j).
 * Part q of Q: a share of the blocks, or where there are fewer blocks than parts, of the stride
 * positions s (in whole vectors) — every group is done by exactly one part, with the same operations. */
static inline HARP_ALWAYS_INLINE void SFX(bf_stage_row_t)(const bf_stage *st, const ELT *restrict Kf, const ELT *restrict Kc,
                                                          const ELT *restrict x, ELT *restrict out, const int transpose, int q,
                                                          int Q) {
    int b = st->b;
    int64_t step = st->step, nblk = st->D / step, bs = (int64_t)b * step;
    const int64_t si = transpose ? b : 1, sj = transpose ? 1 : b;
    int64_t b0 = 0, b1 = nblk, sa = 0, sb = step;
    if (Q > 1 && nblk >= Q) b0 = nblk * q / Q, b1 = nblk * (q + 1) / Q;
    else if (Q > 1) {
        const int64_t nv = step / VL;   /* whole vectors; the scalar tail goes to the last part */
        sa = nv * q / Q * VL, sb = q + 1 == Q ? step : nv * (q + 1) / Q * VL;
    }
    if (sa >= sb) return;
    for (int64_t blk = b0; blk < b1; blk++) {
        const ELT *restrict xb = x + blk * bs;
        ELT *restrict tmp = out + blk * bs;
        /* forward: y_i = Σ_j K[i][j] v_j; transposed: y_i = Σ_j K[j][i] v_j */
        const ELT *restrict Kb = Kf + blk * (int64_t)b * bs;
        if (step == 1) {
            /* [j][i] of K (fwd) or of Kᵀ (canonical K_blk): for each j, the b outputs' terms in a row */
            const ELT *restrict Kr = transpose ? Kc + blk * (int64_t)b * b : Kb;
            if (b == 8) {
                VEC acc[8 / VL] = {{0}}, k;
                for (int j = 0; j < 8; j++) {
                    VEC v = (VEC){0} + xb[j];
                    for (int u = 0; u < 8 / VL; u++) {
                        memcpy(&k, Kr + j * 8 + u * VL, sizeof(VEC));
                        acc[u] += k * v;
                    }
                }
                memcpy(tmp, acc, 8 * sizeof(ELT));
            } else {
                for (int i = 0; i < b; i++) tmp[i] = (ELT)0 + Kr[i] * xb[0];
                for (int j = 1; j < b; j++) {
                    ELT v = xb[j];
                    const ELT *restrict kr = Kr + (int64_t)j * b;
                    for (int i = 0; i < b; i++) tmp[i] += kr[i] * v;
                }
            }
        } else if (step % VL == 0) {
            if (b == 8) SFX(bf_blk_vec)(8, step, sa, sb, transpose ? 8 : 1, transpose ? 1 : 8, Kb, xb, tmp);
            else SFX(bf_blk_vec)(b, step, sa, sb, si, sj, Kb, xb, tmp);
        } else {
            for (int i = 0; i < b; i++) {
                const ELT *restrict kr = Kb + (int64_t)i * si * step;
                ELT *restrict y = tmp + (int64_t)i * step;
                for (int64_t s = sa; s < sb; s++) y[s] = (ELT)0 + kr[s] * xb[s];
            }
            for (int j = 1; j < b; j++) {
                const ELT *restrict v = xb + (int64_t)j * step;
                for (int i = 0; i < b; i++) {
                    const ELT *restrict kr = Kb + (i * si + j * sj) * step;
                    ELT *restrict y = tmp + (int64_t)i * step;
                    for (int64_t s = sa; s < sb; s++) y[s] += kr[s] * v[s];
                }
            }
        }
    }
}

/* the direction as a constant in each copy, so the index arithmetic above folds */
static void SFX(bf_stage_row)(const bf_stage *st, const ELT *restrict Kf, const ELT *restrict Kc, const ELT *restrict x,
                              ELT *restrict out, int transpose, int q, int Q) {
    if (transpose) SFX(bf_stage_row_t)(st, Kf, Kc, x, out, 1, q, Q);
    else SFX(bf_stage_row_t)(st, Kf, Kc, x, out, 0, q, Q);
}

void SFX(bf_row)(const harp_rot *r, ELT *x, ELT *tmp, int transpose) {
    SFX(bf_rows)(r, x, 1, r->n, tmp, transpose);
}

/* The learned stages of rows·n elements, part q of Q (bf_stage_row_t), ping-ponging between X and tmp;
 * with Q > 1 the caller's team runs it, a barrier after each stage. Returns whether the result is
 * in tmp. */
static int SFX(bf_rows_part)(const harp_rot *r, ELT *X, int64_t rows, int64_t ld, ELT *tmp, int transpose, int q, int Q) {
    int P = r->P, Tn = r->T, flip = 0;
    int64_t n = r->n;
    for (int pi = 0; pi < P; pi++) {
        int p = transpose ? P - 1 - pi : pi;
        for (int ti = 0; ti < Tn; ti++) {
            int t = transpose ? Tn - 1 - ti : ti;
            for (int64_t i = 0; i < rows; i++) {
                ELT *a = X + i * ld, *b = tmp + i * n;
                SFX(bf_stage_row)(&r->st[t], SFX(kfwd_of)(r, p, t), SFX(kcan_of)(r, p, t), flip ? b : a, flip ? a : b, transpose, q, Q);
            }
            if (Q > 1) {
#pragma omp barrier
            }
            flip ^= 1;
        }
    }
    return flip;
}

/* Several rows stage by stage, so each stage's blocks are reused from cache across the rows; each
 * stage ping-pongs between the row and tmp (n elements per row, rows·n in all). From g_bf_par_work
 * multiply-adds on, each stage is split over the threads (same operations on every element, so the
 * bits do not depend on the thread count). */
void SFX(bf_rows)(const harp_rot *r, ELT *X, int64_t rows, int64_t ld, ELT *tmp, int transpose) {
    int64_t n = r->n, work = 0;
    for (int t = 0; t < r->T; t++) work += rows * n * r->st[t].b * r->P;
    const int Q = work >= g_bf_par_work && !omp_in_parallel() ? harp_get_threads() : 1;
    if (Q <= 1) {
        if (SFX(bf_rows_part)(r, X, rows, ld, tmp, transpose, 0, 1))
            for (int64_t i = 0; i < rows; i++) memcpy(X + i * ld, tmp + i * n, (size_t)n * sizeof(ELT));
        return;
    }
#pragma omp parallel num_threads(Q)
    {
        const int q = omp_get_thread_num(), nq = omp_get_num_threads();
        if (SFX(bf_rows_part)(r, X, rows, ld, tmp, transpose, q, nq)) {
            const int64_t e0 = n * q / nq, e1 = n * (q + 1) / nq;
            for (int64_t i = 0; i < rows; i++) memcpy(X + i * ld + e0, tmp + i * n + e0, (size_t)(e1 - e0) * sizeof(ELT));
        }
    }
}

void SFX(bf_stage)(const harp_rot *r, int p, int t, ELT *x, ELT *tmp, int transpose) {
    SFX(bf_stage_row)(&r->st[t], SFX(kfwd_of)(r, p, t), SFX(kcan_of)(r, p, t), x, tmp, transpose, 0, 1);
    memcpy(x, tmp, (size_t)r->n * sizeof(ELT));
}

/* ---- butterfly on a tile of 8 rows, transposed so that the 8 rows are the vector lanes ------------
 * Each block entry K_c[i][j] is loaded once per tile and broadcast across the 8 rows, which removes the
 * per-row re-reading of the blocks (the bottleneck of the row kernel). Per lane the operations are
 * the reference's (y_i = 0 + Σ_j K[i][j]·v_j in j order, K[j][i] transposed, read from the same
 * canonical blocks), so results are bit-identical to bf_row_ref. */
/* Consecutive stages t0..t1 whose radices multiply to at most FUSE_MAX are applied together on a
 * gathered local buffer (one gather/scatter per run instead of a pass per stage). Measured at n = 4096
 * (fp32, 512 rows, one thread): FUSE_MAX 64 → 3.9 ms, 512 → 3.0 ms, 4096 → 2.3–2.5 ms. */
#define FUSE_MAX 4096
static inline HARP_ALWAYS_INLINE void SFX(bf_fused_t8)(const harp_rot *r, int p, int t0, int t1, int transpose, VEC8 *restrict x, VEC8 *restrict loc,
                                                         VEC8 *restrict out) {
    int64_t step0 = r->st[t0].step, B = 1;
    for (int t = t0; t <= t1; t++) B *= r->st[t].b;
    int64_t nblk = r->n / (B * step0);
    for (int64_t blk = 0; blk < nblk; blk++)
        for (int64_t s = 0; s < step0; s++) {
            int64_t base = blk * B * step0 + s;
            for (int64_t i = 0; i < B; i++) loc[i] = x[base + i * step0];
            for (int k = 0; k <= t1 - t0; k++) {
                int t = transpose ? t1 - k : t0 + k;
                const bf_stage *st = &r->st[t];
                int b = st->b;
                int64_t lstep = st->step / step0;
                const ELT *A = SFX(kcan_of)(r, p, t);
                /* term (output i, input j): K_c[i][j] at i·b + j, transposed K_c[j][i] at j·b + i */
                const int64_t si = transpose ? 1 : b, sj = transpose ? b : 1;
                int64_t per = B / ((int64_t)b * lstep); /* stage-t blocks per outer block */
                for (int64_t lb = 0, lbi = 0; lb < B; lb += b * lstep, lbi++)
                    for (int64_t ls = 0; ls < lstep; ls++) {
                        int64_t lbase = lb + ls;
                        /* group of global index g0 = base + lbase·step0, without divisions (see §4.3) */
                        int64_t c = (blk * per + lbi) * st->step + ls * step0 + s;
                        const ELT *restrict Ac = A + c * (int64_t)b * b;
                        VEC8 *v = loc + lbase;
                        /* j outer, i inner: b independent accumulators hide the add latency; each
                         * output still sums its terms in j order */
                        if (b == 8) {
                            VEC8 acc[8] = {{0}};
                            for (int j = 0; j < 8; j++) {
                                VEC8 vj = v[j * lstep];
                                for (int i = 0; i < 8; i++) acc[i] += Ac[i * (transpose ? 1 : 8) + j * (transpose ? 8 : 1)] * vj;
                            }
                            for (int i = 0; i < 8; i++) v[i * lstep] = acc[i];
                        } else {
                            for (int i = 0; i < b; i++) out[i] = (VEC8){0};
                            for (int j = 0; j < b; j++) {
                                VEC8 vj = v[j * lstep];
                                for (int i = 0; i < b; i++) out[i] += Ac[i * si + j * sj] * vj;
                            }
                            for (int i = 0; i < b; i++) v[i * lstep] = out[i];
                        }
                    }
            }
            for (int64_t i = 0; i < B; i++) x[base + i * step0] = loc[i];
        }
}

/* X: 8 rows with leading dimension ld; work: 8·(3n + 2·FUSE_MAX) elements (aligned to the vector size).
 * With a fixed stage it must have its buckets (bf_fixed_init). */
HARP_TARGET_CLONES
void SFX(bf_tile8)(const harp_rot *r, ELT *X, int64_t ld, VEC8 *work, int transpose) {
    int64_t n = r->n;
    for (int t = 0; t < r->T; t++)
        if (r->st[t].b > FUSE_MAX) {   /* a radix this large (a prime factor > 4096) takes the row kernel */
            if (r->fixed && !transpose) SFX(bf_fixed_rows)(r, X, 8, ld, (ELT *)(void *)work, 0);
            SFX(bf_rows)(r, X, 8, ld, (ELT *)(void *)work, transpose);
            if (r->fixed && transpose) SFX(bf_fixed_rows)(r, X, 8, ld, (ELT *)(void *)work, 1);
            return;
        }
    /* a: the rows in the lanes; with a fixed stage, [a, −a] and its output fx */
    VEC8 *a = work, *fx = work + 2 * n, *loc = work + 3 * n;
    for (int64_t k = 0; k < n; k++)
        for (int q = 0; q < 8; q++) a[k][q] = X[q * ld + k];
    if (r->fixed && !transpose) {
        SFX(fx_negate)((ELT *)(void *)a, (const ELT *)(void *)a, 8 * n);
        SFX(fx_mix8_any)(r, (const ELT *)(void *)a, (ELT *)(void *)fx, r->pow2, 0);
        a = fx;
    }
    int P = r->P, Tn = r->T;
    /* fixed partition of the stages into fused runs (same in both directions) */
    int run_start[HARP_ROT_MAX_STAGES], nrun = 0;
    for (int t = 0; t < Tn;) {
        int64_t B = r->st[t].b;
        int e = t;
        while (e + 1 < Tn && B * r->st[e + 1].b <= FUSE_MAX) B *= r->st[++e].b;
        run_start[nrun++] = t;
        t = e + 1;
    }
    for (int pi = 0; pi < P; pi++) {
        int p = transpose ? P - 1 - pi : pi;
        for (int ri = 0; ri < nrun; ri++) {
            int q = transpose ? nrun - 1 - ri : ri;
            int t0 = run_start[q], t1 = q + 1 < nrun ? run_start[q + 1] - 1 : Tn - 1;
            /* the direction as a constant in each inlined copy */
            if (transpose) SFX(bf_fused_t8)(r, p, t0, t1, 1, a, loc, loc + FUSE_MAX);
            else SFX(bf_fused_t8)(r, p, t0, t1, 0, a, loc, loc + FUSE_MAX);
        }
    }
    if (r->fixed && transpose) {
        SFX(fx_negate)((ELT *)(void *)a, (const ELT *)(void *)a, 8 * n);
        SFX(fx_mix8_any)(r, (const ELT *)(void *)a, (ELT *)(void *)fx, r->pow2, 1);
        a = fx;
    }
    for (int64_t k = 0; k < n; k++)
        for (int q = 0; q < 8; q++) X[q * ld + k] = a[k][q];
}

/* ---- rows of the kinds table (rot_kind_ops) ------------------------------------------------------ */

void SFX(had_kind_row)(const harp_rot *r, ELT *x, ELT *tmp, int transpose, int ref) {
    if (ref) SFX(had_row_ref)(r, x, tmp, transpose);
    else SFX(had_row)(r, x, tmp, transpose);
}

/* rht: x·diag(s)·Had_n, or x·Had_nᵀ·diag(s) */
void SFX(rht_kind_row)(const harp_rot *r, ELT *x, ELT *tmp, int transpose, int ref) {
    if (!transpose) SFX(signs_mul)(r->signs, x, r->n);
    SFX(had_kind_row)(r, x, tmp, transpose, ref);
    if (transpose) SFX(signs_mul)(r->signs, x, r->n);
}

void SFX(rht_kind_rows)(const harp_rot *r, ELT *X, int64_t nr, int64_t ld, ELT *tmp, int transpose) {
    if (!transpose)
        for (int64_t i = 0; i < nr; i++) SFX(signs_mul)(r->signs, X + i * ld, r->n);
    SFX(had_rows)(r, X, nr, ld, tmp, transpose);
    if (transpose)
        for (int64_t i = 0; i < nr; i++) SFX(signs_mul)(r->signs, X + i * ld, r->n);
}

/* butterfly: x·R = (x·F)·B and x·Rᵀ = (x·Bᵀ)·Fᵀ, F the fixed Hadamard stage (if any, scaled by 1/√K);
 * while θ is exactly Had_n, the Hadamard kernels instead (the RHT's rounding). */
void SFX(bf_kind_row)(const harp_rot *r, ELT *x, ELT *tmp, int transpose, int ref) {
    if (r->had_exact) {
        SFX(had_kind_row)(r, x, tmp, transpose, ref);
        return;
    }
    if (r->fixed && !transpose) {
        if (ref) SFX(bf_fixed_ref)(r, x, tmp, 0);
        else SFX(bf_fixed_rows)(r, x, 1, r->n, tmp, 0);
    }
    if (ref) SFX(bf_row_ref)(r, x, tmp, transpose);
    else SFX(bf_row)(r, x, tmp, transpose);
    if (r->fixed && transpose) {
        if (ref) SFX(bf_fixed_ref)(r, x, tmp, 1);
        else SFX(bf_fixed_rows)(r, x, 1, r->n, tmp, 1);
    }
}

/* up to 8 rows: tiles of 8 reuse each stage's blocks from cache across the rows (tmp: 8·(3n + 2·4096) for 8,
 * (nr + 2)·n for fewer) */
void SFX(bf_kind_rows)(const harp_rot *r, ELT *X, int64_t nr, int64_t ld, ELT *tmp, int transpose) {
    if (r->had_exact) {
        SFX(had_rows)(r, X, nr, ld, tmp, transpose);
        return;
    }
    if (nr == 8 && (!r->fixed || r->fx_idx[0])) {   /* the tile applies the fixed stage's buckets itself */
        SFX(bf_tile8)(r, X, ld, (void *)tmp, transpose);
        return;
    }
    if (r->fixed && !transpose) SFX(bf_fixed_rows)(r, X, nr, ld, tmp, 0);
    SFX(bf_rows)(r, X, nr, ld, tmp, transpose);
    if (r->fixed && transpose) SFX(bf_fixed_rows)(r, X, nr, ld, tmp, 1);
}

/* the instantiation's parameters end here, so the next one can define its own */
#undef ELT
#undef VEC
#undef VEC8
#undef IVEC8
#undef FWHT8
#undef VL
#undef SFX
