#!/usr/bin/env bash
# Issue 13 acceptance 2 on ref-llama, on the GPU machine: QuIP#-RHT, QTIP-RHT and QTIP-HARP at 2 bits
# from the same Hessians, QTIP's Viterbi on the GPU (`--qtip-gpu`, bit-identical to the CPU's), then
# `harp ppl --gpu --kld-ref ref-llama` on the full ref-corpus test file (ctx 512).
# usage: scripts/gpu_qtip_ref.sh HARP WORK [HARP_STEPS=300] [THREADS=16]
#   HARP: a harp built with CUDA (or the pack's wrapper); $HARP_SHARED: the shared folder.
# Writes WORK/NAME.json per run ({"run": NAME, "quantize": <quantize --json>, "ppl": <ppl --json>});
# finished runs are skipped on a re-run.
set -u
H=$1; W=$2; STEPS=${3:-300}; T=${4:-16}
S=${HARP_SHARED:?set HARP_SHARED to the shared folder}
M=$S/models/ref-llama; TXT=$S/data/ref-corpus/test.txt
export OMP_WAIT_POLICY=passive
mkdir -p "$W"
[ -d "$W/hess" ] || "$H" calib -m "$M" -f "$S/data/ref-corpus/calib.txt" --threads "$T" -o "$W/hess" -q || exit 1
for run in quip2_rht qtip2_rht qtip2_harp; do
  [ -s "$W/$run.json" ] && continue
  case $run in
    quip2_rht) F="--method quip --bits 2 --rotation rht";;
    qtip2_rht) F="--method qtip --bits 2 --rotation rht --qtip-gpu";;
    qtip2_harp) F="--method qtip --bits 2 --rotation harp --harp-steps $STEPS --qtip-gpu";;
  esac
  t0=$(date +%s)
  q=$("$H" quantize -m "$M" --hessians "$W/hess" -o "$W/$run" $F --seed 0 --no-resume -t "$T" --json -q 2> "$W/$run.err") \
    || { echo "$run: quantize failed: $(tail -1 "$W/$run.err")" >&2; continue; }
  p=$("$H" ppl --gpu -m "$W/$run" -f "$TXT" --ctx 512 --json -q --kld-ref "$M" 2>> "$W/$run.err") \
    || { echo "$run: ppl failed: $(tail -1 "$W/$run.err")" >&2; continue; }
  echo "{\"run\": \"$run\", \"wall_s\": $(( $(date +%s) - t0 )), \"quantize\": $(echo "$q" | tr -d '\n'), \"ppl\": $(echo "$p" | tr -d '\n')}" > "$W/$run.json"
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); p=r['ppl']; print(r['run'], 'ppl %.4f'%p['ppl'], 'kld %.4f'%p['kld_mean'], 'top1 %.4f'%p['top1_agree'], 'wall', r['wall_s'], 's')" "$W/$run.json"
done
