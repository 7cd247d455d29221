/* Weight + activation + KV-cache quantization with rotations (`harp quantize --method wakv`, issue 14;
 * algorithms.md §6): the model is rotated offline (RMSNorm folded, R1 on the residual stream, R2 per
 * head, R4's offline half on the down projection), its Hessians are collected on the rotated model,
 * the weights quantized by RTN or GPTQ (the scalar pipeline, docs/format/qmodel.md), and the folder's
 * quantization_config.wakv tells the forward pass to run R3 / R4 online, quantize activations per
 * token at every decoder linear input (the head never) and keep K / V low-bit in the KV cache.
 * CPU only in this phase: other backends refuse such a folder with one line. */
#ifndef HARP_WAKV_H
#define HARP_WAKV_H

#include <stddef.h>
#include <stdint.h>

#include "harp/common.h"
#include "harp/qmodel.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { HARP_CLIP_SCOPE_LAYER = 0, HARP_CLIP_SCOPE_CLASS = 1, HARP_CLIP_SCOPE_MODEL = 2 };
enum { HARP_CLIP_LOSS_NLL = 0, HARP_CLIP_LOSS_KLD = 1 };

typedef struct harp_wakv_params {
    harp_qmethod w_quant;      /* HARP_QMETHOD_RTN or HARP_QMETHOD_GPTQ (default GPTQ)               */
    int w_bits;                /* 2, 3, 4, 8 (default 4)                                              */
    int w_group;               /* scalar group (default 0 = per output channel)                       */
    int w_sym, w_clip;         /* symmetric weight grid; MSE-clipped grid (QuaRot's --w_clip) (0, 0)   */
    int act_order;             /* GPTQ columns by decreasing H_ii, static groups (default 0)          */
    int a_bits;                /* 3, 4, 8, or 16 = activations unquantized (default 16)               */
    int a_group;               /* activation groups of this many channels per token (QuaRot's 128G
                                  configuration); 0 = one group per token (default). Must divide
                                  every decoder linear input width (checked when the slots are set) */
    int kv_bits;               /* 2, 3, 4, 8, or 16 = fp32 KV cache (default 16)                      */
    int kv_group;              /* K / V groups of this many channels per (token, head); 0 = head_dim,
                                  one group per head (default). Must divide head_dim              */
    const char *rotation;      /* R1 = R2 kind: "none", "random", "hadamard" (default), "gsr"        */
    int gsr_block;             /* gsr: G, a power of two (0 = 128, lowered to the largest power of
                                  two dividing the width)                                           */
    float a_clip, kv_clip;     /* fixed clip ratios in (0, 1] (default 1)                             */
    unsigned a_skip;           /* ablation: bit g (qkv 0, o 1, up_gate 2, down 3) = that linear input
                                  stays unquantized (default 0; harp_wakv_skip_parse)               */
    int clip_search;           /* 1: ratios by the progressive search (§6.3, our schedule) on the
                                  calibration text, shared as search_scope says                     */
    int search_iters;          /* ternary steps per class and pass (default 8)                        */
    int search_windows;        /* calibration windows in the search's loss (default 2)                */
    int search_scope;          /* what shares one searched ratio: HARP_CLIP_SCOPE_LAYER (default: every
                                  (layer, class)), _CLASS (a class across layers), _MODEL (one for
                                  the activations, one for K / V)                                    */
    int search_loss;           /* HARP_CLIP_LOSS_NLL (default): the windows' mean NLL; _KLD: their mean
                                  KL divergence from the model with weights quantized and activations
                                  / K / V not                                                      */
    const char *calib_text;    /* calibration text (may be NULL when hess_dir already holds the rotated
                                  model's Hessians and there is no clip search)                      */
    size_t calib_len;
    int calib_ctx, calib_nseq; /* 0: min(512, max_position_embeddings) tokens, 128 windows           */
    int w_calib;               /* gptq: where the Hessians come from (harp_wcalib, harp/qmodel.h):
                                  HARP_WCALIB_FILES (default) the rotated model's, in hess_dir or
                                  computed there from calib_text; _SEQ / _ASYM the model being
                                  quantized, layer by layer, with its activation / K/V quantizers on
                                  (fixed ratios a_clip / kv_clip; a clip search comes after), on
                                  calib_nseq windows of calib_text (hess_dir is not used)           */
    uint64_t seed;
    /* --w-quant ldp: LDP fit (b) per decoder block after fit (a), the block running its rotations and
       activation / K/V quantizers (fixed ratios a_clip / kv_clip; a clip search comes after it), as
       harp_qmodel_params.ldp_* (0 / NULL: their defaults) */
    int ldp_fit_block;
    const char *ldp_text;
    size_t ldp_text_len;
    int ldp_ctx, ldp_nseq, ldp_steps;
    double ldp_lr;
    int ldp_gpu;
    int resume;                /* as harp_qmodel_params.resume (default 1)                            */
    int abort_after_layer;     /* test hook, as harp_qmodel_params.abort_after_layer (default -1)       */
    harp_progress_fn progress;
    void *progress_user;
} harp_wakv_params;

harp_wakv_params harp_wakv_default_params(void);
/* "qkv,o,up_gate,down" (any non-empty subset, comma-separated) → the a_skip mask; one error line else. */
harp_status harp_wakv_skip_parse(const char *list, unsigned *mask);
/* "layer", "class", "model" for HARP_CLIP_SCOPE_*; NULL for any other value. */
const char *harp_clip_scope_name(int scope);
/* "nll", "kld" for HARP_CLIP_LOSS_*; NULL for any other value. */
const char *harp_clip_loss_name(int loss);

/* The flag combinations that cannot work, refused with one line (HARP_ERR_INVALID_ARG). */
harp_status harp_wakv_check(const harp_wakv_params *p);

/* Quantizes m (fp32, opened from model_path) into out_dir. hess_dir holds (or receives, computed
 * from p->calib_text) the Hessians OF THE ROTATED MODEL; a folder with another model's Hessians (for
 * example those of the unrotated model) is refused; NULL with p->w_calib seq / asym. On return m is the model the folder holds
 * (rotated, quantized, its activation / KV slots set), e.g. for a perplexity right after. report as
 * harp_quantize_model's. */
harp_status harp_quantize_wakv(harp_model *m, const char *model_path, const char *hess_dir, const char *out_dir,
                               const harp_wakv_params *p, harp_qmodel_report *report);

#ifdef __cplusplus
}
#endif
#endif
