#!/usr/bin/env python3
"""Markdown table of docs/results/rcp.md from the JSON lines of scripts/results_rcp.sh."""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]
texts = [k for k in rows[0] if k != "row"]
head = " | ".join(f"ppl {t} | KLD {t}" for t in texts)
print(f"| row | quantize args | {head} | bpw | mean proxy | quantize s |")
print("|---|---|" + "---|---|" * len(texts) + "---|---|---|")
for d in rows:
    q = d.get("quantize", {})
    cells = []
    for t in texts:
        e = d[t]
        cells += [f"{e['ppl']:.3f}", f"{e['kld_mean']:.4f}" if "kld_mean" in e else "0"]
    lin = q.get("linears", [])
    proxy = f"{sum(x['proxy_loss'] for x in lin) / len(lin):.4f}" if lin else "–"
    bpw = f"{q['bpw']:.4f}" if "bpw" in q else "–"
    print(f"| {d['row']} | {d.get('args', 'FP')} | {' | '.join(cells)} | {bpw} | {proxy} | {q.get('seconds', '–')} |")
