/* Linear layers behind one interface, so that the forward pass does not care how a weight is stored.
 *
 * CONTRACT (for quantized linears, e.g. E8P/RVQ codes with incoherence rotations):
 *   - A harp_linear computes Y = X · Wᵀ (+ bias) for X of shape rows × in (row-major, contiguous)
 *     and Y of shape rows × out. W is logically out × in, as in PyTorch's nn.Linear.
 *   - `matmul` handles any rows ≥ 1 (the batched prompt / perplexity path); `gemv` handles one row
 *     (generation with the KV cache). Both write Y fully (no accumulation into Y) and must not
 *     modify X. They may use threads (OpenMP / BLAS) but must be deterministic: same inputs give
 *     bit-identical outputs, independent of the thread count for the gemv path of a given build.
 *   - `w` is the implementation's private weight representation; `free_w` releases it (NULL when
 *     the linear does not own it, e.g. a head tied to the embedding table).
 *   - Any input transform (a rotation applied to X before multiplying by stored rotated weights)
 *     and output transform are the implementation's business: the caller always passes the
 *     un-rotated activations and receives un-rotated outputs.
 *   - The bias (if any) is added by harp_linear_apply after matmul/gemv, so implementations need not
 *     handle it; it stays fp32.
 *   - `kind` is a short static string for `harp info` ("f32", "e8p", ...); `bits` the storage bits
 *     per weight (32 for fp32), used for size reports.
 * To plug a quantized format in: fill a harp_linear with your own w/matmul/gemv/free_w and store it
 * in the model's layer struct in place of the fp32 one (see src/model/model_internal.h). */
#ifndef HARP_MODEL_LINEAR_H
#define HARP_MODEL_LINEAR_H
#include <stddef.h>
#include <stdint.h>

typedef struct harp_linear harp_linear;

struct harp_linear {
    int in, out;
    void *w;
    float *bias;                 /* out floats or NULL; owned by the model arena */
    void (*matmul)(const harp_linear *l, const float *X, int rows, float *Y);
    void (*gemv)(const harp_linear *l, const float *x, float *y);
    void (*free_w)(harp_linear *l);
    const char *kind;
    float bits;
    /* a slice of a stored quantized group: the group's tensor (all slices of the group point at
     * the same one) and the slice's first row in it; NULL for fp32 linears */
    const struct harp_qtensor *packed;
    int64_t packed_row0;
};

/* fp32 linear over W (out × in, row-major). owns != 0: W is freed with free() by harp_linear_free. */
void harp_linear_init_f32(harp_linear *l, float *W, int out, int in, int owns);

/* Y = X·Wᵀ + bias, choosing gemv for rows == 1. */
void harp_linear_apply(const harp_linear *l, const float *X, int rows, float *Y);
void harp_linear_free(harp_linear *l);

/* fp32 weight pointer of an fp32 linear, NULL for other kinds. */
const float *harp_linear_f32_weight(const harp_linear *l);

/* Plain reference of Y = X·Wᵀ (double accumulation, single thread): the twin the sgemm path is
 * tested against. */
void harp_matmul_f32_ref(const float *W, int out, int in, const float *X, int rows, float *Y);

#endif
