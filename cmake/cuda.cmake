# Optional CUDA backend: src/cuda/*.cu compiled into harp_lib. CI builds it when nvcc exists but
# never runs it; tests that need a GPU exit with 77 (skipped) when none is present.
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
# enable_language(CUDA) always defines CMAKE_CUDA_ARCHITECTURES (nvcc's default, sm_75 for nvcc 13),
# so harp keeps its own setting: Hopper by default; the decode kernels (mma.m16n8k16) need sm_80+.
set(HARP_CUDA_ARCHITECTURES "90" CACHE STRING "CUDA architectures of the harp kernels (sm_80 or newer)")
file(GLOB HARP_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/cuda/*.cu)
if(HARP_CUDA_SOURCES)
  target_sources(harp_lib PRIVATE ${HARP_CUDA_SOURCES})
endif()
# Kernels on Hopper's own instructions (wgmma): compiled for sm_90a alone, since a plain sm_90 pass
# rejects them; each refuses other devices at run time and its caller keeps a portable path.
file(GLOB HARP_CUDA_SM90A_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/cuda/sm90a/*.cu)
add_library(harp_sm90a OBJECT ${HARP_CUDA_SM90A_SOURCES})
set_target_properties(harp_sm90a PROPERTIES CUDA_ARCHITECTURES OFF POSITION_INDEPENDENT_CODE ON)
target_compile_options(harp_sm90a PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-gencode=arch=compute_90a,code=sm_90a>)
target_include_directories(harp_sm90a PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
target_compile_definitions(harp_sm90a PRIVATE HARP_HAVE_CUDA=1)
target_link_libraries(harp_sm90a PRIVATE CUDA::cudart)
target_sources(harp_lib PRIVATE $<TARGET_OBJECTS:harp_sm90a>)
# harp_lib was created before CUDA was enabled: set its architectures explicitly.
set_target_properties(harp_lib PROPERTIES CUDA_ARCHITECTURES "${HARP_CUDA_ARCHITECTURES}")
target_compile_definitions(harp_lib PUBLIC HARP_HAVE_CUDA=1)
# cuBLAS is not linked: src/cuda/cublas_dl.c opens it at first use (dlopen), since mapping
# libcublasLt at process start costs every harp process ~210 MB of RSS. cudart is small.
target_link_libraries(harp_lib PUBLIC CUDA::cudart ${CMAKE_DL_LIBS})
# The CUDA backend mirrors the CPU kernels operation by operation; no FMA contraction there.
set_source_files_properties(${CMAKE_SOURCE_DIR}/src/cuda/backend_cuda.cu ${CMAKE_SOURCE_DIR}/src/cuda/cuda_kernels.cu
  ${CMAKE_SOURCE_DIR}/src/cuda/trellis_viterbi.cu
  PROPERTIES COMPILE_OPTIONS "--fmad=false")
