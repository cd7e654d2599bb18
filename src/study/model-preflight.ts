/**
 * Part of step 1 (validate): every local model directory the study names — `provider: local`
 * models, whether the battery, a fine-tune plan (as its base) or only the interp stage uses
 * them, the adapters their `options.adapter` names and the .jinja files their
 * `options.chat_template` names — opened and checked from its
 * config.json, tokenizer files and safetensors headers (src/engine/model-dir.ts), so a broken
 * or missing model is bad input (exit 2) at its study line, not an error at the first request
 * after the run directory was written.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fieldName, InputError, type InputProblem, type Locator } from "../config/load.ts";
import type { Study } from "../config/schema.ts";
import { checkAdapterDir, checkModelDir } from "../engine/model-dir.ts";
import { providerSettings } from "./targets.ts";

/** Where a study path is looked for: the loader's path when it exists, else beside the study file. */
function resolvedDir(p: string, studyDir: string): string {
  return existsSync(p) ? path.resolve(p) : path.resolve(studyDir, p);
}

/**
 * Checks the local model and adapter directories of the study's own models (not the plans'
 * outputs, which training writes). Throws one InputError with every problem, each at
 * `models[i].model` or `models[i].options.adapter`.
 */
export function preflightLocalModels(study: Study, file: string, locate: Locator): void {
  const studyDir = path.dirname(file);
  const problems: InputProblem[] = [];
  const report = (at: (string | number)[], message: string) =>
    problems.push({ file, ...locate(at), field: fieldName(at), message });
  study.models.forEach((m, i) => {
    if (m.provider !== "local") return;
    const settings = providerSettings(m, studyDir);
    const chatTemplate = settings.options?.chat_template;
    const templateFile = typeof chatTemplate === "string" ? resolvedDir(chatTemplate, studyDir) : undefined;
    if (templateFile !== undefined && !existsSync(templateFile)) {
      report(
        ["models", i, "options", "chat_template"],
        `local model '${m.id}': ${templateFile} does not exist`,
      );
      return;
    }
    const model = checkModelDir(resolvedDir(settings.model, studyDir), { chatTemplate: templateFile });
    for (const p of model.problems) {
      // A problem in the named template file is at the option that names it.
      const at = templateFile && p.startsWith(templateFile) ? ["options", "chat_template"] : ["model"];
      report(["models", i, ...at], `local model '${m.id}': ${p}`);
    }
    const adapter = settings.options?.adapter;
    // Not a string: the provider's options check reports it (buildTargets).
    if (typeof adapter !== "string") return;
    for (const p of checkAdapterDir(resolvedDir(adapter, studyDir), model.shape))
      report(["models", i, "options", "adapter"], `local model '${m.id}': ${p}`);
  });
  if (problems.length > 0) throw new InputError(problems);
}
