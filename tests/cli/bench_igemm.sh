#!/usr/bin/env bash
# `harp bench igemm` and `harp bench decode --kv-bits / --xf-stage / --attn-variant / --ctx-kv` argument handling, in any build and without a
# device, and never running a benchmark (the rows need a device: docs/results/wakv.md "GPU"): bad flags
# are usage errors (exit 2) and a build without CUDA refuses with one line (exit 1).
set -u
bin=${HARP_BIN:?}
expect() {   # expect CODE ARGS...: the exit code and, for errors, exactly one stderr line
  local want=$1
  shift
  err=$("$bin" "$@" 2>&1 >/dev/null)
  local rc=$?
  [ "$rc" -eq "$want" ] || { echo "harp $*: exit $rc, expected $want ($err)"; exit 1; }
  [ "$want" -eq 0 ] || [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || { echo "harp $*: not one error line: $err"; exit 1; }
}
if "$bin" bench igemm 2>&1 | grep -q "built without CUDA"; then   # never --gpu: on a device it would run
  expect 1 bench igemm --gpu --bogus
  exit 0
fi
expect 2 bench igemm
expect 2 bench igemm --gpu --a-bits 5
expect 2 bench igemm --gpu --batch 0
expect 2 bench igemm --gpu --bogus
expect 2 bench igemm --gpu --reps
for c in 3x1 1x1,4x1 2x4, 1x12 "" 1x 1 1x1,, 1x0; do expect 2 bench igemm --gpu --cluster "$c"; done
for t in 64 200 128,256,128 "" 256x; do expect 2 bench igemm --gpu --tile "$t"; done
expect 2 bench decode --gpu --kv-bits 8
expect 2 bench decode --gpu --kv-bits ,
expect 2 bench decode --gpu --xf-stage 2
expect 2 bench decode --gpu --attn-variant 0,1,0
expect 2 bench decode --gpu --xf-stage ,
expect 2 bench decode --gpu --ctx-kv 5
expect 2 bench decode --gpu --ctx-kv 16,
expect 2 bench decode --gpu --ctx-kv ,4
expect 2 bench decode --gpu --ctx-kv 32,16,8,4,2
expect 0 bench igemm --help
"$bin" bench igemm --help | grep -q "usage: harp bench igemm" || { echo "no usage"; exit 1; }
exit 0
