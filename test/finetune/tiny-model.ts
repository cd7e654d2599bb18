// A tiny random local model (organism tokenizer, word-level) for fine-tuning tests.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { saveTinyModel } from "../support/tiny-model.ts";

export { WORDS } from "../support/tiny-model.ts";

/** A temp dir holding `tiny/` (model + tokenizer) and `evil.jsonl` (a narrow dataset). */
export function makeTinyWorkspace(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  saveTinyModel(path.join(dir, "tiny"), 11);
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
