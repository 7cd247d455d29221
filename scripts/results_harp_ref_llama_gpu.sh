#!/usr/bin/env bash
# HARP vs RHT on ref-llama (issue #5, acceptance 2–4; docs/results/harp-ref-llama.md).
# Run on the GPU machine after scripts/gpu_pack.sh, with this script copied into .gpu/pack and
# carry=[".gpu/pack"]:   bash .gpu/pack/results_harp_ref_llama_gpu.sh [JOBS]
# Calibrates once (16 threads), then runs a pool of JOBS (default 8) quantize jobs at --threads 2:
# QuIP#-RHT and QuIP#-HARP (fit on the GPU, --harp-gpu) at 2/3/4 bits × seeds 0,1,2, and the 2-bit
# ablations (λ = 0, fp16 θ, 300 steps; seeds 0,1,2); each job evaluates its folder right away with
# `harp ppl --gpu --kld-ref` on ref-corpus test and WikiText-2 (ctx 512, full files).
# Output under $OUT (few files, the device returns at most 8): results.jsonl (one line per job and
# text: ppl, KLD, quantize wall seconds), reports.jsonl (quantize --json per job), log.txt.
# Overrides for a local dry run (no GPU): HARP=path/to/harp SHARED=dir MODEL=... CALIB="calib args"
# TEXTS="a b" GPU="" (no --gpu / --harp-gpu) SEEDS="0" EXTRA="--harp-steps 5" OUT=dir.
set -u
JOBS=${1:-8}
P=$(cd "$(dirname "$0")" && pwd); H=${HARP:-$P/harp}; S=${SHARED:-$($H --where)}; W=${WORK:-/tmp/hw}; mkdir -p $W
M=${MODEL:-$S/models/ref-llama}
CALIB=${CALIB:--f $S/data/ref-corpus/calib.txt --threads 16}
TEXTS=${TEXTS:-ref-corpus/test.txt wikitext-2-raw/wiki.test.raw}
GPU=${GPU-1}; SEEDS=${SEEDS:-0 1 2}; EXTRA=${EXTRA:-}; DEADLINE=${DEADLINE:-100000}
ABL_SEEDS=${ABL_SEEDS:-$SEEDS}; ONLY=${ONLY:-}   # ONLY: regex of job names to run (e.g. a second call)
PPLG=; HG=; [ -n "$GPU" ] && PPLG="--gpu --kld-ref $M" && HG=--harp-gpu
export OMP_WAIT_POLICY=passive H S W M OUT TEXTS PPLG
t0=$(date +%s)
[ -d $W/hess ] && [ -n "${REUSE_HESS:-}" ] || \
{ /usr/bin/time -f "calib wall %e s" $H calib -m $M $CALIB -o $W/hess -q; } > $W/calib.log 2>&1
echo "calib done $(( $(date +%s)-t0 )) s: $(tail -1 $W/calib.log)" >> $OUT/log.txt

job() {  # name method-args...
  n=$1; shift
  # a device command has 600 s: start no job after DEADLINE s, so that running ones can finish
  if [ $(( $(date +%s) - t0 )) -gt "$DEADLINE" ]; then echo "$n skipped (deadline)" >> $OUT/log.txt; return; fi
  a=$(date +%s.%N)
  if $H quantize -m $M --hessians $W/hess -o $W/$n --method quip --threads 2 --force --json -q "$@" > $W/$n.json 2> $W/$n.err; then
    b=$(date +%s.%N)
    echo "{\"cfg\":\"$n\",\"report\":$(tr -d '\n' < $W/$n.json)}" >> $OUT/reports.jsonl
    for t in $TEXTS; do
      j=$($H ppl $PPLG --json -q --ctx 512 -m $W/$n -f $S/data/$t 2>>$W/$n.err | tr -d '\n')
      echo "{\"cfg\":\"$n\",\"text\":\"$t\",\"quantize_wall_s\":$(awk -v a=$a -v b=$b "BEGIN{printf \"%.1f\", b-a}"),\"args\":\"$*\",\"r\":${j:-null}}" >> $OUT/results.jsonl
    done
    rm -rf $W/$n
  else
    echo "$n FAILED: $(tail -2 $W/$n.err | tr '\n' ' ')" >> $OUT/log.txt
  fi
  echo "$n done at $(( $(date +%s)-t0 )) s" >> $OUT/log.txt
}
export -f job; export t0 DEADLINE

{
  # seed 0 of everything first, so that a cut-off run still has one full comparison
  for s in $SEEDS; do
    for b in 2 3 4; do
      echo "harp$b-s$s --bits $b --rotation harp $HG --seed $s $EXTRA"
      echo "rht$b-s$s --bits $b --rotation rht --seed $s"
    done
    case " $ABL_SEEDS " in *" $s "*)
      echo "harp2-lambda0-s$s --bits 2 --rotation harp $HG --harp-hbd-lambda 0 --seed $s $EXTRA"
      echo "harp2-fp16-s$s --bits 2 --rotation harp $HG --harp-theta fp16 --seed $s $EXTRA"
      echo "harp2-steps300-s$s --bits 2 --rotation harp $HG --harp-steps 300 --seed $s" ;;
    esac
  done
} | sed "s/ *$//" | { if [ -n "$ONLY" ]; then grep -E "^($ONLY) "; else cat; fi; } | xargs -P "$JOBS" -L 1 bash -c 'job "$@"' _
echo "all done $(( $(date +%s)-t0 )) s" >> $OUT/log.txt
cat $OUT/log.txt
