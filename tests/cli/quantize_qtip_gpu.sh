#!/usr/bin/env bash
# harp quantize --qtip-gpu (and --harp-gpu with --method qtip): usage error without --method qtip
# (exit 2) in every build; without CUDA or a device one clear error line (exit 1). With a device the
# CUDA Viterbi returns the CPU's states, so the folder of a 2-bit QTIP-RHT quantization of
# stories260K must be byte-identical to the CPU one, for each code (1mad, 3inst, hyb), and so must a
# short QTIP-HARP fit run with --harp-gpu.
set -u
. "$(dirname "$0")/lib.bash"
fail=0
H="$HARP_BIN"; T="$HARP_TMP/qtip_gpu"
ST="$HARP_SHARED/models/stories260K/stories260K.bin"; TXT="$HARP_SHARED/data/tinystories/val_head.txt"
[ -f "$ST" ] && [ -f "$TXT" ] || { echo "SKIP: stories260K or tinystories text missing"; exit 77; }
rm -rf "$T"; mkdir -p "$T"
export OMP_WAIT_POLICY=passive

"$H" quantize -m "$ST" --hessians "$T/none" -o "$T/q" --method quip --qtip-gpu >/dev/null 2>"$T/err"; rc=$?
check qtip_gpu_needs_qtip '[ $rc -eq 2 ] && grep -q "^harp quantize: error: --qtip-gpu applies only to --method qtip$" "$T/err"'
"$H" quantize --help | grep -q -- "--qtip-gpu"; rc=$?
check help_mentions_qtip_gpu '[ $rc -eq 0 ]'
"$H" quantize -m "$ST" --hessians "$T/none" -o "$T/q" --method qtip --qtip-gpu >/dev/null 2>"$T/err"; rc=$?
if grep -Eq "built without CUDA|no CUDA device" "$T/err"; then
  check qtip_gpu_unavailable '[ $rc -eq 1 ] && [ $(wc -l < "$T/err") -eq 1 ] && grep -q "^harp quantize: error: --qtip-gpu: " "$T/err"'
  "$H" quantize -m "$ST" --hessians "$T/none" -o "$T/q" --method qtip --rotation harp --harp-gpu >/dev/null 2>"$T/err"; rc=$?
  check harp_gpu_qtip_unavailable '[ $rc -eq 1 ] && grep -q "^harp quantize: error: --harp-gpu: " "$T/err"'
  echo "SKIP: no CUDA device: the CPU/GPU folder identity is not exercised"
  [ $fail -eq 0 ] && exit 77
  exit $fail
fi

head -c 60000 "$TXT" > "$T/cal.txt"
"$H" calib -m "$ST" -f "$T/cal.txt" --ctx 128 --nseq 8 -o "$T/hess" -q > /dev/null || { echo "FAIL calib"; exit 1; }
for code in 1mad 3inst hyb; do
  Q=(-m "$ST" --hessians "$T/hess" --method qtip --bits 2 --qtip-code "$code" -q)
  t0=$(date +%s.%N); "$H" quantize "${Q[@]}" -o "$T/cpu_$code" > /dev/null; rc1=$?
  t1=$(date +%s.%N); "$H" quantize "${Q[@]}" -o "$T/gpu_$code" --qtip-gpu > /dev/null; rc2=$?
  t2=$(date +%s.%N)
  echo "qtip 2-bit $code: CPU $(awk -v a="$t0" -v b="$t1" "BEGIN {printf \"%.2f\", b - a}") s, --qtip-gpu $(awk -v a="$t1" -v b="$t2" "BEGIN {printf \"%.2f\", b - a}") s"
  check "quantize_$code" '[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]'
  same=1
  for f in "$T/cpu_$code"/*; do cmp -s "$f" "$T/gpu_$code/$(basename "$f")" || { echo "  differs: $(basename "$f")"; same=0; }; done
  [ "$(ls "$T/cpu_$code" | wc -l)" -eq "$(ls "$T/gpu_$code" | wc -l)" ] || same=0
  check "folder_identical_$code ($(ls "$T/cpu_$code" | tr '\n' ' '))" '[ $same -eq 1 ]'
done
# QTIP-HARP: the fit's engine stays on the CPU and its trellis target is bit-identical, so the whole
# fit — and the folder — must be too (a short fit: 10 steps)
Q=(-m "$ST" --hessians "$T/hess" --method qtip --bits 2 --rotation harp --harp-steps 10 -q)
t0=$(date +%s.%N); "$H" quantize "${Q[@]}" -o "$T/cpu_harp" > /dev/null; rc1=$?
t1=$(date +%s.%N); "$H" quantize "${Q[@]}" -o "$T/gpu_harp" --harp-gpu > /dev/null; rc2=$?
t2=$(date +%s.%N)
echo "qtip-harp 2-bit hyb, 10 steps: CPU $(awk -v a="$t0" -v b="$t1" "BEGIN {printf \"%.2f\", b - a}") s, --harp-gpu $(awk -v a="$t1" -v b="$t2" "BEGIN {printf \"%.2f\", b - a}") s"
check quantize_harp '[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]'
same=1
for f in "$T/cpu_harp"/*; do cmp -s "$f" "$T/gpu_harp/$(basename "$f")" || { echo "  differs: $(basename "$f")"; same=0; }; done
check folder_identical_harp '[ $same -eq 1 ]'
exit $fail
