/**
 * The results and analysis steps of a run: results.json from the store (each experiment's
 * section, the counts, the fine-tunes, the interp block), then the analysis of those
 * results, validated against the registered experiments' schema and written at once.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { analyzeResults } from "../analysis/analyze.ts";
import { type LoadedExperiment, summarizeExperiments } from "../battery/pipeline.ts";
import type { RunContext } from "../battery/stage.ts";
import { LocalModelApi } from "../models/local.ts";
import type { Analysis } from "../results/analysis.ts";
import type { FinetuneResult } from "../results/finetune.ts";
import type { InterpResults } from "../results/interp.ts";
import { RESULTS_FILE, type Results } from "../results/results.ts";
import { INTERP_EXPERIMENTS, type RunStore } from "../runs/store.ts";
import { registeredResultsSchema } from "./registry.ts";

export interface ResultsParts {
  finetune?: Record<string, FinetuneResult>;
  /** The chat template of each local model: its file (see localTemplates) and sha256. */
  templates?: Record<string, { source: string; sha256: string }>;
  interp?: InterpResults;
}

/** results.json without its analysis block, from the store. */
export function summarizeRun(
  ctx: RunContext,
  loaded: LoadedExperiment[],
  store: RunStore,
  parts: ResultsParts,
): Results {
  const experiments = summarizeExperiments(ctx, loaded);
  // The battery's counts: the interp stage's own requests are counted in its block.
  const counts = store.countsOutside(INTERP_EXPERIMENTS);
  const { study } = ctx;
  return registeredResultsSchema().parse({
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
      ...(parts.templates && Object.keys(parts.templates).length > 0 ? { templates: parts.templates } : {}),
    },
    experiments,
    counts: {
      requests: counts.requests,
      completions: counts.completions,
      failed_requests: counts.requestsFailed,
      filtered_completions: counts.filteredCompletions,
      judgments: counts.judgments,
    },
    ...(parts.finetune ? { finetune: parts.finetune } : {}),
    ...(parts.interp ? { interp: parts.interp } : {}),
  }) as Results;
}

/**
 * The chat template file and sha256 of every local model of the run, by model id; each is
 * also recorded in the run store (an artifact of kind chat_template, with the file's path).
 */
export function localTemplates(
  targets: ReadonlyMap<string, { api: unknown }>,
  studyDir: string,
  store: RunStore,
): Record<string, { source: string; sha256: string }> {
  const out: Record<string, { source: string; sha256: string }> = {};
  for (const [id, t] of targets) {
    if (!(t.api instanceof LocalModelApi)) continue;
    let template: { file: string; sha256: string };
    try {
      template = t.api.chatTemplateSource();
    } catch {
      // A model that cannot be loaded failed its requests; it has no template to record.
      continue;
    }
    const { file, sha256 } = template;
    // Relative to the study's folder when it is inside it; else the file's name (the
    // shipped organism lives outside every run's folder): results.json must not depend on
    // where the run or emlab sits. The sha256 says which template it was.
    const rel = path.relative(studyDir, file);
    const inside = rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
    out[id] = { source: inside ? rel.split(path.sep).join("/") : path.basename(file), sha256 };
    store.addArtifact({
      id: `chat-template:${id}`,
      kind: "chat_template",
      path: file,
      sha256,
      meta: { model: id },
    });
  }
  return out;
}

/**
 * The analysis of a run's results with the default options (docs/analysis.md); an analysis
 * that cannot be made (no figures it reads) is left out, and the reason logged.
 */
export function analyzeRun(results: Results, log: (line: string) => void): Analysis | undefined {
  try {
    return analyzeResults(results);
  } catch (e) {
    log(`analysis: not written (${(e as Error).message})`);
    return undefined;
  }
}

/** Writes results.json (with its analysis) and returns its path. */
export function writeResultsFile(runDir: string, results: Results, analysis: Analysis | undefined): string {
  const file = path.join(runDir, RESULTS_FILE);
  const full = registeredResultsSchema().parse(analysis ? { ...results, analysis } : results);
  writeFileSync(file, `${JSON.stringify(full, null, 2)}\n`);
  return file;
}
