#!/usr/bin/env bash
# harp quantize --method wakv on stories260K (issue 14): a W4A4KV4 folder round trip (in-memory --ppl
# == harp ppl on the folder to the 8 decimals it prints), the folder's quantization_config.wakv and its
# loading by info and generate, Hessians of the unrotated model refused, the folder version (3 with the
# online o-input Hadamard R_o, 2 without it; a version-1 wakv folder of earlier builds still loads, an
# unknown version is refused), the weight-grid
# flags (--w-sym --w-clip --act-order) recorded and loading, the clip search at its three scopes and
# two losses, and the flag combinations that cannot
# work refused with one line (exit 2).
set -u
. "$(dirname "$0")/lib.bash"
ST="$HARP_SHARED/models/stories260K/stories260K.bin"; TXT="$HARP_SHARED/data/tinystories/val_head.txt"
[ -f "$ST" ] && [ -f "$TXT" ] || { echo "SKIP: stories260K or tinystories text missing"; exit 77; }
export OMP_WAIT_POLICY=passive
fail=0
D="$HARP_TMP/quantize_wakv"; rm -rf "$D"; mkdir -p "$D"
head -c 60000 "$TXT" > "$D/cal.txt"
W="--method wakv --w-bits 4 --a-bits 4 --kv-bits 4"

a=$("$HARP_BIN" quantize -m "$ST" --hessians "$D/h" --calib "$D/cal.txt" --calib-ctx 128 --calib-nseq 8 -o "$D/w" $W \
    --threads 1 --json -q --ppl "$D/cal.txt" --ctx 128 --max-chunks 4) || { echo "FAIL quantize wakv"; exit 1; }
nll_mem=$(echo "$a" | sed -n 's/.*"nll_mean": \([0-9.e+-]*\).*/\1/p')
nll_disk=$("$HARP_BIN" ppl -m "$D/w" -f "$D/cal.txt" --ctx 128 --max-chunks 4 --json -q --threads 1 | sed -n 's/.*"nll_mean": \([0-9.e+-]*\).*/\1/p')
echo "W4A4KV4: in-memory nll $nll_mem, folder nll $nll_disk"
# harp ppl --json prints 8 decimals: the folder must give the in-memory value to all of them
check roundtrip_nll_identical '[[ -n "$nll_mem" && -n "$nll_disk" ]] && python3 -c "import sys; sys.exit(0 if \"%.8f\" % float(sys.argv[1]) == sys.argv[2] else 1)" "$nll_mem" "$nll_disk"'
cfg="$D/w/config.json"
py='import json,sys; q=json.load(open(sys.argv[1]))["quantization_config"]; w=q["wakv"]
ok = q["method"] == "gptq" and w["r3"] and w["r4"] and w["ro"] and w["activations"]["bits"] == 4 and w["kv_cache"]["bits"] == 4
ok = ok and w["kv_cache"]["group_size"] == 8 and len(w["clip"]) == 5 and w["rotation"]["r1"] == "hadamard"
sys.exit(0 if ok else 1)'
check config_wakv 'python3 -c "$py" "$cfg"'
check head_untied 'grep -q "\"tie_word_embeddings\":.*false" "$cfg"'
# format version 3 marks a wakv folder with R_o (2: without it); earlier builds wrote version 1, which
# must keep loading
py_ver='import json,sys; c=json.load(open(sys.argv[1])); v=c["quantization_config"]["version"]
if len(sys.argv) > 2: c["quantization_config"]["version"] = int(sys.argv[2]); json.dump(c, open(sys.argv[1], "w"), indent=2)
sys.exit(0 if v == 3 else 1)'
check config_version_3 'python3 -c "$py_ver" "$cfg"'
cp -r "$D/w" "$D/w_v1"; python3 -c "$py_ver" "$D/w_v1/config.json" 1
nll_v1=$("$HARP_BIN" ppl -m "$D/w_v1" -f "$D/cal.txt" --ctx 128 --max-chunks 4 --json -q --threads 1 | sed -n 's/.*"nll_mean": \([0-9.e+-]*\).*/\1/p')
check version_1_wakv_folder_loads '[[ -n "$nll_v1" && "$nll_v1" == "$nll_disk" ]]'
python3 -c "$py_ver" "$D/w_v1/config.json" 4
e=$("$HARP_BIN" ppl -m "$D/w_v1" -f "$D/cal.txt" --ctx 128 --max-chunks 1 -q 2>&1 >/dev/null); rc=$?
check version_4_refused '[[ $rc -ne 0 && $(printf "%s\n" "$e" | wc -l) -eq 1 && "$e" == *"version 4 is not supported"* ]]'
info=$("$HARP_BIN" info -m "$D/w")
check info_shows_wakv '[[ "$info" == *"wakv A4 KV4 R3 R4 Ro"* ]]'
gen=$("$HARP_BIN" generate -m "$D/w" -p "Once upon a time" -n 8 --json)
check generate_on_folder '[[ "$gen" == *"\"generated_ids\": ["* ]]'
# the rotated model's Hessians are reused (no --calib needed the second time); the unrotated model's refused
"$HARP_BIN" quantize -m "$ST" --hessians "$D/h" -o "$D/w2" $W --w-quant rtn -q >/dev/null 2>&1
check hessians_reused '[[ -f "$D/w2/config.json" ]]'
"$HARP_BIN" calib -m "$ST" -f "$D/cal.txt" --ctx 128 --nseq 4 -o "$D/h0" -q >/dev/null 2>&1
e=$("$HARP_BIN" quantize -m "$ST" --hessians "$D/h0" -o "$D/w3" $W -q 2>&1 >/dev/null); rc=$?
check unrotated_hessians_refused '[[ $rc -ne 0 && $(printf "%s\n" "$e" | wc -l) -eq 1 && "$e" == *"Hessians of another model"* ]]'

# weights only (no online rotation, nothing quantized at run time): the folder still loads
"$HARP_BIN" quantize -m "$ST" --hessians "$D/h16" --calib "$D/cal.txt" --calib-ctx 128 --calib-nseq 4 -o "$D/w16" \
  --method wakv --w-bits 4 --rotation gsr -q >/dev/null 2>&1
p16=$("$HARP_BIN" ppl -m "$D/w16" -f "$D/cal.txt" --ctx 128 --max-chunks 2 --json -q 2>&1)
check w4a16_folder_loads '[[ "$p16" == *"\"ppl\": "* ]]'
py_16='import json,sys; q=json.load(open(sys.argv[1]))["quantization_config"]
sys.exit(0 if q["version"] == 2 and "ro" not in q["wakv"] else 1)'
check w4a16_version_2_without_ro 'python3 -c "$py_16" "$D/w16/config.json"'

# weight grids: symmetric, MSE-clipped, act-order (recorded in the folder, which loads and runs)
"$HARP_BIN" quantize -m "$ST" --hessians "$D/h" -o "$D/wg" $W --w-sym --w-clip --act-order -q >/dev/null 2>&1
py_wg='import json,sys; w=json.load(open(sys.argv[1]))["quantization_config"]["wakv"]["weights"]
sys.exit(0 if w["symmetric"] is True and w["clip"] == "mse" and w["act_order"] is True else 1)'
check weight_grid_flags_recorded '[[ -f "$D/wg/config.json" ]] && python3 -c "$py_wg" "$D/wg/config.json"'
pwg=$("$HARP_BIN" ppl -m "$D/wg" -f "$D/cal.txt" --ctx 128 --max-chunks 2 --json -q 2>&1)
check weight_grid_folder_loads '[[ "$pwg" == *"\"ppl\": "* ]]'

# ablation: the down-projection input left unquantized (activations.skip), reloads to the in-memory ppl
b=$("$HARP_BIN" quantize -m "$ST" --hessians "$D/h" -o "$D/wsd" $W --a-skip down --threads 1 --json -q --ppl "$D/cal.txt" \
    --ctx 128 --max-chunks 4)
nll_sd=$(echo "$b" | sed -n 's/.*"nll_mean": \([0-9.e+-]*\).*/\1/p')
nll_sd_disk=$("$HARP_BIN" ppl -m "$D/wsd" -f "$D/cal.txt" --ctx 128 --max-chunks 4 --json -q --threads 1 | sed -n 's/.*"nll_mean": \([0-9.e+-]*\).*/\1/p')
py_sd='import json,sys; a=json.load(open(sys.argv[1]))["quantization_config"]["wakv"]["activations"]
sys.exit(0 if a["skip"] == ["down"] else 1)'
check skip_down_recorded 'python3 -c "$py_sd" "$D/wsd/config.json"'
check skip_down_roundtrip '[[ -n "$nll_sd" ]] && python3 -c "import sys; sys.exit(0 if \"%.8f\" % float(sys.argv[1]) == sys.argv[2] and sys.argv[2] != sys.argv[3] else 1)" "$nll_sd" "$nll_sd_disk" "$nll_disk"'
# quantize into DIR with the extra flags, its nll in memory (q_mem) and reloaded from the folder (q_disk)
quant_both() {
  local qdir=$1 c; shift
  c=$("$HARP_BIN" quantize -m "$ST" --hessians "$D/h" -o "$qdir" "$@" --threads 1 --json -q --ppl "$D/cal.txt" --ctx 128 --max-chunks 4)
  q_mem=$(echo "$c" | sed -n 's/.*"nll_mean": \([0-9.e+-]*\).*/\1/p')
  q_disk=$("$HARP_BIN" ppl -m "$qdir" -f "$D/cal.txt" --ctx 128 --max-chunks 4 --json -q --threads 1 | sed -n 's/.*"nll_mean": \([0-9.e+-]*\).*/\1/p')
}
# grouped quantizers, recorded in the folder and reloading to the in-memory value (a folder that differs
# from the ungrouped one): group_case NAME DIR SECTION FLAG G
group_case() {
  local gname=$1 gdir=$D/$2 gsect=$3 gflag=$4 gsize=$5
  quant_both "$gdir" $W "$gflag" "$gsize"
  check "${gname}_recorded" 'python3 -c "import json,sys; a=json.load(open(sys.argv[1]))[\"quantization_config\"][\"wakv\"][sys.argv[2]]; sys.exit(0 if a[\"group_size\"] == int(sys.argv[3]) else 1)" "$gdir/config.json" "$gsect" "$gsize"'
  check "${gname}_roundtrip" '[[ -n "$q_mem" ]] && python3 -c "import sys; sys.exit(0 if \"%.8f\" % float(sys.argv[1]) == sys.argv[2] and sys.argv[2] != sys.argv[3] else 1)" "$q_mem" "$q_disk" "$nll_disk0"'
}
nll_disk0=$nll_disk
# activations in groups of 4 channels per token (--a-group; 4 divides 64 and 172); a group that does not
# divide the FFN width (32 ∤ 172) is refused with one line
group_case a_group wag activations --a-group 4
e=$("$HARP_BIN" quantize -m "$ST" --hessians "$D/h" -o "$D/wag32" $W --a-group 32 -q 2>&1 >/dev/null); rc=$?
check a_group_not_dividing_refused '[[ $rc -ne 0 && $(printf "%s\n" "$e" | wc -l) -eq 1 && "$e" == *"--a-group 32 does not divide the down input width 172"* ]]'
# K / V in groups of 4 channels per (token, head) (--kv-group; stories260K's head_dim is 8); a group that
# does not divide head_dim, or without a quantized cache, is refused with one line
group_case kv_group wkg kv_cache --kv-group 4
e=$("$HARP_BIN" quantize -m "$ST" --hessians "$D/h" -o "$D/wkg3" $W --kv-group 3 -q 2>&1 >/dev/null); rc=$?
check kv_group_not_dividing_refused '[[ $rc -ne 0 && $(printf "%s\n" "$e" | wc -l) -eq 1 && "$e" == *"--kv-group 3 does not divide head_dim 8"* ]]'
e=$("$HARP_BIN" quantize -m "$ST" --hessians "$D/h" -o "$D/wkg16" --method wakv --w-bits 4 --a-bits 4 --kv-group 4 -q 2>&1 >/dev/null); rc=$?
check kv_group_without_kv_bits_refused '[[ $rc -ne 0 && $(printf "%s\n" "$e" | wc -l) -eq 1 && "$e" == *"--kv-group"* ]]'
sed -i 's/"skip":[[:space:]]*\["down"/"skip": ["dwn"/' "$D/wsd/config.json"
e=$("$HARP_BIN" ppl -m "$D/wsd" -f "$D/cal.txt" --ctx 128 --max-chunks 1 -q 2>&1 >/dev/null); rc=$?
check skip_unknown_refused '[[ $rc -ne 0 && $(printf "%s\n" "$e" | wc -l) -eq 1 && "$e" == *"activations.skip"* ]]'

# the clip search (--clip-search, §6.3 ours) at each scope, on 2 windows of 128 calibration tokens:
# recorded (scope, loss), the ratios shared as the scope says (model: one for all activation inputs, one
# for K / V; class: one per class across layers; layer: free), each in (0, 1], and the folder's nll
# the in-memory one; the KLD loss likewise
search_case() {
  local sname=$1 sdir=$D/$2 sscope=$3 sloss=$4
  quant_both "$sdir" --calib "$D/cal.txt" --calib-ctx 128 --calib-nseq 8 $W --clip-search --search-iters 2 --search-windows 2 \
    --clip-scope "$sscope" --clip-loss "$sloss"
  check "${sname}_roundtrip" '[[ -n "$q_mem" ]] && python3 -c "import sys; sys.exit(0 if \"%.8f\" % float(sys.argv[1]) == sys.argv[2] else 1)" "$q_mem" "$q_disk"'
  check "${sname}_recorded" 'python3 -c "$py_search" "$sdir/config.json" "$sscope" "$sloss"'
}
py_search='import json,sys; w=json.load(open(sys.argv[1]))["quantization_config"]["wakv"]; cs=w["clip_search"]; c=w["clip"]
ok = cs["scope"] == sys.argv[2] and cs["loss"] == sys.argv[3] and cs["evaluations"] > 0 and cs["loss_tokens"] == 2 * 127
ok = ok and all(0 < v <= 1 for r in c for v in r) and len(c) == 5
n_act = len(set(v for r in c for v in r[:4])); n_kv = len(set(v for r in c for v in r[4:]))
per_class = all(len(set(r[k] for r in c)) == 1 for k in range(6))
if sys.argv[2] == "model": ok = ok and n_act == 1 and n_kv == 1
if sys.argv[2] == "class": ok = ok and per_class
sys.exit(0 if ok else 1)'
search_case search_model wsm model nll
search_case search_class wsc class nll
search_case search_layer_kld wsk layer kld

# W2A4KV4 with RCP's learned 2-bit levels (--w-quant ldp, issue 15): in-memory ppl == the folder's
c=$("$HARP_BIN" quantize -m "$ST" --hessians "$D/h" -o "$D/wl" --method wakv --w-bits 2 --a-bits 4 --kv-bits 4 --w-quant ldp \
    --w-group 32 --threads 1 --json -q --ppl "$D/cal.txt" --ctx 128 --max-chunks 4)
nll_l=$(echo "$c" | sed -n 's/.*"nll_mean": \([0-9.e+-]*\).*/\1/p')
nll_l_disk=$("$HARP_BIN" ppl -m "$D/wl" -f "$D/cal.txt" --ctx 128 --max-chunks 4 --json -q --threads 1 | sed -n 's/.*"nll_mean": \([0-9.e+-]*\).*/\1/p')
check ldp_w2a4kv4_roundtrip '[[ -n "$nll_l" ]] && python3 -c "import sys; sys.exit(0 if \"%.8f\" % float(sys.argv[1]) == sys.argv[2] else 1)" "$nll_l" "$nll_l_disk"'
check ldp_w2a4kv4_config 'grep -q "\"quant\":.*\"ldp\"" "$D/wl/config.json"'

# the same grids for a plain scalar folder: --method gptq --sym --mse-clip --act-order, recorded, loading
"$HARP_BIN" quantize -m "$ST" --hessians "$D/h0" -o "$D/g4" --method gptq --bits 4 --group 0 --sym --mse-clip \
  --act-order -q >/dev/null 2>&1
py_g4='import json,sys; q=json.load(open(sys.argv[1]))["quantization_config"]
sys.exit(0 if q["version"] == 1 and q["symmetric"] is True and q["grid_clip"] == "mse" and q["act_order"] == "static_groups" else 1)'
check gptq_grid_flags_recorded '[[ -f "$D/g4/config.json" ]] && python3 -c "$py_g4" "$D/g4/config.json"'
pg4=$("$HARP_BIN" ppl -m "$D/g4" -f "$D/cal.txt" --ctx 128 --max-chunks 2 --json -q 2>&1)
check gptq_grid_folder_loads '[[ "$pg4" == *"\"ppl\": "* ]]'

# impossible combinations: one line, usage exit code 2
bad() {
  local name=$1; shift
  local e; e=$("$HARP_BIN" quantize -m "$ST" --hessians "$D/h" -o "$D/bad" "$@" 2>&1 >/dev/null); local rc=$?
  check "refuse_$name" '[[ $rc -eq 2 && $(printf "%s\n" "$e" | wc -l) -eq 1 ]]'
  echo "     $e"
}
bad a_bits_with_quip --method quip --bits 2 --a-bits 4
bad kv_bits_with_gptq --method gptq --bits 4 --kv-bits 4
bad w_quant_quip $W --w-quant quip
bad a_bits_5 --method wakv --w-bits 4 --a-bits 5
bad kv_bits_1 --method wakv --w-bits 4 --kv-bits 1
bad w_bits_5 --method wakv --w-bits 5
bad rotation_rht $W --rotation rht
bad gsr_block_without_gsr $W --gsr-block 64
bad gsr_block_not_pow2 $W --rotation gsr --gsr-block 48
bad clip_search_nothing --method wakv --w-bits 4 --clip-search --calib "$D/cal.txt"
bad clip_search_no_calib $W --clip-search
bad clip_scope_without_search $W --clip-scope model
bad clip_scope_unknown $W --clip-search --calib "$D/cal.txt" --clip-scope net
bad clip_loss_unknown $W --clip-search --calib "$D/cal.txt" --clip-loss mse
bad no_w_bits --method wakv --a-bits 4
bad act_order_rtn $W --w-quant rtn --act-order
bad skip_down_a16 --method wakv --w-bits 4 --a-skip down
bad skip_unknown $W --a-skip dwn
bad skip_empty $W --a-skip ,
bad ldp_4bit --method wakv --w-bits 4 --a-bits 4 --w-quant ldp
bad ldp_w_clip --method wakv --w-bits 2 --w-quant ldp --w-clip
bad act_order_method_rtn --method rtn --bits 4 --act-order
bad sym_quip --method quip --bits 2 --sym
bad mse_clip_ldp --method ldp --bits 2 --mse-clip
[ $fail -eq 0 ] && echo ok
exit $fail
