#!/usr/bin/env bash
# `harp bench decode` without --gpu: synthetic model shapes on the CPU (docs/cli/bench-decode.md), in any
# build. Bad flags are usage errors with one line (exit 2); one small run (1 layer, 1 step) prints a copy
# row and one decode row per qtype and rotation with the keys issue 12 names.
set -u
bin=${HARP_BIN:?}
expect() {   # expect CODE ARGS...: the exit code and exactly one stderr line
  local want=$1
  shift
  err=$("$bin" "$@" 2>&1 >/dev/null)
  local rc=$?
  [ "$rc" -eq "$want" ] || { echo "harp $*: exit $rc, expected $want ($err)"; exit 1; }
  [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || { echo "harp $*: not one error line: $err"; exit 1; }
}
expect 2 bench decode --shape llama2-1b
expect 2 bench decode --qtypes qtip2
expect 2 bench decode --qtypes e8p2,bogus
expect 2 bench decode --layers 0
expect 2 bench decode --steps
expect 2 bench decode --bogus
if ! "$bin" bench decode --gpu --kv-bits 8 2>&1 | grep -q "built without CUDA"; then   # the GPU rows' list flags
  expect 2 bench decode --gpu --kv-bits 8
  expect 2 bench decode --gpu --ctx-kv 16,5
  expect 2 bench decode --gpu --xf-stage 1,0,1
fi
out=$("$bin" bench decode --json --shape llama2-7b --layers 1 --steps 1 --qtypes e8p2,int4 --rotations rht,harp -t 2) || {
  echo "bench decode (CPU) failed"; exit 1; }
[ "$(printf '%s\n' "$out" | grep -c '"kind": "copy"')" -eq 1 ] || { echo "no copy row: $out"; exit 1; }
rows=$(printf '%s\n' "$out" | grep -c '"kind": "decode"')
[ "$rows" -eq 4 ] || { echo "expected 4 decode rows, got $rows: $out"; exit 1; }
for k in '"device": "cpu"' '"shape": "llama2-7b"' '"qtype": "e8p2"' '"qtype": "int4"' '"rotation": "harp"' '"batch": 1' \
         '"tok_s": ' '"ms_per_token": ' '"weight_bytes": ' '"gbps": ' '"copy_gbps": ' '"pct_of_roofline": ' '"peak_mem_bytes": '; do
  printf '%s\n' "$out" | grep -q "$k" || { echo "missing $k: $out"; exit 1; }
done
printf '%s\n' "$out" | grep '"kind": "decode"' | grep -q '"tok_s": 0.000' && { echo "a row decoded nothing: $out"; exit 1; }
exit 0
