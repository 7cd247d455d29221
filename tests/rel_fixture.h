/* Fixtures for the reliability tests (tests/rel_hostile.c, tests/rel_check.c): a tiny synthetic Llama
 * folder written from code (dim 16, 2 layers, vocab 512 with stories260K's tok512.bin as tokenizer),
 * safetensors files with a caller-written header, and running the harp CLI in a child process
 * with its stderr captured and its peak RSS measured. */
#ifndef HARP_REL_FIXTURE_H
#define HARP_REL_FIXTURE_H
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { TINY_DIM = 16, TINY_HID = 32, TINY_LAYERS = 2, TINY_HEADS = 2, TINY_KV = 1, TINY_HD = 8, TINY_VOCAB = 512 };

static void rf_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fixture: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* dir/name in a ring of static buffers (dir may itself come from the ring). */
static char *rf_path(const char *dir, const char *name) {
    static char ring[32][2048];
    static int k;
    char *p = ring[k++ & 31];
    size_t a = strlen(dir), b = strlen(name);
    if (a + b + 2 > sizeof ring[0]) rf_die("path too long: %s/%s", dir, name);
    memmove(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static void rf_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) rf_die("cannot write %s", path);
}

static char *rf_read(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) rf_die("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    if (!b || fread(b, 1, (size_t)len, f) != (size_t)len) rf_die("cannot read %s", path);
    fclose(f);
    b[len] = 0;
    *n = (size_t)len;
    return b;
}

static void rf_mkdir(const char *p) {
    if (mkdir(p, 0777) != 0 && errno != EEXIST) rf_die("mkdir %s: %s", p, strerror(errno));
}

static void rf_copy(const char *src, const char *dst) {
    size_t n;
    char *b = rf_read(src, &n);
    rf_write(dst, b, n);
    free(b);
}

/* fp16 bits of a value in [-2, 2] (normal range; exact enough for fixtures). */
static uint16_t rf_f16(float x) {
    if (x == 0) return 0;
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t s = (u >> 16) & 0x8000u, e = ((u >> 23) & 0xff) - 127 + 15, m = (u >> 13) & 0x3ff;
    return (uint16_t)(s | (e << 10) | m);
}

/* The tiny model's tensors, in file order: name, rows, cols (0: 1-D). */
typedef struct rf_tensor {
    char name[96];
    int rows, cols;
} rf_tensor;

static int rf_tiny_tensors(rf_tensor *t) {
    int n = 0;
#define RF_T(nm, r, c) (snprintf(t[n].name, sizeof t[n].name, "%s", nm), t[n].rows = (r), t[n].cols = (c), n++)
    RF_T("model.embed_tokens.weight", TINY_VOCAB, TINY_DIM);
    for (int l = 0; l < TINY_LAYERS; l++) {
        static const char *const nm[9] = {"input_layernorm", "post_attention_layernorm", "self_attn.q_proj", "self_attn.k_proj",
                                          "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
        const int rows[9] = {TINY_DIM, TINY_DIM, TINY_HEADS * TINY_HD, TINY_KV * TINY_HD, TINY_KV * TINY_HD, TINY_DIM, TINY_HID, TINY_HID, TINY_DIM};
        const int cols[9] = {0, 0, TINY_DIM, TINY_DIM, TINY_DIM, TINY_HEADS * TINY_HD, TINY_DIM, TINY_DIM, TINY_HID};
        for (int i = 0; i < 9; i++) {
            char full[96];
            snprintf(full, sizeof full, "model.layers.%d.%s.weight", l, nm[i]);
            RF_T(full, rows[i], cols[i]);
        }
    }
    RF_T("model.norm.weight", TINY_DIM, 0);
#undef RF_T
    return n;
}

/* Writes a safetensors file: 8-byte length (hdr_len_override if non-zero, else the header's), the
 * header text as given, then data_len bytes of data. */
static void rf_write_st(const char *path, const char *header, const void *data, size_t data_len, uint64_t hdr_len_override) {
    size_t hl = strlen(header);
    uint64_t n = hdr_len_override ? hdr_len_override : hl;
    FILE *f = fopen(path, "wb");
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)(n >> (8 * i));
    if (!f || fwrite(len8, 1, 8, f) != 8 || fwrite(header, 1, hl, f) != hl || (data_len && fwrite(data, 1, data_len, f) != data_len) ||
        fclose(f) != 0)
        rf_die("cannot write %s", path);
}

/* The tiny model's header (F16, packed in order) into hdr, its data into *data. nan_at >= 0 puts a
 * NaN at that element of model.layers.0.self_attn.q_proj.weight. */
static size_t rf_tiny_st(char *hdr, size_t cap, uint8_t **data, long nan_at) {
    rf_tensor t[32];
    int nt = rf_tiny_tensors(t);
    size_t total = 0, o = 0;
    for (int i = 0; i < nt; i++) total += (size_t)t[i].rows * (size_t)(t[i].cols ? t[i].cols : 1) * 2;
    uint16_t *d = malloc(total);
    uint32_t rng = 12345;
    o += (size_t)snprintf(hdr + o, cap - o, "{");
    size_t off = 0;
    for (int i = 0; i < nt; i++) {
        size_t n = (size_t)t[i].rows * (size_t)(t[i].cols ? t[i].cols : 1);
        int norm = strstr(t[i].name, "norm") != NULL;
        for (size_t k = 0; k < n; k++) {
            rng = rng * 1664525u + 1013904223u;
            float v = norm ? 1.0f : ((float)(rng >> 8) / 16777216.0f - 0.5f) * 0.6f;
            d[off / 2 + k] = rf_f16(v);
        }
        if (i == 3 && nan_at >= 0) nan_at += (long)(off / 2);   /* index into d from here on */
        if (t[i].cols)
            o += (size_t)snprintf(hdr + o, cap - o, "%s\"%s\":{\"dtype\":\"F16\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}", i ? "," : "",
                                  t[i].name, t[i].rows, t[i].cols, off, off + 2 * n);
        else
            o += (size_t)snprintf(hdr + o, cap - o, "%s\"%s\":{\"dtype\":\"F16\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}", i ? "," : "",
                                  t[i].name, t[i].rows, off, off + 2 * n);
        off += 2 * n;
    }
    snprintf(hdr + o, cap - o, "}");
    if (nan_at >= 0) d[nan_at] = 0x7e00;
    *data = (uint8_t *)d;
    return total;
}

static const char *rf_tiny_config(void) {
    return "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 16, \"intermediate_size\": 32,\n"
           " \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"head_dim\": 8,\n"
           " \"vocab_size\": 512, \"max_position_embeddings\": 128, \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0,\n"
           " \"tie_word_embeddings\": true, \"bos_token_id\": 1, \"eos_token_id\": 2}\n";
}

/* A complete tiny model folder at dir (config.json, model.safetensors, tokenizer.bin). Needs
 * $HARP_SHARED/models/stories260K/tok512.bin; exits 77 without it. */
static void rf_tiny_model(const char *dir, long nan_at) {
    const char *sh = getenv("HARP_SHARED");
    char tok[1024];
    snprintf(tok, sizeof tok, "%s/models/stories260K/tok512.bin", sh ? sh : "../shared");
    if (access(tok, R_OK) != 0) {
        printf("SKIP: %s missing\n", tok);
        exit(77);
    }
    rf_mkdir(dir);
    rf_copy(tok, rf_path(dir, "tokenizer.bin"));
    const char *cfg = rf_tiny_config();
    rf_write(rf_path(dir, "config.json"), cfg, strlen(cfg));
    static char hdr[1 << 16];
    uint8_t *data;
    size_t n = rf_tiny_st(hdr, sizeof hdr, &data, nan_at);
    rf_write_st(rf_path(dir, "model.safetensors"), hdr, data, n, 0);
    free(data);
}

/* ---- running the CLI ---------------------------------------------------------------------------- */

typedef struct rf_result {
    int exited, code, signal;
    double peak_rss_mb;
    char err[8192];     /* stderr */
    int err_lines;
} rf_result;

/* Runs harp (HARP_BIN) with argv (NULL-terminated, without the program name); stdout discarded.
 * as_nobody: drop root privileges in the child (for permission cases). */
static void rf_run(rf_result *r, int as_nobody, const char *const *argv) {
    memset(r, 0, sizeof *r);
    const char *bin = getenv("HARP_BIN");
    if (!bin) rf_die("HARP_BIN is not set");
    int pfd[2];
    if (pipe(pfd) != 0) rf_die("pipe");
    pid_t pid = fork();
    if (pid < 0) rf_die("fork");
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        dup2(dn, 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        if (as_nobody && geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(126);
        const char *args[64];
        int n = 0;
        args[n++] = bin;
        for (; argv[n - 1] && n < 63; n++) args[n] = argv[n - 1];
        args[n] = NULL;
        execv(bin, (char *const *)args);
        _exit(127);
    }
    close(pfd[1]);
    size_t got = 0;
    for (ssize_t k; (k = read(pfd[0], r->err + got, sizeof r->err - 1 - got)) > 0;) got += (size_t)k;
    char sink[4096];
    while (read(pfd[0], sink, sizeof sink) > 0) {}
    close(pfd[0]);
    r->err[got] = 0;
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid) rf_die("wait4");
    r->exited = WIFEXITED(status);
    r->code = r->exited ? WEXITSTATUS(status) : -1;
    r->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    r->peak_rss_mb = (double)ru.ru_maxrss / 1024.0;
    for (const char *p = r->err; *p; p++) r->err_lines += *p == '\n';
    if (got && r->err[got - 1] != '\n') r->err_lines++;
}

#endif
