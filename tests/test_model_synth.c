/* Synthetic models (src/model/synth.c): every quant type and transform the CPU decode bench builds
 * gives valid groups (harp_qtensor_check inside), finite logits through the CPU forward pass, the
 * same bits for the same seed and other bits for another; impossible requests are refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "test_util.h"

enum { NTOK = 5 };

/* Logits of the last of NTOK tokens, or NULL when building or evaluating failed (checked). */
static float *logits_of(const harp_synth_params *p) {
    harp_model *m = NULL;
    CHECK_OK(harp_model_synthetic(p, &m));
    if (!m) return NULL;
    harp_ctx *c = NULL;
    CHECK_OK(harp_ctx_create(m, 16, &c));
    float *lg = malloc(sizeof(float) * (size_t)p->vocab);
    int32_t ids[NTOK] = {1, 17, 42, 99, 7};
    if (c) CHECK_OK(harp_ctx_eval(c, ids, NTOK, lg, 0));
    harp_ctx_free(c);
    harp_model_free(m);
    return lg;
}

int main(void) {
    static const struct {
        harp_qtype t;
        int rot;
    } cases[] = {{HARP_QTYPE_F32, HARP_SYNTH_ROT_NONE}, {HARP_QTYPE_F16, HARP_SYNTH_ROT_NONE}, {HARP_QTYPE_E8P2, HARP_SYNTH_ROT_RHT},
                 {HARP_QTYPE_E8P2, HARP_SYNTH_ROT_HARP}, {HARP_QTYPE_RVQ3, HARP_SYNTH_ROT_RHT}, {HARP_QTYPE_RVQ4, HARP_SYNTH_ROT_HARP},
                 {HARP_QTYPE_INT4, HARP_SYNTH_ROT_NONE}, {HARP_QTYPE_INT4, HARP_SYNTH_ROT_RHT}, {HARP_QTYPE_INT2, HARP_SYNTH_ROT_RHT}};
    harp_synth_params p = harp_synth_default_params();
    p.dim = 64, p.hidden = 192, p.n_layers = 2, p.n_heads = 4, p.n_kv_heads = 2, p.vocab = 320, p.max_seq_len = 64;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p.qtype = cases[i].t, p.rotation = cases[i].rot, p.seed = 11;
        float *a = logits_of(&p), *b = logits_of(&p);
        p.seed = 12;
        float *o = logits_of(&p);
        if (!a || !b || !o) {
            CHECK_MSG(0, "%s rotation %d: no logits", harp_qtype_name(cases[i].t), cases[i].rot);
        } else {
            int finite = 1;
            double spread = 0;
            for (int v = 0; v < p.vocab; v++) finite &= isfinite(a[v]) != 0, spread += fabs(a[v] - a[0]);
            CHECK_MSG(finite && spread > 0, "%s rotation %d: logits finite %d, spread %g", harp_qtype_name(cases[i].t),
                      cases[i].rot, finite, spread);
            CHECK_MSG(!memcmp(a, b, sizeof(float) * (size_t)p.vocab), "%s rotation %d: same seed, different logits",
                      harp_qtype_name(cases[i].t), cases[i].rot);
            CHECK_MSG(memcmp(a, o, sizeof(float) * (size_t)p.vocab) != 0, "%s rotation %d: another seed, the same logits",
                      harp_qtype_name(cases[i].t), cases[i].rot);
        }
        free(a), free(b), free(o);
    }
    /* refused: dense fp32 with a transform, an unknown rotation, a shape the config check rejects */
    harp_model *m = NULL;
    p.qtype = HARP_QTYPE_F32, p.rotation = HARP_SYNTH_ROT_RHT;
    CHECK(harp_model_synthetic(&p, &m) == HARP_ERR_INVALID_ARG && !m);
    p.qtype = HARP_QTYPE_E8P2, p.rotation = 7;
    CHECK(harp_model_synthetic(&p, &m) == HARP_ERR_INVALID_ARG && !m);
    p.rotation = HARP_SYNTH_ROT_RHT, p.n_heads = 5;   /* dim 64 is not a multiple of 5 heads */
    CHECK(harp_model_synthetic(&p, &m) != HARP_OK && !m);
    return t_done();
}
