/* Saved-logits encoding. Rows store logit − max in fp16 (≤ 0, so the relative error of fp16 lands
 * on the small probabilities) plus an exact fp32 log-sum-exp and the fp32 argmax, so log p and
 * top-1 are recovered without re-normalising rounded values. */
#include "eval/ppl_logits.h"

#include <math.h>
#include <string.h>

#include "model/kernels.h"

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t get_u64(const uint8_t *p) {
    return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32);
}
static float get_f32(const uint8_t *p) {
    uint32_t u = get_u32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void harp_logits_write_header(const harp_logits_header *h, uint8_t out[HARP_LOGITS_HEADER_BYTES]) {
    memset(out, 0, HARP_LOGITS_HEADER_BYTES);
    memcpy(out, HARP_LOGITS_MAGIC, 8);
    put_u32(out + 8, HARP_LOGITS_VERSION);
    put_u32(out + 12, h->vocab);
    put_u32(out + 16, h->ctx);
    put_u32(out + 20, h->n_chunks);
    put_u64(out + 24, h->n_tokens);
    memcpy(out + 32, h->ids_sha256, 32);
    put_u32(out + 64, 1); /* row encoding: 1 = f32 lse, i32 argmax, fp16 (logit - max) */
}

harp_status harp_logits_read_header(const uint8_t *buf, size_t size, const char *name, harp_logits_header *h) {
    memset(h, 0, sizeof *h);
    if (size < HARP_LOGITS_HEADER_BYTES || memcmp(buf, HARP_LOGITS_MAGIC, 8))
        return harp_err(HARP_ERR_FORMAT, "%s: not a harp logits file (bad magic or shorter than the header)", name);
    if (get_u32(buf + 8) != HARP_LOGITS_VERSION || get_u32(buf + 64) != 1)
        return harp_err(HARP_ERR_UNSUPPORTED, "%s: logits file version %u / encoding %u not supported", name,
                        get_u32(buf + 8), get_u32(buf + 64));
    h->vocab = get_u32(buf + 12);
    h->ctx = get_u32(buf + 16);
    h->n_chunks = get_u32(buf + 20);
    h->n_tokens = get_u64(buf + 24);
    memcpy(h->ids_sha256, buf + 32, 32);
    if (!h->vocab || h->vocab > (1u << 24) || h->ctx < 2)
        return harp_err(HARP_ERR_FORMAT, "%s: invalid vocab %u or ctx %u", name, h->vocab, h->ctx);
    uint64_t need = HARP_LOGITS_HEADER_BYTES + (uint64_t)h->n_chunks * (h->ctx - 1) * harp_logits_row_bytes(h->vocab);
    if (need != size)
        return harp_err(HARP_ERR_FORMAT, "%s: size %zu does not match its header (%u windows of ctx %u, vocab %u: %llu bytes)",
                        name, size, h->n_chunks, h->ctx, h->vocab, (unsigned long long)need);
    return HARP_OK;
}

void harp_logits_encode_row(const float *lg, uint32_t vocab, uint8_t *dst) {
    float mx;
    int am = 0;
    float lse = (float)harp_logsumexp_row(lg, (int)vocab, &mx, &am);
    uint32_t u;
    memcpy(&u, &lse, 4);
    put_u32(dst, u);
    put_u32(dst + 4, (uint32_t)am);
    for (uint32_t i = 0; i < vocab; i++) {
        float d = lg[i] - mx;
        uint16_t h = harp_f32_to_f16(d < -60000.0f ? -60000.0f : d);
        dst[8 + 2 * i] = (uint8_t)h;
        dst[9 + 2 * i] = (uint8_t)(h >> 8);
    }
}

double harp_logits_kld_row(const uint8_t *row, uint32_t vocab, const float *lg, int *base_top) {
    double lse_b = get_f32(row);
    uint32_t am = get_u32(row + 4);
    *base_top = am < vocab ? (int)am : 0;
    float mx;
    double lse_t = harp_logsumexp_row(lg, (int)vocab, &mx, NULL) + mx;
    double kl = 0;
    for (uint32_t i = 0; i < vocab; i++) {
        double lpb = harp_f16_to_f32((uint16_t)(row[8 + 2 * i] | (row[9 + 2 * i] << 8))) - lse_b;
        double lpt = (double)lg[i] - lse_t;
        double pb = exp(lpb);
        if (pb > 0) kl += pb * (lpb - lpt);
    }
    return kl;
}
