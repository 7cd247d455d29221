/* Synthetic decode workloads for tests and benchmarks (src/cuda/dec_synth.c): seeded random stored
 * planes of any quant type, sign vectors and butterflies, generated in memory. */
#ifndef HARP_CUDA_DEC_SYNTH_H
#define HARP_CUDA_DEC_SYNTH_H

#include "cuda/decode.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dec_synth {
    dec_qplanes q;   /* points into buf */
    void *buf[4];
} dec_synth;

/* Random planes of an m × n matrix: E8P/RVQ codes uniform over all codes, wscale 0.02 (RVQ:
 * second scale 0.02 / resid_scale); INT group 128 (whole row when n ≤ 128), scales in
 * [0.002, 0.012], zeros uniform; F16 N(0, 0.02²); QTIP (DL_QTIP<K>_<CODE>) random streams, wscale
 * 0.02, HYB table N(0, 1) in fp16. */
harp_status dec_synth_planes(int qtype, int32_t m, int32_t n, uint64_t seed, dec_synth *s);
void dec_synth_free(dec_synth *s);
/* n random ±1 floats (malloc'd; NULL on OOM). */
float *dec_synth_signs(int64_t n, uint64_t seed);
/* One-pass butterfly of dimension n with the greedy(8, 8) schedule and random Householder blocks. */
harp_status dec_synth_butterfly(int64_t n, uint64_t seed, int transpose, dec_xform *xf);

#ifdef __cplusplus
}
#endif
#endif
