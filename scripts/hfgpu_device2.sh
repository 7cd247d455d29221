#!/usr/bin/env bash
# Second device run for the GPU HARP fit: the test after the near-tie accounting, and the fit bench
# with the CPU rows beside the GPU rows (16 CPU threads). carry=[".gpu/hfgpu"]; writes $OUT/hfgpu2.txt.
set -u
D=.gpu/hfgpu; H=$D/harp; . $D/env.sh
L="$P/lib/ld-linux-x86-64.so.2 --library-path $LP"
export OMP_WAIT_POLICY=passive HARP_TMP=/tmp
{
  nvidia-smi --query-gpu=name --format=csv,noheader; echo "commit $(cat $P/COMMIT)"
  echo "== test_harpfit_gpu"
  /usr/bin/time -f "test wall %e s" timeout 200 $L $P/bin/test_harpfit_gpu; echo "test exit $?"
  echo "== bench harp --gpu --skip-apply (CPU rows: 16 threads)"
  timeout 240 $H bench harp --gpu --skip-apply --gpu-steps 200; echo "bench exit $?"
} > $OUT/hfgpu2.txt 2>&1
cat $OUT/hfgpu2.txt
{
  echo "== bench harp --gpu --skip-cpu --skip-apply with OMP_WAIT_POLICY=active (host-side overhead check)"
  OMP_WAIT_POLICY=active timeout 60 $H bench harp --gpu --skip-cpu --skip-apply --gpu-steps 200; echo "bench exit $?"
} >> $OUT/hfgpu2.txt 2>&1
tail -9 $OUT/hfgpu2.txt
