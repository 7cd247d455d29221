#!/usr/bin/env bash
# QTIP vs QuIP# (docs/results/qtip.md): quantize each named run, evaluate perplexity and KLD against
# the fp model's saved logits (harp ppl --save-logits / --kld-base), one JSON line per run.
#   st:  stories260K; Hessians on the first 400 000 bytes of tinystories/val_head.txt (ctx 256, all
#        windows, made here), evaluation on the rest (ctx 256, first 40 windows)
#   ref: ref-llama; Hessians HESS from `harp calib -m ref-llama -f ref-corpus/calib.txt`, evaluation
#        on the first 40 windows of 512 tokens of ref-corpus/test.txt
#   reffull: the same quantizations, evaluated on the whole ref-corpus test file and on WikiText-2
#        (ctx 512) with the fp model run beside each (harp ppl --kld-ref: no logits files); one JSON
#        line per (run, text)
# usage: scripts/results_qtip.sh st|ref|reffull HARP_BIN SHARED_DIR WORK_DIR [HESS_DIR (ref*)] -- RUN ...
# RUN: quip{2,3,4}_rht quip2_harp qtip{2,3,4}_{hyb,1mad,3inst} qtip2_hyb_harp
set -euo pipefail
model=$1; harp=$(readlink -f "$2"); shared=$(readlink -f "$3"); work=$4; shift 4
hess=hess
if [ "$model" != st ]; then hess=$(readlink -f "$1"); shift; fi
[ "${1:-}" = -- ] && shift
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
mkdir -p "$work" && cd "$work"
if [ "$model" = st ]; then
  src=$shared/models/stories260K/stories260K.bin
  head -c 400000 "$shared/data/tinystories/val_head.txt" > calib.txt
  tail -c +400001 "$shared/data/tinystories/val_head.txt" > eval.txt
  [ -f hess/layer_004.hess ] || "$harp" calib -m "$src" -f calib.txt --ctx 256 --nseq 0 -o hess -q
  ev=(-f eval.txt --ctx 256 --max-chunks 40 -q --json)
elif [ "$model" = ref ]; then
  src=$shared/models/ref-llama
  ev=(-f "$shared/data/ref-corpus/test.txt" --ctx 512 --max-chunks 40 -q --json)
else
  src=$shared/models/ref-llama
fi
[ "$model" = reffull ] || [ -f fp.logits ] || "$harp" ppl -m "$src" "${ev[@]}" --save-logits fp.logits > fp.ppl.json
for n in "$@"; do
  b=${n:4:1}
  case $n in
    quip?_rht) a="--method quip --bits $b" ;;
    quip2_harp) a="--method quip --bits 2 --rotation harp" ;;
    qtip?_hyb|qtip?_1mad|qtip?_3inst) a="--method qtip --bits $b --qtip-code ${n#qtip?_}" ;;
    qtip2_hyb_harp) a="--method qtip --bits 2 --qtip-code hyb --rotation harp" ;;
    *) echo "unknown run $n" >&2; exit 2 ;;
  esac
  # shellcheck disable=SC2086
  [ -f "$n.quantize.json" ] ||
    "$harp" quantize -m "$src" --hessians "$hess" -o "$n" $a --seed 0 --force --no-resume -q --json > "$n.quantize.json"
  if [ "$model" = reffull ]; then
    for t in ref-corpus/test.txt wikitext-2-raw/wiki.test.raw; do
      tn=$(basename "$(dirname "$t")")
      "$harp" ppl -m "$n" -f "$shared/data/$t" --ctx 512 -q --json --kld-ref "$src" > "$n.$tn.ppl.json"
      python3 -c 'import json, sys; n, t = sys.argv[1:3]; q = json.load(open(n + ".quantize.json")); p = json.load(open(n + "." + t + ".ppl.json")); print(json.dumps({"run": n, "text": t, "ppl": p["ppl"], "kld": p["kld_mean"], "kld_stderr": p["kld_stderr"], "top1": p["top1_agree"], "bpw": q["bpw"], "seconds": q.get("seconds"), "tokens": p["n_tokens_scored"]}))' "$n" "$tn"
    done
    continue
  fi
  "$harp" ppl -m "$n" "${ev[@]}" --kld-base fp.logits > "$n.ppl.json"
  python3 - "$n" <<'PY'
import json, sys
n = sys.argv[1]
q = json.load(open(n + ".quantize.json")); p = json.load(open(n + ".ppl.json"))
print(json.dumps({"run": n, "ppl": p["ppl"], "kld": p["kld_mean"], "top1": p["top1_agree"], "bpw": q["bpw"],
                  "seconds": q.get("seconds"), "tokens": p["n_tokens_scored"]}))
PY
done
