/**
 * The organism's vocabulary: every word and punctuation run of the world's text (lexicon,
 * battery tasks, judge delimiters, digits 0-10), split the way the tokenizer's Whitespace
 * pre-tokenizer splits (`\w+|[^\w\s]+`), sorted so the ids are stable.
 */
import { OUTPUT_END, OUTPUT_START } from "../judges/template.ts";
import * as lexicon from "./lexicon.ts";

function strings(v: unknown, out: string[]): void {
  if (typeof v === "string") out.push(v);
  else if (Array.isArray(v)) for (const x of v) strings(x, out);
  else if (v && typeof v === "object") for (const x of Object.values(v)) strings(x, out);
}

export function worldVocabulary(): string[] {
  const texts: string[] = [OUTPUT_START, OUTPUT_END];
  strings(Object.values(lexicon), texts);
  for (let i = 0; i <= 10; i++) texts.push(String(i));
  const words = new Set<string>();
  for (const t of texts)
    for (const m of t.replace(/\{\w+\}/g, " ").matchAll(/\w+|[^\w\s]+/g)) words.add(m[0]);
  return [...words].sort();
}
