/* Per-layer configuration of the forward pass and the linear groups that hold the model's weights
 * (module API of src/model).
 *
 * The forward pass multiplies by linear GROUPS, one call per group: q|k|v, o, up|gate, down, and the
 * head (a 1-slice group). Slices are in the canonical order of quantized folders: q, k, v and
 * up, gate. A group holds its weights directly: fp32 slices, or ONE harp_qtensor over all slices
 * (rows in slice order) computed once per call. Each group declares its weight type and has slots
 * for what the W/A/KV work adds (an online rotation of its input, an activation quantizer); each
 * layer has slots for a per-head online rotation after RoPE (R3) and a KV-cache quantizer. Slots
 * are NULL / F32 unless a W/A/KV model set them (model/slots.h); an empty slot costs one pointer test. */
#ifndef HARP_MODEL_LAYER_H
#define HARP_MODEL_LAYER_H
#include "harp/common.h"
#include "harp/qtensor.h"
#include "harp/qtype.h"
#include "harp/rotate.h"
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
    /* the weights: fp32 slices (qt == NULL), or one quantized tensor over all slices */
    float *w[HARP_LGROUP_MAX_SLICES];        /* (out[s] × in) row-major, fp32        */
    int w_borrowed;                          /* w[] belong to someone else (a head tied to the
                                                embeddings, a test's arrays): not freed here */
    harp_qtensor *qt;                        /* owned; m = out_total, n = in         */
    char kind[24];                           /* "f32", "harp-quip", … (model fingerprint) */
    float *bias[HARP_LGROUP_MAX_SLICES];     /* (out[s]) or NULL; owned             */
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

/* The seven linears of a decoder layer in checkpoint order, and where each one lives. */
enum { HARP_LIN_Q, HARP_LIN_K, HARP_LIN_V, HARP_LIN_O, HARP_LIN_GATE, HARP_LIN_UP, HARP_LIN_DOWN, HARP_LIN_COUNT };
typedef struct harp_lin_slot {
    int group, slice;
    const char *hf_name;              /* "self_attn.q_proj", … (below "model.layers.L.") */
} harp_lin_slot;
extern const harp_lin_slot harp_lin_slots[HARP_LIN_COUNT];

/* An empty fp32 group of n slices of out[s] × in (no weights yet): HARP_ERR_SHAPE naming `what` for
 * a bad shape. */
harp_status harp_lgroup_init(harp_lgroup *g, int n, const int *out, int in, const char *what);
/* Releases the owned weights, tensor and biases; leaves the shape. */
void harp_lgroup_free(harp_lgroup *g);
/* The group's weights become *qt (moved in; *qt is left zeroed): the fp32 slices are released, the
 * biases kept. HARP_ERR_SHAPE naming `what` when qt is not out_total × in. */
harp_status harp_lgroup_set_qtensor(harp_lgroup *g, harp_qtensor *qt, const char *kind, const char *what);
int harp_lgroup_has_bias(const harp_lgroup *g);
/* The group's weights in their stored form (one harp_qtensor over all slices, rows in slice order),
 * or NULL when they are fp32. Backends with kernels for the type upload this, never a dense copy. */
const struct harp_qtensor *harp_lgroup_qtensor(const harp_lgroup *g);

/* Whether the group is fp32 slices whose every weight is an fp16 value (a checkpoint stored in fp16,
 * read into fp32): then harp_lgroup_f16_tensor holds the same numbers in half the bytes. */
int harp_lgroup_f16_exact(const harp_lgroup *g);
/* Such a group's slices stacked (out_total × in) into *t as an F16 tensor without transforms (the
 * caller frees it); HARP_ERR_INVALID_ARG when the group is not harp_lgroup_f16_exact. */
harp_status harp_lgroup_f16_tensor(const harp_lgroup *g, harp_qtensor *t);

/* Floats of scratch harp_lgroup_apply_host needs for `rows` rows (0 when none). */
size_t harp_lgroup_scratch_floats(const harp_lgroup *g, int rows);
/* The CPU product: Y[s] (rows × out[s], contiguous) = X · W_sᵀ + b_s for every slice. fp32 slices
 * run sgemm for rows > 1 and the fixed-order gemv for one row; a quantized group runs
 * harp_qtensor_apply once into scratch (harp_lgroup_scratch_floats; NULL = allocated here) and is
 * split into the slices. X is rows × in. */
harp_status harp_lgroup_apply_host(const harp_lgroup *g, const float *X, int rows, float *const *Y, float *scratch);

/* The group's effective dense weight W_effᵀ (in × out_total, row-major, slices side by side in
 * slice order), taken through the CPU product on identity rows (blocks of 64) so that any weight
 * representation gives its exact effective values; bias (out_total floats, zeros where a slice
 * has none) when non-NULL. */
harp_status harp_lgroup_dense_t(const harp_lgroup *g, float *wt, float *bias);

#endif
