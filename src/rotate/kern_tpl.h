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

void SFX(fwht)(ELT *restrict x, int64_t n) {
    if (n < 8) {
        SFX(fwht_ref)(x, n);
        return;
    }
    for (int64_t i = 0; i < n; i += 8) SFX(fwht8)(x + i);
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

/* ---- Had_n row transform: FWHT inside each of the K chunks, then the K×K mix, then 1/√n --------
 * forward (x·Had_n): out_c = Σ_j hadK[j][c]·x_j;  transpose (x·Had_nᵀ): out_c = Σ_j hadK[c][j]·x_j. */

void SFX(had_row_ref)(const harp_rot *r, ELT *x, ELT *tmp, int transpose) {
    int64_t n = r->n, m = r->pow2;
    int K = r->K;
    const ELT *hk = SFX(hadk_of)(r);
    for (int c = 0; c < K; c++) SFX(fwht_ref)(x + c * m, m);
    if (K > 1) {
        for (int c = 0; c < K; c++)
            for (int64_t v = 0; v < m; v++) {
                ELT acc = 0;
                for (int j = 0; j < K; j++) {
                    ELT h = transpose ? hk[(size_t)c * K + j] : hk[(size_t)j * K + c];
                    acc += h * x[j * m + v];
                }
                tmp[c * m + v] = acc;
            }
        memcpy(x, tmp, (size_t)n * sizeof(ELT));
    }
    ELT s = (ELT)(1.0 / sqrt((double)n));
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}

void SFX(had_row)(const harp_rot *r, ELT *restrict x, ELT *restrict tmp, int transpose) {
    int64_t n = r->n, m = r->pow2;
    int K = r->K;
    const ELT *hk = SFX(hadk_of)(r);
    for (int c = 0; c < K; c++) SFX(fwht)(x + c * m, m);
    ELT s = (ELT)(1.0 / sqrt((double)n));
    if (K == 1) {
        for (int64_t i = 0; i < n; i++) x[i] *= s;
        return;
    }
    for (int c = 0; c < K; c++) {
        ELT *restrict y = tmp + c * m;
        ELT h0 = transpose ? hk[(size_t)c * K] : hk[c];
        for (int64_t v = 0; v < m; v++) y[v] = (ELT)0 + h0 * x[v];
        for (int j = 1; j < K; j++) {
            ELT h = transpose ? hk[(size_t)c * K + j] : hk[(size_t)j * K + c];
            const ELT *restrict xj = x + j * m;
            for (int64_t v = 0; v < m; v++) y[v] += h * xj[v];
        }
    }
    for (int64_t i = 0; i < n; i++) x[i] = tmp[i] * s;
}

/* ---- butterfly stage rows (§4.3): group c = blk·step + s, members blk·b·step + i·step + s ------- */

void SFX(bf_row_ref)(const harp_rot *r, ELT *x, ELT *tmp, int transpose) {
    int P = r->P, Tn = r->T;
    for (int pi = 0; pi < P; pi++) {
        int p = transpose ? P - 1 - pi : pi;
        for (int ti = 0; ti < Tn; ti++) {
            int t = transpose ? Tn - 1 - ti : ti;
            const bf_stage *st = &r->st[t];
            const ELT *Kc = SFX(kinv_of)(r, p, t);   /* [blk][i][j][s] = K_c[i][j] */
            int b = st->b;
            int64_t step = st->step;
            for (int64_t c = 0; c < st->D; c++) {
                int64_t blk = c / step, s = c % step, base = blk * b * step + s;
                for (int i = 0; i < b; i++) tmp[i] = x[base + i * step];
                for (int i = 0; i < b; i++) {
                    ELT acc = 0;
                    for (int j = 0; j < b; j++) {
                        /* forward v ← K v, inverse v ← Kᵀ v */
                        int64_t kij = transpose ? ((blk * b + j) * b + i) * step + s : ((blk * b + i) * b + j) * step + s;
                        acc += Kc[kij] * tmp[j];
                    }
                    tmp[b + i] = acc;
                }
                for (int i = 0; i < b; i++) x[base + i * step] = tmp[b + i];
            }
        }
    }
}

/* One stage on one row; tmp holds b·step elements. */
static void SFX(bf_stage_row)(const bf_stage *st, const ELT *restrict Kf, const ELT *restrict Ki, ELT *restrict x,
                              ELT *restrict tmp, int transpose) {
    int b = st->b;
    int64_t step = st->step, nblk = st->D / step, bs = (int64_t)b * step;
    for (int64_t blk = 0; blk < nblk; blk++) {
        ELT *restrict xb = x + blk * bs;
        /* forward: y_i = Σ_j K[i][j] v_j from the [j][i][s] layout; inverse: y_j = Σ_i K[i][j] v_i from [i][j][s] */
        const ELT *restrict Kb = (transpose ? Ki : Kf) + blk * (int64_t)b * bs;
        if (step == 1) {
            for (int i = 0; i < b; i++) tmp[i] = (ELT)0 + Kb[i] * xb[0];
            for (int j = 1; j < b; j++) {
                ELT v = xb[j];
                const ELT *restrict kr = Kb + (int64_t)j * b;
                for (int i = 0; i < b; i++) tmp[i] += kr[i] * v;
            }
        } else {
            for (int i = 0; i < b; i++) {
                const ELT *restrict kr = Kb + (int64_t)i * step;
                ELT *restrict y = tmp + (int64_t)i * step;
                for (int64_t s = 0; s < step; s++) y[s] = (ELT)0 + kr[s] * xb[s];
            }
            for (int j = 1; j < b; j++) {
                const ELT *restrict v = xb + (int64_t)j * step;
                for (int i = 0; i < b; i++) {
                    const ELT *restrict kr = Kb + ((int64_t)j * b + i) * step;
                    ELT *restrict y = tmp + (int64_t)i * step;
                    for (int64_t s = 0; s < step; s++) y[s] += kr[s] * v[s];
                }
            }
        }
        memcpy(xb, tmp, (size_t)bs * sizeof(ELT));
    }
}

void SFX(bf_row)(const harp_rot *r, ELT *x, ELT *tmp, int transpose) {
    int P = r->P, Tn = r->T;
    for (int pi = 0; pi < P; pi++) {
        int p = transpose ? P - 1 - pi : pi;
        for (int ti = 0; ti < Tn; ti++) {
            int t = transpose ? Tn - 1 - ti : ti;
            SFX(bf_stage_row)(&r->st[t], SFX(kfwd_of)(r, p, t), SFX(kinv_of)(r, p, t), x, tmp, transpose);
        }
    }
}

void SFX(bf_stage)(const harp_rot *r, int p, int t, ELT *x, ELT *tmp, int transpose) {
    SFX(bf_stage_row)(&r->st[t], SFX(kfwd_of)(r, p, t), SFX(kinv_of)(r, p, t), x, tmp, transpose);
}
