/* GPU decode engine, phase 1 (issue 12): packed weights in the device layouts of decode_layout.h,
 * decode GEMV/GEMM for 1–8 activation rows, the per-linear transforms (signs, FWHT / Had_K,
 * Kronecker, GSR, HARP butterfly), RMSNorm fused into the input side, RoPE + KV store, decode
 * attention over an fp16 KV cache, and the prefill path (dequantized fp16 tiles + cuBLAS).
 *
 * Every device entry point has a C reference twin here (dec_*_ref, plain loops, double
 * accumulation; compiled in every build) and the CPU side (packing, transform descriptions) is
 * plain C. The CUDA functions exist only with HARP_HAVE_CUDA; they take device pointers, run on the
 * given stream (NULL = default), check every launch and return HARP_ERR_NO_DEVICE on a CUDA error.
 * Phase 2 wires them behind the backend's ops; nothing here knows about models. */
#ifndef HARP_CUDA_DECODE_H
#define HARP_CUDA_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "cuda/decode_layout.h"
#include "harp/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- stored planes (exactly what a quantized folder holds, docs/format/qmodel.md) -------------- */
typedef struct dec_qplanes {
    int32_t qtype;            /* harp_qtype, or DL_QTIP<K>_<CODE> for a trellis matrix */
    int32_t m, n;             /* rotated-basis shape, y = W̃ x */
    const void *codes;        /* E8P2/RVQ: U16 [m][ceil(n/8)]; INT: U8 qweight [m][ceil(n·bits/8)]
                               * (LSB first); F16: U16 fp16 [m][n] */
    const void *codes2;       /* RVQ3: U8 E81B [m][ceil(n/8)]; RVQ4: U16 E8P [m][ceil(n/8)] */
    float wscale[2];          /* E8P2/RVQ: scale0, scale1 */
    const float *scales;      /* INT: F32 [m][ngroups] */
    const uint8_t *zeros;     /* INT: U8 [m][ngroups] */
    int32_t group_size;       /* INT: stored group size (0 or ≥ n: one group per row) */
    size_t ncodes;            /* QTIP: U16 words at codes (harp_tmat: 16·K per padded 16 × 16 tile) */
    const uint16_t *tlut;     /* QTIP HYB: fp16 [512][2] table; wscale[0] is Wscale */
    const void *levels;       /* LDP2: fp16 [m][4·ngroups] levels (codes: U8 qweight [m][ceil(n/4)], 2-bit, LSB
                               * first; group_size as INT); may be unaligned */
} dec_qplanes;

/* Stored value W̃[r][c] (the format's definition; c < n). */
float dec_qplanes_value(const dec_qplanes *q, int32_t r, int32_t c);
/* Stored rows [r0, r1) of W̃ into out (row stride ld ≥ n): dec_qplanes_value, or for QTIP the
 * trellis decoder (harp_tmat_dequant_rows, a tile at a time). */
void dec_qplanes_rows(const dec_qplanes *q, int32_t r0, int32_t r1, float *out, size_t ld);

/* ---- packed weights (host or device memory, same struct) ---------------------------------------- */
typedef struct dec_weights {
    int32_t qtype, m, n;
    int32_t nrt, nst;          /* row tiles (16 rows), column super-tiles (128 columns) */
    float scale0, scale1;      /* E8P2 / RVQ: Wscale; scale1 = 0 for E8P2 */
    void *plane[2];
    size_t plane_bytes[2];
    dl_meta_tile *meta;        /* INT only: [nrt][nst] */
    size_t meta_bytes;
    uint32_t *tab;             /* QTIP HYB only: the 512 fp16 pairs of the linear's table */
    size_t tab_bytes;
    int32_t group;             /* LDP2 only: columns per level group (n: per channel); planes: dec_ldp.h's
                                  codes and levels */
    int on_device;
} dec_weights;

/* Columns of the activation buffer a packed matrix reads (≥ n, zeros beyond n). */
static inline int32_t dec_npad(int32_t n) { return (n + DL_TILE_COLS - 1) / DL_TILE_COLS * DL_TILE_COLS; }

/* Validates q (shape, planes, group size, zeros < 2^bits) and fills the shape and byte counts of
 * *w (no buffers). HARP_ERR_UNSUPPORTED for group sizes that are not 128·k or a whole row. */
harp_status dec_pack_shape(const dec_qplanes *q, dec_weights *w);
/* Shape and byte counts of the packed layout of a type (no validation of planes, no buffers; LDP2 per
 * channel). */
harp_status dec_layout_shape(int qtype, int32_t m, int32_t n, dec_weights *w);
/* Packs into host buffers allocated here (dec_weights_free). */
harp_status dec_pack(const dec_qplanes *q, dec_weights *w);
void dec_weights_free(dec_weights *w);   /* host or device buffers; NULL-safe */
/* Packed bytes the GEMV reads (all planes + meta + HYB table). */
size_t dec_weights_bytes(const dec_weights *w);
/* Value decoded from the packed layout with the device decode helpers (for tests). */
float dec_packed_value(const dec_weights *w, const uint32_t *e8p_tab, int32_t r, int32_t c);
/* The 512-entry E8P table of decode_layout.h and the E81B table as fp16 [256][8]. */
const uint32_t *dec_e8p_table(void);
const uint16_t *dec_e81b_table_f16(void);

/* ---- transforms --------------------------------------------------------------------------------
 * A transform of a length-n row is a sequence of mixed-radix stages (algorithms.md §4.3): stage s
 * with radix b and step mixes, for every group c = blk·step + q of b elements
 * {blk·b·step + i·step + q}, v ← M_c v. Hadamard (FWHT stages with Sylvester H_8/H_4/H_2 blocks,
 * then hadK on the top digit), Kronecker (two shared factors) and HARP (one Cayley·mixer block per
 * group) are all such sequences; an optional gather before and scatter after express the Kronecker
 * and GSR permutations. A transform never includes the linear's own sign vectors: the caller passes
 * them (multiplied with its other elementwise factors) as pre / post vectors. */
#define DEC_MAX_STAGES 24
typedef struct dec_xstage {
    int32_t b;
    int64_t step;
    int32_t shared;      /* 1: mat is one b×b matrix; 0: mat is [n/b][b][b], groups in §4.3 order */
    const float *mat;    /* row-major M_c[i][j], v_i ← Σ_j M_c[i][j] v_j */
} dec_xstage;

typedef struct dec_xform {
    int64_t n;
    int32_t nstages;
    dec_xstage st[DEC_MAX_STAGES];
    double scale;        /* multiplies every output (1/√n for Hadamard) */
    int32_t *gather;     /* NULL or [n]: u[k] = x[gather[k]] before the stages */
    int32_t *scatter;    /* NULL or [n]: y[scatter[k]] = z[k] after the stages */
    void *owned;         /* storage of the builders (dec_xform_free) */
} dec_xform;

void dec_xform_free(dec_xform *xf);
/* Identity (no stages). */
void dec_xform_identity(int64_t n, dec_xform *xf);
/* x ↦ x·Had_n (transpose 0) or x·Had_nᵀ (transpose 1), QuIP#'s chunk-major Had_n (harp_rot
 * HARP_ROT_HADAMARD semantics). HARP_ERR_UNSUPPORTED when n has no Hadamard construction. */
harp_status dec_xform_hadamard(int64_t n, int transpose, dec_xform *xf);
/* HARP butterfly: T stages per pass (radices), P passes; blocks[p·T + t] = [n/b_t][b][b] canonical
 * Cayley·mixer blocks of (pass p, stage t). transpose 0: x·R (stages in order, v ← K v);
 * transpose 1: x·Rᵀ (reverse order, v ← Kᵀ v). Copies the blocks. */
harp_status dec_xform_butterfly(int64_t n, int P, int T, const int *radices, const float *const *blocks,
                                int transpose, dec_xform *xf);
/* Kronecker R[i][j] = (A⊗B)[pout[i]][pin[j]] (A p1×p1, B p2×p2 row-major, n = p1·p2). */
harp_status dec_xform_kron(int p1, int p2, const double *A, const double *B, const uint32_t *pin,
                           const uint32_t *pout, int transpose, dec_xform *xf);
/* GSR without its signs: blockdiag of natural FWHT on blocks of G, output j of a block = entry
 * perm[j], scale 1/√G (transpose: the inverse). */
harp_status dec_xform_gsr(int64_t n, int64_t G, const int64_t *perm, int transpose, dec_xform *xf);

/* 1 when stage s (of a transform of length n) has an entry fp16 cannot hold exactly, so the device keeps
 * its matrices in fp32 (HARP's Cayley blocks, Kronecker factors); 0 for the ±1 / ±½ Hadamard blocks,
 * which the device keeps in fp16 at half the bytes. */
int dec_xstage_needs_f32(const dec_xstage *s, int64_t n);

/* Takes ownership of a malloc'd block (freed by dec_xform_free); frees it and fails when full. */
harp_status dec_xform_adopt(dec_xform *xf, void *p);
/* Appends the stages of b (copied; b without gather / scatter, same n) and multiplies the scale. */
harp_status dec_xform_append(dec_xform *xf, const dec_xform *b);

/* out = the transpose of xf (the stages reversed, each block transposed, gather and scatter swapped),
 * its own copy: prefill's weight fold (dec_fold_weights) runs a linear's input transform on the rows
 * of W̃, which takes R_V's transpose. */
harp_status dec_xform_transpose(const dec_xform *xf, dec_xform *out);

/* ---- a model's linear group (dec_linear.c) --------------------------------------------------------
 * W = diag(out_mul)·R_U·W̃·R_Vᵀ·diag(in_mul) (harp/qtensor.h) as the engine runs it: the input side
 * x ⊙ pre then xin (R_V forward), the GEMV on the packed planes, the output side xout (R_U
 * transposed) then ⊙ post; pre = in_mul ⊙ R_V's own signs, post = R_U's signs ⊙ out_mul. */
struct harp_qtensor;
struct harp_rot;
typedef struct dec_linear {
    dec_qplanes q;      /* aliases the tensor's planes */
    dec_xform xin, xout;
    float *pre, *post;  /* n / m, or NULL (all ones) */
} dec_linear;
/* x·R (transpose 0) or x·Rᵀ as a stage list, and the rotation's own sign vector (NULL if none),
 * which multiplies the input before the stages (transpose 0) or the output after them (1).
 * HARP_ERR_UNSUPPORTED for the dense kinds (random orthogonal). */
harp_status dec_xform_from_rot(const struct harp_rot *r, int transpose, dec_xform *xf, const int8_t **signs);
/* The stored planes of t (no copy); HARP_ERR_UNSUPPORTED naming `what` for a type without a GPU
 * kernel (f32, bf16, ldp2) or act-order group indices. */
harp_status dec_qplanes_from_qtensor(const struct harp_qtensor *t, const char *what, dec_qplanes *q);
harp_status dec_linear_from_qtensor(const struct harp_qtensor *t, const char *what, dec_linear *L);
void dec_linear_free(dec_linear *L);
/* C twin of the engine's packed product: Y (rows × m) from X (rows × n) as the CUDA backend runs it:
 * split fp16 activations (dec_xin_split_ref: h and lo rows), the GEMV on both, ỹ = ỹ_h + ỹ_lo, then
 * dec_xout_ref. */
harp_status dec_linear_ref(const dec_linear *L, const float *X, int rows, float *Y);
/* W [m][n] = diag(post)·T_out·W̃·T_in·diag(pre), the whole linear as one matrix (y = W·x is what
 * dec_linear_ref computes), in double, W̃ rounded to fp16 first when f16_rows (the device's dequantized
 * rows): the twin of dec_fold_weights. */
harp_status dec_fold_ref(const dec_linear *L, int f16_rows, float *W);

/* log2 n when xf is c·H_n (Sylvester, natural order) for some c > 0 — every stage one shared, scaled
 * Sylvester block, the stages' digits tiling n, no permutations — with *scale = c (may be NULL); else 0. */
int dec_xform_fwht(const dec_xform *xf, double *scale);

/* ---- reference twins (plain loops, double accumulation) ---------------------------------------- */
/* y[b][r] = Σ_c W̃[r][c]·x[b][c] for b < B (x fp16 bits [B][ldx], y [B][ldy]). */
void dec_gemv_ref(const dec_qplanes *q, const uint16_t *x, int ldx, int B, float *y, int ldy);
/* In place on one row in double: gather, stages, scale, scatter. tmp: 2n doubles. */
void dec_xform_apply_ref(const dec_xform *xf, double *x, double *tmp);
/* Input side: for each of the B rows, u = x (⊙ rmsnorm with weight norm_w when norm_w != NULL,
 * harp_rmsnorm's formula) ⊙ pre (when != NULL), then the transform, then fp16 (round to nearest) into
 * out [B][ldo] with zeros in [n, npad). */
void dec_xin_ref(const dec_xform *xf, const float *x, int ldx, int B, const float *norm_w, float eps,
                 const float *pre, uint16_t *out, int ldo, int32_t npad);
/* dec_xin_ref that also writes the fp16 residual fp16(v − fp16(v)) into out_lo (may be NULL). */
void dec_xin_split_ref(const dec_xform *xf, const float *x, int ldx, int B, const float *norm_w, float eps,
                       const float *pre, uint16_t *out, uint16_t *out_lo, int ldo, int32_t npad);
/* Output side: z = transform(ỹ row), then out = (accumulate ? out : 0) + z ⊙ post. */
void dec_xout_ref(const dec_xform *xf, const float *y, int ldy, int B, const float *post, int accumulate,
                  float *out, int ldo);

/* KV cache: per sequence, fp16 [max_ctx][n_kv][hd] for K and for V (sequence b at + b·max_ctx·n_kv·hd,
 * or at row seq_row[b]: a device array, for the fp16 cache's CUDA kernels only; NULL in the twins and
 * the 4-bit cache). */
typedef struct dec_attn_shape {
    int n_heads, n_kv, head_dim, max_ctx, window; /* window 0 = full causal */
    const int32_t *seq_row;
} dec_attn_shape;
/* qkv: [B][ldq] rows holding q (n_heads·hd), k, v (n_kv·hd each) from the fused output; for each b
 * at position pos[b]: RoPE on q and k (HF half-split when interleaved = 0, llama2.c pairs when 1,
 * angle pos·inv_freq[i] in fp32 as harp_rope), k and v stored as fp16 at pos[b], q written to
 * qout [B][n_heads·hd]. */
void dec_rope_kv_ref(const dec_attn_shape *s, const float *qkv, int ldq, int B, const int32_t *pos,
                     const float *inv_freq, int interleaved, float *qout, uint16_t *kc, uint16_t *vc);
/* One query per sequence over keys [lo, pos[b]] of its cache (GQA: head h reads kv head
 * h / (n_heads / n_kv)); out [B][n_heads·hd]. The CUDA version takes head_dim 32, 64 or 128 and at
 * most 8 q heads per kv head (HARP_ERR_UNSUPPORTED otherwise); pos[b] < max_ctx is the caller's. */
void dec_swiglu_ref(const float *ug, int ld, int B, int hidden, float *out, int ldo);
void dec_attn_ref(const dec_attn_shape *s, const float *q, const uint16_t *kc, const uint16_t *vc, int B,
                  const int32_t *pos, float *out);

#ifdef HARP_HAVE_CUDA
/* ---- device ------------------------------------------------------------------------------------ */
typedef struct dec_xdev dec_xdev;   /* uploaded transform + its pass plan */
typedef struct CUstream_st *dec_stream;

/* 1 when a CUDA device is present (no error logged otherwise). */
int dec_cuda_available(void);
/* Uploads packed host weights; *dev gets device buffers (dec_weights_free frees them). */
harp_status dec_weights_upload(const dec_weights *host, dec_weights *dev);
/* Device weights of a type and shape filled on the device with seeded random codes (E8P/RVQ: any
 * bit pattern is a valid code; QTIP: any stream is a valid tail-biting path), fp16 values in
 * ±[1/16, 1/8) (the HYB table alike), INT scales in [0.002, 0.012) and zeros < 2^bits; scale0 /
 * scale1 as given. For benchmarks (no host packing). */
harp_status dec_weights_random(int qtype, int32_t m, int32_t n, float scale0, float scale1, uint64_t seed, dec_weights *dev);
/* Launch overlap (programmatic dependent launch, sm_90; src/cuda/pdl.cuh): on by default for every
 * decode kernel on a non-default stream; off serializes launches as before (the bench's A/B switch). */
void dec_set_pdl(int on);
int dec_pdl(void);
/* Fewer, better-spread launches at decode, bit-identical either way (on by default; off is the bench's
 * and the tests' A/B switch): a transform pass without stages (identity: RMSNorm, pre, split, post,
 * residual add) runs over 512-element tiles instead of one CTA per 8192 elements, a decode transform
 * of several rows takes one CTA per row, and dec_linear_run writes an identity output side from the
 * GEMV's epilogue instead of a separate pass. */
void dec_set_xform_fast(int on);
int dec_xform_fast(void);
/* Transform passes fetch their stage blocks (cp.async into shared memory), permutations and norm / pre /
 * post entries before the PDL wait, so that at decode those reads overlap the kernel before instead of
 * adding a memory round trip per stage after it; same arithmetic, bit-identical either way (on by
 * default; off: `harp bench decode --xf-stage`'s and the tests' A/B switch). */
void dec_set_xform_stage(int on);
int dec_xform_stage(void);
/* QTIP HYB GEMV: interleaved copies of the 512-pair table in each CTA's shared memory (8, 16 or 32; 16 by
 * default) where dec_gemv_opts.hyb_copies is 0 — `harp bench decode --hyb-copies`' switch; same bits for
 * every count. Out-of-range values are ignored. */
void dec_set_hyb_copies(int copies);
int dec_hyb_copies(void);
/* Kernel variants the bench compares (0 = default). */
typedef struct dec_gemv_opts {
    int warps;      /* k-split warps per CTA: 4, 8 or 16 (0: 16 when the row tiles fit one wave of 16-warp
                       CTAs and n ≥ 8 192, else 8; QTIP: 4, 8 or 16, 0 = 8) */
    int hyb_copies; /* QTIP HYB: interleaved copies of the table in shared memory, 8, 16 or 32 (0: dec_hyb_copies) */
    int fold;       /* > 0 (B = 2·fold): y[b] = ỹ[b] + ỹ[b + fold], b < fold — the hi and lo rows of split
                       activations summed in the epilogue instead of by another launch */
    int accumulate; /* y[b] += ỹ[b] (the lo half of a split batch of 5–8 rows) */
    int epilogue;   /* 1: y[b][r] (+)= (ỹ[b][r]·scale)·post[r] — an identity output transform (dec_xout's
                       arithmetic) done by the GEMV; post may be NULL (ones) */
    float scale;
    const float *post;
} dec_gemv_opts;
/* The k-split warps dec_gemv uses for opts.warps = want. */
int dec_gemv_warps(const dec_weights *w, int want);
/* ỹ[b][r] (fp32 [B][ldy]) = W̃ · x[b] (fp16 [B][ldx], ldx ≥ npad, zeros in [n, npad)), B ∈ [1, 8]. */
harp_status dec_gemv(const dec_weights *w, const void *x, int ldx, int B, float *y, int ldy,
                     const dec_gemv_opts *opts, dec_stream stream);
/* Batch capacity (rows of activations) for which dec_xin / dec_xout are planned. */
harp_status dec_xform_upload(const dec_xform *xf, int max_rows, dec_xdev **out);
/* The same, planned over the stage blocks and permutations of share, an upload of the same xf for
 * another row count (NULL: its own); free it before share. */
harp_status dec_xform_upload_shared(const dec_xform *xf, int max_rows, const dec_xdev *share, dec_xdev **out);
void dec_xform_dev_free(dec_xdev *x);
/* Device bytes x holds itself (blocks and permutations not borrowed from another upload). */
size_t dec_xform_dev_bytes(const dec_xdev *x);
/* 1 when x is one stage-free pass without permutations (then *scale, if not NULL, gets its scale). */
int dec_xform_dev_identity(const dec_xdev *x, float *scale);
/* log2 n when x was uploaded from a c·H_n transform (dec_xform_fwht; *scale, if not NULL, gets c), else 0. */
int dec_xform_dev_fwht(const dec_xdev *x, float *scale);
/* Device twins of dec_xin_ref / dec_xout_ref (rows ≤ max_rows of the upload; norm_w / pre / post
 * are device vectors or NULL; out fp16 [rows][ldo] for xin). scratch: see dec_xform_scratch_floats. */
size_t dec_xform_scratch_floats(const dec_xdev *x, int rows);
harp_status dec_xin(const dec_xdev *xf, const float *x, int ldx, int rows, const float *norm_w, float eps,
                    const float *pre, void *out, int ldo, int32_t npad, float *scratch, dec_stream stream);
harp_status dec_xout(const dec_xdev *xf, const float *y, int ldy, int rows, const float *post, int accumulate,
                     float *out, int ldo, float *scratch, dec_stream stream);
/* dec_xout of y + y2 (both [rows][ldy]), summed in the first pass as dec_add would: bit-identical to
 * dec_add(y, y2) then dec_xout, one launch and two passes over rows·ldy floats fewer (prefill's split product). */
harp_status dec_xout_sum(const dec_xdev *xf, const float *y, const float *y2, int ldy, int rows, const float *post,
                         int accumulate, float *out, int ldo, float *scratch, dec_stream stream);
/* dec_xout written as split fp16 rows (h = fp16(v), lo = fp16(v − h), zero padded to npad; no
 * accumulate): the weight fold's last step. */
harp_status dec_xout_split(const dec_xdev *xf, const float *y, int ldy, int rows, const float *post, void *out, void *out_lo,
                           int ldo, int32_t npad, float *scratch, dec_stream stream);
/* dec_xin with split activations: out gets h = fp16(v), out_lo the fp16 residual fp16(v − h) (same
 * layout, zero padded), so that W̃·h + W̃·lo carries v to ~2^-22 relative (twin: dec_xin_split_ref). */
harp_status dec_xin_split(const dec_xdev *xf, const float *x, int ldx, int rows, const float *norm_w, float eps,
                          const float *pre, void *out, void *out_lo, int ldo, int32_t npad, float *scratch,
                          dec_stream stream);
/* dec_xin_split of SwiGLU(up|gate rows): row r's input i is silu(ug[r·ldx + n + i])·ug[r·ldx + i]
 * (n = the transform's width, ldx ≥ 2n), computed as dec_swiglu does; no RMSNorm. One launch fewer
 * per layer at decode (dec_linear_run_glu). */
harp_status dec_xin_split_glu(const dec_xdev *xf, const float *ug, int ldx, int rows, const float *pre, void *out,
                              void *out_lo, int ldo, int32_t npad, float *scratch, dec_stream stream);
/* dec_xin_split of the attention output that the partials of dec_attn(…, out = NULL, ws, …) hold
 * (n = n_heads·head_dim), combined as dec_attn's combine kernel does (attn_combine.cuh), bit-identical. */
harp_status dec_xin_split_att(const dec_xdev *xf, const dec_attn_shape *s, const float *ws, int rows, const float *pre, void *out,
                              void *out_lo, int ldo, int32_t npad, float *scratch, dec_stream stream);
harp_status dec_rope_kv(const dec_attn_shape *s, const float *qkv, int ldq, int B, const int32_t *pos,
                        const float *inv_freq, int interleaved, float *qout, void *kc, void *vc, dec_stream stream);
/* Workspace floats for dec_attn (split-K partials) and the number of key chunks per head. */
size_t dec_attn_workspace_floats(const dec_attn_shape *s, int B);
int dec_attn_chunks(const dec_attn_shape *s);
/* out NULL: only the partials in the workspace; the o projection's input transform combines them
 * (dec_xin_split_att, dec_linear_run_att: one launch fewer per layer). Same for dec_attn_kv4. */
harp_status dec_attn(const dec_attn_shape *s, const float *q, const void *kc, const void *vc, int B,
                     const int32_t *pos, float *out, float *workspace, dec_stream stream);
/* dec_rope_kv then dec_attn in one launch (fp16 cache): each attention CTA applies RoPE to its q heads,
 * and the one whose key chunk holds pos[b] stores the new k and v; same bits as the two calls. */
harp_status dec_attn_rope(const dec_attn_shape *s, const float *qkv, int ldq, int B, const int32_t *pos, const float *inv_freq,
                          int interleaved, void *kc, void *vc, float *out, float *workspace, dec_stream stream);
/* Which kernel dec_attn and dec_attn_rope run (the bench's and the tests' A/B switch; process-wide):
 * 0 (default) loads the chunk's K and V into registers up front and scores each key on four lanes
 * with the group size a template bound; 1 is the previous kernel (one thread per key,
 * attn_part_kernel<V, F16Rows>). Both compute the same attention up to fp32 summation order, each
 * deterministic, and each keeps dec_attn_rope bit-identical to dec_rope_kv + dec_attn. */
void dec_set_attn_variant(int v);
int dec_attn_variant(void);
/* out[b][i] = silu(gate)·up for the fused up|gate rows ug [B][ld] (up = columns 0..hidden-1, gate the
 * next hidden), the model's SwiGLU (harp_swiglu) on the decode path. Twin: dec_swiglu_ref. */
harp_status dec_swiglu(const float *ug, int ld, int B, int hidden, float *out, int ldo, dec_stream stream);
/* x[i] += y[i] for i < n. */
harp_status dec_add(float *x, const float *y, size_t n, dec_stream stream);

/* ---- one packed linear on the device (what the CUDA backend and bench decode run) ----------------- */
typedef struct dec_linear_dev {
    dec_weights w;                 /* device planes */
    const dec_xdev *xin, *xout;    /* planned for the workspace's max_rows */
    const dec_xdev *xin1, *xout1;  /* planned for one row (or NULL: xin / xout) */
    const float *pre, *post;       /* device vectors or NULL */
    /* prefill's weight fold (dec_fold_weights): xin's transpose planned for the workspace's max_rows, or
     * NULL (no fold) */
    const dec_xdev *xin_t;
} dec_linear_dev;
typedef struct dec_linear_ws {
    int max_rows;                  /* rows one call may take */
    void *xh;                      /* fp16 [2·max_rows][npad]: h rows then lo rows */
    float *yt;                     /* [2·max_rows][m] */
    float *scr;                    /* transform scratch: 2·max_rows·max(m, n) floats */
    void *tile;                    /* > 8 rows: fp16 [tile_rows][npad] dequantized tile */
    int tile_rows;
    void *blas;                    /* > 8 rows: cublasHandle_t for the fp16 GEMM */
    float *fold;                   /* the weight fold's buffers for a linear of m·npad ≤ fold_elems (or NULL): */
    void *fold_w;                  /* fold_elems floats, and 6·fold_elems bytes: W_eff's fp16 rows [h | h | lo] */
    size_t fold_elems;
} dec_linear_ws;
/* Y [rows][ldy] (= or += with accumulate) = packed product of X [rows][ldx] (⊙ RMSNorm weight
 * norm_w first when not NULL): dec_xin_split (h and lo rows) → dec_gemv on both (one call while
 * 2·rows ≤ 8) or, above 8 rows, dec_prefill_gemm over both → dec_xout_sum (ỹ_h + ỹ_lo). Twin:
 * dec_linear_ref (without the norm). */
harp_status dec_linear_run(const dec_linear_dev *L, const float *X, int ldx, int rows, const float *norm_w, float eps,
                           float *Y, int ldy, int accumulate, const dec_linear_ws *ws, dec_stream stream);
/* dec_linear_run of SwiGLU(UG) (dec_xin_split_glu: up in columns [0, n), gate in [n, 2n) of each row). */
harp_status dec_linear_run_glu(const dec_linear_dev *L, const float *UG, int ldx, int rows, float *Y, int ldy, int accumulate,
                               const dec_linear_ws *ws, dec_stream stream);
/* dec_linear_run of the attention output whose partials dec_attn(…, out = NULL, att_ws, …) left
 * (dec_xin_split_att). */
harp_status dec_linear_run_att(const dec_linear_dev *L, const dec_attn_shape *s, const float *att_ws, int rows, float *Y, int ldy,
                               int accumulate, const dec_linear_ws *ws, dec_stream stream);
/* The seam between two linears at decode, in one launch instead of the four passes of dec_xout +
 * dec_xin_split: prev's output side (its ỹ rows left in ws->yt by a DEC_LIN_YT_ONLY run) added into the
 * residual rows X (X += scale·post ⊙ H·ỹ, written back), RMSNorm with norm_w, then next's input side
 * (pre ⊙, H, scale) as fp16 h / lo rows in ws->xh for a DEC_LIN_XH_READY run of next. One CTA per row
 * holds the whole width: butterflies in registers and across lanes, two transposes through shared
 * memory. Only where both sides are Sylvester FWHTs (dec_xform_dev_fwht; next's may also be the
 * identity) of one width n = 2^k, 1 024 ≤ n ≤ 8 192, rows ≤ 8 and the vectors 16-byte aligned:
 * dec_seam_ok says so; otherwise run the two sides apart. Same arithmetic as the passes up to fp32
 * summation order (deterministic); twin: dec_xout_ref then dec_xin_split_ref. */
int dec_seam_ok(const dec_linear_dev *prev, const dec_linear_dev *next, const float *X, int ldx, int rows, const float *norm_w,
                const dec_linear_ws *ws);
harp_status dec_linear_seam(const dec_linear_dev *prev, const dec_linear_dev *next, float *X, int ldx, int rows, const float *norm_w,
                            float eps, const dec_linear_ws *ws, dec_stream stream);
/* dec_linear_run / _glu / _att with a mode: DEC_LIN_XH_READY takes the fp16 h / lo rows already in
 * ws->xh (the input arguments are ignored); DEC_LIN_YT_ONLY stops after the GEMV, ỹ left in ws->yt
 * (≤ 8 rows; Y is not written). glu / att select the input as in the wrappers (glu: SwiGLU rows, att:
 * attention partials); DEC_LIN_FOLD_READY: ws->fold_w already holds dec_fold_weights of L and the call
 * runs folded whatever its own row count (a caller running one linear over several row chunks folds
 * once, deciding with dec_fold_pays on all its rows). */
enum { DEC_LIN_XH_READY = 1, DEC_LIN_YT_ONLY = 2, DEC_LIN_FOLD_READY = 4 };
harp_status dec_linear_run_mode(const dec_linear_dev *L, int mode, const float *X, int ldx, int rows, const float *norm_w, float eps,
                                int glu, const dec_attn_shape *att, float *Y, int ldy, int accumulate, const dec_linear_ws *ws,
                                dec_stream stream);
/* Prefill's weight fold: above a row count the linear's transforms cost less on the weights than on
 * the activations (R·(m + n) elements against 2·m·n), so dec_linear_run dequantizes W̃, applies the
 * output side to its columns and the input side to its rows — W_eff = diag(post)·T_out·W̃·T_in·diag(pre),
 * fp16 rows [h | h | lo] (row stride 3·npad) in ws->fold_w — and runs the rows through dec_rows_split
 * (RMSNorm, SwiGLU or attention combine, the split into [x_h | x_lo]) and two fp16 GEMMs straight into
 * the output (x_h·h + x_lo·h, then + x_h·lo; accumulate is their beta): the input and W_eff each carried
 * to ~2^-22. Needs L->xin_t and ws->fold with m·npad ≤ fold_elems.
 * Twin: dec_fold_ref (f16_rows = 1). */
harp_status dec_fold_weights(const dec_linear_dev *L, const dec_linear_ws *ws, dec_stream stream);
/* Whether dec_linear_run folds the weights of L for a call of `rows` rows (given the workspace): mode 1
 * (default) when rows·(m + n) > 2·m·n, 2 whenever possible above 8 rows (tests), 0 never (the A/B switch;
 * HARP_CUDA_FOLD=0 for the CUDA backend). Process-wide. */
int dec_fold_pays(const dec_linear_dev *L, int rows);
void dec_set_prefill_fold(int mode);
int dec_prefill_fold(void);
/* The input side of a folded linear: rows of x (⊙ RMSNorm with norm_w when not NULL), of SwiGLU(up|gate)
 * (glu: up in columns [0, n), gate in [n, 2n)) or of the attention partials' combine (att), as fp16
 * h = fp16(v) and lo = fp16(v − h) rows [rows][ldo] zero padded to npad; one warp a row. The same values
 * as dec_xin_split over an identity transform (glu, att and plain rows bit-identical; with RMSNorm the
 * sum of squares in another order). */
harp_status dec_rows_split(const float *x, int ldx, int rows, int n, const float *norm_w, float eps, int glu,
                           const dec_attn_shape *att, void *out, void *out_lo, int ldo, int32_t npad, dec_stream stream);
/* Y [rows][ldy] (beta 0: =, 1: +=) = X [rows][k] · Wᵀ for fp16 W [m][ldw] and X [rows][ldx], fp32
 * accumulate (cublasGemmEx; blas is a cublasHandle_t). */
harp_status dec_gemm_f16(void *blas, const void *W, int ldw, int m, int k, const void *X, int ldx, int rows, float *Y, int ldy,
                         float beta, dec_stream stream);
/* Prefill: fp16 rows r0..r1 of W̃ (dense, [r1-r0][ld]) decoded from the packed layout. */
harp_status dec_dequant_f16(const dec_weights *w, int32_t r0, int32_t r1, void *out, int ld, dec_stream stream);
/* Y [rows][ldy] fp32 = X [rows][ldx] fp16 · W̃ᵀ through fp16 tiles of tile_rows rows (workspace:
 * tile_rows·npad halves) and cublasGemmEx (fp32 accumulate); blas is a cublasHandle_t. */
harp_status dec_prefill_gemm(void *blas, const dec_weights *w, const void *X, int ldx, int rows, float *Y,
                             int ldy, void *workspace, int tile_rows, dec_stream stream);
#endif

/* ==== W/A/KV on the GPU (issue 14): INT8 tensor-core prefill GEMM and a 4-bit KV cache ==============
 * (dec_igemm.c / dec_igemm.cu, dec_kv4.c / dec_attn.cu; docs/gpu.md "W/A/KV kernels")
 *
 * Integer linear Y = X·Wᵀ for a W/A/KV model, Y[r][j] = ((float)C[r][j] · sa[r]) · sw[j], C = Q·Wqᵀ:
 *  - activations Q: per row (token), symmetric, exactly harp_aq_quantize {bits 8 or 4, sym, whole row,
 *    clip, fp32 scale}: sa = clip·max|x| / qmax (0 → 1, < FLT_MIN → FLT_MIN), q = clamp(rint(x / sa),
 *    −qmax−1, qmax), qmax 127 (A8) or 7 (A4). A4 codes are held one per int8 byte and go through the
 *    same int8 GEMM: Hopper has no int4 tensor-core path (wgmma has no 4-bit integer type), so A4 only
 *    narrows the range.
 *  - weights Wq: int8 [m][kpad], per output channel w = sw[j]·q: W8 symmetric int8, or int2/3/4 (or
 *    int8 with codes − zero inside int8) codes minus the zero point, unpacked once at upload.
 *  - C: int32 [rows][ldc] from cuBLAS GemmEx (CUDA_R_8I × CUDA_R_8I → CUDA_R_32I, CUBLAS_COMPUTE_32I,
 *    op T/N), exact: |C| ≤ kpad·128·128 < 2^31 for k < 131072. Rows of Q and Wq are kpad = k rounded up
 *    to 16 bytes with zeros in [k, kpad), so every leading dimension is a multiple of 16 and cuBLAS's
 *    int8 rule (leading dimensions multiple of 4, 4-byte aligned pointers) holds for any k; ldc is m
 *    rounded up to 4. */
static inline int32_t dec_ikpad(int32_t k) { return (k + 15) / 16 * 16; }
static inline int32_t dec_ildc(int32_t m) { return (m + 3) / 4 * 4; }
/* X fp32 [rows][ldx] → Q int8 [rows][ldq] (zeros in [k, ldq)), sa [rows]. HARP_ERR_INVALID_ARG for
 * qmax other than 127 / 7, clip outside (0, 1], ldq < k; HARP_ERR_NUMERIC for a non-finite input. */
harp_status dec_aq_rows_ref(const float *X, int rows, int k, int ldx, int qmax, float clip, int8_t *Q, int ldq, float *sa);
/* Per-channel int8 weights from stored INT planes (int2/3/4/8, one group per row): W [m][ldw] =
 * code − zero (zeros beyond n), sw [m] = scale. HARP_ERR_UNSUPPORTED (one line naming `what`) for other
 * types, grouped rows, or an int8 code − zero outside [−128, 127]. */
harp_status dec_iweights_from_qplanes(const dec_qplanes *q, const char *what, int8_t *W, int ldw, float *sw);
/* Per-channel symmetric RTN of fp32 W [m][k] to int8 (bits 2..8: qmax 2^(bits−1)−1, min/max grid of the
 * activation quantizer, clip 1) — weights for tests and benchmarks. */
harp_status dec_iweights_rtn(const float *Wf, int m, int k, int bits, int8_t *W, int ldw, float *sw);
/* C [rows][ldc] = Q [rows][ldq] · W [m][ldw]ᵀ over kpad columns (int64 sums, checked against int32). */
void dec_igemm_ref(const int8_t *Q, int ldq, int rows, const int8_t *W, int ldw, int m, int kpad, int32_t *C, int ldc);
/* Y fp32 [rows][ldy] (or, when Y16 != NULL instead, fp16 bits) = ((float)(C + corr[r]·rs[j]) · sa[r]) · sw[j]
 * (corr, rs NULL: no correction term; the sum is exact in int32 for the ranges dec_aq_int8 makes). */
void dec_iepi_ref(const int32_t *C, int ldc, int rows, int m, const float *sa, const float *sw, const int32_t *corr, const int32_t *rs,
                  float *Y, uint16_t *Y16, int ldy);
/* Activation codes of any whole-row format of the CPU quantizer (quant/aq.h: 2–8 bits, symmetric or
 * asymmetric, clip, fp32 scale) as int8 GEMM operands: the stored code q (zero point z) goes in as
 * q − off, with off = DEC_AQ_INT8_OFFSET, so that it fits int8: off = z where q − z fits (symmetric,
 * or asymmetric up to 7 bits), else 128 (asymmetric 8 bits). Then Σ_c (q − z)·w = C + corr·rs with
 * corr = off − z and rs[j] = Σ_c W[j][c] (0 unless 8-bit asymmetric), and s·(q − z) is exactly the
 * CPU's dequantized activation: the integer product computes the fake-quantized linear's sums exactly.
 * Q [rows][ldq] (zeros in [k, ldq)), sa [rows] the scale, corr [rows] (may be NULL where always 0). */
#define DEC_AQ_INT8_OFFSET(bits, sym, z) ((sym) || (bits) < 8 ? (z) : 128)
struct harp_aq_fmt;
harp_status dec_aq_int8_ref(const struct harp_aq_fmt *f, const float *X, int rows, int k, int ldx, int8_t *Q, int ldq, float *sa,
                            int32_t *corr);

/* 4-bit KV cache (per layer): for each sequence b a block of dec_kv4_seq_bytes bytes at b·that, for K
 * and for V alike, holding for position j and kv head h
 *   codes u8 [max_ctx][n_kv][hd/2] (offset 0), scale fp16 [max_ctx][n_kv] (offset scale_off),
 *   zero u8 [max_ctx][n_kv] (offset zero_off):
 * row j is the CPU KV quantizer's planes of one position (quant/aq.h: 4 bits, asymmetric, group
 * head_dim, clip, fp16 scales; codes low nibble first), x̂ = s·(q − z). */
typedef struct dec_kv4_map {
    size_t seq_bytes, scale_off, zero_off;
} dec_kv4_map;
dec_kv4_map dec_kv4_layout(const dec_attn_shape *s);
/* RoPE on q and k of one row of the fused q|k|v output at position p: q·hd then kv_heads·hd values
 * into out (what dec_rope_kv_ref stores, before rounding to fp16). */
void dec_rope_row_ref(const dec_attn_shape *s, const float *row, int32_t p, const float *inv_freq, int interleaved,
                      float *out);
/* dec_rope_kv_ref with the 4-bit cache: k (after RoPE) and v of position pos[b] quantized with
 * harp_aq_quantize_ref (clip kclip / vclip) into kc / vc (dec_kv4_layout). */
harp_status dec_rope_kv4_ref(const dec_attn_shape *s, const float *qkv, int ldq, int B, const int32_t *pos,
                             const float *inv_freq, int interleaved, float kclip, float vclip, float *qout, uint8_t *kc,
                             uint8_t *vc);
/* dec_attn_ref over the 4-bit cache (K and V dequantized to fp32 exactly: s·(q − z)). */
harp_status dec_attn_kv4_ref(const dec_attn_shape *s, const float *q, const uint8_t *kc, const uint8_t *vc, int B,
                             const int32_t *pos, float *out);
/* dec_attn_ref on fp32 caches (the common core of both twins). */
void dec_attn_f32_ref(const dec_attn_shape *s, const float *q, const float *kc, const float *vc, int B, const int32_t *pos,
                      float *out);

#ifdef HARP_HAVE_CUDA
/* X [rows][ldx] (fp32, or fp16 when x_f16) → Q, sa as dec_aq_rows_ref (fp16 inputs widened exactly
 * first). One CTA per row. Non-finite inputs are not detected on the device. */
harp_status dec_aq_rows(const void *X, int x_f16, int rows, int k, int ldx, int qmax, float clip, int8_t *Q, int ldq, float *sa,
                        dec_stream stream);
/* C = Q·Wᵀ (dec_igemm_ref) through cuBLAS (blas: cublasHandle_t); ldq, ldw ≥ kpad, multiples of 16,
 * ldc ≥ m, multiple of 4. When cuBLAS refuses the shape (CUBLAS_STATUS_NOT_SUPPORTED or INVALID_VALUE)
 * a plain dp4a kernel computes the same exact sums, and dec_igemm_fallbacks() counts it (the tests and
 * the bench print the count, so a timing never hides the fallback). */
harp_status dec_igemm(void *blas, const int8_t *Q, int ldq, int rows, const int8_t *W, int ldw, int m, int kpad, int32_t *C,
                      int ldc, dec_stream stream);
int dec_igemm_fallbacks(void);
/* Epilogue: Y fp32 (y_f16 = 0) or fp16 [rows][ldy] = dec_iepi_ref (corr and rs both NULL or both given). */
harp_status dec_iepi(const int32_t *C, int ldc, int rows, int m, const float *sa, const float *sw, const int32_t *corr,
                     const int32_t *rs, void *Y, int y_f16, int ldy, dec_stream stream);
/* dec_igemm then dec_iepi (fp32 Y) in one kernel on Hopper's warpgroup MMA (src/cuda/sm90a/igemm_wgmma.cu):
 * the same exact int32 sums and the same two roundings, so Y is bit-identical to the two-kernel path, and
 * C never goes to memory. The operands are read by the copy engine (TMA) as 128 × 128-byte tiles with
 * the parts beyond rows, m and kpad zero-filled: Q and W 16-byte aligned, kpad, ldq and ldw multiples of
 * 16. HARP_ERR_UNSUPPORTED where the device is not compute capability 9.0 (the callers keep the cuBLAS
 * path); dec_igemm_epi_available says beforehand. */
harp_status dec_igemm_epi(const int8_t *Q, int ldq, int rows, const int8_t *W, int ldw, int m, int kpad, const float *sa,
                          const float *sw, const int32_t *corr, const int32_t *rs, float *Y, int ldy, dec_stream stream);
int dec_igemm_epi_available(void);
/* Clusters of cx × cy CTAs (1x1, 2x1, 1x2, 2x2, 1x4, 2x4; cx along the output channels, cy along the
 * rows) whose CTAs share operand tiles by multicast (src/cuda/sm90a/igemm_wgmma.cu); the default, or
 * HARP_IGEMM_CLUSTER (e.g. 2x2) read at the first call; (0, 0) goes back to that. The bits of Y do not
 * depend on it. For the tests and the bench's A/B. dec_igemm_cluster_ok: whether cx × cy is one of those
 * shapes (no device needed); dec_igemm_resident_clusters: how many clusters of that shape fit on the
 * device at once (0 where the fused kernel is not usable). */
int dec_igemm_cluster_ok(int cx, int cy);
void dec_set_igemm_cluster(int cx, int cy);
int dec_igemm_resident_clusters(int cx, int cy);
/* Output channels per tile of dec_igemm_epi: 128 (the default) or 256 (each consumer warpgroup a 64 × 256
 * block, a quarter less operand traffic from L2 and shared memory per product, half the tiles); 0 goes
 * back to the default / HARP_IGEMM_TILE. The bits of Y do not depend on it; dec_igemm_tile: the one in
 * use. */
void dec_set_igemm_tile(int n);
int dec_igemm_tile(void);
/* The order in which dec_igemm_epi's clusters take tiles: 1 the row tiles of one W tile
 * together (the default; W passes through L2 once), 0 the output-channel tiles fastest (the order the
 * measurements of the twenty-third session ran with); -1 back to the default / HARP_IGEMM_RASTER
 * (rows, cols). The bits of Y do not depend on it. */
void dec_set_igemm_raster(int rows_first);
/* on = 1 (the default): dec_igemm_epi launches at most the clusters that fit at once (one CTA per
 * multiprocessor for clusters of one; at most max_ctas CTAs when > 0: the tests make each CTA loop), each looping over its tiles so that the copy engine
 * loads the next tile while the warpgroups finish this one's epilogue; 0: one CTA a tile; -1 back to the
 * default / HARP_IGEMM_PERSIST=0. The bits of Y do not depend on it. */
void dec_set_igemm_persistent(int on, int max_ctas);
/* Whether dec_igemm_scaled takes dec_igemm_epi for rows × m: on Hopper, from DEC_IGEMM_EPI_MIN_ROWS rows
 * (its 128-row tiles waste the tensor cores on fewer, where cuBLAS picks narrower ones); at 512 rows it
 * measured faster than cuBLAS's int8 kernel + the separate epilogue at every Llama-2-7B shape. */
#define DEC_IGEMM_EPI_MIN_ROWS 64
int dec_igemm_epi_pays(int rows, int m);
/* dec_iweights_from_qplanes, then the int8 [m][dec_ikpad(n)] weights and the scales uploaded once into
 * device buffers allocated here (*W, *sw; cudaFree them; with mul != NULL the scales times mul[j], e.g. a
 * tensor's out_mul), and when rs != NULL each row's sum Σ_c W[j][c] (*rs, the zero-point term of
 * dec_aq_int8). */
harp_status dec_iweights_upload(const dec_qplanes *q, const char *what, const float *mul, int8_t **W, float **sw, int32_t **rs);
/* Y fp32 = dec_iepi_ref(Q·Wᵀ) by the best path here: dec_igemm_epi where dec_igemm_epi_pays, else
 * dec_igemm into ws_c (int32 [rows][dec_ildc(m)]) and dec_iepi. */
harp_status dec_igemm_scaled(void *blas, const int8_t *Q, int ldq, int rows, const int8_t *W, int ldw, int m, int kpad,
                             const float *sa, const float *sw, const int32_t *corr, const int32_t *rs, float *Y, int ldy,
                             int32_t *ws_c, dec_stream stream);
/* The three in a row: X (fp32 or fp16) → Y fp32. ws_q: int8 [rows][dec_ikpad(k)], ws_sa: [rows],
 * ws_c: int32 [rows][dec_ildc(m)]; W: int8 [m][dec_ikpad(k)], sw [m] (device). The GEMM and the epilogue
 * by dec_igemm_scaled (the same bits either way). */
harp_status dec_ilinear(void *blas, const int8_t *W, const float *sw, int m, int k, const void *X, int x_f16, int ldx, int rows,
                        int qmax, float clip, float *Y, int ldy, int8_t *ws_q, float *ws_sa, int32_t *ws_c, dec_stream stream);
/* dec_rope_kv / dec_attn with the 4-bit cache (kc, vc: B·dec_kv4_layout(s).seq_bytes bytes each);
 * head_dim 32, 64 or 128, as dec_attn. Twins: dec_rope_kv4_ref (codes and scales equal up to the
 * CUDA-vs-libm sin/cos of RoPE on K; V bit-identical), dec_attn_kv4_ref. */
harp_status dec_rope_kv4(const dec_attn_shape *s, const float *qkv, int ldq, int B, const int32_t *pos, const float *inv_freq,
                         int interleaved, float kclip, float vclip, float *qout, void *kc, void *vc, dec_stream stream);
harp_status dec_attn_kv4(const dec_attn_shape *s, const float *q, const void *kc, const void *vc, int B, const int32_t *pos,
                         float *out, float *workspace, dec_stream stream);
/* dec_attn_kv4 over a backend's quantized cache (harp_kv_cache planes of 4-bit asymmetric codes, one
 * group per kv head, fp16 scales: harp_kv_planes of the layer's cache row 0): codes [row][n_kv][hd/2],
 * scale16 and zero [row][n_kv]; sequence b's position 0 at cache row s->seq_row[b] (device memory,
 * required). The same kernel and arithmetic as dec_attn_kv4 (variant 0). dec_attn_kv4_planes_on: whether
 * the CUDA backend takes it for such caches (on; HARP_CUDA_KV4_ENGINE=0, read once, turns it off for A/B);
 * dec_set_attn_kv4_planes sets it for the process (tests). */
struct harp_aq_planes;
harp_status dec_attn_kv4_planes(const dec_attn_shape *s, const float *q, const struct harp_aq_planes *k,
                                const struct harp_aq_planes *v, int B, const int32_t *pos, float *out, float *workspace,
                                dec_stream stream);
int dec_attn_kv4_planes_on(void);
void dec_set_attn_kv4_planes(int on);
/* dec_rope_kv4 then dec_attn_kv4 in one launch (as dec_attn_rope for the fp16 cache): each attention
 * CTA applies RoPE to its q heads, and the one whose key chunk holds pos[b] quantizes the new k and v
 * into the cache (the same bits as dec_rope_kv4) and scores them from shared memory. Always the
 * default kernel (variant 0). */
harp_status dec_attn_rope_kv4(const dec_attn_shape *s, const float *qkv, int ldq, int B, const int32_t *pos, const float *inv_freq,
                              int interleaved, float kclip, float vclip, void *kc, void *vc, float *out, float *workspace,
                              dec_stream stream);
/* Which kernel dec_attn_kv4 runs (the bench's and the tests' A/B switch; process-wide): 0 (default)
 * stages the chunk's codes in shared memory and scores each key on four lanes; 1 is the previous
 * kernel (one thread per key, attn_part_kernel<V, Kv4Rows>). Both compute the same attention up to
 * fp32 summation order, each deterministic. */
void dec_set_attn_kv4_variant(int v);
int dec_attn_kv4_variant(void);
/* The quantizer of quant/aq.h on the device, bit-identical to harp_aq_quantize / harp_aq_dequantize /
 * harp_aq_fake for every format they take (2–8 bits, sym / asym, groups, clip, fp32 / fp16 scales),
 * planes in aq.h's layout (device pointers; ld 0 = n): the pieces a backend's activation quantization
 * and typed KV cache (harp_kv_cache) need. Non-finite inputs are not detected on the device. */
struct harp_aq_fmt;
struct harp_aq_planes;
harp_status dec_aq_quantize(const struct harp_aq_fmt *f, const float *X, int rows, int n, int ldx, const struct harp_aq_planes *out,
                            dec_stream stream);
/* dec_aq_quantize into the rows dst[0 … rows−1] (device memory) of the planes at `base` (a KV cache
 * layer's row 0): the same launch at every decode step, so it can be captured into a graph. */
harp_status dec_aq_quantize_to(const struct harp_aq_fmt *f, const float *X, int rows, int n, int ldx,
                               const struct harp_aq_planes *base, const int32_t *dst, dec_stream stream);
harp_status dec_aq_dequantize(const struct harp_aq_fmt *f, const struct harp_aq_planes *in, int rows, int n, float *Y, int ldy,
                              dec_stream stream);
harp_status dec_aq_fake(const struct harp_aq_fmt *f, float *X, int rows, int n, int ldx, dec_stream stream);
/* X fp32 → int8 GEMM operands as dec_aq_int8_ref (bit for bit: the same codes as dec_aq_quantize). */
harp_status dec_aq_int8(const struct harp_aq_fmt *f, const float *X, int rows, int k, int ldx, int8_t *Q, int ldq, float *sa,
                        int32_t *corr, dec_stream stream);
#endif
/* ==== end of the W/A/KV block ==================================================================== */

#ifdef __cplusplus
}
#endif
#endif
