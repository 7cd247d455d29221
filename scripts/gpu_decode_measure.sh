#!/usr/bin/env bash
# The device-side measurement of docs/results/decode-gpu.md, shipped by scripts/gpu_decode_pack.sh as
# .gpu/gpu-helper/measure. Everything goes under $OUT (logs, JSON rows, Nsight Compute text, SASS);
# a short summary is printed last. STAGES (default "tests bench peer ncu sass") selects parts;
# BENCH_ARGS adds flags to harp bench gemv --gpu.
set -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$here/env.sh"
STAGES=${STAGES:-"tests bench peer ncu sass"}
has() { case " $STAGES " in *" $1 "*) return 0 ;; esac; return 1; }
t0=$(date +%s)
{
  echo "commit $(cat "$P/COMMIT")"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw,power.limit --format=csv
} >"$OUT/device.txt" 2>&1
cat "$OUT/device.txt"
if has tests; then
  timeout 200 "$here/run" test_dec_pack >"$OUT/tests.log" 2>&1; echo "test_dec_pack exit $?" | tee -a "$OUT/tests.log"
  timeout 300 "$here/run" test_dec_gpu >>"$OUT/tests.log" 2>&1; echo "test_dec_gpu exit $?" | tee -a "$OUT/tests.log"
  grep -E "CHECK|passed" "$OUT/tests.log" | head -40
fi
if has bench; then
  timeout 420 "$here/run" harp bench gemv --gpu --json --variants $BENCH_ARGS >"$OUT/bench.jsonl" 2>"$OUT/bench.err"
  echo "bench exit $? ($(wc -l <"$OUT/bench.jsonl") rows, $(( $(date +%s) - t0 )) s so far)"
  tail -3 "$OUT/bench.err"
fi
if has peer && [ -x "$P/bin/ggml_mulmat" ]; then
  for b in 1 4; do
    timeout 200 "$here/run" ggml_mulmat --batch $b >>"$OUT/ggml.jsonl" 2>>"$OUT/ggml.err"
    echo "ggml batch $b exit $?"
  done
  tail -3 "$OUT/ggml.err"
fi
if has ncu && command -v ncu >/dev/null; then
  timeout 300 "$here/runx" ncu --clock-control none --set full --kernel-name regex:gemv_kernel -- \
    harp bench gemv --gpu --profile --shapes 4096x4096,22016x4096 --qtypes e8p2,f16,int4,rvq4 >"$OUT/ncu_harp.txt" 2>&1
  echo "ncu harp exit $? ($(grep -c 'gemv_kernel' "$OUT/ncu_harp.txt") kernel sections)"
  if [ -x "$P/bin/ggml_mulmat" ]; then
    for t in iq2_xxs f16; do
      timeout 120 "$here/runx" ncu --clock-control none --set full --kernel-name regex:mul_mat_vec --launch-count 1 -- \
        ggml_mulmat --profile --types $t --shapes 4096x4096 >>"$OUT/ncu_ggml.txt" 2>&1
      echo "ncu ggml $t exit $?"
    done
  fi
fi
if has sass && command -v cuobjdump >/dev/null; then
  cuobjdump -sass "$P/bin/harp" 2>/dev/null | awk '/Function : /{keep = ($0 ~ /gemv_kernelILi(7|1|5)ELi8E/)} keep' >"$OUT/sass_gemv.txt"
  echo "sass: $(wc -l <"$OUT/sass_gemv.txt") lines"
fi
echo "== summary ($(( $(date +%s) - t0 )) s)"
python3 - "$OUT" <<'EOF' 2>/dev/null || true
import json, sys, os
out = sys.argv[1]
rows = [json.loads(l) for l in open(os.path.join(out, "bench.jsonl")) if l.strip().startswith("{")] if os.path.exists(os.path.join(out, "bench.jsonl")) else []
cp = [r for r in rows if r["kind"] == "copy"]
if cp: print("copy %.0f GB/s on %s" % (cp[0]["copy_gbps"], cp[0]["name"]))
for r in rows:
    if r["kind"] == "gemv" and r["batch"] == 1 and r["warps"] == 8:
        print("gemv   %-11s %-5s B1 %8.2f us %7.0f GB/s %5.1f%%" % (r["shape"], r["qtype"], r["us"], r["gbps"], r["pct_of_copy"]))
for r in rows:
    if r["kind"] == "linear" and r["batch"] == 1 and r["qtype"] in ("e8p2", "rvq4", "int4"):
        print("linear %-11s %-5s %-4s %8.2f us %7.0f GB/s" % (r["shape"], r["qtype"], r["rotation"], r["us"], r["gbps"]))
g = os.path.join(out, "ggml.jsonl")
if os.path.exists(g):
    for l in open(g):
        if l.startswith("{"):
            r = json.loads(l)
            if r["batch"] == 1: print("ggml   %-11s %-7s %8.2f us %7.0f GB/s" % (r["shape"], r["type"], r["us"], r["gbps"]))
EOF
