# Optional CUDA backend: src/cuda/*.cu compiled into harp_lib. CI builds it when nvcc exists but
# never runs it; tests that need a GPU exit with 77 (skipped) when none is present.
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
  set(CMAKE_CUDA_ARCHITECTURES 90)
endif()
file(GLOB HARP_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/cuda/*.cu)
if(HARP_CUDA_SOURCES)
  target_sources(harp_lib PRIVATE ${HARP_CUDA_SOURCES})
endif()
# harp_lib was created before CUDA was enabled, so it did not pick up CMAKE_CUDA_ARCHITECTURES.
set_target_properties(harp_lib PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
target_compile_definitions(harp_lib PUBLIC HARP_HAVE_CUDA=1)
target_link_libraries(harp_lib PUBLIC CUDA::cudart CUDA::cublas)
# The CUDA backend mirrors the CPU kernels operation by operation; no FMA contraction there.
set_source_files_properties(${CMAKE_SOURCE_DIR}/src/cuda/backend_cuda.cu ${CMAKE_SOURCE_DIR}/src/cuda/cuda_kernels.cu
  PROPERTIES COMPILE_OPTIONS "--fmad=false")
