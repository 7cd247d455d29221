#!/usr/bin/env bash
# harp quantize --method ldp --ldp-fit block (LDP fit (b), per decoder block) on stories260K:
# --ldp-fit layer writes the same bytes as no flag; the block fit lowers every layer's block loss,
# its folder gives bit-identical logits to the in-memory model, the same bytes for 1 and 2 threads
# and after a resumed run (activations rebuilt through the resumed layers); bad combinations are
# refused.
set -u
. "$(dirname "$0")/lib.bash"
stories_setup quantize_ldp_block
"$HARP_BIN" calib -m "$ST" -f "$D/cal.txt" --ctx 128 --nseq 8 -o "$D/hess" --json -q >/dev/null || { echo "FAIL calib"; exit 1; }
Q="--hessians $D/hess --json -q --method ldp --bits 2 --group 32"
B="--ldp-fit block --ldp-calib $D/cal.txt --ldp-nseq 3 --ldp-ctx 48 --ldp-steps 12"
P="--ctx 128 --max-chunks 3"
"$HARP_BIN" quantize -m "$ST" $Q -o "$D/a" --threads 2 >/dev/null
"$HARP_BIN" quantize -m "$ST" $Q --ldp-fit layer -o "$D/a_layer" --threads 2 >/dev/null
check layer_flag_same_bytes 'cmp -s "$D/a/model.safetensors" "$D/a_layer/model.safetensors" && cmp -s "$D/a/config.json" "$D/a_layer/config.json"'
j=$("$HARP_BIN" quantize -m "$ST" $Q $B -o "$D/b" --threads 1 --ppl "$D/cal.txt" $P --save-logits "$D/b_mem.logits")
"$HARP_BIN" ppl -m "$D/b" -f "$D/cal.txt" $P --json -q --threads 1 --save-logits "$D/b_disk.logits" >/dev/null
check block_roundtrip_logits_identical '[[ -s "$D/b_mem.logits" ]] && cmp "$D/b_mem.logits" "$D/b_disk.logits"'
check block_loss_lower 'python3 -c "
import json, sys
r = json.loads(sys.argv[1])[\"linears\"]
print(\"block losses:\", [(round(x[\"ldp_block_loss0\"], 4), round(x[\"ldp_block_loss\"], 4)) for x in r[::4]])
sys.exit(0 if len(r) == 20 and all(0 < x[\"ldp_block_loss\"] <= x[\"ldp_block_loss0\"] for x in r) and
         any(x[\"ldp_block_loss\"] < 0.95 * x[\"ldp_block_loss0\"] for x in r) else 1)" "$j"'
check block_config_recorded 'grep -q "\"ldp_block\"" "$D/b/config.json" && ! grep -q "ldp_block" "$D/a/config.json"'
check block_differs_from_layer '! cmp -s "$D/a/model.safetensors" "$D/b/model.safetensors"'
"$HARP_BIN" quantize -m "$ST" $Q $B -o "$D/b2" --threads 2 >/dev/null
check block_threads_identical 'cmp -s "$D/b/model.safetensors" "$D/b2/model.safetensors"'
HARP_TEST_ABORT_AFTER_LAYER=1 "$HARP_BIN" quantize -m "$ST" $Q $B -o "$D/b3" --threads 2 >/dev/null 2>&1
"$HARP_BIN" quantize -m "$ST" $Q $B -o "$D/b3" --threads 2 >/dev/null
check block_resume_identical 'cmp -s "$D/b/model.safetensors" "$D/b3/model.safetensors"'
H="$HARP_BIN quantize -m $ST --hessians $D/hess -o $D/bad"
expect_error 2 -F "--ldp-calib" $H --method ldp --ldp-fit block
expect_error 2 -F "--ldp-fit" $H --method gptq --ldp-fit block --ldp-calib "$D/cal.txt"
expect_error 2 -F "--ldp-fit block" $H --method ldp --ldp-calib "$D/cal.txt"
expect_error 2 -F "layer or block" $H --method ldp --ldp-fit blocks
expect_error nz -F "rotation none only" $H --method ldp --rotation rht --ldp-fit block --ldp-calib "$D/cal.txt"
exit $fail
