/**
 * Step 4 of a run: the battery's steps. Step k plans from what steps < k stored (judge
 * requests for stored answers, say), runs through the scheduler (batches first, then live
 * calls: cache, retries, limits, resume), then files judgments. A step with failed requests
 * ends the battery there: later steps would plan from answers with holes.
 */
import { collectStep, planStep } from "../battery/pipeline.ts";
import type { RunContext } from "../battery/stage.ts";
import { runBatches } from "../runs/batch.ts";
import type { ModelIdentity } from "../runs/cache.ts";
import { runPending, type SchedulerResult } from "../runs/scheduler.ts";
import type { OpenRun } from "./open-run.ts";
import { toStoreRequest } from "./targets.ts";
import type { ValidatedStudy } from "./validate.ts";

/** Where the run stopped short, when it did (RunSummary.incomplete). */
export interface Incomplete {
  step: number;
  steps: number;
  failed: number;
  notRun: number[];
  /** Set when the interp stage stopped (counted as the step after the battery's): its experiment. */
  stage?: string;
}

export interface BatteryOutcome {
  result: SchedulerResult;
  planned: number;
  added: number;
  incomplete?: Incomplete;
}

export interface StepDeps {
  ctx: RunContext;
  identities: ReadonlyMap<string, ModelIdentity>;
  pollSeconds: (modelId: string) => number;
  signal?: AbortSignal;
}

export async function runBatterySteps(v: ValidatedStudy, run: OpenRun, d: StepDeps): Promise<BatteryOutcome> {
  const { study, battery, steps, targets, redactor } = v;
  const { store, cache, progress, log } = run;
  const planned = d.ctx.planned as Set<string>;
  let result: SchedulerResult = {
    samplesTotal: 0,
    samplesDone: 0,
    failedRequests: 0,
    cacheHits: 0,
    interrupted: false,
  };
  let plannedCount = 0;
  let added = 0;
  let cacheHits = 0;
  let incomplete: Incomplete | undefined;
  for (const [i, step] of steps.entries()) {
    const rows = planStep(d.ctx, battery, step).map((p) =>
      toStoreRequest(study, p, d.identities.get(p.modelId)),
    );
    for (const r of rows) planned.add(r.id);
    plannedCount += rows.length;
    const fresh = store.addRequests(rows);
    added += fresh;
    log(`step ${step}: planned ${rows.length} request(s), ${fresh} new`);
    const only = planned;
    const sched = { store, targets, cache, signal: d.signal, redactor, progress, only };
    cacheHits += await runBatches({ ...sched, pollSeconds: d.pollSeconds });
    result = await runPending(sched);
    cacheHits += result.cacheHits;
    if (result.interrupted) break;
    collectStep(d.ctx, battery, step);
    // Later steps plan from what this one stored. Planned from answers with holes, their plans
    // would change once --retry-failed fills them: paid requests left outside the final plan, and
    // results unlike a clean run's. So a step with failed requests is where the run stops.
    const failed = store.listRequests().filter((r) => r.status === "failed" && planned.has(r.id)).length;
    if (failed > 0) {
      const notRun = steps.slice(i + 1).map((_, j) => i + 2 + j);
      incomplete = { step: i + 1, steps: steps.length, failed, notRun };
      log(
        `step ${step}: ${failed} failed request(s); ${notRun.length ? `${notRun.length} later step(s) not planned, ` : ""}results.json not written (--retry-failed tries them again)`,
      );
      break;
    }
  }
  return { result: { ...result, cacheHits }, planned: plannedCount, added, incomplete };
}
