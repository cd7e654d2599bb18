import path from "node:path";
import { z } from "zod";
import { InputError } from "../../config/load.ts";
import { type Prompt, readPrompts } from "../prompt-source.ts";
import { builtinFile } from "./builtin.ts";
import { readSourceFile } from "./read-text.ts";

export type PromptList = { inline: string[] } | { file: string } | { builtin: string };

const BuiltinPromptsSchema = z.object({
  version: z.string(),
  provenance: z.string(),
  prompts: z.array(z.string().min(1)).min(1),
});

/** Prompts from inline text, a one-prompt-a-line / JSONL file, or a built-in set; first `limit` only. */
export function loadPromptList(
  source: PromptList,
  studyFile: string,
  field: string,
  limit?: number,
): Prompt[] {
  let prompts: Prompt[];
  if ("builtin" in source) {
    const file = builtinFile(source.builtin, field, studyFile);
    const r = BuiltinPromptsSchema.safeParse(JSON.parse(readSourceFile(file, file)));
    if (!r.success)
      throw new InputError([
        { file, field, message: "not a built-in prompt set (expected {version, provenance, prompts})" },
      ]);
    prompts = r.data.prompts.map((text, i) => ({ id: `b${String(i + 1).padStart(3, "0")}`, text }));
  } else {
    prompts = readPrompts(source, path.dirname(studyFile), field);
  }
  return limit === undefined ? prompts : prompts.slice(0, limit);
}

/** A study-relative path or a built-in set, as a file path and the name errors should show. */
export function resolveSource(
  source: { file: string } | { builtin: string },
  studyFile: string,
  field: string,
): { file: string; shownAs: string } {
  if ("builtin" in source) {
    const file = builtinFile(source.builtin, field, studyFile);
    return { file, shownAs: file };
  }
  return { file: path.resolve(path.dirname(studyFile), source.file), shownAs: source.file };
}
