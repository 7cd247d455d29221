#!/usr/bin/env bash
# Side-by-side speed of two harp builds (issue 11, "not slower"): the same `harp bench ppl` and
# `harp bench gemv` commands run with OLD and NEW alternately (OLD, NEW, OLD, NEW, ...) so that both
# see the same machine state, RUNS times each; prints one JSON row per measurement with the median
# of each build and new/old (tokens/s or GB/s: > 1 means NEW is faster); ppl rows also give new/old of
# the sgemm reference each run times on the same shapes (the same OpenBLAS calls in both builds, so a
# ratio away from 1 there is the machine, not the code).
#   ppl rows: ref-llama fp32 and the stories260K QuIP#-RHT 2-bit, HARP 2-bit and GPTQ 4-bit folders
#             (written by NEW into a temporary directory from Hessians of OLD's calib), ctx 128, 48 windows
#             for stories, ctx 512, 4 windows for ref-llama;
#   gemv rows: every kind and regime of `harp bench gemv --shapes 4096x4096,11008x4096` (--min-time 0.3).
# usage: scripts/bench_ab.sh OLD_BIN NEW_BIN [RUNS (default 5)]
# env:   HARP_SHARED (default ../shared), AB_THREADS (default: all cores), AB_GEMV=0 skips gemv,
#        AB_GEMV_ARGS replaces the gemv options after --threads (e.g. "--regime cache --min-time 0.2"),
#        AB_REF_WINDOWS the ref-llama windows (default 4)
set -euo pipefail
export OMP_WAIT_POLICY=passive   # spinning OpenMP workers make short runs on a small machine noisy
[ $# -ge 2 ] || { echo "usage: $0 OLD_BIN NEW_BIN [RUNS]" >&2; exit 2; }
old=$(readlink -f "$1"); new=$(readlink -f "$2"); runs=${3:-5}
root="$(cd "$(dirname "$0")/.." && pwd)"
shared=${HARP_SHARED:-$root/../shared}
th=${AB_THREADS:-$(nproc)}
st=$shared/models/stories260K/stories260K.bin
ref=$shared/models/ref-llama
for f in "$st" "$ref/model.safetensors" "$shared/data/ref-corpus/test.txt" "$shared/data/tinystories/val_head.txt"; do
  [ -f "$f" ] || { echo "bench_ab: $f missing" >&2; exit 2; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/harp_ab.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
head -c 60000 "$shared/data/tinystories/val_head.txt" > "$tmp/cal.txt"
"$old" calib -m "$st" -f "$tmp/cal.txt" --ctx 128 --nseq 16 -o "$tmp/hess" -q > /dev/null
q() { "$new" quantize -m "$st" --hessians "$tmp/hess" -q -o "$tmp/$1" "${@:2}" > /dev/null; }
q st_quip2_rht --method quip --bits 2 --seed 5
q st_quip2_harp --method quip --bits 2 --rotation harp --harp-steps 30 --seed 5
q st_gptq4 --method gptq --bits 4 --seed 5

# one measurement: NAME KEY CMD... (the command's JSON rows; KEY picked from each row)
measure() {
  local name=$1 key=$2; shift 2
  for i in $(seq "$runs"); do
    for b in old new; do
      local bin=$old; [ $b = new ] && bin=$new
      "$bin" "$@" --json 2> /dev/null | sed "s/^/$b\t$i\t/" >> "$tmp/$name.rows"
    done
  done
  python3 - "$tmp/$name.rows" "$name" "$key" "$runs" <<'EOF'
import json, statistics, sys
path, name, key, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
vals = {}
for line in open(path):
    b, _, js = line.rstrip("\n").split("\t", 2)
    o = json.loads(js)
    ident = tuple((k, o[k]) for k in ("kind", "m", "n", "regime") if k in o)
    v = vals.setdefault(ident, {"old": [], "new": [], "ref_old": [], "ref_new": []})
    v[b].append(float(o[key]))
    if "sgemm_gflops_same_shapes" in o:   # the same OpenBLAS calls in both builds: machine state, not code
        v["ref_" + b].append(float(o["sgemm_gflops_same_shapes"]))
for ident, v in vals.items():
    if not v["old"] or not v["new"]:
        continue  # a kind only one build has
    mo, mn = statistics.median(v["old"]), statistics.median(v["new"])
    row = {"bench": "ab", "name": name, **dict(ident), "key": key, "runs": runs,
           "old_median": mo, "new_median": mn, "new_over_old": round(mn / mo, 4) if mo else None}
    if v["ref_old"] and v["ref_new"]:
        ro, rn = statistics.median(v["ref_old"]), statistics.median(v["ref_new"])
        row["sgemm_ref_new_over_old"] = round(rn / ro, 4) if ro else None
    print(json.dumps(row))
EOF
}
measure ppl_ref_llama_fp32 tokens_per_second bench ppl -m "$ref" -f "$shared/data/ref-corpus/test.txt" --ctx 512 --windows "${AB_REF_WINDOWS:-4}" --threads "$th"
for f in st_quip2_rht st_quip2_harp st_gptq4; do
  measure "ppl_$f" tokens_per_second bench ppl -m "$tmp/$f" -f "$tmp/cal.txt" --ctx 128 --windows 48 --threads "$th"
done
[ "${AB_GEMV:-1}" = 0 ] || measure gemv gbps bench gemv --threads "$th" ${AB_GEMV_ARGS:---shapes 4096x4096,11008x4096 --min-time 0.3}
