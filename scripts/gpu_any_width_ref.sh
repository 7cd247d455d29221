#!/usr/bin/env bash
# Issue 18 on ref-llama (width 1536 = 2^9 · 3 … Had_12 stage), on the GPU machine: QuIP# 2-bit with RHT, with
# HARP on the greedy schedule and on the hadamard schedule, seeds in parallel, each fit on the GPU
# (`--harp-gpu`), then `harp ppl --gpu --kld-ref ref-llama` on the full ref-corpus test file (ctx 512).
# usage: scripts/gpu_any_width_ref.sh HARP WORK [STEPS=300] [SEEDS="0 1 2"] [THREADS=5]
#   HARP: a harp built with CUDA (or a wrapper such as the pack's); $HARP_SHARED: the shared folder.
# Writes WORK/run-CONFIG-sSEED.json per run and, at the end, all of them as WORK/runs.jsonl, in the format of scripts/results_harp_any_width.sh (one line per run, the
# quantize report and the ppl row; finished runs are skipped on a re-run) and WORK/fp.json, so that
# scripts/harp_any_width_table.py WORK prints the tables.
set -u
. "$(dirname "$0")/any_width_configs.sh"
H=$1; W=$2; STEPS=${3:-300}; SEEDS=${4:-"0 1 2"}; T=${5:-5}
S=${HARP_SHARED:?set HARP_SHARED to the shared folder}
M=$S/models/ref-llama; TXT=$S/data/ref-corpus/test.txt
export OMP_WAIT_POLICY=passive
mkdir -p "$W"
[ -d "$W/hess" ] || "$H" calib -m "$M" -f "$S/data/ref-corpus/calib.txt" --threads 16 -o "$W/hess" -q || exit 1
[ -f "$W/fp.json" ] || "$H" ppl --gpu -m "$M" -f "$TXT" --ctx 512 --json -q > "$W/fp.json"
one() {  # seed: every configuration of one seed, in order
  local seed=$1 cfg F O q p key
  for cfg in $AW_CONFIGS; do
    key="\"config\": \"$cfg\", \"seed\": $seed,"
    [ -s "$W/run-$cfg-s$seed.json" ] && continue
    F=$(aw_flags "$cfg" "$STEPS" "--harp-gpu")
    O="$W/$cfg-s$seed"
    q=$("$H" quantize -m "$M" --hessians "$W/hess" -o "$O" --method quip --bits 2 $F --seed "$seed" \
        --no-resume -t "$T" --json -q 2> "$O.err") || { echo "quantize $cfg seed $seed failed: $(tail -1 "$O.err")" >&2; continue; }
    p=$("$H" ppl --gpu -m "$O" -f "$TXT" --ctx 512 --json -q --kld-ref "$M" 2>> "$O.err") \
      || { echo "ppl $cfg seed $seed failed: $(tail -1 "$O.err")" >&2; continue; }
    echo "{$key \"quantize\": $(echo "$q" | tr -d '\n'), \"ppl\": $(echo "$p" | tr -d '\n')}" > "$W/run-$cfg-s$seed.json.tmp" \
      && mv "$W/run-$cfg-s$seed.json.tmp" "$W/run-$cfg-s$seed.json"
    echo "done $cfg seed $seed" >&2
  done
}
for seed in $SEEDS; do one "$seed" & done
wait
cat "$W"/run-*.json > "$W/runs.jsonl" 2>/dev/null   # one file per run: parallel seeds never interleave
