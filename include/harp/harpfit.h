/* HARP: fitting the learned two-sided butterfly processor of one linear layer on its Hessian
 * (algorithms.md §4.5–§4.9). The QuIP# pipeline calls harp_fit between sign conjugation and the
 * final transform (§4.1 steps 3–4); everything else (signs, Wscale, BlockLDLQ, codes) is unchanged.
 *
 * Conventions as in rotate.h / quant.h: W (m, n) row-major fp32, y = W x; H (n, n) fp64;
 * W̃ = R_Uᵀ W R_V, H̃ = R_Vᵀ H R_V. */
#ifndef HARP_HARPFIT_H
#define HARP_HARPFIT_H

#include <stdint.h>

#include "harp/common.h"
#include "harp/quant.h"
#include "harp/rotate.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct harp_fit_params {
    int steps;                   /* 1200 (0 = no fitting: the processors stay at θ = 0)            */
    int schedule;                /* harp_bf_schedule: greedy (the reference, §4.2) or hadamard
                                    (starts at the RHT's Had_n for every width, rotate.h)          */
    int base_b, max_b;           /* schedule radices, 8 and 8 (§4.2)                               */
    int passes;                  /* 1                                                              */
    double lr_u, lr_v;           /* Adam learning rates, 0.03 each                                 */
    double hbd_lambda;           /* 0.1 (0 disables the HBD term)                                  */
    int hbd_block;               /* 8                                                              */
    int q_every;                 /* proxy target refresh period in steps, 1                        */
    double theta_clip;           /* > 0: X = c·tanh θ; 0 = none (paper)                            */
    int givens_b2;               /* 1: one Givens angle per b = 2 block                            */
    int early_stop_window;       /* 0 = off (paper); else window W of §4.7                         */
    double early_stop_rel;       /* 0.01                                                           */
    int theta_int8;              /* 1: θ rounded to int8 with fp16 per-group scales BEFORE the
                                    final transform (our deviation, §4.9); 0: fp16 θ              */
    harp_codebook codebook;      /* proxy target codebook (E8P12 / RVQ3B / RVQ4B), or a QTIP type
                                    (qtip2/3/4: the trellis target of §4.12)                       */
    harp_tcode qtip_code;        /* QTIP target: trellis code (0 = hyb; its table from seed 0)      */
    int q_every_final;           /* QTIP refresh schedule (§4.12): final refresh period (2) and     */
    int q_parts;                 /* round-robin parts of a partial refresh (16); q_every = start   */
    int qtip_gpu;                /* 1: the trellis target's Viterbi on the CUDA device (same target) */
    double scale_override;       /* as harp_quant_params (0.9 at 2 bits, −1 ⇒ opt_scale)           */
    double resid_scale_override; /* −1 ⇒ opt_resid_scale                                           */
    int gpu;                     /* 1: loss/gradient engine on the CUDA device (src/cuda); 0: CPU.
                                    Same loss and dθ up to fp32 summation order (docs/gpu.md)      */
    harp_progress_fn progress;   /* stage "harp", done = step; may be NULL                         */
    void *progress_user;
} harp_fit_params;

/* Paper defaults for a QuIP# bit width (2, 3 or 4). */
harp_fit_params harp_fit_default_params(int bits);
/* Paper defaults on the QTIP backend (algorithms.md §8.2): the QuIP# ones with the qtip<bits>
 * target, hbd_block 16, q_every 2, q_every_final 2, q_parts 16, scale_override 0.9. */
harp_fit_params harp_fit_default_params_qtip(int bits, harp_tcode code);

typedef struct harp_fit_report {
    double loss0, loss_final;    /* total loss at step 0 and after the last step                   */
    double proxy0, proxy_final;  /* L_proxy part                                                   */
    double hbd0, hbd_final;      /* L_hbd (unweighted) before / after                              */
    int steps_run;               /* < steps when early stopping fired                             */
    double seconds, steps_per_s;
    double engine_seconds;       /* part of seconds spent in the loss/gradient engine (incl. dθ from
                                    dK); the rest is Adam, Cayley blocks (set_theta), bookkeeping */
    int64_t storage_bits;        /* HARP state of both sides as counted in §4.9                    */
} harp_fit_report;

/* Fits R_U (dimension m) and R_V (dimension n) on the sign-conjugated W_r (m, n) and the regularised
 * H_r (n, n). On success *R_U and *R_V are butterfly rotations (harp_rot_destroy) holding the final θ —
 * already int8-rounded when p->theta_int8, so that the caller's final transform and the runtime use
 * exactly the same rotation. seed only matters for options that draw random numbers (none of the
 * paper defaults do). rep may be NULL. Deterministic for any thread count. */
harp_status harp_fit(const harp_fit_params *p, int64_t m, int64_t n, const float *W_r, const double *H_r,
                     uint64_t seed, const char *what, harp_rot **R_U, harp_rot **R_V, harp_fit_report *rep);

/* Bits of HARP state stored for one side (§4.9): int8 θ + fp16 group scales, or fp16 θ. */
int64_t harp_fit_storage_bits(const harp_rot *r, int theta_int8);

#ifdef __cplusplus
}
#endif
#endif
