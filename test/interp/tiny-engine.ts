// A tiny random engine model (word-level organism tokenizer, d 16, 2 blocks) held in memory.
import type { LocalEngine } from "../../src/models/local.ts";
import { tinyModel } from "../support/tiny-model.ts";

export { WORDS } from "../support/tiny-model.ts";

export function tinyEngine(seed = 11): LocalEngine {
  const { model, tokenizer, eos } = tinyModel(seed);
  return { model, tokenizer, template: { kind: "organism" }, stopIds: [eos] };
}
