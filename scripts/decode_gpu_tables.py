#!/usr/bin/env python3
"""Markdown tables of docs/results/decode-gpu.md from the JSON rows of `harp bench gemv --gpu --json`
(and, when given, the peer harness's rows): python3 scripts/decode_gpu_tables.py BENCH.jsonl [GGML.jsonl]"""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
peer = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")] if len(sys.argv) > 2 else []
shapes = ["4096x4096", "11008x4096", "4096x11008", "12288x4096", "22016x4096"]
qts = ["f16", "int2", "int3", "int4", "int8", "e8p2", "rvq3", "rvq4"]
cp = [r for r in rows if r["kind"] == "copy"][0]
print("Device: %s, %d SMs, L2 %d MB; cudaMemcpy device-to-device %.0f GB/s (read + write).\n"
      % (cp["name"], cp["sms"], cp["l2_bytes"] >> 20, cp["copy_gbps"]))
G = {(r["shape"], r["qtype"], r["batch"], r["warps"]): r for r in rows if r["kind"] == "gemv"}


def best(s, q, b):
    c = [G[k] for k in [(s, q, b, 8), (s, q, b, 4)] if k in G]
    return min(c, key=lambda r: r["us"])


for b in (1, 4):
    print("GEMV alone, batch %d: µs per call (graph replay, cold weights), weight GB/s, %% of copy "
          "(best of the 4- and 8-warp variants)\n" % b)
    print("| qtype | " + " | ".join(shapes) + " |")
    print("|---|" + "---|" * len(shapes))
    for q in qts:
        cells = []
        for s in shapes:
            r = best(s, q, b)
            cells.append("%.2f µs · %.0f GB/s · **%.1f %%**" % (r["us"], r["gbps"], r["pct_of_copy"]))
        print("| %s | %s |" % (q, " | ".join(cells)))
    print()
L = {(r["shape"], r["qtype"], r["rotation"], r["batch"]): r for r in rows if r["kind"] == "linear"}
for b in (1, 4):
    print("Whole linear at decode, batch %d: input transform + GEMV + output transform (+ residual add), µs: "
          "RHT / HARP / HARP÷RHT (GEMV alone)\n" % b)
    print("| qtype | " + " | ".join(shapes) + " |")
    print("|---|" + "---|" * len(shapes))
    for q in qts[1:]:
        cells = []
        for s in shapes:
            a, h = L[(s, q, "rht", b)], L[(s, q, "harp", b)]
            cells.append("%.1f / %.1f / %.2f× (%.1f)" % (a["us"], h["us"], h["us"] / a["us"], best(s, q, b)["us"]))
        print("| %s | %s |" % (q, " | ".join(cells)))
    print()
P = {(r["shape"], r["qtype"]): r for r in rows if r["kind"] == "prefill"}
if P:
    rws = next(iter(P.values()))["rows"]
    print("Prefill, %d rows: dequantized fp16 tiles (1024 rows) + cublasGemmEx, µs · TFLOP/s · speed vs cuBLAS "
          "on a resident dense fp16 weight\n" % rws)
    print("| qtype | " + " | ".join(shapes) + " |")
    print("|---|" + "---|" * len(shapes))
    print("| cuBLAS fp16 (dense) | %s |" % " | ".join("%.0f µs · %.0f TF/s" % (P[(s, "f16")]["f16_cublas_us"],
                                                                          P[(s, "f16")]["f16_cublas_tflops"]) for s in shapes))
    for q in qts:
        print("| %s | %s |" % (q, " | ".join("%.0f µs · %.0f TF/s · %.2f×" % (P[(s, q)]["us"], P[(s, q)]["tflops"],
                                                                             P[(s, q)]["vs_f16"]) for s in shapes)))
    print()
A = [r for r in rows if r["kind"] == "attn"]
if A:
    print("Decode attention (RoPE + KV store + split-K attention + combine), head_dim 128\n")
    print("| heads / kv heads | ctx | batch | µs | KV GB/s | % of copy |")
    print("|---|---|---|---|---|---|")
    for r in A:
        print("| %d / %d | %d | %d | %.2f | %.0f | %.1f %% |" % (r["heads"], r["kv_heads"], r["ctx"], r["batch"], r["us"],
                                                              r["gbps"], r["pct_of_copy"]))
    print()
if peer:
    PG = {(r["shape"], r["type"], r["batch"]): r for r in peer}
    print("Peer: ggml CUDA mul_mat, µs and weight GB/s; harp ÷ ggml weight throughput\n")
    for b in sorted({r["batch"] for r in peer}):
        print("| type (batch %d) | " % b + " | ".join(shapes) + " |")
        print("|---|" + "---|" * len(shapes))
        for t in ["f16", "q4_0", "q2_K", "iq2_xxs", "iq2_xs"]:
            print("| %s | %s |" % (t, " | ".join("%.2f µs · %.0f GB/s" % (PG[(s, t, b)]["us"], PG[(s, t, b)]["gbps"])
                                               if (s, t, b) in PG else "–" for s in shapes)))
        for q, t in [("e8p2", "iq2_xxs"), ("e8p2", "iq2_xs"), ("int4", "q4_0"), ("f16", "f16")]:
            cells = []
            for s in shapes:
                if (s, t, b) in PG:
                    h = best(s, q, b)
                    # weights per second: parameters m·n per call
                    cells.append("%.2f×" % (PG[(s, t, b)]["us"] / h["us"]))
                else:
                    cells.append("–")
            print("| harp %s ÷ ggml %s (weights/s) | %s |" % (q, t, " | ".join(cells)))
        print()
