/**
 * What a study's models become in a run: provider settings, the identity that keys their
 * answers in the cache, stable request ids, and the scheduler's targets (endpoints shared by
 * models on one provider, base URL and key, with the strictest of their limits).
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import type { PlannedRequest } from "../battery/stage.ts";
import { fieldName, InputError, type Locator } from "../config/load.ts";
import type { ModelEntry, Study } from "../config/schema.ts";
import { ProviderSettingsError } from "../models/provider-settings.ts";
import { asBatchApi, createModelApi } from "../models/registry.ts";
import type { ProviderSettings } from "../models/types.ts";
import { type CacheKeyParts, requestCacheKey } from "../runs/cache.ts";
import { canonicalJson, deriveSeed, sha256 } from "../runs/canonical.ts";
import { Endpoint, type ModelTarget } from "../runs/scheduler.ts";
import type { NewRequest } from "../runs/store.ts";

/**
 * The settings a provider gets for a study model entry. A local model, or its
 * `options.adapter`, named by a path relative to the study file (and found there) is passed
 * on as an absolute path, like every other path in a study.
 */
export function providerSettings(m: ModelEntry, studyDir?: string): ProviderSettings {
  const besideStudy = (p: unknown): p is string =>
    m.provider === "local" &&
    studyDir !== undefined &&
    typeof p === "string" &&
    !path.isAbsolute(p) &&
    existsSync(path.resolve(studyDir, p));
  const adapter = m.options?.adapter;
  const chatTemplate = m.options?.chat_template;
  let options = besideStudy(adapter)
    ? { ...m.options, adapter: path.resolve(studyDir!, adapter) }
    : m.options;
  if (besideStudy(chatTemplate))
    options = { ...options, chat_template: path.resolve(studyDir!, chatTemplate) };
  return {
    provider: m.provider,
    model: besideStudy(m.model) ? path.resolve(studyDir!, m.model) : m.model,
    baseUrl: m.base_url,
    apiKeyEnv: m.api_key_env,
    headers: m.headers,
    options,
  };
}

export function studyHash(study: Study): string {
  return sha256(canonicalJson(study));
}

/**
 * What identifies a model's answers in the cache: provider, base URL, model (a local path
 * resolved), options, and for a model on disk a fingerprint (name, size, mtime) of the files
 * of its directory, of an adapter directory and of a chat template file named in its options.
 */
export function modelIdentity(
  m: ModelEntry,
  studyDir?: string,
): Omit<CacheKeyParts, "params" | "messages" | "seed"> {
  const settings = providerSettings(m, studyDir);
  // providerSettings made the paths found beside the study absolute; a relative one left is
  // what the provider opens, relative to the working directory: fingerprint that one.
  const dirs = [settings.model, settings.options?.adapter, settings.options?.chat_template]
    .filter((d): d is string => typeof d === "string")
    .map((d) => path.resolve(d))
    .filter((d) => existsSync(d));
  const weights =
    m.provider === "local" && dirs.length > 0 ? sha256(dirs.map(fingerprintDir).join("\n")) : undefined;
  return { provider: m.provider, baseUrl: m.base_url, model: settings.model, options: m.options, weights };
}

function fingerprintDir(dir: string): string {
  if (!statSync(dir).isDirectory()) {
    const st = statSync(dir);
    return `${dir}:${st.size}:${st.mtimeMs}`;
  }
  // Regular files only: a subdirectory (models/organism/sae/, an SAE trained on the model) is not
  // the model, and its mtime changes whenever something inside it is rewritten, which would
  // change the model's cache identity. Files such as generation_config.json (its eos ids) are
  // read by the local model and stay in.
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const st = statSync(path.join(dir, name));
      return st.isFile() ? [`${name}:${st.size}:${st.mtimeMs}`] : [];
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
    messages: p.messages,
    params: p.params,
    n: p.n,
    seed,
    cache_key,
  };
}

export function buildTargets(
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
