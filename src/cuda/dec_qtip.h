/* QTIP trellis matrices in the GPU decode engine, host side (dec_qtip.c): the check, packing,
 * stored and packed values of the DL_QTIP<K>_<CODE> types (decode_layout.h). Private to src/cuda:
 * dec_pack.c and dec_ref.c dispatch here for those types. */
#ifndef HARP_CUDA_DEC_QTIP_H
#define HARP_CUDA_DEC_QTIP_H

#include "cuda/decode.h"

/* Lane chunks of a plane (dec_pack.c): L bytes as 16-byte pieces interleaved by lane. */
void dec_put_chunk(uint8_t *plane, const dec_weights *w, int32_t rt, int32_t st, int lane, int L, const void *chunk);
void dec_get_chunk(const uint8_t *plane, const dec_weights *w, int32_t rt, int32_t st, int lane, int L, void *chunk);

/* harp_tmat_check of the planes (error names the type); sets w->scale0. */
harp_status dec_qtip_check(const dec_qplanes *q, dec_weights *w);
/* Fills the packed planes and the HYB table of w (buffers allocated by the caller). */
void dec_qtip_pack(const dec_qplanes *q, dec_weights *w);
float dec_qtip_value(const dec_qplanes *q, int32_t r, int32_t c);
void dec_qtip_rows(const dec_qplanes *q, int32_t r0, int32_t r1, float *out, size_t ld);
/* Value at (r, c) decoded from the packed planes with dl_qtip_frag, times scale0. */
float dec_qtip_packed_value(const dec_weights *w, int32_t r, int32_t c);
/* The HYB table as the kernels read it: tab[row] = tlut[2·row] | tlut[2·row + 1] << 16. */
void dec_qtip_tab(const uint16_t *tlut, uint32_t tab[DL_HYB_ROWS]);

#ifdef HARP_HAVE_CUDA
/* dec_gemv_qtip.cu: the GEMV (warps per CTA: 4 or 8) and the fp16 dequantizer of a QTIP matrix,
 * the bodies of dec_gemv / dec_dequant_f16 for these types (arguments checked there). */
harp_status dec_gemv_qtip(const dec_weights *w, const void *x, int ldx, int B, float *y, int ldy, int warps, dec_stream stream);
harp_status dec_dequant_qtip(const dec_weights *w, int32_t r0, int32_t r1, void *out, int ld, dec_stream stream);
#endif

#endif
