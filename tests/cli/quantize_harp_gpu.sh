#!/usr/bin/env bash
# harp quantize --harp-gpu / harp bench harp --gpu: usage error without --rotation harp (exit 2) in
# every build; without CUDA or without a device a clear one-line error (exit 1) before any work.
# With a device the flag is exercised by the device runs (docs/gpu.md), not here.
set -u
. "$(dirname "$0")/lib.bash"
ST="$HARP_SHARED/models/stories260K/stories260K.bin"
[ -f "$ST" ] || { echo "SKIP: shared files missing"; exit 77; }
fail=0

"$HARP_BIN" quantize -m "$ST" --hessians "$HARP_TMP/none" -o "$HARP_TMP/hg" --method quip --rotation rht --harp-gpu \
  >/dev/null 2>"$HARP_TMP/hg_err"; rc=$?
check harp_gpu_needs_harp_rotation '[ $rc -eq 2 ] && grep -q "harp-gpu applies only to --rotation harp" "$HARP_TMP/hg_err"'
"$HARP_BIN" quantize --help | grep -q -- "--harp-gpu"; rc=$?
check help_mentions_harp_gpu '[ $rc -eq 0 ]'
"$HARP_BIN" quantize -m "$ST" --hessians "$HARP_TMP/none" -o "$HARP_TMP/hg" --method quip --rotation harp --harp-gpu \
  >/dev/null 2>"$HARP_TMP/hg_err"; rc=$?
if grep -Eq "built without CUDA|no CUDA device" "$HARP_TMP/hg_err"; then
  check harp_gpu_unavailable '[ $rc -eq 1 ] && grep -q -- "--harp-gpu:" "$HARP_TMP/hg_err"'
  "$HARP_BIN" bench harp --gpu --skip-apply >/dev/null 2>"$HARP_TMP/hg_err2"; rc=$?
  check bench_gpu_unavailable '[ $rc -eq 1 ] && grep -Eq "built without CUDA|no CUDA device" "$HARP_TMP/hg_err2"'
else
  echo "device present: availability errors not exercised"
fi
exit $fail
