/* W/A/KV execution slots of a model (issue 14): the online Hadamards R3 (q and k per head, after
 * RoPE), R4 (the down-projection input) and R_o (the o-projection input), the activation quantizer at every decoder linear input
 * (the head is never quantized) and the K/V quantizers of the typed KV cache, with clip ratios per
 * layer and tensor class. The model owns them; harp_model_slots_install writes them into the
 * per-layer slots of model/layer.h. A model without them runs exactly as before (empty slots).
 * Module API of src/model. */
#ifndef HARP_MODEL_SLOTS_H
#define HARP_MODEL_SLOTS_H

#include "model/backend.h"
#include "model/model.h"
#include "quant/aq.h"

/* Clip-ratio classes of a layer: the four linear inputs (HARP_LG_* order), then K and V. */
enum { HARP_CLIP_K = HARP_LG_COUNT, HARP_CLIP_V = HARP_LG_COUNT + 1, HARP_CLIP_COUNT = HARP_LG_COUNT + 2 };

typedef struct harp_wakv_exec {
    int r3, r4;           /* online plain Hadamards (the model's weights must carry R4's offline half) */
    int ro;               /* online plain Hadamard of n_heads·head_dim on the o-projection input: QuaRot's
                             online half of R2, which mixes across heads (W_o carries its offline half) */
    harp_aq_fmt act;      /* per-token activation quantizer (group 0 = the whole row); bits 0 = off   */
    harp_aq_fmt kv;       /* K and V per group of each row (group = head_dim: per (token, head));
                             bits 2, 3, 4 or 8, scales fp16 (forced); bits 0 = off                      */
    const float *clip;    /* n_layers × HARP_CLIP_COUNT ratios, or NULL: act.clip and kv.clip everywhere */
    unsigned act_skip;    /* bit g (HARP_LG_*): that linear input stays unquantized although act.bits > 0
                             (an ablation, e.g. 16-bit down inputs); 0 = every input quantized       */
} harp_wakv_exec;

/* Name of linear input g (HARP_LG_*) in activations.skip: "qkv", "o", "up_gate", "down"; NULL outside. */
const char *harp_lg_input_name(int g);
/* Sets (e) or clears (NULL) m's slots, after checking every format against the widths (one error
 * line naming the layer and class) and building R3 / R4 / R_o (refused when head_dim / hidden /
 * n_heads·head_dim has no Hadamard construction). Drops backend copies of m (harp_model_unload). */
harp_status harp_model_set_exec(harp_model *m, const harp_wakv_exec *e);
/* Changes one clip ratio in place (layer, class HARP_CLIP_*) of a quantizer m's slots hold; contexts
 * already created see it at their next forward. HARP_ERR_INVALID_ARG when that quantizer is off. */
harp_status harp_model_set_clip(harp_model *m, int layer, int cls, float clip);
/* The settings of m's slots (all off when none); clip is NULL. */
harp_wakv_exec harp_model_exec(const harp_model *m);
/* Writes the slots into m->layers[*].cfg (after the slots change or the weights are rotated). */
void harp_model_slots_install(harp_model *m);
void harp_model_slots_free(harp_model *m);

/* KV-cache type and quantizers (2·n_layers: K then V per layer) m's slots ask for; F32 and NULL when none. */
harp_qtype harp_model_kv_type(const harp_model *m, const struct harp_aquant **q);
/* HARP_ERR_UNSUPPORTED with one line when b lacks an op m's slots need. */
harp_status harp_model_slots_check(const harp_model *m, const harp_backend *b);

/* ---- folder form: quantization_config.wakv of a quantized folder (docs/format/qmodel.md) ---------------
 * "r3", "r4" (bools), "ro" (bool, absent = false; version 3 folders), "activations" {"bits", "symmetric", "group_size"[, "skip": ["down", …]]} and "kv_cache" {"bits",
 * "symmetric", "group_size", "scale_dtype": "f16"} (absent = off), "clip" (with any slot): one array of
 * HARP_CLIP_COUNT ratios per layer (classes in HARP_CLIP_* order). */
struct cJSON;
/* Adds m's slots to the object o in that form. */
harp_status harp_model_exec_to_json(const harp_model *m, struct cJSON *o);
/* Sets m's slots from the config.json text of a folder (nothing when it has no quantization_config.wakv);
 * errors name `name` and the key. */
harp_status harp_model_exec_from_config(harp_model *m, const char *json, size_t len, const char *name);

#endif
