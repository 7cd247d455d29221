#!/usr/bin/env bash
# harp quantize --method ldp (RCP's non-uniform 2-bit levels, ldp2) on stories260K: the folder loads
# through the qformat loader and gives bit-identical logits to the in-memory model (--ppl), the
# same bytes for 1 and 2 threads, info names the method, and bad combinations are usage errors.
set -u
. "$(dirname "$0")/lib.bash"
ST="$HARP_SHARED/models/stories260K/stories260K.bin"; TXT="$HARP_SHARED/data/tinystories/val_head.txt"
[ -f "$ST" ] && [ -f "$TXT" ] || { echo "SKIP: stories260K or tinystories text missing"; exit 77; }
fail=0
D="$HARP_TMP/quantize_ldp"; rm -rf "$D"; mkdir -p "$D"
head -c 60000 "$TXT" > "$D/cal.txt"
"$HARP_BIN" calib -m "$ST" -f "$D/cal.txt" --ctx 128 --nseq 16 -o "$D/hess" --json -q >/dev/null || { echo "FAIL calib"; exit 1; }
Q="--hessians $D/hess --json -q --method ldp --bits 2"
P="--ctx 128 --max-chunks 4"
for g in 32 0; do
  a=$("$HARP_BIN" quantize -m "$ST" $Q --group $g -o "$D/l$g" --threads 1 --ppl "$D/cal.txt" $P --save-logits "$D/l${g}_mem.logits")
  "$HARP_BIN" quantize -m "$ST" $Q --group $g -o "$D/l${g}b" --threads 2 >/dev/null
  "$HARP_BIN" ppl -m "$D/l$g" -f "$D/cal.txt" $P --json -q --threads 1 --save-logits "$D/l${g}_disk.logits" >/dev/null
  echo "ldp group $g: $(echo "$a" | grep -o '"ppl": [0-9.]*') $(echo "$a" | grep -o '"bpw": [0-9.]*' | head -1)"
  bpw[$g]=$(echo "$a" | grep -o '"bpw": [0-9.]*' | head -1 | grep -o '[0-9][0-9.]*')
  check "ldp_g${g}_roundtrip_logits_identical" '[[ -s "$D/l${g}_mem.logits" ]] && cmp "$D/l${g}_mem.logits" "$D/l${g}_disk.logits"'
  check "ldp_g${g}_threads_identical" 'cmp -s "$D/l$g/model.safetensors" "$D/l${g}b/model.safetensors"'
done
# 4 fp16 levels per group: 2 + 64/g bits per weight of codes + levels (+ slice scales)
check ldp_bpw_by_group 'python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if 4.0 < a < 4.1 and 2.0 < b < 3.0 else 1)" ${bpw[32]} ${bpw[0]}'
info=$("$HARP_BIN" info -m "$D/l32")
check info_shows_ldp '[[ "$info" == *"quantization: harp v1: ldp 2-bit"*"group 32"* ]]'
# with a rotation (RHT signs + Hadamard around the ldp2 codes)
r=$("$HARP_BIN" quantize -m "$ST" $Q --rotation rht -o "$D/lr" --threads 1 --ppl "$D/cal.txt" $P --save-logits "$D/lr_mem.logits")
"$HARP_BIN" ppl -m "$D/lr" -f "$D/cal.txt" $P --json -q --threads 1 --save-logits "$D/lr_disk.logits" >/dev/null
check ldp_rht_roundtrip_logits_identical '[[ -s "$D/lr_mem.logits" ]] && cmp "$D/lr_mem.logits" "$D/lr_disk.logits"'
"$HARP_BIN" quantize -m "$ST" --hessians "$D/hess" -o "$D/bad" --method ldp --bits 3 >/dev/null 2>"$D/bad.err"
check ldp_bits3_usage '[[ $? == 2 ]] && grep -q "ldp must be 2" "$D/bad.err"'
"$HARP_BIN" quantize -m "$ST" --hessians "$D/hess" -o "$D/bad" --method ldp --rotation harp >/dev/null 2>"$D/bad.err"
check ldp_harp_rotation_refused '[[ $? != 0 ]] && grep -q "ldp does not fit HARP rotations" "$D/bad.err"'
# a corrupted levels plane (levels out of order) is one clear error naming the tensor
python3 - "$D/l32/model.safetensors" <<'PY' || { echo "FAIL corrupt_setup"; fail=1; }
import json, struct, sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n]); name = "model.layers.0.self_attn.qkv_proj.levels"; o = 8 + n + h[name]["data_offsets"][0]
b[o:o + 4] = struct.pack("<HH", 0x3C00, 0xBC00)   # fp16 1.0 then -1.0
open(p, "wb").write(b)
PY
"$HARP_BIN" ppl -m "$D/l32" -f "$D/cal.txt" $P -q >/dev/null 2>"$D/corrupt.err"
check corrupt_levels_error '[[ $? != 0 ]] && [[ $(wc -l < "$D/corrupt.err") -le 2 ]] && grep -q "qkv_proj.levels" "$D/corrupt.err" && grep -q "increasing order" "$D/corrupt.err"'
cat "$D/corrupt.err"
exit $fail
