/* Internals of the HARP fitting loop (src/harpfit): the loss/gradient engine, instantiated in fp32
 * (the fitting loop) and fp64 (gradient checks), Adam, and the parts tests reach directly. */
#ifndef HARP_HF_INTERNAL_H
#define HARP_HF_INTERNAL_H

#include "core/core.h"
#include "harp/harpfit.h"
#include "rotate/butterfly.h"
#include "quant/trellis.h"
#include "quant/trellis_gpu.h"

/* Problem constants shared by both precisions. */
typedef struct hf_opts {
    double lambda;     /* HBD weight (0: no HBD gradient; H̃ is still formed for the diagonal weights) */
    int hbd_block;     /* β */
    harp_codebook cb;  /* proxy target codebook */
    double so;         /* Wscale divisor: scale_override or opt_scale */
    double resid;      /* RVQ residual scale */
    int freeze_weights; /* tests: recompute the diagonal weights h only with the target, so that the
                           loss is a fixed function of θ between refreshes (finite differences) */
    const harp_tcb *tcb; /* QTIP target (§4.12) instead of the E8P one: s = rms(W̃) / (lut_rms · so),
                            16 × 16 tiles of W̃ / s each Viterbi-quantized; NULL for E8P / RVQ */
    harp_tvit_gpu *tgpu; /* QTIP target: its Viterbi on the CUDA device (NULL: CPU) */
} hf_opts;

/* Refresh kinds of hf_eval: keep the cached target, recompute it all (new scale), or — QTIP only —
 * re-quantize the tiles ≡ part (mod parts) with the cached scale (hf_set_part; §4.12). */
enum { HF_KEEP = 0, HF_REFRESH = 1, HF_REFRESH_PART = 2 };

typedef struct hf_terms {
    double loss;   /* proxy + λ·hbd */
    double proxy;  /* L_proxy */
    double hbd;    /* L_hbd (unweighted) */
} hf_terms;

/* Loss/gradient engine over a pair of butterflies. Data layout: each side transforms a matrix held
 * "coordinate-major" (the transformed index is the slow one, the batch of vectors is contiguous), so
 * every stage is a set of independent b×b mixes of contiguous rows (vectorised over the batch), and
 * the proxy's 8-vectors come out contiguous in W̃. Stage inputs are kept for the backward pass. */
typedef struct hf_ctx_f32 hf_ctx_f32;
typedef struct hf_ctx_f64 hf_ctx_f64;

harp_status hf_ctx_create_f32(harp_rot *U, harp_rot *V, const float *W, const double *H, const hf_opts *o,
                              hf_ctx_f32 **out);
harp_status hf_ctx_create_f64(harp_rot *U, harp_rot *V, const float *W, const double *H, const hf_opts *o,
                              hf_ctx_f64 **out);
void hf_ctx_destroy_f32(hf_ctx_f32 *c);
void hf_ctx_destroy_f64(hf_ctx_f64 *c);
/* Loss at the rotations' current θ. refresh: recompute (s, T) from this W̃ (forced on the first call);
 * otherwise the cached target is used as a constant. dU, dV (may be NULL = no backward): dθ of the
 * stored upper-triangle parameters is ADDED (harp_rot_butterfly_backward convention, 2× the reference's
 * full-matrix gradient). */
harp_status hf_eval_f32(hf_ctx_f32 *c, int refresh, hf_terms *t, double *dU, double *dV);
harp_status hf_eval_f64(hf_ctx_f64 *c, int refresh, hf_terms *t, double *dU, double *dV);
/* The tiles the next HF_REFRESH_PART re-quantizes: index ≡ part (mod parts). */
void hf_set_part_f32(hf_ctx_f32 *c, int parts, int part);
void hf_set_part_f64(hf_ctx_f64 *c, int parts, int part);

/* Nearest codeword of one 8-vector in fp32 SIMD (proxy target of the fp32 engine). */
void hf_quantize8_fast(harp_codebook cb, double resid, const double x[8], double q[8]);

/* Adam (β1 0.9, β2 0.999, ε 1e−8, bias-corrected) on a flat vector. */
typedef struct hf_adam {
    int64_t n;
    double *m, *v;
    int64_t t;
} hf_adam;
harp_status hf_adam_init(hf_adam *a, int64_t n);
void hf_adam_free(hf_adam *a);
/* θ −= lr·m̂/(√v̂ + ε) with g = the reference-scale gradient. */
void hf_adam_step(hf_adam *a, double lr, const double *g, double *theta);

/* Nearest E8P codeword in fp32 (hf_e8p.c): the pruned search used by the fit and its full-scan twin,
 * which give bit-identical results; hf_e8p_orbits_ok checks the orbit tables behind the pruning. */
void hf_e8p_nearest_f32(const float x[8], float out[8]);
void hf_e8p_nearest_ref_f32(const float x[8], float out[8]);
int hf_e8p_orbits_ok(void);
/* The fp32 abs grid of the +¼ coset (coordinate-major [8][256]), norms and parities (the GPU engine's copy). */
void hf_e8p_tables(float abs_cm[8 * 256], float n2[256], int32_t odd[256]);

/* dst (cols×rows) = srcᵀ (rows×cols) in fp32 (hf_transpose.c), and its scalar twin. */
void hf_transpose_f32(const float *src, float *dst, int64_t rows, int64_t cols);
void hf_transpose_ref_f32(const float *src, float *dst, int64_t rows, int64_t cols);

#endif
