/* Hostile inputs (issue 16): each case builds one bad file (or folder) from a tiny synthetic model,
 * runs the harp CLI on it in a child process and requires a clean refusal: exit status 1, not a
 * signal, exactly one line on stderr naming the file and the problem, and a peak RSS within the
 * case's bound (64 MB for every header / config / small-file case). One ctest per case
 * (tests/reliability.cmake reads the case list below):
 *
 *     rel_hostile CASE        run one case (under $HARP_TMP/hostile/CASE)
 *     rel_hostile --list      print the case names
 *
 * Every case prints "ok CASE: <the message> [peak RSS x MB]"; docs/results/reliability.md quotes them. */
#include "rel_fixture.h"

#include <bzlib.h>
#include <math.h>

#include "core/core.h"

#define HOSTILE_CASES(X)                                                                                                   \
    X(st_len_huge) X(st_len_implausible) X(st_offsets_past_eof) X(st_offsets_overlap) X(st_shape_huge)                      \
    X(st_shape_negative) X(st_shape_9dims) X(st_span_mismatch) X(st_duplicate_name) X(st_not_json) X(st_dense_header)       \
    X(st_fat_header) X(st_index_truncated) X(tok_spm_empty) X(tok_json_truncated)                                            \
    X(st_empty) X(st_truncated) X(cfg_vocab_2_31) X(cfg_layers_1e6) X(cfg_head_dim_0) X(cfg_negative) X(cfg_empty)          \
    X(cfg_truncated) X(cfg_huge_file) X(cfg_vs_tensors) X(w_nan) X(w_inf) X(tok_empty) X(tok_truncated) X(l2c_empty)        \
    X(l2c_truncated) X(hess_nan) X(hess_not_spd) X(hess_empty) X(hess_truncated) X(hess_other_layer) X(text_empty)           \
    X(zs_empty) X(zs_truncated) X(zs_bz2_truncated) X(zs_bz2_bomb) X(zs_piqa_labels_short) X(report_empty)                  \
    X(report_truncated) X(q_truncated) X(q_bits_mismatch) X(q_method_mismatch) X(q_codes_shape) X(q_version)                 \
    X(q_rot_blob) X(q_missing_plane) X(fs_loop_model) X(fs_loop_config) X(fs_loop_out) X(fs_unreadable_dir)                  \
    X(fs_unwritable_out)

static char g_dir[2048];   /* this case's folder */
static double g_rss_limit = 64.0;

static const char *P(const char *name) { return rf_path(g_dir, name); }

/* Runs harp with the given arguments and checks the refusal; want[] are substrings of the line. */
static int expect_v(const char *name, int as_nobody, const char *const *want, const char *const *argv) {
    rf_result r;
    rf_run(&r, as_nobody, argv);
    int ok = r.exited && r.code == 1 && r.err_lines == 1;
    for (int i = 0; want[i]; i++) ok = ok && strstr(r.err, want[i]);
    double limit = g_rss_limit;
#if defined(__SANITIZE_ADDRESS__)
    limit *= 4;   /* ASan's shadow memory and quarantine: the 64 MB bound is checked on the release build */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    limit *= 4;
#endif
#endif
    int rss_ok = r.peak_rss_mb <= limit;
    char line[8192];
    snprintf(line, sizeof line, "%s", r.err);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n') line[--n] = 0;
    if (ok && rss_ok) {
        printf("ok   %s: %s [peak RSS %.1f MB]\n", name, line, r.peak_rss_mb);
        return 0;
    }
    printf("FAIL %s: exit %d%s, %d stderr line(s), peak RSS %.1f MB (limit %.0f); want", name, r.code,
           r.signal ? " (signal)" : "", r.err_lines, r.peak_rss_mb, limit);
    for (int i = 0; want[i]; i++) printf(" '%s'", want[i]);
    printf("; stderr:\n%s\n", r.err);
    return 1;
}
#define WANT(...) ((const char *const[]){__VA_ARGS__, NULL})
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define EXPECT(want, ...) expect_v(g_case, 0, want, ARGS(__VA_ARGS__))
static const char *g_case;

/* ---- building blocks --------------------------------------------------------------------------- */

static char *replace(const char *s, const char *old, const char *new_) {
    const char *at = strstr(s, old);
    if (!at) rf_die("'%s' not found in fixture", old);
    size_t a = (size_t)(at - s), b = strlen(old), c = strlen(new_), n = strlen(s);
    char *o = malloc(n - b + c + 1);
    memcpy(o, s, a);
    memcpy(o + a, new_, c);
    memcpy(o + a + c, at + b, n - a - b + 1);
    return o;
}

/* The tiny model folder with model.safetensors rewritten from the fixture header edited by
 * old -> new (and the data cut to data_len when >= 0). */
static const char *tiny_with_header(const char *old, const char *new_, long data_len) {
    const char *m = P("model");
    rf_tiny_model(m, -1);
    static char hdr[1 << 16];
    uint8_t *data;
    size_t n = rf_tiny_st(hdr, sizeof hdr, &data, -1);
    char *h = old ? replace(hdr, old, new_) : strdup(hdr);
    rf_write_st(rf_path(m, "model.safetensors"), h, data, data_len >= 0 ? (size_t)data_len : n, 0);
    free(h);
    free(data);
    return m;
}

static const char *tiny_with_config(const char *old, const char *new_) {
    const char *m = P("model");
    rf_tiny_model(m, -1);
    char *c = replace(rf_tiny_config(), old, new_);
    rf_write(rf_path(m, "config.json"), c, strlen(c));
    free(c);
    return m;
}

static const char *shared_file(const char *rel) {
    static char p[1024];
    const char *sh = getenv("HARP_SHARED");
    snprintf(p, sizeof p, "%s/%s", sh ? sh : "../shared", rel);
    if (access(p, R_OK) != 0) {
        printf("SKIP: %s missing\n", p);
        exit(77);
    }
    return p;
}

static void run_ok(const char *const *argv) {
    rf_result r;
    rf_run(&r, 0, argv);
    if (!r.exited || r.code != 0) rf_die("setup command %s failed: %s", argv[0], r.err);
}

/* Calibration text (20 kB of TinyStories) and the tiny model's Hessians in DIR/hess. */
static void tiny_hessians(void) {
    size_t n;
    char *t = rf_read(shared_file("data/tinystories/val_head.txt"), &n);
    rf_write(P("cal.txt"), t, n > 20000 ? 20000 : n);
    free(t);
    rf_tiny_model(P("model"), -1);
    run_ok(ARGS("calib", "-m", P("model"), "-f", P("cal.txt"), "--ctx", "32", "--nseq", "8", "-o", P("hess"), "-q"));
}

/* A quantized folder DIR/q of the tiny model. */
static void tiny_quantized(const char *method, const char *bits) {
    tiny_hessians();
    run_ok(ARGS("quantize", "-m", P("model"), "--hessians", P("hess"), "-o", P("q"), "--method", method, "--bits", bits, "-q"));
}

/* Rewrites a Hessian file's checksum after an edit (so the edit, not the checksum, is what the
 * reader meets). */
static void hess_fix_checksum(uint8_t *b, size_t n) {
    uint64_t h = harp_fnv1a64(b, n - 8, 0);
    memcpy(b + n - 8, &h, 8);
}

/* ---- safetensors ------------------------------------------------------------------------------ */

static int st_len_huge(void) {
    const char *m = P("model");
    rf_tiny_model(m, -1);
    rf_write_st(rf_path(m, "model.safetensors"), "{}", "0123456789", 10, 0x7fffffffffffffffull);
    return EXPECT(WANT(rf_path(m, "model.safetensors"), "header length"), "info", "-m", m);
}

static int st_len_implausible(void) {
    /* a 300 MB sparse file whose header claims 200 MB: refused before a byte of it is parsed */
    const char *m = P("model");
    rf_tiny_model(m, -1);
    const char *p = rf_path(m, "model.safetensors");
    rf_write_st(p, "{", NULL, 0, 200ull << 20);
    if (truncate(p, 300l << 20) != 0) rf_die("truncate %s", p);
    return EXPECT(WANT(p, "header length"), "info", "-m", m);
}

static int st_offsets_past_eof(void) {
    const char *m = tiny_with_header("\"data_offsets\":[0,16384]", "\"data_offsets\":[0,1099511627776]", -1);
    return EXPECT(WANT(rf_path(m, "model.safetensors"), "model.embed_tokens.weight", "past end of file"), "info", "-m", m);
}

static int st_offsets_overlap(void) {
    /* the first layer's attention norm claims the embedding's first 32 bytes */
    const char *m = tiny_with_header("\"shape\":[16],\"data_offsets\":[16384,16416]", "\"shape\":[16],\"data_offsets\":[0,32]", -1);
    return EXPECT(WANT(rf_path(m, "model.safetensors"), "overlap"), "info", "-m", m);
}

static int st_shape_huge(void) {
    const char *m = tiny_with_header("\"shape\":[512,16]", "\"shape\":[1099511627776,1099511627776]", -1);
    return EXPECT(WANT(rf_path(m, "model.safetensors"), "model.embed_tokens.weight", "shape"), "info", "-m", m);
}

static int st_shape_negative(void) {
    const char *m = tiny_with_header("\"shape\":[512,16]", "\"shape\":[-512,-16]", -1);
    return EXPECT(WANT(rf_path(m, "model.safetensors"), "model.embed_tokens.weight", "shape"), "info", "-m", m);
}

static int st_shape_9dims(void) {
    const char *m = tiny_with_header("\"shape\":[512,16]", "\"shape\":[512,16,1,1,1,1,1,1,1]", -1);
    return EXPECT(WANT(rf_path(m, "model.safetensors"), "model.embed_tokens.weight", "dimensions"), "info", "-m", m);
}

static int st_span_mismatch(void) {
    const char *m = tiny_with_header("\"shape\":[512,16]", "\"shape\":[512,8]", -1);
    return EXPECT(WANT(rf_path(m, "model.safetensors"), "model.embed_tokens.weight", "needs"), "info", "-m", m);
}

static int st_duplicate_name(void) {
    const char *m = tiny_with_header("\"model.norm.weight\"", "\"model.embed_tokens.weight\"", -1);
    return EXPECT(WANT(rf_path(m, "model.safetensors"), "model.embed_tokens.weight", "more than once"), "info", "-m", m);
}

static int st_not_json(void) {
    const char *m = P("model");
    rf_tiny_model(m, -1);
    rf_write_st(rf_path(m, "model.safetensors"), "{\"a\": [1, 2, oops", NULL, 0, 0);
    return EXPECT(WANT(rf_path(m, "model.safetensors"), "not valid JSON"), "info", "-m", m);
}

static int st_dense_header(void) {
    /* a header just under the length limit filled with the densest JSON there is (one value per
     * two bytes, ~4 million values): refused by the value count before a parse tree is built */
    const char *m = P("model");
    rf_tiny_model(m, -1);
    size_t n = ((size_t)8 << 20) - 16;
    char *h = malloc(n + 1);
    memcpy(h, "{\"a\":[", 6);
    size_t o = 6;
    while (o + 4 < n) h[o++] = '0', h[o++] = ',';
    memcpy(h + o, "0]}", 4);
    rf_write_st(rf_path(m, "model.safetensors"), h, NULL, 0, 0);
    free(h);
    return EXPECT(WANT(rf_path(m, "model.safetensors"), "JSON values"), "info", "-m", m);
}

static int st_fat_header(void) {
    /* the costliest header that passes both limits: 8 MB of __metadata__ strings in ~65k entries
     * (the value limit), all parsed; the tensors it lacks are then reported */
    const char *m = P("model");
    rf_tiny_model(m, -1);
    size_t n = ((size_t)8 << 20) - 64, o = 0;
    char *h = malloc(n + 256);
    o += (size_t)sprintf(h + o, "{\"__metadata__\":{");
    int entries = (1 << 16) - 64;
    size_t val = (n - 64) / (size_t)entries - 14;
    for (int i = 0; i < entries; i++) {
        o += (size_t)sprintf(h + o, "%s\"k%05d\":\"", i ? "," : "", i);
        memset(h + o, 'x', val);
        o += val;
        h[o++] = '"';
    }
    o += (size_t)sprintf(h + o, "}}");
    rf_write_st(rf_path(m, "model.safetensors"), h, NULL, 0, 0);
    free(h);
    return EXPECT(WANT(rf_path(m, "model.safetensors"), "missing tensor 'model.embed_tokens.weight'"), "info", "-m", m);
}

static int st_index_truncated(void) {
    /* a sharded folder whose index is cut in half */
    const char *m = P("model");
    rf_tiny_model(m, -1);
    rename(rf_path(m, "model.safetensors"), rf_path(m, "model-00001-of-00001.safetensors"));
    const char *idx = "{\"metadata\": {}, \"weight_map\": {\"model.embed_tokens.weight\": \"model-00001-of-00001.safetensors\"}}";
    rf_write(rf_path(m, "model.safetensors.index.json"), idx, strlen(idx) / 2);
    return EXPECT(WANT(rf_path(m, "model.safetensors.index.json"), "not valid JSON"), "info", "-m", m);
}

static int st_empty(void) {
    const char *m = P("model");
    rf_tiny_model(m, -1);
    rf_write(rf_path(m, "model.safetensors"), "", 0);
    return EXPECT(WANT(rf_path(m, "model.safetensors"), "truncated"), "info", "-m", m);
}

static int st_truncated(void) {
    const char *m = tiny_with_header(NULL, NULL, 20000);
    return EXPECT(WANT(rf_path(m, "model.safetensors"), "past end of file"), "info", "-m", m);
}

/* ---- config.json ------------------------------------------------------------------------------ */

static int cfg_vocab_2_31(void) {
    const char *m = tiny_with_config("\"vocab_size\": 512", "\"vocab_size\": 2147483648");
    return EXPECT(WANT(rf_path(m, "config.json"), "vocab_size"), "info", "-m", m);
}

static int cfg_layers_1e6(void) {
    const char *m = tiny_with_config("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1000000");
    return EXPECT(WANT(rf_path(m, "config.json"), "num_hidden_layers"), "info", "-m", m);
}

static int cfg_head_dim_0(void) {
    const char *m = tiny_with_config("\"head_dim\": 8", "\"head_dim\": 0");
    return EXPECT(WANT(rf_path(m, "config.json"), "head_dim"), "info", "-m", m);
}

static int cfg_negative(void) {
    const char *m = tiny_with_config("\"hidden_size\": 16", "\"hidden_size\": -16");
    return EXPECT(WANT(rf_path(m, "config.json"), "hidden_size"), "info", "-m", m);
}

static int cfg_empty(void) {
    const char *m = P("model");
    rf_tiny_model(m, -1);
    rf_write(rf_path(m, "config.json"), "", 0);
    return EXPECT(WANT(rf_path(m, "config.json"), "empty"), "info", "-m", m);
}

static int cfg_truncated(void) {
    const char *m = P("model");
    rf_tiny_model(m, -1);
    rf_write(rf_path(m, "config.json"), rf_tiny_config(), 100);
    return EXPECT(WANT(rf_path(m, "config.json"), "not valid JSON"), "info", "-m", m);
}

static int cfg_huge_file(void) {
    /* a 2 GB (sparse) config.json is refused by its size, not read into memory */
    const char *m = P("model");
    rf_tiny_model(m, -1);
    const char *p = rf_path(m, "config.json");
    if (truncate(p, 2l << 30) != 0) rf_die("truncate %s", p);
    return EXPECT(WANT(p, "too large"), "info", "-m", m);
}

static int cfg_vs_tensors(void) {
    const char *m = tiny_with_config("\"intermediate_size\": 32", "\"intermediate_size\": 48");
    return EXPECT(WANT(rf_path(m, "model.safetensors"), "mlp.gate_proj.weight", "expected [48, 16]"), "info", "-m", m);
}

/* ---- weights ---------------------------------------------------------------------------------- */

static int w_nan(void) {
    const char *m = P("model");
    rf_tiny_model(m, 37);
    return EXPECT(WANT(rf_path(m, "model.safetensors"), "model.layers.0.self_attn.q_proj.weight", "non-finite"), "info", "-m", m);
}

static int w_inf(void) {
    const char *m = P("model");
    rf_tiny_model(m, -1);
    size_t n;
    char *b = rf_read(rf_path(m, "model.safetensors"), &n);
    uint64_t hl;
    memcpy(&hl, b, 8);
    uint16_t inf = 0x7c00;   /* +Inf in the first element of the embedding */
    memcpy(b + 8 + hl, &inf, 2);
    rf_write(rf_path(m, "model.safetensors"), b, n);
    free(b);
    return EXPECT(WANT(rf_path(m, "model.safetensors"), "model.embed_tokens.weight", "non-finite"), "info", "-m", m);
}

/* ---- tokenizer, llama2.c, text ------------------------------------------------------------------ */

static int tok_empty(void) {
    const char *m = P("model");
    rf_tiny_model(m, -1);
    rf_write(rf_path(m, "tokenizer.bin"), "", 0);
    return EXPECT(WANT(rf_path(m, "tokenizer.bin")), "info", "-m", m);
}

static int tok_truncated(void) {
    const char *m = P("model");
    rf_tiny_model(m, -1);
    size_t n;
    char *b = rf_read(rf_path(m, "tokenizer.bin"), &n);
    rf_write(rf_path(m, "tokenizer.bin"), b, n / 2);
    free(b);
    return EXPECT(WANT(rf_path(m, "tokenizer.bin")), "info", "-m", m);
}

static int tok_spm_empty(void) {
    const char *m = P("model");
    rf_tiny_model(m, -1);
    rf_write(rf_path(m, "tokenizer.model"), "", 0);
    return EXPECT(WANT(rf_path(m, "tokenizer.model")), "info", "-m", m);
}

static int tok_json_truncated(void) {
    const char *m = P("model");
    rf_tiny_model(m, -1);
    unlink(rf_path(m, "tokenizer.bin"));
    size_t n;
    char *b = rf_read(shared_file("models/ref-llama/tokenizer.json"), &n);
    rf_write(rf_path(m, "tokenizer.json"), b, n / 2);
    free(b);
    return EXPECT(WANT(rf_path(m, "tokenizer.json")), "info", "-m", m);
}

static int l2c_empty(void) {
    rf_mkdir(P("l2c"));
    rf_write(P("l2c/model.bin"), "", 0);
    return EXPECT(WANT(P("l2c/model.bin"), "truncated"), "info", "-m", P("l2c/model.bin"));
}

static int l2c_truncated(void) {
    rf_mkdir(P("l2c"));
    size_t n;
    char *b = rf_read(shared_file("models/stories260K/stories260K.bin"), &n);
    rf_write(P("l2c/model.bin"), b, n - 1000);
    free(b);
    g_rss_limit = 64;
    return EXPECT(WANT(P("l2c/model.bin"), "implies"), "info", "-m", P("l2c/model.bin"));
}

static int text_empty(void) {
    rf_tiny_model(P("model"), -1);
    rf_write(P("empty.txt"), "", 0);
    return EXPECT(WANT(P("empty.txt"), "empty"), "calib", "-m", P("model"), "-f", P("empty.txt"), "-o", P("hess"));
}

/* ---- Hessians --------------------------------------------------------------------------------- */

static int quantize_tiny_expect(const char *const *want) {
    return EXPECT(want, "quantize", "-m", P("model"), "--hessians", P("hess"), "-o", P("q"), "--method", "quip", "--bits", "2", "-q");
}

static int hess_nan(void) {
    tiny_hessians();
    const char *p = P("hess/layer_000.hess");
    size_t n;
    uint8_t *b = (uint8_t *)rf_read(p, &n);
    double nan = NAN;
    memcpy(b + n - 8 - 8, &nan, 8);   /* the last S entry of the last statistic */
    hess_fix_checksum(b, n);
    rf_write(p, b, n);
    free(b);
    return quantize_tiny_expect(WANT(p, "non-finite"));
}

static int hess_not_spd(void) {
    /* every S entry negated (checksum kept valid): H = -S/n is negative definite */
    tiny_hessians();
    const char *p = P("hess/layer_000.hess");
    size_t n;
    uint8_t *b = (uint8_t *)rf_read(p, &n);
    size_t q = 8 + 4 + 128;
    for (int w = 0; w < 4; w++) {
        uint64_t k;
        memcpy(&k, b + q, 8);
        q += 16 + 8 * k;
        for (uint64_t i = 0; i < k * (k + 1) / 2; i++, q += 8) {
            double v;
            memcpy(&v, b + q, 8);
            v = -v;
            memcpy(b + q, &v, 8);
        }
    }
    hess_fix_checksum(b, n);
    rf_write(p, b, n);
    free(b);
    return quantize_tiny_expect(WANT(p, "not positive semi-definite"));
}

static int hess_empty(void) {
    tiny_hessians();
    rf_write(P("hess/layer_001.hess"), "", 0);
    return quantize_tiny_expect(WANT(P("hess/layer_001.hess"), "truncated"));
}

static int hess_truncated(void) {
    tiny_hessians();
    size_t n;
    char *b = rf_read(P("hess/layer_000.hess"), &n);
    rf_write(P("hess/layer_000.hess"), b, n / 2);
    free(b);
    return quantize_tiny_expect(WANT(P("hess/layer_000.hess"), "checksum"));
}

static int hess_other_layer(void) {
    tiny_hessians();
    rf_copy(P("hess/layer_000.hess"), P("hess/layer_001.hess"));
    return quantize_tiny_expect(WANT(P("hess/layer_001.hess"), "holds layer 0"));
}

/* ---- zero-shot data, report files -------------------------------------------------------------- */

static int zeroshot_expect(const char *task, const char *const *want) {
    return EXPECT(want, "zeroshot", "-m", P("model"), "--data-dir", P("zs"), "--tasks", task, "--limit", "2", "-q");
}

static int zs_empty(void) {
    rf_tiny_model(P("model"), -1);
    rf_mkdir(P("zs"));
    rf_write(P("zs/ARC-Easy-test.jsonl"), "", 0);
    return zeroshot_expect("arc_easy", WANT(P("zs/ARC-Easy-test.jsonl"), "no items"));
}

static int zs_truncated(void) {
    rf_tiny_model(P("model"), -1);
    rf_mkdir(P("zs"));
    size_t n;
    char *b = rf_read(shared_file("data/zeroshot/ARC-Easy-test.jsonl"), &n);
    char *nl = strchr(b, '\n');
    rf_write(P("zs/ARC-Easy-test.jsonl"), b, (size_t)(nl - b) / 2);
    free(b);
    return zeroshot_expect("arc_easy", WANT(P("zs/ARC-Easy-test.jsonl:1"), "not a JSON object"));
}

static int zs_bz2_truncated(void) {
    rf_tiny_model(P("model"), -1);
    rf_mkdir(P("zs"));
    size_t n;
    char *b = rf_read(shared_file("data/zeroshot/hellaswag_val_full.txt.bz2"), &n);
    rf_write(P("zs/hellaswag_val_full.txt.bz2"), b, 5000);
    free(b);
    return zeroshot_expect("hellaswag", WANT(P("zs/hellaswag_val_full.txt.bz2"), "truncated"));
}

static int zs_bz2_bomb(void) {
    /* 128 MB of zeros in a ~100 B bzip2 stream: the decompressor must stop at its limit (64 MB) */
    rf_tiny_model(P("model"), -1);
    rf_mkdir(P("zs"));
    size_t cap = 1 << 20, n = 0;
    char *out = malloc(cap);
    static char zeros[1 << 20];
    bz_stream s;
    memset(&s, 0, sizeof s);
    if (BZ2_bzCompressInit(&s, 9, 0, 0) != BZ_OK) rf_die("bzip2");
    for (int i = 0; i < 128; i++) {
        s.next_in = zeros;
        s.avail_in = sizeof zeros;
        while (s.avail_in) {
            s.next_out = out + n;
            s.avail_out = (unsigned)(cap - n);
            BZ2_bzCompress(&s, BZ_RUN);
            n = cap - s.avail_out;
            if (n == cap) rf_die("bomb does not fit");
        }
    }
    int rc;
    do {
        s.next_out = out + n;
        s.avail_out = (unsigned)(cap - n);
        rc = BZ2_bzCompress(&s, BZ_FINISH);
        n = cap - s.avail_out;
    } while (rc == BZ_FINISH_OK);
    BZ2_bzCompressEnd(&s);
    rf_write(P("zs/hellaswag_val_full.txt.bz2"), out, n);
    free(out);
    g_rss_limit = 96;   /* bounded by the decompression limit (64 MB), not by the stream's claim */
    return zeroshot_expect("hellaswag", WANT(P("zs/hellaswag_val_full.txt.bz2"), "limit"));
}

static int zs_piqa_labels_short(void) {
    rf_tiny_model(P("model"), -1);
    rf_mkdir(P("zs"));
    size_t n;
    char *b = rf_read(shared_file("data/zeroshot/piqa-valid.jsonl"), &n);
    rf_write(P("zs/piqa-valid.jsonl"), b, n);
    free(b);
    rf_write(P("zs/piqa-valid-labels.lst"), "0\n", 2);
    return zeroshot_expect("piqa", WANT(P("zs/piqa-valid.jsonl"), "labels"));
}

static int report_empty(void) {
    rf_write(P("r.json"), "", 0);
    return EXPECT(WANT(P("r.json"), "empty"), "report", P("r.json"), "-o", P("r.html"));
}

/* A results file cut inside its only object. (A file cut after some complete objects keeps them and
 * warns about the rest, one line naming the file: tests/cli/report.sh, warns_truncated.) */
static int report_truncated(void) {
    const char *j = "{\"model\": \"m\", \"ppl\": 12.5, \"bp";
    rf_write(P("r.json"), j, strlen(j));
    return EXPECT(WANT(P("r.json"), "not valid JSON"), "report", P("r.json"), "-o", P("r.html"));
}

/* ---- quantized folders --------------------------------------------------------------------------- */

static void q_edit_config(const char *old, const char *new_) {
    size_t n;
    char *c = rf_read(P("q/config.json"), &n);
    char *e = replace(c, old, new_);
    rf_write(P("q/config.json"), e, strlen(e));
    free(c);
    free(e);
}

/* Edits the quantized model.safetensors header in place (same length: spaces pad). */
static void q_edit_header(const char *old, const char *new_) {
    size_t n;
    char *b = rf_read(P("q/model.safetensors"), &n);
    uint64_t hl;
    memcpy(&hl, b, 8);
    char *h = malloc(hl + 1);
    memcpy(h, b + 8, hl);
    h[hl] = 0;
    char *e = replace(h, old, new_);
    size_t el = strlen(e);
    if (el > hl) rf_die("header edit grows the header");
    memset(b + 8, ' ', hl);
    memcpy(b + 8, e, el);
    rf_write(P("q/model.safetensors"), b, n);
    free(b);
    free(h);
    free(e);
}

static int q_info_expect(const char *const *want) { return EXPECT(want, "info", "-m", P("q")); }

static int q_truncated(void) {
    tiny_quantized("quip", "2");
    size_t n;
    char *b = rf_read(P("q/model.safetensors"), &n);
    rf_write(P("q/model.safetensors"), b, n - 100);
    free(b);
    return q_info_expect(WANT(P("q/model.safetensors"), "past end of file"));
}

static int q_bits_mismatch(void) {
    tiny_quantized("quip", "2");
    q_edit_config("\"bits\":\t2", "\"bits\":\t4");
    q_edit_config("\"e8p12\"", "\"e8p12_rvq4b\"");
    return q_info_expect(WANT(P("q/model.safetensors"), "codes2"));
}

static int q_method_mismatch(void) {
    tiny_quantized("quip", "2");
    q_edit_config("\"method\":\t\"quip\"", "\"method\":\t\"rtn\"");
    q_edit_config("\"e8p12\"", "\"scalar\"");
    return q_info_expect(WANT(P("q/model.safetensors"), "qweight"));
}

static int q_codes_shape(void) {
    tiny_quantized("quip", "2");
    q_edit_header("\"model.layers.0.self_attn.qkv_proj.codes\":{\"dtype\":\"U16\",\"shape\":[32,2]",
                  "\"model.layers.0.self_attn.qkv_proj.codes\":{\"dtype\":\"U16\",\"shape\":[2,32]");
    return q_info_expect(WANT(P("q/model.safetensors"), "model.layers.0.self_attn.qkv_proj.codes"));
}

static int q_version(void) {
    tiny_quantized("rtn", "2");
    q_edit_config("\"version\":\t1", "\"version\":\t99");
    return q_info_expect(WANT(P("q/config.json"), "version 99"));
}

static int q_rot_blob(void) {
    tiny_quantized("quip", "2");
    size_t n;
    char *b = rf_read(P("q/model.safetensors"), &n);
    uint64_t hl;
    memcpy(&hl, b, 8);
    b[8 + hl] = 0;   /* keep the header a C string */
    char *at = strstr(b + 8, "\"model.layers.0.self_attn.qkv_proj.rot_in\"");
    if (!at) rf_die("no rot_in tensor");
    unsigned long lo = 0;
    if (sscanf(strstr(at, "data_offsets") + 15, "%lu", &lo) != 1) rf_die("no offsets");
    free(b);
    b = rf_read(P("q/model.safetensors"), &n);
    memset(b + 8 + hl + lo, 0xff, 8);   /* the blob's magic and version */
    rf_write(P("q/model.safetensors"), b, n);
    free(b);
    return q_info_expect(WANT(P("q/model.safetensors"), "rot_in"));
}

static int q_missing_plane(void) {
    tiny_quantized("rtn", "2");
    q_edit_header("\"model.layers.1.mlp.down_proj.scales\"", "\"model.layers.1.mlp.down_proj.scalez\"");
    return q_info_expect(WANT(P("q/model.safetensors"), "model.layers.1.mlp.down_proj.scales"));
}

/* ---- filesystem ------------------------------------------------------------------------------- */

static int fs_loop_model(void) {
    unlink(P("loop_a"));
    unlink(P("loop_b"));
    if (symlink("loop_b", P("loop_a")) != 0 || symlink("loop_a", P("loop_b")) != 0) rf_die("symlink");
    return EXPECT(WANT(P("loop_a"), "symbolic links"), "info", "-m", P("loop_a"));
}

static int fs_loop_config(void) {
    const char *m = P("model");
    rf_tiny_model(m, -1);
    unlink(rf_path(m, "config.json"));
    if (symlink("config.json", rf_path(m, "config.json")) != 0) rf_die("symlink");
    return EXPECT(WANT(rf_path(m, "config.json"), "symbolic links"), "info", "-m", m);
}

static int fs_loop_out(void) {
    tiny_hessians();
    unlink(P("out"));
    if (symlink("out", P("out")) != 0) rf_die("symlink");
    return EXPECT(WANT(P("out"), "symbolic links"), "calib", "-m", P("model"), "-f", P("cal.txt"), "--ctx", "32", "--nseq", "2", "-o",
                  P("out"), "-q");
}

/* Permission cases run the CLI as user nobody when the test runs as root (root ignores modes). */
static int can_drop_root(void) {
    if (geteuid() != 0) return 1;
    rf_result r;
    rf_run(&r, 1, ARGS("--version"));
    return r.exited && r.code == 0;
}

static int fs_unreadable_dir(void) {
    const char *m = P("model");
    rf_tiny_model(m, -1);
    chmod(g_dir, 0755);
    chmod(m, 0);
    if (!can_drop_root()) {
        printf("SKIP: cannot run the CLI as an unprivileged user here\n");
        return 77;
    }
    int rc = expect_v(g_case, 1, WANT(rf_path(m, "config.json"), "Permission denied"), ARGS("info", "-m", m));
    chmod(m, 0755);
    return rc;
}

static int fs_unwritable_out(void) {
    tiny_hessians();
    rf_mkdir(P("ro"));
    chmod(g_dir, 0755);
    chmod(P("model"), 0755);
    chmod(P("cal.txt"), 0644);
    chmod(P("ro"), 0555);
    if (!can_drop_root()) {
        printf("SKIP: cannot run the CLI as an unprivileged user here\n");
        return 77;
    }
    return expect_v(g_case, 1, WANT(P("ro/hess"), "Permission denied"),
                    ARGS("calib", "-m", P("model"), "-f", P("cal.txt"), "--ctx", "32", "--nseq", "2", "-o", P("ro/hess"), "-q"));
}

/* ---- driver ----------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int (*fn)(void);
} hostile_case;
#define HOSTILE_ROW(n) {#n, n},
static const hostile_case g_cases[] = {HOSTILE_CASES(HOSTILE_ROW)};

static void rm_rf(const char *p) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", p, p);
    if (system(cmd) != 0) rf_die("cannot clear %s", p);
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--list")) {
        for (size_t i = 0; i < sizeof g_cases / sizeof g_cases[0]; i++) printf("%s\n", g_cases[i].name);
        return 0;
    }
    if (argc != 2) rf_die("usage: rel_hostile CASE | --list");
    for (size_t i = 0; i < sizeof g_cases / sizeof g_cases[0]; i++) {
        if (strcmp(argv[1], g_cases[i].name)) continue;
        const char *tmp = getenv("HARP_TMP");
        const char *base = rf_path(tmp ? tmp : "/tmp", "hostile");
        rf_mkdir(base);
        snprintf(g_dir, sizeof g_dir, "%s", rf_path(base, argv[1]));
        rm_rf(g_dir);
        rf_mkdir(g_dir);
        g_case = g_cases[i].name;
        int rc = g_cases[i].fn();
        if (rc == 0) rm_rf(g_dir);
        return rc;
    }
    rf_die("unknown case '%s' (rel_hostile --list)", argv[1]);
    return 2;
}
