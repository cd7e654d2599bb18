import { readFileSync } from "node:fs";
import { InputError } from "../../config/load.ts";

/** Reads a source file, turning a missing file into an InputError naming the study field. */
export function readSourceFile(file: string, shownAs: string, field?: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new InputError([
      { file: shownAs, field, message: `cannot read file (${(e as NodeJS.ErrnoException).code ?? e})` },
    ]);
  }
}
