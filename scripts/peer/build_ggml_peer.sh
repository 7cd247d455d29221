#!/usr/bin/env bash
# Builds the peer for docs/results/decode-gpu.md: ggml's CUDA backend from a public snapshot, kept
# OUTSIDE this repository, and the timing harness scripts/peer/ggml_mulmat.c linked against it.
#   scripts/peer/build_ggml_peer.sh [GGML_SRC] [OUT_BIN]
# GGML_SRC (default /work/peer/ggml) holds the snapshot, e.g.
#   git -C /work/.mirror/ggml-org+ggml/repo archive HEAD | tar -x -C /work/peer/ggml
# Configuration: CUDA backend for sm_90 with CUDA graphs (as llama.cpp builds it), no FlashAttention
# kernels, no NCCL, static libraries. The build is long (hours on 2 shared cores): nice -n 19.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${1:-/work/peer/ggml}
out=${2:-$src/build/ggml_mulmat}
export PATH="$PATH:/usr/local/cuda/bin"
if [ ! -f "$src/build/CMakeCache.txt" ]; then
  cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DGGML_CUDA_GRAPHS=ON -DGGML_CUDA_FA=OFF -DGGML_CUDA_NCCL=OFF -DGGML_NATIVE=OFF -DGGML_BUILD_TESTS=OFF \
    -DGGML_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF -DGGML_OPENMP=OFF -DGGML_CPU_REPACK=OFF
fi
nice -n 19 cmake --build "$src/build" -j2
b="$src/build/src"
gcc -O2 -std=c11 -I"$src/include" -I"$src/src" "$here/ggml_mulmat.c" "$b/libggml.a" "$b/ggml-cuda/libggml-cuda.a" \
  "$b/libggml-cpu.a" "$b/libggml-base.a" -L/usr/local/cuda/lib64 -lcudart -lcublas -lcublasLt -lcuda -lstdc++ -lm -lpthread \
  -ldl -o "$out"
echo "built $out (ggml $(cat "$src/.snapshot" 2>/dev/null || echo snapshot))"
