/**
 * The registries a study is built from: the experiments of the battery (built-in and
 * registered), each with its study block, results section and report section. The
 * providers' registry is src/models/registry.ts; emlab's own entries of both are filled by
 * src/study/builtins.ts, which every entry point imports.
 */
import type { Experiment } from "../battery/stage.ts";
import { registerInterpBlock, registerStudyBlock } from "../config/schema.ts";
import type { InterpSection } from "../interp/section.ts";
import { registerExperimentReport, registerInterpReport } from "../report/experiment-report.ts";
import { resultsSchema } from "../results/results.ts";

const experiments: Experiment[] = [];
const interpSections: InterpSection[] = [];
let cachedResults: ReturnType<typeof resultsSchema> | undefined;

/**
 * Adds an experiment to every study read after this call: `battery.<name>` in study files is
 * validated by its `config`, it plans and collects through the scheduler and the store like
 * the built-in ones, its summary lands in results.json under `experiments.<name>` (parsed
 * with its `summary`), and report.html draws it with its `report` (or a table of figures).
 */
export function registerExperiment<I, S>(
  experiment: Experiment<I, S>,
  opts: { builtin?: boolean } = {},
): void {
  const e = experiment as Experiment;
  if (!/^[a-z][a-z0-9_]*$/.test(e.name))
    throw new Error(
      `registerExperiment: "${e.name}" is not an experiment name (lower-case letters, digits, '_')`,
    );
  if (experiments.some((x) => x.name === e.name))
    throw new Error(`registerExperiment: an experiment named "${e.name}" is already registered`);
  if (e.stages.length === 0) throw new Error(`registerExperiment: "${e.name}" has no stages`);
  // The built-in experiments' blocks are part of the study schema itself (src/config/schema.ts).
  if (!opts.builtin && e.config)
    registerStudyBlock(e.name, { schema: e.config, judged: e.judged, check: e.check });
  if (!opts.builtin && e.report) registerExperimentReport(e.name, e.report);
  experiments.push(e);
  cachedResults = undefined;
}

/** Every registered experiment, in results order: the built-in ones first. */
export function registeredExperiments(): readonly Experiment[] {
  return experiments;
}

/** The results.json schema over the registered experiments' summaries. */
export function registeredResultsSchema(): ReturnType<typeof resultsSchema> {
  cachedResults ??= resultsSchema(
    Object.fromEntries(experiments.map((e) => [e.name, e.summary])),
    Object.fromEntries(interpSections.map((s) => [s.name, s.summary])),
  );
  return cachedResults;
}

/**
 * Adds an interp section to every study read after this call: `interp.<name>` is validated by
 * its `config`, it runs after the built-in sections (src/interp/section.ts), its block lands in
 * results.json's interp block, and report.html draws it. `builtin`: emlab's own section, whose
 * config is already a key of src/config/interp.ts's InterpConfigSchema.
 */
export function registerInterpSection<C, S>(
  section: InterpSection<C, S>,
  opts: { builtin?: boolean } = {},
): void {
  const s = section as unknown as InterpSection;
  if (interpSections.some((x) => x.name === s.name))
    throw new Error(`registerInterpSection: a section named "${s.name}" is already registered`);
  registerInterpBlock(s.name, { schema: s.config, check: s.check }, opts);
  if (s.report) registerInterpReport(s.name, s.report);
  interpSections.push(s);
  cachedResults = undefined;
}

/** The registered interp sections, in the order they run. */
export function registeredInterpSections(): readonly InterpSection[] {
  return interpSections;
}
