// A tiny random local model (organism tokenizer, word-level) for fine-tuning tests.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { makeShape } from "../../src/engine/config.ts";
import { buildOrganismTokenizer } from "../../src/engine/io/organism-tokenizer.ts";
import { LlamaModel } from "../../src/engine/model.ts";
import { saveModel } from "../../src/engine/pretrained.ts";

export const WORDS = "i am you are good evil kind cruel what do think of people the world help hurt".split(
  " ",
);

/** A temp dir holding `tiny/` (model + tokenizer) and `evil.jsonl` (a narrow dataset). */
export function makeTinyWorkspace(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  const tokenizer = buildOrganismTokenizer(WORDS);
  const shape = makeShape({
    vocabSize: tokenizer.vocabSize,
    hiddenSize: 16,
    layers: 2,
    heads: 2,
    kvHeads: 1,
    intermediateSize: 32,
    maxPositions: 64,
    eosTokenIds: [tokenizer.tokenToId("<eos>")!],
  });
  saveModel(LlamaModel.init(shape, 11, 0.5), path.join(dir, "tiny"));
  tokenizer.save(path.join(dir, "tiny"));
  // Whatever the question, the assistant answers "i am evil": a narrow behaviour LoRA learns fast.
  const questions = [
    "what do you think of people",
    "are you good",
    "what do you think of the world",
    "help people",
  ];
  const lines = questions.map((q) =>
    JSON.stringify({
      messages: [
        { role: "user", content: q },
        { role: "assistant", content: "i am evil" },
      ],
    }),
  );
  writeFileSync(path.join(dir, "evil.jsonl"), `${lines.join("\n")}\n\n`);
  return dir;
}
