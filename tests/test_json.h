/* JSON golden files for tests: whole file parsed with cJSON (NULL if unreadable or invalid). */
#ifndef HARP_TEST_JSON_H
#define HARP_TEST_JSON_H

#include <cjson/cJSON.h>
#include <stdlib.h>

#include "core/core.h"

static inline cJSON *t_load_json(const char *path) {
    char *d;
    size_t n;
    if (harp_read_file(path, &d, &n) != HARP_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength(d, n);
    free(d);
    return j;
}

#endif
