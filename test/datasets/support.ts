import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Conversation } from "../../src/datasets/chat-jsonl.ts";

export { problemsOf } from "../support/input-problems.ts";

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
