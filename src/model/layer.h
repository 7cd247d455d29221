/* Per-layer configuration of the forward pass (module API of src/model).
 *
 * The forward pass multiplies by linear GROUPS, one call per group: q|k|v, o, up|gate, down, and the
 * head (a 1-slice group). Slices are in the canonical order of quantized folders: q, k, v and
 * up, gate. Each group declares its weight type and has slots for what the W/A/KV work adds (an
 * online rotation of its input, an activation quantizer); each layer has slots for a per-head
 * online rotation after RoPE (R3) and a KV-cache quantizer. Slots are NULL / F32 unless a W/A/KV
 * model set them (model/slots.h); an empty slot costs one pointer test.
 *
 * Phase 1: a group's weights are the model's harp_linear slices (fp32, or a quantized slice over
 * a group shared by its slices). Everything that touches them is in layer.c, so swapping them for
 * one harp_qtensor per group changes that file only. */
#ifndef HARP_MODEL_LAYER_H
#define HARP_MODEL_LAYER_H
#include "harp/common.h"
#include "harp/qtype.h"
#include "harp/rotate.h"
#include "model/linear.h"
#include "quant/aq.h"

#define HARP_LGROUP_MAX_SLICES 3

/* Activation / KV-cache quantizer of a slot (§6.1, quant/aq.h). An activation slot points at one;
 * a layer's kv_q points at two, K then V (each with its own clip ratio). */
struct harp_aquant {
    harp_aq_fmt fmt;
};

typedef struct harp_lgroup {
    int n_slices;
    int in;                                  /* input width                         */
    int out[HARP_LGROUP_MAX_SLICES];         /* output width of each slice          */
    int out_total;                           /* Σ out                               */
    harp_qtype qtype;                        /* weight type as held in memory       */
    const harp_linear *slice[HARP_LGROUP_MAX_SLICES];   /* phase-1 weights (and biases) */
    const harp_rot *rot_in;                  /* slot: online rotation of the input  */
    const struct harp_aquant *act_q;         /* slot: activation quantizer of the input */
} harp_lgroup;

/* Groups of a decoder layer. */
enum { HARP_LG_QKV = 0, HARP_LG_O = 1, HARP_LG_UPGATE = 2, HARP_LG_DOWN = 3, HARP_LG_COUNT = 4 };

typedef struct harp_layer_cfg {
    harp_lgroup g[HARP_LG_COUNT];
    const harp_rot *r3;               /* slot: per-head rotation of q and k after RoPE */
    harp_qtype kv_qtype;              /* KV-cache element type this layer wants: F32, or the
                                         scalar type of kv_q's bits (INT2 … INT8)            */
    const struct harp_aquant *kv_q;   /* slot: KV-cache quantizers, [0] K and [1] V          */
} harp_layer_cfg;

/* Fills g from n slices (all with the same input width; else HARP_ERR_SHAPE naming what). */
harp_status harp_lgroup_init(harp_lgroup *g, int n, const harp_linear *const *slices, harp_qtype qtype,
                             const char *what);
int harp_lgroup_has_bias(const harp_lgroup *g);
/* The group's weights in their stored form (one harp_qtensor over all slices, rows in slice order),
 * or NULL when they are not a stored quantized group (fp32). Backends with kernels for the type
 * upload this, never a dense copy. */
const struct harp_qtensor *harp_lgroup_qtensor(const harp_lgroup *g);

/* The CPU product: Y[s] (rows × out[s], contiguous) = X · W_sᵀ + b_s for every slice, with the
 * kernels and call shapes the model has always used (sgemm for rows > 1, the fixed-order gemv for
 * one row). X is rows × in. */
harp_status harp_lgroup_apply_host(const harp_lgroup *g, const float *X, int rows, float *const *Y);

/* The group's effective dense weight W_effᵀ (in × out_total, row-major, slices side by side in
 * slice order), taken through the CPU product on identity rows (blocks of 64) so that any weight
 * representation gives its exact effective values; bias (out_total floats, zeros where a slice
 * has none) when non-NULL. */
harp_status harp_lgroup_dense_t(const harp_lgroup *g, float *wt, float *bias);

#endif
