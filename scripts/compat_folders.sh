#!/usr/bin/env bash
# Quantized-folder compatibility proof: two harp binaries (OLD, NEW) must write byte-identical
# folders and give bit-identical logits, and NEW must load the folders OLD wrote with identical
# logits. Redoes, with each binary, into a temporary directory:
#   harp calib    -m $ST -f CAL --ctx 128 --nseq 16 -o hess -q
#   harp quantize -m $ST --hessians hess --threads 1 -q -o st_quip2_rht  --method quip --bits 2 --seed 5
#   harp quantize ... -o st_quip2_harp --method quip --bits 2 --rotation harp --harp-steps 30 --seed 5
#   harp quantize ... -o st_gptq4      --method gptq --bits 4 --seed 5
#   harp ppl -m DIR -f CAL --ctx 128 --max-chunks 4 --threads 1 -q --json --save-logits DIR.logits
# (also for the fp32 source) and compares every file byte for byte. Both binaries quantize with
# the OLD binary's Hessians, so a change in calibration cannot hide or fake a format difference
# (the two Hessian sets are compared too, and reported).
#
# usage: scripts/compat_folders.sh OLD_BIN NEW_BIN
# env:   HARP_SHARED  models and data (default: ../shared beside the repository)
#        COMPAT_CAL   calibration text (default /work/baseline/v1/cal.txt when present, else the
#                     first 60000 bytes of $HARP_SHARED/data/tinystories/val_head.txt)
#        COMPAT_KEEP=1 keep the temporary directory (its path is printed)
# Prints one line per compared file and "compat: all identical" (exit 0) or the count (exit 1).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 OLD_BIN NEW_BIN" >&2; exit 2; }
old=$(readlink -f "$1")
new=$(readlink -f "$2")
for b in "$old" "$new"; do [ -x "$b" ] || { echo "compat: $b is not an executable" >&2; exit 2; }; done
root="$(cd "$(dirname "$0")/.." && pwd)"
shared=${HARP_SHARED:-$root/../shared}
st=$shared/models/stories260K/stories260K.bin
[ -f "$st" ] || { echo "compat: $st missing" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/harp_compat.XXXXXX")
[ "${COMPAT_KEEP:-0}" = 1 ] && echo "compat: work directory $tmp" || trap 'rm -rf "$tmp"' EXIT
cal=${COMPAT_CAL:-}
if [ -z "$cal" ]; then
  if [ -f /work/baseline/v1/cal.txt ]; then cal=/work/baseline/v1/cal.txt
  else head -c 60000 "$shared/data/tinystories/val_head.txt" > "$tmp/cal.txt"; cal=$tmp/cal.txt; fi
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

folders="st_quip2_rht st_quip2_harp st_gptq4"
args_st_quip2_rht="--method quip --bits 2 --seed 5"
args_st_quip2_harp="--method quip --bits 2 --rotation harp --harp-steps 30 --seed 5"
args_st_gptq4="--method gptq --bits 4 --seed 5"

ppl() { # BIN MODEL OUT.logits
  "$1" ppl -m "$2" -f "$cal" --ctx 128 --max-chunks 4 --threads 1 -q --json --save-logits "$3" > "$3.json"
}

for side in old new; do
  bin=${!side}
  d=$tmp/$side
  mkdir -p "$d"
  "$bin" calib -m "$st" -f "$cal" --ctx 128 --nseq 16 -o "$d/hess" -q > "$d/calib.out"
  for f in $folders; do
    a=args_$f
    # shellcheck disable=SC2086
    "$bin" quantize -m "$st" --hessians "$tmp/old/hess" --threads 1 -q --json -o "$d/$f" ${!a} > "$d/$f.quantize.json"
    ppl "$bin" "$d/$f" "$d/$f.logits"
  done
  ppl "$bin" "$st" "$d/fp.logits"
done
# NEW loads the folders OLD wrote
mkdir -p "$tmp/cross"
for f in $folders; do ppl "$new" "$tmp/old/$f" "$tmp/cross/$f.logits"; done

ndiff=0
norm() { # the JSON without timings and paths (python3: drop those keys at any depth)
  python3 -c 'import json,sys
def f(o):
    if isinstance(o, dict): return {k: f(v) for k, v in o.items() if k not in ("out", "timing", "tokens_per_second") and "seconds" not in k}
    return [f(v) for v in o] if isinstance(o, list) else o
print(json.dumps(f(json.load(open(sys.argv[1]))), sort_keys=True))' "$1"
}
same() { # LABEL A B
  if cmp -s "$2" "$3"; then echo "identical  $1"; else echo "DIFFERENT  $1"; ndiff=$((ndiff + 1)); fi
}
for h in "$tmp"/old/hess/*; do
  # informational: calibration is not part of the format (both sides quantize with OLD's Hessians)
  if cmp -s "$h" "$tmp/new/hess/$(basename "$h")"; then echo "identical  hess/$(basename "$h") (calib, informational)"
  else echo "differs    hess/$(basename "$h") (calib, informational; folders use OLD's Hessians)"; fi
done
for f in $folders; do
  for file in "$tmp"/old/"$f"/*; do same "$f/$(basename "$file") (written by old vs new)" "$file" "$tmp/new/$f/$(basename "$file")"; done
  [ "$(ls "$tmp/old/$f" | wc -l)" = "$(ls "$tmp/new/$f" | wc -l)" ] || { echo "DIFFERENT  $f: file count"; ndiff=$((ndiff + 1)); }
  same "$f quantize --json report without timings (old vs new)" <(norm "$tmp/old/$f.quantize.json") <(norm "$tmp/new/$f.quantize.json")
  same "$f.logits (old binary on old folder vs new binary on new folder)" "$tmp/old/$f.logits" "$tmp/new/$f.logits"
  same "$f.logits (new binary on the OLD folder)" "$tmp/old/$f.logits" "$tmp/cross/$f.logits"
  same "$f ppl --json without timings (old vs new)" <(norm "$tmp/old/$f.logits.json") <(norm "$tmp/new/$f.logits.json")
done
same "fp.logits (fp32 source)" "$tmp/old/fp.logits" "$tmp/new/fp.logits"
if [ -f /work/baseline/v1/SHA256SUMS ] && [ "$cal" = /work/baseline/v1/cal.txt ]; then
  # informational: the stored baseline (written by the same OLD binary from its own Hessians)
  (cd "$tmp/old" && sed -n 's/^\([0-9a-f]*\)  \(st_[^/]*\/.*\|st_.*\.logits\)$/\1  \2/p' /work/baseline/v1/SHA256SUMS |
     sha256sum -c --quiet - >/dev/null 2>&1) && echo "identical  old folders and logits vs /work/baseline/v1/SHA256SUMS (informational)" ||
    echo "differs    old folders vs /work/baseline/v1/SHA256SUMS (informational: Hessians recomputed here)"
fi
if [ $ndiff -eq 0 ]; then echo "compat: all identical"; else echo "compat: $ndiff differences"; exit 1; fi
