#!/usr/bin/env bash
# QTIP vs QuIP# on stories260K (docs/results/qtip.md): Hessians on the first 400 000 bytes of
# tinystories/val_head.txt (ctx 256, all windows), evaluation on the rest (ctx 256, first 40
# windows), KLD against the fp32 model's saved logits (harp ppl --kld-base).
# usage: scripts/results_qtip_stories.sh HARP_BIN SHARED_DIR WORK_DIR [NAME ...]
# NAME: quip2_rht qtip2_hyb qtip2_1mad qtip2_3inst qtip3_hyb qtip4_hyb qtip2_hyb_harp (default: all but harp)
set -euo pipefail
harp=$(readlink -f "$1"); shared=$(readlink -f "$2"); work=$3; shift 3
names=${*:-"quip2_rht qtip2_hyb qtip2_1mad qtip2_3inst qtip3_hyb qtip4_hyb quip3_rht quip4_rht"}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
mkdir -p "$work" && cd "$work"
st=$shared/models/stories260K/stories260K.bin
head -c 400000 "$shared/data/tinystories/val_head.txt" > calib.txt
tail -c +400001 "$shared/data/tinystories/val_head.txt" > eval.txt
[ -f hess/layer_004.hess ] || "$harp" calib -m "$st" -f calib.txt --ctx 256 --nseq 0 -o hess -q
ev=(-f eval.txt --ctx 256 --max-chunks 40 -q --json)
[ -f fp.logits ] || "$harp" ppl -m "$st" "${ev[@]}" --save-logits fp.logits > fp.ppl.json
for n in $names; do
  case $n in
    quip2_rht) a="--method quip --bits 2" ;;
    quip3_rht) a="--method quip --bits 3" ;;
    quip4_rht) a="--method quip --bits 4" ;;
    qtip2_hyb) a="--method qtip --bits 2 --qtip-code hyb" ;;
    qtip2_1mad) a="--method qtip --bits 2 --qtip-code 1mad" ;;
    qtip2_3inst) a="--method qtip --bits 2 --qtip-code 3inst" ;;
    qtip3_hyb) a="--method qtip --bits 3 --qtip-code hyb" ;;
    qtip4_hyb) a="--method qtip --bits 4 --qtip-code hyb" ;;
    qtip2_hyb_harp) a="--method qtip --bits 2 --qtip-code hyb --rotation harp" ;;
    quip2_harp) a="--method quip --bits 2 --rotation harp" ;;
    *) echo "unknown run $n" >&2; exit 2 ;;
  esac
  # shellcheck disable=SC2086
  "$harp" quantize -m "$st" --hessians hess -o "$n" $a --seed 0 --force --no-resume -q --json > "$n.quantize.json"
  "$harp" ppl -m "$n" "${ev[@]}" --kld-base fp.logits > "$n.ppl.json"
  python3 - "$n" <<'PY'
import json, sys
n = sys.argv[1]
q = json.load(open(n + ".quantize.json")); p = json.load(open(n + ".ppl.json"))
kld = p.get("kld_mean", p.get("kld", {}))
print(json.dumps({"run": n, "ppl": p["ppl"], "kld": kld, "top1": p.get("top1_agree", p.get("top1")),
                  "bpw": q["bpw"], "seconds": q.get("seconds")}))
PY
done
