import { appendFileSync, existsSync } from "node:fs";
import path from "node:path";
import { type PlannedRequest, planGenerate } from "../battery/generate.ts";
import { InputError, type LoadedStudy } from "../config/load.ts";
import type { ModelEntry, Study } from "../config/schema.ts";
import { createModelApi } from "../models/registry.ts";
import type { ProviderSettings } from "../models/types.ts";
import { runBatches } from "./batch.ts";
import { ResponseCache, requestCacheKey } from "./cache.ts";
import { canonicalJson, deriveSeed, sha256 } from "./canonical.ts";
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
}

/** The settings a provider gets for a study model entry. */
export function providerSettings(m: ModelEntry): ProviderSettings {
  return {
    provider: m.provider,
    model: m.model,
    baseUrl: m.base_url,
    apiKeyEnv: m.api_key_env,
    headers: m.headers,
    options: m.options,
  };
}

export function studyHash(study: Study): string {
  return sha256(canonicalJson(study));
}

/** Every request the study asks for, in a stable order. */
export function planStudy(study: Study, studyDir: string): PlannedRequest[] {
  return [...planGenerate(study, studyDir)];
}

/** Stable request identity within a run, and its cache key. */
export function toStoreRequest(study: Study, p: PlannedRequest): NewRequest {
  const model = study.models.find((m) => m.id === p.modelId)!;
  // The seed depends on the item, not on the model alias: the same prompt gets the same seed everywhere.
  const seed = deriveSeed(study.seed, p.experiment, p.itemId);
  const cache_key = requestCacheKey({
    provider: model.provider,
    baseUrl: model.base_url,
    model: model.model,
    params: p.params,
    messages: p.messages,
    seed,
  });
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
      api = createModelApi(providerSettings(m), env);
    } catch (e) {
      throw new InputError([{ file, field: `models[${i}]`, message: (e as Error).message }]);
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
 * `emlab run`: plan → store → scheduler. Everything that can be wrong with the input is
 * checked before the run directory is touched, so bad input writes nothing.
 */
export async function runStudy(loaded: LoadedStudy, opts: RunOptions): Promise<RunSummary> {
  const { study, file } = loaded;
  const env = opts.env ?? process.env;
  const studyDir = path.dirname(file);
  const planned = planStudy(study, studyDir);
  const rows = planned.map((p) => toStoreRequest(study, p));
  const targets = buildTargets(study, file, env, new Set(rows.map((r) => r.model_id)));
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
    throw new InputError([{ file: opts.outDir, message: "holds no run to resume" }]);

  const store = RunStore.open(opts.outDir, { create: true });
  const cache = opts.noCache ? undefined : new ResponseCache(opts.cacheDir);
  const logFile = path.join(opts.outDir, "run.log");
  const log = (line: string) =>
    appendFileSync(logFile, `${new Date().toISOString()} ${redactor.redact(line)}\n`);
  const progress: ProgressSink | undefined = opts.progress && {
    ...opts.progress,
    start: (s) => opts.progress!.start(s),
    update: (s) => opts.progress!.update(s),
    stop: () => opts.progress!.stop(),
    log: (line) => {
      log(line);
      opts.progress!.log(redactor.redact(line));
    },
  };
  try {
    const hash = studyHash(study);
    if (exists) {
      const prev = store.getStudy();
      if (prev && prev.config_hash !== hash)
        throw new InputError([
          {
            file,
            message: `the study changed since the run in ${opts.outDir} started; start a new run with another --out`,
          },
        ]);
      const reset = store.resetFailed();
      log(`resume: ${reset} failed request(s) will be tried again`);
    } else {
      store.setStudy({
        name: study.name,
        config_json: JSON.stringify(study),
        config_hash: hash,
        source_path: file,
        source_text: loaded.text,
      });
      for (const m of study.models) store.upsertModel({ ...m, base_url: m.base_url, roles: m.roles });
    }
    const added = store.addRequests(rows);
    log(`planned ${rows.length} request(s), ${added} new`);
    const pollSeconds = (id: string) => study.models.find((m) => m.id === id)?.batch_poll_s ?? 30;
    await runBatches({ store, targets, cache, signal: opts.signal, redactor, progress, pollSeconds });
    const result = await runPending({ store, targets, cache, signal: opts.signal, redactor, progress });
    log(
      `${result.interrupted ? "interrupted" : "finished"}: ${result.samplesDone}/${result.samplesTotal} samples, ${result.failedRequests} failed request(s)`,
    );
    return { ...result, outDir: opts.outDir, planned: rows.length, added };
  } finally {
    cache?.close();
    store.close();
    await Promise.all([...targets.values()].map((t) => t.api.close?.()));
  }
}
