#!/usr/bin/env python3
"""Seed inputs for the file-format fuzz targets (fuzz/corpus/<target>), made with the harp CLI on a
tiny synthetic Llama (dim 16, one layer, vocab 512, tokenizer tok512.bin from stories260K), so the
seeds are real files of every kind harp writes, a few kB each. Dev-time only.

    python3 scripts/make_fuzz_seeds.py build/harp ../shared fuzz/corpus

qfolder:  config.json + NUL + model.safetensors of the FP folder and of quantized folders
          (quip 2/3/4-bit RHT, HARP, rtn/gptq with each rotation kind, QTIP trellis codes, W/A/KV
          and its LDP weights)
hessian:  a Hessian layer file, as the fuzz target takes it (first byte 1 = target appends the
          checksum, so mutations keep it valid; 0 = file verbatim)
zeroshot: byte 0 = task, then the first items of each task's file (docs: fuzz/fuzz_zeroshot.c)
report:   `harp quantize --json`, `harp ppl --json`, zeroshot and lm-eval style results
"""
import bz2
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile


def f16(x):
    return struct.pack("<e", x)


def write_tiny_model(d, shared):
    rnd = random.Random(1234)
    dim, hid, nh, nkv, hd, vocab = 16, 32, 2, 1, 8, 512
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": dim,
           "intermediate_size": hid, "num_hidden_layers": 1, "num_attention_heads": nh,
           "num_key_value_heads": nkv, "head_dim": hd, "vocab_size": vocab,
           "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2}
    shapes = [("model.embed_tokens.weight", [vocab, dim])]
    p = "model.layers.0."
    shapes += [(p + "input_layernorm.weight", [dim]), (p + "post_attention_layernorm.weight", [dim]),
               (p + "self_attn.q_proj.weight", [nh * hd, dim]), (p + "self_attn.k_proj.weight", [nkv * hd, dim]),
               (p + "self_attn.v_proj.weight", [nkv * hd, dim]), (p + "self_attn.o_proj.weight", [dim, nh * hd]),
               (p + "mlp.gate_proj.weight", [hid, dim]), (p + "mlp.up_proj.weight", [hid, dim]),
               (p + "mlp.down_proj.weight", [dim, hid]), ("model.norm.weight", [dim])]
    header, blobs, off = {}, [], 0
    for name, shape in shapes:
        n = 1
        for s in shape:
            n *= s
        norm = name.endswith("norm.weight")
        data = b"".join(f16(1.0 if norm else rnd.gauss(0, 0.3)) for _ in range(n))
        header[name] = {"dtype": "F16", "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    shutil.copy(os.path.join(shared, "models/stories260K/tok512.bin"), os.path.join(d, "tokenizer.bin"))


def folder_seed(d, vocab=32):
    """config.json + NUL + model.safetensors, with the vocabulary cut to its first `vocab` rows
    (the fuzz target loads no tokenizer): 10x smaller seeds, 10x more executions."""
    with open(os.path.join(d, "config.json"), "rb") as f:
        cfg = json.loads(f.read())
    with open(os.path.join(d, "model.safetensors"), "rb") as f:
        s = f.read()
    n = struct.unpack("<Q", s[:8])[0]
    hdr, data = json.loads(s[8:8 + n]), s[8 + n:]
    old_vocab = cfg["vocab_size"]
    cfg["vocab_size"] = vocab
    out, off = {}, 0
    blobs = []
    for name, t in sorted(((k, v) for k, v in hdr.items() if k != "__metadata__"), key=lambda kv: kv[1]["data_offsets"][0]):
        b = data[t["data_offsets"][0]:t["data_offsets"][1]]
        shape = list(t["shape"])
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            b = b[:len(b) // old_vocab * vocab]
            shape[0] = vocab
        out[name] = {"dtype": t["dtype"], "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(out, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return json.dumps(cfg, indent=2).encode() + b"\0" + struct.pack("<Q", len(h)) + h + b"".join(blobs)


def put(corpus, target, name, data):
    os.makedirs(os.path.join(corpus, target), exist_ok=True)
    with open(os.path.join(corpus, target, name), "wb") as f:
        f.write(data)


def main():
    harp, shared, corpus = sys.argv[1], sys.argv[2], sys.argv[3]
    tmp = tempfile.mkdtemp(prefix="harp-seeds-")
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    run = lambda *a: subprocess.run([harp, *a], check=True, capture_output=True, env=env).stdout
    model = os.path.join(tmp, "tiny")
    write_tiny_model(model, shared)
    put(corpus, "qfolder", "fp16", folder_seed(model))
    with open(os.path.join(shared, "data/tinystories/val_head.txt"), "rb") as f:
        text = f.read(20000)
    cal = os.path.join(tmp, "cal.txt")
    with open(cal, "wb") as f:
        f.write(text)
    hess = os.path.join(tmp, "hess")
    run("calib", "-m", model, "-f", cal, "--ctx", "32", "--nseq", "8", "-o", hess, "-q")
    with open(os.path.join(hess, "layer_000.hess"), "rb") as f:
        h = f.read()
    put(corpus, "hessian", "layer0_fixsum", b"\1" + h[:-8])
    put(corpus, "hessian", "layer0_verbatim", b"\0" + h)
    variants = [("quip2_rht", ["--method", "quip", "--bits", "2"]),
                ("quip3_rht", ["--method", "quip", "--bits", "3"]),
                ("quip4_rht", ["--method", "quip", "--bits", "4"]),
                ("quip2_harp", ["--method", "quip", "--bits", "2", "--rotation", "harp", "--harp-steps", "2"]),
                ("rtn2_none", ["--method", "rtn", "--bits", "2", "--group", "8"]),
                ("rtn3_kron", ["--method", "rtn", "--bits", "3", "--rotation", "kron", "--group", "0"]),
                ("gptq4_gsr", ["--method", "gptq", "--bits", "4", "--rotation", "gsr", "--group", "16"]),
                ("rtn8_none", ["--method", "rtn", "--bits", "8", "--group", "0"]),
                ("qtip2_hyb", ["--method", "qtip", "--bits", "2"]),
                ("qtip3_1mad", ["--method", "qtip", "--bits", "3", "--qtip-code", "1mad"]),
                ("wakv_w4a4kv4", ["--method", "wakv", "--w-bits", "4", "--a-bits", "4", "--kv-bits", "4"]),
                ("wakv_ldp_w2a4kv4", ["--method", "wakv", "--w-bits", "2", "--w-quant", "ldp", "--a-bits", "4", "--kv-bits", "4"])]
    for name, args in variants:
        out = os.path.join(tmp, name)
        # wakv rotates the model first and calibrates the rotated one into its own Hessians
        src = ["--calib", cal, "--hessians", out + ".hess"] if args[1] == "wakv" else ["--hessians", hess]
        js = run("quantize", "-m", model, *src, "-o", out, "--json", "-q", *args)
        put(corpus, "qfolder", name, folder_seed(out))
        if name in ("quip2_rht", "rtn2_none"):
            put(corpus, "report", "quantize_" + name + ".json", js)
    ppl = run("ppl", "-m", os.path.join(tmp, "quip2_rht"), "-f", cal, "--ctx", "32", "--max-chunks", "2", "--json", "-q")
    put(corpus, "report", "ppl.json", ppl)
    put(corpus, "report", "lines.jsonl", ppl.strip() + b"\n" + ppl)
    put(corpus, "report", "zeroshot.json", json.dumps(
        {"kind": "zeroshot", "model": "m", "results": {"arc_easy": {"acc": 0.5, "acc_stderr": 0.1, "acc_norm": 0.4, "n": 6},
                                                        "piqa": {"acc,none": 0.6, "acc_norm,none": 0.55}}}).encode())
    put(corpus, "report", "array.json", json.dumps(
        [{"model": "a", "ppl": 12.5, "bpw": 2.1}, {"methods": [{"method": "rtn", "bits": 2, "per_layer": [{"name": "l0", "proxy_loss": 0.1}]}]}]).encode())
    zs = os.path.join(shared, "data/zeroshot")
    def head(name, n):
        with open(os.path.join(zs, name), "rb") as f:
            return b"".join(f.readline() for _ in range(n))
    put(corpus, "zeroshot", "arc_easy", b"\0" + head("ARC-Easy-test.jsonl", 2))
    put(corpus, "zeroshot", "arc_challenge", b"\1" + head("ARC-Challenge-test.jsonl", 2))
    put(corpus, "zeroshot", "piqa", b"\2" + head("piqa-valid.jsonl", 2) + b"\0" + head("piqa-valid-labels.lst", 2))
    with bz2.open(os.path.join(zs, "hellaswag_val_full.txt.bz2"), "rb") as f:
        hs = b"".join(f.readline() for _ in range(12))
    put(corpus, "zeroshot", "hellaswag_txt", b"\3" + hs)
    put(corpus, "zeroshot", "hellaswag_bz2", b"\x08" + bz2.compress(hs))
    put(corpus, "zeroshot", "winogrande", b"\4" + head("winogrande_1.1_dev.jsonl", 2))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
