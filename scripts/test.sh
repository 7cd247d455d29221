#!/usr/bin/env bash
# The project's test command (README, .ci/run): builds a Release and an ASan+UBSan configuration
# with -Werror, runs ctest in both (the sanitizer run skips tests labelled "slow"), then a short
# libFuzzer smoke run of every parser (scripts/reliability.sh --quick). Uses ../shared beside the
# checkout for real-model tests.
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
  # Tests of the CUDA build that need no device: cuBLAS opened at first use, and the hostile inputs'
  # 64 MB RSS bound, which a linked cuBLAS broke (docs/results/reliability.md, defect 19).
  (cd build-cuda && ctest --output-on-failure -j "$jobs" -R '^(test_cublas_dl|hostile_)') || exit 1
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
# The kill / full-disk / two-writer process harnesses (cli_rel_*) run in the Release stage only: under
# an unoptimised ASan build they take ~9 min of the 30-min CI budget and exercise the same file-layer
# code the ASan hostile-input ctests cover.
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j "$jobs" -LE slow -E '^cli_rel_')


if [ -d fuzz ] && ls fuzz/fuzz_*.c >/dev/null 2>&1; then
  # the reliability campaign's quick run: a short libFuzzer smoke of every parser (its kill-and-resume,
  # full-disk, two-writer and hostile-input cases are ctests, run above: hostile inputs in both builds,
  # the process harnesses in the Release build)
  echo "== libFuzzer smoke (scripts/reliability.sh --quick)"
  mkdir -p build-fuzz   # the log below is written before reliability.sh creates its folders
  HARP_SHARED="$shared" bash scripts/reliability.sh --quick --stages fuzz --fuzz-build build-fuzz --build build-ci \
    --fuzz-seconds "${HARP_FUZZ_SECONDS:-12}" --out build-fuzz/reliability > build-fuzz/reliability.log 2>&1 \
    || { tail -40 build-fuzz/reliability.log; exit 1; }
  sed -n '/^## 1/,$p' build-fuzz/reliability/summary.md
fi
echo "== all test stages passed"
