#!/usr/bin/env bash
# harp report from the real JSON of a small run on stories260K (issue 17 item 2): calib, quantize
# (rtn 2/4-bit, one with --ppl; quip 2-bit), ppl of the FP model and of every folder (KLD against
# the FP logits), zero-shot of the FP model and one folder, one bench line, plus files the report
# does not know (calib summary, a foreign object, invalid JSON) that must be skipped with a warning.
# Checks the row labels (model folder + method + bpw) and the points of every plot; then the older
# {"methods": [...]} schema; then the errors that still stop the report.
set -u
. "$(dirname "$0")/lib.bash"
ST="$HARP_SHARED/models/stories260K/stories260K.bin"; TXT="$HARP_SHARED/data/tinystories/val_head.txt"
ZS="$HARP_SHARED/data/zeroshot"
[ -f "$ST" ] && [ -f "$TXT" ] && [ -d "$ZS" ] || { echo "SKIP: stories260K, tinystories or zeroshot data missing"; exit 77; }
export OMP_WAIT_POLICY=passive
D="$HARP_TMP/report"; rm -rf "$D"; mkdir -p "$D/j"
H="$HARP_BIN"
fail=0
run() { "$@" || { echo "FAIL: $*"; exit 1; }; }

head -c 60000 "$TXT" > "$D/cal.txt"
E=(-f "$D/cal.txt" --ctx 128 --max-chunks 6)
run "$H" calib -m "$ST" -f "$D/cal.txt" --ctx 128 --nseq 8 -o "$D/hess" --json -q > "$D/j/calib.json"
run "$H" ppl -m "$ST" "${E[@]}" --save-logits "$D/fp.logits" --json -q > "$D/j/ppl_fp.json"
run "$H" quantize -m "$ST" --hessians "$D/hess" -o "$D/st-rtn2" --method rtn --bits 2 --json -q > "$D/j/q_rtn2.json"
run "$H" quantize -m "$ST" --hessians "$D/hess" -o "$D/st-rtn4" --method rtn --bits 4 --json -q --ppl "$D/cal.txt" --ctx 128 --max-chunks 6 > "$D/j/q_rtn4.json"
run "$H" quantize -m "$ST" --hessians "$D/hess" -o "$D/st-quip2" --method quip --bits 2 --json -q > "$D/j/q_quip2.json"
for q in st-rtn2 st-rtn4 st-quip2; do
  run "$H" ppl -m "$D/$q/" "${E[@]}" --kld-base "$D/fp.logits" --json -q > "$D/j/ppl_$q.json"
done
run "$H" zeroshot -m "$ST" --data-dir "$ZS" --tasks arc_easy,piqa --limit 4 --json -q > "$D/j/zs_fp.json"
run "$H" zeroshot -m "$D/st-quip2" --data-dir "$ZS" --tasks arc_easy,piqa --limit 4 --json -q > "$D/j/zs_quip2.json"
run "$H" bench quant --json --shapes 24x40 --bits 2 --tune 1 > "$D/j/bench_quant.json"
echo '{"foo": 1}' > "$D/j/foreign.json"
echo '{"kind": "ppl", "ppl": ' > "$D/j/truncated.json"

"$H" report "$D"/j/*.json -o "$D/report.html" --svg-dir "$D/svg" 2> "$D/err"
rc=$?
cat "$D/err"
check report_exit_0 '[ $rc -eq 0 ] && [ -s "$D/report.html" ]'
check warns_calib     'grep -q "warning: skipped .*calib.json: a \"calib\" summary, nothing to report" "$D/err"'
check warns_foreign   'grep -q "warning: skipped .*foreign.json: not a ppl, quantize, zeroshot or bench result" "$D/err"'
check warns_truncated 'grep -q "warning: skipped .*truncated.json: line 1 is not valid JSON" "$D/err"'
check skipped_on_page '[ $(grep -c "class=\"warn\">skipped" "$D/report.html") -eq 3 ]'
check summary_counts  'grep -q "(5 ppl, 3 quantize, 2 zero-shot, 1 bench rows; 4 plots: ppl_vs_bpw 3 points, kld_vs_bpw 3 points, proxy_loss 60 points, zeroshot_acc 4 points)" "$D/err"'

# rows are labelled by model folder and method, with the folder's stored bpw
row() { grep -o "<tr><td>$1</td><td>$2</td><td>[0-9.]*</td>" "$D/report.html" | head -1; }
bpw_q=$(grep -o '"bpw": [0-9.]*, "bpw_codes"' "$D/j/q_quip2.json" | head -1 | grep -o '[0-9][0-9.]*')
check label_fp        'grep -q "<tr><td>stories260K.bin</td><td>FP</td><td>–</td>" "$D/report.html"'
check label_rtn2      '[ -n "$(row st-rtn2 "rtn 2-bit")" ]'
check label_rtn4      '[ -n "$(row st-rtn4 "rtn 4-bit")" ]'
check label_quip2_bpw '[ "$(row st-quip2 "quip+rht 2-bit")" = "<tr><td>st-quip2</td><td>quip+rht 2-bit</td><td>$(printf %.4f "$bpw_q")</td>" ]'
check no_unlabelled   '! grep -q "<tr><td>–</td>" "$D/report.html"'
check bench_row       'grep -q "<td>quant</td><td>quip</td><td>bits=2, m=24, n=40" "$D/report.html"'

# points per plot, counted in the page: ppl vs bpw 3 (rtn2, rtn4 -- once, though quantize --ppl and
# ppl both report it -- quip2), one FP reference line; KLD vs bpw 3; proxy loss 3 x 20 linears;
# zero-shot 2 models x 2 tasks
points() { awk -v id="$1" '$0 ~ "<figure id=\"" id "\">" {on=1} on && /<circle/ {n++} on && /<\/figure>/ {on=0} END {print n+0}' "$D/report.html"; }
check ppl_points   '[ "$(points ppl_vs_bpw)" -eq 3 ]'
check kld_points   '[ "$(points kld_vs_bpw)" -eq 3 ]'
check proxy_points '[ "$(points proxy_loss)" -eq 60 ]'
check zs_points    '[ "$(points zeroshot_acc)" -eq 4 ]'
check fp_ref_line  '[ $(grep -c "stroke-dasharray" "$D/report.html") -eq 1 ] && grep -q ">FP stories260K.bin</text>" "$D/report.html"'
check series_names 'grep -q "<title>quip+rht: " "$D/report.html" && grep -q "<title>rtn: " "$D/report.html"'
for id in ppl_vs_bpw kld_vs_bpw proxy_loss zeroshot_acc; do
  check "svg_$id" '[ -s "$D/svg/$id.svg" ]'
done
check self_contained '! grep -Eq "(src|href)=\"http" "$D/report.html"'

# the older schema: {"kind": "quantize", "model", "methods": [{method, bits, bpw, ppl, kld, per_layer}]}
cat > "$D/old.json" <<'J'
{"kind": "quantize", "model": "ref-llama", "methods": [
 {"method": "quip", "bits": 2, "bpw": 2.02, "ppl": 45.1, "kld": 0.21, "per_layer": [{"name": "0.q", "proxy_loss": 0.01}, {"name": "0.k", "proxy_loss": 0.02}]},
 {"method": "rtn", "bits": 4, "bpw": 4.25, "ppl": 33.0, "kld": 0.05, "per_layer": [{"name": "0.q", "proxy_loss": 0.001}, {"name": "0.k", "proxy_loss": 0.002}]}]}
J
"$H" report "$D/old.json" -o "$D/old.html" 2> "$D/err2"
check old_schema '[ $? -eq 0 ] && grep -q "ppl_vs_bpw 2 points, kld_vs_bpw 2 points, proxy_loss 4 points" "$D/err2" && grep -q "<td>ref-llama</td><td>quip 2-bit</td>" "$D/old.html"'

# what still stops the report: nothing usable at all, an unreadable file (exit 1, one line)
"$H" report "$D/j/foreign.json" -o "$D/x.html" 2> "$D/err3"
check nothing_usable '[ $? -eq 1 ] && [ $(wc -l < "$D/err3") -eq 1 ] && grep -q "^harp report: error: .*foreign.json: not a ppl, quantize, zeroshot or bench result (no results to report)" "$D/err3" && [ ! -e "$D/x.html" ]'
"$H" report "$D/nope.json" -o "$D/x.html" 2> "$D/err4"
check unreadable '[ $? -eq 1 ] && [ $(wc -l < "$D/err4") -eq 1 ] && grep -q "nope.json" "$D/err4" && [ ! -e "$D/x.html" ]'
exit $fail
