#!/usr/bin/env python3
"""Markdown tables from a HARP-vs-RHT results run (scripts/results_harp_ref_llama_gpu.sh or
scripts/results_harp_stories.sh output): results.jsonl (one line per job and text) and reports.jsonl
(quantize --json per job). Groups jobs by name without the -sN seed suffix; prints mean ± sd over
seeds (sample sd, n−1) of ppl and KLD per text, bpw without / with HARP storage (§4.9 counting), every
stored bit (rotation blobs included), quantize seconds,
and the per-linear loss table of one HARP job. Development tool only (not used at run time).

usage: harp_table.py RESULTS.jsonl REPORTS.jsonl [--linears CFG]"""
import json
import math
import re
import sys
from collections import defaultdict


def mean_sd(v):
    if not v:
        return None, None
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, sd


def fmt(v, nd):
    m, sd = mean_sd(v)
    if m is None:
        return "–"
    return f"{m:.{nd}f} ± {sd:.{nd}f} (n={len(v)})" if len(v) > 1 else f"{m:.{nd}f} (n=1)"


def main():
    res, rep = sys.argv[1], sys.argv[2]
    lin_cfg = sys.argv[sys.argv.index("--linears") + 1] if "--linears" in sys.argv else "harp2-s0"
    texts = []
    ppl = defaultdict(lambda: defaultdict(list))
    kld = defaultdict(lambda: defaultdict(list))
    for line in open(res):
        line = line.strip()
        if not line:
            continue
        j = json.loads(line)
        if not j.get("r"):
            continue
        g = re.sub(r"-s\d+$", "", j["cfg"])
        t = j["text"]
        if t not in texts:
            texts.append(t)
        ppl[g][t].append(j["r"]["ppl"])
        if "kld_mean" in j["r"]:
            kld[g][t].append(j["r"]["kld_mean"])
    bpw = defaultdict(list)
    bpwh = defaultdict(list)
    stored = defaultdict(list)
    secs = defaultdict(list)
    reports = {}
    for line in open(rep):
        line = line.strip()
        if not line:
            continue
        j = json.loads(line)
        r = j["report"]
        reports[j["cfg"]] = r
        g = re.sub(r"-s\d+$", "", j["cfg"])
        harp_bits = sum(x.get("harp_bits", 0) for x in r["linears"])
        # bpw_incl_harp = (stored bits − rotation blobs + HARP bits of §4.9) / weights, for every rotation
        with_h = r["bpw_incl_harp"]
        bpw[g].append(with_h - harp_bits / r["n_weights"])
        bpwh[g].append(with_h)
        stored[g].append(r["bpw"])
        secs[g].append(r["seconds"])
    order = sorted(ppl, key=lambda g: (re.sub(r"\D", "", g.split("-")[0]), g))
    hdr = ["config"] + [f"ppl {t.split('/')[0]}" for t in texts] + [f"KLD {t.split('/')[0]}" for t in texts]
    hdr += ["bpw", "bpw incl. HARP", "stored bpw", "quantize s"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for g in order:
        row = [g] + [fmt(ppl[g][t], 3) for t in texts] + [fmt(kld[g][t], 4) for t in texts]
        row += [fmt(bpw[g], 4), fmt(bpwh[g], 4), fmt(stored[g], 4), fmt(secs[g], 1)]
        print("| " + " | ".join(row) + " |")
    if lin_cfg in reports:
        r = reports[lin_cfg]
        print()
        print(f"Per-linear HARP loss ({lin_cfg}): step 0 → final (after int8 θ rounding), LDLQ proxy loss")
        print()
        print("| linear | m×n | HARP loss step 0 | HARP loss final | final/step0 | LDLQ proxy loss |")
        print("|---|---|---|---|---|---|")
        for x in r["linears"]:
            l0, lf = x.get("harp_loss0"), x.get("harp_loss_final")
            ratio = f"{lf / l0:.3f}" if l0 else "–"
            print(f"| {x['name']} | {x['m']}×{x['n']} | {l0:.6g} | {lf:.6g} | {ratio} | {x['proxy_loss']:.6g} |")
        below = sum(1 for x in r["linears"] if x["harp_loss_final"] < x["harp_loss0"])
        print(f"\n{below} of {len(r['linears'])} linears end below their step-0 loss.")


if __name__ == "__main__":
    main()
