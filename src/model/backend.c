/* Backend handles: reference counting, name, capability query. */
#include "model/backend.h"

#include "core/core.h"

/* A count that reached 0 is never raised again (the backend is being destroyed): retain fails. */
harp_backend *harp_backend_retain(harp_backend *b) {
    if (!b || b->refs < 0) return b;
    int r = __atomic_load_n(&b->refs, __ATOMIC_ACQUIRE);
    while (r > 0)
        if (__atomic_compare_exchange_n(&b->refs, &r, r + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return b;
    return NULL;
}

void harp_backend_free(harp_backend *b) {
    if (!b || b->refs < 0) return;
    if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0 && b->vt->destroy) b->vt->destroy(b);
}

const char *harp_backend_name(const harp_backend *b) {
    return b ? b->name : "";
}

harp_aq_planes harp_kv_planes(const harp_kv_cache *kv, int layer, int which, int row) {
    const size_t r = (size_t)layer * kv->rows + (size_t)row, gi = r * (size_t)kv->groups;
    harp_aq_planes p = {0};
    p.codes = (uint8_t *)(which ? kv->v : kv->k) + r * kv->row_bytes;
    p.scale16 = (uint16_t *)(which ? kv->v_scale : kv->k_scale) + gi;
    if (which ? kv->v_zero : kv->k_zero) p.zero = (uint8_t *)(which ? kv->v_zero : kv->k_zero) + gi;
    return p;
}

/* An op whose vtable entry is optional (aquant, linear_ex) is unsupported where the backend leaves it NULL. */
int harp_backend_supports(const harp_backend *b, harp_op op, harp_qtype t) {
    if (b && op == HARP_OP_AQUANT && !b->vt->aquant) return 0;
    if (b && op == HARP_OP_LINEAR_GLU && !b->vt->linear_ex) return 0;
    return b && op >= 0 && op < HARP_OP_COUNT && b->vt->supports(b, op, t);
}
