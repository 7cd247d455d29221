#!/usr/bin/env bash
# Results table for docs/results/quant-stories260k.md: stories260K, Hessians from the first 400 kB of
# TinyStories val_head.txt, perplexity on the rest (ctx 256, first 40 windows), RTN/GPTQ/QuIP# at 2/3/4 bits.
# usage: scripts/results_quant_stories.sh HARP_BIN SHARED_DIR WORK_DIR
set -eu
H=$1; S=$2; W=$3
M=$S/models/stories260K/stories260K.bin
mkdir -p "$W"
head -c 400000 "$S/data/tinystories/val_head.txt" > "$W/calib.txt"
tail -c +400001 "$S/data/tinystories/val_head.txt" > "$W/eval.txt"
"$H" calib -m "$M" -f "$W/calib.txt" --ctx 256 --nseq 0 -o "$W/hess" -q
echo "FP: $("$H" ppl -m "$M" -f "$W/eval.txt" --ctx 256 --max-chunks 40 --json -q)"
for method in rtn gptq quip; do
  for bits in 2 3 4; do
    echo "$method $bits: $("$H" quantize -m "$M" --hessians "$W/hess" -o "$W/$method$bits" --method $method --bits $bits --force \
          --seed 0 --ppl "$W/eval.txt" --ctx 256 --max-chunks 40 --json -q | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({k: d[k] for k in ("bpw","seconds","ppl","n_tokens_scored")}))')"
  done
done
echo "quip 2 norot: $("$H" quantize -m "$M" --hessians "$W/hess" -o "$W/quip2none" --method quip --bits 2 --rotation none --force \
      --seed 0 --ppl "$W/eval.txt" --ctx 256 --max-chunks 40 --json -q | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({k: d[k] for k in ("bpw","seconds","ppl","n_tokens_scored")}))')"
