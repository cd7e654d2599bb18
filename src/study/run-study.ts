import { appendFileSync, existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import {
  batteryModels,
  batterySteps,
  collectStep,
  judgeModelId,
  judgeSetup,
  loadBattery,
  planStep,
  RESULTS_FILE,
  summarizeBattery,
} from "../battery/pipeline.ts";
import { ResultsSchema } from "../battery/results.ts";
import type { LoadContext, PlannedRequest, RunContext } from "../battery/stage.ts";
import { fieldName, InputError, type LoadedStudy, type Locator, yamlLocator } from "../config/load.ts";
import type { ModelEntry, Study } from "../config/schema.ts";
import { loadStudyDatasets } from "../datasets/study-datasets.ts";
import { prepareFinetune, withPlanModels } from "../finetune/plan.ts";
import { finetuneResults, runFinetunePlans } from "../finetune/run-plans.ts";
import { loadInterp, runInterp } from "../interp/study.ts";
import { LocalModelApi } from "../models/local.ts";
import { ProviderSettingsError } from "../models/provider-settings.ts";
import { asBatchApi, createModelApi } from "../models/registry.ts";
import type { ProviderSettings } from "../models/types.ts";
import { runBatches } from "./batch.ts";
import { type CacheKeyParts, ResponseCache, requestCacheKey } from "./cache.ts";
import { canonicalJson, deriveSeed, sha256 } from "./canonical.ts";
import { checkInputFiles, inputFileHashes, recordInputFiles } from "./input-files.ts";
import { createRunStore, killedWhileOpening, lockRunDir } from "./lock.ts";
import { Redactor } from "./redact.ts";
import {
  Endpoint,
  type ModelTarget,
  type ProgressSink,
  runPending,
  type SchedulerResult,
} from "./scheduler.ts";
import { type NewRequest, RunStore, STORE_FILE } from "./store.ts";

export interface RunOptions {
  outDir: string;
  resume?: boolean;
  /** Skip the response cache entirely (neither read nor written). */
  noCache?: boolean;
  cacheDir?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  progress?: ProgressSink;
}

export interface RunSummary extends SchedulerResult {
  outDir: string;
  planned: number;
  added: number;
  /** Path of results.json, when every stage finished (not when interrupted or incomplete). */
  resultsFile?: string;
  /**
   * Set when a battery step ended with failed requests (retries given up, an error that is not
   * retried): the later steps, which plan from its answers, were not planned, and neither interp
   * nor results.json ran. `--resume` tries the failed requests again and goes on from there.
   * Steps are counted from 1 in the order they run.
   */
  incomplete?: { step: number; steps: number; failed: number; notRun: number[] };
}

/**
 * The settings a provider gets for a study model entry. A local model named by a path
 * relative to the study file (and found there) is passed on as an absolute path, like every
 * other path in a study.
 */
export function providerSettings(m: ModelEntry, studyDir?: string): ProviderSettings {
  const local =
    m.provider === "local" &&
    studyDir &&
    !path.isAbsolute(m.model) &&
    existsSync(path.resolve(studyDir, m.model));
  return {
    provider: m.provider,
    model: local ? path.resolve(studyDir, m.model) : m.model,
    baseUrl: m.base_url,
    apiKeyEnv: m.api_key_env,
    headers: m.headers,
    options: m.options,
  };
}

export function studyHash(study: Study): string {
  return sha256(canonicalJson(study));
}

/**
 * What identifies a model's answers in the cache: provider, base URL, model (a local path
 * resolved), options, and for a model on disk a fingerprint (name, size, mtime) of the files
 * of its directory and of an adapter directory named in its options.
 */
export function modelIdentity(
  m: ModelEntry,
  studyDir?: string,
): Omit<CacheKeyParts, "params" | "messages" | "seed"> {
  const settings = providerSettings(m, studyDir);
  const dirs = [settings.model, settings.options?.adapter].filter(
    (d): d is string => typeof d === "string" && existsSync(path.resolve(studyDir ?? "", d)),
  );
  const weights =
    m.provider === "local" && dirs.length > 0
      ? sha256(dirs.map((d) => fingerprintDir(path.resolve(studyDir ?? "", d))).join("\n"))
      : undefined;
  return { provider: m.provider, baseUrl: m.base_url, model: settings.model, options: m.options, weights };
}

function fingerprintDir(dir: string): string {
  if (!statSync(dir).isDirectory()) return dir;
  return readdirSync(dir)
    .sort()
    .map((name) => {
      const st = statSync(path.join(dir, name));
      return `${name}:${st.size}:${st.mtimeMs}`;
    })
    .join(",");
}

/** Stable request identity within a run, and its cache key. */
export function toStoreRequest(
  study: Study,
  p: PlannedRequest,
  identity: Omit<CacheKeyParts, "params" | "messages" | "seed"> = modelIdentity(
    study.models.find((m) => m.id === p.modelId)!,
  ),
): NewRequest {
  // The seed depends on the item, not on the model alias: the same prompt gets the same seed everywhere.
  const seed = deriveSeed(study.seed, p.experiment, p.itemId);
  const cache_key = requestCacheKey({ ...identity, params: p.params, messages: p.messages, seed });
  const id = sha256(
    canonicalJson({ model: p.modelId, experiment: p.experiment, item: p.itemId, cache_key, n: p.n }),
  ).slice(0, 32);
  return {
    id,
    model_id: p.modelId,
    experiment: p.experiment,
    item_id: p.itemId,
    messages_json: JSON.stringify(p.messages),
    params_json: JSON.stringify(p.params),
    n: p.n,
    seed,
    cache_key,
  };
}

function buildTargets(
  study: Study,
  file: string,
  locate: Locator,
  env: NodeJS.ProcessEnv,
  used: Set<string>,
): Map<string, ModelTarget> {
  const endpoints = new Map<string, Endpoint>();
  const targets = new Map<string, ModelTarget>();
  // Models sharing provider, base URL and key share one set of limits: the strictest of theirs.
  const endpointId = (m: ModelEntry) => `${m.provider}|${m.base_url ?? ""}|${m.api_key_env ?? ""}`;
  const group = new Map<string, ModelEntry[]>();
  for (const m of study.models) {
    if (!used.has(m.id)) continue;
    group.set(endpointId(m), [...(group.get(endpointId(m)) ?? []), m]);
  }
  for (const [id, ms] of group) {
    const min = (xs: Array<number | undefined>) => {
      const d = xs.filter((x): x is number => x !== undefined);
      return d.length ? Math.min(...d) : undefined;
    };
    endpoints.set(
      id,
      new Endpoint(id, {
        concurrency: min(ms.map((m) => m.limits.concurrency))!,
        rpm: min(ms.map((m) => m.limits.rpm)),
        tpm: min(ms.map((m) => m.limits.tpm)),
      }),
    );
  }
  study.models.forEach((m, i) => {
    if (!used.has(m.id)) return;
    let api: ModelTarget["api"];
    try {
      api = createModelApi(providerSettings(m, path.dirname(file)), env);
    } catch (e) {
      const at = ["models", i, ...(e instanceof ProviderSettingsError ? e.field : [])];
      throw new InputError([{ file, ...locate(at), field: fieldName(at), message: (e as Error).message }]);
    }
    if (m.batch && !asBatchApi(api)) {
      const at = ["models", i, "batch"];
      throw new InputError([
        {
          file,
          ...locate(at),
          field: fieldName(at),
          message: `provider ${m.provider} has no batch API (set batch: false)`,
        },
      ]);
    }
    const maxN = api.capabilities.has("n") ? (m.limits.max_n ?? 128) : 1;
    targets.set(m.id, {
      modelId: m.id,
      api,
      endpoint: endpoints.get(endpointId(m))!,
      limits: m.limits,
      price: m.price,
      maxN,
      batch: m.batch,
    });
  });
  return targets;
}

/**
 * `emlab run`: fine-tune plans → plan → store → scheduler. Everything that can be wrong with
 * the input is checked before the run directory is touched, so bad input writes nothing.
 */
export async function runStudy(loaded: LoadedStudy, opts: RunOptions): Promise<RunSummary> {
  const { study: declared, file } = loaded;
  const env = opts.env ?? process.env;
  const studyDir = path.dirname(file);
  // Datasets read and checked, plan bases loaded, data tokenized: all before anything is written.
  const plans = prepareFinetune(declared, file, opts.outDir, loadStudyDatasets(declared, file));
  // Each plan's id names its fine-tuned model, a target like the study's own models.
  const study = withPlanModels(declared, plans);
  // Every source is read and checked here, before the run directory is touched.
  const loadCtx: LoadContext = { study, studyFile: file, studyDir };
  const battery = loadBattery(loadCtx);
  const steps = batterySteps(battery);
  const targets = buildTargets(study, file, yamlLocator(loaded.text), env, batteryModels(study));
  const judgeId = judgeModelId(study);
  const judge = judgeSetup(study, judgeId ? targets.get(judgeId)?.api.capabilities : undefined);
  const interpPlan = loadInterp(study, file, battery, judgeId);
  const redactor = Redactor.fromEnv(
    study.models.map((m) => m.api_key_env),
    env,
  );

  const storePath = path.join(opts.outDir, STORE_FILE);
  const exists = existsSync(storePath);
  if (exists && !opts.resume)
    throw new InputError([
      {
        file: opts.outDir,
        message: "already holds a run: add --resume to continue it, or choose another --out",
      },
    ]);
  if (!exists && opts.resume)
    throw new InputError([
      {
        file: opts.outDir,
        message: killedWhileOpening(opts.outDir)
          ? "holds no run to resume: one was killed while it was being created, before anything was stored; start it again without --resume"
          : "holds no run to resume",
      },
    ]);

  const unlock = lockRunDir(opts.outDir);
  const hash = studyHash(declared);
  let inputs: Record<string, string>;
  // What a resume checks: written before a new run's store becomes run.sqlite, the study row last.
  const recordOpening = (s: RunStore) => {
    recordInputFiles(opts.outDir, inputs);
    for (const m of study.models) s.upsertModel({ ...m, base_url: m.base_url, roles: m.roles });
    s.setStudy({
      name: study.name,
      config_json: JSON.stringify(declared),
      config_hash: hash,
      source_path: file,
      source_text: loaded.text,
    });
  };
  let store: RunStore;
  try {
    inputs = inputFileHashes(declared, studyDir);
    if (!exists) {
      // Another process may have created the run between the check above and the lock.
      if (existsSync(storePath))
        throw new InputError([
          {
            file: opts.outDir,
            message: "already holds a run: add --resume to continue it, or choose another --out",
          },
        ]);
      createRunStore(opts.outDir, recordOpening, env);
    }
    store = RunStore.open(opts.outDir);
  } catch (e) {
    unlock();
    throw e;
  }
  const cache = opts.noCache ? undefined : new ResponseCache(opts.cacheDir);
  const logFile = path.join(opts.outDir, "run.log");
  const log = (line: string) =>
    appendFileSync(logFile, `${new Date().toISOString()} ${redactor.redact(line)}\n`);
  // The caller's sink, with every log line also written (redacted) to run.log.
  const sink = opts.progress;
  const progress: ProgressSink | undefined = sink && {
    start: (s) => sink.start(s),
    update: (s) => sink.update(s),
    stop: () => sink.stop(),
    log: (line) => {
      log(line);
      sink.log(redactor.redact(line));
    },
  };
  try {
    if (exists) {
      const prev = store.getStudy();
      if (!prev) {
        // A store with no study row: a run an older emlab was creating when it was killed.
        // Nothing can have been stored yet, so finishing the opening now starts that run.
        if (store.counts().requests > 0 || store.listJobs().length > 0)
          throw new InputError([
            {
              file: opts.outDir,
              message:
                "holds a run store with work in it but no study recorded; start a new run with another --out",
            },
          ]);
        recordOpening(store);
        log("resume: the run was killed while it was being created; its opening is completed now");
      }
      if (prev && prev.config_hash !== hash)
        throw new InputError([
          {
            file,
            message: `the study changed since the run in ${opts.outDir} started; start a new run with another --out`,
          },
        ]);
      checkInputFiles(opts.outDir, file, inputs);
      const reset = store.resetFailed();
      log(`resume: ${reset} failed request(s) will be tried again`);
    }
    // Fine-tuning first: the battery's identities fingerprint the saved weights.
    const trained = await runFinetunePlans(plans, {
      store,
      runDir: opts.outDir,
      signal: opts.signal,
      log: (line) => (progress ? progress.log(line) : log(line)),
    });
    if (!trained) {
      log("interrupted during fine-tuning");
      return {
        samplesTotal: 0,
        samplesDone: 0,
        failedRequests: 0,
        cacheHits: 0,
        interrupted: true,
        outDir: opts.outDir,
        planned: 0,
        added: 0,
      };
    }
    const planned = new Set<string>();
    const identities = new Map(study.models.map((m) => [m.id, modelIdentity(m, studyDir)]));
    const ctx: RunContext = {
      ...loadCtx,
      store,
      judge,
      planned,
    };
    const pollSeconds = (id: string) => study.models.find((m) => m.id === id)?.batch_poll_s ?? 30;
    // Staged: step k plans from what steps < k stored (e.g. judge requests for stored answers),
    // runs through the same scheduler (cache, retries, resume), then files judgments.
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
    let incomplete: RunSummary["incomplete"];
    for (const [i, step] of steps.entries()) {
      const rows = planStep(ctx, battery, step).map((p) =>
        toStoreRequest(study, p, identities.get(p.modelId)),
      );
      for (const r of rows) planned.add(r.id);
      plannedCount += rows.length;
      const fresh = store.addRequests(rows);
      added += fresh;
      log(`step ${step}: planned ${rows.length} request(s), ${fresh} new`);
      const only = planned;
      cacheHits += await runBatches({
        store,
        targets,
        cache,
        signal: opts.signal,
        redactor,
        progress,
        pollSeconds,
        only,
      });
      result = await runPending({ store, targets, cache, signal: opts.signal, redactor, progress, only });
      cacheHits += result.cacheHits;
      if (result.interrupted) break;
      collectStep(ctx, battery, step);
      // Later steps plan from what this one stored. Planned from answers with holes, their plans
      // would change once --resume fills them: paid requests left outside the final plan, and
      // results unlike a clean run's. So a step with failed requests is where the run stops.
      const failed = store.listRequests().filter((r) => r.status === "failed" && planned.has(r.id)).length;
      if (failed > 0) {
        const notRun = steps.slice(i + 1).map((_, j) => i + 2 + j);
        incomplete = { step: i + 1, steps: steps.length, failed, notRun };
        log(
          `step ${step}: ${failed} failed request(s); ${notRun.length ? `${notRun.length} later step(s) not planned, ` : ""}results.json not written (--resume tries them again)`,
        );
        break;
      }
    }
    result = { ...result, cacheHits };
    // The interp stage reads the battery's judged answers: only once every stage has finished.
    let interp: Awaited<ReturnType<typeof runInterp>> | undefined;
    if (!result.interrupted && !incomplete && interpPlan) {
      interp = await runInterpStage(study, studyDir, interpPlan, ctx, targets, opts, (line) =>
        progress ? progress.log(line) : log(line),
      );
      if (interp === null) {
        log("interrupted during interp");
        result = { ...result, interrupted: true };
      }
    }
    let resultsFile: string | undefined;
    if (!result.interrupted && !incomplete) {
      resultsFile = path.join(opts.outDir, RESULTS_FILE);
      const finetune = plans.length > 0 ? finetuneResults(store, plans) : undefined;
      const summary = summarizeBattery(ctx, battery, store, finetune);
      const results = interp ? ResultsSchema.parse({ ...summary, interp }) : summary;
      writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
    }
    log(
      `${result.interrupted ? "interrupted" : incomplete ? "incomplete" : "finished"}: ${result.samplesDone}/${result.samplesTotal} samples, ${result.failedRequests} failed request(s)`,
    );
    return { ...result, outDir: opts.outDir, planned: plannedCount, added, resultsFile, incomplete };
  } finally {
    cache?.close();
    store.close();
    unlock();
    await Promise.all([...targets.values()].map((t) => t.api.close?.()));
  }
}

/**
 * Runs the study's interp sections on its local models: each loaded once (a battery target's
 * engine is reused), those loaded here closed afterwards. Null when interrupted.
 */
async function runInterpStage(
  study: Study,
  studyDir: string,
  plan: NonNullable<ReturnType<typeof loadInterp>>,
  ctx: RunContext,
  targets: Map<string, ModelTarget>,
  opts: RunOptions,
  log: (line: string) => void,
) {
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
  try {
    return await runInterp({
      ctx,
      plan,
      runDir: opts.outDir,
      model,
      judgeApi: ctx.judge ? targets.get(ctx.judge.modelId)?.api : undefined,
      signal: opts.signal,
      log,
    });
  } finally {
    await Promise.all([...own.values()].map((a) => a.close()));
  }
}
