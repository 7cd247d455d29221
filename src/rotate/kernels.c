/* Instantiates the row kernels of kern_tpl.h for float and double. */
#include <math.h>
#include <string.h>

#include "rot_internal.h"

static inline const float *hadk_of_f32(const harp_rot *r) { return r->hadk_f; }
static inline const double *hadk_of_f64(const harp_rot *r) { return r->hadk_d; }
static inline const float *kfwd_of_f32(const harp_rot *r, int p, int t) { return r->kf_fwd[p * r->T + t]; }
static inline const double *kfwd_of_f64(const harp_rot *r, int p, int t) { return r->kd_fwd[p * r->T + t]; }
static inline const float *kinv_of_f32(const harp_rot *r, int p, int t) { return r->kf_inv[p * r->T + t]; }
static inline const double *kinv_of_f64(const harp_rot *r, int p, int t) { return r->kd_inv[p * r->T + t]; }

#define ELT float
#define SFX(name) name##_f32
#include "kern_tpl.h"
#undef ELT
#undef SFX

#define ELT double
#define SFX(name) name##_f64
#include "kern_tpl.h"
#undef ELT
#undef SFX
