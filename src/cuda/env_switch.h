// A/B switches of the CUDA kernels, read from the environment at their first use and held after (the
// dec_set_* / hc_set_* calls overwrite the held value). One place for the pattern so every switch
// reads, caches and publishes its value the same way.
#ifndef HARP_CUDA_ENV_SWITCH_H
#define HARP_CUDA_ENV_SWITCH_H

#include <stdlib.h>
#include <string.h>

// *cache < 0: not read yet. Returns i where the variable equals values[i], else otherwise.
static inline int harp_env_choice(int *cache, const char *var, const char *const *values, int n, int otherwise) {
    int r = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
    if (r < 0) {
        const char *e = getenv(var);
        r = otherwise;
        for (int i = 0; e && i < n; i++)
            if (!strcmp(e, values[i])) r = i;
        __atomic_store_n(cache, r, __ATOMIC_RELEASE);
    }
    return r;
}

#endif
