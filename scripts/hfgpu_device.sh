#!/usr/bin/env bash
# One device run for the GPU HARP fit (docs/gpu.md "HARP fit on the GPU"), after
#   DEST=/work/main/.gpu/hfgpu bash scripts/gpu_pack.sh /work/main/.gpu/hfgpu && cp scripts/hfgpu_device.sh /work/main/.gpu/hfgpu/
# and run with carry=[".gpu/hfgpu"]: bash .gpu/hfgpu/hfgpu_device.sh
# Writes $OUT/hfgpu.txt (test, bench, timings) and $OUT/q_harp2_gpu.json (the quantize --json report).
set -u
D=.gpu/hfgpu; H=$D/harp; . $D/env.sh; S=$($H --where); W=/tmp/w; mkdir -p $W; M=$S/models/ref-llama
L="$P/lib/ld-linux-x86-64.so.2 --library-path $LP"
log=$OUT/hfgpu.txt
export OMP_WAIT_POLICY=passive HARP_TMP=/tmp
{
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  echo "commit $(cat $P/COMMIT)"
  echo "== test_harpfit_gpu"
  /usr/bin/time -f "test wall %e s" timeout 150 $L $P/bin/test_harpfit_gpu; echo "test exit $?"
  echo "== bench harp --gpu --skip-cpu --skip-apply"
  timeout 120 $H bench harp --gpu --skip-cpu --skip-apply --gpu-steps 200; echo "bench exit $?"
  echo "== calib"
  /usr/bin/time -f "calib wall %e s" timeout 150 $H calib -m $M -f $S/data/ref-corpus/calib.txt -o $W/hess -q --threads 16; echo "calib exit $?"
  echo "== quantize quip 2-bit harp --harp-gpu (1200 steps)"
  /usr/bin/time -f "quantize wall %e s" timeout 300 $H quantize -m $M --hessians $W/hess -o $W/harp2 --method quip --bits 2 \
    --rotation harp --harp-gpu --seed 0 --threads 16 --json -q > $OUT/q_harp2_gpu.json 2> $W/q.err
  echo "quantize exit $?"; tail -5 $W/q.err
} > $log 2>&1
cat $log
