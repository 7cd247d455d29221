/* fp32 instantiation of the HARP loss/gradient engine (the fitting loop's precision, §4.7). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harpfit/hf_internal.h"

#define R float
#define SFX(x) x##_f32
#define KCAN(r, pt) bf_blocks_f32(r, pt)
#define KPREP(r) HARP_OK
#define QUANT8(cb, r, x, q) hf_quantize8_fast(cb, r, x, q)
#define TRANSPOSE(s, d, r, c) hf_transpose_f32(s, d, r, c)
#include "harpfit/hf_tpl.h"
