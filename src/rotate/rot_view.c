/* harp_rot_get_view (rot_view.h). */
#include <string.h>

#include "rotate/rot_internal.h"
#include "rotate/rot_view.h"

void harp_rot_get_view(const harp_rot *r, harp_rot_view *v) {
    memset(v, 0, sizeof *v);
    v->kind = r->kind;
    v->n = r->n;
    v->K = r->K > 0 ? r->K : 1;
    v->pow2 = r->pow2 > 0 ? r->pow2 : r->n;
    v->signs = r->signs;
    v->gsr_group = r->group;
    v->walsh_perm = r->walsh_perm;
    v->kron_p1 = r->kron_p1, v->kron_p2 = r->kron_p2;
    v->kron_a = r->kron_a, v->kron_b = r->kron_b;
    v->kron_pin = r->kron_pin, v->kron_pout = r->kron_pout;
    if (r->kind == HARP_ROT_BUTTERFLY) {
        v->T = r->T;
        v->P = r->P;
        v->radices = r->params.stages;
        v->blocks = (const float *const *)r->kf_can;
        v->fixed = r->fixed;
    }
}
