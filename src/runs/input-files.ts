/**
 * The files a study names (prompt lists, question sets, datasets, judge prompt files), with a
 * content hash each, recorded in the run directory when a run starts. The study's own hash
 * covers only its YAML: without this, editing a prompts file between a kill and `--resume`
 * would mix answers to two different prompt sets in one run. Model directories are left
 * out: local weights are fingerprinted in every cache key and fine-tune plans hash theirs.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { InputError } from "../config/load.ts";

export const INPUT_FILES = "input-files.json";

/** Keys whose string value names an input file: `file`, `path`, and any `*_file`. */
const isFileKey = (key: string) => key === "file" || key === "path" || key.endsWith("_file");

/** Field path → sha256 of every existing regular file the study names (sorted by field). */
export function inputFileHashes(study: unknown, studyDir: string): Record<string, string> {
  const found: [string, string][] = [];
  const walk = (v: unknown, at: string) => {
    if (Array.isArray(v)) for (const [i, x] of v.entries()) walk(x, `${at}[${i}]`);
    else if (v && typeof v === "object")
      for (const [k, x] of Object.entries(v)) {
        const field = at ? `${at}.${k}` : k;
        if (isFileKey(k) && typeof x === "string") {
          const file = path.resolve(studyDir, x);
          if (existsSync(file) && statSync(file).isFile())
            found.push([field, createHash("sha256").update(readFileSync(file)).digest("hex")]);
        } else walk(x, field);
      }
  };
  walk(study, "");
  found.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(found);
}

/** Writes the record whole or not at all (a temporary file renamed over it). */
export function recordInputFiles(runDir: string, hashes: Record<string, string>): void {
  const file = path.join(runDir, INPUT_FILES);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(hashes, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

/**
 * On resume: every named file must still hash as recorded. A run started before this record
 * existed has none and is not checked (a run created now has it before its store is in place).
 */
export function checkInputFiles(runDir: string, studyFile: string, hashes: Record<string, string>): void {
  const recorded = path.join(runDir, INPUT_FILES);
  if (!existsSync(recorded)) return;
  const before = JSON.parse(readFileSync(recorded, "utf8")) as Record<string, string>;
  const fields = [...new Set([...Object.keys(before), ...Object.keys(hashes)])].sort();
  const changed = fields.filter((f) => before[f] !== hashes[f]);
  if (changed.length)
    throw new InputError(
      changed.map((field) => ({
        file: studyFile,
        field,
        message: `the file this field names changed since the run in ${runDir} started; start a new run with another --out`,
      })),
    );
}
