#!/usr/bin/env bash
# The project's test command (README, .ci/run): builds a Release and an ASan+UBSan configuration
# with -Werror, runs ctest in both (the sanitizer run skips tests labelled "slow"), then a short
# libFuzzer smoke run of every parser. Uses ../shared beside the checkout for real-model tests.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
shared="${HARP_SHARED:-$(cd .. && pwd)/shared}"

if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  # First, so that the last ctest summary in the log is a stage that runs every test.
  echo "== CUDA build"
  export PATH="$PATH:/usr/local/cuda/bin"
  cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DHARP_CUDA=ON -DHARP_FATAL_WARNINGS=ON \
    -DHARP_SHARED_DIR="$shared" >/dev/null
  cmake --build build-cuda -j "$jobs"
  if nvidia-smi -L >/dev/null 2>&1; then
    (cd build-cuda && ctest --output-on-failure -j 1 -L gpu) || exit 1
  else
    echo "-- no GPU on this machine: the CUDA build compiled; its GPU tests (ctest -L gpu) are not run"
  fi
fi

echo "== Release build"
cmake -S . -B build-ci -DCMAKE_BUILD_TYPE=Release -DHARP_FATAL_WARNINGS=ON -DHARP_SHARED_DIR="$shared" >/dev/null
cmake --build build-ci -j "$jobs"
(cd build-ci && ctest --output-on-failure -j "$jobs" $( [ "${HARP_SLOW:-0}" = 1 ] || echo -LE slow ))

echo "== ASan+UBSan build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHARP_SANITIZE=ON -DHARP_FATAL_WARNINGS=ON \
  -DHARP_SHARED_DIR="$shared" >/dev/null
cmake --build build-asan -j "$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j "$jobs" -LE slow)


if [ -d fuzz ] && ls fuzz/fuzz_*.c >/dev/null 2>&1; then
  echo "== libFuzzer smoke"
  CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DHARP_FUZZ=ON -DHARP_TESTS=OFF \
    -DHARP_SHARED_DIR="$shared" >/dev/null
  cmake --build build-fuzz -j "$jobs"
  for f in build-fuzz/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    n=$(basename "$f")
    corpus="fuzz/corpus/${n#fuzz_}"
    mkdir -p "build-fuzz/corpus-$n"
    echo "-- $n"
    "$f" -max_total_time="${HARP_FUZZ_SECONDS:-20}" -rss_limit_mb=2048 "build-fuzz/corpus-$n" \
      $( [ -d "$corpus" ] && echo "$corpus" ) >/dev/null 2>"build-fuzz/$n.log" || { tail -40 "build-fuzz/$n.log"; exit 1; }
  done
fi
echo "== all test stages passed"
