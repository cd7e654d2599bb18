import type { z } from "zod";
import type { Study } from "../config/schema.ts";
import type { JudgeOptions } from "../judges/judge-call.ts";
import type { Capability } from "../models/types.ts";
import type { Experiment, JudgeSetup, LoadContext, PlannedRequest, RunContext } from "./stage.ts";

/**
 * The battery's steps over a list of experiments (the registered ones, src/study/registry.ts):
 * load every enabled one, plan and collect step by step, summarize each into its section.
 */

/** An enabled experiment with its loaded inputs. */
export interface LoadedExperiment {
  experiment: Experiment<unknown, unknown>;
  inputs: unknown;
}

/** Loads every enabled experiment's sources (bad input throws here, before anything is written). */
export function loadBattery(ctx: LoadContext, experiments: readonly Experiment[]): LoadedExperiment[] {
  return experiments
    .filter((e) => e.enabled(ctx.study))
    .map((experiment) => ({
      experiment,
      inputs: experiment.load(ctx),
    }));
}

/** The steps the loaded experiments have, ascending. */
export function batterySteps(loaded: LoadedExperiment[]): number[] {
  return [...new Set(loaded.flatMap((l) => l.experiment.stages.map((s) => s.step)))].sort((a, b) => a - b);
}

export function planStep(ctx: RunContext, loaded: LoadedExperiment[], step: number): PlannedRequest[] {
  return loaded.flatMap((l) =>
    l.experiment.stages.filter((s) => s.step === step).flatMap((s) => s.plan(ctx, l.inputs)),
  );
}

export function collectStep(ctx: RunContext, loaded: LoadedExperiment[], step: number): void {
  for (const l of loaded)
    for (const s of l.experiment.stages) if (s.step === step && s.collect) s.collect(ctx, l.inputs);
}

/** Model ids the battery calls: targets of every enabled experiment, raters, the judge. */
export function batteryModels(study: Study, experiments: readonly Experiment[]): Set<string> {
  const used = new Set<string>();
  for (const e of experiments) if (e.enabled(study)) for (const m of e.models(study)) used.add(m);
  const judge = judgeModelId(study);
  if (judge && experiments.some((e) => e.enabled(study) && e.judged)) used.add(judge);
  return used;
}

export function judgeModelId(study: Study): string | undefined {
  return study.judge.model ?? study.models.find((m) => m.roles.includes("judge"))?.id;
}

/** The judge and how it is asked, given its provider's capabilities. */
export function judgeSetup(
  study: Study,
  capabilities: ReadonlySet<Capability> | undefined,
): JudgeSetup | undefined {
  const modelId = judgeModelId(study);
  if (!modelId || !capabilities) return undefined;
  const j = study.judge;
  const logprobs = j.logprobs === "on" || (j.logprobs === "auto" && capabilities.has("logprobs"));
  const options: JudgeOptions = {
    logprobs,
    minNumericMass: j.thresholds.min_numeric_mass,
    topLogprobs: j.top_logprobs,
    textMaxTokens: j.text_max_tokens,
  };
  return { modelId, options };
}

/** Each loaded experiment's section of results.json, by name, parsed with its summary schema. */
export function summarizeExperiments(ctx: RunContext, loaded: LoadedExperiment[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const l of loaded) {
    out[l.experiment.name] = parseSummary(
      `experiment ${l.experiment.name}`,
      l.experiment.summary,
      l.experiment.summarize(ctx, l.inputs),
    );
  }
  return out;
}

/** A results section (an experiment's, an interp section's) parsed with its schema; a mismatch names the first issues. */
export function parseSummary<S>(what: string, schema: z.ZodType<S>, value: unknown): S {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
    .join("; ");
  throw new Error(`${what}: its summary does not match its summary schema: ${issues}`);
}
