#!/bin/bash
# harp zeroshot CLI: a few items of every task on ref-llama (--json shape), usage errors (exit 2),
# a missing data folder (exit 1, one line naming it).
set -euo pipefail
: "${HARP_BIN:?}" "${HARP_SHARED:?}" "${HARP_TMP:?}"
M="$HARP_SHARED/models/ref-llama"
[ -f "$M/config.json" ] || { echo "SKIP: $M missing"; exit 77; }
T=$(mktemp -d "$HARP_TMP/zs_cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
"$HARP_BIN" zeroshot -m "$M" --limit 3 --json -q -o "$T/out.json" > "$T/stdout.json"
cmp "$T/out.json" "$T/stdout.json"
for t in arc_easy arc_challenge piqa hellaswag winogrande; do
  grep -q "\"$t\": {\"acc\": [0-9.]*, \"acc_stderr\": [0-9.]*, \"acc_norm\": [0-9.]*, \"acc_norm_stderr\": [0-9.]*, \"n\": 3," "$T/out.json" \
    || { echo "task $t missing or malformed"; cat "$T/out.json"; exit 1; }
done
# progress (elapsed, ETA) stays on stderr with --json; -q (above) silences it
"$HARP_BIN" zeroshot -m "$M" --tasks piqa --limit 3 --json > "$T/p.json" 2> "$T/p.err"
grep -Eq "^piqa 3/3 100.0% elapsed [0-9:]+ ETA 00:00$" "$T/p.err" || { echo "no progress line:"; cat "$T/p.err"; exit 1; }
[ "$(head -c 21 "$T/p.json")" = '{"kind": "zeroshot", ' ] || { echo "stdout is not the JSON"; exit 1; }
# the JSON feeds harp report
"$HARP_BIN" report "$T/out.json" -o "$T/r.html" 2> /dev/null
grep -q 'winogrande' "$T/r.html"
set +e
"$HARP_BIN" zeroshot -m "$M" --tasks arc_easy,nope 2> "$T/err"; rc=$?
[ $rc = 2 ] && grep -q "unknown task 'nope'" "$T/err" || { echo "bad task: rc $rc"; exit 1; }
"$HARP_BIN" zeroshot -m "$M" --limit 0 2> "$T/err"; rc=$?
[ $rc = 2 ] || { echo "--limit 0: rc $rc"; exit 1; }
"$HARP_BIN" zeroshot -m "$M" --data-dir "$T/none" 2> "$T/err"; rc=$?
[ $rc = 1 ] && grep -q "$T/none: data folder not found" "$T/err" || { echo "missing dir: rc $rc"; cat "$T/err"; exit 1; }
mkdir "$T/d" && cp "$HARP_SHARED/data/zeroshot/piqa-valid.jsonl" "$T/d/" && head -5 "$HARP_SHARED/data/zeroshot/piqa-valid-labels.lst" > "$T/d/piqa-valid-labels.lst"
"$HARP_BIN" zeroshot -m "$M" --data-dir "$T/d" --tasks piqa 2> "$T/err"; rc=$?
[ $rc = 1 ] && grep -q "more items than labels" "$T/err" || { echo "label mismatch: rc $rc"; cat "$T/err"; exit 1; }
exit 0
