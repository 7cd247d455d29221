/* The folder format module (src/qformat): quantization_config → per-layer configuration (uniform in
 * version 1, empty activation / KV slots), the codebook ↔ method + bits check with its messages,
 * the rotation recipes' names and kinds, and a qtensor written to folder tensors and read back
 * byte for byte (planes, slice scales, signs, rotation blobs) with the loader's validation. */
#include <string.h>

#include "core/core.h"
#include "qformat/qformat.h"
#include "quant_testlib.h"
#include "test_util.h"

static harp_status parse(const char *qc_json, int *is_harp, qf_config *qc) {
    char buf[1024];
    snprintf(buf, sizeof buf, "{\"hidden_size\": 8, \"quantization_config\": %s}", qc_json);
    return qf_config_parse(buf, strlen(buf), "cfg.json", 3, is_harp, qc);
}

static void test_config(void) {
    int is_harp = 1;
    qf_config qc;
    CHECK_OK(parse("{\"quant_method\": \"gptq\", \"bits\": 4}", &is_harp, &qc));
    CHECK(!is_harp && qc.layers == NULL);
    CHECK_OK(parse("{\"quant_method\": \"harp\", \"version\": 1, \"method\": \"quip\", \"bits\": 3, \"codebook\": "
                   "\"e8p12_rvq3b\", \"rotation\": \"harp\", \"group_size\": 0, \"seed\": \"18446744073709551615\"}",
                   &is_harp, &qc));
    CHECK(is_harp && qc.wtype == HARP_QTYPE_RVQ3 && qc.rotation == HARP_QROT_HARP && qc.seed == UINT64_MAX);
    CHECK(qc.n_layers == 3);
    for (int l = 0; l < qc.n_layers; l++)
        CHECK(qc.layers[l].wtype == HARP_QTYPE_RVQ3 && qc.layers[l].rotation == HARP_QROT_HARP &&
              qc.layers[l].act_type == HARP_QTYPE_F32 && qc.layers[l].kv_type == HARP_QTYPE_F32 &&
              !qc.layers[l].online_rot && !qc.layers[l].head_rot);
    char desc[160];
    qf_config_desc(&qc, desc, sizeof desc);
    CHECK(!strcmp(desc, "harp v1: quip 3-bit e8p12_rvq3b, rotation harp, seed 18446744073709551615"));
    qf_config_free(&qc);
    CHECK(parse("{\"quant_method\": \"harp\", \"version\": 1, \"method\": \"rtn\", \"bits\": 4, \"codebook\": \"e8p12\", "
                "\"rotation\": \"none\", \"group_size\": 128}", &is_harp, &qc) == HARP_ERR_FORMAT);
    CHECK(strstr(harp_last_error(), "cfg.json: quantization_config: codebook e8p12 does not fit method rtn at 4 bits"));
    CHECK(parse("{\"quant_method\": \"harp\", \"version\": 1, \"method\": \"rtn\", \"bits\": 5, \"codebook\": \"scalar\", "
                "\"rotation\": \"none\", \"group_size\": 128}", &is_harp, &qc) == HARP_ERR_FORMAT);
    CHECK(strstr(harp_last_error(), "does not fit method rtn at 5 bits"));
    CHECK(parse("{\"quant_method\": \"harp\", \"version\": 1, \"method\": \"quip\", \"bits\": 2, \"codebook\": \"q4_0\", "
                "\"rotation\": \"rht\", \"group_size\": 0}", &is_harp, &qc) == HARP_ERR_UNSUPPORTED);
    CHECK(strstr(harp_last_error(), "quantization_config.codebook 'q4_0' unknown"));
    CHECK(qc.layers == NULL);
    /* rotation recipes: names and the one recipe → kind mapping */
    static const harp_qrot all[] = {HARP_QROT_NONE, HARP_QROT_RHT, HARP_QROT_KRON, HARP_QROT_RANDOM, HARP_QROT_GSR, HARP_QROT_HARP};
    static const int kinds[] = {-1, HARP_ROT_HADAMARD, HARP_ROT_KRON, HARP_ROT_RANDOM_ORTHOGONAL, HARP_ROT_GSR, HARP_ROT_BUTTERFLY};
    for (int i = 0; i < 6; i++) {
        harp_qrot r;
        CHECK(harp_qrot_parse(harp_qrot_name(all[i]), &r) == HARP_OK && r == all[i]);
        CHECK(harp_qrot_kind(all[i]) == kinds[i]);
    }
}

/* A group written with qf_put_qtensor reads back with qf_get_qtensor to the same planes and transforms. */
static void test_roundtrip(harp_qtype type, int gidx) {
    harp_rng rng;
    harp_rng_seed(&rng, 5 + (uint64_t)type);
    const int64_t len[3] = {16, 8, 8}, m = 32, n = 172;
    harp_qtensor w, r;
    CHECK_OK(qt_random_tensor(&rng, type, m, n, 32, gidx, &w));
    w.xf.n_slices = 3;
    for (int i = 0; i < 3; i++) w.xf.slice_len[i] = len[i], w.xf.slice_scale[i] = 0.5f + (float)i;
    w.xf.s_in = malloc((size_t)n);
    w.xf.s_out = malloc((size_t)m);
    for (int64_t j = 0; j < n; j++) w.xf.s_in[j] = (j % 3) ? 1 : -1;
    for (int64_t i = 0; i < m; i++) w.xf.s_out[i] = (i % 5) ? -1 : 1;
    CHECK_OK(harp_rot_create(HARP_ROT_HADAMARD, n, NULL, 0, &w.xf.rot_in));
    CHECK_OK(harp_rot_create(HARP_ROT_HADAMARD, m, NULL, 0, &w.xf.rot_out));
    CHECK_OK(harp_qtensor_derive(&w));
    qf_tensors l = {0};
    l.origin = "mem";
    int64_t cb = 0, xb = 0;
    CHECK_OK(qf_put_qtensor(&l, "model.layers.0.self_attn.qkv_proj", &w, &cb, &xb));
    CHECK(cb + xb == qf_tensors_bytes_with_prefix(&l, "model.layers.0.self_attn.qkv_proj"));
    CHECK(xb > m + n);
    const harp_qtype_traits *tr = harp_qtype_traits_of(type);
    /* folder order: the type's planes, slice scales, su, sv, rot_in, rot_out */
    int k = 0;
    for (int i = 0; i < tr->n_planes; i++)
        if (w.planes[i].data) CHECK(strstr(l.t[k++].name, tr->planes[i].suffix) != NULL);
    static const char *const tail[] = {"slice_scales", "su", "sv", "rot_in", "rot_out"};
    for (int i = 0; i < 5; i++) CHECK(k + i < l.n && strstr(l.t[k + i].name, tail[i]) != NULL);
    qf_layer_config lc = {type, HARP_QROT_RHT, 32, 0, 0, HARP_QTYPE_F32, HARP_QTYPE_F32};
    CHECK_OK(qf_get_qtensor(&l, "model.layers.0.self_attn.qkv_proj", &lc, n, 3, len, &r));
    for (int i = 0; i < HARP_QT_MAX_PLANES; i++)
        CHECK(r.planes[i].nbytes == w.planes[i].nbytes &&
              (!w.planes[i].data || !memcmp(r.planes[i].data, w.planes[i].data, w.planes[i].nbytes)));
    CHECK(r.scale0 == w.scale0 && r.scale1 == w.scale1 && r.n_groups == w.n_groups);
    CHECK(!memcmp(r.xf.out_mul, w.xf.out_mul, sizeof(float) * (size_t)m) && !memcmp(r.xf.in_mul, w.xf.in_mul, sizeof(float) * (size_t)n));
    /* without rotation in the configuration the stored transforms are not read */
    harp_qtensor_free(&r);
    lc.rotation = HARP_QROT_NONE;
    CHECK_OK(qf_get_qtensor(&l, "model.layers.0.self_attn.qkv_proj", &lc, n, 3, len, &r));
    CHECK(r.xf.rot_in == NULL && r.xf.s_in == NULL);
    harp_qtensor_free(&r);
    /* a wrong shape in the configuration names the tensor */
    lc.rotation = HARP_QROT_RHT;
    CHECK(qf_get_qtensor(&l, "model.layers.0.self_attn.qkv_proj", &lc, n - 8, 3, len, &r) == HARP_ERR_SHAPE);
    CHECK(strstr(harp_last_error(), "mem: tensor 'model.layers.0.self_attn.qkv_proj.") != NULL);
    qf_tensors_free(&l);
    harp_qtensor_free(&w);
}

int main(void) {
    test_config();
    for (int t = 0; t < HARP_QTYPE_COUNT; t++) {
        const harp_qtype_traits *tr = harp_qtype_traits_of((harp_qtype)t);
        if (!tr || !tr->legacy_codebook) continue; /* types a v1 folder can hold */
        test_roundtrip((harp_qtype)t, 0);
        if (tr->layout == HARP_QLAYOUT_SCALAR) test_roundtrip((harp_qtype)t, 1);
    }
    return t_done();
}
