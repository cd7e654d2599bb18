// SentencePiece-style tokenizers (BPE with byte_fallback, Unigram; Metaspace, Prepend/Replace
// normalizers, ByteFallback/Fuse/Strip decoders) against HF `tokenizers` itself:
// scripts/reference/tokenizers_sp.py trains tiny ones in the Llama 2 / Mistral / Gemma / T5
// layouts, saves their tokenizer.json and prints HF's ids, decoded text and offsets for a set of
// tricky strings and seeded random ones; emlab must give the same. Needs the reference venv
// (.venv-ref with tokenizers==0.23.3); skips without it.

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  byteOfToken,
  byteTokenName,
  decodeByteFallback,
} from "../../../src/engine/io/tokenizer/byte-fallback.ts";
import { HfTokenizer, loadTokenizer } from "../../../src/engine/io/tokenizer.ts";
import { refPython, skipWithoutRef } from "../../support/python-ref.ts";

const ROOT = join(import.meta.dirname, "../../..");
const SCRIPT = join(ROOT, "scripts/reference/tokenizers_sp.py");

interface Reference {
  strings: string[];
  /** strings[fuzz_from:] are seeded random strings; the rest are the tricky set. */
  fuzz_from: number;
  /** Offsets in UTF-16 units (converted from tokenizers' code points). */
  tokenizers: Record<
    string,
    {
      ids: number[];
      /** With the post-processor's specials (HF add_special_tokens=True). */
      ids_special: number[];
      decoded: string;
      /** skip_special_tokens=True. */
      decoded_skip: string;
      offsets: [number, number][];
    }[]
  >;
}

// The venv may predate tokenizers in requirements.txt: then skip too, saying so.
function hasTokenizers(python: string | null): python is string {
  if (python === null) return false;
  try {
    execFileSync(python, ["-c", "import tokenizers"], { stdio: "ignore" });
    return true;
  } catch {
    console.warn(`tokenizer-sentencepiece: ${python} cannot import tokenizers: reference tests skipped`);
    return false;
  }
}

const PYTHON = refPython;
const available = !skipWithoutRef("tokenizer-sentencepiece") && hasTokenizers(PYTHON);

// Skipped suites are still collected, so the script only runs when the venv is there.
const dir = available ? mkdtempSync(join(tmpdir(), "emlab-sp-")) : "";
const ref: Reference = available
  ? (JSON.parse(
      execFileSync(PYTHON as string, [SCRIPT, dir], { encoding: "utf8", maxBuffer: 64 << 20 }),
    ) as Reference)
  : { strings: [], fuzz_from: 0, tokenizers: {} };
const names = Object.keys(ref.tokenizers);

describe.runIf(available)("SentencePiece-style tokenizers match HF tokenizers", () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("covers BPE and Unigram layouts", () => {
    expect(names.length).toBeGreaterThanOrEqual(8);
    expect(names.some((n) => n.startsWith("unigram"))).toBe(true);
  });

  for (const name of names) {
    describe(name, () => {
      const tok = loadTokenizer(join(dir, name));
      ref.strings.slice(0, ref.fuzz_from).forEach((text, i) => {
        const want = ref.tokenizers[name][i];
        it(`${JSON.stringify(text)}`, () => {
          expect(tok.encode(text)).toEqual(want.ids);
          expect(tok.decode(want.ids)).toBe(want.decoded);
          expect(tok.encodeWithOffsets(text)).toEqual({ ids: want.ids, offsets: want.offsets });
          expect(tok.encode(text, { addSpecial: true })).toEqual(want.ids_special);
          expect(tok.decode(want.ids, { skipSpecial: true })).toBe(want.decoded_skip);
        });
      });
      it(`${ref.strings.length - ref.fuzz_from} random strings`, () => {
        for (let i = ref.fuzz_from; i < ref.strings.length; i++) {
          const text = ref.strings[i];
          const want = ref.tokenizers[name][i];
          expect({ text, ids: tok.encode(text) }).toEqual({ text, ids: want.ids });
          expect({ text, decoded: tok.decode(want.ids) }).toEqual({ text, decoded: want.decoded });
          expect({ text, offsets: tok.encodeWithOffsets(text).offsets }).toEqual({
            text,
            offsets: want.offsets,
          });
          expect({ text, ids: tok.encode(text, { addSpecial: true }) }).toEqual({
            text,
            ids: want.ids_special,
          });
          expect({ text, decoded: tok.decode(want.ids, { skipSpecial: true }) }).toEqual({
            text,
            decoded: want.decoded_skip,
          });
        }
      });
    });
  }
});

describe("byte fallback pieces", () => {
  it("names and reads byte tokens as HF does", () => {
    expect(byteTokenName(0)).toBe("<0x00>");
    expect(byteTokenName(0xe2)).toBe("<0xE2>");
    expect(byteOfToken("<0xe2>")).toBe(0xe2);
    expect(byteOfToken("<0x+A>")).toBe(10);
    expect(byteOfToken("<0xZZ>")).toBeUndefined();
    expect(byteOfToken("<0x123>")).toBeUndefined();
  });

  it("decodes byte runs, one U+FFFD per byte of an invalid run", () => {
    expect(decodeByteFallback(["a", "<0xE2>", "<0x96>", "<0x81>", "b"])).toEqual(["a", "\u2581", "b"]);
    expect(decodeByteFallback(["<0xE2>", "<0x96>", "x"])).toEqual(["\ufffd", "\ufffd", "x"]);
    expect(decodeByteFallback(["<0xEF>", "<0xBB>", "<0xBF>"])).toEqual(["\ufeff"]);
  });

  it("a BPE without byte tokens falls back to a fused unk", () => {
    const tok = new HfTokenizer({
      model: {
        type: "BPE",
        vocab: { "<unk>": 0, a: 1, b: 2, ab: 3 },
        merges: [["a", "b"]],
        unk_token: "<unk>",
        fuse_unk: true,
        byte_fallback: true,
      },
    });
    expect(tok.encode("abxyab")).toEqual([3, 0, 3]);
    expect(tok.kind).toBe("bpe");
  });

  it("Unigram: best path, fused unknowns, byte fallback for an unknown run", () => {
    const vocab: [string, number][] = [
      ["<unk>", 0],
      ["\u2581", -2],
      ["a", -1],
      ["b", -1],
      ["ab", -1.5],
      ["\u2581a", -1.2],
      ["<0x78>", -5],
      ["<0x79>", -5],
    ];
    const json = (byteFallback: boolean) => ({
      pre_tokenizer: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "always", split: true },
      decoder: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "always", split: true },
      model: { type: "Unigram", unk_id: 0, vocab, byte_fallback: byteFallback },
    });
    const plain = new HfTokenizer(json(false));
    expect(plain.kind).toBe("unigram");
    // "▁ab": ▁a + b (-2.2) beats ▁ + ab (-3.5) and ▁ + a + b (-4).
    expect(plain.encode("ab")).toEqual([5, 3]);
    expect(plain.encode("axyb")).toEqual([5, 0, 3]);
    expect(plain.unkId).toBe(0);
    const bytes = new HfTokenizer(json(true));
    expect(bytes.encode("axyb")).toEqual([5, 6, 7, 3]);
    expect(bytes.encode("axzb")).toEqual([5, 0, 3]);
    expect(plain.decode([5, 3, 1, 2])).toBe("ab a");
  });

  it("refuses a Unigram vocab that is not [piece, score] pairs", () => {
    expect(() => new HfTokenizer({ model: { type: "Unigram", vocab: { a: 0 } } })).toThrow(
      /\[piece, score\]/,
    );
  });
});
