/* Perplexity with the GPTQ/QuIP# protocol: BOS + the whole text tokenized once, non-overlapping
 * windows of ctx tokens (remainder dropped), each run from an empty cache at positions 0..ctx-1,
 * mean NLL over the ctx-1 next-token predictions of every window. Optional saved logits / KLD. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "eval/ppl_internal.h"
#include "eval/ppl_logits.h"
#include "harp/eval.h"
#include "harp/tokenizer.h"
#include "model/kernels.h"
#include "model/model.h"

harp_ppl_params harp_ppl_default_params(void) {
    harp_ppl_params p;
    memset(&p, 0, sizeof p);
    p.ctx = 512;
    p.kv_qtype = HARP_QTYPE_F32;
    return p;
}

void harp_ppl_result_free(harp_ppl_result *r) {
    if (!r) return;
    free(r->chunk_nll);
    r->chunk_nll = NULL;
}

typedef struct ppl_io {
    harp_atomic_file out;
    int writing;
    uint8_t *row;
    harp_mapped base;
    harp_logits_header bh;
    const uint8_t *base_rows;
} ppl_io;

static void ids_sha256(const int32_t *ids, size_t n, uint8_t out[32]) {
    uint8_t *b = malloc(n * 4 + 1);
    if (!b) {
        memset(out, 0, 32);
        return;
    }
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) b[4 * i + k] = (uint8_t)((uint32_t)ids[i] >> (8 * k));
    harp_sha256(b, n * 4, out);
    free(b);
}

static harp_status ppl_io_open(ppl_io *io, const harp_ppl_params *p, const int32_t *ids, size_t n_ids, int vocab,
                               int n_chunks) {
    memset(io, 0, sizeof *io);
    harp_logits_header h = {(uint32_t)vocab, (uint32_t)p->ctx, (uint32_t)n_chunks, (uint64_t)n_ids, {0}};
    if (p->save_logits || p->kld_base) ids_sha256(ids, n_ids, h.ids_sha256);
    if (p->kld_base) {
        HARP_TRY(harp_map_file(p->kld_base, &io->base));
        harp_status st = harp_logits_read_header(io->base.data, io->base.size, p->kld_base, &io->bh);
        if (!st && (io->bh.vocab != h.vocab || io->bh.ctx != h.ctx))
            st = harp_err(HARP_ERR_MISMATCH, "%s: saved with vocab %u, ctx %u; this run has vocab %u, ctx %u", p->kld_base,
                          io->bh.vocab, io->bh.ctx, h.vocab, h.ctx);
        if (!st && (io->bh.n_tokens != h.n_tokens || memcmp(io->bh.ids_sha256, h.ids_sha256, 32)))
            st = harp_err(HARP_ERR_MISMATCH, "%s: saved from a different token stream (%llu tokens; this text gives %llu)",
                          p->kld_base, (unsigned long long)io->bh.n_tokens, (unsigned long long)h.n_tokens);
        if (!st && io->bh.n_chunks < h.n_chunks)
            st = harp_err(HARP_ERR_MISMATCH, "%s: holds %u windows, this run scores %u (use --max-chunks %u)", p->kld_base,
                          io->bh.n_chunks, h.n_chunks, io->bh.n_chunks);
        if (st) {
            harp_unmap_file(&io->base);
            return st;
        }
        io->base_rows = io->base.data + HARP_LOGITS_HEADER_BYTES;
    }
    if (p->save_logits) {
        uint8_t hdr[HARP_LOGITS_HEADER_BYTES];
        harp_logits_write_header(&h, hdr);
        io->row = harp_xmalloc(harp_logits_row_bytes((uint32_t)vocab), "logits row");
        harp_status st = io->row ? harp_atomic_open(&io->out, p->save_logits) : HARP_ERR_OOM;
        if (!st) {
            io->writing = 1;
            st = harp_atomic_write(&io->out, hdr, sizeof hdr);
        }
        if (st) {
            if (io->writing) harp_atomic_abort(&io->out);
            io->writing = 0;
            free(io->row);
            harp_unmap_file(&io->base);
            return st;
        }
    }
    return HARP_OK;
}

static harp_status ppl_io_close(ppl_io *io, int ok) {
    harp_status st = HARP_OK;
    if (io->writing) {
        if (ok) st = harp_atomic_commit(&io->out);
        else harp_atomic_abort(&io->out);
    }
    free(io->row);
    harp_unmap_file(&io->base);
    return st;
}

/* Windows of ctx tokens the ids give (at most p->max_chunks when > 0). */
static harp_status ppl_chunks(const harp_model *m, size_t n_ids, const harp_ppl_params *p, int *n_chunks) {
    int ctx = p->ctx;
    if (ctx < 2 || ctx > m->cfg.max_seq_len)
        return harp_err(HARP_ERR_INVALID_ARG, "ppl: ctx %d is outside 2..%d (the model's max_position_embeddings)", ctx,
                        m->cfg.max_seq_len);
    if (p->max_chunks < 0) return harp_err(HARP_ERR_INVALID_ARG, "ppl: max_chunks must be >= 0");
    size_t avail = n_ids / (size_t)ctx;
    if (avail == 0)
        return harp_err(HARP_ERR_INVALID_ARG, "ppl: the text gives %zu tokens, fewer than one window of ctx %d", n_ids, ctx);
    *n_chunks = avail > (size_t)INT32_MAX ? INT32_MAX : (int)avail;
    if (p->max_chunks > 0 && p->max_chunks < *n_chunks) *n_chunks = p->max_chunks;
    return HARP_OK;
}

typedef struct ppl_sums {
    double sum, sum2, ksum, ksum2;
    int64_t scored, agree;
    double *row_nll, *row_kld;   /* (ctx) scratch */
    int *row_agree;
} ppl_sums;

/* The ctx-1 predictions of one window (logits lg of tokens t), and their KL / agreement against the
 * base rows brow or the reference model's logits lr when given, added to s; returns the window's
 * mean NLL. */
static double score_window(ppl_sums *s, const float *lg, const int32_t *t, int ctx, int V, const uint8_t *brow,
                           size_t row_bytes, const float *lr) {
    for (int i = 0; i < ctx - 1; i++) {
        const float *l = lg + (size_t)i * V;
        int am = 0, bt = 0;
        double lse = 0, lse_r = 0;
        s->row_nll[i] = harp_score_row(l, V, t[i + 1], &am, &lse);
        if (brow) s->row_kld[i] = harp_logits_kld_row(brow + (size_t)i * row_bytes, (uint32_t)V, l, &bt);
        if (lr) {
            harp_score_row(lr + (size_t)i * V, V, 0, &bt, &lse_r);
            s->row_kld[i] = harp_kl_row(l, lse, lr + (size_t)i * V, lse_r, V);
        }
        s->row_agree[i] = bt == am;
    }
    double cs = 0;
    for (int i = 0; i < ctx - 1; i++) {
        cs += s->row_nll[i];
        s->sum2 += s->row_nll[i] * s->row_nll[i];
        if (brow || lr) {
            s->ksum += s->row_kld[i];
            s->ksum2 += s->row_kld[i] * s->row_kld[i];
            s->agree += s->row_agree[i];
        }
    }
    s->sum += cs;
    s->scored += ctx - 1;
    return cs / (ctx - 1);
}

harp_status harp_eval_ppl_ids(harp_model *m, const int32_t *ids, size_t n_ids, const harp_ppl_params *pp,
                              harp_ppl_result *out) {
    harp_ppl_params dp = harp_ppl_default_params();
    const harp_ppl_params *p = pp ? pp : &dp;
    if (!m || !ids || !out) return harp_err(HARP_ERR_INVALID_ARG, "harp_eval_ppl: NULL argument");
    memset(out, 0, sizeof *out);
    double t0 = harp_time_s();
    int ctx = p->ctx, V = m->cfg.vocab_size, n_chunks = 0;
    HARP_TRY(ppl_chunks(m, n_ids, p, &n_chunks));
    const harp_model *ref = p->kld_ref;
    if (ref && p->kld_base) return harp_err(HARP_ERR_INVALID_ARG, "harp_eval_ppl: a reference model and saved base logits: one at a time");
    if (ref && (ref->cfg.vocab_size != V || ctx > ref->cfg.max_seq_len))
        return harp_err(HARP_ERR_MISMATCH, "reference model: vocab %d and max_position_embeddings %d; this run needs vocab %d and "
                        "ctx %d", ref->cfg.vocab_size, ref->cfg.max_seq_len, V, ctx);
    harp_ctx *c = NULL, *rc = NULL;
    harp_ctx_params cp = harp_ctx_default_params();
    cp.max_tokens = ctx, cp.kv_qtype = p->kv_qtype;
    HARP_TRY(harp_ctx_create_ex(m, &cp, &c));
    if (ref) {
        harp_status rs = harp_ctx_create_ex(p->kld_ref, &cp, &rc);
        if (rs) {
            harp_ctx_free(c);
            return rs;
        }
    }
    float *lg = harp_aligned_alloc((size_t)ctx * V * sizeof(float), "window logits");
    float *lr = ref ? harp_aligned_alloc((size_t)ctx * V * sizeof(float), "reference window logits") : NULL;
    ppl_sums s = {0};
    s.row_nll = harp_xmalloc((size_t)ctx * sizeof(double), "row nll");
    s.row_kld = harp_xmalloc((size_t)ctx * sizeof(double), "row kld");
    s.row_agree = harp_xmalloc((size_t)ctx * sizeof(int), "row agreement");
    out->chunk_nll = harp_xcalloc((size_t)n_chunks, sizeof(double), "chunk nll");
    ppl_io io;
    memset(&io, 0, sizeof io);
    harp_status st = (!lg || (ref && !lr) || !s.row_nll || !s.row_kld || !s.row_agree || !out->chunk_nll) ? HARP_ERR_OOM : HARP_OK;
    if (!st) st = ppl_io_open(&io, p, ids, n_ids, V, n_chunks);
    int io_open = !st;
    size_t row_bytes = harp_logits_row_bytes((uint32_t)V);
    for (int w = 0; w < n_chunks && !st; w++) {
        const int32_t *t = ids + (size_t)w * ctx;
        harp_ctx_truncate(c, 0);
        if ((st = harp_ctx_eval(c, t, ctx, lg, 1))) break;
        if (rc) {
            harp_ctx_truncate(rc, 0);
            if ((st = harp_ctx_eval(rc, t, ctx, lr, 1))) break;
        }
        const uint8_t *brow = io.base_rows ? io.base_rows + (size_t)w * (ctx - 1) * row_bytes : NULL;
        out->chunk_nll[w] = score_window(&s, lg, t, ctx, V, brow, row_bytes, lr);
        if (io.writing)
            for (int i = 0; i < ctx - 1 && !st; i++) {
                harp_logits_encode_row(lg + (size_t)i * V, (uint32_t)V, io.row);
                st = harp_atomic_write(&io.out, io.row, row_bytes);
            }
        if (p->on_chunk) p->on_chunk(p->on_chunk_user, w, n_chunks, out->chunk_nll[w], exp(s.sum / s.scored));
        if (p->progress && p->progress(p->progress_user, "ppl", w + 1, n_chunks))
            st = harp_err(HARP_ERR_CANCELLED, "ppl: cancelled");
    }
    if (io_open) {
        harp_status cst = ppl_io_close(&io, !st);
        if (!st) st = cst;
    }
    if (!st)
        harp_ppl_finish(out, s.sum, s.sum2, s.scored, n_chunks, ctx, io.base_rows != NULL || ref, s.ksum, s.ksum2, s.agree, t0);
    else harp_ppl_result_free(out);
    harp_free_aligned(lg);
    harp_free_aligned(lr);
    free(s.row_nll);
    free(s.row_kld);
    free(s.row_agree);
    harp_ctx_free(c);
    harp_ctx_free(rc);
    return st;
}

harp_status harp_ppl_over_text(harp_model *m, const char *text, size_t len, const char *fn, harp_ppl_ids_fn run,
                               void *user, harp_ppl_result *out) {
    if (!m || !text || !out) return harp_err(HARP_ERR_INVALID_ARG, "%s: NULL argument", fn);
    memset(out, 0, sizeof *out);
    if (len == 0) return harp_err(HARP_ERR_INVALID_ARG, "ppl: the text is empty");
    if (!harp_utf8_valid(text, len)) return harp_err(HARP_ERR_FORMAT, "ppl: the text is not valid UTF-8");
    if (!m->tok) return harp_err(HARP_ERR_INVALID_ARG, "ppl: the model was opened without a tokenizer");
    double t0 = harp_time_s();
    int32_t *ids = NULL;
    size_t n = 0;
    HARP_TRY(harp_tokenize(m->tok, text, len, 1, &ids, &n));
    harp_log(HARP_LOG_INFO, "ppl: %zu tokens in %.3f s", n, harp_time_s() - t0);
    harp_status st = run(m, ids, n, user, out);
    harp_free(ids);
    if (!st) {
        out->seconds = harp_time_s() - t0;
        out->tokens_per_second = out->seconds > 0 ? (double)out->n_chunks * out->ctx / out->seconds : 0;
    }
    return st;
}

static harp_status ppl_ids_cpu(harp_model *m, const int32_t *ids, size_t n, void *user, harp_ppl_result *out) {
    return harp_eval_ppl_ids(m, ids, n, user, out);
}

harp_status harp_eval_ppl(harp_model *m, const char *text, size_t len, const harp_ppl_params *p, harp_ppl_result *out) {
    return harp_ppl_over_text(m, text, len, "harp_eval_ppl", ppl_ids_cpu, (void *)p, out);
}

void harp_ppl_finish(harp_ppl_result *out, double sum, double sum2, int64_t scored, int n_chunks, int ctx,
                     int has_kld, double ksum, double ksum2, int64_t agree, double t0) {
    double N = (double)scored, mean = sum / N;
    out->nll_mean = mean;
    out->ppl = exp(mean);
    double var = N > 1 ? (sum2 / N - mean * mean) * N / (N - 1) : 0;
    out->ppl_stderr = out->ppl * sqrt(var > 0 ? var / N : 0);
    out->n_tokens_scored = scored;
    out->n_chunks = n_chunks;
    out->ctx = ctx;
    if (has_kld) {
        double km = ksum / N, kv = N > 1 ? (ksum2 / N - km * km) * N / (N - 1) : 0;
        out->has_kld = 1;
        out->kld_mean = km;
        out->kld_stderr = sqrt(kv > 0 ? kv / N : 0);
        out->top1_agree = (double)agree / N;
    }
    out->seconds = harp_time_s() - t0;
    out->tokens_per_second = out->seconds > 0 ? (double)n_chunks * ctx / out->seconds : 0;
}
