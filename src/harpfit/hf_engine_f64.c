/* fp64 instantiation of the HARP loss/gradient engine (gradient checks against finite differences). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harpfit/hf_internal.h"

#define R double
#define SFX(x) x##_f64
#define KCAN(r, pt) bf_blocks_f64(r, pt)
#define KPREP(r) bf_use_f64(r)
#define QUANT8(cb, r, x, q) harp_cb_quantize8(cb, r, x, q, NULL)
#include "harpfit/hf_tpl.h"
