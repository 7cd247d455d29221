#!/usr/bin/env python3
"""Writes the small tokenizer fixtures under tests/data/tok and fuzz/corpus (seeds), and prints
the expected ids of the byte-level fixture from an independent Python implementation of byte-level
BPE (GPT-2 byte map + rank-ordered merges, pre-tokenized with the `regex` module). Dev tool only:
the C tests hold the printed ids."""
import json, os, struct, sys
import regex

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def byte_map():
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def bytelevel_fixture():
    bm = byte_map()
    vocab = {bm[b]: b for b in range(256)}
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "s"), ("Ġ", "is"), ("t", "h"), ("th", "is"),
              ("Ġ", "c"), ("a", "t"), ("Ġc", "at"), ("Ċ", "Ċ"), ("Î", "©"), ("1", "2")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    added = [{"id": len(vocab), "content": "<|endoftext|>", "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True}]
    tok = {
        "version": "1.0", "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_RE}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": None, "decoder": {"type": "ByteLevel", "add_prefix_space": True,
                                            "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab,
                  # half the merges as "a b" strings, half as ["a", "b"] pairs: both forms parse
                  "merges": [f"{a} {b}" if i % 2 else [a, b] for i, (a, b) in enumerate(merges)]},
    }
    return tok, vocab, merges, bm


def bpe(word, vocab, ranks):
    syms = list(word)
    while len(syms) > 1:
        best = None
        for i in range(len(syms) - 1):
            r = ranks.get((syms[i], syms[i + 1]))
            if r is not None and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            break
        i = best[1]
        syms[i:i + 2] = [syms[i] + syms[i + 1]]
    return [vocab[s] for s in syms]


def encode(text, tok, vocab, merges, bm):
    ranks = {m: i for i, m in enumerate(merges)}
    out = []
    special = "<|endoftext|>"
    parts = text.split(special)
    for k, part in enumerate(parts):
        for w in regex.findall(LLAMA3_RE, part):
            out += bpe("".join(bm[b] for b in w.encode()), vocab, ranks)
        if k + 1 < len(parts):
            out.append(tok["added_tokens"][0]["id"])
    return out


def spm_seed():
    def varint(v):
        o = b""
        while True:
            c = v & 0x7F
            v >>= 7
            if v:
                o += bytes([c | 0x80])
            else:
                return o + bytes([c])

    def field(f, w, payload):
        tag = varint(f << 3 | w)
        if w == 2:
            return tag + varint(len(payload)) + payload
        return tag + payload

    def piece(s, score, ty):
        p = field(1, 2, s.encode()) + field(2, 5, struct.pack("<f", score))
        if ty != 1:
            p += field(3, 0, varint(ty))
        return field(1, 2, p)

    out = piece("<unk>", 0, 2) + piece("<s>", 0, 3) + piece("</s>", 0, 3)
    for b in range(256):
        out += piece("<0x%02X>" % b, 0, 6)
    for i, s in enumerate(["▁t", "he", "▁the", "▁", "t", "h", "e", "a", "▁a", "x"]):
        out += piece(s, -float(i), 1)
    trainer = field(3, 0, varint(2)) + field(35, 0, varint(1))
    norm = field(1, 2, b"identity") + field(3, 0, varint(1)) + field(4, 0, varint(0))
    return out + field(2, 2, trainer) + field(3, 2, norm)


def main():
    tok, vocab, merges, bm = bytelevel_fixture()
    with open(os.path.join(ROOT, "tests/data/tok/bytelevel.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(ROOT, "fuzz/corpus/tokjson/bytelevel.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(ROOT, "fuzz/corpus/spm/mini.model"), "wb") as f:
        f.write(spm_seed())
    for text in ["the cat is this\n\nthe", "This IS the cat's 12345 hat!!\n <|endoftext|>Ω x\t\t y  ",
                 "  the\n\n\ncat"]:
        print(json.dumps(text), encode(text, tok, vocab, merges, bm))


if __name__ == "__main__":
    sys.exit(main())
