/* Compiler switches shared by the two engine instantiations. */
#ifndef HARP_HF_COMMON_H
#define HARP_HF_COMMON_H

#include "harpfit/hf_internal.h"

/* An AVX2 clone of each stage kernel is chosen at load time; both clones perform the same IEEE
 * operations (no FMA: fp-contract is off), so results do not depend on the CPU. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define HARP_TARGET_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define HARP_TARGET_CLONES
#endif
#if defined(__GNUC__)
#define HARP_ALWAYS_INLINE __attribute__((always_inline))
#else
#define HARP_ALWAYS_INLINE
#endif

#endif
