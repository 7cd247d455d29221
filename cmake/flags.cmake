# Warning set and sanitizer switches, applied to every harp target.
function(harp_set_warnings target)
  # C only: nvcc (src/cuda/*.cu in the same target with -DHARP_CUDA=ON) rejects these flags.
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra -Wpedantic -Wshadow
    -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Werror=implicit-function-declaration
    -Wno-unknown-pragmas>)
  if(HARP_FATAL_WARNINGS)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:C>:-Werror>)
  endif()
endfunction()

if(HARP_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=address,undefined)
endif()
# Determinism: no -ffast-math anywhere; FMA contraction is kept off in reference paths by
# the kernels themselves (they state it), -ffp-contract=off makes the _ref code bit-stable.
add_compile_options($<$<COMPILE_LANGUAGE:C>:-ffp-contract=off>)
