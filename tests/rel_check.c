/* Checker for the kill-anywhere trials (tests/cli/rel_kill_resume.sh): after a `kill -9`, every
 * file visible under a final name must be complete and valid; only temporaries (NAME.tmp.PID) and
 * the folder lock may be partial.
 *
 *     rel_check hess DIR       every layer_NNN.hess loads (magic, version, checksum, sizes)
 *     rel_check qfolder DIR    every .partial/layer_NNN.safetensors parses and carries its run
 *                              fingerprint; model.safetensors parses; tokenizer files load; when
 *                              config.json exists the whole folder opens as a model
 *
 * Prints one line per problem and exits 1 if there is any. */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harp.h"
#include "harp/calib.h"
#include "io/safetensors.h"

static int g_bad;

static void bad(const char *fmt, const char *a, const char *b) {
    printf("rel_check: ");
    printf(fmt, a, b);
    printf("\n");
    g_bad = 1;
}

static int is_temp(const char *n) { return strstr(n, ".tmp.") != NULL || !strcmp(n, ".harp.lock"); }

static void check_hess(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return; /* not created yet */
    for (struct dirent *e; (e = readdir(d));) {
        const char *n = e->d_name;
        if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2]))) continue;
        if (is_temp(n)) continue;
        int layer = -1;
        char tail[8] = "";
        if (sscanf(n, "layer_%d.hes%1s", &layer, tail) != 2 || strcmp(tail, "s") || strlen(n) != 14) {
            bad("%s/%s: unexpected file in a Hessian folder", dir, n);
            continue;
        }
        harp_hess_layer *h = NULL;
        if (harp_hess_layer_load(dir, layer, NULL, &h) != HARP_OK) bad("%s (%s)", n, harp_last_error());
        harp_hess_layer_free(h);
    }
    closedir(d);
}

static void check_st(const char *path, int partial) {
    harp_st_file f;
    if (harp_st_open(path, &f) != HARP_OK) {
        bad("%s: does not parse (%s)", path, harp_last_error());
        return;
    }
    if (partial && !harp_st_find(&f, "run.fingerprint")) bad("%s: %s", path, "no run.fingerprint: incomplete partial layer");
    harp_st_close(&f);
}

static void check_qfolder(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s/.partial", dir);
    DIR *d = opendir(p);
    for (struct dirent *e; d && (e = readdir(d));) {
        const char *n = e->d_name;
        if (n[0] == '.' || is_temp(n)) continue;
        char q[4096 + 256];
        snprintf(q, sizeof q, "%s/%s", p, n);
        if (strncmp(n, "layer_", 6) || !strstr(n, ".safetensors")) bad("%s: %s", q, "unexpected file in .partial");
        else check_st(q, 1);
    }
    if (d) closedir(d);
    d = opendir(dir);
    int has_config = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        const char *n = e->d_name;
        if (n[0] == '.' || is_temp(n)) continue;
        char q[4096 + 256];
        snprintf(q, sizeof q, "%s/%s", dir, n);
        if (!strcmp(n, "model.safetensors")) check_st(q, 0);
        else if (!strcmp(n, "config.json")) has_config = 1;
        else if (!strcmp(n, "tokenizer.bin") || !strcmp(n, "tokenizer.model") || !strcmp(n, "tokenizer.json")) {
            harp_tokenizer *t = NULL;
            if (harp_tokenizer_open(q, 0, &t) != HARP_OK) bad("%s: does not load (%s)", q, harp_last_error());
            harp_tokenizer_free(t);
        } else if (strcmp(n, "tokenizer_config.json") && strcmp(n, "special_tokens_map.json") && strcmp(n, "generation_config.json"))
            bad("%s: %s", q, "unexpected file in a quantized folder");
    }
    if (d) closedir(d);
    if (has_config) {
        harp_model *m = NULL;
        if (harp_model_open(dir, NULL, &m) != HARP_OK) bad("%s: has config.json but does not open (%s)", dir, harp_last_error());
        harp_model_free(m);
    }
}

int main(int argc, char **argv) {
    harp_set_log_level(HARP_LOG_NONE);
    if (argc != 3 || (strcmp(argv[1], "hess") && strcmp(argv[1], "qfolder"))) {
        fprintf(stderr, "usage: rel_check hess|qfolder DIR\n");
        return 2;
    }
    if (!strcmp(argv[1], "hess")) check_hess(argv[2]);
    else check_qfolder(argv[2]);
    return g_bad;
}
