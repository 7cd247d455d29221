#!/usr/bin/env bash
# Smoke test of `harp bench gemv --quick --json`: every kind (14: qtip2 and ldp2 rows included) and regime appears once per shape (2 shapes x 2 regimes),
# each line is a JSON object with the documented fields, and bad flags are usage errors (exit 2).
set -u
bin=${HARP_BIN:?}
out=$("$bin" bench gemv --quick --json --min-time 0.001) || { echo "bench failed"; exit 1; }
n=$(printf '%s\n' "$out" | grep -c '^{"bench":"gemv"')
[ "$n" -eq 56 ] || { echo "expected 56 JSON lines, got $n"; printf '%s\n' "$out"; exit 1; }
for k in fp32 fp16 e8p2 e8p2_nohad rvq3 rvq4 e8p2_q8 rvq3_q8 rvq4_q8 e8p2_harp qtip2 qtip2_1mad ldp2 ldp2_a4; do
  for r in cache stream; do
    c=$(printf '%s\n' "$out" | grep -c "\"kind\":\"$k\",\"m\":[0-9]*,\"n\":[0-9]*,\"regime\":\"$r\"")
    [ "$c" -eq 2 ] || { echo "kind $k regime $r: $c lines"; exit 1; }
  done
done
for f in seconds gbps speedup_vs_fp32 speedup_vs_fp16 stored_bytes llc_bytes; do
  printf '%s\n' "$out" | grep -q "\"$f\":" || { echo "field $f missing"; exit 1; }
done
"$bin" bench gemv --threads 0 >/dev/null 2>&1; [ $? -eq 2 ] || { echo "--threads 0 not a usage error"; exit 1; }
"$bin" bench gemv --kinds fp64 >/dev/null 2>&1; [ $? -eq 2 ] || { echo "--kinds fp64 not a usage error"; exit 1; }
"$bin" bench gemv --shapes 4096 >/dev/null 2>&1; [ $? -eq 2 ] || { echo "--shapes 4096 not a usage error"; exit 1; }
echo ok
