#!/usr/bin/env bash
# QTIP vs QuIP# on ref-llama on this CPU (docs/results/qtip.md): Hessians from
# `harp calib -m ref-llama -f ref-corpus/calib.txt -o HESS` (given), evaluation on the first
# CHUNKS windows of 512 tokens of ref-corpus/test.txt, KLD against the fp model's saved logits.
# usage: scripts/results_qtip_ref.sh HARP_BIN SHARED_DIR HESS_DIR WORK_DIR CHUNKS [NAME ...]
# NAME: quip2_rht qtip2_hyb qtip2_1mad qtip2_3inst (default: quip2_rht qtip2_hyb)
set -euo pipefail
harp=$(readlink -f "$1"); shared=$(readlink -f "$2"); hess=$(readlink -f "$3"); work=$4; chunks=$5; shift 5
names=${*:-"qtip2_hyb quip2_rht"}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
mkdir -p "$work" && cd "$work"
ref=$shared/models/ref-llama
ev=(-f "$shared/data/ref-corpus/test.txt" --ctx 512 --max-chunks "$chunks" -q --json)
[ -f fp.logits ] || "$harp" ppl -m "$ref" "${ev[@]}" --save-logits fp.logits > fp.ppl.json
for n in $names; do
  case $n in
    quip2_rht) a="--method quip --bits 2" ;;
    qtip2_hyb) a="--method qtip --bits 2 --qtip-code hyb" ;;
    qtip2_1mad) a="--method qtip --bits 2 --qtip-code 1mad" ;;
    qtip2_3inst) a="--method qtip --bits 2 --qtip-code 3inst" ;;
    *) echo "unknown run $n" >&2; exit 2 ;;
  esac
  # shellcheck disable=SC2086
  "$harp" quantize -m "$ref" --hessians "$hess" -o "$n" $a --seed 0 --force --no-resume -q --json > "$n.quantize.json"
  "$harp" ppl -m "$n" "${ev[@]}" --kld-base fp.logits > "$n.ppl.json"
  python3 - "$n" <<'PY'
import json, sys
n = sys.argv[1]
q = json.load(open(n + ".quantize.json")); p = json.load(open(n + ".ppl.json"))
print(json.dumps({"run": n, "ppl": p["ppl"], "kld": p["kld_mean"], "top1": p["top1_agree"], "bpw": q["bpw"],
                  "seconds": q.get("seconds"), "tokens": p["n_tokens_scored"]}))
PY
done
