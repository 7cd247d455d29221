/* A model's quantized linear group in the GPU decode engine's terms (decode.h, "linear"): the stored
 * planes of its harp_qtensor as dec_qplanes, its rotations as dec_xform stage lists with their sign
 * vectors folded into the pre / post vectors, and the C twin of the whole packed product. Plain C,
 * compiled in every build: the CUDA backend uploads what this builds, the CPU tests check it against
 * harp_qtensor_apply_ref. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cuda/decode.h"
#include "harp/qtensor.h"
#include "rotate/rot_view.h"

/* Adds the butterfly's fixed stage F = (hadK ⊗ I_pow2)/√K (forward: out_c = Σ_j hadK[j][c]·x_j). */
static harp_status add_fixed_stage(const harp_rot_view *v, int transpose, dec_xform *xf) {
    if (xf->nstages >= DEC_MAX_STAGES) return harp_err(HARP_ERR_UNSUPPORTED, "decode transform: too many stages");
    const int K = v->K;
    int8_t *H = malloc((size_t)K * (size_t)K);
    float *M = malloc(sizeof(float) * (size_t)K * (size_t)K);
    harp_status st = !H || !M ? HARP_ERR_OOM : harp_hadamard_matrix(K, H, NULL);
    if (st == HARP_OK) st = dec_xform_adopt(xf, M);
    if (st != HARP_OK) {
        free(H);
        free(M);
        return st;
    }
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) M[i * K + j] = transpose ? H[i * K + j] : H[j * K + i];
    free(H);
    xf->st[xf->nstages++] = (dec_xstage){.b = K, .step = v->pow2, .shared = 1, .mat = M};
    xf->scale /= sqrt((double)K);
    return HARP_OK;
}

/* x·R (transpose 0) or x·Rᵀ as the signs-free stage list, plus the rotation's own signs: they
 * multiply the input before the stages (transpose 0) or the output after them (transpose 1). */
harp_status dec_xform_from_rot(const harp_rot *r, int transpose, dec_xform *xf, const int8_t **signs) {
    harp_rot_view v;
    harp_rot_get_view(r, &v);
    *signs = NULL;
    harp_status st;
    switch (v.kind) {
    case HARP_ROT_HADAMARD:
    case HARP_ROT_RHT:
        st = dec_xform_hadamard(v.n, transpose, xf);
        *signs = v.kind == HARP_ROT_RHT ? v.signs : NULL;
        return st;
    case HARP_ROT_GSR:
        *signs = v.signs;
        return dec_xform_gsr(v.n, v.gsr_group, v.walsh_perm, transpose, xf);
    case HARP_ROT_KRON:
        return dec_xform_kron(v.kron_p1, v.kron_p2, v.kron_a, v.kron_b, v.kron_pin, v.kron_pout, transpose, xf);
    case HARP_ROT_BUTTERFLY: {
        if (v.fixed && (int64_t)v.P * v.T + 1 > DEC_MAX_STAGES)
            return harp_err(HARP_ERR_UNSUPPORTED, "decode transform: butterfly of %d stages", v.P * v.T + 1);
        if (!v.fixed || !transpose) {
            /* x·R = (x·F)·B: F first, then B's stages */
            dec_xform_identity(v.n, xf);
            if (v.fixed) HARP_TRY(add_fixed_stage(&v, 0, xf));
        }
        dec_xform B;
        HARP_TRY(dec_xform_butterfly(v.n, v.P, v.T, v.radices, v.blocks, transpose, &B));
        if (!v.fixed) {
            dec_xform_free(xf);
            *xf = B;
            return HARP_OK;
        }
        /* merge: x·R = F then B; x·Rᵀ = Bᵀ then Fᵀ */
        if (transpose) {
            *xf = B;
            st = add_fixed_stage(&v, 1, xf);
        } else {
            st = dec_xform_append(xf, &B);
            dec_xform_free(&B);
        }
        if (st != HARP_OK) dec_xform_free(xf);
        return st;
    }
    default:
        return harp_err(HARP_ERR_UNSUPPORTED, "decode transform: rotation kind '%s' (dense) has no GPU transform",
                        harp_rot_kind_name(v.kind));
    }
}

/* Scalar formats: g_idx (GPTQ act-order) must be the plain column → group map. */
static harp_status check_g_idx(const harp_qtensor *t, const char *what) {
    const harp_qplane *g = &t->planes[3];
    if (!g->data) return HARP_OK;
    const int32_t *gi = g->data;
    for (int64_t c = 0; c < t->n; c++)
        if (gi[c] != (int32_t)(c / t->group_size))
            return harp_err(HARP_ERR_UNSUPPORTED, "%s: act-order group indices (g_idx) have no GPU layout", what);
    return HARP_OK;
}

harp_status dec_qplanes_from_qtensor(const harp_qtensor *t, const char *what, dec_qplanes *q) {
    memset(q, 0, sizeof *q);
    if (t->m > INT32_MAX || t->n > INT32_MAX) return harp_err(HARP_ERR_SHAPE, "%s: shape too large for the GPU", what);
    q->qtype = (int32_t)t->type;
    q->m = (int32_t)t->m;
    q->n = (int32_t)t->n;
    q->codes = t->planes[0].data;
    switch (t->type) {
    case HARP_QTYPE_F16: return HARP_OK;
    case HARP_QTYPE_E8P2:
    case HARP_QTYPE_RVQ3:
    case HARP_QTYPE_RVQ4:
        if (t->type != HARP_QTYPE_E8P2) q->codes2 = t->planes[1].data;
        q->wscale[0] = t->scale0;
        q->wscale[1] = t->scale1;
        return HARP_OK;
    case HARP_QTYPE_INT2:
    case HARP_QTYPE_INT3:
    case HARP_QTYPE_INT4:
    case HARP_QTYPE_INT8:
        q->scales = t->planes[1].data;
        q->zeros = t->planes[2].data;
        q->group_size = (int32_t)(t->group_size < t->n ? t->group_size : 0);
        return check_g_idx(t, what);
    case HARP_QTYPE_LDP2:   /* planes qweight, levels (src/quant/ldp.h) */
        q->levels = t->planes[1].data;
        q->group_size = (int32_t)(t->group_size < t->n ? t->group_size : 0);
        return HARP_OK;
    case HARP_QTYPE_QTIP2:
    case HARP_QTYPE_QTIP3:
    case HARP_QTYPE_QTIP4: {   /* planes trellis, tlut, wscale, tcode (src/quant/qt_trellis.c) */
        int32_t code = 0;
        if (t->planes[3].data) memcpy(&code, t->planes[3].data, sizeof code);
        q->qtype = dl_qtip_type((int)harp_qtype_bits(t->type), code);
        if (!q->qtype) return harp_err(HARP_ERR_FORMAT, "%s: trellis code %d is not 1mad, 3inst or hyb", what, (int)code);
        q->ncodes = t->planes[0].nbytes / sizeof(uint16_t);
        q->tlut = t->planes[1].data;
        q->wscale[0] = t->scale0;
        return HARP_OK;
    }
    default:
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: quant type %s has no GPU kernel", what,
                        harp_qtype_name(t->type) ? harp_qtype_name(t->type) : "?");
    }
}

/* out[i] = (a ? a[i] : 1)·(s ? s[i] : 1), or NULL when both are absent. */
static harp_status mul_vec(const float *a, const int8_t *s, int64_t n, float **out) {
    *out = NULL;
    if (!a && !s) return HARP_OK;
    float *v = harp_xmalloc(sizeof(float) * (size_t)n, "decode scale vector");
    if (!v) return HARP_ERR_OOM;
    for (int64_t i = 0; i < n; i++) v[i] = (a ? a[i] : 1.0f) * (s ? (float)s[i] : 1.0f);
    *out = v;
    return HARP_OK;
}

void dec_linear_free(dec_linear *L) {
    if (!L) return;
    dec_xform_free(&L->xin);
    dec_xform_free(&L->xout);
    free(L->pre);
    free(L->post);
    memset(L, 0, sizeof *L);
}

harp_status dec_linear_from_qtensor(const harp_qtensor *t, const char *what, dec_linear *L) {
    memset(L, 0, sizeof *L);
    HARP_TRY(dec_qplanes_from_qtensor(t, what, &L->q));
    const int8_t *si = NULL, *so = NULL;
    harp_status st = HARP_OK;
    if (t->xf.rot_in) st = dec_xform_from_rot(t->xf.rot_in, 0, &L->xin, &si);
    else dec_xform_identity(t->n, &L->xin);
    if (st == HARP_OK && t->xf.rot_out) st = dec_xform_from_rot(t->xf.rot_out, 1, &L->xout, &so);
    else if (st == HARP_OK) dec_xform_identity(t->m, &L->xout);
    if (st == HARP_OK && (L->xin.n != t->n || L->xout.n != t->m))
        st = harp_err(HARP_ERR_SHAPE, "%s: rotation dimensions do not match %lldx%lld", what, (long long)t->m, (long long)t->n);
    if (st == HARP_OK) st = mul_vec(t->xf.in_mul, si, t->n, &L->pre);
    if (st == HARP_OK) st = mul_vec(t->xf.out_mul, so, t->m, &L->post);
    if (st != HARP_OK) {
        if (st == HARP_ERR_UNSUPPORTED) harp_err(st, "%s: cannot run on the GPU decode engine", what);
        dec_linear_free(L);
    }
    return st;
}

harp_status dec_linear_ref(const dec_linear *L, const float *X, int rows, float *Y) {
    const int32_t n = L->q.n, m = L->q.m, npad = dec_npad(n);
    uint16_t *xh = harp_xmalloc(sizeof(uint16_t) * 2 * (size_t)npad, "decode twin input");
    float *yt = harp_xmalloc(sizeof(float) * 2 * (size_t)m, "decode twin output");
    harp_status st = xh && yt ? HARP_OK : HARP_ERR_OOM;
    for (int r = 0; st == HARP_OK && r < rows; r++) {
        dec_xin_split_ref(&L->xin, X + (size_t)r * n, n, 1, NULL, 0.0f, L->pre, xh, xh + npad, npad, npad);
        dec_gemv_ref(&L->q, xh, npad, 2, yt, m);
        for (int32_t i = 0; i < m; i++) yt[i] += yt[m + i];
        dec_xout_ref(&L->xout, yt, m, 1, L->post, 0, Y + (size_t)r * m, m);
    }
    free(xh);
    free(yt);
    return st;
}

harp_status dec_fold_ref(const dec_linear *L, int f16_rows, float *W) {
    const int32_t m = L->q.m, n = L->q.n;
    const int64_t wide = m > n ? m : n;
    dec_xform xt;
    memset(&xt, 0, sizeof xt);
    double *A = harp_xmalloc(sizeof(double) * (size_t)m * (size_t)n, "fold twin");
    double *v = harp_xmalloc(sizeof(double) * 3 * (size_t)wide, "fold twin vector");
    float *row = harp_xmalloc(sizeof(float) * (size_t)n, "fold twin row");
    harp_status st = A && v && row ? dec_xform_transpose(&L->xin, &xt) : HARP_ERR_OOM;
    for (int32_t i = 0; st == HARP_OK && i < m; i++) {
        dec_qplanes_rows(&L->q, i, i + 1, row, (size_t)n);
        for (int32_t k = 0; k < n; k++) A[(size_t)i * n + k] = f16_rows ? harp_f16_to_f32(harp_f32_to_f16(row[k])) : row[k];
    }
    /* output side on the columns: post ⊙ T_out W̃ */
    for (int32_t k = 0; st == HARP_OK && k < n; k++) {
        for (int32_t i = 0; i < m; i++) v[i] = A[(size_t)i * n + k];
        dec_xform_apply_ref(&L->xout, v, v + wide);
        for (int32_t i = 0; i < m; i++) A[(size_t)i * n + k] = v[i] * (L->post ? L->post[i] : 1.0f);
    }
    /* input side on the rows: row · T_in diag(pre) = pre ⊙ T_inᵀ row */
    for (int32_t i = 0; st == HARP_OK && i < m; i++) {
        memcpy(v, A + (size_t)i * n, sizeof(double) * (size_t)n);
        dec_xform_apply_ref(&xt, v, v + wide);
        for (int32_t k = 0; k < n; k++) W[(size_t)i * n + k] = (float)(v[k] * (L->pre ? L->pre[k] : 1.0f));
    }
    dec_xform_free(&xt);
    free(A), free(v), free(row);
    return st;
}
