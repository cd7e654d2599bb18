import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { InputError } from "../config/load.ts";

/** The file in a run directory that, when present, gives each model's persona class. */
export const CLASSES_FILE = "persona-classes.json";

/**
 * Persona class per model id, for the viewer's class filter: a JSON object
 * `{"<model id>": "<class>"}` (or `{"classes": {...}}`). Read from `file` when given, else
 * from RUN_DIR/persona-classes.json when it exists; none → no class filter.
 */
export function loadModelClasses(runDir: string, file?: string): Record<string, string> {
  const target = file ?? path.join(runDir, CLASSES_FILE);
  if (!file && !existsSync(target)) return {};
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(target, "utf8"));
  } catch (e) {
    throw new InputError([
      { file: target, message: `cannot read persona classes (${(e as Error).message})` },
    ]);
  }
  if (data && typeof data === "object" && "classes" in data) data = (data as { classes: unknown }).classes;
  if (!data || typeof data !== "object" || Array.isArray(data))
    throw new InputError([{ file: target, message: 'expected an object {"<model id>": "<class>"}' }]);
  const out: Record<string, string> = {};
  for (const [model, cls] of Object.entries(data)) {
    if (typeof cls !== "string")
      throw new InputError([{ file: target, field: model, message: "class must be a string" }]);
    out[model] = cls;
  }
  return out;
}
