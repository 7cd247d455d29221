#!/usr/bin/env python3
"""Zero-shot reference scores for harp, re-implementing lm-evaluation-harness scoring.

The harness itself cannot be installed on the offline GPU machine, so this script
follows its code path for multiple-choice tasks (checked against EleutherAI/
lm-evaluation-harness: lm_eval/api/model.py TemplateLM._encode_pair / loglikelihood,
lm_eval/models/huggingface.py HFLM.tok_encode / _loglikelihood_tokens,
lm_eval/api/task.py ConfigurableTask.process_results, lm_eval/api/metrics.py
mean_stderr, task YAMLs arc_easy.yaml / arc_challenge.yaml / piqa.yaml):

* prompt      "Question: {question}\\nAnswer:" ; continuation " " + choice
              (target_delimiter " "), zero-shot, no description.
* encode pair trailing whitespace of the context moves to the continuation; then
              whole = enc(context + continuation), ctx = enc(context),
              cont = whole[len(ctx):]; enc = tokenizer.encode(s,
              add_special_tokens=False) because HFLM's add_bos_token defaults to
              False (so no <s> for Llama tokenizers unless add_bos_token=True).
* loglik      input = (ctx + cont)[-(max_length+1):][:-1], logits log-softmaxed
              in float32, summed over the last len(cont) positions for the cont
              tokens; max_length = config.max_position_embeddings.
* acc         argmax of the summed log-likelihoods (first index on ties);
  acc_norm    argmax of loglik / len(choice), len in Python characters of the
              choice string without the leading space (not bytes: the harness
              uses float(len(i)) for i in doc_to_choice(doc)).
* stderr      sample standard deviation (n-1) / sqrt(n).

Usage (GPU machine, fp32, TF32 off):
    python3 scripts/lmeval_reference.py --model DIR --data-dir DIR --out ref.json \\
        [--items-out items.json] [--tasks arc_easy,arc_challenge,piqa] [--limit N]
"""
import argparse
import json
import math
import os
import sys
import time

DETAIL_ITEMS = 20


# ---------------------------------------------------------------- data loading
def jsonl_records(path):
    """(line number, object) for every non-blank line of a jsonl file."""
    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            if line.strip():
                yield ln, json.loads(line)


def load_arc(path):
    """ARC jsonl in either schema found in ../shared/data/zeroshot:
    {"question": {"stem", "choices": [{"text","label"}]}, "answerKey"} (AI2 original) or
    {"question": str, "choices": {"text": [...], "label": [...]}, "answerKey"} (HF)."""
    docs = []
    for ln, d in jsonl_records(path):
        q = d["question"]
        if isinstance(q, dict):
            stem = q["stem"]
            texts = [c["text"] for c in q["choices"]]
            labels = [c["label"] for c in q["choices"]]
        else:
            stem = q
            texts = list(d["choices"]["text"])
            labels = list(d["choices"]["label"])
        key = str(d["answerKey"])
        if key not in labels:
            raise ValueError(f"{path}:{ln}: answerKey {key!r} not among labels {labels}")
        docs.append(dict(id=d.get("id", str(ln)), question=stem, choices=texts,
                         gold=labels.index(key)))
    return docs


def load_piqa(jsonl, labels_path):
    with open(labels_path, encoding="utf-8") as f:
        labels = [int(x) for x in f.read().split()]
    docs = [dict(id=str(ln), question=d["goal"], choices=[d["sol1"], d["sol2"]])
            for ln, d in jsonl_records(jsonl)]
    if len(labels) != len(docs):
        raise ValueError(f"{labels_path}: {len(labels)} labels for {len(docs)} items in {jsonl}")
    for d, g in zip(docs, labels):
        d["gold"] = g
    return docs


def load_task(task, data_dir):
    if task == "arc_easy":
        return load_arc(os.path.join(data_dir, "ARC-Easy-test.jsonl"))
    if task == "arc_challenge":
        return load_arc(os.path.join(data_dir, "ARC-Challenge-test.jsonl"))
    if task == "piqa":
        return load_piqa(os.path.join(data_dir, "piqa-valid.jsonl"),
                         os.path.join(data_dir, "piqa-valid-labels.lst"))
    raise ValueError(f"unknown task {task}")


# ---------------------------------------------------------------- harness logic
def doc_requests(doc):
    """(context, continuation) pairs exactly as the YAML templates render them."""
    ctx = "Question: " + doc["question"] + "\nAnswer:"
    return [(ctx, " " + c) for c in doc["choices"]]


def encode_pair(encode, context, continuation):
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = encode(context + continuation)
    ctx = encode(context)
    return ctx, whole[len(ctx):], whole


def mean(xs):
    return sum(xs) / len(xs)


def mean_stderr(xs):
    n = len(xs)
    if n < 2:
        return float("nan")
    mu = mean(xs)
    return math.sqrt(sum((x - mu) ** 2 for x in xs) / (n - 1)) / math.sqrt(n)


def argmax(xs):
    best = 0
    for i, x in enumerate(xs):
        if x > xs[best]:
            best = i
    return best


def score_docs(docs, lls):
    """lls[i][j]: summed log-likelihood of choice j of doc i -> harness metrics."""
    acc, accn, accb = [], [], []
    for d, ll in zip(docs, lls):
        chars = [float(len(c)) for c in d["choices"]]
        nbytes = [float(len(c.encode("utf-8"))) for c in d["choices"]]
        acc.append(1.0 if argmax(ll) == d["gold"] else 0.0)
        accn.append(1.0 if argmax([l / n for l, n in zip(ll, chars)]) == d["gold"] else 0.0)
        accb.append(1.0 if argmax([l / n for l, n in zip(ll, nbytes)]) == d["gold"] else 0.0)
    return {
        "acc": mean(acc), "acc_stderr": mean_stderr(acc),
        "acc_norm": mean(accn), "acc_norm_stderr": mean_stderr(accn),
        "acc_norm_bytes": mean(accb), "acc_norm_bytes_stderr": mean_stderr(accb),
        "n": len(docs),
    }


def build_requests(docs, encode, max_length):
    """Flattened requests: (doc index, choice index, inp tokens, cont tokens, meta)."""
    reqs = []
    boundary = 0
    for di, d in enumerate(docs):
        for ci, (c, k) in enumerate(doc_requests(d)):
            ctx, cont, whole = encode_pair(encode, c, k)
            if not ctx or not cont:
                raise ValueError(f"doc {d['id']} choice {ci}: empty context or continuation encoding")
            if whole[:len(ctx)] != ctx:
                boundary += 1
            inp = (ctx + cont)[-(max_length + 1):][:-1]
            reqs.append((di, ci, inp, cont, ctx))
    return reqs, boundary


# ---------------------------------------------------------------- model side
def run_model(model, reqs, device, batch_tokens=65536):
    """Summed log-likelihood, greedy flag and per-token logprobs of every request."""
    import torch

    order = sorted(range(len(reqs)), key=lambda i: -len(reqs[i][2]))
    out = [None] * len(reqs)
    pos = 0
    while pos < len(order):
        L = len(reqs[order[pos]][2])
        bs = max(1, min(512, batch_tokens // max(L, 1)))
        idx = order[pos:pos + bs]
        pos += bs
        x = torch.zeros((len(idx), L), dtype=torch.long)
        for r, i in enumerate(idx):
            inp = reqs[i][2]
            x[r, :len(inp)] = torch.tensor(inp)  # right padding cannot reach real positions (causal)
        with torch.no_grad():
            logits = model(x.to(device)).logits.float()
            lp = torch.log_softmax(logits, dim=-1)
        for r, i in enumerate(idx):
            inp, cont = reqs[i][2], reqs[i][3]
            n = len(inp)
            sel = lp[r, n - len(cont):n]
            tgt = torch.tensor(cont, device=sel.device)
            tok = sel.gather(1, tgt[:, None])[:, 0]
            greedy = bool((sel.argmax(-1) == tgt).all())
            out[i] = (float(tok.sum()), greedy, [float(v) for v in tok.tolist()])
    return out


def evaluate(model, docs_by_task, encode, max_length, device, detail):
    res, items, full, meta = {}, {}, {}, {}
    for task, docs in docs_by_task.items():
        t0 = time.time()
        reqs, boundary = build_requests(docs, encode, max_length)
        outs = run_model(model, reqs, device)
        lls = [[None] * len(d["choices"]) for d in docs]
        for (di, ci, _, _, _), o in zip(reqs, outs):
            lls[di][ci] = o[0]
        res[task] = score_docs(docs, lls)
        res[task]["seconds"] = round(time.time() - t0, 2)
        res[task]["n_requests"] = len(reqs)
        res[task]["n_tokens_scored"] = sum(len(r[3]) for r in reqs)
        meta[task] = {"context_not_prefix_of_whole": boundary}
        full[task] = {"gold": [d["gold"] for d in docs],
                      "ll": [[round(v, 5) for v in row] for row in lls]}
        if detail:
            rows = []
            by_doc = {}
            for r, o in zip(reqs, outs):
                by_doc.setdefault(r[0], []).append((r, o))
            for di in range(min(DETAIL_ITEMS, len(docs))):
                d = docs[di]
                pairs = doc_requests(d)
                ll = lls[di]
                rows.append({
                    "index": di, "id": d["id"], "gold": d["gold"],
                    "context": pairs[0][0],
                    "continuations": [p[1] for p in pairs],
                    "choice_chars": [len(c) for c in d["choices"]],
                    "choice_bytes": [len(c.encode("utf-8")) for c in d["choices"]],
                    "context_ids": by_doc[di][0][0][4],
                    "continuation_ids": [r[3] for r, _ in by_doc[di]],
                    "input_ids": [r[2] for r, _ in by_doc[di]],
                    "loglik": ll,
                    "token_logprobs": [o[2] for _, o in by_doc[di]],
                    "is_greedy": [o[1] for _, o in by_doc[di]],
                    "pred": argmax(ll),
                    "pred_norm": argmax([l / len(c) for l, c in zip(ll, d["choices"])]),
                })
            items[task] = rows
    return res, items, full, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--items-out", default="")
    ap.add_argument("--tasks", default="arc_easy,arc_challenge,piqa")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--device", default="")
    a = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")

    t0 = time.time()
    try:
        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32,
                                                     attn_implementation="eager")
    except TypeError:
        model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32,
                                                     attn_implementation="eager")
    model = model.to(torch.float32).to(device).eval()
    tok = AutoTokenizer.from_pretrained(a.model)  # HFLM: use_fast=True
    max_length = int(model.config.max_position_embeddings)

    docs_by_task = {}
    for t in a.tasks.split(","):
        docs = load_task(t, a.data_dir)
        docs_by_task[t] = docs[:a.limit] if a.limit else docs

    def enc_hf(s):
        return list(tok.encode(s, add_special_tokens=False))

    def enc_hf_bos(s):
        return list(tok.encode(s, add_special_tokens=True))

    result = {
        "model": os.path.basename(os.path.normpath(a.model)),
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "tokenizer_class": type(tok).__name__,
        "max_length": max_length,
        "protocol": __doc__.split("Usage")[0].strip(),
    }
    res, items, full, meta = evaluate(model, docs_by_task, enc_hf, max_length, device, True)
    result["tasks"] = res
    result["encoding"] = meta
    result["items_first%d" % DETAIL_ITEMS] = items
    print(json.dumps({"lm_eval_default": res}, indent=1), flush=True)

    variants = {}
    res_bos, items_bos, _, meta_bos = evaluate(model, docs_by_task, enc_hf_bos, max_length, device, False)
    variants["add_bos_token=True"] = {"tasks": res_bos, "encoding": meta_bos}

    # The C tokenizer reads tokenizer.model; count where transformers' ids differ.
    spm_path = os.path.join(a.model, "tokenizer.model")
    try:
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=spm_path)

        def enc_sp(s):
            return list(sp.encode(s))

        diff = {}
        for t, docs in docs_by_task.items():
            n = 0
            ex = None
            for d in docs:
                for c, k in doc_requests(d):
                    for s in (c, c + k):
                        if enc_sp(s) != enc_hf(s):
                            n += 1
                            ex = ex or s
            diff[t] = {"strings_differing": n, "example": ex}
        result["hf_vs_sentencepiece"] = diff
        if any(v["strings_differing"] for v in diff.values()):
            res_sp, _, _, meta_sp = evaluate(model, docs_by_task, enc_sp, max_length, device, False)
            variants["sentencepiece_tokenizer.model"] = {"tasks": res_sp, "encoding": meta_sp}
    except Exception as e:  # noqa: BLE001 - optional cross-check
        result["hf_vs_sentencepiece"] = f"not run: {type(e).__name__}: {e}"
    result["variants"] = variants
    result["seconds_total"] = round(time.time() - t0, 2)

    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    if a.items_out:
        with open(a.items_out, "w") as f:
            json.dump({"model": result["model"], "variant": "lm_eval_default",
                       "note": "per-item summed log-likelihoods (rounded to 1e-5) and gold index",
                       "tasks": full}, f, separators=(",", ":"))
            f.write("\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("items_first%d" % DETAIL_ITEMS, "protocol")},
                     indent=1), flush=True)


if __name__ == "__main__":
    sys.exit(main())
