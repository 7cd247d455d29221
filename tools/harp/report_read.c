/* Readers for the JSON results harp report turns into a page: `harp ppl --json`, `harp quantize
 * --json`, `harp zeroshot --json` (and lm-evaluation-harness's own "acc,none" keys), `harp bench
 * ... --json` (docs/cli/report.md). A file may hold one object, a list of objects, or one object
 * per line. Objects are told apart by "kind" (ppl, quantize, zeroshot), "bench", and for older
 * files by their keys; unknown keys are ignored. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harp/common.h"
#include "report.h"

/* Messages quote strings from the file: control characters become '?' so a message stays one line. */
static void one_line(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20) *s = '?';
}

/* The message in err: why an object is passed over (returns 0, no results added) or, followed by
 * return -1, why a file cannot be read. */
static int why(char *err, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    one_line(err);
    return 0;
}

static double num(const cJSON *o, const char *const *keys, double dflt) {
    for (; *keys; keys++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, *keys);
        if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) return v->valuedouble;
    }
    return dflt;
}

/* A count field (bits, ctx, n) as an int: a value out of int's range or not whole is treated as absent. */
static int num_int(const cJSON *o, const char *const *keys) {
    double v = num(o, keys, 0);
    return v >= -1e9 && v <= 1e9 && v == (double)(int)v ? (int)v : 0;
}

static const char *str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *const K_PPL[] = {"ppl", "perplexity", "ppl_mean", NULL};
static const char *const K_KLD[] = {"kld", "kld_mean", "kl_divergence", NULL};
static const char *const K_BPW[] = {"bpw", "bits_per_weight", NULL};
static const char *const K_BITS[] = {"bits", "wbits", NULL};
static const char *const K_CTX[] = {"ctx", "context", "seq_len", NULL};

/* Base name of a path, trailing slashes ignored ("q/ref-llama-quip2/" -> "ref-llama-quip2"). */
static void base_name(char *dst, size_t n, const char *path) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    size_t b = len;
    while (b > 0 && path[b - 1] != '/') b--;
    snprintf(dst, n, "%.*s", (int)(len - b), path + b);
}

/* Fills the id: label from model_key's path, method from "method" (+ "rotation") and "bits". */
static void id_fill(rp_id *id, const cJSON *o, const char *src, const char *model_key, const char *label_dflt) {
    memset(id, 0, sizeof *id);
    snprintf(id->source, sizeof id->source, "%s", src);
    const char *mp = str(o, model_key);
    if (!mp) mp = str(o, "model");
    if (mp) base_name(id->label, sizeof id->label, mp);
    else snprintf(id->label, sizeof id->label, "%s", label_dflt);
    const char *algo = str(o, "method"), *rot = str(o, "rotation");
    if (!algo) algo = str(o, "quant_method");
    id->bits = num_int(o, K_BITS);
    id->bpw = num(o, K_BPW, -1);
    if (!algo || !*algo) {
        snprintf(id->family, sizeof id->family, "FP");
        snprintf(id->method, sizeof id->method, "FP");
        return;
    }
    if (rot && *rot && strcmp(rot, "none")) snprintf(id->family, sizeof id->family, "%s+%s", algo, rot);
    else snprintf(id->family, sizeof id->family, "%s", algo);
    if (id->bits > 0) snprintf(id->method, sizeof id->method, "%s %d-bit", id->family, id->bits);
    else snprintf(id->method, sizeof id->method, "%s", id->family);
}

static void *grow(void *p, int n, size_t elem) {
    /* capacity doubles at powers of two */
    if (n & (n - 1)) return p;
    void *np = realloc(p, (size_t)(n ? 2 * n : 1) * elem);
    if (!np) {
        fprintf(stderr, "harp report: error: out of memory\n");
        exit(1);
    }
    return np;
}

static void add_ppl(rp_data *d, const rp_id *id, const cJSON *o, int from_quantize) {
    d->ppl = grow(d->ppl, d->n_ppl, sizeof *d->ppl);
    rp_ppl *r = &d->ppl[d->n_ppl++];
    memset(r, 0, sizeof *r);
    r->id = *id;
    const char *text = str(o, "text");
    if (!text) text = str(o, "dataset");
    if (text) base_name(r->text, sizeof r->text, text);
    r->ppl = num(o, K_PPL, NAN);
    r->kld = num(o, K_KLD, -1);
    r->ctx = num_int(o, K_CTX);
    r->from_quantize = from_quantize;
}

/* Per-linear proxy losses: "linears" (harp quantize) or "per_layer" (older schema). */
static void quant_layers(rp_quant *q, const cJSON *o) {
    const cJSON *pl = cJSON_GetObjectItemCaseSensitive(o, "linears");
    if (!cJSON_IsArray(pl)) pl = cJSON_GetObjectItemCaseSensitive(o, "per_layer");
    int n = cJSON_IsArray(pl) ? cJSON_GetArraySize(pl) : 0;
    if (n <= 0) return;
    q->layers = calloc((size_t)n, sizeof *q->layers);
    if (!q->layers) return;
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(pl, i);
        static const char *const K_PROXY[] = {"proxy_loss", "proxy", "loss", NULL};
        const char *name = str(e, "name");
        if (!name) name = str(e, "layer");
        if (name) snprintf(q->layers[i].name, sizeof q->layers[i].name, "%s", name);
        else snprintf(q->layers[i].name, sizeof q->layers[i].name, "%d", i);
        q->layers[i].proxy_loss = num(e, K_PROXY, NAN);
    }
    q->n_layers = n;
}

/* One quantized model; its perplexity (quantize --ppl, or the older schema's ppl/kld) too. */
static int add_quant(rp_data *d, const cJSON *o, const char *src, const char *model_dflt) {
    d->quant = grow(d->quant, d->n_quant, sizeof *d->quant);
    rp_quant *q = &d->quant[d->n_quant++];
    memset(q, 0, sizeof *q);
    id_fill(&q->id, o, src, "out", model_dflt);
    const char *model = str(o, "model");
    if (model && str(o, "out")) base_name(q->model, sizeof q->model, model);
    static const char *const K_CODES[] = {"bpw_codes", NULL}, *const K_PAPER[] = {"bpw_paper", NULL};
    static const char *const K_SEC[] = {"seconds", NULL};
    q->bpw_codes = num(o, K_CODES, -1);
    q->bpw_paper = num(o, K_PAPER, -1);
    q->seconds = num(o, K_SEC, -1);
    quant_layers(q, o);
    if (isfinite(num(o, K_PPL, NAN))) add_ppl(d, &q->id, o, 1);
    return 1;
}

static int add_zs(rp_data *d, const cJSON *o, const cJSON *results, const char *src) {
    d->zs = grow(d->zs, d->n_zs, sizeof *d->zs);
    rp_zs *z = &d->zs[d->n_zs];
    memset(z, 0, sizeof *z);
    id_fill(&z->id, o, src, "model", src);
    const cJSON *t;
    cJSON_ArrayForEach(t, results) {
        if (!cJSON_IsObject(t) || !t->string || z->n_tasks == RP_MAX_TASKS) continue;
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
        z->n[k] = num_int(t, K_N);
    }
    if (z->n_tasks == 0) return 0;
    d->n_zs++;
    return 1;
}

/* A bench line: its name, what it measured, and every other scalar as "key=value". */
static int add_bench(rp_data *d, const cJSON *o, const char *src) {
    d->bench = grow(d->bench, d->n_bench, sizeof *d->bench);
    rp_bench *b = &d->bench[d->n_bench++];
    memset(b, 0, sizeof *b);
    snprintf(b->source, sizeof b->source, "%s", src);
    snprintf(b->bench, sizeof b->bench, "%s", str(o, "bench") ? str(o, "bench") : "?");
    static const char *const what_keys[] = {"kind", "what", "target", "method", NULL};
    const char *what_key = NULL;
    for (const char *const *k = what_keys; *k && !what_key; k++)
        if (str(o, *k)) what_key = *k;
    if (what_key) snprintf(b->what, sizeof b->what, "%s", str(o, what_key));
    size_t len = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, o) {
        if (!e->string || !strcmp(e->string, "bench") || (what_key && !strcmp(e->string, what_key))) continue;
        char v[96];
        if (cJSON_IsNumber(e)) snprintf(v, sizeof v, "%.6g", e->valuedouble);
        else if (cJSON_IsString(e)) snprintf(v, sizeof v, "%s", e->valuestring);
        else if (cJSON_IsBool(e)) snprintf(v, sizeof v, "%s", cJSON_IsTrue(e) ? "true" : "false");
        else continue;
        if (len + strlen(e->string) + strlen(v) + 4 >= sizeof b->detail) break;
        len += (size_t)snprintf(b->detail + len, sizeof b->detail - len, "%s%s=%s", len ? ", " : "", e->string, v);
    }
    return 1;
}

/* Returns the results added (0: not a result this reader knows; the reason in err). */
static int add_object(rp_data *d, const cJSON *o, const char *src, char *err, size_t errn) {
    if (!cJSON_IsObject(o)) return why(err, errn, "not a JSON object");
    const char *kind = str(o, "kind");
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(o, "results");
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(o, "methods");
    if (!rows) rows = cJSON_GetObjectItemCaseSensitive(o, "rows");
    if ((kind && !strcmp(kind, "zeroshot")) || (cJSON_IsObject(results) && !rows)) {
        if (!cJSON_IsObject(results)) return why(err, errn, "zeroshot results lack a \"results\" object");
        int n = add_zs(d, o, results, src);
        if (!n) why(err, errn, "\"results\" holds no task with an \"acc\" number");
        return n;
    }
    if (cJSON_IsArray(rows)) {
        char model[256];
        base_name(model, sizeof model, str(o, "model") ? str(o, "model") : src);
        int n = 0;
        const cJSON *r;
        cJSON_ArrayForEach(r, rows) if (cJSON_IsObject(r)) n += add_quant(d, r, src, model);
        if (!n) why(err, errn, "its \"methods\" list holds no object");
        return n;
    }
    if ((kind && !strcmp(kind, "quantize")) || cJSON_GetObjectItemCaseSensitive(o, "linears") ||
        cJSON_GetObjectItemCaseSensitive(o, "per_layer"))
        return add_quant(d, o, src, src);
    if (str(o, "bench")) return add_bench(d, o, src);
    if ((kind && !strcmp(kind, "ppl")) || isfinite(num(o, K_PPL, NAN))) {
        rp_id id;
        id_fill(&id, o, src, "model", "");
        add_ppl(d, &id, o, 0);
        return 1;
    }
    if (kind) return why(err, errn, "a \"%s\" summary, nothing to report", kind);
    return why(err, errn, "not a ppl, quantize, zeroshot or bench result");
}

/* Adds every object of one parsed value (an object or a list of them). */
static int add_value(rp_data *d, const cJSON *v, const char *src, int *skipped, char *err, size_t errn) {
    if (!cJSON_IsArray(v)) return add_object(d, v, src, err, errn);
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        int k = add_object(d, e, src, err, errn);
        if (!k) (*skipped)++;
        n += k;
    }
    return n;
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

/* One object per line. */
static int read_lines(rp_data *d, char *buf, const char *src, int *skipped, char *err, size_t errn) {
    int line = 0, n = 0, objects = 0;
    for (char *p = buf, *nl; p && *p; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl) *nl = 0;
        line++;
        const char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (!*q) continue;
        cJSON *o = parse_whole(q, strlen(q));
        if (!o) {
            if (!*skipped) why(err, errn, "line %d is not valid JSON", line);
            (*skipped)++;
            continue;
        }
        objects++;
        int k = add_value(d, o, src, skipped, err, errn);
        if (!k && !cJSON_IsArray(o)) (*skipped)++;
        n += k;
        cJSON_Delete(o);
    }
    if (!objects && !*skipped) return why(err, errn, "empty file");
    if (!n) *skipped = 0;
    return n;
}

int rp_read_buf(char *buf, size_t len, const char *path, rp_data *d, int *skipped, char *err, size_t errn) {
    *skipped = 0;
    if (memchr(buf, 0, len)) {
        why(err, errn, "%s: not a text file (holds a NUL byte)", path);
        return -1;
    }
    char src[256];
    base_name(src, sizeof src, path);
    int n;
    cJSON *root = parse_whole(buf, len);
    if (root) {
        n = add_value(d, root, src, skipped, err, errn);
        if (!n) *skipped = 0;
        cJSON_Delete(root);
    } else {
        n = read_lines(d, buf, src, skipped, err, errn);
    }
    if (n == 0 && errn && !err[0]) why(err, errn, "holds no result objects");   /* e.g. an empty list */
    return n;
}

int rp_read_file(const char *path, rp_data *d, int *skipped, char *err, size_t errn) {
    char *buf;
    size_t len;
    *skipped = 0;
    if (harp_read_file(path, &buf, &len) != HARP_OK) {
        why(err, errn, "%s", harp_last_error());
        return -1;
    }
    int n = rp_read_buf(buf, len, path, d, skipped, err, errn);
    harp_free(buf);
    return n;
}

void rp_data_free(rp_data *d) {
    for (int i = 0; i < d->n_quant; i++) free(d->quant[i].layers);
    free(d->quant);
    free(d->ppl);
    free(d->zs);
    free(d->bench);
    memset(d, 0, sizeof *d);
}
