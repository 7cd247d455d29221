#!/usr/bin/env bash
# docs/results/rcp.md: W2A16 LDP (--method ldp) vs uniform RTN / GPTQ 2-bit and QuIP# 2-bit, perplexity and
# KLD(FP ‖ quantized) on held-out text, CPU only; LDP fit (a) per linear and fit (b) per block (_blk rows). One JSON line per row on stdout (quantize report
# fields + ppl fields).
#   bash scripts/results_rcp.sh stories OUTDIR     stories260K (calib: first 60 kB of tinystories
#                                                  val_head, eval: its bytes 400001-500000, ctx 256)
#   bash scripts/results_rcp.sh ref OUTDIR         ref-llama (calib: ref-corpus calib.txt, 256 x 512;
#                                                  eval: first CHUNKS windows of ctx 512 of ref-corpus
#                                                  test.txt and WikiText-2 test)
# Env: HARP (binary, default build/harp), THREADS (2), CHUNKS (40), ONLY (regex on row names), HARP_ROW=1
# adds QuIP# with HARP rotations (slow on CPU).
set -eu
which=$1; D=$2; mkdir -p "$D"
H=${HARP:-build/harp}; T=${THREADS:-2}; S=${HARP_SHARED:-../shared}
export OMP_WAIT_POLICY=passive
if [ "$which" = stories ]; then
  M="$S/models/stories260K/stories260K.bin"; G=32; CTX=256
  head -c 60000 "$S/data/tinystories/val_head.txt" > "$D/cal.txt"
  tail -c +400001 "$S/data/tinystories/val_head.txt" | head -c 100000 > "$D/eval.txt"
  TEXTS="eval"; EVAL_eval="$D/eval.txt"; MC=""
  LDPB="--ldp-fit block --ldp-calib $D/cal.txt"   # fit (b): 32 windows of 128 tokens, 100 Adam steps
  [ -d "$D/hess" ] || "$H" calib -m "$M" -f "$D/cal.txt" --ctx 128 --nseq 64 -o "$D/hess" -q --threads "$T" >/dev/null
else
  M="$S/models/ref-llama"; G=128; CTX=512
  TEXTS="test wiki"; EVAL_test="$S/data/ref-corpus/test.txt"; EVAL_wiki="$S/data/wikitext-2-raw/wiki.test.raw"
  MC="--max-chunks ${CHUNKS:-40}"
  # fit (b) on the CPU: 8 windows of 256 tokens, 50 Adam steps per block (time on the shared 2 cores)
  LDPB="--ldp-fit block --ldp-calib $S/data/ref-corpus/calib.txt --ldp-nseq 8 --ldp-ctx 256 --ldp-steps 50"
  [ -d "$D/hess" ] || "$H" calib -m "$M" -f "$S/data/ref-corpus/calib.txt" -o "$D/hess" -q --threads "$T" >/dev/null
fi
ppl() {  # model name: FP logits are the KLD base
  local out=""
  for t in $TEXTS; do
    local f; eval f=\$EVAL_$t
    if [ "$2" = fp ]; then
      r=$("$H" ppl -m "$1" -f "$f" --ctx $CTX $MC --json -q --threads "$T" --save-logits "$D/fp_$t.logits")
    else
      r=$("$H" ppl -m "$1" -f "$f" --ctx $CTX $MC --json -q --threads "$T" --kld-base "$D/fp_$t.logits")
    fi
    out="$out, \"$t\": $r"
  done
  echo "$out"
}
row() {  # name, quantize args
  local name=$1; shift
  [[ -n "${ONLY:-}" && ! "$name" =~ $ONLY ]] && return 0
  q=$("$H" quantize -m "$M" --hessians "$D/hess" -o "$D/$name" --seed 0 --threads "$T" --json -q --force "$@")
  echo "{\"row\": \"$name\", \"args\": \"$*\", \"quantize\": $q$(ppl "$D/$name" q)}"
}
echo "{\"row\": \"fp\"$(ppl "$M" fp)}"
row rtn2_g$G --method rtn --bits 2 --group $G
row gptq2_g$G --method gptq --bits 2 --group $G
row gptq2_g0 --method gptq --bits 2 --group 0
row quip2_rht --method quip --bits 2 --rotation rht
row ldp2_g$G --method ldp --bits 2 --group $G
row ldp2_g0 --method ldp --bits 2 --group 0
row ldp2_g${G}_blk --method ldp --bits 2 --group $G $LDPB
row ldp2_g0_blk --method ldp --bits 2 --group 0 $LDPB
row ldp2_g0_rht --method ldp --bits 2 --group 0 --rotation rht
row ldp2_g${G}_rht --method ldp --bits 2 --group $G --rotation rht
row gptq2_g${G}_rht --method gptq --bits 2 --group $G --rotation rht
[ "${HARP_ROW:-0}" = 1 ] && row quip2_harp --method quip --bits 2 --rotation harp
exit 0
