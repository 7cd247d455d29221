#!/usr/bin/env bash
# Perplexity-path throughput of a QuIP#-RHT folder against a QuIP#-HARP folder of the same model, in one
# run (issue 17 item 7: the dense Had_K of non-power-of-two widths must not make RHT the slow path).
# stories260K at 2 bits (widths 64, 128, 172 = Had_172 alone, 344 = Had_172 ⊗ H_2), Hessians from the
# first 100 kB of TinyStories val_head.txt; `harp ppl -t 1 --ctx 256 --max-chunks 10` on the rest,
# REPS times alternating; best tokens/s of each and the ratio HARP/RHT (acceptance: ≤ 1.5).
# usage: scripts/bench_rht_ppl.sh HARP_BIN SHARED_DIR WORK_DIR [REPS=3] [OTHER_HARP_BIN]
# OTHER_HARP_BIN: a second binary timed on the same folders in the same loop (e.g. an older build).
set -eu
H=$1; S=$2; W=$3; REPS=${4:-3}; H2=${5:-}
export OMP_WAIT_POLICY=passive
M=$S/models/stories260K/stories260K.bin
mkdir -p "$W"
head -c 100000 "$S/data/tinystories/val_head.txt" > "$W/calib.txt"
tail -c +100001 "$S/data/tinystories/val_head.txt" > "$W/eval.txt"
[ -f "$W/hess/layer_004.hess" ] || "$H" calib -m "$M" -f "$W/calib.txt" --ctx 256 -o "$W/hess" -q
for rot in rht harp; do
  steps=""; [ $rot = harp ] && steps="--harp-steps 30"   # the flag is refused with other rotations
  [ -f "$W/$rot/config.json" ] || "$H" quantize -m "$M" --hessians "$W/hess" -o "$W/$rot" --method quip --bits 2 \
      --rotation $rot $steps --seed 0 -t 1 -q > /dev/null
done
tps() { "$1" ppl -m "$2" -f "$W/eval.txt" --ctx 256 --max-chunks 10 -t 1 --json -q | sed -n 's/.*"tokens_per_second": *\([0-9.]*\).*/\1/p'; }
for bin in "$H" ${H2:+"$H2"}; do
  best_r=0; best_h=0
  for i in $(seq "$REPS"); do
    r=$(tps "$bin" "$W/rht"); h=$(tps "$bin" "$W/harp")
    best_r=$(awk -v a="$best_r" -v b="$r" 'BEGIN { print (b > a ? b : a) }')
    best_h=$(awk -v a="$best_h" -v b="$h" 'BEGIN { print (b > a ? b : a) }')
  done
  awk -v b="$bin" -v r="$best_r" -v h="$best_h" \
      'BEGIN { printf "{\"bin\": \"%s\", \"rht_tok_s\": %.1f, \"harp_tok_s\": %.1f, \"harp_over_rht\": %.3f, \"met\": %s}\n", b, r, h, h / r, (h / r <= 1.5 ? "true" : "false") }'
done
