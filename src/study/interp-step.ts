/**
 * Step 5 of a run: the interp sections, once every battery step has finished (they read its
 * judged answers): the built-in ones (src/interp/study.ts), then the registered ones
 * (src/interp/section.ts). Local models are loaded once (a battery target's engine is reused)
 * and those loaded here closed afterwards; every generation and judge question is a stored
 * request through the run's scheduler.
 */
import type { RunContext } from "../battery/stage.ts";
import { InterpIncomplete, type InterpSchedulerDeps } from "../interp/requests.ts";
import { type InterpStageCounts, runInterp } from "../interp/study.ts";
import { localWhiteBox, type WhiteBoxModel, whiteBoxOf } from "../interp/white-box.ts";
import { LocalModelApi } from "../models/local.ts";
import { createModelApi } from "../models/registry.ts";
import type { ModelApi } from "../models/types.ts";
import type { InterpResults } from "../results/interp.ts";
import type { ModelIdentity } from "../runs/cache.ts";
import type { SchedulerResult } from "../runs/scheduler.ts";
import type { Incomplete } from "./battery-step.ts";
import { configuresInterpSections, runRegisteredInterpSections } from "./interp-sections.ts";
import type { OpenRun } from "./open-run.ts";
import { providerSettings } from "./targets.ts";
import type { ValidatedStudy } from "./validate.ts";

export interface InterpOutcome {
  /** The interp block; null when interrupted, undefined when the study has none. */
  interp: InterpResults | null | undefined;
  counts: InterpStageCounts;
  incomplete?: Incomplete;
}

export async function runInterpStep(
  v: ValidatedStudy,
  run: OpenRun,
  d: {
    ctx: RunContext;
    identities: ReadonlyMap<string, ModelIdentity>;
    pollSeconds: (modelId: string) => number;
    signal?: AbortSignal;
  },
): Promise<InterpOutcome> {
  const { study, studyDir, targets, interpPlan } = v;
  const counts: InterpStageCounts = { planned: 0, added: 0, cacheHits: 0 };
  if (!interpPlan) return { interp: undefined, counts };
  const scheduler: InterpSchedulerDeps = {
    store: run.store,
    targets,
    models: study.models,
    identity: (id) => d.identities.get(id)!,
    cache: run.cache,
    signal: d.signal,
    redactor: v.redactor,
    progress: run.progress,
    pollSeconds: d.pollSeconds,
    env: v.env,
  };
  const own = new Map<string, LocalModelApi>();
  const model = (id: string): LocalModelApi => {
    const target = targets.get(id)?.api;
    if (target instanceof LocalModelApi) return target;
    let api = own.get(id);
    if (!api) {
      api = new LocalModelApi(providerSettings(study.models.find((m) => m.id === id)!, studyDir));
      own.set(id, api);
    }
    return api;
  };
  // Study models that no battery step targets, built here for interp and closed after it.
  const extra = new Map<string, ModelApi>();
  const whiteBox = (id: string): WhiteBoxModel => {
    const m = study.models.find((x) => x.id === id)!;
    if (m.provider === "local") return localWhiteBox(model(id));
    let api = targets.get(id)?.api ?? extra.get(id);
    if (!api) {
      api = createModelApi(providerSettings(m, studyDir), v.env);
      extra.set(id, api);
    }
    const wb = whiteBoxOf(api);
    if (!wb) throw new Error(`interp: model '${id}' (provider ${m.provider}) cannot be looked inside`);
    return wb;
  };
  try {
    const builtin = await runInterp(
      {
        ctx: d.ctx,
        plan: interpPlan,
        runDir: run.outDir,
        model,
        whiteBox,
        scheduler,
        signal: d.signal,
        log: run.say,
      },
      counts,
    );
    if (builtin === null || !configuresInterpSections(study.interp)) return { interp: builtin, counts };
    const extra = await runRegisteredInterpSections(
      {
        study,
        studyFile: v.file,
        runDir: run.outDir,
        store: run.store,
        model,
        judge: d.ctx.judge,
        builtin,
        log: run.say,
        signal: d.signal,
      },
      scheduler,
      counts,
    );
    return { interp: extra === null ? null : { ...builtin, ...extra }, counts };
  } catch (e) {
    if (!(e instanceof InterpIncomplete)) throw e;
    run.log(
      `interp: ${e.failed} failed request(s) in ${e.experiment}; results.json not written (--retry-failed tries them again)`,
    );
    const steps = v.steps.length + 1;
    return {
      interp: undefined,
      counts,
      incomplete: { step: steps, steps, failed: e.failed, notRun: [], stage: e.experiment },
    };
  } finally {
    await Promise.all([...own.values(), ...extra.values()].map((a) => a.close?.()));
  }
}

/** The scheduler totals after the interp stage: its counts folded in. */
export function withInterpCounts(result: SchedulerResult, counts: InterpStageCounts): SchedulerResult {
  const last = counts.last;
  return {
    ...result,
    cacheHits: result.cacheHits + counts.cacheHits,
    ...(last
      ? {
          samplesTotal: last.samplesTotal,
          samplesDone: last.samplesDone,
          failedRequests: last.failedRequests,
        }
      : {}),
  };
}
