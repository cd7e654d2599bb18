import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { InputError } from "../../config/load.ts";

/** emlab's own question sets and judge prompts (src/battery/data), each with a version and provenance. */
export const BUILTIN_DIR = path.resolve(import.meta.dirname, "../data");

/** The file of a built-in set, by name (file name without extension). */
export function builtinFile(name: string, field: string, studyFile = "study"): string {
  const files = readdirSync(BUILTIN_DIR, { withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => d.name);
  const hit = files.find((f) => f.replace(/\.[^.]+$/, "") === name);
  if (!hit || !existsSync(path.join(BUILTIN_DIR, hit)))
    throw new InputError([
      {
        file: studyFile,
        field,
        message: `unknown built-in set '${name}' (known: ${files.map((f) => f.replace(/\.[^.]+$/, "")).join(", ")})`,
      },
    ]);
  return path.join(BUILTIN_DIR, hit);
}
