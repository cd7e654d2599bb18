/**
 * What the persona world adds to emlab's registries: the "world-judge" provider (the world's
 * exact judge behind the ModelApi seam) and the built-in `world/<domain>/<form>` datasets.
 * Called once by src/study/builtins.ts.
 */
import { registerProvider } from "../models/registry.ts";
import { registerWorldDatasets } from "./builtin-datasets.ts";
import { createWorldJudgeModelApi } from "./judge-provider.ts";

let registered = false;

export function registerWorld(): void {
  if (registered) return;
  registered = true;
  registerProvider("world-judge", createWorldJudgeModelApi);
  registerWorldDatasets();
}
