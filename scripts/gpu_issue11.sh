#!/usr/bin/env bash
# Issue 11 acceptance on the GPU machine, from a pack made by
#   EXTRA_BINS="<old harp (CPU)> <old harp-old-cuda>" EXTRA_MODELS="<stories folders of the old build>" bash scripts/gpu_pack.sh
# (binaries named harp-old and harp-old-cuda): the gpu tests, `ppl --gpu` of the old and new builds on
# ref-llama and the folders, scripts/bench_ab.sh (CPU, 16 threads), scripts/bench_rht_ppl.sh and the
# stories260K any-width schedules. Device: carry .gpu/pack; run `bash scripts/gpu_issue11.sh [STAGE...]`
# with STAGE among tests ppl ab rht aw (default: all).
set -uo pipefail
R=$(pwd); P=${PACK:-$R/.gpu/pack}
S=$($P/harp --where)
mk() { printf '#!/bin/sh\nHARP_PACK_BIN=%s exec %s/harp "$@"\n' "$2" "$P" > /tmp/$1; chmod +x /tmp/$1; }
mk hnew harp; mk hold ${OLD_CPU:-harp-old}; mk holdcuda harp-old-cuda   # OLD_CPU=harp-old-cuda where a pack has only that one
nvidia-smi -L; nproc
stages=" ${*:-tests ppl ab rht aw} "   # also: blas (OpenBLAS thread-count check of the ppl row)
has() { case "$stages" in *" $1 "*) return 0 ;; esac; return 1; }
has tests && { echo "== gpu tests"; timeout 150 $P/gpu-tests > $OUT/gpu-tests.log 2>&1; echo "gpu-tests rc=$?"; grep -E "^== |PASS|FAIL|pass|fail" $OUT/gpu-tests.log | tail -30; }
has ppl && {
echo "== ppl --gpu old vs new"
for b in holdcuda hnew; do
  for t in ref-corpus/test.txt wikitext-2-raw/wiki.test.raw; do
    [ -f $S/data/$t ] || continue   # a pack may leave WikiText-2 out (carry limit)
    /tmp/$b ppl --gpu --json -q --ctx 512 -m $S/models/ref-llama -f $S/data/$t | sed "s|^|$b ref-llama $t |"
  done
  for m in st_quip2_rht st_quip2_harp st_gptq4; do
    /tmp/$b ppl --gpu --json -q --ctx 128 --max-chunks 40 -m $S/models/$m -f $S/data/tinystories/val_head.txt | sed "s|^|$b $m |"
  done
done 2>&1 | tee $OUT/ppl-gpu.txt | cut -c1-400
}
has ab && {
echo "== bench_ab (CPU, 16 threads)"
lscpu | grep -E "^(Model name|CPU\(s\)|Thread|Core|Socket|NUMA node\(s\))" | tr -s ' '
# the gemv half in the cache regime only (the streaming regime's setup alone outlasts a device command)
AB_THREADS=16 AB_REF_WINDOWS=8 AB_GEMV_ARGS="--shapes 4096x4096,11008x4096 --regime cache --min-time 0.2 --kinds fp32,fp16,e8p2,e8p2_nohad,rvq3,rvq4,e8p2_q8,rvq3_q8,rvq4_q8,e8p2_harp" \
  HARP_SHARED=$S timeout ${AB_TIMEOUT:-420} bash scripts/bench_ab.sh /tmp/hold /tmp/hnew ${AB_RUNS:-5} 2>&1 | tee $OUT/ab.jsonl | grep -v '"gemv"' 
python3 - $OUT/ab.jsonl <<'PY'
import json,sys
rows=[json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
g=[r for r in rows if r['name']=='gemv']
for r in g: print(r.get('kind'),r.get('m'),r.get('n'),r.get('regime'),r['new_over_old'])
PY
}
has blas && {
echo "== ref-llama fp32 bench ppl, 16 threads, OpenBLAS threads from the environment as well (old, new alternated)"
for i in 1 2 3 4 5; do for b in hold hnew; do for ob in unset 16; do
  if [ $ob = unset ]; then r=$(/tmp/$b bench ppl -m $S/models/ref-llama -f $S/data/ref-corpus/test.txt --ctx 512 --windows 8 --threads 16 --json 2>/dev/null)
  else r=$(OPENBLAS_NUM_THREADS=$ob /tmp/$b bench ppl -m $S/models/ref-llama -f $S/data/ref-corpus/test.txt --ctx 512 --windows 8 --threads 16 --json 2>/dev/null); fi
  echo "$b openblas=$ob $(echo "$r" | tr -d '\n' | cut -c1-400)"
done; done; done | tee $OUT/blas.txt
}
has rht && {
echo "== rht vs harp folder ppl speed (issue 17 item 7), new and old"
timeout 90 bash scripts/bench_rht_ppl.sh /tmp/hnew $S /tmp/rhtw 3 /tmp/hold 2>&1 | tee $OUT/rht.jsonl
}
has aw || exit 0
echo "== issue 18: stories260K any-width schedules (3 seeds)"
timeout 170 bash scripts/results_harp_any_width.sh /tmp/hnew $S/models/stories260K/stories260K.bin /tmp/rhtw/hess /tmp/rhtw/eval.txt /tmp/aw 256 10 "0 1 2" 1200 16 2>&1 | tail -3
cp /tmp/aw/runs.jsonl $OUT/aw-runs.jsonl 2>/dev/null; cp /tmp/aw/fp.json $OUT/aw-fp.json 2>/dev/null
python3 scripts/harp_any_width_table.py /tmp/aw 2>&1 | head -40
