#!/usr/bin/env python3
"""Tables of docs/results/harp-any-width.md from scripts/results_harp_any_width.sh output.

usage: scripts/harp_any_width_table.py WORK_DIR [TITLE]
Prints markdown: (1) ppl / KLD / top-1 / mean proxy loss / fit time per configuration (mean ± sample
sd over seeds); (2) per-linear LDLQ proxy loss tr(ΔW H ΔWᵀ)/tr(W H Wᵀ), mean over seeds, for RHT
(= the hadamard schedule at 0 steps), greedy at 0 steps, greedy fitted and hadamard fitted, with the
number of seeds where the hadamard schedule's loss is <= RHT's; (3) the HARP fit loss at step 0 and
after the last step for both schedules.
"""
import json
import math
import sys

CONFIGS = [("rht", "QuIP#-RHT (= hadamard, 0 steps)"), ("greedy0", "HARP greedy, 0 steps"),
           ("greedy", "HARP greedy, fitted"), ("hadamard", "HARP hadamard, fitted")]


def msd(v):
    if not v:
        return "–"
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return f"{m:.4f} ± {sd:.4f}" if m < 10 else f"{m:.3f} ± {sd:.3f}"


def main():
    w = sys.argv[1]
    runs = [json.loads(l) for l in open(f"{w}/runs.jsonl") if l.strip()]
    fp = json.load(open(f"{w}/fp.json"))
    by = {}
    for r in runs:
        by.setdefault(r["config"], {})[r["seed"]] = r
    seeds = sorted({r["seed"] for r in runs})
    print(f"FP: ppl {fp['ppl']:.4f} on {fp['n_tokens_scored']} scored tokens; seeds {seeds}\n")
    print("| config | seeds | ppl | KLD nats | top-1 agree | mean proxy loss | HARP fit s |")
    print("|---|---|---|---|---|---|---|")
    for c, label in CONFIGS:
        rs = list(by.get(c, {}).values())
        if not rs:
            continue
        ppl = [r["ppl"]["ppl"] for r in rs]
        kld = [r["ppl"]["kld_mean"] for r in rs]
        top = [r["ppl"]["top1_agree"] for r in rs]
        prx = [sum(l["proxy_loss"] for l in r["quantize"]["linears"]) / len(r["quantize"]["linears"]) for r in rs]
        fit = [r["quantize"]["timing"].get("harp_fit", 0.0) for r in rs]
        print(f"| {label} | {len(rs)} | {msd(ppl)} | {msd(kld)} | {msd(top)} | {msd(prx)} | {sum(fit) / len(fit):.1f} |")
    print()
    names = [l["name"] for l in next(iter(by["rht"].values()))["quantize"]["linears"]]
    dims = {l["name"]: (l["m"], l["n"]) for l in next(iter(by["rht"].values()))["quantize"]["linears"]}

    def per(c, name, key="proxy_loss"):
        out = []
        for s in seeds:
            r = by.get(c, {}).get(s)
            if r:
                out += [l[key] for l in r["quantize"]["linears"] if l["name"] == name]
        return out

    print("| linear | m×n | RHT | greedy 0 steps | greedy fitted | hadamard fitted | hadamard ≤ RHT (seeds) |")
    print("|---|---|---|---|---|---|---|")
    total_ok = total = 0
    for nm in names:
        cols = [per(c, nm) for c, _ in CONFIGS]
        ok = sum(1 for s in seeds if per("hadamard", nm) and by.get("hadamard", {}).get(s) and by.get("rht", {}).get(s) and
                 [l["proxy_loss"] for l in by["hadamard"][s]["quantize"]["linears"] if l["name"] == nm][0] <=
                 [l["proxy_loss"] for l in by["rht"][s]["quantize"]["linears"] if l["name"] == nm][0])
        n_h = len(per("hadamard", nm))
        total_ok += ok
        total += n_h
        f = lambda v: f"{sum(v) / len(v):.6f}" if v else "–"
        print(f"| {nm} | {dims[nm][0]}×{dims[nm][1]} | " + " | ".join(f(v) for v in cols) + f" | {ok} of {n_h} |")
    print(f"\nhadamard fitted ≤ RHT: {total_ok} of {total} (linear, seed) pairs\n")
    print("| linear | greedy fit loss step 0 → final | hadamard fit loss step 0 → final |")
    print("|---|---|---|")
    for nm in names:
        cells = []
        for c in ("greedy", "hadamard"):
            a, b = per(c, nm, "harp_loss0"), per(c, nm, "harp_loss_final")
            cells.append(f"{sum(a) / len(a):.5f} → {sum(b) / len(b):.5f}" if a and b else "–")
        print(f"| {nm} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
