/**
 * `emlab run`: a study as named steps —
 *   1. validate   everything checked and loaded; bad input writes nothing (validate.ts)
 *   2. open       the run directory, atomically, or reopened for --resume / --retry-failed (open-run.ts)
 *   3. fine-tune  the study's plans (the engine, an exported bundle, or a provider's jobs); the
 *                 battery's identities fingerprint the saved weights, or name the provider's model
 *   4. battery    the experiments' steps through the scheduler and the store (battery-step.ts)
 *   5. interp     the interp sections, built-in then registered (interp-step.ts)
 *   6. analysis   persona classes, correlations, chi-square, sensitivity (results-file.ts)
 *   7. results    results.json, validated against the registered experiments' schema
 *   8. report     report.html, when asked (the CLI asks)
 * Every step's work is in the store before the next step reads it; a killed or interrupted
 * run goes on with --resume from what is stored; --retry-failed also asks its failed requests again.
 */
import { finetuneResults, runFinetunePlans } from "../finetune/run-plans.ts";
import { writeReport } from "../report/build-report.ts";
import type { ProgressSink, SchedulerResult } from "../runs/scheduler.ts";
import "./builtins.ts";
import type { LoadedStudy } from "../config/load.ts";
import { checkRunDirPath } from "../runs/lock.ts";
import { type Incomplete, runBatterySteps } from "./battery-step.ts";
import { runInterpStep, withInterpCounts } from "./interp-step.ts";
import { openRunDir } from "./open-run.ts";
import { useTrainedModels } from "./plan-targets.ts";
import { analyzeRun, localTemplates, summarizeRun, writeResultsFile } from "./results-file.ts";
import { modelIdentity } from "./targets.ts";
import { type ValidatedStudy, validateStudy } from "./validate.ts";

export { studyHash } from "./open-run.ts";
export { providerSettings, toStoreRequest } from "./targets.ts";

export interface RunOptions {
  outDir: string;
  /** Continue the run in outDir: only the missing work; requests that failed stay failed. */
  resume?: boolean;
  /** Resume (implies `resume`) and try the failed requests again. */
  retryFailed?: boolean;
  /** Skip the response cache entirely (neither read nor written). */
  noCache?: boolean;
  cacheDir?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  progress?: ProgressSink;
  /** Also write report.html once results.json is written (step 8). */
  report?: boolean;
}

export interface RunSummary extends SchedulerResult {
  outDir: string;
  planned: number;
  added: number;
  /** Path of results.json, when every step finished (not when interrupted or incomplete). */
  resultsFile?: string;
  /** Path of report.html, when `report` was asked and results.json written. */
  reportFile?: string;
  /**
   * Set when a step ended with failed requests (retries given up, an error that is not
   * retried): the later steps, which plan from its answers, were not planned, and neither interp
   * nor results.json ran. `--retry-failed` tries the failed requests again and goes on from
   * there (`--resume` leaves them failed: the run stops at the same step).
   * Steps are counted from 1 in the order they run; the interp stage counts as the step after
   * the battery's.
   */
  incomplete?: Incomplete;
}

export async function runStudy(loaded: LoadedStudy, opts: RunOptions): Promise<RunSummary> {
  const env = opts.env ?? process.env;
  // --out is checked before the study's inputs are loaded (datasets, models: it can take a while).
  checkRunDirPath(opts.outDir);
  const v = validateStudy(loaded, opts.outDir, env);
  let run: ReturnType<typeof openRunDir>;
  try {
    run = openRunDir(v, opts);
  } catch (e) {
    await closeTargets(v);
    throw e;
  }
  try {
    return await runSteps(v, run, opts);
  } finally {
    run.close();
    await closeTargets(v);
  }
}

async function runSteps(
  v: ValidatedStudy,
  run: ReturnType<typeof openRunDir>,
  opts: RunOptions,
): Promise<RunSummary> {
  const { study, studyDir, plans } = v;
  const { store, log } = run;
  const stopped = (result: SchedulerResult, rest: Partial<RunSummary>): RunSummary => ({
    ...result,
    outDir: opts.outDir,
    planned: 0,
    added: 0,
    ...rest,
  });

  // Wall time of each phase, for the closing log line (where a slow machine spends its time).
  const phases: Array<[string, number]> = [];
  let phaseStart = performance.now();
  const endPhase = (name: string) => {
    const now = performance.now();
    phases.push([name, (now - phaseStart) / 1000]);
    phaseStart = now;
  };

  // 3. fine-tune
  const trained = await runFinetunePlans(plans, {
    store,
    runDir: opts.outDir,
    signal: opts.signal,
    log: run.say,
    env: v.env,
    redact: (t) => v.redactor.redact(t),
    retryFailed: opts.retryFailed,
  });
  if (!trained) {
    log("interrupted during fine-tuning");
    return stopped(
      { samplesTotal: 0, samplesDone: 0, failedRequests: 0, cacheHits: 0, interrupted: true },
      {},
    );
  }

  // Plans trained by a provider are targeted under the name it gave them.
  await useTrainedModels(v, store);
  endPhase("fine-tuning");

  // 4. battery
  const deps = {
    ctx: { ...v.loadCtx, store, judge: v.judge, planned: new Set<string>() },
    identities: new Map(study.models.map((m) => [m.id, modelIdentity(m, studyDir)])),
    pollSeconds: (id: string) => study.models.find((m) => m.id === id)?.batch_poll_s ?? 30,
    signal: opts.signal,
  };
  const battery = await runBatterySteps(v, run, deps);
  let { result, incomplete } = battery;
  let planned = battery.planned;
  let added = battery.added;
  endPhase("battery");

  // 5. interp: it reads the battery's judged answers, so only once every step has finished.
  let interp: Awaited<ReturnType<typeof runInterpStep>>["interp"];
  if (!result.interrupted && !incomplete) {
    const step = await runInterpStep(v, run, deps);
    interp = step.interp;
    incomplete = step.incomplete;
    planned += step.counts.planned;
    added += step.counts.added;
    result = withInterpCounts(result, step.counts);
    if (interp === null) {
      log("interrupted during interp");
      result = { ...result, interrupted: true };
    }
    endPhase("interp");
  }

  // 6-8. analysis, results, report
  let resultsFile: string | undefined;
  let reportFile: string | undefined;
  if (!result.interrupted && !incomplete) {
    const finetune = plans.length > 0 ? finetuneResults(store, plans) : undefined;
    const templates = localTemplates(v.targets, studyDir, store);
    const results = summarizeRun(deps.ctx, v.battery, store, {
      finetune,
      interp: interp ?? undefined,
      templates,
    });
    const analysis = analyzeRun(results, log);
    resultsFile = writeResultsFile(opts.outDir, results, analysis);
    if (opts.report) reportFile = (await writeReport(opts.outDir)).file;
    endPhase("results and report");
  }
  log(
    `${result.interrupted ? "interrupted" : incomplete ? "incomplete" : "finished"}: ${result.samplesDone}/${result.samplesTotal} samples, ${result.failedRequests} failed request(s)`,
  );
  log(`time: ${phases.map(([name, s]) => `${name} ${s.toFixed(1)} s`).join(", ")}`);
  return stopped(result, { planned, added, resultsFile, reportFile, incomplete });
}

async function closeTargets(v: ValidatedStudy): Promise<void> {
  await Promise.all([...v.targets.values()].map((t) => t.api.close?.()));
}
