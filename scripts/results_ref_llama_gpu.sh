#!/usr/bin/env bash
# Run on the GPU machine after scripts/gpu_pack.sh, with the script copied into .gpu/pack and carry=[".gpu/pack"]:
#   bash .gpu/pack/results_ref_llama_gpu.sh   (docs/results/quant-ref-llama.md)
# ref-llama quantization table (issue #4): calib, 10 quantizations in parallel on the CPUs, GPU ppl/KLD.
set -u
P=.gpu/pack; H=$P/harp; S=$($H --where); W=/tmp/w; mkdir -p $W; M=$S/models/ref-llama
export OMP_WAIT_POLICY=passive
t0=$(date +%s)
/usr/bin/time -f "calib wall %e s" $H calib -m $M -f $S/data/ref-corpus/calib.txt -o $W/hess -q --threads 16 > $OUT/calib.txt 2>&1
echo "calib done $(( $(date +%s)-t0 )) s"
cfgs="rtn:2:none rtn:3:none rtn:4:none gptq:2:none gptq:3:none gptq:4:none quip:2:rht quip:3:rht quip:4:rht quip:2:none"
for c in $cfgs; do IFS=: read me b r <<<"$c"; n=$me$b-$r
  ( /usr/bin/time -f "$n quantize wall %e s" $H quantize -m $M --hessians $W/hess -o $W/$n --method $me --bits $b --rotation $r --seed 0 --threads 2 --force --json -q > $OUT/q_$n.json 2> $W/$n.err; tail -1 $W/$n.err ) &
done
wait
echo "quantize done $(( $(date +%s)-t0 )) s"
for c in fp $cfgs; do IFS=: read me b r <<<"$c"; n=$me$b-$r; d=$W/$n; [ $c = fp ] && { n=fp; d=$M; }
  for t in ref-corpus/test.txt wikitext-2-raw/wiki.test.raw; do
    j=$($H ppl --gpu --json -q --ctx 512 -m $d -f $S/data/$t --kld-ref $M 2>>$OUT/ppl.err | tr -d '\n')
    echo "{\"cfg\":\"$n\",\"text\":\"$t\",\"r\":$j}"
  done
done > $OUT/results.jsonl
echo "all done $(( $(date +%s)-t0 )) s"
cat $OUT/results.jsonl | cut -c1-300
