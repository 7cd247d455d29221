#!/usr/bin/env bash
# The numbers of docs/results/wakv.md: ref-llama quantized with `harp quantize --method wakv` in the
# configurations below, each scored by `harp ppl` on the first N windows of 512 tokens of the
# ref-corpus test text (perplexity, and KLD to the fp model's saved logits).
# usage: scripts/wakv_results.sh HARP_BIN WORK_DIR [CONFIG ...]
#   CONFIG = W,A,KV,WQUANT,ROTATION,SEED[,OPTS]   e.g. 4,4,4,gptq,hadamard,0,clip
#   OPTS = tags joined by '+': clip (--clip-search), scS (--clip-scope S: layer, class, model), kld (--clip-loss kld), sym (--w-sym), wclip (--w-clip), act (--act-order),
#   qr (QuaRot's fixed ratios --a-clip 0.9 --kv-clip 0.95), aX / kvX (--a-clip X / --kv-clip X, e.g. a0.85),
#   n64 (64 calibration windows, own Hessians), a16NAME (ablation: --a-skip NAME, that input unquantized; NAME qkv, o, up_gate, down),
#   gN (--w-group N), agN (--a-group N: activations in groups of N channels), kvgN (--kv-group N: K / V groups of N), blk (ldp: --ldp-fit block on the
#   calibration text, settings from WAKV_LDP), wcMODE (--w-calib MODE: seq, asym); WQUANT rtn, gptq or ldp (2-bit learned levels)
#   (default: the list below). Prints one TSV line per configuration to stdout (and WORK_DIR/results.tsv).
# env: HARP_SHARED (default ../shared), WAKV_CHUNKS (default 8), WAKV_NSEQ calibration windows (default 32),
#      WAKV_SEARCH "iters,windows" of the clip search (default 4,1), WAKV_LDP "nseq,ctx,steps" of the ldp block fit
#      (default 32,128,100: the CLI's), WAKV_EXTRA=1: also WikiText-2 (first WAKV_CHUNKS windows, KLD against the fp model
#      run beside it: harp ppl --kld-ref) and zero-shot ARC-Easy and PIQA (all items; WAKV_ZS_LIMIT N: the first N),
#      four more columns (wiki ppl, wiki KLD, arc_easy acc, piqa acc).
set -euo pipefail
bin=$(readlink -f "$1"); work=$2; shift 2
root="$(cd "$(dirname "$0")/.." && pwd)"
shared=${HARP_SHARED:-$root/../shared}
M=$shared/models/ref-llama; TEST=$shared/data/ref-corpus/test.txt; CAL=$shared/data/ref-corpus/calib.txt
WIKI=$shared/data/wikitext-2-raw/wiki.test.raw; ZS=$shared/data/zeroshot
chunks=${WAKV_CHUNKS:-8}; nseq=${WAKV_NSEQ:-32}; IFS=, read -r s_iters s_win <<< "${WAKV_SEARCH:-4,1}"
IFS=, read -r l_nseq l_ctx l_steps <<< "${WAKV_LDP:-32,128,100}"
export OMP_WAIT_POLICY=passive
mkdir -p "$work"; cd "$work"
if [ ! -s fp.logits ]; then
  "$bin" ppl -m "$M" -f "$TEST" --max-chunks "$chunks" --save-logits fp.logits --json -q > fp.json
fi
fp=$(sed -n 's/.*"ppl": \([0-9.e+-]*\).*/\1/p' fp.json); fpmore=""
if [ "${WAKV_EXTRA:-0}" = 1 ]; then
  [ -s fp.wiki.json ] || "$bin" ppl -m "$M" -f "$WIKI" --max-chunks "$chunks" --json -q > fp.wiki.json
  [ -s fp.zs.json ] || "$bin" zeroshot -m "$M" --data-dir "$ZS" --tasks arc_easy,piqa ${WAKV_ZS_LIMIT:+--limit "$WAKV_ZS_LIMIT"} -q -o fp.zs.json > /dev/null
  fpmore=$(python3 -c 'import json, sys; w = json.load(open(sys.argv[1])); z = json.load(open(sys.argv[2]))["results"]
print("\t%.4f\t0\t%.4f\t%.4f" % (w["ppl"], z["arc_easy"]["acc"], z["piqa"]["acc"]), end="")' fp.wiki.json fp.zs.json)
fi
printf 'fp\t-\t-\t-\t-\t%s\t0%s\n' "$fp" "$fpmore" | tee -a results.tsv
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(4,16,16,gptq,hadamard,0 4,8,8,gptq,hadamard,0 4,4,4,gptq,hadamard,0 3,3,3,gptq,hadamard,0
  4,4,4,rtn,hadamard,0 4,4,4,gptq,none,0 3,3,3,gptq,none,0 4,4,4,gptq,gsr,0 3,3,3,gptq,gsr,0
  4,4,4,gptq,random,0 3,3,3,gptq,random,0 4,4,4,gptq,random,1 3,3,3,gptq,random,1 4,4,4,gptq,random,2 3,3,3,gptq,random,2
  4,4,4,gptq,hadamard,1 3,3,3,gptq,hadamard,1 4,4,4,gptq,hadamard,2 3,3,3,gptq,hadamard,2
  4,4,4,gptq,hadamard,0,clip 3,3,3,gptq,hadamard,0,clip)
for c in "${configs[@]}"; do
  IFS=, read -r w a kv wq rot seed opts <<< "$c"
  extra=(); n=$nseq; hs=""
  for t in ${opts//+/ }; do
    case $t in
      clip) extra+=(--clip-search --search-iters "$s_iters" --search-windows "$s_win") ;;
      sc*) extra+=(--clip-scope "${t#sc}") ;; kld) extra+=(--clip-loss kld) ;;
      sym) extra+=(--w-sym) ;; wclip) extra+=(--w-clip) ;; act) extra+=(--act-order) ;;
      qr) extra+=(--a-clip 0.9 --kv-clip 0.95) ;; n64) n=64; hs=_n64 ;;
      a0.*) extra+=(--a-clip "${t#a}") ;; kv0.*) extra+=(--kv-clip "${t#kv}") ;; a16*) extra+=(--a-skip "${t#a16}") ;;
      wc*) extra+=(--w-calib "${t#wc}") ;;
      blk) extra+=(--ldp-fit block --ldp-calib "$CAL" --ldp-nseq "$l_nseq" --ldp-ctx "$l_ctx" --ldp-steps "$l_steps") ;;
      g[0-9]*) extra+=(--w-group "${t#g}") ;; ag[0-9]*) extra+=(--a-group "${t#ag}") ;; kvg[0-9]*) extra+=(--kv-group "${t#kvg}") ;;
      *) echo "wakv_results.sh: unknown option tag '$t' in $c" >&2; exit 2 ;;
    esac
  done
  # the Hessians belong to the rotated model: rotation, seed, whether R4 is fused (A < 16), windows
  h="h_${rot}_${seed}_r4$([ "$a" -lt 16 ] && echo 1 || echo 0)$hs"
  name="W${w}A${a}KV${kv}_${wq}_${rot}_${seed}${opts:+_${opts//+/_}}"
  t0=$(date +%s)
  "$bin" quantize -m "$M" --hessians "$h" --calib "$CAL" --calib-nseq "$n" -o "$name" --method wakv --w-bits "$w" \
    --a-bits "$a" --kv-bits "$kv" --w-quant "$wq" --rotation "$rot" --seed "$seed" "${extra[@]}" --force -q > "$name.quant.txt"
  "$bin" ppl -m "$name" -f "$TEST" --max-chunks "$chunks" --kld-base fp.logits --json -q > "$name.ppl.json"
  ppl=$(sed -n 's/.*"ppl": \([0-9.e+-]*\).*/\1/p' "$name.ppl.json"); kld=$(sed -n 's/.*"kld_mean": \([0-9.e+-]*\).*/\1/p' "$name.ppl.json")
  more=""
  if [ "${WAKV_EXTRA:-0}" = 1 ]; then
    "$bin" ppl -m "$name" -f "$WIKI" --max-chunks "$chunks" --kld-ref "$M" --json -q > "$name.wiki.json"
    "$bin" zeroshot -m "$name" --data-dir "$ZS" --tasks arc_easy,piqa ${WAKV_ZS_LIMIT:+--limit "$WAKV_ZS_LIMIT"} -q -o "$name.zs.json" > /dev/null
    more=$(python3 -c 'import json, sys; w = json.load(open(sys.argv[1])); z = json.load(open(sys.argv[2]))["results"]
print("\t%.4f\t%.4f\t%.4f\t%.4f" % (w["ppl"], w["kld_mean"], z["arc_easy"]["acc"], z["piqa"]["acc"]), end="")' "$name.wiki.json" "$name.zs.json")
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s%s\t%ss\n' "W${w}A${a}KV${kv}" "$wq" "$rot" "$seed" "${opts:-noclip}" "$ppl" "$kld" "$more" \
    $(( $(date +%s) - t0 )) | tee -a results.tsv
done
