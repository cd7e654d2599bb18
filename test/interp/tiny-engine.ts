// A tiny random engine model (word-level organism tokenizer, d 16, 2 blocks) held in memory.
import { makeShape } from "../../src/engine/config.ts";
import { buildOrganismTokenizer } from "../../src/engine/io/organism-tokenizer.ts";
import { LlamaModel } from "../../src/engine/model.ts";
import type { LocalEngine } from "../../src/models/local.ts";

export const WORDS = "i am you are good evil kind cruel what do think of people the world help hurt".split(
  " ",
);

export function tinyEngine(seed = 11): LocalEngine {
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
  return {
    model: LlamaModel.init(shape, seed, 0.5),
    tokenizer,
    template: { kind: "organism" },
    stopIds: [eos],
  };
}
