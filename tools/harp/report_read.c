/* Tolerant readers for the JSON results harp report turns into a page: `harp ppl --json`,
 * `harp zeroshot --json` (and lm-evaluation-harness's own "acc,none" keys), `harp quantize --json`
 * (schema in docs/cli/report.md). A file may hold one object, an array of objects, or one object
 * per line. Unknown keys are ignored; alternative key spellings are accepted. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "report.h"

static int fail(char *err, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

static double num(const cJSON *o, const char *const *keys, double dflt) {
    for (; *keys; keys++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, *keys);
        if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) return v->valuedouble;
    }
    return dflt;
}

static void str(const cJSON *o, const char *const *keys, char *dst, size_t n, const char *dflt) {
    for (; *keys; keys++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, *keys);
        if (cJSON_IsString(v)) {
            snprintf(dst, n, "%s", v->valuestring);
            return;
        }
    }
    snprintf(dst, n, "%s", dflt);
}

static const char *const K_PPL[] = {"ppl", "perplexity", "ppl_mean", NULL};
static const char *const K_KLD[] = {"kld", "kld_mean", "kl_divergence", NULL};
static const char *const K_BPW[] = {"bpw", "bits_per_weight", NULL};
static const char *const K_BITS[] = {"bits", "wbits", NULL};
static const char *const K_MODEL[] = {"model", "model_path", "name", NULL};
static const char *const K_METHOD[] = {"method", "quant_method", NULL};
static const char *const K_DATASET[] = {"dataset", "data", "text", NULL};
static const char *const K_CTX[] = {"ctx", "context", "seq_len", NULL};

static void *grow(void *p, int n, size_t elem) {
    /* capacity doubles at powers of two */
    if (n & (n - 1)) return p;
    return realloc(p, (size_t)(n ? 2 * n : 1) * elem);
}

static int add_ppl(rp_data *d, const cJSON *o, const char *src, const char *model_dflt) {
    void *np = grow(d->ppl, d->n_ppl, sizeof *d->ppl);
    if (!np) return -1;
    d->ppl = np;
    rp_ppl *r = &d->ppl[d->n_ppl++];
    memset(r, 0, sizeof *r);
    snprintf(r->source, sizeof r->source, "%s", src);
    str(o, K_MODEL, r->model, sizeof r->model, model_dflt);
    str(o, K_METHOD, r->method, sizeof r->method, "");
    str(o, K_DATASET, r->dataset, sizeof r->dataset, "");
    r->ppl = num(o, K_PPL, NAN);
    r->kld = num(o, K_KLD, -1);
    r->bpw = num(o, K_BPW, -1);
    r->ctx = (int)num(o, K_CTX, 0);
    return 0;
}

static int add_quant_row(rp_data *d, const cJSON *o, const char *src, const char *model, char *err, size_t errn) {
    void *np = grow(d->quant, d->n_quant, sizeof *d->quant);
    if (!np) return fail(err, errn, "%s: out of memory", src);
    d->quant = np;
    rp_quant *q = &d->quant[d->n_quant++];
    memset(q, 0, sizeof *q);
    snprintf(q->source, sizeof q->source, "%s", src);
    str(o, K_MODEL, q->model, sizeof q->model, model);
    str(o, K_METHOD, q->method, sizeof q->method, "?");
    q->bits = (int)num(o, K_BITS, 0);
    q->bpw = num(o, K_BPW, -1);
    q->ppl = num(o, K_PPL, -1);
    q->kld = num(o, K_KLD, -1);
    const cJSON *pl = cJSON_GetObjectItemCaseSensitive(o, "per_layer");
    if (pl && !cJSON_IsArray(pl)) return fail(err, errn, "%s: \"per_layer\" of method %s is not a list", src, q->method);
    int n = cJSON_GetArraySize(pl);
    if (n > 0) {
        q->layers = calloc((size_t)n, sizeof *q->layers);
        if (!q->layers) return fail(err, errn, "%s: out of memory", src);
        for (int i = 0; i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(pl, i);
            static const char *const K_NAME[] = {"name", "layer", "tensor", NULL};
            static const char *const K_PROXY[] = {"proxy_loss", "proxy", "loss", NULL};
            char dflt[16];
            snprintf(dflt, sizeof dflt, "%d", i);
            str(e, K_NAME, q->layers[i].name, sizeof q->layers[i].name, dflt);
            q->layers[i].proxy_loss = num(e, K_PROXY, NAN);
        }
        q->n_layers = n;
    }
    return 0;
}

static int add_zs(rp_data *d, const cJSON *results, const char *src, const char *model, char *err, size_t errn) {
    void *np = grow(d->zs, d->n_zs, sizeof *d->zs);
    if (!np) return fail(err, errn, "%s: out of memory", src);
    d->zs = np;
    rp_zs *z = &d->zs[d->n_zs++];
    memset(z, 0, sizeof *z);
    snprintf(z->source, sizeof z->source, "%s", src);
    snprintf(z->model, sizeof z->model, "%s", model);
    const cJSON *t;
    cJSON_ArrayForEach(t, results) {
        if (!cJSON_IsObject(t) || !t->string) continue;
        if (z->n_tasks == RP_MAX_TASKS) break;
        static const char *const K_ACC[] = {"acc", "acc,none", NULL};
        static const char *const K_ACCSE[] = {"acc_stderr", "acc_stderr,none", NULL};
        static const char *const K_ACCN[] = {"acc_norm", "acc_norm,none", NULL};
        static const char *const K_ACCNSE[] = {"acc_norm_stderr", "acc_norm_stderr,none", NULL};
        static const char *const K_N[] = {"n", "samples", NULL};
        double acc = num(t, K_ACC, NAN);
        if (!isfinite(acc)) continue;
        int k = z->n_tasks++;
        snprintf(z->task[k], sizeof z->task[k], "%s", t->string);
        z->acc[k] = acc;
        z->acc_se[k] = num(t, K_ACCSE, NAN);
        z->accn[k] = num(t, K_ACCN, NAN);
        z->accn_se[k] = num(t, K_ACCNSE, NAN);
        z->n[k] = (int)num(t, K_N, 0);
    }
    if (z->n_tasks == 0) return fail(err, errn, "%s: \"results\" holds no task with an \"acc\" number", src);
    return 0;
}

static int add_object(rp_data *d, const cJSON *o, const char *src, char *err, size_t errn) {
    if (!cJSON_IsObject(o)) return fail(err, errn, "%s: expected a JSON object of results", src);
    char model[256], kind[32];
    str(o, K_MODEL, model, sizeof model, "");
    static const char *const K_KIND[] = {"kind", "type", NULL};
    str(o, K_KIND, kind, sizeof kind, "");
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(o, "results");
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(o, "methods");
    if (!rows) rows = cJSON_GetObjectItemCaseSensitive(o, "rows");
    if (!strcmp(kind, "zeroshot") || (cJSON_IsObject(results) && !rows)) {
        if (!cJSON_IsObject(results)) return fail(err, errn, "%s: zeroshot results lack a \"results\" object", src);
        return add_zs(d, results, src, model, err, errn);
    }
    if (!strcmp(kind, "quantize") || rows) {
        if (!cJSON_IsArray(rows)) {
            if (cJSON_GetObjectItemCaseSensitive(o, "per_layer")) return add_quant_row(d, o, src, model, err, errn);
            return fail(err, errn, "%s: quantize results lack a \"methods\" list", src);
        }
        const cJSON *r;
        cJSON_ArrayForEach(r, rows) {
            if (!cJSON_IsObject(r)) return fail(err, errn, "%s: a \"methods\" entry is not an object", src);
            if (add_quant_row(d, r, src, model, err, errn)) return -1;
        }
        return 0;
    }
    if (cJSON_GetObjectItemCaseSensitive(o, "per_layer")) return add_quant_row(d, o, src, model, err, errn);
    if (isfinite(num(o, K_PPL, NAN)))
        return add_ppl(d, o, src, model) ? fail(err, errn, "%s: out of memory", src) : 0;
    return fail(err, errn, "%s: no perplexity (\"ppl\"), zero-shot (\"results\") or quantize (\"methods\") results found", src);
}

int rp_read_file(const char *path, rp_data *d, char *err, size_t errn) {
    char *buf;
    size_t len;
    if (harp_read_file(path, &buf, &len) != HARP_OK) return fail(err, errn, "%s", harp_last_error());
    int rc = rp_read_buf(buf, len, path, d, err, errn);
    free(buf);
    return rc;
}

/* One JSON value spanning all of [p, p + n) but for white space, else NULL (a plain
 * cJSON_ParseWithLength would stop after the first value and drop the rest silently). */
static cJSON *parse_whole(const char *p, size_t n) {
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(p, n, &end, 0);
    while (v && end < p + n && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
    if (v && end != p + n) {
        cJSON_Delete(v);
        v = NULL;
    }
    return v;
}

int rp_read_buf(char *buf, size_t len, const char *path, rp_data *d, char *err, size_t errn) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int rc = 0;
    if (memchr(buf, 0, len)) return fail(err, errn, "%s: not a text file (holds a NUL byte)", path);
    cJSON *root = parse_whole(buf, len);
    if (root) {
        if (cJSON_IsArray(root)) {
            const cJSON *e;
            cJSON_ArrayForEach(e, root) if ((rc = add_object(d, e, base, err, errn)) != 0) break;
        } else {
            rc = add_object(d, root, base, err, errn);
        }
        cJSON_Delete(root);
    } else {
        /* one object per line */
        int line = 0, any = 0;
        for (char *p = buf, *nl; p && *p && rc == 0; p = nl ? nl + 1 : NULL) {
            nl = strchr(p, '\n');
            if (nl) *nl = 0;
            line++;
            const char *q = p;
            while (*q == ' ' || *q == '\t' || *q == '\r') q++;
            if (!*q) continue;
            cJSON *o = parse_whole(q, strlen(q));
            if (!o) {
                rc = fail(err, errn, "%s:%d: not valid JSON", path, line);
                break;
            }
            rc = add_object(d, o, base, err, errn);
            cJSON_Delete(o);
            any = 1;
        }
        if (rc == 0 && !any) rc = fail(err, errn, "%s: empty file", path);
    }
    return rc;
}

void rp_data_free(rp_data *d) {
    for (int i = 0; i < d->n_quant; i++) free(d->quant[i].layers);
    free(d->quant);
    free(d->ppl);
    free(d->zs);
    memset(d, 0, sizeof *d);
}
