#!/usr/bin/env bash
# Results of docs/results/harp-any-width.md (issue 18): QuIP# 2-bit with RHT, with HARP on the
# reference's greedy schedule, and with HARP on the hadamard schedule (fixed Had_K stage, equal to the
# RHT at θ = 0), per seed: the per-linear proxy loss at 0 fitting steps (greedy; the hadamard schedule
# at 0 steps is the RHT bit for bit, tests/test_harpfit_hadamard.c and test_qmodel_harp) and after
# fitting, perplexity and KL(FP ‖ quantized) on an evaluation text.
# usage: scripts/results_harp_any_width.sh HARP_BIN MODEL HESS_DIR EVAL_TEXT WORK_DIR CTX MAX_CHUNKS \
#            [SEEDS="0 1 2"] [STEPS=1200] [THREADS=2]
# Writes WORK_DIR/runs.jsonl (one line per run; finished runs are skipped on a re-run):
#   {"config": "rht"|"greedy0"|"greedy"|"hadamard", "seed": S, "quantize": <quantize --json>, "ppl": <ppl --json>}
# and WORK_DIR/fp.json (the FP model on the same windows). Tables: scripts/harp_any_width_table.py.
set -eu
. "$(dirname "$0")/any_width_configs.sh"
H=$1; M=$2; HESS=$3; TXT=$4; W=$5; CTX=$6; MC=$7; SEEDS=${8:-"0 1 2"}; STEPS=${9:-1200}; T=${10:-2}
export OMP_WAIT_POLICY=passive   # the HARP fit runs many small parallel regions (docs/cli/quantize.md)
mkdir -p "$W"
E="--ctx $CTX --max-chunks $MC"
[ -f "$W/fp.json" ] || "$H" ppl -m "$M" -f "$TXT" $E --json -q -t "$T" --save-logits "$W/fp.logits" > "$W/fp.json"
touch "$W/runs.jsonl"
for seed in $SEEDS; do
  for cfg in $AW_CONFIGS; do
    key="\"config\": \"$cfg\", \"seed\": $seed,"
    grep -qF "$key" "$W/runs.jsonl" && continue
    F=$(aw_flags "$cfg" "$STEPS")
    O="$W/$cfg-s$seed"
    q=$("$H" quantize -m "$M" --hessians "$HESS" -o "$O" --method quip --bits 2 $F --seed "$seed" --no-resume -t "$T" --json -q)
    p=$("$H" ppl -m "$O" -f "$TXT" $E --json -q -t "$T" --kld-base "$W/fp.logits")
    echo "{$key \"quantize\": $q, \"ppl\": $p}" >> "$W/runs.jsonl"
    echo "done $cfg seed $seed" >&2
  done
done
