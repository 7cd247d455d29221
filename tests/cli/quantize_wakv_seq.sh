#!/usr/bin/env bash
# harp quantize --method wakv --w-calib seq|asym (gptq Hessians from the model being quantized, layer
# by layer, its 4-bit activation and K/V quantizers on) on stories260K, W4A4KV4: no Hessian folder is
# needed or written; the folder records w_calib and gives the in-memory ppl (to the 8 decimals harp
# ppl prints, at the quantize run's thread count: OpenBLAS's sgemm is not bit-identical across thread
# counts on every CPU -- on an AMD EPYC with AVX-512, 1 and 2 threads differ in the last bits, which a
# 4-bit activation quantizer can turn into a code step); it differs from the Hessian-folder run and
# between the two modes; 1 and 2 threads
# write the same bytes; a run stopped after layer 1 resumes to the same bytes; bad flags are refused
# with one line.
set -u
. "$(dirname "$0")/lib.bash"
export OMP_WAIT_POLICY=passive
stories_setup quantize_wakv_seq
W="--method wakv --w-bits 4 --a-bits 4 --kv-bits 4 --a-clip 0.9 --kv-clip 0.95 --json -q"
C="--calib $D/cal.txt --calib-ctx 128 --calib-nseq 8"
P="--ctx 128 --max-chunks 3"
"$HARP_BIN" quantize -m "$ST" --hessians "$D/h" $C -o "$D/f" $W --threads 2 >/dev/null || { echo "FAIL quantize (Hessian folder)"; exit 1; }
# roundtrip MODE DIR [FLAGS]: quantize with --w-calib MODE into DIR with --ppl; the folder's ppl must
# give the in-memory nll to the 8 decimals harp ppl prints
roundtrip() {
  local j nll_mem nll_disk
  j=$("$HARP_BIN" quantize -m "$ST" $C -o "$2" $W --w-calib "$1" "${@:3}" --ppl "$D/cal.txt" $P) ||
    { echo "FAIL quantize --w-calib $1"; exit 1; }
  nll_mem=$(echo "$j" | sed -n 's/.*"nll_mean": \([0-9.e+-]*\).*/\1/p')
  nll_disk=$("$HARP_BIN" ppl -m "$2" -f "$D/cal.txt" $P --json -q "${@:3}" | sed -n 's/.*"nll_mean": \([0-9.e+-]*\).*/\1/p')
  echo "W4A4KV4 --w-calib $1: in-memory nll $nll_mem, folder nll $nll_disk"
  check "$1_roundtrip_nll" '[[ -n "$nll_mem" ]] && python3 -c "import sys; sys.exit(0 if \"%.8f\" % float(sys.argv[1]) == sys.argv[2] else 1)" "$nll_mem" "$nll_disk"'
}
roundtrip seq "$D/s" --threads 1
check seq_config 'python3 -c "
import json, sys
q = json.load(open(sys.argv[1]))[\"quantization_config\"]; c = q[\"w_calib\"]
sys.exit(0 if c[\"mode\"] == \"seq\" and c[\"nseq\"] == 8 and c[\"ctx\"] == 128 and q[\"wakv\"][\"activations\"][\"bits\"] == 4 else 1)" "$D/s/config.json"'
check seq_no_hessians '[ ! -e "$D/s/h" ] && ! grep -q w_calib "$D/f/config.json"'
check seq_differs_from_files '! cmp -s "$D/f/model.safetensors" "$D/s/model.safetensors"'
"$HARP_BIN" quantize -m "$ST" $C -o "$D/s2" $W --w-calib seq --threads 2 >/dev/null
check seq_threads_identical 'cmp -s "$D/s/model.safetensors" "$D/s2/model.safetensors"'
HARP_TEST_ABORT_AFTER_LAYER=1 "$HARP_BIN" quantize -m "$ST" $C -o "$D/r" $W --w-calib seq --threads 2 >/dev/null 2>&1
check seq_stopped '[ -f "$D/r/.partial/layer_001.safetensors" ] && [ ! -f "$D/r/model.safetensors" ]'
"$HARP_BIN" quantize -m "$ST" $C -o "$D/r" $W --w-calib seq --threads 2 >/dev/null
check seq_resume_identical 'cmp -s "$D/s/model.safetensors" "$D/r/model.safetensors"'
roundtrip asym "$D/a" --threads 2
check asym_differs_from_seq '! cmp -s "$D/s/model.safetensors" "$D/a/model.safetensors"'
H="$HARP_BIN quantize -m $ST -o $D/bad --method wakv --w-bits 4 --a-bits 4 --kv-bits 4"
expect_error 2 -F "--calib TEXT (with --w-calib" $H --w-calib seq
expect_error 2 -F "files, seq or asym" $H --w-calib sequential --calib "$D/cal.txt"
expect_error 2 -F "--w-calib asym needs --w-quant gptq" $H --w-calib asym --w-quant rtn --calib "$D/cal.txt"
expect_error 2 -F "--hessians DIR" $H --calib "$D/cal.txt"
exit $fail
