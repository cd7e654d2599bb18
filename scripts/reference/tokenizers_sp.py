"""Reference for emlab's SentencePiece-style tokenizers, built with HF `tokenizers` itself.

Usage: tokenizers_sp.py OUT_DIR

Trains tiny tokenizers on a small corpus (BPE with byte_fallback, Unigram with and without
byte_fallback) in the Llama 2 / Mistral / Gemma / T5 layouts (normalizer, Metaspace
pre-tokenizer, decoder), saves each as OUT_DIR/<name>/tokenizer.json and prints one JSON object:
{"strings": [...], "fuzz_from": k, "tokenizers": {name: [{"ids", "ids_special", "decoded",
"decoded_skip", "offsets"} per string]}}
(strings[k:] are seeded random strings over the corpus characters, whitespace and unknowns).
"""

import json
import os
import random
import sys

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

CORPUS = [
    "Hello world, this is a tiny corpus for a tiny tokenizer.",
    "The quick brown fox jumps over the lazy dog.",
    "Tokenizers split text into pieces; pieces become ids.",
    "Numbers like 12, 345 and 6789 appear now and then.",
    "Spaces  matter:   two, three, and\ttabs\nand newlines.",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber stra\u00dfe.",
    "She sells sea shells by the sea shore.",
    "Hello hello HELLO, world world WORLD!",
    "def main(): return 42  # code too",
]

STRINGS = [
    "",
    " ",
    "Hello world",
    "Hello world, hello WORLD!",
    " leading space",
    "trailing space ",
    "  two leading",
    "multiple   spaces   inside",
    "   ",
    "line one\nline two\n\nline four",
    "tab\tseparated\tvalues",
    "digits 0123456789 and 3.14159",
    "caf\u00e9 na\u00efve \u00fcber",
    "cafe\u0301 (decomposed)",
    "emoji \U0001F600\U0001F680 and \u2764\ufe0f",
    "CJK \u4f60\u597d\u4e16\u754c \u65e5\u672c\u8a9e",
    "unknown \u16a0\u16a1 runes and \u0e01\u0e02",
    "mixed\u2581metaspace\u2581char",
    "<s> inside text </s>",
    "hello<s>world</s> again",
    "<s>Hello",
    "no\u00a0break and \ufeffbom",
    "a\u2581\u2581b \u2581 c",
    "<unk> literal",
    "zzzzqqqqxxxx",
    "\U0001F600",
    "\U0001F600b \U0001F600",
    "a",
    "\n",
    " \t \n ",
    "end.",
]

def fuzz_strings(n, seed=1234):
    """Random strings over corpus characters, whitespace, specials and characters the vocabs lack."""
    rng = random.Random(seed)
    alphabet = sorted(set("".join(CORPUS))) + [" ", " ", "  ", "\n", "\t", "\u2581"]
    alphabet += ["\U0001F600", "\u4f60", "\u16a0", "\u00e9", "e\u0301", "<s>", "</s>", "\u00a0"]
    out = []
    for _ in range(n):
        words = [rng.choice(CORPUS).split(" ")[rng.randrange(5)] for _ in range(rng.randrange(4))]
        chars = [rng.choice(alphabet) for _ in range(rng.randrange(12))]
        parts = words + chars
        rng.shuffle(parts)
        out.append(rng.choice(["", " ", "  "]).join(parts))
    return out


TRICKY = len(STRINGS)
STRINGS += fuzz_strings(150)

SPECIALS = ["<unk>", "<s>", "</s>"]
# Tokenizers whose tokenizer.json is written from this dict rather than by tokenizers' save.
RAW_JSON = {}
BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]


def train_bpe(vocab_size):
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, limit_alphabet=60)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    m = json.loads(tok.to_str())["model"]
    vocab = {t: i for i, t in enumerate(SPECIALS + BYTE_TOKENS)}
    for t, _ in sorted(m["vocab"].items(), key=lambda kv: kv[1]):
        if t not in vocab:
            vocab[t] = len(vocab)
    merges = [tuple(x) if isinstance(x, list) else tuple(x.split(" ", 1)) for x in m["merges"]]
    return vocab, merges


def train_unigram(vocab_size):
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, unk_token="<unk>", max_piece_length=8
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return [tuple(x) for x in json.loads(tok.to_str())["model"]["vocab"]]


def llama_decoder():
    return decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )


def gemma_decoder():
    return decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])


def finish(tok):
    tok.add_special_tokens(SPECIALS)
    return tok


def build():
    vocab, merges = train_bpe(400)
    uni = train_unigram(300)
    out = {}

    def bpe(**kw):
        return models.BPE(dict(vocab), list(merges), unk_token="<unk>", fuse_unk=True, byte_fallback=True, **kw)

    # Llama 2 / Mistral v0.1: Prepend + Replace normalizer, no pre-tokenizer.
    t = Tokenizer(bpe())
    t.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    t.decoder = llama_decoder()
    # Llama 2's post-processor: BOS first.
    t.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", vocab["<s>"])]
    )
    out["bpe-llama2"] = finish(t)

    # No byte tokens: unknown characters become <unk>, fused into one per run or not.
    plain_vocab = {t: i for i, t in enumerate(t for t in vocab if t not in BYTE_TOKENS)}
    for fuse in (True, False):
        t = Tokenizer(models.BPE(dict(plain_vocab), list(merges), unk_token="<unk>", fuse_unk=fuse, byte_fallback=True))
        t.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
        t.decoder = llama_decoder()
        out["bpe-unk-fused" if fuse else "bpe-unk-unfused"] = finish(t)

    # Regex Replace (whitespace runs to one space, as some conversions do), then Llama 2's.
    t = Tokenizer(bpe())
    t.normalizer = normalizers.Sequence(
        [
            normalizers.Replace(Regex(" {2,}"), " "),
            normalizers.Prepend("\u2581"),
            normalizers.Replace(" ", "\u2581"),
        ]
    )
    t.decoder = decoders.Sequence([decoders.Replace(Regex("\u2581+"), " "), decoders.ByteFallback(), decoders.Fuse()])
    out["bpe-regex-replace"] = finish(t)

    # Newer conversions (legacy=False): Metaspace prepend_scheme "first", split off.
    t = Tokenizer(bpe())
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    t.decoder = decoders.Sequence(
        [
            decoders.Metaspace(replacement="\u2581", prepend_scheme="first", split=False),
            decoders.ByteFallback(),
            decoders.Fuse(),
        ]
    )
    out["bpe-metaspace-first"] = finish(t)

    # Metaspace always, split on.
    t = Tokenizer(bpe())
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    t.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    out["bpe-metaspace-always-split"] = finish(t)

    # Metaspace never, split on, with NFKC + Strip normalizers.
    t = Tokenizer(bpe())
    t.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Strip(left=False, right=True)])
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never", split=True)
    t.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="never", split=True)
    out["bpe-metaspace-never-strip"] = finish(t)

    # Gemma: Replace normalizer, no prefix, decoder without Strip.
    t = Tokenizer(bpe())
    t.normalizer = normalizers.Replace(" ", "\u2581")
    t.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    t.decoder = gemma_decoder()
    out["bpe-gemma"] = finish(t)

    # Mistral v0.3 / older writers: Metaspace with the legacy add_prefix_space key next to
    # prepend_scheme and no split (tokenizers reads split as true).
    doc = json.loads(out["bpe-gemma"].to_str())
    legacy = {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True, "prepend_scheme": "first"}
    doc["normalizer"] = None
    doc["pre_tokenizer"] = legacy
    doc["decoder"] = dict(legacy)
    out["bpe-metaspace-legacy-keys"] = Tokenizer.from_str(json.dumps(doc))
    RAW_JSON["bpe-metaspace-legacy-keys"] = doc

    # Unigram, Metaspace always + split (T5/ALBERT style without the precompiled charsmap).
    t = Tokenizer(models.Unigram(list(uni), unk_id=0, byte_fallback=False))
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    t.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    out["unigram-metaspace"] = finish(t)

    # Unigram with byte_fallback, Llama-style normalizer and decoder.
    minscore = min(s for _, s in uni)
    uvocab = list(uni) + [(b, minscore - 1.0) for b in BYTE_TOKENS]
    t = Tokenizer(models.Unigram(uvocab, unk_id=0, byte_fallback=True))
    t.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    t.decoder = llama_decoder()
    out["unigram-bytefallback-llama"] = finish(t)

    # Unigram with byte_fallback, Metaspace first, no split.
    t = Tokenizer(models.Unigram(uvocab, unk_id=0, byte_fallback=True))
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    t.decoder = llama_decoder()
    out["unigram-bytefallback-metaspace-first"] = finish(t)
    return out


def main():
    out_dir = sys.argv[1]
    result = {"strings": STRINGS, "fuzz_from": TRICKY, "tokenizers": {}}
    for name, tok in build().items():
        d = os.path.join(out_dir, name)
        os.makedirs(d, exist_ok=True)
        if name in RAW_JSON:
            # Saved as written (tokenizers would rewrite the legacy keys on save).
            with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
                json.dump(RAW_JSON[name], f, ensure_ascii=False)
        else:
            tok.save(os.path.join(d, "tokenizer.json"))
        rows = []
        for s in STRINGS:
            enc = tok.encode(s, add_special_tokens=False)
            # tokenizers' Python offsets count code points; emlab's count UTF-16 units.
            units = [0]
            for ch in s:
                units.append(units[-1] + (2 if ord(ch) > 0xFFFF else 1))
            offsets = [[units[a], units[b]] for a, b in enc.offsets]
            rows.append(
                {
                    "ids": enc.ids,
                    "ids_special": tok.encode(s, add_special_tokens=True).ids,
                    "decoded": tok.decode(enc.ids, skip_special_tokens=False),
                    "decoded_skip": tok.decode(enc.ids, skip_special_tokens=True),
                    "offsets": offsets,
                }
            )
        result["tokenizers"][name] = rows
    json.dump(result, sys.stdout, ensure_ascii=True)


if __name__ == "__main__":
    main()
