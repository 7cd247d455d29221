#!/usr/bin/env bash
# Smoke test of `harp bench quant`: one JSON line per (shape, bits) with the documented fields and
# identical proxy loss at 1 and 2 threads; bad flags are usage errors (exit 2).
set -u
bin=${HARP_BIN:?}
export OMP_WAIT_POLICY=passive
a=$("$bin" bench quant --json --shapes 24x40 --bits 2,4 --tune 2 --threads 1) || { echo "bench failed"; exit 1; }
b=$("$bin" bench quant --json --shapes 24x40 --bits 2,4 --tune 2 --threads 2) || { echo "bench failed"; exit 1; }
n=$(printf '%s\n' "$a" | grep -c '^{"bench":"quant","method":"quip"')
[ "$n" -eq 2 ] || { echo "expected 2 JSON lines, got $n"; printf '%s\n' "$a"; exit 1; }
for f in bits m n threads seconds cpu_seconds proxy_loss; do
  printf '%s\n' "$a" | grep -q "\"$f\":" || { echo "field $f missing"; exit 1; }
done
pa=$(printf '%s\n' "$a" | grep -o '"proxy_loss":[^}]*')
pb=$(printf '%s\n' "$b" | grep -o '"proxy_loss":[^}]*')
[ "$pa" = "$pb" ] || { echo "proxy loss differs between 1 and 2 threads: $pa vs $pb"; exit 1; }
"$bin" bench quant --json --method gptq --act-order --shapes 24x40 --bits 3 >/dev/null || { echo "gptq failed"; exit 1; }
"$bin" bench quant --method foo >/dev/null 2>&1; [ $? -eq 2 ] || { echo "--method foo not a usage error"; exit 1; }
"$bin" bench quant --threads 0 >/dev/null 2>&1; [ $? -eq 2 ] || { echo "--threads 0 not a usage error"; exit 1; }
"$bin" bench quant --shapes 4x >/dev/null 2>&1; [ $? -eq 2 ] || { echo "--shapes 4x not a usage error"; exit 1; }
echo ok
