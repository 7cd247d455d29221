/* Host side of the GPU HARP engine (hf_gpu.h): packs the stage geometry, the codebook tables and,
 * each evaluation, the fp32 blocks of every stage into one buffer (one upload), and turns the
 * downloaded per-group dK into dθ on the CPU exactly as the CPU engine does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harpfit/hf_gpu.h"
#ifdef HARP_HAVE_CUDA
#include "harpfit/hf_gpu_dev.h"
#include "quant/e8p.h"
#endif

#ifndef HARP_HAVE_CUDA

int hf_gpu_available(void) {
    harp_err(HARP_ERR_NO_DEVICE, "harp fit on the GPU: harp was built without CUDA (configure with -DHARP_CUDA=ON)");
    return 0;
}

harp_status hf_gpu_create(harp_rot *U, harp_rot *V, const float *W, const double *H, const hf_opts *o, hf_gpu **out) {
    (void)U, (void)V, (void)W, (void)H, (void)o;
    if (out) *out = NULL;
    return harp_err(HARP_ERR_NO_DEVICE, "harp fit on the GPU: harp was built without CUDA (configure with -DHARP_CUDA=ON)");
}

harp_status hf_gpu_eval(hf_gpu *g, int refresh, hf_terms *t, double *dU, double *dV) {
    (void)g, (void)refresh, (void)dU, (void)dV;
    if (t) memset(t, 0, sizeof *t);
    return harp_err(HARP_ERR_NO_DEVICE, "harp fit on the GPU: harp was built without CUDA");
}

harp_status hf_gpu_debug(hf_gpu *g, float *wt, float *target, double *s) {
    (void)g, (void)wt, (void)target, (void)s;
    return harp_err(HARP_ERR_NO_DEVICE, "harp fit on the GPU: harp was built without CUDA");
}

void hf_gpu_destroy(hf_gpu *g) { (void)g; }

#else

struct hf_gpu {
    harp_rot *U, *V;
    hfg_ctx *dev;
    int64_t nkU, nkV;
    float *kblk;   /* host staging of all blocks, U then V */
    double *dk;    /* downloaded dK, U then V */
};

int hf_gpu_available(void) {
    if (hfg_device_present()) return 1;
    harp_err(HARP_ERR_NO_DEVICE, "harp fit on the GPU: no CUDA device");
    return 0;
}

static harp_status side_desc(const harp_rot *r, hfg_side *s) {
    s->d = harp_rot_dim(r);
    s->PT = bf_num_stages(r);
    hfg_stage *st = harp_xcalloc((size_t)s->PT, sizeof *st, "harp fit gpu");
    if (!st) return HARP_ERR_OOM;
    int64_t off = 0;
    for (int pt = 0; pt < s->PT; pt++) {
        const bf_geom b = bf_stage_geom(r, pt);
        st[pt].b = b.b, st[pt].step = b.step, st[pt].D = b.D, st[pt].koff = off;
        off += b.D * b.b * b.b;
    }
    s->st = st, s->nk = off;
    return HARP_OK;
}

void hf_gpu_destroy(hf_gpu *g) {
    if (!g) return;
    hfg_destroy(g->dev);
    free(g->kblk);
    free(g->dk);
    free(g);
}

harp_status hf_gpu_create(harp_rot *U, harp_rot *V, const float *W, const double *H, const hf_opts *o, hf_gpu **out) {
    *out = NULL;
    if (!hf_gpu_available()) return HARP_ERR_NO_DEVICE;
    hf_gpu *g = harp_xcalloc(1, sizeof *g, "harp fit gpu");
    if (!g) return HARP_ERR_OOM;
    g->U = U, g->V = V;
    hfg_desc d;
    memset(&d, 0, sizeof d);
    d.m = harp_rot_dim(U), d.n = harp_rot_dim(V);
    d.lambda = o->lambda, d.so = o->so, d.resid = o->resid;
    d.hbd_block = o->hbd_block, d.cb = (int)o->cb, d.freeze_weights = o->freeze_weights;
    float abs_cm[8 * 256], n2[256];
    int32_t odd[256];
    hf_e8p_tables(abs_cm, n2, odd);
    d.e8p_abs = abs_cm, d.e8p_n2 = n2, d.e8p_odd = odd, d.e81b = e81b_codebook();
    harp_status st = side_desc(U, &d.U);
    if (st == HARP_OK) st = side_desc(V, &d.V);
    if (st == HARP_OK) {
        g->nkU = d.U.nk, g->nkV = d.V.nk;
        g->kblk = harp_xmalloc((size_t)(g->nkU + g->nkV) * sizeof(float), "harp fit gpu blocks");
        g->dk = harp_xmalloc((size_t)(g->nkU + g->nkV) * sizeof(double), "harp fit gpu dK");
        if (!g->kblk || !g->dk) st = HARP_ERR_OOM;
    }
    if (st == HARP_OK) st = hfg_create(&d, W, H, &g->dev);
    free(d.U.st);
    free(d.V.st);
    if (st != HARP_OK) {
        hf_gpu_destroy(g);
        return st;
    }
    *out = g;
    return HARP_OK;
}

static void pack_side(const harp_rot *r, float *dst) {
    for (int pt = 0; pt < bf_num_stages(r); pt++) {
        const bf_geom b = bf_stage_geom(r, pt);
        size_t k = (size_t)(b.D * b.b * b.b);
        memcpy(dst, bf_blocks_f32(r, pt), k * sizeof(float));
        dst += k;
    }
}

harp_status hf_gpu_eval(hf_gpu *g, int refresh, hf_terms *t, double *dU, double *dV) {
    pack_side(g->U, g->kblk);
    pack_side(g->V, g->kblk + g->nkU);
    const int grad = dU || dV;
    double o3[3];
    HARP_TRY(hfg_eval(g->dev, g->kblk, refresh, o3, grad ? g->dk : NULL));
    t->loss = o3[0], t->proxy = o3[1], t->hbd = o3[2];
    if (dU) HARP_TRY(bf_dtheta_from_dk(g->U, g->dk, dU));
    if (dV) HARP_TRY(bf_dtheta_from_dk(g->V, g->dk + g->nkU, dV));
    return HARP_OK;
}

harp_status hf_gpu_debug(hf_gpu *g, float *wt, float *target, double *s) { return hfg_debug(g->dev, wt, target, s); }

#endif
