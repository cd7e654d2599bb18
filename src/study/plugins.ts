/**
 * Plugins: modules outside emlab that add experiments or interp sections (`emlab --plugin
 * my-experiment.ts run study.yaml`). A plugin either registers them itself when imported, or
 * exports them (named exports or `default`, one or a list), and they are registered here.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Experiment } from "../battery/stage.ts";
import { InputError } from "../config/load.ts";
import type { InterpSection } from "../interp/section.ts";
import {
  registerExperiment,
  registeredExperiments,
  registeredInterpSections,
  registerInterpSection,
} from "./registry.ts";

const isInterpSection = (v: unknown): v is InterpSection =>
  typeof v === "object" &&
  v !== null &&
  typeof (v as InterpSection).name === "string" &&
  typeof (v as InterpSection).run === "function" &&
  typeof (v as InterpSection).config?.safeParse === "function" &&
  typeof (v as InterpSection).summary?.safeParse === "function";

const isExperiment = (v: unknown): v is Experiment =>
  typeof v === "object" &&
  v !== null &&
  typeof (v as Experiment).name === "string" &&
  Array.isArray((v as Experiment).stages) &&
  typeof (v as Experiment).summarize === "function" &&
  typeof (v as Experiment).summary?.safeParse === "function";

/** Imports each plugin module and registers the experiments it exports; returns their names. */
export async function loadPlugins(files: readonly string[]): Promise<string[]> {
  const added: string[] = [];
  for (const file of files) {
    const abs = path.resolve(file);
    if (!existsSync(abs)) throw new InputError([{ file, message: "plugin module not found" }]);
    const before = new Set<object>([...registeredExperiments(), ...registeredInterpSections()]);
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
    } catch (e) {
      throw new InputError([{ file, message: `plugin module failed to load: ${(e as Error).message}` }]);
    }
    const values = Object.values(mod).flatMap((v) => (Array.isArray(v) ? v : [v]));
    try {
      for (const e of values.filter(isExperiment))
        if (!registeredExperiments().includes(e)) registerExperiment(e);
      for (const s of values.filter(isInterpSection))
        if (!registeredInterpSections().includes(s)) registerInterpSection(s);
    } catch (err) {
      throw new InputError([{ file, message: (err as Error).message }]);
    }
    const now = [...registeredExperiments(), ...registeredInterpSections()].filter((x) => !before.has(x));
    if (now.length === 0)
      throw new InputError([
        {
          file,
          message:
            "plugin module registers nothing (export an experiment or an interp section, or call registerExperiment / registerInterpSection)",
        },
      ]);
    added.push(...now.map((e) => e.name));
  }
  return added;
}
