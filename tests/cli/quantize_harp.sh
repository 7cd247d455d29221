#!/usr/bin/env bash
# Issue 5, acceptance 6: a HARP-quantized stories260K folder (QuIP# 2-bit, 10 fitting steps) round
# trips (in-memory --ppl logits == harp ppl on the folder, bit for bit, same --threads), two runs and
# --threads 1 vs 2 give byte-identical folders (every file), a run stopped after layer 2 resumes to the
# same folder, and both θ encodings (int8, fp16) load and evaluate identically to their in-memory model.
set -u
. "$(dirname "$0")/lib.bash"
# the fit runs many small parallel regions: spinning OpenMP workers on a loaded 2-core machine make
# --threads 2 ~15x slower (measured 39 s vs 2.6 s); results do not depend on this setting
export OMP_WAIT_POLICY=passive
ST="$HARP_SHARED/models/stories260K/stories260K.bin"; TXT="$HARP_SHARED/data/tinystories/val_head.txt"
[ -f "$ST" ] && [ -f "$TXT" ] || { echo "SKIP: stories260K or tinystories text missing"; exit 77; }
fail=0
same_folder() { for f in config.json model.safetensors tokenizer.bin; do cmp -s "$1/$f" "$2/$f" || return 1; done
                [ "$(ls -A "$1")" == "$(ls -A "$2")" ]; }
D="$HARP_TMP/quantize_harp"; rm -rf "$D"; mkdir -p "$D"
head -c 40000 "$TXT" > "$D/cal.txt"
"$HARP_BIN" calib -m "$ST" -f "$D/cal.txt" --ctx 128 --nseq 8 -o "$D/hess" -q >/dev/null || { echo "FAIL calib"; exit 1; }
Q="--hessians $D/hess --method quip --bits 2 --rotation harp --harp-steps 10 --seed 7 --json -q"
P="--ctx 128 --max-chunks 2"

a=$("$HARP_BIN" quantize -m "$ST" $Q -o "$D/a" --threads 1 --ppl "$D/cal.txt" $P --save-logits "$D/a_mem.logits")
nll_mem=$(echo "$a" | sed -n 's/.*"nll_mean": \([0-9.e+-]*\).*/\1/p')
nll_disk=$("$HARP_BIN" ppl -m "$D/a" -f "$D/cal.txt" $P --json -q --threads 1 --save-logits "$D/a_disk.logits" | sed -n 's/.*"nll_mean": \([0-9.e+-]*\).*/\1/p')
echo "int8 θ: in-memory nll $nll_mem, folder nll $nll_disk"
check roundtrip_logits_identical '[[ -n "$nll_mem" && -s "$D/a_mem.logits" ]] && cmp "$D/a_mem.logits" "$D/a_disk.logits"'
check fit_ran_json_fields '[[ "$a" == *"\"harp_loss_final\""* && "$a" == *"\"bpw_incl_harp\""* && "$a" == *"\"timing\": {"*"\"harp_fit\""* ]]'
check info_shows_harp '"$HARP_BIN" info -m "$D/a" | grep -q "rotation harp"'
# bpw split: the paper's rotation state is HARP's theta (harp_bits), stored transforms hold more
py_bpw='import json,sys; d=json.load(sys.stdin); L=d["linears"]; W=d["n_weights"]
hb = sum(x["harp_bits"] for x in L)
ok = hb > 0 and all(x["xf_bits_paper"] == x["harp_bits"] for x in L) and abs(d["bpw_xf_paper"] - hb / W) < 1e-6
ok = ok and abs(d["bpw_paper"] - d["bpw_codes"] - d["bpw_xf_paper"]) < 1e-5 and abs(d["bpw"] - d["bpw_codes"] - d["bpw_xf"]) < 1e-5
sys.exit(0 if ok else 1)'
check harp_bpw_split 'echo "$a" | python3 -c "$py_bpw"'

"$HARP_BIN" quantize -m "$ST" $Q -o "$D/b" --threads 1 >/dev/null
check two_runs_identical 'same_folder "$D/a" "$D/b"'
"$HARP_BIN" quantize -m "$ST" $Q -o "$D/c" --threads 2 >/dev/null
check threads_1_vs_2_identical 'same_folder "$D/a" "$D/c"'

HARP_TEST_ABORT_AFTER_LAYER=2 "$HARP_BIN" quantize -m "$ST" $Q -o "$D/r" --threads 2 >/dev/null 2>"$D/abort.err"
rc=$?
check abort_exit_1 '[[ $rc == 1 && -f "$D/r/.partial/layer_002.safetensors" && ! -f "$D/r/model.safetensors" ]]'
res=$("$HARP_BIN" quantize -m "$ST" $Q -o "$D/r" --threads 1)
check resume_counts_layers '[[ "$res" == *"\"layers_resumed\": 3"* ]]'
check resume_identical 'same_folder "$D/a" "$D/r"'

e=$("$HARP_BIN" quantize -m "$ST" $Q -o "$D/e" --harp-theta fp16 --threads 1 --ppl "$D/cal.txt" $P --save-logits "$D/e_mem.logits")
"$HARP_BIN" ppl -m "$D/e" -f "$D/cal.txt" $P --json -q --threads 1 --save-logits "$D/e_disk.logits" >/dev/null
echo "fp16 θ: in-memory nll $(echo "$e" | sed -n 's/.*"nll_mean": \([0-9.e+-]*\).*/\1/p')"
check fp16_roundtrip_logits_identical '[[ -s "$D/e_mem.logits" ]] && cmp "$D/e_mem.logits" "$D/e_disk.logits"'
check fp16_differs_from_int8 '! cmp -s "$D/a/model.safetensors" "$D/e/model.safetensors"'

# issue 18: schedule hadamard (fixed Had_172 stage, rotation blob version 3) round trips the same way
"$HARP_BIN" quantize -m "$ST" $Q -o "$D/h" --harp-schedule hadamard --threads 1 --ppl "$D/cal.txt" $P --save-logits "$D/h_mem.logits" >/dev/null
"$HARP_BIN" ppl -m "$D/h" -f "$D/cal.txt" $P --json -q --threads 1 --save-logits "$D/h_disk.logits" >/dev/null
check hadamard_roundtrip_logits_identical '[[ -s "$D/h_mem.logits" ]] && cmp "$D/h_mem.logits" "$D/h_disk.logits"'
check hadamard_schedule_in_config 'grep -q "\"schedule\":[[:space:]]*\"hadamard\"" "$D/h/config.json" && ! grep -q "\"schedule\"" "$D/a/config.json"'
exit $fail
