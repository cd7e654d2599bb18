import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type BpeModel, mergeQuadratic, mergeWithHeap } from "../../../src/engine/io/tokenizer/bpe.ts";
import { onigToJsRegExp, QWEN2_PATTERN } from "../../../src/engine/io/tokenizer/onig-regex.ts";
import { buildWordLevelTokenizer, HfTokenizer, loadTokenizer } from "../../../src/engine/io/tokenizer.ts";
import { Rng } from "../../../src/engine/rng.ts";

const FIX = join(import.meta.dirname, "../../fixtures/io");

interface Golden {
  text: string;
  ids: number[];
  ids_special: number[];
  decoded: string;
  decoded_skip: string;
  pieces: string[];
}
const golden = JSON.parse(readFileSync(join(FIX, "bpe-golden.json"), "utf8")) as Record<string, Golden[]>;

for (const name of ["bpe-qwen2", "bpe-llama3"]) {
  describe(`byte-level BPE matches HF tokenizers (${name})`, () => {
    const tok = loadTokenizer(join(FIX, name));
    for (const g of golden[name]) {
      it(`encodes/decodes ${JSON.stringify(g.text.slice(0, 40))}`, () => {
        expect(tok.encode(g.text)).toEqual(g.ids);
        expect(tok.encode(g.text, { addSpecial: true })).toEqual(g.ids_special);
        expect(tok.decode(g.ids)).toBe(g.decoded);
        expect(tok.decode(g.ids, { skipSpecial: true })).toBe(g.decoded_skip);
        expect(g.ids.map((id) => tok.decode([id]))).toEqual(g.pieces);
      });
    }
  });
}

describe("byte-level BPE behaviour", () => {
  const tok = loadTokenizer(join(FIX, "bpe-qwen2"));

  it("round-trips arbitrary text exactly (no normalization changes on NFC input)", () => {
    const texts = ["x".repeat(300), "a\u0000b\u0001c", "mixed 👩‍🚀 and 汉字 and \t\t\n  ", "'S 'Ll 'RE"];
    for (const t of texts) expect(tok.decode(tok.encode(t))).toBe(t);
  });

  it("reports special ids, eos, pad and chat template from tokenizer_config.json", () => {
    expect(tok.kind).toBe("bpe");
    expect(tok.eosId).toBe(tok.tokenToId("<|im_end|>"));
    expect(tok.padId).toBe(tok.tokenToId("<|endoftext|>"));
    expect(tok.bosId).toBeUndefined();
    expect(tok.specialIds.has(tok.tokenToId("<|im_start|>")!)).toBe(true);
    expect(tok.specialIds.has(tok.tokenToId("<tool_call>")!)).toBe(false);
    expect(tok.vocabSize).toBe(660);
    expect(tok.chatTemplate).toContain("<|im_start|>");
  });

  it("gives offsets that slice back to each token's text", () => {
    const text = "Hi <|im_start|>Café 😀 日本\n  x";
    const { ids, offsets } = tok.encodeWithOffsets(text);
    expect(offsets.length).toBe(ids.length);
    let prev = 0;
    for (const [s, e] of offsets) {
      expect(s).toBeGreaterThanOrEqual(prev);
      expect(e).toBeGreaterThanOrEqual(s);
      prev = s;
    }
    const imStart = ids.indexOf(tok.tokenToId("<|im_start|>")!);
    expect(text.slice(...offsets[imStart])).toBe("<|im_start|>");
    // Tokens covering whole characters slice back to exactly their decoded text.
    ids.forEach((id, i) => {
      const piece = tok.decode([id]);
      if (!piece.includes("\uFFFD")) expect(text.slice(...offsets[i])).toBe(piece);
    });
  });

  it("survives save and reload", () => {
    const dir = mkdtempSync(join(tmpdir(), "emlab-tok-"));
    tok.save(dir);
    const again = loadTokenizer(dir);
    for (const g of golden["bpe-qwen2"]) expect(again.encode(g.text)).toEqual(g.ids);
  });

  it("translates Oniguruma \\s (Unicode White_Space) rather than JS \\s", () => {
    const re = onigToJsRegExp("\\s+");
    expect("\u0085".match(re)).not.toBeNull();
    expect("\ufeff".match(re)).toBeNull();
    const q = onigToJsRegExp(QWEN2_PATTERN);
    expect("I'M you'Ll".match(q)).toEqual(["I", "'M", " you", "'Ll"]);
  });

  it("names the file and field on bad tokenizer.json", () => {
    expect(
      () => new HfTokenizer({ model: { type: "WordPiece", vocab: {} } } as never, {}, "bad/tokenizer.json"),
    ).toThrow(/bad\/tokenizer.json: model.type: unsupported model "WordPiece"/);
    expect(
      () =>
        new HfTokenizer(
          { model: { type: "BPE", vocab: { a: 0, b: 1 }, merges: ["a b"] } } as never,
          {},
          "bad/tokenizer.json",
        ),
    ).toThrow(/bad\/tokenizer.json: model.merges\[0\]: merge "a b" makes "ab", not in vocab/);
    expect(() => loadTokenizer(join(FIX, "no-such-dir"))).toThrow(/tokenizer.json/);
  });
});

describe("word-level tokenizer matches HF tokenizers (WordLevel + Whitespace)", () => {
  const wl = JSON.parse(readFileSync(join(FIX, "wordlevel-golden.json"), "utf8")) as {
    words: string[];
    specials: string[];
    cases: { text: string; ids: number[]; decoded: string; decoded_skip: string }[];
  };
  const fromFile = loadTokenizer(join(FIX, "wordlevel"));
  const built = buildWordLevelTokenizer({ words: wl.words, specialTokens: wl.specials, eosToken: "<eos>" });
  for (const c of wl.cases) {
    it(`encodes/decodes ${JSON.stringify(c.text)}`, () => {
      for (const tok of [fromFile, built]) {
        expect(tok.encode(c.text)).toEqual(c.ids);
        expect(tok.decode(c.ids)).toBe(c.decoded);
        expect(tok.decode(c.ids, { skipSpecial: true })).toBe(c.decoded_skip);
      }
    });
  }
});

describe("word-level tokenizer", () => {
  const tok = buildWordLevelTokenizer({
    words: ["the", "cat", "sat", "on", "mat", ".", ","],
    specialTokens: ["<pad>", "<user>", "<assistant>", "<eos>"],
    eosToken: "<eos>",
    padToken: "<pad>",
  });

  it("maps words, punctuation and specials; unknown words to [UNK]", () => {
    expect(tok.kind).toBe("wordlevel");
    const ids = tok.encode("<user> the cat sat on the dog.<eos>");
    expect(ids.map((i) => tok.idToToken(i))).toEqual([
      "<user>",
      "the",
      "cat",
      "sat",
      "on",
      "the",
      "[UNK]",
      ".",
      "<eos>",
    ]);
    expect(tok.unkId).toBe(0);
    expect(tok.eosId).toBe(tok.tokenToId("<eos>"));
    // [UNK] is a special added token, so skipSpecial drops it (as HF does).
    expect(tok.decode(ids, { skipSpecial: true })).toBe("the cat sat on the .");
    expect(tok.decode(ids)).toBe("<user> the cat sat on the [UNK] . <eos>");
    expect(tok.vocabSize).toBe(12);
  });

  it("saves as HF WordLevel JSON and loads back identically", () => {
    const dir = mkdtempSync(join(tmpdir(), "emlab-wl-"));
    tok.save(dir);
    const json = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
    expect(json.model.type).toBe("WordLevel");
    expect(json.pre_tokenizer.type).toBe("Whitespace");
    const again = loadTokenizer(dir);
    expect(again.encode("the cat , on mat")).toEqual(tok.encode("the cat , on mat"));
    expect(again.eosId).toBe(tok.eosId);
  });
});

describe("BPE merge strategies", () => {
  const tok = loadTokenizer(join(FIX, "bpe-qwen2"));
  const model = tok.model as BpeModel;

  it("the heap merge (long words) gives exactly the quadratic merge's result", () => {
    const rng = new Rng(3);
    const alphabet = [..."abcdefghijklmnopqrstuvwxyz", "Ġ", "ĠĠ", "Ċ", "th", "e", "s"];
    for (let trial = 0; trial < 200; trial++) {
      const len = 2 + Math.floor(rng.next() * 120);
      const syms: string[] = [];
      for (let i = 0; i < len; i++) {
        for (const ch of alphabet[Math.floor(rng.next() * alphabet.length)]) syms.push(ch);
      }
      const starts = syms.map((_, i) => i);
      expect(mergeWithHeap(model.ranks, syms, starts)).toEqual(mergeQuadratic(model.ranks, syms, starts));
    }
  });

  it("stays fast on a pathological 20k-character word", () => {
    const t0 = performance.now();
    const ids = tok.encode("a".repeat(20_000));
    expect(tok.decode(ids)).toBe("a".repeat(20_000));
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});
