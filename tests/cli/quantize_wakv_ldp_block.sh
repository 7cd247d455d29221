#!/usr/bin/env bash
# harp quantize --method wakv --w-quant ldp --ldp-fit block (issue 15's LDP-block: fit (b) with the
# block running R3 / R_o / R4 and the 4-bit activation and K/V quantizers) on stories260K, W2A4KV4:
# the block fit lowers every layer's block loss, its folder gives the in-memory ppl (to the 8 decimals
# harp ppl prints), records ldp_block and the wakv slots, writes the same bytes for 1 and 2 threads;
# bad combinations are refused with one line.
set -u
. "$(dirname "$0")/lib.bash"
export OMP_WAIT_POLICY=passive
stories_setup quantize_wakv_ldp_block
W="--method wakv --w-bits 2 --a-bits 4 --kv-bits 4 --w-quant ldp --a-clip 0.9 --kv-clip 0.95 --json -q"
B="--ldp-fit block --ldp-nseq 8 --ldp-ctx 64 --ldp-steps 30"
P="--ctx 128 --max-chunks 3"
C="--hessians $D/h --calib $D/cal.txt --calib-ctx 128 --calib-nseq 8"
"$HARP_BIN" quantize -m "$ST" $C -o "$D/a" $W --threads 2 >/dev/null || { echo "FAIL quantize (fit (a))"; exit 1; }
j=$("$HARP_BIN" quantize -m "$ST" $C -o "$D/b" $W $B --threads 1 --ppl "$D/cal.txt" $P) ||
  { echo "FAIL quantize --ldp-fit block"; exit 1; }
nll_mem=$(echo "$j" | sed -n 's/.*"nll_mean": \([0-9.e+-]*\).*/\1/p')
nll_disk=$("$HARP_BIN" ppl -m "$D/b" -f "$D/cal.txt" $P --json -q --threads 1 | sed -n 's/.*"nll_mean": \([0-9.e+-]*\).*/\1/p')
echo "W2A4KV4 ldp block: in-memory nll $nll_mem, folder nll $nll_disk; $(echo "$j" | grep -o '"ldp_block_loss0_mean.*_mean": [0-9.e+-]*')"
check block_roundtrip_nll '[[ -n "$nll_mem" ]] && python3 -c "import sys; sys.exit(0 if \"%.8f\" % float(sys.argv[1]) == sys.argv[2] else 1)" "$nll_mem" "$nll_disk"'
check block_loss_lower 'python3 -c "
import json, sys
r = json.loads(sys.argv[1])
print(\"mean block loss:\", r[\"ldp_block_loss0_mean\"], \"->\", r[\"ldp_block_loss_mean\"])
sys.exit(0 if 0 < r[\"ldp_block_loss_mean\"] < 0.95 * r[\"ldp_block_loss0_mean\"] else 1)" "$j"'
check block_config 'python3 -c "
import json, sys
q = json.load(open(sys.argv[1]))[\"quantization_config\"]; w = q[\"wakv\"]
sys.exit(0 if \"ldp_block\" in q and w[\"ro\"] and w[\"r3\"] and w[\"activations\"][\"bits\"] == 4 else 1)" "$D/b/config.json"'
check block_differs_from_layer '! cmp -s "$D/a/model.safetensors" "$D/b/model.safetensors"'
"$HARP_BIN" quantize -m "$ST" $C -o "$D/b2" $W $B --threads 2 >/dev/null
check block_threads_identical 'cmp -s "$D/b/model.safetensors" "$D/b2/model.safetensors"'
H="$HARP_BIN quantize -m $ST --hessians $D/h -o $D/bad --method wakv --w-bits 2 --a-bits 4 --kv-bits 4"
expect_error 2 -F "--ldp-calib TEXT or --calib TEXT" $H --w-quant ldp --ldp-fit block
expect_error 2 -F "--ldp-fit" $H --w-quant gptq --ldp-fit block --calib "$D/cal.txt"
expect_error 2 -F "--ldp-fit block" $H --w-quant ldp --ldp-steps 5
expect_error 2 -F "layer or block" $H --w-quant ldp --ldp-fit blocks
exit $fail
