/* Shared by the fuzz targets that go through the public, file-based API (model folders, Hessian
 * files, zero-shot data): one private temporary folder per fuzzing process (on /dev/shm when it
 * exists, so runs do not touch the disk), whose files each run rewrites from the input. Going
 * through the public entry points keeps the targets valid when the loaders behind them move. */
#ifndef HARP_FUZZ_FILES_H
#define HARP_FUZZ_FILES_H
#define _DEFAULT_SOURCE /* mkdtemp */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harp.h"

static char fuzz_dir_path[256];

static void fuzz_dir_cleanup(void) {
    DIR *d = opendir(fuzz_dir_path);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", fuzz_dir_path, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(fuzz_dir_path);
}

/* The folder, created on first use (and the library silenced, single-threaded). */
static const char *fuzz_dir(void) {
    if (!fuzz_dir_path[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/harp-fuzz-XXXXXX", base);
        if (!mkdtemp(fuzz_dir_path)) abort();
        atexit(fuzz_dir_cleanup);
        harp_set_log_level(HARP_LOG_NONE);
        harp_set_threads(1);
    }
    return fuzz_dir_path;
}

/* Writes (or, with data == NULL, removes) one file of the folder. */
static void fuzz_put(const char *name, const void *data, size_t n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", fuzz_dir(), name);
    if (!data) {
        unlink(p);
        return;
    }
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) abort();
}

/* Splits the input at its first NUL byte (text formats never hold one): a before, b after (b may
 * be empty; without a NUL, a is the whole input and b is NULL). */
static void fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *na, const uint8_t **b, size_t *nb) {
    const uint8_t *z = memchr(data, 0, size);
    *a = data;
    *na = z ? (size_t)(z - data) : size;
    *b = z ? z + 1 : NULL;
    *nb = z ? size - *na - 1 : 0;
}

#endif
