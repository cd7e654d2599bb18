import { readTextFile } from "../../config/text-file.ts";

/** Reads a source file (strict UTF-8); a missing file or a bad byte is an InputError naming it. */
export function readSourceFile(file: string, shownAs: string, field?: string): string {
  return readTextFile(file, { shownAs, field, what: "file" });
}
