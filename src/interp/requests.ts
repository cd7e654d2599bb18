/**
 * The interp stage's requests in the run store. Every generation of its sweeps, re-alignment
 * and loop evaluations and every sweep-judge question is a stored request, made through the
 * battery's scheduler (runBatches / runPending: retries, endpoint limits, the response cache,
 * redaction, progress), so it is cached, resumable and visible in `emlab view`. A request
 * stored by an earlier invocation is not asked again.
 *
 * A generation's answering model is an `InterpTarget`: the local model's API, a hooked view of
 * it (a steering or ablation condition) or an in-memory trained copy (re-alignment, the loop),
 * with a `variant` — what makes it differ from the plain model — that goes into the cache key,
 * so a cached answer of one condition is never handed to another. Each call of `generate` runs
 * one target's requests alone (`only`), one at a time (concurrency 1): no two conditions'
 * hooks ever share the engine at once. Sample s of an ask has its own explicit seed
 * (`sample_seeds`), so the stage keeps its common random numbers.
 */
import type { ModelEntry } from "../config/schema.ts";
import type { ChatMessage, ModelApi, SamplingParams } from "../models/types.ts";
import { runBatches } from "../runs/batch.ts";
import { type ModelIdentity, type ResponseCache, requestCacheKey } from "../runs/cache.ts";
import { canonicalJson, sha256 } from "../runs/canonical.ts";
import { crashPoint } from "../runs/lock.ts";
import type { Redactor } from "../runs/redact.ts";
import type { CompletionRow, JudgmentRow } from "../runs/rows.ts";
import {
  Endpoint,
  type ModelTarget,
  type ProgressSink,
  type ProgressState,
  runPending,
  type SchedulerResult,
} from "../runs/scheduler.ts";
import type { NewRequest, RunStore } from "../runs/store.ts";
import { InterpInterrupted } from "./study-judge.ts";

/** What answers an interp generation. */
export interface InterpTarget {
  /** The study model whose weights answer: the requests' model id. */
  modelId: string;
  /** The model's API, a hooked view of it, or an in-memory trained copy. */
  api: ModelApi;
  /**
   * What makes it differ from the plain model (hooks, training), as JSON; null or undefined:
   * it is the plain model. Part of the cache key.
   */
  variant?: unknown;
}

/** One request of the stage: a conversation, its parameters and one seed per sample. */
export interface InterpAsk {
  itemId: string;
  messages: ChatMessage[];
  params: SamplingParams;
  sampleSeeds: number[];
}

/** What the stage needs of the run: the store and the battery's scheduler settings. */
export interface InterpSchedulerDeps {
  store: RunStore;
  /** The study's scheduler targets (the judge among them). */
  targets: ReadonlyMap<string, ModelTarget>;
  /** The study's models (the limits of a local model that is no battery target). */
  models: readonly ModelEntry[];
  /** A model's cache identity (provider, model, weights fingerprint, ...). */
  identity: (modelId: string) => ModelIdentity;
  cache?: ResponseCache;
  signal?: AbortSignal;
  redactor: Redactor;
  progress?: ProgressSink;
  pollSeconds?: (modelId: string) => number;
  /** For `EMLAB_CRASH_AT=interp:<k>`: SIGKILL once the k-th interp completion is stored. */
  env?: NodeJS.ProcessEnv;
}

/** Thrown when some of a group's requests failed: the stage stops there, as a battery step does. */
export class InterpIncomplete extends Error {
  constructor(
    readonly experiment: string,
    readonly failed: number,
  ) {
    super(`interp: ${failed} failed request(s) in ${experiment}`);
    this.name = "InterpIncomplete";
  }
}

type Counters = Pick<
  ProgressState,
  "failedRequests" | "retries" | "cacheHits" | "promptTokens" | "completionTokens" | "costUsd"
>;
const ZERO: Counters = {
  failedRequests: 0,
  retries: 0,
  cacheHits: 0,
  promptTokens: 0,
  completionTokens: 0,
  costUsd: 0,
};

export class InterpRequester {
  /** Requests the stage planned (stored or not), and those new to the store. */
  planned = 0;
  added = 0;
  /** Samples taken from the response cache. */
  cacheHits = 0;
  /** The last scheduler result (the store's totals). */
  last: SchedulerResult | undefined;
  private stored = 0;
  private started = false;
  private acc: Counters = { ...ZERO };
  private lastState: ProgressState | undefined;

  constructor(private readonly d: InterpSchedulerDeps) {}

  /**
   * Stores the asks as requests of `experiment` on the target's model and asks the target
   * for every sample not stored yet; per ask, its completions by sample index.
   */
  async generate(
    experiment: string,
    target: InterpTarget,
    asks: readonly InterpAsk[],
  ): Promise<CompletionRow[][]> {
    const entry = this.d.models.find((m) => m.id === target.modelId);
    if (!entry) throw new Error(`interp: '${target.modelId}' is not a study model`);
    const limits = this.d.targets.get(target.modelId)?.limits ?? entry.limits;
    const own: ModelTarget = {
      modelId: target.modelId,
      api: target.api,
      // Its own endpoint, one request at a time: the engine runs one condition's hooks at once.
      endpoint: new Endpoint(`interp|${target.modelId}`, { concurrency: 1 }),
      limits,
      maxN: target.api.capabilities.has("n") ? (limits.max_n ?? 128) : 1,
      batch: false,
    };
    const rows = this.rows(experiment, target.modelId, target.variant, asks);
    return this.run(experiment, rows, new Map([[target.modelId, own]]));
  }

  /** Judge questions to the study's judge model, through its own scheduler target (and batch API). */
  async judge(
    experiment: string,
    judgeModelId: string,
    asks: readonly InterpAsk[],
  ): Promise<CompletionRow[][]> {
    const target = this.d.targets.get(judgeModelId);
    if (!target) throw new Error(`interp: the judge '${judgeModelId}' has no scheduler target`);
    const rows = this.rows(experiment, judgeModelId, undefined, asks);
    return this.run(experiment, rows, new Map([[judgeModelId, target]]));
  }

  /** Files judgments of the stage's answers (one transaction). */
  saveJudgments(rows: readonly Omit<JudgmentRow, "id" | "created_at">[]): void {
    this.d.store.saveJudgments(rows);
  }

  /** Ends the stage's progress display. */
  finish(): void {
    if (this.started) this.d.progress?.stop();
    this.started = false;
  }

  private rows(
    experiment: string,
    modelId: string,
    variant: unknown,
    asks: readonly InterpAsk[],
  ): NewRequest[] {
    const identity = this.d.identity(modelId);
    return asks.map((a) => {
      if (a.sampleSeeds.length === 0)
        throw new Error(`interp: ${experiment}/${a.itemId} asks for no samples`);
      const cache_key = requestCacheKey({
        ...identity,
        params: a.params,
        messages: a.messages,
        seed: a.sampleSeeds[0],
        sampleSeeds: a.sampleSeeds,
        variant: variant ?? undefined,
      });
      const n = a.sampleSeeds.length;
      // As toStoreRequest makes ids: planning twice adds nothing.
      const id = sha256(canonicalJson({ model: modelId, experiment, item: a.itemId, cache_key, n })).slice(
        0,
        32,
      );
      return {
        id,
        model_id: modelId,
        experiment,
        item_id: a.itemId,
        messages: a.messages,
        params: a.params,
        n,
        seed: a.sampleSeeds[0],
        sample_seeds: a.sampleSeeds,
        cache_key,
      };
    });
  }

  private async run(
    experiment: string,
    rows: NewRequest[],
    targets: Map<string, ModelTarget>,
  ): Promise<CompletionRow[][]> {
    const { store } = this.d;
    if (this.d.signal?.aborted) throw new InterpInterrupted();
    this.planned += rows.length;
    this.added += store.addRequests(rows);
    const only = new Set(rows.map((r) => r.id));
    const common = {
      store,
      targets,
      cache: this.d.cache,
      signal: this.d.signal,
      redactor: this.d.redactor,
      progress: this.sink(),
      only,
    };
    this.cacheHits += await runBatches({ ...common, pollSeconds: this.d.pollSeconds });
    const r = await runPending(common);
    this.cacheHits += r.cacheHits;
    this.last = r;
    if (r.interrupted) throw new InterpInterrupted();
    const failed = store.failedAmong(only);
    if (failed > 0) throw new InterpIncomplete(experiment, failed);
    return rows.map((row) => {
      const got = store.completions(row.id);
      if (got.length !== row.n)
        throw new Error(`interp: ${experiment}/${row.item_id}: ${got.length} of ${row.n} samples stored`);
      return got;
    });
  }

  /**
   * The progress sink of one scheduler call: one display for the whole stage (started once,
   * counters added up over its calls), and the crash point that counts stored completions.
   */
  private sink(): ProgressSink {
    const inner = this.d.progress;
    const env = this.d.env ?? process.env;
    let seen = 0;
    const merged = (s: ProgressState): ProgressState => {
      this.lastState = s;
      const out = { ...s };
      for (const k of Object.keys(ZERO) as (keyof Counters)[]) out[k] = s[k] + this.acc[k];
      return out;
    };
    return {
      start: (s) => {
        seen = s.done;
        if (this.started) inner?.update(merged(s));
        else {
          this.started = true;
          inner?.start(merged(s));
        }
      },
      update: (s) => {
        const fresh = s.done - seen;
        seen = s.done;
        for (let i = 0; i < fresh; i++) crashPoint(`interp:${++this.stored}`, env);
        inner?.update(merged(s));
      },
      log: (line) => inner?.log(line),
      stop: () => {
        const s = this.lastState;
        if (s) for (const k of Object.keys(ZERO) as (keyof Counters)[]) this.acc[k] += s[k];
        this.lastState = undefined;
      },
    };
  }
}
