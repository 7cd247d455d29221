/* Whole-model quantization pipeline (`harp quantize`) and the quantized model folder
 * (docs/format/qmodel.md): per decoder layer and linear group (qkv fused, o, up|gate fused, down)
 * load the layer's Hessians, normalise W, sign-conjugate and rotate (RHT / Kronecker / random /
 * GSR / HARP), quantize with harp_quantize_linear, and store codes, scales, signs and rotation
 * blobs. Quantized folders open through harp_model_open like any Hugging Face folder. */
#ifndef HARP_QMODEL_H
#define HARP_QMODEL_H

#include <stdint.h>

#include "harp/common.h"
#include "harp/harpfit.h"
#include "harp/model.h"
#include "harp/quant.h"
#include "harp/rotate.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Format version written to quantization_config.version. 1: weights only (every method but wakv);
 * 2: a `--method wakv` folder, whose quantization_config.wakv changes the function the folder computes
 * (online rotations, activation / KV quantizers), so builds that read only version 1 refuse it instead of
 * running it as a plain scalar folder; 3: a wakv folder whose o-projection input carries the online
 * Hadamard R_o (quantization_config.wakv.ro), which builds that know only versions 1 and 2 would
 * silently skip. The loader reads all three (wakv folders written as version 1 by earlier builds
 * included) and rejects any other. */
#define HARP_QMODEL_VERSION 1
#define HARP_QMODEL_VERSION_WAKV 2
#define HARP_QMODEL_VERSION_WAKV_RO 3

/* Incoherence rotation of a quantized linear (both sides). NONE: no signs, no rotation. Every
 * other kind first conjugates W and H by random signs s_out / s_in, then rotates:
 * RHT = Hadamard Had_n / Had_m (so V = diag(s_in)·Had_n), KRON / RANDOM / GSR = harp_rot_create of
 * that kind, HARP = the butterflies fitted by harp_fit. */
typedef enum harp_qrot {
    HARP_QROT_NONE = 0,
    HARP_QROT_RHT = 1,
    HARP_QROT_KRON = 2,
    HARP_QROT_RANDOM = 3,
    HARP_QROT_GSR = 4,
    HARP_QROT_HARP = 5
} harp_qrot;

const char *harp_qrot_name(harp_qrot r);                /* "none", "rht", ... */
harp_status harp_qrot_parse(const char *name, harp_qrot *out);
/* The harp_rot_kind both sides of a recipe use (RHT → HARP_ROT_HADAMARD: the random signs are
 * stored apart; HARP → HARP_ROT_BUTTERFLY), −1 for none. THE recipe → kind mapping. */
int harp_qrot_kind(harp_qrot r);

/* Where gptq takes each layer's Hessians from (harp_qmodel_params.w_calib). */
typedef enum harp_wcalib {
    HARP_WCALIB_FILES = 0, /* the Hessian folder (harp calib), computed once from the unquantized model */
    HARP_WCALIB_SEQ = 1,   /* the model being quantized, layer by layer (GPTQ's sequential order): the
                              inputs its linears see with the earlier layers already quantized and the
                              layer's activation / K/V slots on                                     */
    HARP_WCALIB_ASYM = 2   /* SEQ's Hessians, and each linear's target moved to the least-squares map of
                              the unquantized model's inputs onto those (W ← W·(C+λI)(H+λI)⁻¹ with
                              C = X̃ᵀX/N, X̃ the unquantized model's inputs to the same linear): what
                              the quantized inputs lose, the weights make up where they can       */
} harp_wcalib;
/* "files", "seq", "asym"; NULL for any other value. */
const char *harp_wcalib_name(int mode);

typedef struct harp_qmodel_params {
    harp_qmethod method;      /* rtn, gptq, quip, qtip                                          */
    int bits;                 /* rtn/gptq: 2, 3, 4, 8; quip, qtip: 2, 3, 4                        */
    harp_tcode qtip_code;     /* qtip: trellis code (hyb default; 1mad, 3inst)                     */
    int qtip_gpu;             /* qtip: Viterbi on the CUDA device (final quantization and the HARP
                                 fit's target; same codes as the CPU)                             */
    int group_size;           /* scalar methods: 128 (0 = per output channel)                    */
    int symmetric, mse_clip;  /* rtn, gptq: harp_quant_params' grid options (default 0, 0)          */
    int act_order;            /* gptq: columns by decreasing H_ii, static groups (default 0)       */
    harp_qrot rotation;       /* default: rht for quip and qtip, none for rtn/gptq                */
    uint64_t seed;            /* signs and random rotations (see harp_qmodel_layer_seed)          */
    harp_fit_params harp;     /* used when rotation == HARP_QROT_HARP                             */
    double scale_override;    /* quip: Wscale divisor for any rotation (> 0); 0 = the codebook's
                                 opt_scale, except HARP, which uses harp.scale_override (0.9 at
                                 2 bits, as the paper scripts)                                    */
    int resume;               /* 1: reuse OUT_DIR/.partial layers of a matching earlier run        */
    int abort_after_layer;    /* test hook: >= 0 stops with HARP_ERR_CANCELLED after that layer   */
    int keep_model;           /* 1: replace the linears of the input model by the quantized runtime
                                 (built from the same tensors that were written), for --ppl      */
    /* method ldp: fit (b) after fit (a) (docs/format/ldp.md): per decoder block, the block output
       error against the FP block on ldp_nseq windows of ldp_ctx tokens of ldp_text, activations
       from the already quantized previous blocks; rotation none only                            */
    int ldp_fit_block;        /* 0 (default): fit (a) only; 1: then fit (b)                        */
    const char *ldp_text;     /* calibration text (ldp_text_len bytes), not copied                 */
    size_t ldp_text_len;
    int ldp_ctx, ldp_nseq;    /* 128, 32                                                          */
    int ldp_steps;            /* Adam steps per block (100)                                        */
    double ldp_lr;            /* relative step (0.01, see harp_ldpb_params)                        */
    int ldp_gpu;              /* 1: the block's forward and backward on the CUDA device (fp64, the
                                 CPU block's ops up to summation order; needs a CUDA build)          */
    /* gptq: harp_wcalib; SEQ and ASYM run the layers as fp64 blocks (qmodel/ldpb.h) on calib_nseq
       evenly spaced windows of calib_ctx tokens of calib_text and never read the Hessian folder    */
    int w_calib;              /* HARP_WCALIB_FILES (default)                                      */
    const char *calib_text;   /* not copied                                                       */
    size_t calib_text_len;
    int calib_ctx, calib_nseq;/* 512, 32                                                          */
    harp_progress_fn progress;/* stage "quantize <layer>.<group>", done/total = linears            */
    void *progress_user;
} harp_qmodel_params;

harp_qmodel_params harp_qmodel_default_params(harp_qmethod method, int bits);

/* One quantized linear group. */
typedef struct harp_qmodel_row {
    char name[64];            /* "layers.3.qkv"                                                   */
    int64_t m, n;
    harp_qmethod method;
    int bits;
    double proxy_loss;        /* tr(ΔW H ΔWᵀ)/tr(W H Wᵀ) of the (normalised, fused) matrix         */
    double seconds;
    int64_t stored_bits;      /* every byte stored for it: code_bits + xf_bits                      */
    int64_t code_bits;        /* codes, scales, zero points, g_idx, slice scales                    */
    int64_t xf_bits;          /* transforms as stored: sign vectors + rotation blobs               */
    int64_t xf_bits_paper;    /* transforms as the HARP paper counts them (algorithms.md §4.9):
                                 1 bit per sign, HARP θ as harp_fit_storage_bits, 0 for Hadamard
                                 and GSR (no parameters), the stored blob for random / kron      */
    int64_t harp_bits;        /* HARP state as counted by harp_fit_storage_bits (0 otherwise)     */
    int64_t rot_blob_bits;    /* rotation blobs part of stored_bits                                */
    double harp_loss0, harp_loss_final;
    double fit_seconds;       /* HARP fitting loop (harp_fit_report.seconds; 0 for other rotations)  */
    double quant_seconds;     /* harp_quantize_linear (QuIP#: BlockLDLQ and its tune passes)       */
    int resumed;              /* 1: taken from OUT_DIR/.partial                                    */
    double ldp_block_loss0;   /* ldp block fit: the layer's block loss after fit (a) and after     */
    double ldp_block_loss;    /* fit (b), ‖Yq − Y‖² / ‖Y − X‖² (0 when not fitted in this run)     */
    double ldp_block_seconds; /* the layer's fit (b) time                                          */
} harp_qmodel_row;

typedef struct harp_qmodel_report {
    harp_qmodel_row *rows;
    int n_rows;
    int layers_resumed;
    int64_t n_weights;        /* weights of the quantized linears (embeddings, head, norms excluded) */
    int64_t stored_bits;
    double bpw;               /* stored_bits / n_weights                                          */
    double bpw_harp;          /* (stored_bits − rotation blobs + HARP bits) / n_weights; = bpw without HARP */
    double seconds;
} harp_qmodel_report;

void harp_qmodel_report_free(harp_qmodel_report *r);

/* Quantizes model m (opened from model_path, which supplies config.json / tokenizer files) with
 * the Hessians in hess_dir (NULL with p->w_calib seq / asym), writing the folder out_dir. report may be NULL. With p->keep_model the
 * linears of m are replaced by quantized ones on success (same bytes as the folder holds). */
harp_status harp_quantize_model(harp_model *m, const char *model_path, const char *hess_dir,
                                const char *out_dir, const harp_qmodel_params *p,
                                harp_qmodel_report *report);

/* Seed of (run seed, layer, group): harp_seed_mix(harp_seed_mix(seed, 0x5149 + layer), group).
 * Signs: s_in[j] = bit 63 of the j-th harp_rng_u64 draw of harp_rng seeded with it (1 → −1),
 * then s_out likewise continuing the same stream. Rotation seeds: mix(·, 1) input, mix(·, 2) output. */
uint64_t harp_qmodel_layer_seed(uint64_t seed, int layer, int group);

/* Short description of a quantized model ("quip 2-bit e8p12, rotation rht, group 128, seed 0"),
 * "" for a full-precision model. */
const char *harp_model_quant_desc(const harp_model *m);

#ifdef __cplusplus
}
#endif
#endif
