// The worker's pinned packages are the ones the reference venv (.venv-torch) installs and the
// parity tests run against: a pin changed in one place and not the other fails here.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.join(import.meta.dirname, "../..");
const read = (f: string) => readFileSync(path.join(ROOT, f), "utf8");

/** `name==version` pins in a text (requirements lines or pyproject's quoted strings). */
function pins(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/(?:^|")([A-Za-z0-9_.-]+)==([^"\s,]+)/gm)) out.set(m[1].toLowerCase(), m[2]);
  return out;
}

describe("worker/pyproject.toml", () => {
  it("pins torch, transformers, peft and trl as the reference venv does", () => {
    const worker = pins(read("worker/pyproject.toml"));
    const ref = new Map([
      ...pins(read("scripts/reference/requirements-torch.txt")),
      ...pins(read("scripts/reference/requirements-trl.txt")),
    ]);
    for (const name of ["torch", "transformers", "peft", "trl"]) {
      expect(worker.get(name), name).toBeDefined();
      expect(worker.get(name), name).toBe(ref.get(name));
    }
  });
});
