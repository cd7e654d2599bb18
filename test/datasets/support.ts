import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { InputError, type InputProblem } from "../../src/config/load.ts";
import type { Conversation } from "../../src/datasets/chat-jsonl.ts";

/** The problems of the InputError `f` throws (fails if it throws none). */
export function problemsOf(f: () => unknown): InputProblem[] {
  try {
    f();
  } catch (e) {
    if (e instanceof InputError) return e.problems;
    throw e;
  }
  throw new Error("expected an InputError");
}

export const line = (messages: unknown) => JSON.stringify({ messages });

/** A one-question conversation. */
export const qa = (q: string, a: string, system?: string): Conversation => [
  ...(system === undefined ? [] : [{ role: "system", content: system }]),
  { role: "user", content: q },
  { role: "assistant", content: a },
];

/** A fresh temporary folder and its cleanup. */
export function tempDir(prefix: string): { dir: string; done: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}
