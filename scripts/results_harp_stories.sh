#!/usr/bin/env bash
# Results table for docs/results/harp-stories260k.md (issue 5, acceptance 3, stories260K part):
# QuIP#-RHT vs QuIP#-HARP (paper defaults: 1200 steps, b 8, lr 0.03, HBD λ 0.1, int8 θ, scale
# override 0.9 at 2 bits) at 2, 3 and 4 bits, seeds 0..2, plus the control "harp0" (HARP with
# --harp-steps 0: RHT's rotation on power-of-two widths, HARP's scale override). Data protocol of
# docs/results/quant-stories260k.md: Hessians from the first 400 kB of TinyStories val_head.txt
# (ctx 256, all windows), perplexity and KL(FP ‖ quantized) on the rest (ctx 256, first 40 windows).
# usage: scripts/results_harp_stories.sh HARP_BIN SHARED_DIR WORK_DIR [BITS="2 3 4"] [SEEDS="0 1 2"] [THREADS=2]
# HARP_EXTRA (environment): extra flags for the HARP runs only (e.g. "--harp-steps 2" for a smoke run).
# Writes WORK_DIR/runs.jsonl (one line per run, appended; finished runs are skipped on a re-run),
# WORK_DIR/harp-stories260k.json and WORK_DIR/harp-stories260k.md (mean ± sd over seeds).
set -eu
H=$1; S=$2; W=$3; BITS=${4:-"2 3 4"}; SEEDS=${5:-"0 1 2"}; T=${6:-2}
export OMP_WAIT_POLICY=passive   # the HARP fit runs many small parallel regions (see docs/cli/quantize.md)
M=$S/models/stories260K/stories260K.bin
E="--ctx 256 --max-chunks 40"
mkdir -p "$W"
head -c 400000 "$S/data/tinystories/val_head.txt" > "$W/calib.txt"
tail -c +400001 "$S/data/tinystories/val_head.txt" > "$W/eval.txt"
[ -f "$W/hess/layer_004.hess" ] || "$H" calib -m "$M" -f "$W/calib.txt" --ctx 256 --nseq 0 -o "$W/hess" -q
[ -f "$W/fp.json" ] || "$H" ppl -m "$M" -f "$W/eval.txt" $E --json -q -t "$T" --save-logits "$W/fp.logits" > "$W/fp.json"
touch "$W/runs.jsonl"
for bits in $BITS; do
  for seed in $SEEDS; do
    for rot in rht harp0 harp; do
      key="\"rot\": \"$rot\", \"bits\": $bits, \"seed\": $seed,"
      grep -qF "$key" "$W/runs.jsonl" && continue
      O="$W/$rot$bits-s$seed"
      case $rot in rht) F="--rotation rht";; harp0) F="--rotation harp --harp-steps 0";; *) F="--rotation harp ${HARP_EXTRA:-}";; esac
      q=$("$H" quantize -m "$M" --hessians "$W/hess" -o "$O" --method quip --bits $bits $F --seed $seed --no-resume --force -t "$T" --json -q)
      p=$("$H" ppl -m "$O" -f "$W/eval.txt" $E --json -q -t "$T" --kld-base "$W/fp.logits")
      python3 - "$rot" "$bits" "$seed" "$q" "$p" >> "$W/runs.jsonl" <<'PY'
import json, sys
rot, bits, seed, q, p = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]), json.loads(sys.argv[5])
row = {"rot": rot, "bits": bits, "seed": seed, "bpw": q["bpw"], "bpw_harp": q["bpw_incl_harp"], "quantize_s": q["seconds"],
       "timing": q.get("timing"), "ppl": p["ppl"], "kld": p["kld_mean"], "top1": p["top1_agree"],
       "n_tokens_scored": p["n_tokens_scored"], "mean_proxy_loss": sum(r["proxy_loss"] for r in q["linears"]) / len(q["linears"])}
if rot != "rht":
    L = q["linears"]
    row["harp_loss_drop_all"] = all(r["harp_loss_final"] < r["harp_loss0"] for r in L)
print(json.dumps(row, sort_keys=False).replace('{"rot"', '{"rot"'))
PY
      rm -rf "$O"
      tail -n 1 "$W/runs.jsonl"
    done
  done
done
python3 - "$W" <<'PY'
import json, math, sys
W = sys.argv[1]
fp = json.load(open(W + "/fp.json"))
runs = [json.loads(l) for l in open(W + "/runs.jsonl") if l.strip()]
def ms(v):
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, sd
out, lines = [], []
names = {"rht": "QuIP#-RHT", "harp0": "QuIP#-HARP, 0 steps (θ = 0)", "harp": "QuIP#-HARP"}
lines.append("| bits | rotation | seeds | ppl (mean ± sd) | KLD nats (mean ± sd) | top-1 agree | bpw | bpw incl. HARP | mean proxy loss | quantize s (mean) | HARP fit s |")
lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
for bits in (2, 3, 4):
    for rot in ("rht", "harp0", "harp"):
        R = [r for r in runs if r["bits"] == bits and r["rot"] == rot]
        if not R: continue
        g = {k: ms([r[k] for r in R]) for k in ("ppl", "kld", "top1", "bpw", "bpw_harp", "quantize_s", "mean_proxy_loss")}
        fit = ms([(r.get("timing") or {}).get("harp_fit", 0.0) for r in R])
        o = {"bits": bits, "rotation": rot, "seeds": sorted(r["seed"] for r in R), **{k: {"mean": v[0], "sd": v[1]} for k, v in g.items()},
             "harp_fit_s": {"mean": fit[0], "sd": fit[1]}, "per_seed": R}
        out.append(o)
        lines.append(f"| {bits} | {names[rot]} | {len(R)} | {g['ppl'][0]:.3f} ± {g['ppl'][1]:.3f} | "
                     f"{g['kld'][0]:.4f} ± {g['kld'][1]:.4f} | {g['top1'][0]:.4f} | {g['bpw'][0]:.3f} | {g['bpw_harp'][0]:.3f} | "
                     f"{g['mean_proxy_loss'][0]:.5f} | {g['quantize_s'][0]:.1f} | {fit[0]:.1f} |")
json.dump({"fp": fp, "rows": out}, open(W + "/harp-stories260k.json", "w"), indent=1)
md = f"FP32: ppl {fp['ppl']:.4f} on {fp['n_tokens_scored']} scored tokens\n\n" + "\n".join(lines) + "\n"
open(W + "/harp-stories260k.md", "w").write(md)
print(md)
PY
