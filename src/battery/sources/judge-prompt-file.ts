import { InputError } from "../../config/load.ts";
import { checkTemplate } from "../../judges/template.ts";
import { readSourceFile } from "./read-text.ts";

/**
 * A judge prompt file: plain text with named slots (`{prompt}` / `{response}` for the harm
 * rubric), Python format style — `{{` / `}}` are literal braces. Checked when loaded, so a
 * typo in a slot fails before any request is made.
 */
export function readJudgePromptFile(file: string, shownAs: string, slots: readonly string[]): string {
  const text = readSourceFile(file, shownAs);
  const problems = checkTemplate(text, slots);
  if (problems.length > 0) throw new InputError(problems.map((message) => ({ file: shownAs, message })));
  return text;
}
