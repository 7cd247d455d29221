/* Out-of-place fp32 transpose for the HARP fit engine (between the two sides of the butterfly pair):
 * 8×8 tiles transposed in registers, parallel over row blocks. Exact, so bit-identical to the scalar
 * twin for any thread count. */
#include <string.h>

#include "harpfit/hf_internal.h"

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

void hf_transpose_ref_f32(const float *src, float *dst, int64_t rows, int64_t cols) {
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) dst[j * rows + i] = src[i * cols + j];
}

static inline HARP_ALWAYS_INLINE void tile8(const float *s, int64_t ls, float *d, int64_t ld) {
    v8f r[8], t[8], u[8];
    for (int k = 0; k < 8; k++) memcpy(&r[k], s + k * ls, 32);
    for (int k = 0; k < 8; k += 2) {
        t[k] = HARP_SHUF8(r[k], r[k + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[k + 1] = HARP_SHUF8(r[k], r[k + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int k = 0; k < 8; k += 4)
        for (int h = 0; h < 2; h++) {
            u[k + 2 * h] = HARP_SHUF8(t[k + h], t[k + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
            u[k + 2 * h + 1] = HARP_SHUF8(t[k + h], t[k + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        }
    /* u[k] (k < 4) holds columns k and k+4 of rows 0–3, u[k+4] the same of rows 4–7 */
    for (int k = 0; k < 4; k++) {
        v8f lo = HARP_SHUF8(u[k], u[k + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        v8f hi = HARP_SHUF8(u[k], u[k + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        memcpy(d + k * ld, &lo, 32);
        memcpy(d + (k + 4) * ld, &hi, 32);
    }
}

HARP_TARGET_CLONES
static void rows_block(const float *src, float *dst, int64_t rows, int64_t cols, int64_t i0, int64_t i1) {
    int64_t j0 = 0;
    if (i1 - i0 == 8)
        for (; j0 + 8 <= cols; j0 += 8) tile8(src + i0 * cols + j0, cols, dst + j0 * rows + i0, rows);
    for (int64_t i = i0; i < i1; i++)
        for (int64_t j = j0; j < cols; j++) dst[j * rows + i] = src[i * cols + j];
}

void hf_transpose_f32(const float *src, float *dst, int64_t rows, int64_t cols) {
    const int64_t nb = (rows + 7) / 8;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < nb; b++) rows_block(src, dst, rows, cols, b * 8, b * 8 + 8 < rows ? b * 8 + 8 : rows);
}
