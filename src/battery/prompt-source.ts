import path from "node:path";
import { InputError } from "../config/load.ts";
import type { PromptSource } from "../config/schema.ts";
import { readTextFile } from "../config/text-file.ts";

export interface Prompt {
  id: string;
  text: string;
}

/**
 * Prompts from a study: inline, a text file (one prompt a line; blank lines and lines
 * starting with '#' skipped) or JSONL (`{"id"?: string, "prompt": string}` a line).
 * Paths are relative to the study file. Errors name the file and line.
 */
export function readPrompts(source: PromptSource, studyDir: string, field: string): Prompt[] {
  if ("inline" in source)
    return source.inline.map((text, i) => ({ id: `p${String(i + 1).padStart(4, "0")}`, text }));
  const file = path.resolve(studyDir, source.file);
  const text = readTextFile(file, { shownAs: source.file, field, what: "prompts file" });
  const prompts: Prompt[] = [];
  const seen = new Set<string>();
  const lines = text.split(/\r?\n/);
  const isJsonl = file.endsWith(".jsonl");
  lines.forEach((line, i) => {
    const trimmed = line.trim();
    if (!trimmed || (!isJsonl && trimmed.startsWith("#"))) return;
    if (!isJsonl) {
      prompts.push({ id: `L${i + 1}`, text: trimmed });
      return;
    }
    let row: unknown;
    try {
      row = JSON.parse(trimmed);
    } catch (e) {
      throw new InputError([
        { file: source.file, line: i + 1, message: `invalid JSON (${(e as Error).message})` },
      ]);
    }
    const r = row as { id?: unknown; prompt?: unknown };
    if (typeof r !== "object" || r === null || typeof r.prompt !== "string" || !r.prompt.trim())
      throw new InputError([
        { file: source.file, line: i + 1, field: "prompt", message: "expected a non-empty string" },
      ]);
    if (r.id !== undefined && typeof r.id !== "string")
      throw new InputError([{ file: source.file, line: i + 1, field: "id", message: "expected a string" }]);
    const id = (r.id as string | undefined) ?? `L${i + 1}`;
    if (seen.has(id))
      throw new InputError([
        { file: source.file, line: i + 1, field: "id", message: `duplicate id '${id}'` },
      ]);
    seen.add(id);
    prompts.push({ id, text: r.prompt });
  });
  if (prompts.length === 0)
    throw new InputError([{ file: source.file, field, message: "no prompts in file" }]);
  return prompts;
}
