import type { z } from "zod";
import type { Study, StudyBlock } from "../config/schema.ts";
import type { JudgeOptions } from "../judges/judge-call.ts";
import type { ChatMessage, SamplingParams } from "../models/types.ts";
import type { ExperimentReport } from "../report/experiment-report.ts";
import { type CompletionRow, FILTERED_FINISH, type RequestRow } from "../runs/rows.ts";
import type { RunStore } from "../runs/store.ts";

/** A request the study wants made: one prompt to one model, `n` samples. */
export interface PlannedRequest {
  modelId: string;
  experiment: string;
  itemId: string;
  messages: ChatMessage[];
  params: SamplingParams;
  n: number;
}

/** What loading an experiment's inputs may use: the study and where it lives. */
export interface LoadContext {
  study: Study;
  /** Absolute path of the study file (relative source paths resolve against its folder). */
  studyFile: string;
  studyDir: string;
}

/** The judge every judged experiment uses. */
export interface JudgeSetup {
  modelId: string;
  options: JudgeOptions;
}

/** What stages see: the store as it stands, and the requests planned so far in this invocation. */
export interface RunContext extends LoadContext {
  store: RunStore;
  judge?: JudgeSetup;
  /** Store ids of every request planned by this invocation (so results ignore stale rows). */
  planned: ReadonlySet<string>;
}

/**
 * One step of an experiment. `runStudy` runs step 1 of every experiment, then step 2, ...,
 * each through the scheduler; `plan` sees everything earlier steps stored, and `collect`
 * turns the step's stored answers into judgments once its requests are done.
 */
export interface Stage<I> {
  step: number;
  plan(ctx: RunContext, inputs: I): PlannedRequest[];
  collect?(ctx: RunContext, inputs: I): void;
}

/**
 * One experiment of the battery, built-in or added with `registerExperiment`
 * (src/study/registry.ts): its study block, its results.json section, how it plans, collects
 * and summarizes, and optionally its section of report.html. docs/experiments.md shows how to
 * write one.
 */
export interface Experiment<I = unknown, S = unknown> {
  /** The key in `battery` and in results.json's `experiments`. */
  name: string;
  /**
   * Its block `battery.<name>` in a study file. Absent when the experiment reads another's
   * block (cross_rating reads score_prediction's).
   */
  config?: z.ZodType;
  /** Its section of results.json: `summarize`'s result is parsed with it. */
  summary: z.ZodType<S>;
  /** It asks the study's judge (the study must name one; the judge becomes a target). */
  judged?: boolean;
  /** Checks of its block that need the rest of the study (ids, other experiments). */
  check?: StudyBlock["check"];
  enabled(study: Study): boolean;
  /** Reads and checks the experiment's sources; runs before the run directory is touched. */
  load(ctx: LoadContext): I;
  stages: Array<Stage<I>>;
  /** Its section of results.json, per model, from the store. */
  summarize(ctx: RunContext, inputs: I): S;
  /** Model ids the experiment calls (targets, raters), for building providers. */
  models(study: Study): string[];
  /** Its section of report.html (default: a table of its summary's figures). */
  report?: ExperimentReport;
}

/** Target model ids of an experiment: its `models` list, or every model with the target role. */
export function targetModels(study: Study, models: string[] | undefined): string[] {
  return models ?? study.models.filter((m) => m.roles.includes("target")).map((m) => m.id);
}

/** A stored answer of one planned request. */
export interface Answer {
  request: RequestRow;
  completion: CompletionRow;
}

/**
 * Every stored completion of `experiment` among the requests planned this invocation, in
 * planning order, less the provider-filtered ones.
 */
export function storedAnswers(ctx: RunContext, experiment: string, modelId?: string): Answer[] {
  const out: Answer[] = [];
  for (const request of ctx.store.listRequests({ experiment, modelId })) {
    if (!ctx.planned.has(request.id)) continue;
    for (const completion of ctx.store.completions(request.id))
      if (completion.finish_reason !== FILTERED_FINISH) out.push({ request, completion });
  }
  return out;
}

/** The user prompt of a stored request (the last user message). */
export function userPrompt(request: RequestRow): string {
  return request.messages.filter((m) => m.role === "user").at(-1)?.content ?? "";
}

/** Finish reason of a provider-filtered completion (defined with the store's rows). */
export { FILTERED_FINISH };

export const answerKey = (requestId: string, sample: number) => `${requestId}:${sample}`;
