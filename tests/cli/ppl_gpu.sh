#!/usr/bin/env bash
# harp ppl --gpu flags: usage errors (exit 2) in every build; --kld-ref on the CPU (self-KLD 0);
# without CUDA or without a device a clear one-line error (exit 1); with a device, the JSON fields and
# a self-KLD of 0.
set -u
. "$(dirname "$0")/lib.bash"
ST="$HARP_SHARED/models/stories260K/stories260K.bin"; TXT="$HARP_SHARED/data/tinystories/val_head.txt"
[ -f "$ST" ] && [ -f "$TXT" ] || { echo "SKIP: shared files missing"; exit 77; }
fail=0

"$HARP_BIN" ppl -m "$ST" -f "$TXT" --kld-ref "$ST" --kld-base "$HARP_TMP/x.lgt" >/dev/null 2>&1; rc=$?
check kld_ref_or_base '[ $rc -eq 2 ]'
"$HARP_BIN" ppl -m "$ST" -f "$TXT" --gpu-batch 4 >/dev/null 2>&1; rc=$?
check gpu_batch_needs_gpu '[ $rc -eq 2 ]'
out=$("$HARP_BIN" ppl -m "$ST" -f "$TXT" --ctx 256 --max-chunks 3 --kld-ref "$ST" --json -q); rc=$?
check cpu_kld_ref '[ $rc -eq 0 ] && [[ "$out" == *"\"kld_mean\": 0.00000000"* && "$out" == *"\"top1_agree\": 1.000000"* && "$out" == *"\"kld_against\""* ]]'
RL="$HARP_SHARED/models/ref-llama"
if [ -d "$RL" ]; then   # a reference with another vocabulary: one line naming the reference
  "$HARP_BIN" ppl -m "$RL" -f "$TXT" --max-chunks 1 --kld-ref "$ST" -q >/dev/null 2>"$HARP_TMP/kr_err"; rc=$?
  check kld_ref_mismatch_names_ref '[ $rc -eq 1 ] && [ "$(wc -l < "$HARP_TMP/kr_err")" -eq 1 ] && grep -q "stories260K.bin: vocab 512" "$HARP_TMP/kr_err"'
fi
"$HARP_BIN" ppl -m "$ST" -f "$TXT" --gpu --save-logits "$HARP_TMP/x.lgt" >/dev/null 2>&1; rc=$?
check gpu_rejects_save_logits '[ $rc -eq 2 ]'
"$HARP_BIN" ppl -m "$ST" -f "$TXT" --gpu --gpu-batch 0 >/dev/null 2>&1; rc=$?
check gpu_batch_range '[ $rc -eq 2 ]'

out=$("$HARP_BIN" ppl -m "$ST" -f "$TXT" --gpu --ctx 256 --max-chunks 3 --kld-ref "$ST" --json 2>"$HARP_TMP/gpu_err"); rc=$?
if [ $rc -ne 0 ]; then
  check gpu_unavailable_one_line '[ $rc -eq 1 ] && grep -Eq "built without CUDA|no CUDA device" "$HARP_TMP/gpu_err"'
else
  check gpu_json '[[ "$out" == *"\"device\": \"gpu\""* && "$out" == *"\"kld_mean\": 0.00000000"* && "$out" == *"\"top1_agree\": 1.000000"* && "$out" == *"\"n_chunks\": 3"* ]]'
fi
exit $fail
