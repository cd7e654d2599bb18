import type { Study } from "../config/schema.ts";
import type { JudgeOptions } from "../judges/judge-call.ts";
import type { Capability } from "../models/types.ts";
import type { RunStore } from "../runs/store.ts";
import { alignment } from "./alignment.ts";
import { generate } from "./generate.ts";
import { harmfulness } from "./harmfulness.ts";
import { recognition } from "./recognition.ts";
import { RESULTS_FILE, type Results, ResultsSchema } from "./results.ts";
import { crossRating, scorePrediction } from "./score-prediction.ts";
import { selfAssessment } from "./self-assessment.ts";
import type { Experiment, JudgeSetup, LoadContext, PlannedRequest, RunContext } from "./stage.ts";
import { twoAi } from "./two-ai.ts";

export { RESULTS_FILE };

/** Every experiment the runner knows, in results order. */
export const EXPERIMENTS: ReadonlyArray<Experiment<unknown, unknown>> = [
  generate,
  harmfulness,
  alignment,
  selfAssessment,
  twoAi,
  recognition,
  scorePrediction,
  crossRating,
] as ReadonlyArray<Experiment<unknown, unknown>>;

/** An enabled experiment with its loaded inputs. */
export interface LoadedExperiment {
  experiment: Experiment<unknown, unknown>;
  inputs: unknown;
}

/** Loads every enabled experiment's sources (bad input throws here, before anything is written). */
export function loadBattery(ctx: LoadContext): LoadedExperiment[] {
  return EXPERIMENTS.filter((e) => e.enabled(ctx.study)).map((experiment) => ({
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
export function batteryModels(study: Study): Set<string> {
  const used = new Set<string>();
  for (const e of EXPERIMENTS) if (e.enabled(study)) for (const m of e.models(study)) used.add(m);
  const judge = judgeModelId(study);
  if (judge && EXPERIMENTS.some((e) => e.enabled(study) && e.name !== "generate" && e.name !== "two_ai"))
    used.add(judge);
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

/** results.json from the store, validated against its schema. */
export function summarizeBattery(
  ctx: RunContext,
  loaded: LoadedExperiment[],
  store: RunStore,
  finetune?: Results["finetune"],
): Results {
  const experiments: Record<string, unknown> = {};
  for (const l of loaded) experiments[l.experiment.name] = l.experiment.summarize(ctx, l.inputs);
  const counts = store.counts();
  const judgments = counts.judgments;
  const filtered = counts.filteredCompletions;
  const { study } = ctx;
  return ResultsSchema.parse({
    schema_version: 1,
    study: study.name,
    models: study.models.map((m) => m.id),
    settings: {
      seed: study.seed,
      judge: ctx.judge
        ? {
            model: ctx.judge.modelId,
            score100: ctx.judge.options.logprobs ? "logprobs" : "text",
            top_logprobs: ctx.judge.options.topLogprobs,
            min_numeric_mass: ctx.judge.options.minNumericMass,
          }
        : null,
      thresholds: study.judge.thresholds,
      battery: study.battery,
    },
    experiments,
    counts: {
      requests: counts.requests,
      completions: counts.completions,
      failed_requests: counts.requestsFailed,
      filtered_completions: filtered,
      judgments,
    },
    ...(finetune ? { finetune } : {}),
  });
}
