/* Zero-shot task loaders: turn each shipped file into the (context, continuation) requests that
 * lm-evaluation-harness builds for the task (its YAML templates and preprocessing functions). */
#include <bzlib.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "harp/zeroshot.h"

static const char *const task_names[HARP_ZS_N_TASKS] = {"arc_easy", "arc_challenge", "piqa",
                                                       "hellaswag", "winogrande"};
static const char *const task_files[HARP_ZS_N_TASKS] = {
    "ARC-Easy-test.jsonl", "ARC-Challenge-test.jsonl", "piqa-valid.jsonl",
    "hellaswag_val_full.txt.bz2", "winogrande_1.1_dev.jsonl"};

const char *harp_zs_task_name(harp_zs_task t) {
    return (unsigned)t < HARP_ZS_N_TASKS ? task_names[t] : "?";
}

int harp_zs_task_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < HARP_ZS_N_TASKS; i++)
        if (!strcmp(name, task_names[i])) return i;
    return -1;
}

const char *harp_zs_task_file(harp_zs_task t) {
    return (unsigned)t < HARP_ZS_N_TASKS ? task_files[t] : NULL;
}

const char *harp_zs_task_labels_file(harp_zs_task t) {
    return t == HARP_ZS_PIQA ? "piqa-valid-labels.lst" : NULL;
}

/* ---- growable item list --------------------------------------------------------------------- */

typedef struct {
    harp_zs_item *v;
    int n, cap;
} item_vec;

static harp_zs_item *item_push(item_vec *iv) {
    if (iv->n == iv->cap) {
        int cap = iv->cap ? iv->cap * 2 : 256;
        harp_zs_item *nv = realloc(iv->v, (size_t)cap * sizeof *nv);
        if (!nv) return NULL;
        iv->v = nv;
        iv->cap = cap;
    }
    harp_zs_item *it = &iv->v[iv->n++];
    memset(it, 0, sizeof *it);
    return it;
}

static void item_free(harp_zs_item *it) {
    for (int i = 0; i < HARP_ZS_MAX_CHOICES; i++) {
        /* shared contexts point at one allocation */
        if (it->ctx[i] && !(it->shared_ctx && i > 0)) free(it->ctx[i]);
        free(it->cont[i]);
        free(it->choice[i]);
    }
}

void harp_zs_dataset_free(harp_zs_dataset *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) item_free(&d->items[i]);
    free(d->items);
    free(d);
}

static char *str_cat(const char *a, const char *b, const char *c) {
    size_t la = strlen(a), lb = strlen(b), lc = c ? strlen(c) : 0;
    char *s = malloc(la + lb + lc + 1);
    if (!s) return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    if (lc) memcpy(s + la + lb, c, lc);
    s[la + lb + lc] = 0;
    return s;
}

/* A shared-context multiple-choice item: ctx, and for each choice cont = " " + choice (the
 * harness's target_delimiter). Takes ownership of ctx. */
static harp_status set_shared(harp_zs_item *it, char *ctx, const char *const *choices, int n,
                      int gold) {
    it->shared_ctx = 1;
    it->n_choices = n;
    it->gold = gold;
    for (int i = 0; i < n; i++) {
        it->ctx[i] = ctx;
        it->choice[i] = harp_strdup(choices[i]);
        it->cont[i] = str_cat(" ", choices[i], NULL);
        if (!it->choice[i] || !it->cont[i]) return harp_err(HARP_ERR_OOM, "zeroshot: out of memory");
    }
    return HARP_OK;
}

/* ---- line reading ----------------------------------------------------------------------------- */

/* Splits buf in place into lines (\n or \r\n); returns the count, lines[] point into buf. */
static int split_lines(char *buf, size_t len, char ***lines_out) {
    int cap = 1024, n = 0;
    char **lines = malloc((size_t)cap * sizeof *lines);
    if (!lines) return -1;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && buf[j] != '\n') j++;
        size_t e = j;
        if (e > i && buf[e - 1] == '\r') e--;
        buf[e] = 0;
        if (n == cap) {
            cap *= 2;
            char **nl = realloc(lines, (size_t)cap * sizeof *nl);
            if (!nl) {
                free(lines);
                return -1;
            }
            lines = nl;
        }
        lines[n++] = buf + i;
        i = j + 1;
    }
    *lines_out = lines;
    return n;
}

/* Decompressed task files are ~8 MB (HellaSwag); a stream that expands past this is refused
 * before it can take the machine's memory. */
#define ZS_MAX_TEXT (64 << 20)

static harp_status read_bz2(const char *path, char **data, size_t *size) {
    char *raw;
    size_t rn;
    HARP_TRY(harp_read_file(path, &raw, &rn));
    size_t cap = rn * 4 + 4096 > ZS_MAX_TEXT ? ZS_MAX_TEXT : rn * 4 + 4096, n = 0;
    char *out = malloc(cap + 1);
    if (!out) {
        free(raw);
        return harp_err(HARP_ERR_OOM, "%s: out of memory decompressing", path);
    }
    bz_stream s;
    memset(&s, 0, sizeof s);
    if (BZ2_bzDecompressInit(&s, 0, 0) != BZ_OK) {
        free(raw);
        free(out);
        return harp_err(HARP_ERR_INTERNAL, "%s: cannot initialise bzip2", path);
    }
    s.next_in = raw;
    s.avail_in = (unsigned)rn;
    int rc = BZ_OK, over = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= ZS_MAX_TEXT) {
                over = 1;
                break;
            }
            cap = cap * 2 > ZS_MAX_TEXT ? ZS_MAX_TEXT : cap * 2;
            char *no = realloc(out, cap + 1);
            if (!no) {
                rc = BZ_MEM_ERROR;
                break;
            }
            out = no;
        }
        s.next_out = out + n;
        size_t room = cap - n;
        s.avail_out = room > 1u << 30 ? 1u << 30 : (unsigned)room;
        unsigned before = s.avail_out;
        rc = BZ2_bzDecompress(&s);
        n += before - s.avail_out;
        if (rc == BZ_STREAM_END) break;
        if (rc != BZ_OK) break;
        if (s.avail_in == 0 && s.avail_out > 0) {
            rc = BZ_UNEXPECTED_EOF;
            break;
        }
    }
    BZ2_bzDecompressEnd(&s);
    free(raw);
    if (rc != BZ_STREAM_END) {
        free(out);
        if (over)
            return harp_err(HARP_ERR_FORMAT, "%s: decompresses to more than %d MB, the limit for a task file", path, ZS_MAX_TEXT >> 20);
        return harp_err(HARP_ERR_FORMAT, "%s: bzip2 data is %s", path,
                        rc == BZ_UNEXPECTED_EOF ? "truncated" : "corrupt");
    }
    out[n] = 0;
    *data = out;
    *size = n;
    return HARP_OK;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static harp_status read_text(const char *path, char **data, size_t *size) {
    if (ends_with(path, ".bz2")) return read_bz2(path, data, size);
    return harp_read_file(path, data, size);
}

/* Reads a text file (bz2 by suffix) and splits it into lines; trailing empty lines are dropped
 * when trim is set. On success the caller frees *lines and *buf. */
static harp_status read_lines(const char *path, int trim, char **buf, char ***lines, int *nl) {
    size_t len;
    HARP_TRY(read_text(path, buf, &len));
    *nl = split_lines(*buf, len, lines);
    if (*nl < 0) {
        free(*buf);
        return harp_err(HARP_ERR_OOM, "%s: out of memory", path);
    }
    while (trim && *nl > 0 && (*lines)[*nl - 1][0] == 0) (*nl)--;
    return HARP_OK;
}

/* ---- JSON helpers ----------------------------------------------------------------------------- */

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- ARC: "Question: {question}\nAnswer:" + " {choice}" ---------------------------------------- */

static harp_status parse_arc(const cJSON *o, const char *path, int line, harp_zs_item *it) {
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(o, "question");
    const char *stem = NULL;
    const cJSON *choices = NULL;
    if (cJSON_IsString(q)) {  /* flat (Hugging Face) schema */
        stem = q->valuestring;
        choices = cJSON_GetObjectItemCaseSensitive(o, "choices");
    } else if (cJSON_IsObject(q)) {  /* nested (AI2 original) schema */
        stem = jstr(q, "stem");
        choices = cJSON_GetObjectItemCaseSensitive(q, "choices");
    }
    const char *key = jstr(o, "answerKey");
    if (!stem || !choices || !key)
        return harp_err(HARP_ERR_FORMAT, "%s:%d: ARC item lacks question, choices or answerKey", path, line);
    const char *texts[HARP_ZS_MAX_CHOICES], *labels[HARP_ZS_MAX_CHOICES];
    int n = 0;
    if (cJSON_IsObject(choices)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(choices, "text");
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(choices, "label");
        int nt = cJSON_GetArraySize(t), nl = cJSON_GetArraySize(l);
        if (!cJSON_IsArray(t) || !cJSON_IsArray(l) || nt != nl || nt < 1 || nt > HARP_ZS_MAX_CHOICES)
            return harp_err(HARP_ERR_FORMAT, "%s:%d: ARC choices need equal-length text and label lists (1..%d)",
                            path, line, HARP_ZS_MAX_CHOICES);
        for (int i = 0; i < nt; i++) {
            const cJSON *a = cJSON_GetArrayItem(t, i), *b = cJSON_GetArrayItem(l, i);
            if (!cJSON_IsString(a) || !cJSON_IsString(b))
                return harp_err(HARP_ERR_FORMAT, "%s:%d: ARC choice %d is not a string", path, line, i);
            texts[n] = a->valuestring;
            labels[n++] = b->valuestring;
        }
    } else if (cJSON_IsArray(choices)) {
        int nc = cJSON_GetArraySize(choices);
        if (nc < 1 || nc > HARP_ZS_MAX_CHOICES)
            return harp_err(HARP_ERR_FORMAT, "%s:%d: ARC item has %d choices (1..%d expected)", path, line,
                            nc, HARP_ZS_MAX_CHOICES);
        for (int i = 0; i < nc; i++) {
            const cJSON *c = cJSON_GetArrayItem(choices, i);
            texts[n] = jstr(c, "text");
            labels[n] = jstr(c, "label");
            if (!texts[n] || !labels[n])
                return harp_err(HARP_ERR_FORMAT, "%s:%d: ARC choice %d lacks text or label", path, line, i);
            n++;
        }
    } else {
        return harp_err(HARP_ERR_FORMAT, "%s:%d: ARC choices are neither an object nor a list", path, line);
    }
    int gold = -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(labels[i], key)) gold = i;
    if (gold < 0) return harp_err(HARP_ERR_FORMAT, "%s:%d: ARC answerKey '%s' is not a choice label", path, line, key);
    char *ctx = str_cat("Question: ", stem, "\nAnswer:");
    if (!ctx) return harp_err(HARP_ERR_OOM, "zeroshot: out of memory");
    return set_shared(it, ctx, texts, n, gold);
}

/* ---- PIQA: "Question: {goal}\nAnswer:" + " {sol}" ------------------------------------------ */

static harp_status parse_piqa(const cJSON *o, const char *path, int line, int label, harp_zs_item *it) {
    const char *goal = jstr(o, "goal"), *s1 = jstr(o, "sol1"), *s2 = jstr(o, "sol2");
    if (!goal || !s1 || !s2) return harp_err(HARP_ERR_FORMAT, "%s:%d: PIQA item lacks goal, sol1 or sol2", path, line);
    const char *ch[2] = {s1, s2};
    char *ctx = str_cat("Question: ", goal, "\nAnswer:");
    if (!ctx) return harp_err(HARP_ERR_OOM, "zeroshot: out of memory");
    return set_shared(it, ctx, ch, 2, label);
}

/* ---- Winogrande: partial evaluation ------------------------------------------------------------
 * contexts: sentence[:idx] + option (one per option); continuation: " " + sentence[idx+1:].strip();
 * acc compares the log-likelihood of the shared continuation under each context. */

static char *py_strip(const char *s) {
    const char *b = s, *e = s + strlen(s);
    while (b < e && (*b == ' ' || *b == '\t' || *b == '\n' || *b == '\r' || *b == '\v' || *b == '\f')) b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r' || e[-1] == '\v' || e[-1] == '\f')) e--;
    char *r = malloc((size_t)(e - b) + 1);
    if (!r) return NULL;
    memcpy(r, b, (size_t)(e - b));
    r[e - b] = 0;
    return r;
}

static harp_status parse_wino(const cJSON *o, const char *path, int line, harp_zs_item *it) {
    const char *sent = jstr(o, "sentence"), *o1 = jstr(o, "option1"), *o2 = jstr(o, "option2");
    const char *ans = jstr(o, "answer");
    if (!sent || !o1 || !o2 || !ans)
        return harp_err(HARP_ERR_FORMAT, "%s:%d: Winogrande item lacks sentence, option1, option2 or answer", path, line);
    const char *us = strchr(sent, '_');
    if (!us) return harp_err(HARP_ERR_FORMAT, "%s:%d: Winogrande sentence has no '_'", path, line);
    if (strcmp(ans, "1") && strcmp(ans, "2"))
        return harp_err(HARP_ERR_FORMAT, "%s:%d: Winogrande answer '%s' is not \"1\" or \"2\"", path, line, ans);
    size_t idx = (size_t)(us - sent);
    char *prefix = malloc(idx + 1);
    char *suffix = py_strip(us + 1);
    if (!prefix || !suffix) {
        free(prefix);
        free(suffix);
        return harp_err(HARP_ERR_OOM, "zeroshot: out of memory");
    }
    memcpy(prefix, sent, idx);
    prefix[idx] = 0;
    it->shared_ctx = 0;
    it->n_choices = 2;
    it->gold = ans[0] - '1';
    const char *opts[2] = {o1, o2};
    harp_status st = HARP_OK;
    for (int i = 0; i < 2; i++) {
        it->ctx[i] = str_cat(prefix, opts[i], NULL);
        it->choice[i] = harp_strdup(it->ctx[i] ? it->ctx[i] : "");
        it->cont[i] = str_cat(" ", suffix, NULL);
        if (!it->ctx[i] || !it->choice[i] || !it->cont[i]) st = harp_err(HARP_ERR_OOM, "zeroshot: out of memory");
    }
    free(prefix);
    free(suffix);
    return st;
}

/* ---- HellaSwag ---------------------------------------------------------------------------------
 * The shipped file (llama.cpp format) holds 6 lines per item: "activity_label: ctx_a ctx_b", the
 * gold index, 4 endings; the harness's preprocess() is applied again (idempotent on clean text,
 * and it removes the bracketed artifacts the file kept). The file lost the ctx_a / ctx_b split and
 * the harness's ctx_b.capitalize(): ctx_b is the trailing fragment after the last sentence end
 * when the context does not end a sentence; that fragment is capitalized as Python does (first
 * character upper, the rest lower). */

/* Python: text.strip(); .replace(" [title]", ". "); re.sub("\\[.*?\\]", "", ·); .replace("  ", " ") */
static char *hs_preprocess(const char *in) {
    char *s = py_strip(in);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *a = malloc(2 * n + 1);
    if (!a) {
        free(s);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (!strncmp(s + i, " [title]", 8)) {
            a[k++] = '.';
            a[k++] = ' ';
            i += 8;
        } else {
            a[k++] = s[i++];
        }
    }
    a[k] = 0;
    /* remove [...] (non-greedy; '.' does not match newline, and lines hold none) */
    size_t w = 0;
    for (size_t i = 0; i < k;) {
        if (a[i] == '[') {
            const char *close = strchr(a + i + 1, ']');
            if (close) {
                i = (size_t)(close - a) + 1;
                continue;
            }
        }
        a[w++] = a[i++];
    }
    a[w] = 0;
    /* replace "  " by " ", non-overlapping, left to right */
    size_t r = 0;
    for (size_t i = 0; i < w;) {
        if (a[i] == ' ' && a[i + 1] == ' ') {
            s[r++] = ' ';
            i += 2;
        } else {
            s[r++] = a[i++];
        }
    }
    s[r] = 0;
    free(a);
    return s;
}

static void hs_capitalize_ctx_b(char *line) {
    char *colon = strstr(line, ": ");
    char *ctx = colon ? colon + 2 : line;
    size_t n = strlen(ctx);
    if (n == 0) return;
    char last = ctx[n - 1];
    if (last == '.' || last == '!' || last == '?' || last == '"' || last == '\'') return;
    char *frag = NULL;
    for (size_t i = n; i-- > 1;)
        if (ctx[i] == ' ' && (ctx[i - 1] == '.' || ctx[i - 1] == '!' || ctx[i - 1] == '?')) {
            frag = ctx + i + 1;
            break;
        }
    if (!frag || !*frag) return; /* a context ending in ". " has no fragment to capitalize */
    if (*frag >= 'a' && *frag <= 'z') *frag = (char)(*frag - 'a' + 'A');
    for (char *p = frag + 1; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
}

static harp_status load_hellaswag(const char *path, int limit, item_vec *iv) {
    char *buf, **lines;
    int nl;
    HARP_TRY(read_lines(path, 1, &buf, &lines, &nl));
    harp_status st = HARP_OK;
    if (nl % 6 != 0)
        st = harp_err(HARP_ERR_FORMAT, "%s: %d lines, not a multiple of 6 (context, label, 4 endings)", path, nl);
    for (int b = 0; st == HARP_OK && b < nl; b += 6) {
        if (limit > 0 && iv->n >= limit) break;
        char *end;
        long gold = strtol(lines[b + 1], &end, 10);
        if (end == lines[b + 1] || *end || gold < 0 || gold > 3) {
            st = harp_err(HARP_ERR_FORMAT, "%s:%d: gold label '%s' is not 0..3", path, b + 2, lines[b + 1]);
            break;
        }
        harp_zs_item *it = item_push(iv);
        if (!it) {
            st = harp_err(HARP_ERR_OOM, "%s: out of memory", path);
            break;
        }
        char *ctxl = harp_strdup(lines[b]);
        if (!ctxl) {
            st = harp_err(HARP_ERR_OOM, "%s: out of memory", path);
            break;
        }
        hs_capitalize_ctx_b(ctxl);
        char *ctx = hs_preprocess(ctxl);
        free(ctxl);
        char *ends[4] = {0};
        for (int i = 0; i < 4; i++) ends[i] = hs_preprocess(lines[b + 2 + i]);
        if (!ctx || !ends[0] || !ends[1] || !ends[2] || !ends[3]) {
            st = harp_err(HARP_ERR_OOM, "%s: out of memory", path);
        } else {
            const char *ch[4] = {ends[0], ends[1], ends[2], ends[3]};
            st = set_shared(it, ctx, ch, 4, (int)gold);
            ctx = NULL;
        }
        free(ctx);
        for (int i = 0; i < 4; i++) free(ends[i]);
    }
    free(lines);
    free(buf);
    return st;
}

/* ---- JSONL driver --------------------------------------------------------------------------- */

static harp_status load_piqa_labels(const char *path, int **labels, int *n) {
    char *buf, **lines;
    int nl;
    HARP_TRY(read_lines(path, 1, &buf, &lines, &nl));
    int *lab = malloc((size_t)(nl > 0 ? nl : 1) * sizeof *lab);
    harp_status st = lab ? HARP_OK : harp_err(HARP_ERR_OOM, "%s: out of memory", path);
    for (int i = 0; st == HARP_OK && i < nl; i++) {
        if (strcmp(lines[i], "0") && strcmp(lines[i], "1"))
            st = harp_err(HARP_ERR_FORMAT, "%s:%d: label '%s' is not 0 or 1", path, i + 1, lines[i]);
        else
            lab[i] = lines[i][0] - '0';
    }
    free(lines);
    free(buf);
    if (st == HARP_OK) *labels = lab, *n = nl;
    else free(lab);
    return st;
}

static harp_status load_jsonl(harp_zs_task task, const char *path, const int *labels, int n_labels,
                      int limit, item_vec *iv) {
    char *buf, **lines;
    int nl;
    HARP_TRY(read_lines(path, 0, &buf, &lines, &nl));
    harp_status st = HARP_OK;
    for (int i = 0; st == HARP_OK && i < nl; i++) {
        if (lines[i][0] == 0) continue;
        if (limit > 0 && iv->n >= limit) break;
        cJSON *o = cJSON_Parse(lines[i]);
        if (!o || !cJSON_IsObject(o)) {
            cJSON_Delete(o);
            st = harp_err(HARP_ERR_FORMAT, "%s:%d: not a JSON object", path, i + 1);
            break;
        }
        int idx = iv->n;
        harp_zs_item *it = item_push(iv);
        if (!it) {
            cJSON_Delete(o);
            st = harp_err(HARP_ERR_OOM, "%s: out of memory", path);
            break;
        }
        switch (task) {
        case HARP_ZS_ARC_EASY:
        case HARP_ZS_ARC_CHALLENGE: st = parse_arc(o, path, i + 1, it); break;
        case HARP_ZS_PIQA:
            if (idx >= n_labels)
                st = harp_err(HARP_ERR_FORMAT, "%s: more items than labels (%d) in the labels file", path, n_labels);
            else
                st = parse_piqa(o, path, i + 1, labels[idx], it);
            break;
        case HARP_ZS_WINOGRANDE: st = parse_wino(o, path, i + 1, it); break;
        default: st = harp_err(HARP_ERR_INTERNAL, "zeroshot: task %d is not JSONL", (int)task);
        }
        cJSON_Delete(o);
    }
    if (st == HARP_OK && task == HARP_ZS_PIQA && limit <= 0 && iv->n != n_labels)
        st = harp_err(HARP_ERR_FORMAT, "%s: %d items but %d labels", path, iv->n, n_labels);
    free(lines);
    free(buf);
    return st;
}

harp_status harp_zs_load(harp_zs_task task, const char *dir, int limit, harp_zs_dataset **out) {
    if ((unsigned)task >= HARP_ZS_N_TASKS || !dir || !out)
        return harp_err(HARP_ERR_INVALID_ARG, "harp_zs_load: bad task or NULL argument");
    *out = NULL;
    item_vec iv = {0};
    char *path = harp_path_join(dir, task_files[task]);
    if (!path) return harp_err(HARP_ERR_OOM, "zeroshot: out of memory");
    harp_status st;
    if (task == HARP_ZS_HELLASWAG) {
        if (!harp_file_exists(path) && ends_with(path, ".bz2")) path[strlen(path) - 4] = 0;
        st = load_hellaswag(path, limit, &iv);
    } else if (task == HARP_ZS_PIQA) {
        char *lp = harp_path_join(dir, harp_zs_task_labels_file(task));
        int *labels = NULL, nlab = 0;
        st = lp ? load_piqa_labels(lp, &labels, &nlab) : harp_err(HARP_ERR_OOM, "zeroshot: out of memory");
        if (st == HARP_OK) st = load_jsonl(task, path, labels, nlab, limit, &iv);
        free(labels);
        free(lp);
    } else {
        st = load_jsonl(task, path, NULL, 0, limit, &iv);
    }
    if (st == HARP_OK && iv.n == 0) st = harp_err(HARP_ERR_FORMAT, "%s: no items", path);
    free(path);
    harp_zs_dataset *d = NULL;
    if (st == HARP_OK) {
        d = harp_xcalloc(1, sizeof *d, "zeroshot dataset");
        if (!d) st = HARP_ERR_OOM;
    }
    if (st != HARP_OK) {
        for (int i = 0; i < iv.n; i++) item_free(&iv.v[i]);
        free(iv.v);
        return st;
    }
    d->task = task;
    d->n = iv.n;
    d->items = iv.v;
    *out = d;
    return HARP_OK;
}
