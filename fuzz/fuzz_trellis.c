/* libFuzzer: a QTIP trellis code plane (docs/format/trellis.md) as a folder would hand it to the
 * kernels — shape, K, code, scale, the HYB table, the words — through harp_tmat_check and, when it
 * passes, the tile decoder and the reference GEMV. Layout of the input: m and n (one byte each,
 * 1..64), K (2..5: 5 is invalid), code (0..4), fp32 scale, a byte saying whether a table follows (then
 * 1024 fp16 values), then the code words: a truncated or overlong stream, a wrong tile count, a
 * missing or non-finite table must be refused with one error, never read past. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/trellis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    harp_set_log_level(HARP_LOG_NONE);
    if (size < 9) return 0;
    harp_tmat w;
    memset(&w, 0, sizeof w);
    w.m = 1 + data[0] % 64;
    w.n = 1 + data[1] % 64;
    w.K = 2 + data[2] % 4;
    w.code = (harp_tcode)(data[3] % 5);
    memcpy(&w.scale, data + 4, 4);
    size_t at = 9;
    uint16_t *tlut = NULL, *codes = NULL;
    if (data[8] & 1) {
        if (size - at < 2 * HARP_HYB_N * sizeof(uint16_t)) return 0;
        tlut = malloc(2 * HARP_HYB_N * sizeof(uint16_t));   /* exact size: ASan sees any overread */
        if (!tlut) return 0;
        memcpy(tlut, data + at, 2 * HARP_HYB_N * sizeof(uint16_t));
        at += 2 * HARP_HYB_N * sizeof(uint16_t);
    }
    w.tlut = tlut;
    w.ncodes = (size - at) / sizeof(uint16_t);
    codes = malloc(w.ncodes ? w.ncodes * sizeof(uint16_t) : 1);
    if (!codes) {
        free(tlut);
        return 0;
    }
    if (w.ncodes) memcpy(codes, data + at, w.ncodes * sizeof(uint16_t));
    w.codes = codes;
    if (harp_tmat_check(&w, "fuzz") == HARP_OK) {
        float *out = malloc(sizeof(float) * (size_t)w.m * (size_t)w.n), *x = malloc(sizeof(float) * (size_t)w.n),
              *y = malloc(sizeof(float) * (size_t)w.m);
        if (out && x && y) {
            harp_tmat_dequant_rows(&w, 0, w.m, out, (size_t)w.n);
            for (int32_t i = 0; i < w.n; i++) x[i] = 1.0f / (float)(1 + i);
            harp_tmat_gemv_ref(&w, x, y);
        }
        free(out), free(x), free(y);
    }
    free(codes);
    free(tlut);
    return 0;
}
