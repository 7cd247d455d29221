/* QTIP trellis matrices in the GPU decode engine, host side (dec_qtip.c): the check, packing,
 * stored and packed values of the DL_QTIP<K>_<CODE> types (decode_layout.h). Private to src/cuda:
 * dec_pack.c and dec_ref.c dispatch here for those types. */
#ifndef HARP_CUDA_DEC_QTIP_H
#define HARP_CUDA_DEC_QTIP_H

#include "cuda/decode.h"

/* Lane chunks of a plane (dec_pack.c): L bytes as 16-byte pieces interleaved by lane. */
void dec_put_chunk(uint8_t *plane, const dec_weights *w, int32_t rt, int32_t st, int lane, int L, const void *chunk);
void dec_get_chunk(const uint8_t *plane, const dec_weights *w, int32_t rt, int32_t st, int lane, int L, void *chunk);

/* The stored matrix (quant/trellis.h) over QTIP planes (no copy). */
struct harp_tmat;
void dec_qtip_tmat(const dec_qplanes *q, struct harp_tmat *out);
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

#endif
