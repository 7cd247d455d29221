#!/bin/bash
# harp report rendered in a browser: builds a page from ppl / zeroshot / quantize JSON (the quantize
# rows here are a synthetic example of the older {"methods": [...]} schema, with many points),
# renders it in headless Chromium and checks that the plots exist in the rendered DOM and the
# screenshot is not blank. The report's content is tested without a browser by report.sh.
# Needs chromium (scripts/setup.sh installs it only with HARP_SETUP_BROWSER=1 or --browser);
# without it the test is skipped (exit 77).
set -euo pipefail
: "${HARP_BIN:?}" "${HARP_TMP:?}"
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ]; then
  echo "SKIP: chromium is not installed (HARP_SETUP_BROWSER=1 bash scripts/setup.sh installs it)"
  exit 77
fi
T=$(mktemp -d "$HARP_TMP/report_render.XXXXXX")
trap 'rm -rf "$T"' EXIT

cat > "$T/ppl.json" <<'J'
{"model": "ref-llama", "dataset": "ref-corpus test", "ctx": 512, "ppl": 31.2, "n_tokens": 100000}
J
cat > "$T/zs.json" <<'J'
{"kind": "zeroshot", "model": "ref-llama", "results": {
 "arc_easy": {"acc": 0.40, "acc_stderr": 0.010, "acc_norm": 0.37, "acc_norm_stderr": 0.010, "n": 2376},
 "piqa": {"acc": 0.58, "acc_stderr": 0.011, "acc_norm": 0.57, "acc_norm_stderr": 0.012, "n": 1838},
 "winogrande": {"acc,none": 0.51, "acc_stderr,none": 0.014, "n": 1267}}}
J
{
  echo '{"kind": "quantize", "model": "ref-llama", "methods": ['
  first=1
  for m in rtn:1.0 gptq:0.6 quip:0.35; do
    name=${m%%:*}; f=${m##*:}
    for b in 2 3 4; do
      [ $first = 1 ] || echo ','
      first=0
      ppl=$(awk -v f="$f" -v b="$b" 'BEGIN{printf "%.3f", 31.2*(1+f*8/(b^3))}')
      kld=$(awk -v f="$f" -v b="$b" 'BEGIN{printf "%.5f", f*2/(b^3)}')
      printf '{"method": "%s", "bits": %d, "bpw": %d.%d, "ppl": %s, "kld": %s, "per_layer": [' "$name" "$b" "$b" $((b*3 % 10)) "$ppl" "$kld"
      for l in 0 1 2 3; do for p in q k v o gate up down; do
        [ "$l$p" = 0q ] || printf ','
        printf '{"name": "%d.%s", "proxy_loss": %s}' "$l" "$p" "$(awk -v f="$f" -v b="$b" -v l="$l" 'BEGIN{printf "%.5g", f*(l+1)*0.01/(4^b)}')"
      done; done
      printf ']}'
    done
  done
  echo ']}'
} > "$T/quant.json"

"$HARP_BIN" report "$T/ppl.json" "$T/zs.json" "$T/quant.json" -o "$T/report.html" --svg-dir "$T/svg" --title "harp report test"
grep -q '<svg' "$T/report.html"
for id in ppl_vs_bpw kld_vs_bpw proxy_loss zeroshot_acc; do
  grep -q "id=\"$id\"" "$T/report.html" || { echo "missing plot $id"; exit 1; }
  [ -s "$T/svg/$id.svg" ] || { echo "missing $id.svg"; exit 1; }
done
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir="$T/profile")
timeout 120 "$CHROME" "${flags[@]}" --dump-dom "file://$T/report.html" > "$T/dom.html" 2> "$T/chrome.log" || { cat "$T/chrome.log"; exit 1; }
npath=$(grep -o '<path class="series"' "$T/dom.html" | wc -l)
ncirc=$(grep -o '<circle' "$T/dom.html" | wc -l)
echo "rendered DOM: $npath series paths, $ncirc points"
[ "$npath" -ge 7 ] && [ "$ncirc" -ge 100 ] || { echo "plots missing from the rendered DOM"; exit 1; }
timeout 120 "$CHROME" "${flags[@]}" --screenshot="$T/shot.png" --window-size=1200,1600 "file://$T/report.html" 2> "$T/chrome.log" || { cat "$T/chrome.log"; exit 1; }
[ -s "$T/shot.png" ] || { echo "no screenshot"; exit 1; }
if command -v python3 > /dev/null; then
  python3 "$(dirname "$0")/report_png_nonwhite.py" "$T/shot.png" 0.03
fi
[ -n "${REPORT_SHOT:-}" ] && cp "$T/shot.png" "$REPORT_SHOT"
exit 0
