/* Allocation helpers that report what failed to allocate. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "core.h"

void *harp_xmalloc(size_t n, const char *what) {
    void *p = malloc(n ? n : 1);
    if (!p) harp_err(HARP_ERR_OOM, "out of memory allocating %zu bytes for %s", n, what);
    return p;
}

void *harp_xcalloc(size_t count, size_t size, const char *what) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) harp_err(HARP_ERR_OOM, "out of memory allocating %zu x %zu bytes for %s", count, size, what);
    return p;
}

void *harp_aligned_alloc(size_t n, const char *what) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) {
        harp_err(HARP_ERR_OOM, "out of memory allocating %zu aligned bytes for %s", n, what);
        return NULL;
    }
    return p;
}

void harp_free_aligned(void *p) { free(p); }

void harp_free_list(void *const *p, size_t n) {
    for (size_t i = 0; i < n; i++) free(p[i]);
}

void harp_free_aligned_list(void *const *p, size_t n) {
    for (size_t i = 0; i < n; i++) harp_free_aligned(p[i]);
}

void harp_free(void *p) { free(p); }

char *harp_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = harp_xmalloc(n, "string");
    if (d) memcpy(d, s, n);
    return d;
}
