/* llama2.c header parsing and layout computation; the loader (src/model/load_llama2c.c) copies
 * the tensors once the layout has been validated against the file size. */
#include "io/llama2c.h"

#include <stdio.h>
#include <string.h>

static int32_t rd_i32(const uint8_t *p) {
    return (int32_t)((uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24));
}

harp_status harp_l2c_parse(const uint8_t *buf, size_t size, const char *name, harp_model_config *c,
                           harp_l2c_layout *lay) {
    memset(c, 0, sizeof *c);
    memset(lay, 0, sizeof *lay);
    if (size < HARP_L2C_HEADER_BYTES)
        return harp_err(HARP_ERR_FORMAT, "%s: truncated llama2.c checkpoint (%zu bytes, header needs 28)", name, size);
    int32_t h[7];
    for (int i = 0; i < 7; i++) h[i] = rd_i32(buf + 4 * i);
    int shared = h[5] > 0;
    int32_t vocab = h[5] < 0 ? (h[5] == INT32_MIN ? 0 : -h[5]) : h[5];
    snprintf(c->arch, sizeof c->arch, "llama2.c");
    c->dim = h[0];
    c->hidden_dim = h[1];
    c->n_layers = h[2];
    c->n_heads = h[3];
    c->n_kv_heads = h[4];
    c->vocab_size = vocab;
    c->max_seq_len = h[6];
    if (c->dim <= 0 || c->n_heads <= 0 || c->dim % c->n_heads)
        return harp_err(HARP_ERR_FORMAT, "%s: invalid llama2.c header (dim %d, n_heads %d)", name, c->dim, c->n_heads);
    c->head_dim = c->dim / c->n_heads;
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0;
    c->rope_layout = HARP_ROPE_INTERLEAVED;
    c->rope_factor = 1.0;
    c->tied = shared;
    c->bos_id = 1;
    c->eos_id = 2;
    HARP_TRY(harp_config_validate(c, name));
    uint64_t dim = (uint64_t)c->dim, hid = (uint64_t)c->hidden_dim, L = (uint64_t)c->n_layers;
    uint64_t kv = (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim, V = (uint64_t)vocab;
    uint64_t o = 0;
    lay->emb = o;       o += V * dim;
    lay->rms_att = o;   o += L * dim;
    lay->wq = o;        o += L * dim * dim;
    lay->wk = o;        o += L * kv * dim;
    lay->wv = o;        o += L * kv * dim;
    lay->wo = o;        o += L * dim * dim;
    lay->rms_ffn = o;   o += L * dim;
    lay->w1 = o;        o += L * hid * dim;
    lay->w2 = o;        o += L * dim * hid;
    lay->w3 = o;        o += L * hid * dim;
    lay->rms_final = o; o += dim;
    lay->freq = o;      o += (uint64_t)c->max_seq_len * (uint64_t)c->head_dim; /* real + imag halves */
    lay->wcls = o;
    if (!shared) o += V * dim;
    lay->total_floats = o;
    uint64_t need = HARP_L2C_HEADER_BYTES + o * 4;
    if ((uint64_t)size != need)
        return harp_err(HARP_ERR_FORMAT, "%s: file has %zu bytes but the header (dim %d, hidden %d, layers %d, vocab %d%s) implies %llu",
                        name, size, c->dim, c->hidden_dim, c->n_layers, vocab, shared ? ", shared classifier" : ", separate classifier",
                        (unsigned long long)need);
    return HARP_OK;
}
