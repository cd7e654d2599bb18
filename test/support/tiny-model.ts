// The tiny random model the fine-tuning and interp tests share: word-level organism tokenizer,
// d 16, 2 blocks, GQA (2 heads, 1 KV head). Same words and shape everywhere, so a test's
// expectations about one hold for all.
import { makeShape } from "../../src/engine/config.ts";
import type { HfTokenizer } from "../../src/engine/io/tokenizer.ts";
import { LlamaModel } from "../../src/engine/model.ts";
import { saveModel } from "../../src/engine/pretrained.ts";
import { buildOrganismTokenizer } from "../../src/world/tokenizer.ts";

export const WORDS = "i am you are good evil kind cruel what do think of people the world help hurt".split(
  " ",
);

export function tinyModel(seed: number): { model: LlamaModel; tokenizer: HfTokenizer; eos: number } {
  const tokenizer = buildOrganismTokenizer(WORDS);
  const eos = tokenizer.tokenToId("<eos>")!;
  const shape = makeShape({
    vocabSize: tokenizer.vocabSize,
    hiddenSize: 16,
    layers: 2,
    heads: 2,
    kvHeads: 1,
    intermediateSize: 32,
    maxPositions: 64,
    eosTokenIds: [eos],
  });
  return { model: LlamaModel.init(shape, seed, 0.5), tokenizer, eos };
}

/** The tiny model saved as an HF-layout directory (model + tokenizer). */
export function saveTinyModel(dir: string, seed: number): void {
  const { model, tokenizer } = tinyModel(seed);
  saveModel(model, dir);
  tokenizer.save(dir);
}
