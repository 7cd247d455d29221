#!/usr/bin/env python3
"""Markdown table of docs/results/rcp.md from the JSON lines of scripts/results_rcp.sh."""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]
texts = [k for k in rows[0] if k not in ("row", "args", "quantize")]
head = " | ".join(f"ppl {t} | KLD {t}" for t in texts)
# LDP fit (b) rows: mean over the layers of the block loss after fit (a) and after fit (b)
blk = any("ldp_block_loss" in x for d in rows for x in d.get("quantize", {}).get("linears", []))
print(f"| row | quantize args | {head} | bpw | mean proxy | quantize s |" + (" block loss (a) → (b) |" if blk else ""))
print("|---|---|" + "---|---|" * len(texts) + "---|---|---|" + ("---|" if blk else ""))
for d in rows:
    q = d.get("quantize", {})
    cells = []
    for t in texts:
        e = d[t]
        cells += [f"{e['ppl']:.3f}", f"{e['kld_mean']:.4f}" if "kld_mean" in e else "0"]
    lin = q.get("linears", [])
    proxy = f"{sum(x['proxy_loss'] for x in lin) / len(lin):.4f}" if lin else "–"
    bpw = f"{q['bpw']:.4f}" if "bpw" in q else "–"
    line = f"| {d['row']} | {d.get('args', 'FP')} | {' | '.join(cells)} | {bpw} | {proxy} | {q.get('seconds', '–')} |"
    if blk:
        b = lin[::4] if lin and "ldp_block_loss" in lin[0] else []
        line += (f" {sum(x['ldp_block_loss0'] for x in b) / len(b):.4f} → {sum(x['ldp_block_loss'] for x in b) / len(b):.4f} |"
                 if b else " – |")
    print(line)
