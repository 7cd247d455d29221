/* `harp quantize --method wakv` (include/harp/wakv.h): rotate the model in place, Hessians of the
 * rotated model, weights through the scalar pipeline (pipeline.c), the model's activation / KV slots
 * with fixed or searched clip ratios, and quantization_config.wakv added to the folder's config.json. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "harp/calib.h"
#include "harp/wakv.h"
#include "model/slots.h"
#include "qmodel/wakv.h"
#include "quant/aq.h"

harp_wakv_params harp_wakv_default_params(void) {
    harp_wakv_params p;
    memset(&p, 0, sizeof p);
    p.w_quant = HARP_QMETHOD_GPTQ;
    p.w_bits = 4;
    p.a_bits = p.kv_bits = 16;
    p.rotation = "hadamard";
    p.a_clip = p.kv_clip = 1.0f;
    p.search_iters = 8;
    p.search_windows = 2;
    p.resume = 1;
    p.abort_after_layer = -1;
    return p;
}

const char *harp_clip_scope_name(int scope) {
    static const char *const names[] = {"layer", "class", "model"};
    return scope >= HARP_CLIP_SCOPE_LAYER && scope <= HARP_CLIP_SCOPE_MODEL ? names[scope] : NULL;
}

const char *harp_clip_loss_name(int loss) {
    static const char *const names[] = {"nll", "kld"};
    return loss >= HARP_CLIP_LOSS_NLL && loss <= HARP_CLIP_LOSS_KLD ? names[loss] : NULL;
}

harp_status harp_wakv_skip_parse(const char *list, unsigned *mask) {
    *mask = 0;
    for (const char *s = list; s && *s;) {
        size_t n = strcspn(s, ",");
        int g = 0;
        while (harp_lg_input_name(g) && (strlen(harp_lg_input_name(g)) != n || strncmp(s, harp_lg_input_name(g), n))) g++;
        if (!harp_lg_input_name(g))
            return harp_err(HARP_ERR_INVALID_ARG, "--a-skip '%s': names are qkv, o, up_gate, down (comma-separated)", list);
        *mask |= 1u << g;
        s += n + (s[n] == ',');
    }
    if (!*mask) return harp_err(HARP_ERR_INVALID_ARG, "--a-skip: give at least one of qkv, o, up_gate, down");
    return HARP_OK;
}

static int is_pow2(int x) {
    return x > 0 && !(x & (x - 1));
}

harp_status harp_wakv_check(const harp_wakv_params *p) {
    if (!p) return harp_err(HARP_ERR_INVALID_ARG, "wakv: NULL parameters");
    harp_wakv_rkind k;
    HARP_TRY(harp_wakv_rkind_parse(p->rotation, &k));
    if (p->w_quant != HARP_QMETHOD_RTN && p->w_quant != HARP_QMETHOD_GPTQ && p->w_quant != HARP_QMETHOD_LDP)
        return harp_err(HARP_ERR_INVALID_ARG, "--method wakv: --w-quant takes rtn, gptq or ldp (QuIP# codebook weights have "
                        "no integer activation path)");
    if (p->w_bits != 2 && p->w_bits != 3 && p->w_bits != 4 && p->w_bits != 8)
        return harp_err(HARP_ERR_INVALID_ARG, "--w-bits %d: wakv weights take 2, 3, 4 or 8 bits", p->w_bits);
    if (p->w_quant == HARP_QMETHOD_LDP && (p->w_bits != 2 || p->w_sym || p->w_clip))
        return harp_err(HARP_ERR_INVALID_ARG, "--w-quant ldp: 2-bit learned levels only (--w-bits 2, no --w-sym / --w-clip)");
    if (p->a_bits != 3 && p->a_bits != 4 && p->a_bits != 8 && p->a_bits != 16)
        return harp_err(HARP_ERR_INVALID_ARG, "--a-bits %d: activations take 3, 4, 8 or 16 (= unquantized) bits", p->a_bits);
    if (p->kv_bits != 2 && p->kv_bits != 3 && p->kv_bits != 4 && p->kv_bits != 8 && p->kv_bits != 16)
        return harp_err(HARP_ERR_INVALID_ARG, "--kv-bits %d: the KV cache takes 2, 3, 4, 8 or 16 (= fp32) bits", p->kv_bits);
    if (!(p->a_clip > 0 && p->a_clip <= 1) || !(p->kv_clip > 0 && p->kv_clip <= 1))
        return harp_err(HARP_ERR_INVALID_ARG, "--a-clip / --kv-clip must be in (0, 1]");
    if (p->a_group && p->a_bits == 16)
        return harp_err(HARP_ERR_INVALID_ARG, "--a-group: activations are not quantized (--a-bits 16)");
    if (p->a_group < 0) return harp_err(HARP_ERR_INVALID_ARG, "--a-group %d: must be >= 0", p->a_group);
    if (p->kv_group && p->kv_bits == 16)
        return harp_err(HARP_ERR_INVALID_ARG, "--kv-group: the KV cache is not quantized (--kv-bits 16)");
    if (p->kv_group < 0) return harp_err(HARP_ERR_INVALID_ARG, "--kv-group %d: must be >= 0", p->kv_group);
    if (p->a_skip && p->a_bits == 16)
        return harp_err(HARP_ERR_INVALID_ARG, "--a-skip: activations are not quantized (--a-bits 16)");
    if (p->a_skip >> HARP_LG_COUNT)
        return harp_err(HARP_ERR_INVALID_ARG, "--a-skip: mask 0x%x names no linear input", p->a_skip);
    if (p->ldp_fit_block && (p->w_quant != HARP_QMETHOD_LDP || !p->ldp_text))
        return harp_err(HARP_ERR_INVALID_ARG, "--ldp-fit block needs --w-quant ldp and a calibration text");
    if (p->act_order && p->w_quant != HARP_QMETHOD_GPTQ)
        return harp_err(HARP_ERR_INVALID_ARG, "--act-order needs --w-quant gptq (RTN and LDP have no column order option)");
    if (p->gsr_block && k != HARP_WAKV_ROT_GSR)
        return harp_err(HARP_ERR_INVALID_ARG, "--gsr-block needs --rotation gsr (the rotation is %s)", p->rotation);
    if (p->gsr_block && !is_pow2(p->gsr_block))
        return harp_err(HARP_ERR_INVALID_ARG, "--gsr-block %d is not a power of two", p->gsr_block);
    if (p->clip_search && p->a_bits == 16 && p->kv_bits == 16)
        return harp_err(HARP_ERR_INVALID_ARG, "--clip-search: nothing to clip (activations and KV cache are at 16 bits)");
    if (p->clip_search && !p->calib_text)
        return harp_err(HARP_ERR_INVALID_ARG, "--clip-search needs --calib TEXT (its loss is computed on that text)");
    if (!harp_clip_scope_name(p->search_scope))
        return harp_err(HARP_ERR_INVALID_ARG, "clip search: scope %d is not layer (0), class (1) or model (2)", p->search_scope);
    if (!harp_clip_loss_name(p->search_loss))
        return harp_err(HARP_ERR_INVALID_ARG, "clip search: loss %d is not nll (0) or kld (1)", p->search_loss);
    if (!harp_wcalib_name(p->w_calib))
        return harp_err(HARP_ERR_INVALID_ARG, "--w-calib: mode %d is not files (0), seq (1) or asym (2)", p->w_calib);
    if (p->w_calib != HARP_WCALIB_FILES && p->w_quant != HARP_QMETHOD_GPTQ)
        return harp_err(HARP_ERR_INVALID_ARG, "--w-calib %s needs --w-quant gptq", harp_wcalib_name(p->w_calib));
    if (p->w_calib != HARP_WCALIB_FILES && !p->calib_text)
        return harp_err(HARP_ERR_INVALID_ARG, "--w-calib %s needs --calib TEXT (the layers run on it)", harp_wcalib_name(p->w_calib));
    if (p->clip_search && (p->search_iters < 1 || p->search_windows < 1))
        return harp_err(HARP_ERR_INVALID_ARG, "--clip-search: iterations and windows must be >= 1");
    return HARP_OK;
}

/* m ← its offline rotation, with the online halves of R3 (when K is quantized) and R4 (when the
 * activations are) switched on. */
static harp_status wk_rotate(harp_model *m, const harp_wakv_params *p) {
    harp_wakv_rot_params rp = harp_wakv_rot_params_default();
    HARP_TRY(harp_wakv_rkind_parse(p->rotation, &rp.r1));
    rp.r2 = rp.r1;
    rp.gsr_block = p->gsr_block;
    rp.r3 = p->kv_bits < 16;
    rp.r4 = p->a_bits < 16;
    /* R_o where n_heads·head_dim has a Hadamard matrix (every Llama / Qwen / SmolLM width we know); a
     * width without one runs without it rather than failing: it only helps the o input's quantizer */
    const int64_t qd = (int64_t)m->cfg.n_heads * m->cfg.head_dim;
    int64_t qd_pad = 0;
    rp.ro = p->a_bits < 16 && harp_had_pad_dim(qd, &qd_pad, NULL) == HARP_OK && qd_pad == qd;
    if (p->a_bits < 16 && !rp.ro)
        harp_log(HARP_LOG_INFO, "wakv: no Hadamard matrix of order %lld (n_heads · head_dim): the o-projection input runs "
                 "without its online Hadamard R_o", (long long)qd);
    rp.r1_expand = 0;
    rp.seed = p->seed;
    harp_wakv_dims dm = harp_wakv_model_dims(m);
    harp_wakv_rots R;
    HARP_TRY(harp_wakv_rots_create(&rp, &dm, &R));
    harp_status st = harp_wakv_model_rotate(m, &R);
    harp_wakv_rots_free(&R);
    harp_wakv_exec e;
    memset(&e, 0, sizeof e);
    e.r3 = rp.r3, e.r4 = rp.r4, e.ro = rp.ro;
    return st ? st : harp_model_set_exec(m, &e);
}

/* Hessians of the rotated m in dir: reused when they are its own, computed from the calibration text
 * otherwise; another model's files are refused (they would be silently wrong here). */
static harp_status wk_hessians(harp_model *m, const char *dir, const harp_wakv_params *p) {
    char name[32];
    snprintf(name, sizeof name, "layer_%03d.hess", m->cfg.n_layers - 1);
    char *p0 = harp_path_join(dir, "layer_000.hess"), *pl = harp_path_join(dir, name);
    if (!p0 || !pl) {
        free(p0), free(pl);
        return HARP_ERR_OOM;
    }
    int have0 = harp_file_exists(p0), have_all = have0 && harp_file_exists(pl);
    free(p0), free(pl);
    harp_hess_layer *h = NULL;
    if (have0 && harp_hess_layer_load(dir, 0, m, &h) != HARP_OK)
        return harp_err(HARP_ERR_MISMATCH, "%s: holds Hessians of another model (the unrotated one?); --method wakv needs "
                        "the rotated model's: give a new folder and --calib TEXT", dir);
    harp_hess_layer_free(h);
    if (!p->calib_text) {
        if (have_all) return HARP_OK;
        return harp_err(HARP_ERR_INVALID_ARG, "%s: no Hessians of the rotated model there; give --calib TEXT to compute them",
                        dir);
    }
    harp_calib_params cp = harp_calib_default_params();
    cp.ctx = p->calib_ctx ? p->calib_ctx : (m->cfg.max_seq_len < 512 ? m->cfg.max_seq_len : 512);
    cp.nseq = p->calib_nseq ? p->calib_nseq : 128;
    cp.seed = p->seed;
    cp.progress = p->progress;
    cp.progress_user = p->progress_user;
    harp_calib_summary sum;
    return harp_calib_run(m, p->calib_text, p->calib_len, dir, &cp, &sum);
}

/* ---- clip-ratio search (§6.3; the schedule is ours) ---------------------------------------------------- */

typedef struct wk_search {
    harp_model *m;
    harp_ctx *c, *ref;    /* ref (KLD loss): the search windows' logits before the A / KV quantizers */
    int32_t *ids;
    int n_win, len, n_cls, n;
    int *layer, *cls;     /* per quantizer: (layer, HARP_CLIP_*) */
    int *var;             /* per quantizer: the searched ratio it takes (harp_wakv_params.search_scope) */
    int32_t *rows, *targets;
    double *nll, *kld;
    int *agree;
} wk_search;

/* The loss of the ratios given: the search windows' mean NLL, or their mean KL divergence from the
 * same model without its activation / K/V quantizers (harp_wakv_params.search_loss). */
static harp_status wk_loss(void *user, int pass, int k, const double *ratios, double *loss) {
    (void)pass, (void)k;
    wk_search *s = user;
    for (int i = 0; i < s->n_cls; i++)
        HARP_TRY(harp_model_set_clip(s->m, s->layer[i], s->cls[i], (float)ratios[s->var[i]]));
    HARP_TRY(harp_ctx_eval_windows(s->c, s->ids, s->n_win, s->len));
    HARP_TRY(harp_ctx_score(s->c, s->ref, s->rows, s->targets, s->n, s->nll, s->kld, s->agree));
    const double *v = s->ref ? s->kld : s->nll;
    double sum = 0;
    for (int j = 0; j < s->n; j++) sum += v[j];
    *loss = sum / s->n;
    return HARP_OK;
}

/* The classes with a quantizer, layer by layer (the "gradual" order: earlier layers first). */
static int wk_classes(const harp_model *m, const harp_wakv_params *p, int *layer, int *cls) {
    int n = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int k = 0; k < HARP_CLIP_COUNT; k++)
            if (k < HARP_LG_COUNT ? p->a_bits < 16 && !(p->a_skip >> k & 1u) : p->kv_bits < 16)
                layer[n] = l, cls[n++] = k;
    return n;
}

/* Maps each quantizer to its searched ratio at the scope asked for; returns the number of ratios. */
static int wk_vars(const wk_search *s, int scope, int *var, double *start, const harp_wakv_params *p) {
    int n = 0, id[HARP_CLIP_COUNT];
    for (int k = 0; k < HARP_CLIP_COUNT; k++) id[k] = -1;
    for (int i = 0; i < s->n_cls; i++) {
        const int kv = s->cls[i] >= HARP_LG_COUNT;
        const int key = scope == HARP_CLIP_SCOPE_MODEL ? kv : s->cls[i];
        if (scope == HARP_CLIP_SCOPE_LAYER) var[i] = n++;
        else if (id[key] < 0) var[i] = id[key] = n++;
        else var[i] = id[key];
        start[var[i]] = kv ? p->kv_clip : p->a_clip;
    }
    return n;
}

static harp_status wk_search_run(wk_search *s, const harp_wakv_params *p, int64_t *n_evals) {
    double *r = malloc((size_t)s->n_cls * sizeof *r);
    if (!r) return harp_err(HARP_ERR_OOM, "clip search: out of memory");
    harp_clip_search cs = harp_clip_search_default(wk_vars(s, p->search_scope, s->var, r, p));
    cs.passes = 1;
    cs.iters = p->search_iters;
    cs.progress = p->progress;
    cs.progress_user = p->progress_user;
    harp_status st = harp_clip_search_run(&cs, wk_loss, s, r, NULL, n_evals);
    double final;
    if (!st) st = wk_loss(s, 0, 0, r, &final);   /* leaves the chosen ratios in the model */
    free(r);
    return st;
}

static void wk_search_close(wk_search *s) {
    harp_ctx_free(s->c), harp_ctx_free(s->ref);
    free(s->layer), free(s->cls), free(s->var), free(s->rows), free(s->targets), free(s->agree), free(s->nll), free(s->kld);
    harp_free(s->ids);
    memset(s, 0, sizeof *s);
}

/* The search's windows (the calibration text's first n_win windows, all scored rows) and, for the
 * KLD loss, their reference logits: called after the weights are quantized and before the A / KV
 * quantizers are set. The reference context is only read for its logits afterwards (setting the
 * slots unloads the weights it was evaluated with). */
static harp_status wk_search_open(harp_model *m, const harp_wakv_params *p, wk_search *s) {
    memset(s, 0, sizeof *s);
    const int n_max = m->cfg.n_layers * HARP_CLIP_COUNT;
    const int len = p->calib_ctx ? p->calib_ctx : (m->cfg.max_seq_len < 512 ? m->cfg.max_seq_len : 512);
    s->m = m, s->n_win = p->search_windows, s->len = len, s->n = s->n_win * (len - 1);
    size_t n_ids = 0;
    HARP_TRY(harp_tokenize(harp_model_tokenizer(m), p->calib_text, p->calib_len, 1, &s->ids, &n_ids));
    if (n_ids < (size_t)s->n_win * len) {
        wk_search_close(s);
        return harp_err(HARP_ERR_INVALID_ARG, "clip search: the calibration text has %zu tokens, fewer than %d windows of %d",
                        n_ids, p->search_windows, len);
    }
    s->layer = malloc((size_t)n_max * sizeof *s->layer), s->cls = malloc((size_t)n_max * sizeof *s->cls);
    s->var = malloc((size_t)n_max * sizeof *s->var);
    s->rows = malloc((size_t)s->n * sizeof *s->rows), s->targets = malloc((size_t)s->n * sizeof *s->targets);
    s->agree = malloc((size_t)s->n * sizeof *s->agree);
    s->nll = malloc((size_t)s->n * sizeof *s->nll), s->kld = malloc((size_t)s->n * sizeof *s->kld);
    harp_status st = s->layer && s->cls && s->var && s->rows && s->targets && s->agree && s->nll && s->kld
                         ? HARP_OK : harp_err(HARP_ERR_OOM, "clip search: out of memory");
    for (int w = 0, j = 0; !st && w < s->n_win; w++)
        for (int t = 0; t < len - 1; t++, j++) s->rows[j] = w * len + t, s->targets[j] = s->ids[(size_t)w * len + t + 1];
    harp_ctx_params cp = harp_ctx_default_params();
    cp.max_tokens = len, cp.max_rows = s->n_win * len;
    if (!st && p->search_loss == HARP_CLIP_LOSS_KLD) st = harp_ctx_create_ex(m, &cp, &s->ref);
    if (!st && s->ref) st = harp_ctx_eval_windows(s->ref, s->ids, s->n_win, len);
    if (st) wk_search_close(s);
    return st;
}

/* Searches the clip ratios of m's quantizers (set since wk_search_open). */
static harp_status wk_clip_search(wk_search *s, const harp_wakv_params *p, int64_t *n_evals) {
    harp_ctx_params cp = harp_ctx_default_params();
    cp.max_tokens = s->len, cp.max_rows = s->n_win * s->len;
    HARP_TRY(harp_ctx_create_ex(s->m, &cp, &s->c));
    s->n_cls = wk_classes(s->m, p, s->layer, s->cls);
    return wk_search_run(s, p, n_evals);
}

/* ---- folder ------------------------------------------------------------------------------------------ */

/* quantization_config.wakv: weights, rotation, the search (when it ran) and the model's slots. */
static cJSON *wk_json(const harp_model *m, const harp_wakv_params *p, int search_tokens, int64_t n_evals) {
    cJSON *w = cJSON_CreateObject();
    cJSON *wq = cJSON_AddObjectToObject(w, "weights");
    cJSON_AddStringToObject(wq, "quant", harp_qmethod_name(p->w_quant));
    cJSON_AddNumberToObject(wq, "bits", p->w_bits);
    cJSON_AddNumberToObject(wq, "group_size", p->w_group);
    cJSON_AddBoolToObject(wq, "symmetric", p->w_sym);
    cJSON_AddStringToObject(wq, "clip", p->w_clip ? "mse" : "minmax");
    if (p->act_order) cJSON_AddBoolToObject(wq, "act_order", 1);
    cJSON *r = cJSON_AddObjectToObject(w, "rotation");
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)p->seed);
    cJSON_AddStringToObject(r, "r1", p->rotation);
    cJSON_AddStringToObject(r, "r2", p->rotation);
    if (p->gsr_block) cJSON_AddNumberToObject(r, "gsr_block", p->gsr_block);
    cJSON_AddStringToObject(r, "seed", seed);
    if (p->clip_search) {
        cJSON *cs = cJSON_AddObjectToObject(w, "clip_search");
        cJSON_AddStringToObject(cs, "schedule", "harp-gbs-1 (ours): ternary search per shared ratio, one pass");
        cJSON_AddStringToObject(cs, "scope", harp_clip_scope_name(p->search_scope));
        cJSON_AddStringToObject(cs, "loss", harp_clip_loss_name(p->search_loss));
        cJSON_AddNumberToObject(cs, "iters", p->search_iters);
        cJSON_AddNumberToObject(cs, "loss_tokens", search_tokens);
        cJSON_AddNumberToObject(cs, "evaluations", (double)n_evals);
    }
    if (harp_model_exec_to_json(m, w)) {
        cJSON_Delete(w);
        return NULL;
    }
    return w;
}

/* out_dir/config.json gains quantization_config.wakv (version HARP_QMODEL_VERSION_WAKV, or _WAKV_RO
 * when the o input has its online Hadamard), and says the (rotated) head is not tied. */
static harp_status wk_patch_config(const char *out_dir, cJSON *wakv) {
    const int version = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(wakv, "ro")) ? HARP_QMODEL_VERSION_WAKV_RO
                                                                                  : HARP_QMODEL_VERSION_WAKV;
    char *path = harp_path_join(out_dir, "config.json"), *text = NULL;
    size_t len = 0;
    harp_status st = path ? harp_read_file(path, &text, &len) : HARP_ERR_OOM;
    cJSON *root = st ? NULL : cJSON_ParseWithLength(text, len);
    cJSON *q = root ? cJSON_GetObjectItemCaseSensitive(root, "quantization_config") : NULL;
    if (!st && !cJSON_IsObject(q)) st = harp_err(HARP_ERR_FORMAT, "%s: no quantization_config to extend", path);
    if (!st) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, "tie_word_embeddings");
        cJSON_AddBoolToObject(root, "tie_word_embeddings", 0);
        cJSON_ReplaceItemInObjectCaseSensitive(q, "version", cJSON_CreateNumber(version));
        cJSON_DeleteItemFromObjectCaseSensitive(q, "wakv");
        cJSON_AddItemToObject(q, "wakv", wakv);
        wakv = NULL;
        char *out = cJSON_Print(root);
        if (!out) st = HARP_ERR_OOM;
        else {
            size_t n = strlen(out);
            out[n] = '\n';
            st = harp_write_file_atomic(path, out, n + 1);
            free(out);
        }
    }
    cJSON_Delete(wakv);
    cJSON_Delete(root);
    harp_free(text);
    free(path);
    return st;
}

static harp_status wk_slots(harp_model *m, const harp_wakv_params *p) {
    harp_wakv_exec e = harp_model_exec(m);
    if (p->a_bits < 16) e.act = (harp_aq_fmt){p->a_bits, 0, p->a_group, p->a_clip, 0};
    e.act_skip = p->a_skip;
    if (p->kv_bits < 16) e.kv = (harp_aq_fmt){p->kv_bits, 0, p->kv_group ? p->kv_group : m->cfg.head_dim, p->kv_clip, 1};
    return harp_model_set_exec(m, &e);
}

/* m without its activation and K/V quantizers (the slots set early for the block fit or the
 * sequential calibration): the clip search's reference logits are taken without them. */
static harp_status wk_slots_off(harp_model *m) {
    harp_wakv_exec e = harp_model_exec(m);
    memset(&e.act, 0, sizeof e.act), memset(&e.kv, 0, sizeof e.kv);
    e.act_skip = 0;
    return harp_model_set_exec(m, &e);
}

/* LDP fit (b): its block runs m's slots, so they are set before the weights are quantized (the
 * Hessians were computed without them). */
static harp_status wk_ldp_block(harp_model *m, const harp_wakv_params *p, harp_qmodel_params *qp) {
    qp->ldp_fit_block = 1, qp->ldp_text = p->ldp_text, qp->ldp_text_len = p->ldp_text_len;
    if (p->ldp_ctx) qp->ldp_ctx = p->ldp_ctx;
    if (p->ldp_nseq) qp->ldp_nseq = p->ldp_nseq;
    if (p->ldp_steps) qp->ldp_steps = p->ldp_steps;
    if (p->ldp_lr > 0) qp->ldp_lr = p->ldp_lr;
    qp->ldp_gpu = p->ldp_gpu;
    return wk_slots(m, p);
}

harp_status harp_quantize_wakv(harp_model *m, const char *model_path, const char *hess_dir, const char *out_dir,
                               const harp_wakv_params *p, harp_qmodel_report *report) {
    if (!m || !model_path || !out_dir || !p) return harp_err(HARP_ERR_INVALID_ARG, "harp_quantize_wakv: NULL argument");
    HARP_TRY(harp_wakv_check(p));
    if (!hess_dir && p->w_calib == HARP_WCALIB_FILES)
        return harp_err(HARP_ERR_INVALID_ARG, "harp_quantize_wakv: no Hessian folder (needed unless w_calib is seq or asym)");
    const int in_w[3] = {m->cfg.dim, m->cfg.n_heads * m->cfg.head_dim, m->cfg.hidden_dim};
    for (int i = 0; p->a_group && p->a_bits < 16 && i < 3; i++)   /* before any work: the slots would refuse it */
        if (in_w[i] % p->a_group)
            return harp_err(HARP_ERR_INVALID_ARG, "--a-group %d does not divide the %s input width %d", p->a_group,
                            i == 0 ? "q|k|v and up|gate" : i == 1 ? "o" : "down", in_w[i]);
    if (p->kv_group && p->kv_bits < 16 && m->cfg.head_dim % p->kv_group)
        return harp_err(HARP_ERR_INVALID_ARG, "--kv-group %d does not divide head_dim %d", p->kv_group, m->cfg.head_dim);
    if (m->quant_desc[0] || m->slots)
        return harp_err(HARP_ERR_INVALID_ARG, "--method wakv: the model is already quantized (give the fp model)");
    HARP_TRY(wk_rotate(m, p));
    const int seq = p->w_calib != HARP_WCALIB_FILES;
    if (!seq) HARP_TRY(wk_hessians(m, hess_dir, p));
    harp_qmodel_params qp = harp_qmodel_default_params(p->w_quant, p->w_bits);
    qp.group_size = p->w_group;
    qp.symmetric = p->w_sym, qp.mse_clip = p->w_clip, qp.act_order = p->act_order;
    qp.rotation = HARP_QROT_NONE;
    qp.seed = p->seed;
    qp.resume = p->resume;
    qp.abort_after_layer = p->abort_after_layer;
    qp.keep_model = 1;
    qp.progress = p->progress;
    qp.progress_user = p->progress_user;
    harp_status st = p->ldp_fit_block ? wk_ldp_block(m, p, &qp) : HARP_OK;
    if (!st && seq) { /* the layers run with their quantizers: the slots first */
        qp.w_calib = p->w_calib, qp.calib_text = p->calib_text, qp.calib_text_len = p->calib_len;
        qp.calib_ctx = p->calib_ctx ? p->calib_ctx : (m->cfg.max_seq_len < 512 ? m->cfg.max_seq_len : 512);
        qp.calib_nseq = p->calib_nseq ? p->calib_nseq : 128;
        st = wk_slots(m, p);
    }
    harp_qmodel_report rep;
    memset(&rep, 0, sizeof rep);
    if (!st) st = harp_quantize_model(m, model_path, hess_dir, out_dir, &qp, &rep);
    if (!st && (seq || p->ldp_fit_block)) st = wk_slots_off(m);
    wk_search s;
    memset(&s, 0, sizeof s);
    if (!st && p->clip_search) st = wk_search_open(m, p, &s);
    if (!st) st = wk_slots(m, p);
    int64_t n_evals = 0;
    if (!st && p->clip_search) st = wk_clip_search(&s, p, &n_evals);
    const int tokens = s.n;
    wk_search_close(&s);
    cJSON *w = st ? NULL : wk_json(m, p, tokens, n_evals);
    if (!st && !w) st = harp_err(HARP_ERR_OOM, "quantize: out of memory");
    if (!st) st = wk_patch_config(out_dir, w);
    if (!st) {
        size_t n = strlen(m->quant_desc);
        snprintf(m->quant_desc + n, sizeof m->quant_desc - n, "; wakv W%d A%d KV%d %s", p->w_bits, p->a_bits, p->kv_bits,
                 p->rotation);
    }
    if (st || !report) harp_qmodel_report_free(&rep);
    else *report = rep;
    return st;
}
